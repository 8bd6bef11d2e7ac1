using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Samplers.Cache;

namespace Samplers.Tfds;

/// <summary>
/// Loads a TFDS-prepared dataset into one columnar <see cref="ExampleTable"/>: the catalog resolves the dataset and
/// each split spec, the Parquet cache is tried, and on a miss the TFRecord shards are read, parsed and decoded in
/// parallel, checked against <c>shardLengths</c>, and the complete table is stored in the cache. A fixed-shape table
/// with the cache on is streamed instead: decoded row group by row group straight into the cache file, then mapped.
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
    /// <exception cref="InsufficientMemoryException">The table must be built in memory (it cannot stream to the cache file:
    /// ragged examples, a preprocess without an identity, caching off, <see cref="TableBacking.Memory"/>) and would not fit
    /// the memory the process may use; thrown before any record is decoded, the message says why and what to change
    /// (docs/MAPPED.md, "Beyond RAM from the first load").</exception>
    public static async Task<TfdsLoadResult> LoadAsync(TfdsLoadOptions options, IProgress<LoadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var sw = Stopwatch.StartNew();
        // Every fact of the load (dataset, selections, features, dtype and shape, the preprocess's output, the cache key
        // part of the preprocess) is resolved once here and passed down; nothing below re-derives it.
        LoadPlan plan = await LoadPlan.ResolveAsync(options, progress, cancellationToken).ConfigureAwait(false);
        ILogger logger = plan.Logger;
        IExamplePreprocessor? preprocess = options.Preprocess;

        // Key and fingerprint come from TfdsCacheEntry so the CLI's cache view and the loader cannot drift.
        TfdsCacheEntry? entry = null;
        string cacheDetail = "";
        ParquetCache? openedCache = TfdsCacheEntry.OpenCache(options, logger);
        MappedCache.CheckRequest(options.Table, plan.Builder.FullName, options.XKey, plan.StoredShape, openedCache is not null);
        if (openedCache is not null)
        {
            entry = TfdsCacheEntry.For(openedCache, plan.Builder, plan.Selections, options.Splits, options.XKey, options.YKey, plan.PreprocessKey);
            var cacheProgress = progress is null ? null : new CacheProgressAdapter(progress, plan.Total);
            CacheLoadResult hit = await entry.Cache.TryLoadAsync(entry.Key, entry.Fingerprint, MappedCache.ForLoad(options.Table),
                new CacheExpectation(plan.StoredDType, plan.StoredShape, plan.ClassNames), cacheProgress, cancellationToken).ConfigureAwait(false);
            if (hit.IsHit)
            {
                ExampleTable cached = hit.Table!;
                // An undeclared preprocess runs after every load (the cache holds the decoded examples).
                if (preprocess is not null && !plan.CachePreprocessed) cached = await ApplyAsync(cached, preprocess, options, cancellationToken).ConfigureAwait(false);
                progress?.Report(new LoadProgress(LoadPhase.Done, cached.Count, plan.Total, Detail: hit.Path));
                logger.LogInformation("Loaded {Dataset} {Splits} from the cache {Path}: {Count} examples in {Ms} ms",
                    plan.Builder.FullName, string.Join(",", options.Splits), hit.Path, cached.Count, sw.ElapsedMilliseconds);
                return plan.Result(cached, true, hit.Path, hit.Detail);
            }
            cacheDetail = hit.Detail;
        }

        // First load of a fixed-shape table with the cache on: decode straight into the cache file, row group by row group,
        // then map it (or read it, for Table = Memory): the table is never whole in memory (docs/MAPPED.md).
        string? noStream = WhyNotStreamed(plan, entry, preprocess);
        bool store = entry is not null;
        if (noStream is null && entry is not null)
        {
            if (options.Table == TableBacking.Memory)
                LoadMemory.CheckFits(plan, plan.CachePreprocessed, "TfdsLoadOptions.Table is Memory, which asks for every row in memory",
                    "set TfdsLoadOptions.Table to Mapped or Auto (the table is then streamed to the cache file and mapped)");
            progress?.Report(new LoadProgress(LoadPhase.StoringCache, 0, plan.Total, Detail: entry.Path));
            var cacheProgress = progress is null ? null : new CacheProgressAdapter(progress, plan.Total);
            CacheStoreResult streamed = await entry.Cache.StoreStreamingAsync(entry.Key, entry.Fingerprint, plan.StoredDType, plan.StoredShape, (int)plan.Total,
                plan.ClassNames, (writer, ct) => TfdsRecordPipeline.StreamAsync(plan, plan.CachePreprocessed, writer, progress, ct), cacheProgress, cancellationToken).ConfigureAwait(false);
            if (streamed.Stored)
            {
                logger.LogInformation("Decoded {Dataset} {Splits} from TFRecords into the cache {Path}: {Count} examples in {Ms} ms",
                    plan.Builder.FullName, string.Join(",", options.Splits), streamed.Path, plan.Total, sw.ElapsedMilliseconds);
                CacheLoadResult back = await entry.Cache.TryLoadAsync(entry.Key, entry.Fingerprint, MappedCache.ForLoad(options.Table),
                    new CacheExpectation(plan.StoredDType, plan.StoredShape, plan.ClassNames), null, cancellationToken).ConfigureAwait(false);
                if (back.IsHit)
                {
                    progress?.Report(new LoadProgress(LoadPhase.Done, back.Table!.Count, plan.Total));
                    return plan.Result(back.Table!, false, entry.Path, $"{cacheDetail}; stored {streamed.Path} ({streamed.Bytes} bytes)");
                }
                // Replaced or deleted by another process in between (cache clear): decode again, into memory.
                logger.LogWarning("{Path}: the cache file just written could not be read back ({Detail}); decoding again into memory", entry.Path, back.Detail);
                noStream = $"the cache file just written could not be read back ({back.Detail})";
            }
            else
            {
                noStream = $"the cache file could not be written ({streamed.Detail})";
                store = false;
            }
            cacheDetail = noStream;
        }

        // Fused (decode and preprocess in one worker) unless the decoded examples are what the cache must store.
        bool fuse = plan.Fused is not null && (plan.CachePreprocessed || entry is null);
        if (noStream is not null) LoadMemory.CheckFits(plan, fuse, noStream, TodoFor(plan, entry, preprocess, store));
        ExampleTable table;
        try
        {
            table = await TfdsRecordPipeline.DecodeAsync(plan, fuse, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (OutOfMemoryException e) when (e is not InsufficientMemoryException)
        {
            // The estimate above said it fits, but the heap ran out (fragmentation, other allocations): say so plainly.
            throw new InsufficientMemoryException($"{plan.Builder.FullName} [{string.Join(", ", options.Splits)}]: the process ran out of memory while decoding " +
                $"the table into memory ({plan.Total} examples, about {LoadMemory.Estimate(plan, fuse) >> 20} MiB estimated, {LoadMemory.Available() >> 20} MiB left now). " +
                $"It is built in memory because {noStream}. To load it: {TodoFor(plan, entry, preprocess, store)}; or select fewer examples; or give the process more memory.", e);
        }
        logger.LogInformation("Decoded {Dataset} {Splits} from TFRecords: {Count} examples in {Ms} ms",
            plan.Builder.FullName, string.Join(",", options.Splits), table.Count, sw.ElapsedMilliseconds);

        string? cachePath = null;
        if (entry is not null && store)
        {
            cachePath = entry.Path;
            progress?.Report(new LoadProgress(LoadPhase.StoringCache, 0, plan.Total, Detail: cachePath));
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var cacheProgress = progress is null ? null : new CacheProgressAdapter(progress, plan.Total);
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
        progress?.Report(new LoadProgress(LoadPhase.Done, table.Count, plan.Total));
        return plan.Result(table, false, cachePath, cacheDetail);
    }

    /// <summary>Why this load cannot stream its table to the cache file (a clause for messages), or null when it can.</summary>
    private static string? WhyNotStreamed(LoadPlan plan, TfdsCacheEntry? entry, IExamplePreprocessor? preprocess)
    {
        if (entry is null) return "caching is off (TfdsLoadOptions.UseCache is false or SAMPLERS_NO_CACHE is set), and the streamed table is the cache file";
        if (preprocess is not null && !plan.CachePreprocessed)
            return "the preprocess declares no identity (IExamplePreprocessor.Identity), so the cache holds the decoded examples and the preprocess runs on the whole table in memory";
        if (Array.Exists(plan.StoredShape, d => d < 0))
            return $"its examples are ragged (shape [{string.Join(", ", plan.StoredShape)}]) and a streamed cache file holds one fixed shape";
        if (plan.Total == 0) return "it has no examples";
        return null;
    }

    /// <summary>What the user can change so the load streams (a clause for messages).</summary>
    private static string TodoFor(LoadPlan plan, TfdsCacheEntry? entry, IExamplePreprocessor? preprocess, bool storeWorks)
    {
        if (entry is null) return "turn the cache on (TfdsLoadOptions.UseCache, SAMPLERS_NO_CACHE unset): a fixed-shape table is then streamed to the cache file and mapped";
        if (!storeWorks) return "make the cache directory writable, or choose another (TfdsLoadOptions.CacheDir or SAMPLERS_CACHE_DIR)";
        if (preprocess is not null && !plan.CachePreprocessed)
            return "give the preprocess an identity (IExamplePreprocessor.Identity; the built-in ImagePreprocessing ones have one), so its output is streamed to the cache file and mapped";
        if (Array.Exists(plan.StoredShape, d => d < 0))
            return "add a preprocess with an identity that gives every example one shape (e.g. ImagePreprocessing.Resize(224, 224)), so the resized table is streamed to the cache file and mapped";
        return "load it again (the cache file may have been replaced meanwhile)";
    }

    private static Task<ExampleTable> ApplyAsync(ExampleTable table, IExamplePreprocessor preprocess, TfdsLoadOptions options, CancellationToken ct) =>
        Task.Run(() => Preprocessing.Apply(table, preprocess, options.ChunkBytes, ct), ct);

    /// <summary>The split list as one cache-key string: the entries joined by <c>,</c> (a <c>+</c> inside an entry
    /// interleaves while a list concatenates, so the two must not collide). Specs need no further normalising: the
    /// catalog refuses whitespace, and a different spelling of the same rows only costs a second cache file.</summary>
    internal static string NormalizeSplits(IReadOnlyList<string> splits) => string.Join(",", splits);

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
