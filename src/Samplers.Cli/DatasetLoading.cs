using Microsoft.Extensions.Logging;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary>A loaded dataset as the commands see it.</summary>
/// <param name="Dir">The dataset's version folder (for remote access, its local metadata copy).</param>
/// <param name="Table">The examples and labels (labels only with remote access).</param>
/// <param name="FromCache">Whether the table came from the Parquet cache.</param>
/// <param name="CachePath">The cache file, when one was used or written.</param>
/// <param name="CacheDetail">What the cache did, for the status line.</param>
/// <param name="Remote">With remote access (--s3-access remote): the sampler over the remote table (its <c>Table</c> then
/// holds labels only, and every example is fetched when a batch needs it); null otherwise.</param>
internal sealed record LoadedDataset(DatasetBuilderDir Dir, ExampleTable Table, bool FromCache, string? CachePath, string CacheDetail,
    TFDatasetMultiShotMemorySampler? Remote = null);

/// <summary>The one place the CLI loads data: the library's load route, <see cref="TfdsLoader.LoadAsync"/> (TFRecords or the
/// Parquet cache), which the façade and the experiment scripts use too.</summary>
internal static class DatasetLoading
{
    /// <summary>The options' <see cref="TFDatasetSamplerOptions.Load"/>; see the other overload.</summary>
    public static Task<LoadedDataset> LoadAsync(TFDatasetSamplerOptions options, ILogger? logger,
        IProgress<(long Done, long Total)>? progress, CancellationToken ct) =>
        LoadAsync(options.Load, logger, progress, ct);

    /// <remarks>Downloading follows <c>load.Download</c>, which the CLI sets only for <c>--download</c>. A dataset that is
    /// not found keeps the library's exception: <see cref="ErrorPolicy"/> re-words its hints as the tool's options.</remarks>
    public static async Task<LoadedDataset> LoadAsync(TfdsLoadOptions load, ILogger? logger,
        IProgress<(long Done, long Total)>? progress, CancellationToken ct)
    {
        var sink = progress is null ? null : new SyncProgress<LoadProgress>(p =>
        {
            if (p.Phase is LoadPhase.Decoding or LoadPhase.ReadingCache or LoadPhase.Done) progress.Report((p.ExamplesDone, p.ExamplesTotal));
        });
        var r = await TfdsLoader.LoadAsync(load with { Logger = logger }, sink, ct).ConfigureAwait(false);
        return new LoadedDataset(r.Builder, r.Table, r.FromCache, r.CachePath, r.CacheDetail);
    }
}
