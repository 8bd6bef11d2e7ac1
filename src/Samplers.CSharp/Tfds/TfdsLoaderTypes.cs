using Microsoft.Extensions.Logging;
using Samplers.Cache;
using Samplers.Tfds;

namespace Samplers.Tfds;

/// <summary>What <see cref="TfdsLoader.LoadAsync"/> loads and how.</summary>
/// <remarks>Python names: <c>dataset_name</c>, <c>x_key</c>, <c>y_key</c>, <c>splits</c> (of the reference's
/// <c>TFDatasetMultiShotMemorySampler</c>); the rest are ours.</remarks>
public sealed record TfdsLoadOptions
{
    /// <summary>The dataset: <c>name</c>, <c>name:1.2.3</c>, <c>name/config</c> or <c>name/config:1.*.*</c>.</summary>
    public required string DatasetName { get; init; }

    /// <summary>The TFDS data directory; null uses <c>TFDS_DATA_DIR</c>, else <c>~/tensorflow_datasets</c>. A location in
    /// object storage, <c>s3://bucket/prefix</c>, needs the <c>Samplers.S3</c> package: the dataset's files for the
    /// requested splits are copied (resumable, verified) into a local folder (<see cref="Storage.ObjectStoreOptions.CopyDir"/>)
    /// once, then loaded from there; see docs/OBJECT_STORAGE.md.</summary>
    public string? DataDir { get; init; }

    /// <summary>How to reach the object store when <see cref="DataDir"/> is <c>s3://...</c> (endpoint, region, profile,
    /// anonymous access, retries, where the local copy goes); null uses the defaults (<c>AWS_ENDPOINT_URL</c>, the SDK's
    /// credential chain).</summary>
    public Storage.ObjectStoreOptions? ObjectStore { get; init; }

    /// <summary>Split specs loaded one by one and concatenated in this order (default train then test). Each entry
    /// accepts the TFDS slicing syntax and is read as its own TFDS dataset (its own interleaved read order).</summary>
    public IReadOnlyList<string> Splits { get; init; } = ["train", "test"];

    /// <summary>The feature holding the examples (<c>x_key</c>); any numeric feature (Image, Tensor, ClassLabel, BBox).</summary>
    public string XKey { get; init; } = "image";

    /// <summary>The feature holding the labels (<c>y_key</c>); a scalar ClassLabel or integer Tensor.</summary>
    public string YKey { get; init; } = "label";

    /// <summary>False skips the Parquet cache: always read the TFRecords, write no cache file.</summary>
    public bool UseCache { get; init; } = true;

    /// <summary>The cache directory; null uses <c>SAMPLERS_CACHE_DIR</c>, else the platform cache folder
    /// (<see cref="ParquetCache.ResolveDirectory"/>).</summary>
    public string? CacheDir { get; init; }

    /// <summary>Threads that parse and decode records; 0 or less means <see cref="Environment.ProcessorCount"/>.</summary>
    public int MaxDegreeOfParallelism { get; init; }

    /// <summary>Where the loaded table keeps its examples (default <see cref="TableBacking.Auto"/>: mapped when a cache file
    /// exists and shapes are fixed, else in memory). <see cref="TableBacking.Mapped"/> reads them in place from the
    /// memory-mapped cache file (fixed shapes only; needs the cache); <see cref="TableBacking.Memory"/> reads every row into
    /// the process. After a TFRecord load that stored the cache, Mapped and Auto reopen the new file mapped. The TFDS
    /// sampler treats Auto as Memory when a <see cref="Preprocess"/> without an identity must run after the load (a declared one
    /// is cached preprocessed, with a fixed shape, and maps). See docs/MAPPED.md.</summary>
    public TableBacking Table { get; init; } = TableBacking.Auto;

    /// <summary>Size of one chunk of the table (default 1 GiB); datasets larger than one chunk span several.</summary>
    public long ChunkBytes { get; init; } = ExampleTable.DefaultChunkBytes;

    /// <summary>
    /// Applied once to every example as it is loaded (the reference's <c>preprocess_fn</c>); null keeps the decoded examples.
    /// The loader decodes and preprocesses each example in the same worker, so full-size pixels exist only for the examples
    /// in flight, and <see cref="TfdsLoadResult.Table"/> holds the preprocessed examples.
    /// </summary>
    /// <remarks>When the preprocess declares an <see cref="IExamplePreprocessor.Identity"/> (the built-in resizes, crops and
    /// normalisations do), the Parquet cache stores the preprocessed table under a key that includes it, and a later load
    /// reads that (small) table instead of decoding again. Without an identity (user code cannot be fingerprinted) the cache
    /// keeps the decoded examples and the preprocess runs after every load, as before. See docs/CACHE.md.</remarks>
    public IExamplePreprocessor? Preprocess { get; init; }

    /// <summary>
    /// With a <see cref="Preprocess"/> that starts with <see cref="Imaging.ImagePreprocessing.Resize"/>: decode a uint8 JPEG that is at
    /// least twice the target size on both sides at 1/2, 1/4 or 1/8 scale first (libjpeg-turbo's DCT scaling; the smallest
    /// scale still at least the target size), then resize the rest. Several times faster for large photos, but the pixels
    /// differ from a full decode (a fraction of a level on average, much more at hard edges: docs/IMAGES.md), so it is off by
    /// default. Part of the cache key.
    /// </summary>
    public bool ReducedJpegDecode { get; init; }

    /// <summary>The most pixels (height x width) one encoded image may declare; larger images are refused from their
    /// header, before any pixel memory is allocated (a decompression-bomb guard, as PIL's). Default
    /// <see cref="Imaging.ImageDecoder.DefaultMaxPixels"/> (89,478,485, PIL's limit); raise it for huge images.</summary>
    public long MaxImagePixels { get; init; } = Imaging.ImageDecoder.DefaultMaxPixels;

    /// <summary>Receives cache hits/misses, store failures and a summary line per load; null logs nothing.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>
    /// Fetches an absent dataset. The default, <see cref="TfdsLoader.DownloadFromBucket"/>(), fetches TFDS's prepared files
    /// from its public bucket (or <c>SAMPLERS_TFDS_BASE_URL</c>), as the reference's <c>tfds.load</c> downloads a missing
    /// dataset; null never touches the network (an absent dataset is then an error).
    /// </summary>
    /// <remarks>Only an absent dataset, config, version or shard triggers it (a dataset on disk is never fetched again):
    /// the loader calls it once and resolves again. When it cannot fetch the dataset either (not published, or the bucket
    /// unreachable; neither is retried), the load fails at once with a <see cref="DatasetNotFoundException"/> that lists the
    /// datasets present in the data directory, the download's error as its inner exception.</remarks>
    public TfdsDownloadHandler? Download { get; init; } = TfdsLoader.DownloadFromBucket();
}

/// <summary>Fetches an absent dataset into <see cref="TfdsDownloadRequest.DataDir"/>; see <see cref="TfdsLoadOptions.Download"/>.</summary>
/// <param name="request">What is missing and where it should go.</param>
/// <param name="progress">The load's progress sink (report <see cref="LoadPhase.Downloading"/>), or null.</param>
/// <param name="cancellationToken">Cancels the download.</param>
public delegate Task TfdsDownloadHandler(TfdsDownloadRequest request, IProgress<LoadProgress>? progress, CancellationToken cancellationToken);

/// <summary>An absent dataset the loader asks <see cref="TfdsLoadOptions.Download"/> to fetch.</summary>
/// <param name="DataDir">The resolved data directory the dataset must appear in.</param>
/// <param name="DatasetName">The name as the caller gave it (may carry a config and a version or wildcard).</param>
/// <param name="Splits">The split specs the load needs (so only their shards need fetching).</param>
/// <param name="NotFound">The catalog's error, which says what exactly is absent.</param>
public sealed record TfdsDownloadRequest(string DataDir, string DatasetName, IReadOnlyList<string> Splits, DatasetNotFoundException NotFound);

/// <summary>The phases a load reports through <see cref="IProgress{T}"/>.</summary>
public enum LoadPhase
{
    /// <summary>Finding the dataset and resolving the split specs.</summary>
    Resolving = 0,
    /// <summary>The download hook is fetching the dataset.</summary>
    Downloading = 1,
    /// <summary>Checking and reading the Parquet cache; examples count rows read.</summary>
    ReadingCache = 2,
    /// <summary>Reading TFRecords and decoding examples; examples and bytes count what is done.</summary>
    Decoding = 3,
    /// <summary>Writing the Parquet cache after a complete load.</summary>
    StoringCache = 4,
    /// <summary>The load finished; the table is complete.</summary>
    Done = 5,
}

/// <summary>A progress report of a load.</summary>
/// <param name="Phase">What is happening.</param>
/// <param name="ExamplesDone">Examples finished in this phase.</param>
/// <param name="ExamplesTotal">Examples the load produces (0 while unknown).</param>
/// <param name="BytesRead">Decoding: TFRecord bytes read so far (records skipped by a slice included).</param>
/// <param name="BytesTotal">Decoding: bytes of the shard files the selection touches (an upper bound for sliced reads).</param>
/// <param name="Detail">A short human-readable note (dataset, cache file, miss reason).</param>
public sealed record LoadProgress(LoadPhase Phase, long ExamplesDone, long ExamplesTotal, long BytesRead = 0, long BytesTotal = 0, string Detail = "");

/// <summary>The outcome of <see cref="TfdsLoader.LoadAsync"/>.</summary>
/// <param name="Table">The examples (from <c>x_key</c>, after <see cref="TfdsLoadOptions.Preprocess"/> when one is set), labels
/// (from <c>y_key</c>), TFDS ids and class names, in the order of the split list, each split in TFDS's read order.</param>
/// <param name="XSpec">The <c>x_key</c> feature as <c>features.json</c> declares it.</param>
/// <param name="YSpec">The <c>y_key</c> feature.</param>
/// <param name="Builder">The resolved dataset version directory.</param>
/// <param name="Selections">One resolved selection per split entry, in order.</param>
/// <param name="FromCache">True when the table came from the Parquet cache (the preprocessed table, when the preprocess
/// declares an identity; else the decoded one, preprocessed after reading).</param>
/// <param name="CachePath">The cache file read or written; null when caching is off.</param>
/// <param name="CacheDetail">Why the cache missed, or what the store did (empty when caching is off).</param>
public sealed record TfdsLoadResult(
    ExampleTable Table,
    FeatureSpec XSpec,
    FeatureSpec YSpec,
    DatasetBuilderDir Builder,
    IReadOnlyList<SplitSelection> Selections,
    bool FromCache,
    string? CachePath,
    string CacheDetail)
{
    /// <summary>The label names (position = label) from the <c>y_key</c> ClassLabel; empty for a plain integer Tensor.</summary>
    public IReadOnlyList<string> ClassNames => Table.ClassNames;
}
