using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Samplers.Cache;

namespace Samplers.Tfds;

/// <summary>
/// Loads a TFDS-prepared dataset into one columnar <see cref="ExampleTable"/>: the catalog resolves the dataset and
/// each split spec, the Parquet cache is tried, and on a miss the TFRecord shards are read, parsed and decoded in
/// parallel, checked against <c>shardLengths</c>, and the complete table is stored in the cache.
/// </summary>
/// <remarks>
/// <para>Order: each entry of <see cref="TfdsLoadOptions.Splits"/> is read as its own TFDS dataset, in TFDS's
/// interleaved read order (TFDS_FORMAT.md 9.1), and the entries are concatenated in list order, as the reference's
/// loop over splits does.</para>
/// <para>This class orchestrates (settings, catalog, download hook, feature choice, cache read and store); the record
/// pipeline (<c>TfdsRecordPipeline</c>) reads and decodes the shards. Memory: at most a few MiB of encoded records are
/// held at any time, whatever the dataset size.</para>
/// <para>Failures: the first error stops every thread and is rethrown unchanged; nothing is cached unless the
/// load completed.</para>
/// </remarks>
public static class TfdsLoader
{
    /// <summary>Loads the examples and labels described by <paramref name="options"/>.</summary>
    /// <param name="options">What to load.</param>
    /// <param name="progress">Receives <see cref="LoadProgress"/> reports; null for none.</param>
    /// <param name="cancellationToken">Cancels the load; a cancelled load writes no cache file.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">No splits, an empty split entry, or <c>x_key</c>/<c>y_key</c> names no
    /// feature or a feature of the wrong kind (the message lists the available features with their types). The
    /// catalog's <see cref="Samplers.SpecFormatException"/> (a malformed name or split spec) is also an ArgumentException.</exception>
    /// <exception cref="DatasetNotFoundException">The dataset, config, version, split or a shard file is absent (from the catalog).</exception>
    /// <exception cref="DataFormatException">Bad metadata (from the catalog), or a record that is corrupt, lacks a key,
    /// holds values of another type or shape than <c>features.json</c> declares, an image that fails to decode (the
    /// message names the file and the record's <c>tfds_id</c>), or a shard holding another number of records than <c>shardLengths</c> says.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<TfdsLoadResult> LoadAsync(TfdsLoadOptions options, IProgress<LoadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.DatasetName, "options.DatasetName");
        ArgumentNullException.ThrowIfNull(options.Splits, "options.Splits");
        if (options.Splits.Count == 0)
            throw new ArgumentException("options.Splits is empty; give at least one split spec, e.g. \"train\".", "options.Splits");
        for (int i = 0; i < options.Splits.Count; i++)
            if (string.IsNullOrWhiteSpace(options.Splits[i]))
                throw new ArgumentException($"options.Splits[{i}] is empty; give a split spec such as \"train\" or \"train[:10%]\".", "options.Splits");
        ArgumentException.ThrowIfNullOrEmpty(options.XKey, "options.XKey");
        ArgumentException.ThrowIfNullOrEmpty(options.YKey, "options.YKey");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ChunkBytes, 1L, "options.ChunkBytes");
        cancellationToken.ThrowIfCancellationRequested();
        ILogger logger = options.Logger ?? NullLogger.Instance;
        var sw = Stopwatch.StartNew();

        progress?.Report(new LoadProgress(LoadPhase.Resolving, 0, 0, Detail: options.DatasetName));
        (DatasetBuilderDir builder, SplitSelection[] selections) = await ResolveAsync(options, progress, cancellationToken).ConfigureAwait(false);
        // No count the files cannot hold may size anything below (a file of S bytes holds at most S/16 records).
        ShardChecks.RequirePlausibleLengths(selections, builder.Info.FilePath);
        FeatureSpec xSpec = FindX(builder, options.XKey);
        FeatureSpec ySpec = FindY(builder, options.YKey);
        long total = selections.Sum(s => s.NumExamples);
        if (total > Array.MaxLength)
            throw new ArgumentException($"{builder.FullName} splits [{string.Join(", ", options.Splits)}] select {total} examples; a table holds at most {Array.MaxLength}. Load a slice, e.g. \"train[:50%]\".", "options.Splits");
        IReadOnlyList<string> classNames = ySpec.ClassNames ?? [];
        DType dtype = xSpec.StorageDType;
        int[] shape = (int[])xSpec.StorageShape.Clone();
        LoadLimits.CheckExampleFits(builder, xSpec, dtype, shape, options.ChunkBytes);

        // With a preprocess: its output type and fixed shape, checked before anything is read.
        IExamplePreprocessor? preprocess = options.Preprocess;
        TfdsRecordPipeline.Fused? fused = preprocess is null ? null : FusedFor(preprocess, dtype, shape);
        string preprocessKey = TfdsCacheEntry.PreprocessKey(options, xSpec);
        bool cachePreprocessed = preprocessKey.Length > 0;

        // Key and fingerprint come from TfdsCacheEntry so the CLI's cache view and the loader cannot drift.
        TfdsCacheEntry? entry = null;
        string cacheDetail = "";
        ParquetCache? openedCache = TfdsCacheEntry.OpenCache(options, logger);
        // A preprocessed cache file has the preprocess's (fixed) shape, so it can be mapped even when the decoded data is ragged.
        MappedCache.CheckRequest(options.Table, builder.FullName, options.XKey, cachePreprocessed ? fused!.OutputShape : shape, openedCache is not null);
        if (openedCache is not null)
        {
            entry = TfdsCacheEntry.For(openedCache, builder, selections, options.Splits, options.XKey, options.YKey, preprocessKey);
            var cacheProgress = progress is null ? null : new CacheProgressAdapter(progress, total);
            var expected = cachePreprocessed ? new CacheExpectation(fused!.OutputDType, fused.OutputShape, classNames) : new CacheExpectation(dtype, shape, classNames);
            CacheLoadResult hit = await entry.Cache.TryLoadAsync(entry.Key, entry.Fingerprint, MappedCache.ForLoad(options.Table),
                expected, cacheProgress, cancellationToken).ConfigureAwait(false);
            if (hit.IsHit)
            {
                ExampleTable cached = hit.Table!;
                // An undeclared preprocess runs after every load (the cache holds the decoded examples).
                if (preprocess is not null && !cachePreprocessed) cached = await ApplyAsync(cached, preprocess, options, cancellationToken).ConfigureAwait(false);
                progress?.Report(new LoadProgress(LoadPhase.Done, cached.Count, total, Detail: hit.Path));
                logger.LogInformation("Loaded {Dataset} {Splits} from the cache {Path}: {Count} examples in {Ms} ms",
                    builder.FullName, string.Join(",", options.Splits), hit.Path, cached.Count, sw.ElapsedMilliseconds);
                return new TfdsLoadResult(cached, xSpec, ySpec, builder, selections, true, hit.Path, hit.Detail);
            }
            cacheDetail = hit.Detail;
        }

        // Fused (decode and preprocess in one worker) unless the decoded examples are what the cache must store.
        bool fuse = fused is not null && (cachePreprocessed || entry is null);
        ExampleTable table = await TfdsRecordPipeline.DecodeAsync(builder, selections, xSpec, ySpec, dtype, shape, classNames, options, total, progress, cancellationToken,
            fuse ? fused : null).ConfigureAwait(false);
        logger.LogInformation("Decoded {Dataset} {Splits} from TFRecords: {Count} examples in {Ms} ms",
            builder.FullName, string.Join(",", options.Splits), table.Count, sw.ElapsedMilliseconds);

        string? cachePath = null;
        if (entry is not null)
        {
            cachePath = entry.Path;
            progress?.Report(new LoadProgress(LoadPhase.StoringCache, 0, total, Detail: cachePath));
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var cacheProgress = progress is null ? null : new CacheProgressAdapter(progress, total);
                CacheStoreResult stored = await entry.Cache.StoreAsync(entry.Key, entry.Fingerprint, table, cacheProgress, cancellationToken).ConfigureAwait(false);
                cacheDetail = stored.Stored ? $"{cacheDetail}; stored {stored.Path} ({stored.Bytes} bytes)" : stored.Detail;
                if (stored.Stored)
                    table = await entry.ReopenMappedAsync(table, options.Table, logger, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A store failure never fails the load: the data is complete in memory.
                cacheDetail = $"{cachePath}: could not write the cache ({e.GetType().Name}: {e.Message}); continuing without it";
                logger.LogWarning("{Detail}", cacheDetail);
            }
        }
        if (preprocess is not null && !fuse) table = await ApplyAsync(table, preprocess, options, cancellationToken).ConfigureAwait(false);
        progress?.Report(new LoadProgress(LoadPhase.Done, table.Count, total));
        return new TfdsLoadResult(table, xSpec, ySpec, builder, selections, false, cachePath, cacheDetail);
    }

    /// <summary>The preprocess's output dtype and fixed shape for the table's; its errors (a ragged output, a dtype it does not
    /// take) surface before any record is read.</summary>
    private static TfdsRecordPipeline.Fused FusedFor(IExamplePreprocessor preprocess, DType dtype, int[] shape)
    {
        DType outType = preprocess.OutputDType(dtype);
        int[] outShape = preprocess.OutputShape(shape) ?? throw new ArgumentException("The preprocess returned no output shape.", "options.Preprocess");
        foreach (int d in outShape)
            if (d < 0) throw new ArgumentException($"The preprocess's output shape [{string.Join(", ", outShape)}] has a negative dimension; every output example needs one fixed shape.", "options.Preprocess");
        return new TfdsRecordPipeline.Fused(preprocess, outType, outShape);
    }

    private static Task<ExampleTable> ApplyAsync(ExampleTable table, IExamplePreprocessor preprocess, TfdsLoadOptions options, CancellationToken ct) =>
        Task.Run(() => Preprocessing.Apply(table, preprocess, options.ChunkBytes, ct), ct);

    /// <summary>The split list as one cache-key string: the entries joined by <c>,</c> (a <c>+</c> inside an entry
    /// interleaves while a list concatenates, so the two must not collide). Specs need no further normalising: the
    /// catalog refuses whitespace, and a different spelling of the same rows only costs a second cache file.</summary>
    internal static string NormalizeSplits(IReadOnlyList<string> splits) => string.Join(",", splits);

    /// <summary>Opens the dataset and selects every split; with a download hook, an absent dataset or shard is fetched once.</summary>
    private static async Task<(DatasetBuilderDir, SplitSelection[])> ResolveAsync(TfdsLoadOptions options, IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        try
        {
            return Resolve(options);
        }
        catch (DatasetNotFoundException notFound) when (options.Download is not null && IsAbsentData(notFound))
        {
            string dataDir = DataDirectory.Resolve(options.DataDir);
            progress?.Report(new LoadProgress(LoadPhase.Downloading, 0, 0, Detail: options.DatasetName));
            try
            {
                await options.Download(new TfdsDownloadRequest(dataDir, options.DatasetName, options.Splits, notFound), progress, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is DatasetNotFoundException or DownloadException && !ct.IsCancellationRequested)
            {
                // Not published, or the bucket unreachable: most often a misspelled name. Lead with what is on disk (the
                // catalog's message lists the datasets, configs or versions present), then what the download said.
                // Each hint once: the catalog's and the download's, less "download it" (that was just tried).
                throw DataHints.NotFound(
                    $"{DataHints.FactsOf(notFound).TrimEnd()} The download (TfdsLoadOptions.Download) could not fetch it either: {DataHints.FactsOf(e).TrimEnd()}",
                    [.. DataHints.HintsOf(notFound).Where(h => h.Kind != HintKind.Download), .. DataHints.HintsOf(e),
                     DataHints.CheckName(), DataHints.DataDir("point TfdsLoadOptions.DataDir at a directory that holds the dataset"),
                     DataHints.NoDownload("set TfdsLoadOptions.Download = null to never use the network")],
                    notFound.FilePath, notFound.Key, e);
            }
            ct.ThrowIfCancellationRequested();
            return Resolve(options);
        }
    }

    private static (DatasetBuilderDir, SplitSelection[]) Resolve(TfdsLoadOptions options)
    {
        DatasetBuilderDir builder = Catalog.Open(options.DataDir, options.DatasetName);
        var selections = new SplitSelection[options.Splits.Count];
        for (int i = 0; i < selections.Length; i++) selections[i] = builder.Select(options.Splits[i]);
        return (builder, selections);
    }

    /// <summary>True when downloading can help: the dataset, config or version is absent, or a shard file is missing;
    /// false for a split name the dataset does not have (its error points at dataset_info.json and lists the splits).</summary>
    private static bool IsAbsentData(DatasetNotFoundException e)
    {
        if (e.FilePath is null || !e.FilePath.EndsWith("dataset_info.json", StringComparison.Ordinal)) return true;
        return !File.Exists(e.FilePath);
    }

    /// <summary>
    /// A <see cref="TfdsDownloadHandler"/> that fetches the prepared dataset with <see cref="TfdsDownloader"/>
    /// (only the shards of the requested splits) into the request's data directory.
    /// </summary>
    /// <param name="baseUrl">The bucket; null uses <c>SAMPLERS_TFDS_BASE_URL</c>, else TFDS's public bucket.</param>
    /// <param name="configure">Optional changes to the download request (timeouts, retries, parallelism).</param>
    public static TfdsDownloadHandler DownloadFromBucket(string? baseUrl = null, Func<TfdsDownloadOptions, TfdsDownloadOptions>? configure = null) =>
        async (request, progress, ct) =>
        {
            var download = new TfdsDownloadOptions(request.DatasetName) { DataDir = request.DataDir, BaseUrl = baseUrl, Splits = request.Splits };
            if (configure is not null) download = configure(download);
            IProgress<DownloadProgress>? files = progress is null ? null : new DownloadProgressAdapter(progress);
            await TfdsDownloader.DownloadAsync(download, files, ct).ConfigureAwait(false);
        };

    /// <summary>Forwards download progress as load progress (bytes; files in the detail).</summary>
    private sealed class DownloadProgressAdapter(IProgress<LoadProgress> inner) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) =>
            inner.Report(new LoadProgress(LoadPhase.Downloading, 0, 0, value.BytesDone, value.BytesExpected,
                $"{value.FilesDone}/{value.FilesTotal} files; {value.CurrentFile}"));
    }

    private static string Available(DatasetBuilderDir builder) =>
        string.Join(", ", builder.Features.Select(f => f.ToString()));

    private static FeatureSpec FindX(DatasetBuilderDir builder, string key)
    {
        FeatureSpec spec = builder.FindFeature(key) ?? throw new ArgumentException(
            $"x_key '{key}' not found - available features are: {Available(builder)} ({builder.FullName}, {builder.Path}). Pass one of these keys as XKey.", "options.XKey");
        if (!spec.IsNumeric)
            throw new ArgumentException(
                $"x_key '{key}' is {spec}: examples must be numeric (an Image, a numeric Tensor, a ClassLabel or a BBox). Available features are: {Available(builder)}.", "options.XKey");
        return spec;
    }

    private static FeatureSpec FindY(DatasetBuilderDir builder, string key)
    {
        FeatureSpec spec = builder.FindFeature(key) ?? throw new ArgumentException(
            $"y_key '{key}' not found - available features are: {Available(builder)} ({builder.FullName}, {builder.Path}). Pass one of these keys as YKey.", "options.YKey");
        if (!spec.IsLabel)
            throw new ArgumentException(
                $"y_key '{key}' is {spec}: labels must be a scalar ClassLabel or integer Tensor. Available features are: {Available(builder)}.", "options.YKey");
        return spec;
    }

    /// <summary>Forwards the cache's progress as load progress.</summary>
    private sealed class CacheProgressAdapter(IProgress<LoadProgress> inner, long total) : IProgress<CacheProgress>
    {
        public void Report(CacheProgress value)
        {
            LoadPhase phase = value.Phase is CachePhase.Writing or CachePhase.Stored or CachePhase.StoreFailed ? LoadPhase.StoringCache : LoadPhase.ReadingCache;
            string detail = value.Reason is { } r ? $"{value.Phase} ({r}): {value.Path}" : $"{value.Phase}: {value.Path}";
            inner.Report(new LoadProgress(phase, value.Completed, total, Detail: detail));
        }
    }
}
