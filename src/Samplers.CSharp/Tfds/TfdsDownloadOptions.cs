namespace Samplers.Tfds;

/// <summary>
/// What <see cref="TfdsDownloader"/> fetches and how. Only <see cref="DatasetName"/> is required; the rest has
/// defaults suited to the public TFDS bucket.
/// </summary>
/// <param name="DatasetName"><c>name[/config][:version]</c>, e.g. <c>mnist:3.0.1</c> or <c>imagenette/320px-v2:1.*.*</c>.
/// Without an exact version the bucket is listed and the highest (matching) version is taken.</param>
public sealed record TfdsDownloadOptions(string DatasetName)
{
    /// <summary>The data directory to write into; null for <c>TFDS_DATA_DIR</c> / <c>~/tensorflow_datasets</c>
    /// (<see cref="Samplers.Tfds.DataDirectory.Resolve(string?)"/>).</summary>
    public string? DataDir { get; init; }

    /// <summary>The bucket's base URL; null for <c>SAMPLERS_TFDS_BASE_URL</c>, else <see cref="TfdsDownloader.DefaultBaseUrl"/>.
    /// Objects are read at <c>&lt;base&gt;/datasets/&lt;name&gt;/[&lt;config&gt;/]&lt;version&gt;/&lt;file&gt;</c>.</summary>
    public string? BaseUrl { get; init; }

    /// <summary>Split specs whose shards to fetch (<c>train</c>, <c>test[:10%]</c>, <c>train+test</c>; a slice still
    /// fetches its whole split); null or empty fetches every split.</summary>
    public IReadOnlyList<string>? Splits { get; init; }

    /// <summary>How many files are fetched at once (at least 1).</summary>
    public int MaxDegreeOfParallelism { get; init; } = 4;

    /// <summary>How long to wait for a response's headers, and for each further piece of its body, before the attempt
    /// counts as timed out (a slow but moving download never times out).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The slowest transfer rate accepted, in bytes per second, measured over each <see cref="Timeout"/> window
    /// of a body: a transfer that stays below it for a whole window is abandoned like a stalled one (and retried), so a
    /// server trickling one byte at a time cannot hold a download forever. 0 disables the rule. Default 1024 (1 KiB/s).</summary>
    public long MinBytesPerSecond { get; init; } = 1024;

    /// <summary>How many times a failed request is retried (5xx, 408, 429, connection resets, cut responses,
    /// timeouts, a file that fails verification). 0 means one attempt only.</summary>
    public int Retries { get; init; } = 4;

    /// <summary>The wait before the first retry; it doubles for each further one (capped at 30 s), plus up to 25% jitter.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Fetch the metadata (dataset_info.json, features.json, labels files) and no shard: remote access reads the
    /// shards in place.</summary>
    internal bool MetadataOnly { get; init; }
}

/// <summary>Progress of a download, reported through <see cref="IProgress{T}"/> as bytes arrive and files complete.</summary>
/// <param name="BytesDone">Bytes on disk for the files of this download so far (bytes kept from an interrupted earlier
/// attempt count as done).</param>
/// <param name="BytesExpected">The sum of the sizes of the files started so far, as the server announced them; it grows
/// as files start (dataset_info.json does not give file sizes), so it is a lower bound until every file has started.</param>
/// <param name="FilesDone">Files fetched and verified (a labels file the bucket does not have counts as done).</param>
/// <param name="FilesTotal">Files this download needs; 0 until <c>dataset_info.json</c> and <c>features.json</c> are read.</param>
/// <param name="CurrentFile">The file the report is about, relative to the version directory.</param>
public readonly record struct DownloadProgress(long BytesDone, long BytesExpected, int FilesDone, int FilesTotal, string CurrentFile);
