using Parquet;

namespace Samplers.Cache;

/// <summary>Settings of a <see cref="ParquetCache"/>.</summary>
internal sealed record ParquetCacheOptions
{
    /// <summary>The cache directory; null means <c>SAMPLERS_CACHE_DIR</c>, else the platform cache folder (see <see cref="ParquetCache.ResolveDirectory"/>).</summary>
    public string? Directory { get; init; }

    /// <summary>False turns caching off: loads always miss with <see cref="CacheMissReason.Disabled"/> and stores do nothing.
    /// The environment variable <c>SAMPLERS_NO_CACHE=1</c> does the same.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Compression of the example column. None by default: it reads fastest (see docs/CACHE.md for the measurements).</summary>
    public CompressionMethod Compression { get; init; } = CompressionMethod.None;

    /// <summary>Target payload bytes per Parquet row group (default 4 MiB: small groups keep the reader's per-value buffers short-lived; see docs/CACHE.md). Row groups are read in parallel.</summary>
    public long RowGroupBytes { get; init; } = 4L << 20;

    /// <summary>Temporary files of killed writers older than this are deleted (default one hour).</summary>
    public TimeSpan StaleTempAge { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Chunk size of the tables this cache builds (default <see cref="ExampleTable.DefaultChunkBytes"/>).</summary>
    public long ChunkBytes { get; init; } = ExampleTable.DefaultChunkBytes;
}

/// <summary>Why a load did not come from the cache.</summary>
internal enum CacheMissReason
{
    /// <summary>Caching is turned off.</summary>
    Disabled = 0,
    /// <summary>No cache file exists for the key.</summary>
    NotFound = 1,
    /// <summary>The source changed (shards, sizes, times, <c>dataset_info.json</c> or <c>features.json</c>).</summary>
    SourceChanged = 2,
    /// <summary>The file was written with another cache schema version.</summary>
    SchemaVersionChanged = 3,
    /// <summary>The file belongs to another key (a file-name hash collision or a copied file).</summary>
    KeyMismatch = 4,
    /// <summary>The dtype, shape or class names differ from what the caller expects.</summary>
    MetadataMismatch = 5,
    /// <summary>The file is truncated, corrupt, foreign or its payload checksum does not match.</summary>
    Corrupt = 6,
    /// <summary>The file could not be read (permissions, IO error).</summary>
    Unreadable = 7,
    /// <summary>A mapped table was asked for, but the valid file cannot be mapped (ragged examples, compressed pages);
    /// it is not rebuilt: read it into memory instead (docs/MAPPED.md).</summary>
    NotMappable = 8,
}

/// <summary>What the caller expects of a cached table; null members are not checked.</summary>
/// <param name="DType">The expected element type.</param>
/// <param name="Shape">The expected declared example shape (-1 for ragged dimensions).</param>
/// <param name="ClassNames">The expected class names.</param>
internal sealed record CacheExpectation(DType? DType = null, int[]? Shape = null, IReadOnlyList<string>? ClassNames = null);

/// <summary>The phases a cache reports through <see cref="IProgress{T}"/>.</summary>
internal enum CachePhase
{
    /// <summary>Reading the footer and metadata of a cache file.</summary>
    Checking = 0,
    /// <summary>Reading examples; <see cref="CacheProgress.Completed"/> counts examples.</summary>
    Reading = 1,
    /// <summary>The load came from the cache.</summary>
    Hit = 2,
    /// <summary>The load must come from the source; <see cref="CacheProgress.Reason"/> says why.</summary>
    Miss = 3,
    /// <summary>Writing examples; <see cref="CacheProgress.Completed"/> counts examples.</summary>
    Writing = 4,
    /// <summary>A cache file was written and published.</summary>
    Stored = 5,
    /// <summary>Writing failed (read-only or full directory, ...); the load goes on without a cache.</summary>
    StoreFailed = 6,
}

/// <summary>A progress report of the cache.</summary>
/// <param name="Phase">What is happening.</param>
/// <param name="Path">The cache file concerned.</param>
/// <param name="Completed">Examples done in this phase.</param>
/// <param name="Total">Examples in this phase (0 when unknown).</param>
/// <param name="Reason">For <see cref="CachePhase.Miss"/>, why.</param>
internal sealed record CacheProgress(CachePhase Phase, string Path, long Completed, long Total, CacheMissReason? Reason = null);

/// <summary>The outcome of <see cref="ParquetCache.TryLoadAsync(CacheKey, SourceFingerprint, TableBacking, CacheExpectation?, IProgress{CacheProgress}?, CancellationToken)"/>: a table (hit) or a reason (miss).</summary>
/// <param name="Table">The cached table on a hit; null on a miss.</param>
/// <param name="Reason">Why it missed; null on a hit.</param>
/// <param name="Path">The cache file path (empty when caching is disabled).</param>
/// <param name="Detail">A sentence for people: what was found and expected.</param>
internal sealed record CacheLoadResult(ExampleTable? Table, CacheMissReason? Reason, string Path, string Detail)
{
    /// <summary>True when <see cref="Table"/> came from the cache.</summary>
    public bool IsHit => Table is not null;
}

/// <summary>The outcome of <see cref="ParquetCache.StoreAsync"/>. A failed store is not an error of the load.</summary>
/// <param name="Stored">True when the cache file was written and published.</param>
/// <param name="Path">The cache file path (empty when caching is disabled).</param>
/// <param name="Detail">On failure, what went wrong.</param>
/// <param name="Bytes">Size of the file written.</param>
internal sealed record CacheStoreResult(bool Stored, string Path, string Detail, long Bytes = 0);
