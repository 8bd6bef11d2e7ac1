// The names a documentation fragment may use without declaring them: what the surrounding text says the reader
// already has (their data, a logger, a progress sink, a token, their training step). Only fragments see these;
// a snippet that starts with its using directives is a whole program and sees nothing here (README.md here).
#pragma warning disable CS0649, CS8618 // never assigned: nothing runs, the build is the test
using Microsoft.Extensions.Logging;
using Samplers;
using Samplers.Imaging;
using Samplers.Tfds;

namespace DocSnippetsGenerated;

/// <summary>Base class of every generated fragment.</summary>
internal abstract class SnippetContext
{
    // Data the reader holds (docs/API.md, docs/CORE.md).
    protected static byte[] x = [];
    protected static long[] y = [];
    protected static long[] labels = [];
    protected static int[] indices = [], classOrdinals = [];
    protected static ulong seed;
    protected static int epoch, batchId;

    // A sampler made earlier on the page (docs/TRAINING.md).
    protected static MultiShotMemorySampler sampler;

    // Plumbing.
    protected static ILogger logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    protected static CancellationToken cancellationToken, ct;

    /// <summary>Accepts any progress type a loading or download call asks for.</summary>
    protected static AnyProgress progress = new();

    /// <summary>Writing a dataset (docs/TFDS.md): the version folder, the features, serialized tf.train.Example records.</summary>
    protected static string versionDir = "";
    protected static FeatureSpec[] specs = [];
    protected static byte[][] trainRecords = [], testRecords = [];

    // The reader's training step.
    protected static void Train(Batch batch) { }
    protected static void Train(System.Numerics.Tensors.TensorSpan<float> x, ReadOnlySpan<long> y) { }

    /// <summary>An <see cref="IProgress{T}"/> of every progress type.</summary>
    protected sealed class AnyProgress : IProgress<LoadProgress>, IProgress<Samplers.Tfds.DownloadProgress>
    {
        public void Report(LoadProgress value) { }
        public void Report(Samplers.Tfds.DownloadProgress value) { }
    }
}
