using Microsoft.Extensions.Logging;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary>A loaded dataset as the commands see it.</summary>
internal sealed record LoadedDataset(DatasetBuilderDir Dir, ExampleTable Table, bool FromCache, string? CachePath, string CacheDetail);

/// <summary>The one place the CLI loads data: the library's loader (TFRecords or the Parquet cache).</summary>
internal static class DatasetLoading
{
    /// <remarks>Downloading follows <c>options.Download</c>, which the CLI sets only for <c>--download</c>.</remarks>
    public static async Task<LoadedDataset> LoadAsync(TFDatasetSamplerOptions options, ILogger? logger,
        IProgress<(long Done, long Total)>? progress, CancellationToken ct)
    {
        var load = TFDatasetMultiShotMemorySampler.ToLoadOptions(options) with { Logger = logger };
        var sink = progress is null ? null : new SyncProgress<LoadProgress>(p =>
        {
            if (p.Phase is LoadPhase.Decoding or LoadPhase.ReadingCache or LoadPhase.Done) progress.Report((p.ExamplesDone, p.ExamplesTotal));
        });
        var r = await TfdsLoader.LoadAsync(load, sink, ct).ConfigureAwait(false);
        return new LoadedDataset(r.Builder, r.Table, r.FromCache, r.CachePath, r.CacheDetail);
    }
}
