using Microsoft.Extensions.Logging;
using Samplers.Cache;

namespace Samplers.Tfds;

/// <summary>
/// The Parquet cache file that <see cref="TfdsLoader.LoadAsync"/> reads and writes for a set of load options, found
/// without loading anything: for tools that show, verify or clear the cache (the CLI's <c>cache</c> command).
/// </summary>
/// <remarks>The loader builds its key and source fingerprint through the same code (an internal factory), so the two
/// cannot drift; a test checks that <see cref="Path"/> equals the loader's <see cref="TfdsLoadResult.CachePath"/>.</remarks>
internal sealed class TfdsCacheEntry
{
    private TfdsCacheEntry(ParquetCache cache, CacheKey key, SourceFingerprint fingerprint, DatasetBuilderDir builder)
    {
        Cache = cache; Key = key; Fingerprint = fingerprint; Builder = builder; Path = cache.GetPath(key);
    }

    /// <summary>The cache (directory and settings).</summary>
    public ParquetCache Cache { get; }
    /// <summary>The cache key of the selection.</summary>
    public CacheKey Key { get; }
    /// <summary>The fingerprint of the current source files.</summary>
    public SourceFingerprint Fingerprint { get; }
    /// <summary>The resolved dataset.</summary>
    public DatasetBuilderDir Builder { get; }
    /// <summary>The cache file's full path (it may not exist).</summary>
    public string Path { get; }
    /// <summary>True when the cache file exists.</summary>
    public bool Exists => File.Exists(Path);
    /// <summary>The file's size in bytes, or 0 when absent.</summary>
    public long Bytes => Exists ? new FileInfo(Path).Length : 0;

    /// <summary>Finds the cache file of <paramref name="options"/>; null when caching is off (options or <c>SAMPLERS_NO_CACHE</c>).</summary>
    /// <exception cref="DatasetNotFoundException">The dataset, a split or a shard is absent (the catalog's error).</exception>
    /// <exception cref="DataFormatException">Bad metadata (the catalog's error).</exception>
    /// <exception cref="ArgumentException">A malformed name or split spec.</exception>
    public static TfdsCacheEntry? Resolve(TfdsLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ParquetCache? cache = OpenCache(options, options.Logger);
        if (cache is null) return null;
        var builder = Catalog.Open(options.DataDir, options.DatasetName);
        var selections = options.Splits.Select(builder.Select).ToArray();
        return For(cache, builder, selections, options.Splits, options.XKey, options.YKey, PreprocessKey(options, builder.FindFeature(options.XKey)));
    }

    /// <summary>What the cache key records of the preprocess: "" when the cache holds decoded examples (no preprocess, or
    /// one without an identity); else the identity, plus <c>;jpeg=reduced</c> when reduced JPEG decoding can change the
    /// decoded pixels the preprocess sees.</summary>
    internal static string PreprocessKey(TfdsLoadOptions options, FeatureSpec? xSpec)
    {
        if (options.Preprocess?.Identity is not { } identity) return "";
        bool reduced = options.ReducedJpegDecode && xSpec is { Kind: FeatureKind.Image } && Imaging.ReducedJpeg.TargetOf(options.Preprocess) is not null;
        return reduced ? $"{identity};jpeg=reduced" : identity.ToString();
    }

    /// <summary>The decoder part of the cache key: for an image feature that may hold JPEG files (declared jpeg, or not
    /// declared), the JPEG codec's <see cref="Imaging.IImageCodec.CacheIdentity"/> as <c>jpeg=...</c>; else empty. PNG is
    /// lossless and decoded by the library itself, so a PNG feature's key is the same on every machine.</summary>
    internal static string DecoderKey(FeatureSpec? xSpec)
    {
        if (xSpec is not { Kind: FeatureKind.Image } || string.Equals(xSpec.EncodingFormat, "png", StringComparison.OrdinalIgnoreCase)) return "";
        string id = Imaging.ImageCodecs.JpegCacheIdentity();
        return id.Length == 0 ? "" : "jpeg=" + id;
    }

    /// <summary>The cache of <paramref name="options"/>, or null when caching is off (options or <c>SAMPLERS_NO_CACHE</c>).</summary>
    internal static ParquetCache? OpenCache(TfdsLoadOptions options, ILogger? logger)
    {
        if (!options.UseCache) return null;
        var cache = new ParquetCache(new ParquetCacheOptions { Directory = options.CacheDir, ChunkBytes = options.ChunkBytes }, logger);
        return cache.Enabled ? cache : null;
    }

    /// <summary>The one place the cache key and source fingerprint are computed (the loader calls it too, so the CLI's
    /// view of the cache can never drift from what the loader reads and writes).</summary>
    internal static TfdsCacheEntry For(ParquetCache cache, DatasetBuilderDir builder, IReadOnlyList<SplitSelection> selections,
        IReadOnlyList<string> splits, string xKey, string yKey, string preprocessKey = "")
    {
        var key = new CacheKey(builder.DataDir, builder.Name, builder.Config, builder.Version, TfdsLoader.NormalizeSplits(splits), xKey, yKey, preprocessKey,
            DecoderKey(builder.FindFeature(xKey)));
        var shardPaths = selections.SelectMany(s => s.Instructions.Select(i => i.Path)).Distinct(StringComparer.Ordinal);
        string featuresJson = System.IO.Path.Combine(builder.Path, "features.json");
        var fingerprint = SourceFingerprint.Compute(shardPaths, builder.Info.FilePath, File.Exists(featuresJson) ? featuresJson : null);
        return new TfdsCacheEntry(cache, key, fingerprint, builder);
    }

    /// <summary>Re-reads the file and checks it against the current source (metadata, counts, payload checksum).</summary>
    public Task<CacheLoadResult> VerifyAsync(CancellationToken cancellationToken = default) => Cache.VerifyAsync(Key, Fingerprint, null, cancellationToken);

    /// <summary>Deletes the cache file; returns false when there was none.</summary>
    public bool Delete()
    {
        Samplers.Cache.VerifyStamp.Delete(Path); // the sidecar goes with it (a stamp alone is harmless, but litter)
        if (!Exists) return false;
        File.Delete(Path);
        return true;
    }

    /// <summary>After a TFRecord load stored the cache: with Mapped or Auto, the new file opened mapped (the decoded table
    /// becomes garbage), so the first run and later runs use the same backing; otherwise, or if it cannot be mapped, <paramref name="table"/>.</summary>
    internal async Task<ExampleTable> ReopenMappedAsync(ExampleTable table, TableBacking backing,
        Microsoft.Extensions.Logging.ILogger logger, CancellationToken cancellationToken)
    {
        if (backing == TableBacking.Memory || table.IsRagged) return table;
        CacheLoadResult r = await Cache.TryLoadAsync(Key, Fingerprint, TableBacking.Auto, null, null, cancellationToken).ConfigureAwait(false);
        if (r.Table is { Backing: TableBacking.Mapped } mapped && mapped.Count == table.Count) return mapped;
        Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(logger, "{Path}: the cache was stored but could not be reopened mapped ({Detail}); keeping the table in memory", Path, r.Detail);
        return table;
    }
}
