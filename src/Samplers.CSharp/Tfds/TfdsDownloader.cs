using System.Net;
using System.Text;
using System.Xml.Linq;
using Samplers.Core.Tfds;
using Samplers.Core;

namespace Samplers.Tfds;

/// <summary>
/// Fetches a prepared TFDS dataset (the files <c>tfds build</c> writes) from a bucket laid out like TFDS's public one
/// (TFDS_FORMAT.md 10) into a data directory, so that <see cref="Catalog"/> and the loader read it like any local copy.
/// </summary>
/// <remarks>
/// <para>Order: <c>dataset_info.json</c>, <c>features.json</c>, then in parallel the ClassLabel names files (404 is
/// normal) and exactly the shards the dataset info names for the requested splits. Every shard is read back with
/// CRC checks and its record count compared with <c>shardLengths</c>; lengths are checked against
/// <c>Content-Length</c>/<c>Content-Range</c> and, where the server publishes them, checksums (<c>x-goog-hash</c>).</para>
/// <para>Files go to <c>&lt;version&gt;.incomplete-download</c> beside the version directory (never a valid version name,
/// so no reader takes it for a dataset); an interrupted file stays there as <c>&lt;file&gt;.part</c> and the next attempt,
/// in this call or a later one, resumes it with <c>Range: bytes=N-</c>. The folder is renamed to the version
/// directory only when everything is verified. A lock file <c>&lt;version&gt;.incomplete-download.lock</c> serialises
/// processes downloading the same version: the second waits, then finds the first's result.</para>
/// <para>If the version directory exists but lacks shards of a requested split (an earlier download of other
/// splits), only those shards are fetched, verified, and moved in one by one.</para>
/// <para>Without an exact version the bucket is listed (XML <c>ListBucketResult</c>, paged) and the highest
/// matching version is taken, as the catalog does for local directories.</para>
/// </remarks>
public static class TfdsDownloader
{
    /// <summary>TFDS's public bucket over HTTPS (TFDS_FORMAT.md 10).</summary>
    public const string DefaultBaseUrl = "https://storage.googleapis.com/tfds-data";

    /// <summary>The environment variable that overrides the base URL when the request gives none.</summary>
    public const string BaseUrlEnvironmentVariable = "SAMPLERS_TFDS_BASE_URL";

    /// <summary>Suffix of the temporary folder beside the version directory (and, plus <c>.lock</c>, of the lock file).</summary>
    public const string TemporarySuffix = ".incomplete-download";

    /// <summary>The base URL to use: <paramref name="baseUrl"/> when given, else <c>SAMPLERS_TFDS_BASE_URL</c>, else
    /// <see cref="DefaultBaseUrl"/>; without a trailing slash.</summary>
    /// <exception cref="ArgumentException">The URL is not an absolute http or https URL, has a query or fragment, or
    /// carries credentials (user info).</exception>
    public static string ResolveBaseUrl(string? baseUrl = null)
    {
        string? env = Environment.GetEnvironmentVariable(BaseUrlEnvironmentVariable);
        string chosen = !string.IsNullOrWhiteSpace(baseUrl) ? baseUrl.Trim()
            : !string.IsNullOrWhiteSpace(env) ? env.Trim() : DefaultBaseUrl;
        // The CLI rewrites the property's name into its option's (--base-url).
        string from = !string.IsNullOrWhiteSpace(baseUrl) ? "the base URL (TfdsDownloadOptions.BaseUrl)"
            : !string.IsNullOrWhiteSpace(env) ? BaseUrlEnvironmentVariable : "the default base URL";
        string shown = RedactUserInfo(chosen);
        if (!Uri.TryCreate(chosen, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"{from} '{shown}' is not an absolute http:// or https:// URL; expected e.g. {DefaultBaseUrl}.", nameof(baseUrl));
        // Credentials in the URL are never sent (the downloader sends no Authorization header) and would be printed
        // in every error message naming a URL, so they are refused, without printing them.
        if (uri.UserInfo.Length > 0 || shown != chosen)
            throw new ArgumentException(
                $"{from} '{shown}' carries credentials (user info before '@'); they are not supported: the downloader sends no " +
                "Authorization header and would show them in error messages. Remove them; for a private bucket use a mirror or proxy that needs none.", nameof(baseUrl));
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
            throw new ArgumentException($"{from} '{shown}' has a query or fragment; expected the bucket's address only, e.g. {DefaultBaseUrl}.", nameof(baseUrl));
        return chosen.TrimEnd('/');
    }

    /// <summary><paramref name="url"/> with any user info (<c>user:secret@</c>) in its authority replaced by
    /// <c>***@</c>; for every message that prints a URL the user gave. Works on strings that do not parse as URLs.</summary>
    internal static string RedactUserInfo(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        int start = scheme < 0 ? 0 : scheme + 3;
        int end = url.IndexOfAny(['/', '?', '#'], start);
        if (end < 0) end = url.Length;
        if (end <= start) return url;
        int at = url.LastIndexOf('@', end - 1, end - start);
        return at < 0 ? url : string.Concat(url.AsSpan(0, start), "***", url.AsSpan(at));
    }

    /// <summary>
    /// Downloads the dataset version of <paramref name="request"/> into its data directory (unless it is already there
    /// with the requested splits) and returns the version directory's full path.
    /// </summary>
    /// <param name="request">What to fetch and how.</param>
    /// <param name="progress">Receives bytes and files done; may be null.</param>
    /// <param name="cancellationToken">Stops the download; partial files stay in the temporary folder for a later resume.</param>
    /// <exception cref="ArgumentException">A bad request: null or malformed name (<see cref="SpecFormatException"/>), bad base URL,
    /// MaxDegreeOfParallelism &lt; 1, Timeout &lt;= 0, Retries or RetryDelay negative, a malformed split spec.</exception>
    /// <exception cref="DatasetNotFoundException">The bucket does not publish the dataset or version (404 on
    /// <c>dataset_info.json</c>; the message names the URL), no version matches, or a requested split does not exist.</exception>
    /// <exception cref="DownloadException">403, a server error or timeout that outlasted the retries, an HTML page, a wrong
    /// length, no network (the message names the base URL and suggests a prepared copy or a mirror).</exception>
    /// <exception cref="DataFormatException">A file arrived but failed verification (CRC, record count, checksum, JSON),
    /// or the dataset uses a file format this library does not read.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static async Task<string> DownloadAsync(TfdsDownloadOptions request, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(request);
        string baseUrl = ResolveBaseUrl(request.BaseUrl);
        var tracker = new ProgressTracker(progress);
        using var http = CreateClient(request);
        var fetcher = new HttpFetcher(http, request, baseUrl, tracker);
        return await DownloadFromAsync(request, fetcher, tracker, "datasets/", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The download from any source: <paramref name="layoutPrefix"/> goes before <c>name/[config/]version</c>
    /// (TFDS's bucket keeps its datasets under <c>datasets/</c>; a data directory in object storage has none).</summary>
    internal static async Task<string> DownloadFromAsync(TfdsDownloadOptions request, IDatasetSource fetcher, ProgressTracker tracker, string layoutPrefix, CancellationToken cancellationToken)
    {
        Validate(request);
        var spec = DatasetNames.Parse(request.DatasetName);
        string baseUrl = fetcher.BaseUrl;
        string dataDir = DataDirectory.Resolve(request.DataDir);
        string remoteBase = layoutPrefix + spec.Name + (spec.HasConfig ? "/" + spec.Config : "");
        string version = spec.IsExactVersion ? spec.Version
            : await ResolveVersionAsync(fetcher, baseUrl, remoteBase, spec, cancellationToken).ConfigureAwait(false);
        string versionUrl = baseUrl + "/" + string.Join('/', (remoteBase + "/" + version).Split('/').Select(Uri.EscapeDataString));
        string parent = spec.HasConfig ? Path.Combine(dataDir, spec.Name, spec.Config) : Path.Combine(dataDir, spec.Name);
        string versionDir = Path.Combine(parent, version);
        string temp = Path.Combine(parent, version + TemporarySuffix);
        // Folders this call makes for a dataset or config the data directory does not have yet.
        string? madeRoot = Directory.Exists(Path.Combine(dataDir, spec.Name)) ? (Directory.Exists(parent) ? null : parent) : Path.Combine(dataDir, spec.Name);
        Directory.CreateDirectory(parent);

        string lockPath = temp + ".lock";
        using var held = await AcquireLockAsync(lockPath, cancellationToken).ConfigureAwait(false);
        bool failed = false;
        try
        {
            return await DownloadLockedAsync(request, fetcher, tracker, spec, baseUrl, version, versionUrl, versionDir, temp, held, madeRoot, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            failed = true;
            throw;
        }
        finally
        {
            // After success nothing is left beside the dataset: the lock file goes while still held, so a waiting
            // process creates a fresh one, then finds the complete version. After a failure it stays with the
            // temporary folder (a later run resumes).
            if (!failed) HttpFetcher.TryDelete(lockPath);
        }
    }

    private static async Task<string> DownloadLockedAsync(TfdsDownloadOptions request, IDatasetSource fetcher, ProgressTracker tracker, DatasetNameSpec spec,
        string baseUrl, string version, string versionUrl, string versionDir, string temp, FileStream held, string? madeRoot, CancellationToken cancellationToken)
    {
        if (Directory.Exists(versionDir))
            return await CompleteExistingAsync(request, fetcher, tracker, versionUrl, versionDir, temp, cancellationToken).ConfigureAwait(false);

        Directory.CreateDirectory(temp);
        string infoUrl = versionUrl + "/dataset_info.json";
        byte[] infoBytes;
        try
        {
            infoBytes = await fetcher.GetBytesAsync(infoUrl, BodyKind.Json, cancellationToken).ConfigureAwait(false)
                ?? throw DataHints.NotFound(
                    $"{infoUrl}: 404 Not Found: {spec.Name}{(spec.HasConfig ? "/" + spec.Config : "")} version {version} is not published in the bucket {baseUrl} " +
                    "(TFDS publishes only some datasets, and only some versions of them).",
                    [DataHints.CheckName("check the name and version"), DataHints.DataDir("prepare the dataset with TFDS and pass its data directory (TfdsLoadOptions.DataDir, or TFDS_DATA_DIR)")],
                    infoUrl, "dataset_info.json");
        }
        catch (Exception) when (madeRoot is not null)
        {
            // Nothing was fetched (not published, often a typo, or the bucket unreachable): leave the data directory as it
            // was, not holding an empty folder that the catalog would then report instead of listing the datasets present.
            held.Dispose();
            HttpFetcher.TryDelete(temp + ".lock");
            RemoveIfEmpty(madeRoot);
            throw;
        }
        var info = DatasetInfo.Parse(Encoding.UTF8.GetString(infoBytes), infoUrl);
        CheckInfo(info, infoUrl, spec, version);
        tracker.FileDone("dataset_info.json");

        string featuresUrl = versionUrl + "/features.json";
        byte[] featuresBytes = await fetcher.GetBytesAsync(featuresUrl, BodyKind.Json, cancellationToken).ConfigureAwait(false)
            ?? throw new DatasetNotFoundException(
                $"{featuresUrl}: 404 Not Found: this version has dataset_info.json but no features.json, so it was prepared by TFDS <= 3.2.1 and its schema cannot be read " +
                "without the dataset's Python code. Request a newer version, or prepare the dataset with TFDS 4 and pass its data directory (TfdsLoadOptions.DataDir, or TFDS_DATA_DIR).",
                featuresUrl, "features.json");
        var labels = FeaturesJson.LabelsFileNames(featuresBytes, featuresUrl);
        tracker.FileDone("features.json");

        var shards = request.MetadataOnly ? [] : PlanShards(info, request, infoUrl);
        tracker.SetFilesTotal(2 + labels.Count + shards.Count);
        var files = labels.Select(l => new RemoteFile(l, -1, "", 0) { MaxBytes = MaxLabelsFileBytes }).Concat(shards).ToList();
        await FetchAllAsync(request, fetcher, tracker, versionUrl, temp, files, cancellationToken).ConfigureAwait(false);

        // Written last: the folder holds a dataset only once everything else is in it.
        WriteAtomically(Path.Combine(temp, "features.json"), featuresBytes);
        WriteAtomically(Path.Combine(temp, "dataset_info.json"), infoBytes);
        // The schema and labels files as the catalog will read them (label counts, duplicates).
        try
        {
            FeaturesJson.Load(temp);
        }
        catch (DataFormatException)
        {
            // A bad labels file must not be kept as "already fetched" for the next attempt.
            foreach (var l in labels) HttpFetcher.TryDelete(Path.Combine(temp, l));
            throw;
        }
        foreach (var part in Directory.EnumerateFiles(temp, "*.part", SearchOption.AllDirectories)) HttpFetcher.TryDelete(part);

        try
        {
            Directory.Move(temp, versionDir);
        }
        catch (IOException) when (File.Exists(Path.Combine(versionDir, "dataset_info.json")))
        {
            // Someone not using our lock (another tool) finished first; theirs is complete, ours is redundant.
            TryDeleteDirectory(temp);
        }
        return versionDir;
    }

    /// <summary>
    /// Returns the dataset as the catalog resolves it in the request's data directory, downloading it first when the
    /// dataset, config or version is absent there or a requested split's shards are missing. A local copy is used
    /// without any network access.
    /// </summary>
    /// <param name="request">The dataset and download settings (as for <see cref="DownloadAsync"/>).</param>
    /// <param name="progress">Receives bytes and files done; may be null.</param>
    /// <param name="cancellationToken">Stops the download.</param>
    /// <exception cref="ArgumentException">As <see cref="DownloadAsync"/>.</exception>
    /// <exception cref="DatasetNotFoundException">Neither local nor published (or, for a local dataset with configs, no config given).</exception>
    /// <exception cref="DownloadException">As <see cref="DownloadAsync"/>.</exception>
    /// <exception cref="DataFormatException">A local or downloaded file is malformed.</exception>
    public static Task<DatasetBuilderDir> EnsureAvailableAsync(TfdsDownloadOptions request, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default) =>
        EnsureAvailableAsync(request, (r, ct) => DownloadAsync(r, progress, ct), cancellationToken);

    /// <summary><see cref="EnsureAvailableAsync(TfdsDownloadOptions, IProgress{DownloadProgress}?, CancellationToken)"/> with
    /// the download given (from TFDS's bucket, or from an object store).</summary>
    internal static async Task<DatasetBuilderDir> EnsureAvailableAsync(TfdsDownloadOptions request, Func<TfdsDownloadOptions, CancellationToken, Task<string>> download, CancellationToken cancellationToken)
    {
        Validate(request);
        var spec = DatasetNames.Parse(request.DatasetName);
        DatasetBuilderDir? local = null;
        try
        {
            local = Catalog.Open(request.DataDir, request.DatasetName);
            var needed = SplitNames(local.Info, request, local.Info.FilePath);
            bool complete = request.MetadataOnly || needed.All(s =>
            {
                var paths = local.ShardPaths(s.Name);
                return paths.Where((p, i) => s.ShardLengths[i] > 0).All(File.Exists);
            });
            if (complete) return local;
        }
        catch (DatasetNotFoundException)
        {
            // Absent locally: download below.
        }
        // A local version with missing shards is completed; otherwise the downloader resolves the version (listing the
        // bucket when it is not exact).
        string name = local is not null ? local.FullName : request.DatasetName;
        string versionDir = await download(request with { DatasetName = name }, cancellationToken).ConfigureAwait(false);
        string version = Path.GetFileName(versionDir);
        string exact = spec.Name + (spec.HasConfig ? "/" + spec.Config : "") + ":" + version;
        return Catalog.Open(request.DataDir, exact);
    }

    private static void Validate(TfdsDownloadOptions request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrWhiteSpace(request.DatasetName, nameof(request) + "." + nameof(request.DatasetName));
        ArgumentOutOfRangeException.ThrowIfLessThan(request.MaxDegreeOfParallelism, 1, nameof(request) + "." + nameof(request.MaxDegreeOfParallelism));
        if (request.Timeout <= TimeSpan.Zero && request.Timeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(request) + "." + nameof(request.Timeout), request.Timeout, "The timeout must be positive (or Timeout.InfiniteTimeSpan).");
        ArgumentOutOfRangeException.ThrowIfNegative(request.Retries, nameof(request) + "." + nameof(request.Retries));
        ArgumentOutOfRangeException.ThrowIfNegative(request.MinBytesPerSecond, nameof(request) + "." + nameof(request.MinBytesPerSecond));
        if (request.RetryDelay < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(request) + "." + nameof(request.RetryDelay), request.RetryDelay, "The retry delay cannot be negative.");
        // Malformed split specs fail before any request is made.
        foreach (var s in request.Splits ?? [])
        {
            if (s is null) throw new ArgumentNullException(nameof(request) + "." + nameof(request.Splits), "A split spec is null.");
            Splits.Parse(s);
        }
    }

    private static HttpClient CreateClient(TfdsDownloadOptions request)
    {
        var handler = new SocketsHttpHandler
        {
            // Shards must arrive byte for byte as stored; a decompressing proxy would change them.
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = request.Timeout,
            MaxConnectionsPerServer = Math.Max(2, request.MaxDegreeOfParallelism + 1),
        };
        var http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("Samplers/0.1");
        return http;
    }

    /// <summary>One file to fetch: path relative to the version directory; for shards, the split, shard index and expected record count (-1 for other files).</summary>
    private sealed record RemoteFile(string RelativePath, long ExpectedRecords, string Split, int ShardIndex)
    {
        public bool IsShard => ExpectedRecords >= 0;
        /// <summary>The most bytes the file can have (a body longer than this is refused, not stored); null when unknown.</summary>
        public long? MaxBytes { get; init; }
    }

    /// <summary>The most bytes a labels file may have: class names are short text lines.</summary>
    internal const long MaxLabelsFileBytes = 64L << 20;

    /// <summary>The most bytes one shard of <paramref name="split"/> can have: all the split's serialized examples
    /// (<c>numBytes</c>) plus 16 bytes of framing per record, with 1 MiB of slack; null when the split has no
    /// <c>numBytes</c> or the sum overflows.</summary>
    private static long? MaxShardBytes(SplitInfo split)
    {
        if (split.NumBytes <= 0 || !split.TryNumExamples(out long records)) return null;
        try { return checked(split.NumBytes + 16 * records + (1L << 20)); }
        catch (OverflowException) { return null; }
    }

    private static List<SplitInfo> SplitNames(DatasetInfo info, TfdsDownloadOptions request, string where)
    {
        if (request.Splits is null || request.Splits.Count == 0 || request.Splits.Any(s => s == "all")) return info.Splits.ToList();
        var names = new List<string>();
        foreach (var s in request.Splits)
        {
            foreach (var part in Splits.Parse(s))
                if (!names.Contains(part.Split)) names.Add(part.Split);
        }
        if (names.Contains("all")) return info.Splits.ToList();
        var result = new List<SplitInfo>();
        foreach (var n in names)
            result.Add(info.FindSplit(n) ?? throw new DatasetNotFoundException(
                $"Split '{n}' does not exist in {info.Name}:{info.Version} ({where}). Splits present: {string.Join(", ", info.Splits.Select(x => x.Name))} (names are case-sensitive).",
                where, n));
        return result;
    }

    private static List<RemoteFile> PlanShards(DatasetInfo info, TfdsDownloadOptions request, string where)
    {
        var files = new List<RemoteFile>();
        foreach (var split in SplitNames(info, request, where))
        {
            var rel = info.ShardRelativePaths(split);
            long? max = MaxShardBytes(split);
            for (int i = 0; i < rel.Length; i++) files.Add(new RemoteFile(rel[i], split.ShardLengths[i], split.Name, i) { MaxBytes = max });
        }
        return files;
    }

    private static void CheckInfo(DatasetInfo info, string url, DatasetNameSpec spec, string version)
    {
        if (info.Version != version)
            throw new DataFormatException($"{url}: key 'version' is '{info.Version}', but version {version} was requested; the bucket's metadata is inconsistent. Request version {info.Version} or use another mirror.", url, null, "version");
        if (info.ConfigName != spec.Config)
            throw new DataFormatException($"{url}: key 'configName' is '{info.ConfigName}', but the config requested is '{(spec.HasConfig ? spec.Config : "(none)")}'. Give the config in the name (name/config:version).", url, null, "configName");
        if (!DatasetInfo.SupportedFileFormats.Contains(info.FileFormat))
            throw new DataFormatException(
                $"{url}: key 'fileFormat' is '{info.FileFormat}'{(info.FileFormat == "array_record" ? " (ArrayRecord not supported)" : "")}; this library reads only {string.Join(", ", DatasetInfo.SupportedFileFormats)}, so nothing was downloaded. " +
                "Prepare the dataset with TFDS using file_format='tfrecord' and pass its data directory (TfdsLoadOptions.DataDir, or TFDS_DATA_DIR).", url, null, "fileFormat");
    }

    private static async Task FetchAllAsync(TfdsDownloadOptions request, IDatasetSource fetcher, ProgressTracker tracker, string versionUrl, string folder,
        IReadOnlyList<RemoteFile> files, CancellationToken ct)
    {
        var options = new ParallelOptions { MaxDegreeOfParallelism = request.MaxDegreeOfParallelism, CancellationToken = ct };
        await Parallel.ForEachAsync(files, options, async (f, token) =>
        {
            string url = versionUrl + "/" + string.Join('/', f.RelativePath.Split('/').Select(Uri.EscapeDataString));
            string destination = Path.Combine(folder, f.RelativePath.Replace('/', Path.DirectorySeparatorChar));
            if (File.Exists(destination))
            {
                // Verified by an earlier, interrupted run of this download.
                tracker.AddDone(new FileInfo(destination).Length, f.RelativePath);
                tracker.FileDone(f.RelativePath);
                return;
            }
            Action<string>? verify = f.IsShard ? part => VerifyShard(part, url, f) : null;
            bool found = await fetcher.GetFileAsync(url, destination, f.RelativePath, BodyKind.Data, verify, token, f.MaxBytes).ConfigureAwait(false);
            if (!found && (!f.IsShard || f.ExpectedRecords > 0))
            {
                if (f.IsShard)
                    throw new DownloadException(
                        $"{url}: 404 Not Found: shard {f.ShardIndex} of split '{f.Split}', which dataset_info.json lists with {f.ExpectedRecords} records, is not in the bucket. " +
                        "The published copy is incomplete; try another version or prepare the dataset with TFDS and pass its data directory (TfdsLoadOptions.DataDir).", url, HttpStatusCode.NotFound);
            }
            // A missing labels file is normal: the class names are then "0".."N-1". An empty shard need not exist.
            tracker.FileDone(f.RelativePath);
        }).ConfigureAwait(false);
    }

    /// <summary>Reads the downloaded shard with CRC checks and compares its record count with <c>shardLengths</c>.</summary>
    private static void VerifyShard(string part, string url, RemoteFile f)
    {
        long n = 0;
        try
        {
            using var reader = new TfRecordReader(part);
            while (reader.TryReadNext(out _)) n++;
        }
        catch (DataFormatException e)
        {
            throw new DataFormatException($"{url}: the downloaded shard failed verification: {e.Message.Replace(part, "(download)", StringComparison.Ordinal)}", url, e.Offset, null, e);
        }
        if (n != f.ExpectedRecords)
            throw new DataFormatException(
                $"{url}: the downloaded shard holds {n} records, but dataset_info.json lists {f.ExpectedRecords} for shard {f.ShardIndex} of split '{f.Split}'.",
                url, null, "shardLengths");
    }

    /// <summary>The version directory exists: fetch only the requested splits' missing shards and move each in when verified.</summary>
    private static async Task<string> CompleteExistingAsync(TfdsDownloadOptions request, IDatasetSource fetcher, ProgressTracker tracker, string versionUrl,
        string versionDir, string temp, CancellationToken ct)
    {
        string infoPath = Path.Combine(versionDir, "dataset_info.json");
        if (!File.Exists(infoPath))
            throw new DatasetNotFoundException(
                $"{versionDir} exists but has no dataset_info.json: it is an incomplete copy made by another tool (this downloader renames only complete folders). " +
                "Delete it and download again.", infoPath, "dataset_info.json");
        if (request.MetadataOnly) return versionDir;
        var info = DatasetInfo.Load(infoPath);
        var missing = PlanShards(info, request, infoPath)
            .Where(f => f.ExpectedRecords > 0 && !File.Exists(Path.Combine(versionDir, f.RelativePath.Replace('/', Path.DirectorySeparatorChar))))
            .ToList();
        if (missing.Count == 0) return versionDir;
        tracker.SetFilesTotal(missing.Count);
        Directory.CreateDirectory(temp);
        await FetchAllAsync(request, fetcher, tracker, versionUrl, temp, missing, ct).ConfigureAwait(false);
        foreach (var f in missing)
        {
            string rel = f.RelativePath.Replace('/', Path.DirectorySeparatorChar);
            string target = Path.Combine(versionDir, rel);
            string? dir = Path.GetDirectoryName(target);
            if (dir is not null) Directory.CreateDirectory(dir);
            // Each shard appears whole (a rename) or not at all.
            if (!File.Exists(target)) File.Move(Path.Combine(temp, rel), target);
        }
        TryDeleteDirectory(temp);
        return versionDir;
    }

    /// <summary>The most pages a version listing asks for.</summary>
    internal const int MaxListingPages = 1000;

    /// <summary>The most bytes one listing page may have: 16 MiB. An S3/GCS ListObjects page holds at most 1000 keys (or
    /// common prefixes) of at most 1024 bytes each; even with every character XML-escaped (6 bytes for '&amp;quot;') and
    /// the per-entry elements (ETag, Size, LastModified, StorageClass, Owner: under 1 KiB) that is under 7.2 MB.</summary>
    internal const long MaxListingPageBytes = 16L << 20;

    /// <summary>The most bytes a whole listing may take over all its pages: 64 MiB. A dataset's folder holds its versions
    /// and configs (a few entries, one page); this bound still allows tens of thousands of entries.</summary>
    internal const long MaxListingBytes = 64L << 20;

    /// <summary>Lists <c>&lt;remoteBase&gt;/</c> in the bucket and picks the highest version matching the request.</summary>
    private static async Task<string> ResolveVersionAsync(IDatasetSource fetcher, string baseUrl, string remoteBase, DatasetNameSpec spec, CancellationToken ct)
    {
        string prefix = remoteBase + "/";
        var entries = await fetcher.ListChildrenAsync(prefix, ct).ConfigureAwait(false);
        string chosen = DatasetNames.SelectHighest(entries.ToArray(), spec.Version);
        string label = spec.Name + (spec.HasConfig ? "/" + spec.Config : "");
        if (chosen.Length == 0)
        {
            var versions = DatasetNames.ValidVersions(entries.ToArray());
            var others = entries.Where(e => !versions.Contains(e) && !e.StartsWith('.') && e != "diffs").ToArray();
            throw new DatasetNotFoundException(
                $"No published version of '{label}'{(spec.HasVersion ? " matching " + spec.Version : "")} under {baseUrl}/{prefix}. Versions published: {(versions.Length == 0 ? "none" : string.Join(", ", versions))}." +
                (others.Length > 0 && !spec.HasConfig ? $" Entries that look like configs: {string.Join(", ", others)}; give one, e.g. '{spec.Name}/{others[0]}'." : ""),
                baseUrl + "/" + prefix, label);
        }
        return chosen;
    }

    /// <summary>Takes the lock file, waiting (with cancellation) while another process or call holds it.</summary>
    private static async Task<FileStream> AcquireLockAsync(string path, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                // A name the downloader chooses: a symbolic link there is not ours (our lock is a regular file), and
                // opening it with OpenOrCreate would create or open its target; it is removed, never followed.
                if (new FileInfo(path).LinkTarget is not null) HttpFetcher.TryDelete(path);
                FileKindValue kind = FileKind.Of(path);
                if (kind is not (FileKindValue.Missing or FileKindValue.Regular or FileKindValue.Unknown)) throw LockNotRegular(path, kind);
                // FileShare.None: on Unix .NET takes an exclusive advisory lock, released when the process ends.
                var held = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                // The path may have been replaced between the checks and the open: the handle's own kind decides.
                kind = FileKind.OfHandle(held.SafeFileHandle);
                if (!FileKind.IsReadable(kind))
                {
                    held.Dispose();
                    throw LockNotRegular(path, kind);
                }
                // A finished holder deletes the file before releasing it: a lock taken on that deleted file guards
                // nothing, so take the fresh one instead.
                if (File.Exists(path)) return held;
                held.Dispose();
            }
            catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException && IsSharingViolation(e))
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
    }

    private static DataFormatException LockNotRegular(string path, FileKindValue kind) =>
        new($"{path}: the download lock file is {FileKind.Describe(kind)}, not a regular file; remove it and download again.", path, 0);

    /// <summary>Windows: ERROR_SHARING_VIOLATION / ERROR_LOCK_VIOLATION in the HRESULT; Unix: the errno of a refused
    /// <c>flock</c> (EWOULDBLOCK: 11 on Linux, 35 on macOS).</summary>
    private static bool IsSharingViolation(IOException e) =>
        OperatingSystem.IsWindows() ? (e.HResult & 0xFFFF) is 32 or 33 : e.HResult is 11 or 35;

    // A name the downloader chooses in its own temporary folder: a fresh temporary file (O_EXCL) and a rename, so a
    // symbolic link or a FIFO planted at the name (or at a fixed temporary name) is replaced, never written through.
    private static void WriteAtomically(string path, byte[] bytes) => OutputTarget.ReplaceInFolder(path, s => s.Write(bytes));

    /// <summary>Deletes <paramref name="root"/> when its tree holds no file (only empty folders).</summary>
    private static void RemoveIfEmpty(string root)
    {
        try
        {
            if (Directory.Exists(root) && !Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Any())
                Directory.Delete(root, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void TryDeleteDirectory(string path)
    {
        try { Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
