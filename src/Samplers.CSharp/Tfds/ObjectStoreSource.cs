using Samplers.Cache;
using Samplers.Storage;

namespace Samplers.Tfds;

/// <summary>Where <see cref="TfdsDownloader"/> reads a prepared dataset from: TFDS's bucket over HTTP
/// (<see cref="HttpFetcher"/>) or a data directory in object storage (<see cref="ObjectStoreSource"/>). Locations are
/// <see cref="BaseUrl"/> + "/" + URI-escaped path segments.</summary>
internal interface IDatasetSource
{
    /// <summary>Where the files are, for messages and to build locations.</summary>
    string BaseUrl { get; }

    /// <summary>A small object in memory (at most <paramref name="maxBytes"/> bytes of <paramref name="what"/>); null when absent.</summary>
    Task<byte[]?> GetBytesAsync(string url, BodyKind kind, CancellationToken ct, long maxBytes = 256L << 20, string what = "a metadata file");

    /// <summary>An object into <paramref name="destination"/> through <c>destination.part</c> (resumed after a cut or a
    /// failed earlier run), checked by <paramref name="verify"/> before the rename; false when absent.</summary>
    Task<bool> GetFileAsync(string url, string destination, string displayName, BodyKind kind, Action<string>? verify, CancellationToken ct, long? maxBytes = null);

    /// <summary>The names of the folders directly under <paramref name="prefix"/> (a path ending in '/').</summary>
    Task<SortedSet<string>> ListChildrenAsync(string prefix, CancellationToken ct);
}

/// <summary>
/// Reads a TFDS data directory from an <see cref="IObjectStore"/> with the downloader's policy: bodies cut mid-transfer
/// or stalled are resumed from their <c>.part</c> file (the provider retries throttling and server errors itself),
/// lengths are checked, and a resume whose object changed meanwhile (another ETag) starts the file again, so a file
/// never mixes the bytes of two versions of an object. Listings must advance.
/// </summary>
internal sealed class ObjectStoreSource(IObjectStore store, ObjectStoreLocation location, ObjectStoreOptions options, ProgressTracker? progress) : IDatasetSource
{
    /// <summary>Suffix of the file beside a <c>.part</c> that remembers the ETag its bytes came from; it ends in
    /// <c>.part</c> itself so that the downloader's clean-up of part files removes it.</summary>
    internal const string ETagSuffix = ".etag.part";

    public string BaseUrl { get; } = location.ToString();

    private int Attempts => 1 + Math.Max(0, options.Retries);

    /// <summary>Answers per object that brought bytes but not the rest (a cut body, a 206 shorter than asked) and are
    /// resumed without counting against the retries; past this many they count, so a store that cuts every answer
    /// after a few bytes still ends in an error rather than an endless copy. A stall (no byte for the timeout) always counts.</summary>
    internal static int MaxFreeResumes { get; set; } = 100; // settable for the test that shows the bound

    private string KeyOf(string url)
    {
        if (!url.StartsWith(BaseUrl + "/", StringComparison.Ordinal))
            throw new InvalidOperationException($"'{url}' is not under {BaseUrl}.");
        return location.Key(Uri.UnescapeDataString(url[(BaseUrl.Length + 1)..]));
    }

    public async Task<byte[]?> GetBytesAsync(string url, BodyKind kind, CancellationToken ct, long maxBytes = 256L << 20, string what = "a metadata file")
    {
        string key = KeyOf(url);
        using var ms = new MemoryStream();
        string? eTag = null;
        // A body cut (or a range answered short) resumes from the bytes held, as a part file does; answers that
        // brought bytes count against the retries only past MaxFreeResumes.
        int failures = 0, freeResumes = 0;
        while (true)
        {
            long have = ms.Length;
            string failure;
            using (var read = await store.ReadAsync(key, have, ct).ConfigureAwait(false))
            {
                if (read is null) return null;
                if (have > 0 && (read.IsPastEnd || (read.ETag ?? "") != (eTag ?? "")))
                {
                    // Replaced since the first bytes came (another ETag, or now shorter): never mix; start again.
                    ms.SetLength(0);
                    failure = $"{url}: the object changed (ETag {eTag} became {read.ETag}) after its first {have} bytes were read";
                }
                else
                {
                    long total = read.TotalLength ?? (read.From + read.Length);
                    if (total > maxBytes)
                        throw new DownloadException($"{url}: the object has {total} bytes, more than the {maxBytes} bytes {what} may have; {BaseUrl} does not hold a TFDS data directory here.", url);
                    if (have == 0) eTag = read.ETag;
                    try
                    {
                        await CopyAsync(url, read.Body, ms, have, read.From + read.Length, total, null, ct).ConfigureAwait(false);
                        if (ms.Length >= total) return ms.ToArray();
                        if (ms.Length > have && ++freeResumes <= MaxFreeResumes) continue; // a range answered short: ask for the rest
                        failure = $"{url}: the store answered the bytes from {have} with {ms.Length - have} bytes, ending before the object's {total}";
                    }
                    catch (TransientCut cut) when (!cut.Stalled && ms.Length > have && ++freeResumes <= MaxFreeResumes)
                    {
                        continue; // bytes came: resume without counting an attempt
                    }
                    catch (TransientCut cut)
                    {
                        failure = cut.Message;
                    }
                }
            }
            if (++failures >= Attempts)
                throw new DownloadException($"{failure} (gave up after {failures} failed attempts; raise the retries or try again later).", url);
        }
    }

    // The ETag kept beside a part file (a few dozen bytes; 4 KiB bound); anything unreadable means "origin unknown".
    private static string? ReadTag(string tag)
    {
        try { return File.Exists(tag) ? SafeFile.ReadAllText(tag, 4096, "part file's ETag record") : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DataFormatException) { return null; }
    }

    public async Task<bool> GetFileAsync(string url, string destination, string displayName, BodyKind kind, Action<string>? verify, CancellationToken ct, long? maxBytes = null)
    {
        string key = KeyOf(url);
        string part = destination + ".part";
        string tag = destination + ETagSuffix;
        long counted = 0;
        void Count(long onDisk) { progress?.AddDone(onDisk - counted, displayName); counted = onDisk; }
        void Restart() { HttpFetcher.TryDelete(part); HttpFetcher.TryDelete(tag); Count(0); }
        bool announced = false;
        int freeResumes = 0;
        // An answer that brought bytes (a body cut after some, a range answered with fewer bytes than asked) is resumed
        // without counting against the retries (up to MaxFreeResumes); answers that bring nothing, stalls, restarts and
        // failed checks count.
        for (int attempt = 1; ; )
        {
            bool progressed = false;
            // The part and ETag files follow the downloader's rules (docs/ROBUSTNESS.md): a part file that is not a regular
            // file (a planted link) is deleted, never appended to; the ETag file is read through SafeFile, bounded.
            long have = HttpFetcher.PartLength(part);
            string? partTag = have > 0 ? ReadTag(tag) : null;
            if (have > 0 && partTag is null) { Restart(); have = 0; } // bytes of unknown origin: never resume from them
            Count(have);
            string? failure = null;
            using (var read = await store.ReadAsync(key, have, ct).ConfigureAwait(false))
            {
                if (read is null) { Restart(); return false; }
                if (have > 0 && (read.ETag ?? "") != partTag)
                {
                    // Replaced since the part was written: its bytes belong to the old object.
                    Restart();
                    failure = $"{url}: the object changed (ETag {partTag} became {read.ETag}) since its first {have} bytes were fetched; fetching it again from the start";
                }
                else if (read.IsPastEnd)
                {
                    Restart();
                    failure = $"{url}: the object has {read.TotalLength?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no more than"} bytes, but {have} were kept from an earlier attempt; fetching it again from the start";
                }
                else
                {
                    long? total = read.TotalLength ?? (read.From + read.Length);
                    if (total is long big && maxBytes is long max && big > max)
                    {
                        Restart();
                        throw new DownloadException(
                            $"{url}: the object has {big} bytes, more than the {max} bytes this file can have according to the dataset's metadata (numBytes of its split); " +
                            "nothing was stored. The bucket holds another object under this key.", url);
                    }
                    if (!announced && total is long t) { progress?.AddExpected(t); announced = true; }
                    string? dir = Path.GetDirectoryName(part);
                    if (dir is not null) Directory.CreateDirectory(dir);
                    if (have == 0)
                    {
                        // Rule 2 (a name chosen inside a folder): temp + rename, a link planted at the name is replaced.
                        OutputTarget.ReplaceInFolder(tag, s => s.Write(System.Text.Encoding.UTF8.GetBytes(read.ETag ?? "")));
                        HttpFetcher.TryDelete(part);
                    }
                    try
                    {
                        // A fresh part file is created with O_EXCL; a resumed one must still be a regular file once open.
                        using (var file = new FileStream(part, have > 0 ? FileMode.Append : FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                        {
                            if (have > 0 && !FileKind.IsReadable(FileKind.OfHandle(file.SafeFileHandle)))
                                throw new DataFormatException($"{part}: the part file to resume is {FileKind.Describe(FileKind.OfHandle(file.SafeFileHandle))}, not a regular file; delete it and run again.", part);
                            await CopyAsync(url, read.Body, file, have, read.From + read.Length, total ?? maxBytes, Count, ct).ConfigureAwait(false);
                            await file.FlushAsync(ct).ConfigureAwait(false);
                            file.Flush(flushToDisk: true);
                        }
                        if (total is long whole && read.From + read.Length < whole)
                        {
                            // A 206 with fewer bytes than asked (Content-Range ends before the object does): all of it
                            // is kept, and the next request asks for the rest.
                            progressed = read.Length > 0;
                            failure = $"{url}: the store answered the bytes from {read.From} with {read.Length} bytes, ending before the object's {whole}";
                        }
                        else
                        {
                            verify?.Invoke(part);
                            File.Move(part, destination, overwrite: true);
                            HttpFetcher.TryDelete(tag);
                            return true;
                        }
                    }
                    catch (TransientCut cut)
                    {
                        failure = cut.Message; // the part file keeps what arrived: the next attempt resumes
                        progressed = !cut.Stalled && HttpFetcher.PartLength(part) > have;
                    }
                    catch (DataFormatException e) when (attempt < Attempts)
                    {
                        Restart();
                        failure = e.Message;
                    }
                    catch (DataFormatException e)
                    {
                        Restart();
                        throw new DataFormatException(
                            $"{e.Message} (after {attempt} attempt{(attempt == 1 ? "" : "s")}). The bucket's copy is damaged or does not match its metadata.", url, e.Offset, e.Key, e);
                    }
                    catch (DownloadException)
                    {
                        Restart();
                        throw;
                    }
                }
            }
            if (progressed && ++freeResumes <= MaxFreeResumes) continue;
            if (attempt >= Attempts)
                throw new DownloadException($"{failure} (gave up after {attempt} failed attempt{(attempt == 1 ? "" : "s")}; the part file is kept and a later run resumes it).", url);
            attempt++;
        }
    }

    public async Task<SortedSet<string>> ListChildrenAsync(string prefix, CancellationToken ct)
    {
        string keyPrefix = location.Key(prefix);
        var entries = new SortedSet<string>(StringComparer.Ordinal);
        string? token = null;
        string? last = null;
        for (int page = 0; page < TfdsDownloader.MaxListingPages; page++)
        {
            var listing = await store.ListAsync(keyPrefix, "/", token, ct).ConfigureAwait(false);
            string? highest = null;
            foreach (string key in listing.CommonPrefixes.Concat(listing.Objects.Select(o => o.Key)))
            {
                if (highest is null || string.CompareOrdinal(key, highest) > 0) highest = key;
                if (!key.StartsWith(keyPrefix, StringComparison.Ordinal)) continue;
                string rest = key[keyPrefix.Length..];
                int slash = rest.IndexOf('/');
                if (slash > 0) entries.Add(rest[..slash]);
            }
            if (!listing.IsTruncated) return entries;
            // Keys come in ascending order: a truncated page must hand out a new token and move past the keys already
            // seen; one that does not would have us ask for the same page again, up to the page cap.
            bool stuck = listing.NextToken is null || listing.NextToken == token
                || (highest is not null && last is not null && string.CompareOrdinal(highest, last) <= 0);
            if (stuck)
                throw new DownloadException(
                    $"{BaseUrl}: the listing of {keyPrefix} says it is truncated but does not advance (page {page + 1}: continuation token " +
                    $"{(listing.NextToken is null ? "missing" : listing.NextToken == token ? "repeated" : "new")}, last key '{highest ?? "(none)"}' after '{last ?? "(none)"}'). " +
                    "The server's listing is broken; give an exact version (name:x.y.z), which needs no listing.", BaseUrl);
            last = highest ?? last;
            token = listing.NextToken;
        }
        throw new DownloadException(
            $"{BaseUrl}: the listing of {keyPrefix} ran over {TfdsDownloader.MaxListingPages} pages; give an exact version (name:x.y.z), which needs no listing.", BaseUrl);
    }

    /// <summary>A body cut or stalled mid-transfer: worth resuming.</summary>
    private sealed class TransientCut(string message, Exception? inner = null, bool stalled = false) : Exception(message, inner)
    {
        /// <summary>No byte came for the timeout (as opposed to a connection cut or a body ended early).</summary>
        public bool Stalled { get; } = stalled;
    }

    /// <summary>Copies until the body ends; each read gets the timeout. Ends exactly at <paramref name="end"/> or fails.</summary>
    private async Task CopyAsync(string url, Stream body, Stream sink, long start, long end, long? limit, Action<long>? onDisk, CancellationToken ct)
    {
        byte[] buffer = new byte[1 << 16];
        long at = start;
        while (true)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(options.Timeout);
            int n;
            try
            {
                n = await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TransientCut($"{url}: the store stopped sending for longer than the timeout of {options.Timeout.TotalSeconds:0.###} s after {at} of {end} bytes", stalled: true);
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new TransientCut($"{url}: the connection was cut after {at} of {end} bytes ({e.Message})", e);
            }
            if (n == 0) break;
            if (limit is long most && at + n > most)
                throw new DownloadException($"{url}: the store sent more than the {most} bytes this object has; the rest was not stored.", url);
            await sink.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            at += n;
            onDisk?.Invoke(at);
        }
        if (at != end)
            throw new TransientCut($"{url}: received bytes up to {at}, but the store announced {end}; the response was cut short");
    }
}

/// <summary>
/// A data directory in object storage (<c>s3://bucket/prefix</c>), mode "copy then cache": the dataset's files for the
/// requested splits are copied into a local folder (resumable and verified as TFDS downloads are), which is then loaded
/// as any local data directory. A complete local copy is used without contacting the store. Nothing is written to the bucket.
/// </summary>
internal static class ObjectStoreDataDir
{
    /// <summary><paramref name="options"/> unchanged when its data directory is local; else the dataset is made
    /// available in the local copy and the options point there.</summary>
    /// <exception cref="ArgumentException">A malformed location or endpoint, or no provider (the message names the package).</exception>
    /// <exception cref="DownloadException">The store refused or failed (no such bucket, access denied, a broken listing).</exception>
    /// <exception cref="DatasetNotFoundException">The bucket has no such dataset, version or split.</exception>
    public static async Task<TfdsLoadOptions> LocalizeAsync(TfdsLoadOptions options, IProgress<LoadProgress>? progress, CancellationToken ct) =>
        await LocalizeAsync(options, progress, ct, metadataOnly: false).ConfigureAwait(false);

    /// <summary>As the other overload; <paramref name="metadataOnly"/> copies the version's metadata and no shard (remote access).</summary>
    public static async Task<TfdsLoadOptions> LocalizeAsync(TfdsLoadOptions options, IProgress<LoadProgress>? progress, CancellationToken ct, bool metadataOnly)
    {
        if (!ObjectStoreLocation.IsRemote(options.DataDir)) return options;
        ObjectStoreLocation location;
        try { location = ObjectStoreLocation.Parse(options.DataDir); }
        catch (ArgumentException e) { throw new ArgumentException($"TfdsLoadOptions.DataDir: {e.Message.Split(" (Parameter")[0]}", "options.DataDir", e); }
        var settings = options.ObjectStore ?? new ObjectStoreOptions();
        var provider = ObjectStores.Find(location.Scheme, $"TfdsLoadOptions.DataDir '{location}'");
        string local = LocalCopy(location, settings, provider, options.CacheDir);
        var request = new TfdsDownloadOptions(options.DatasetName)
        {
            DataDir = local, Splits = options.Splits, Retries = Math.Max(0, settings.Retries), Timeout = settings.Timeout, MaxDegreeOfParallelism = 4,
            MetadataOnly = metadataOnly,
        };
        progress?.Report(new LoadProgress(LoadPhase.Downloading, 0, 0, Detail: $"{location} -> {local}"));
        IProgress<DownloadProgress>? files = progress is null ? null : new Adapter(progress);
        await TfdsDownloader.EnsureAvailableAsync(request, async (r, token) =>
        {
            using var store = provider.Open(location, settings);
            var tracker = new ProgressTracker(files);
            return await TfdsDownloader.DownloadFromAsync(r, new ObjectStoreSource(store, location, settings, tracker), tracker, "", token).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        return options with { DataDir = local };
    }

    /// <summary>The local folder for <paramref name="location"/>: <c>&lt;copy dir&gt;/&lt;scheme&gt;/&lt;endpoint&gt;/&lt;bucket&gt;/&lt;prefix&gt;</c>.</summary>
    internal static string LocalCopy(ObjectStoreLocation location, ObjectStoreOptions settings, IObjectStoreProvider provider, string? cacheDir)
    {
        string root = !string.IsNullOrEmpty(settings.CopyDir) ? Path.GetFullPath(settings.CopyDir) : Path.Combine(ParquetCache.ResolveDirectory(cacheDir), "remote");
        var parts = new List<string> { root, location.Scheme, Segment(provider.EndpointName(settings)), Segment(location.Bucket) };
        parts.AddRange(location.Prefix.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Segment));
        return Path.Combine([.. parts]);
    }

    /// <summary>A name safe as one folder name on every platform (the characters no file system takes become '_').</summary>
    private static string Segment(string s)
    {
        var invalid = Path.GetInvalidFileNameChars().Concat(['\\', ':', '*', '?', '"', '<', '>', '|']).ToHashSet();
        string safe = new(s.Select(c => invalid.Contains(c) || char.IsControl(c) ? '_' : c).ToArray());
        return safe is "" or "." or ".." ? "_" + safe : safe;
    }

    private sealed class Adapter(IProgress<LoadProgress> inner) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) =>
            inner.Report(new LoadProgress(LoadPhase.Downloading, 0, 0, value.BytesDone, value.BytesExpected, $"{value.FilesDone}/{value.FilesTotal} files; {value.CurrentFile}"));
    }
}
