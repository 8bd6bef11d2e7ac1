using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;

namespace Samplers.Tfds;

/// <summary>What a fetched object should look like, for telling a real file from an HTML error page.</summary>
internal enum BodyKind
{
    /// <summary>JSON: a body starting with '&lt;' is a web page.</summary>
    Json,
    /// <summary>Text (labels files) or binary (shards): a body starting with <c>&lt;!doctype</c> or <c>&lt;html</c> is a web page.</summary>
    Data,
    /// <summary>An XML bucket listing: only <c>Content-Type: text/html</c> marks a web page.</summary>
    Xml,
}

/// <summary>
/// GETs objects from the bucket with the downloader's policy: bounded retries with exponential backoff on transient
/// failures (5xx, 408, 429, connection errors, cut responses, timeouts, failed verification), a timeout on the headers
/// and on every body read, resumption of files with <c>Range: bytes=N-</c> (206 appends, 200 restarts), refusal of
/// HTML pages and checks of lengths and published checksums (<c>x-goog-hash</c>).
/// </summary>
internal sealed class HttpFetcher : IDatasetSource
{
    private const long MaxInMemoryBytes = 256L << 20;
    private readonly HttpClient _http;
    private readonly TfdsDownloadOptions _request;
    private readonly string _baseUrl;
    private readonly ProgressTracker? _progress;
    private volatile bool _answered;       // some request got an HTTP response (any status)

    public HttpFetcher(HttpClient http, TfdsDownloadOptions request, string baseUrl, ProgressTracker? progress)
    {
        _http = http; _request = request; _baseUrl = baseUrl; _progress = progress;
    }

    private int Attempts => 1 + _request.Retries;

    /// <inheritdoc/>
    public string BaseUrl => _baseUrl;

    /// <summary>Lists the bucket (XML <c>ListBucketResult</c>, paged by marker) under <paramref name="prefix"/>.</summary>
    public async Task<SortedSet<string>> ListChildrenAsync(string prefix, CancellationToken ct)
    {
        var entries = new SortedSet<string>(StringComparer.Ordinal);
        string? marker = null;
        long listed = 0;
        for (int page = 0; page < TfdsDownloader.MaxListingPages; page++)
        {
            string url = $"{_baseUrl}?prefix={Uri.EscapeDataString(prefix)}&delimiter=%2F" + (marker is null ? "" : "&marker=" + Uri.EscapeDataString(marker));
            // The page bound, or what is left of the listing's total when that is less (the message then names the total).
            long budget = Math.Min(TfdsDownloader.MaxListingPageBytes, TfdsDownloader.MaxListingBytes - listed);
            string what = budget < TfdsDownloader.MaxListingPageBytes
                ? $"the rest of the bucket listing (at most {TfdsDownloader.MaxListingBytes} bytes over all its pages; the {page} pages before took {listed})"
                : "a bucket listing page";
            byte[] xml = await GetBytesAsync(url, BodyKind.Xml, ct, budget, what).ConfigureAwait(false)
                ?? throw new DownloadException($"{url}: 404 Not Found: the bucket at {_baseUrl} cannot be listed, so the version under {prefix} cannot be found. Give an exact version (name:x.y.z).", url, HttpStatusCode.NotFound);
            XDocument doc;
            try { doc = XDocument.Parse(Encoding.UTF8.GetString(xml)); }
            catch (System.Xml.XmlException e)
            {
                throw new DataFormatException($"{url}: the bucket listing is not valid XML ({e.Message}); expected a ListBucketResult. Give an exact version (name:x.y.z).", url, null, null, e);
            }
            var root = doc.Root;
            if (root is null || root.Name.LocalName != "ListBucketResult")
                throw new DataFormatException($"{url}: expected an XML ListBucketResult, found <{root?.Name.LocalName}>. The base URL does not support listing; give an exact version (name:x.y.z).", url);
            string? last = null;
            foreach (var el in root.Descendants())
            {
                string? key = el.Name.LocalName switch
                {
                    "Prefix" when el.Parent?.Name.LocalName == "CommonPrefixes" => el.Value,
                    "Key" when el.Parent?.Name.LocalName == "Contents" => el.Value,
                    _ => null,
                };
                if (key is null) continue;
                last = key;
                if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
                string rest = key[prefix.Length..];
                int slash = rest.IndexOf('/');
                if (slash > 0) entries.Add(rest[..slash]);
            }
            bool truncated = root.Elements().Any(e => e.Name.LocalName == "IsTruncated" && e.Value.Trim().Equals("true", StringComparison.OrdinalIgnoreCase));
            if (!truncated) break;
            string? next = root.Elements().FirstOrDefault(e => e.Name.LocalName == "NextMarker")?.Value ?? last;
            if (next is null) break;
            // Keys are listed in ascending UTF-8 byte order, so a truncated page's marker must move past the one that
            // asked for it; one that does not would ask for the same page again, up to the page cap.
            if (marker is not null && Encoding.UTF8.GetBytes(next).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(marker)) <= 0)
                throw new DownloadException(
                    $"{url}: the bucket listing says it is truncated but its next marker '{next}' does not advance past '{marker}'; listing on would ask for " +
                    "the same page again. The server's listing is broken; give an exact version (name:x.y.z).", url);
            marker = next;
            listed += xml.Length;
            if (listed >= TfdsDownloader.MaxListingBytes)
                throw new DownloadException(
                    $"{url}: the bucket listing under {prefix} has taken {listed} bytes over {page + 1} pages, the most a listing may take ({TfdsDownloader.MaxListingBytes} bytes); " +
                    "give an exact version (name:x.y.z).", url);
        }
        return entries;
    }

    /// <summary>A failure worth another attempt; after the last attempt it becomes a <see cref="DownloadException"/> (or, for failed verification, a <see cref="DataFormatException"/>).</summary>
    private sealed class TransientException(string message, HttpStatusCode? status = null, Exception? inner = null, bool verification = false)
        : Exception(message, inner)
    {
        public HttpStatusCode? Status { get; } = status;
        /// <summary>The hints the message ends with (the final DownloadException keeps them apart from the facts).</summary>
        public IReadOnlyList<DataHint> Hints { get; init; } = [];
        public string? Facts { get; init; }
        /// <summary>The file arrived but failed verification: the final error is the inner <see cref="DataFormatException"/>.</summary>
        public bool Verification { get; } = verification;
    }

    /// <summary>GETs a small object into memory, at most <paramref name="maxBytes"/> (default 256 MiB) bytes of
    /// <paramref name="what"/>; null on 404.</summary>
    public Task<byte[]?> GetBytesAsync(string url, BodyKind kind, CancellationToken ct, long maxBytes = MaxInMemoryBytes, string what = "a metadata file") =>
        WithRetriesAsync(url, async token =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
            using var response = await SendAsync(url, 0, timeout, token).ConfigureAwait(false);
            if (response is null) return null;
            CheckNotHtml(url, response, kind);
            long? length = response.Content.Headers.ContentLength;
            if (length > maxBytes)
                throw new DownloadException($"{url}: the server announces {length} bytes, more than the {maxBytes} bytes {what} may have; the base URL {_baseUrl} does not serve TFDS metadata here.", url, response.StatusCode);
            using var body = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
            using var ms = new MemoryStream();
            await CopyAsync(url, body, ms, 0, length, timeout, token, null, length ?? maxBytes).ConfigureAwait(false);
            byte[] bytes = ms.ToArray();
            CheckHead(url, bytes, kind);
            VerifyChecksum(url, response, bytes);
            return bytes;
        }, ct);

    /// <summary>
    /// GETs an object into <paramref name="destination"/>, through <c>destination.part</c> (kept after a failure so the
    /// next attempt, in this call or a later one, resumes it with a Range request). <paramref name="verify"/> checks the
    /// complete part file before it is renamed. Returns false on 404 (nothing is written).
    /// The <c>maxBytes</c> (from the dataset's metadata) bounds the body: a longer one is refused without storing more,
    /// and its part file is deleted; null leaves only the announced length as the bound.
    /// </summary>
    public Task<bool> GetFileAsync(string url, string destination, string displayName, BodyKind kind, Action<string>? verify, CancellationToken ct, long? maxBytes = null)
    {
        string part = destination + ".part";
        long announced = 0;          // size added to the progress total for this file
        long counted = 0;            // bytes of this file counted as done
        long? shortBody = null;      // the announced length of an earlier attempt whose body ended early
        void Count(long onDisk) { _progress?.AddDone(onDisk - counted, displayName); counted = onDisk; }
        return WithRetriesAsync(url, async token =>
        {
          try
          {
            long have = PartLength(part);
            Count(have);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
            using var response = await SendAsync(url, have, timeout, token).ConfigureAwait(false);
            if (response is null)
            {
                TryDelete(part);
                Count(0);
                return false;
            }
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                TryDelete(part);
                Count(0);
                long? size = response.Content.Headers.ContentRange?.Length;
                // The object is exactly as long as what arrived although a longer length was announced: the server's
                // Content-Length is wrong, and retrying cannot help.
                if (shortBody is long lied && size == have)
                    throw new DownloadException(
                        $"{url}: the server announced a file of {lied} bytes (Content-Length) but sent {have}, and its answer to resuming (416, Content-Range bytes */{size}) " +
                        $"says the file has {size} bytes: the server reports wrong lengths. Use another mirror ({TfdsDownloader.BaseUrlEnvironmentVariable}) or a prepared copy (--data-dir).",
                        url, response.StatusCode);
                // The part file is as long as the object or longer (the object changed): start again.
                throw new TransientException($"{url}: the server refused to resume at byte {have} (416 Range Not Satisfiable; the object has {size?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "an unknown number of"} bytes); restarting the file", response.StatusCode);
            }
            CheckNotHtml(url, response, kind);
            long start = 0;
            long? total = response.Content.Headers.ContentLength;
            if (response.StatusCode == HttpStatusCode.PartialContent)
            {
                var range = response.Content.Headers.ContentRange;
                if (range?.From != have)
                {
                    TryDelete(part);
                    Count(0);
                    throw new TransientException($"{url}: asked to resume at byte {have}, but the server sent a range starting at {range?.From?.ToString() ?? "(none)"}; restarting the file", response.StatusCode);
                }
                start = have;
                total = range.Length ?? (total is long n ? have + n : null);
            }
            else if (have > 0)
            {
                // 200 to a Range request: the server sends the whole object again.
                Count(0);
            }
            if (total is long big && maxBytes is long max && big > max)
            {
                TryDelete(part);
                Count(0);
                throw new DownloadException(
                    $"{url}: the server announces {big} bytes, more than the {max} bytes this file can have according to the dataset's metadata (numBytes of its split); " +
                    "nothing was stored. The mirror serves another object here; use another mirror or a prepared copy (--data-dir).", url, response.StatusCode);
            }
            if (total is long t && announced == 0) { _progress?.AddExpected(t); announced = t; }
            string? dir = Path.GetDirectoryName(part);
            if (dir is not null) Directory.CreateDirectory(dir);
            // A fresh part file is created with O_EXCL (a link or file planted at the name after PartLength is an error,
            // retried, never written through); a resumed one must still be the regular file PartLength measured.
            if (start == 0) TryDelete(part);
            using (var file = new FileStream(part, start > 0 ? FileMode.Append : FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            using (var body = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false))
            {
                if (start > 0 && !FileKind.IsReadable(FileKind.OfHandle(file.SafeFileHandle)))
                    throw new TransientException($"{part}: the part file to resume is {FileKind.Describe(FileKind.OfHandle(file.SafeFileHandle))}, not a regular file; restarting the file", null);
                try
                {
                    await CopyAsync(url, body, file, start, total, timeout, token, n => Count(n), total ?? maxBytes).ConfigureAwait(false);
                }
                catch (TransientException) when (total is long announcedTotal && file.Position < announcedTotal)
                {
                    shortBody = announcedTotal; // remembered: a 416 on the resume then means the length was a lie
                    throw;
                }
                await file.FlushAsync(token).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }
            CheckHead(url, part, kind);
            try
            {
                VerifyChecksum(url, response, part);
                verify?.Invoke(part);
            }
            catch (DataFormatException e)
            {
                TryDelete(part);
                Count(0);
                throw new TransientException(e.Message, response.StatusCode, e, verification: true);
            }
            File.Move(part, destination, overwrite: true);
            return true;
          }
          catch (Exception e) when (e is DownloadException or DataFormatException)
          {
              // A final failure (an HTML page, a body over the size limit, a lying server): the part file holds bytes
              // that are not the object, so a later run must not resume from them.
              TryDelete(part);
              Count(0);
              throw;
          }
        }, ct);
    }

    private async Task<T> WithRetriesAsync<T>(string url, Func<CancellationToken, Task<T>> attempt, CancellationToken ct)
    {
        for (int a = 1; ; a++)
        {
            try
            {
                return await attempt(ct).ConfigureAwait(false);
            }
            catch (TransientException) when (a < Attempts)
            {
                await Task.Delay(Backoff(a), ct).ConfigureAwait(false);
            }
            catch (TransientException e)
            {
                if (e.Verification && e.InnerException is DataFormatException d)
                    throw new DataFormatException(
                        $"{d.Message} (after {a} attempt{(a == 1 ? "" : "s")}). The bucket's copy is damaged or does not match its metadata; try again later or use a prepared copy (TfdsLoadOptions.DataDir).",
                        url, d.Offset, d.Key, d);
                string gaveUp = $" (gave up after {a} attempt{(a == 1 ? "" : "s")}).";
                if (e.Facts is { } facts) throw DataHints.DownloadFailed(facts.TrimEnd('.') + gaveUp, e.Hints, url, e.Status, e.InnerException ?? e);
                throw new DownloadException(e.Message + gaveUp, url, e.Status, e.InnerException ?? e);
            }
        }
    }

    /// <summary>RetryDelay * 2^(attempt-1), capped at 30 s, plus up to 25% jitter (timing only; never feeds a plan).</summary>
    private TimeSpan Backoff(int attempt)
    {
        double ms = Math.Min(30_000, _request.RetryDelay.TotalMilliseconds * Math.Pow(2, attempt - 1));
        return TimeSpan.FromMilliseconds(ms * (1 + 0.25 * Random.Shared.NextDouble()));
    }

    /// <summary>Sends the GET; null for 404. Throws for 401/403 and other client errors, a transient error for
    /// 5xx/408/429, connection failures and timeouts.</summary>
    private async Task<HttpResponseMessage?> SendAsync(string url, long rangeFrom, CancellationTokenSource timeout, CancellationToken ct)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, url);
        if (rangeFrom > 0) message.Headers.Range = new RangeHeaderValue(rangeFrom, null);
        timeout.CancelAfter(_request.Timeout);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TransientException($"{url}: no response within the timeout of {_request.Timeout.TotalSeconds:0.###} s. The server is slow or unreachable; raise the timeout, or use a prepared copy (TfdsLoadOptions.DataDir)");
        }
        catch (HttpRequestException e)
        {
            string unreachable = $"{url}: could not reach {_baseUrl}: {e.Message.TrimEnd('.')}";
            DataHint[] hints =
            [
                DataHints.Mirror($"if there is no network, point {TfdsDownloader.BaseUrlEnvironmentVariable} at a reachable mirror of the bucket"),
                DataHints.DataDir($"copy a prepared dataset into a data directory and pass it as TfdsLoadOptions.DataDir (or {DataDirectory.EnvironmentVariable})"),
            ];
            // Nothing has answered yet and the host cannot be reached at all (unknown name, refused, unreachable): the
            // network is absent or the base URL is wrong, and waiting will not change either, so fail at once. Once the
            // server has answered, a lost connection is a blip and is retried.
            if (!_answered && e.HttpRequestError is HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError)
                throw DataHints.DownloadFailed(unreachable + " (not retried: the server never answered).", hints, url, null, e);
            throw new TransientException(DataHints.Compose(unreachable + ".", hints), null, e) { Facts = unreachable + ".", Hints = hints };
        }
        _answered = true;
        int code = (int)response.StatusCode;
        if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) return response;
        using (response)
        {
            string status = $"{code} {response.ReasonPhrase}";
            if (response.StatusCode == HttpStatusCode.NotFound) return null;
            if (code >= 500 || response.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests)
                throw new TransientException($"{url}: the server answered {status}", response.StatusCode);
            if (response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
                throw new DownloadException(
                    $"{url}: the server answered {status}: access to this object is refused (it is not public, or its licence keeps it out of the public bucket). " +
                    $"Prepare the dataset with TFDS and pass its data directory (TfdsLoadOptions.DataDir), or use a mirror you can read ({TfdsDownloader.BaseUrlEnvironmentVariable}).",
                    url, response.StatusCode);
            throw new DownloadException($"{url}: the server answered {status}; expected 200 or 206. Check the base URL {_baseUrl} ({TfdsDownloader.BaseUrlEnvironmentVariable}).", url, response.StatusCode);
        }
    }

    /// <summary>
    /// Copies the body, with the timeout re-armed before every read; reports bytes on disk through <paramref name="onDisk"/>.
    /// Never stores more than <paramref name="limit"/> bytes (the announced or the metadata's size): a longer body is
    /// refused. A transfer below <see cref="TfdsDownloadOptions.MinBytesPerSecond"/> over a whole timeout window counts as stalled.
    /// </summary>
    private async Task CopyAsync(string url, Stream body, Stream sink, long start, long? total, CancellationTokenSource timeout, CancellationToken ct, Action<long>? onDisk, long? limit)
    {
        byte[] buffer = new byte[1 << 16];
        long at = start;
        bool rateRule = _request.MinBytesPerSecond > 0 && _request.Timeout != System.Threading.Timeout.InfiniteTimeSpan;
        double windowSeconds = _request.Timeout.TotalSeconds;
        long windowStartTicks = System.Diagnostics.Stopwatch.GetTimestamp();
        long windowStartBytes = at;
        while (true)
        {
            timeout.CancelAfter(_request.Timeout);
            int n;
            try
            {
                n = await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TransientException($"{url}: the server stopped sending for longer than the timeout of {_request.Timeout.TotalSeconds:0.###} s after {at} of {Show(total)} bytes");
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new TransientException($"{url}: the connection was cut after {at} of {Show(total)} bytes ({e.Message})", null, e);
            }
            if (n == 0) break;
            if (sink is MemoryStream && at + n > MaxInMemoryBytes)
                throw new DownloadException($"{url}: more than {MaxInMemoryBytes} bytes for a metadata file; the base URL {_baseUrl} does not serve TFDS metadata here.", url);
            if (limit is long most && at + n > most)
                throw new DownloadException(
                    $"{url}: the server sent more than the {most} bytes this file can have ({(total is null ? "the dataset's metadata bounds it" : "its announced length")}); " +
                    "the rest was not stored. The server sends an endless or wrong body; use another mirror or a prepared copy (--data-dir).", url);
            await sink.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            at += n;
            onDisk?.Invoke(at);
            if (rateRule)
            {
                double elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(windowStartTicks).TotalSeconds;
                if (elapsed >= windowSeconds)
                {
                    double rate = (at - windowStartBytes) / elapsed;
                    if (rate < _request.MinBytesPerSecond)
                        throw new TransientException(
                            $"{url}: the transfer ran at {rate:0.#} bytes/s over the last {elapsed:0.#} s, below the minimum of {_request.MinBytesPerSecond} bytes/s " +
                            $"(after {at} of {Show(total)} bytes); the server is too slow or trickling. Raise the timeout, lower MinBytesPerSecond, or use another mirror");
                    windowStartTicks = System.Diagnostics.Stopwatch.GetTimestamp();
                    windowStartBytes = at;
                }
            }
        }
        if (total is long t && at != t)
            throw new TransientException($"{url}: received {at} bytes, but the server announced {t} (Content-Length{(start > 0 ? "/Content-Range" : "")}); the response has the wrong length");
    }

    private static string Show(long? total) => total?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(unknown)";

    private void CheckNotHtml(string url, HttpResponseMessage response, BodyKind kind)
    {
        string? media = response.Content.Headers.ContentType?.MediaType;
        if (string.Equals(media, "text/html", StringComparison.OrdinalIgnoreCase))
            throw Html(url, "its Content-Type is text/html", response.StatusCode);
    }

    private void CheckHead(string url, string path, BodyKind kind)
    {
        Span<byte> head = stackalloc byte[16];
        int n;
        using (var f = SafeFile.OpenRead(path, "download part file", bufferSize: 1)) n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        CheckHead(url, head[..n], kind);
    }

    private void CheckHead(string url, ReadOnlySpan<byte> bytes, BodyKind kind)
    {
        if (kind == BodyKind.Xml) return;
        var text = bytes.TrimStart(" \t\r\n\uFEFF"u8);
        if (text.IsEmpty || text[0] != (byte)'<') return;
        string start = Encoding.ASCII.GetString(text[..Math.Min(text.Length, 15)]).ToLowerInvariant();
        if (kind == BodyKind.Json || start.StartsWith("<!doctype", StringComparison.Ordinal) || start.StartsWith("<html", StringComparison.Ordinal))
            throw Html(url, $"its body starts with '{start.Split('\n')[0].Trim()}'", null);
    }

    private DownloadException Html(string url, string why, HttpStatusCode? status) => new(
        $"{url}: the server returned an HTML page instead of the file ({why}). The base URL {_baseUrl} points at a web page, a login portal or a proxy's " +
        $"error page rather than at a TFDS bucket; set {TfdsDownloader.BaseUrlEnvironmentVariable} (or BaseUrl / --base-url) to the bucket's address, e.g. {TfdsDownloader.DefaultBaseUrl}.",
        url, status);

    /// <summary>Checks GCS's published <c>x-goog-hash</c> (crc32c, else md5) against the whole object.</summary>
    private static void VerifyChecksum(string url, HttpResponseMessage response, byte[] bytes) =>
        VerifyChecksum(url, response, () => new MemoryStream(bytes, writable: false));

    private static void VerifyChecksum(string url, HttpResponseMessage response, string path) =>
        VerifyChecksum(url, response, () => SafeFile.OpenRead(path, "download part file"));

    private static void VerifyChecksum(string url, HttpResponseMessage response, Func<Stream> open)
    {
        if (!response.Headers.TryGetValues("x-goog-hash", out var values)) return;
        string? crc = null, md5 = null;
        foreach (var item in values.SelectMany(v => v.Split(',')))
        {
            string s = item.Trim();
            if (s.StartsWith("crc32c=", StringComparison.OrdinalIgnoreCase)) crc = s[7..];
            else if (s.StartsWith("md5=", StringComparison.OrdinalIgnoreCase)) md5 = s[4..];
        }
        if (crc is null && md5 is null) return;
        using var stream = open();
        string actual, expected, algorithm;
        if (crc is not null)
        {
            var hash = new System.IO.Hashing.Crc32(System.IO.Hashing.Crc32ParameterSet.Crc32C);
            hash.Append(stream);
            byte[] big = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(big, hash.GetCurrentHashAsUInt32());
            (actual, expected, algorithm) = (Convert.ToBase64String(big), crc, "CRC-32C");
        }
        else
        {
            (actual, expected, algorithm) = (Convert.ToBase64String(MD5.HashData(stream)), md5!, "MD5");
        }
        if (actual != expected)
            throw new DataFormatException(
                $"{url}: the downloaded file's {algorithm} is {actual}, but the server publishes {expected} (x-goog-hash); the transfer was damaged.", url, null, "x-goog-hash");
    }

    /// <summary>The length of the part file to resume from: 0 when there is none, or when the name holds anything but a
    /// regular file (a symbolic link planted there would make the resume append to its target; a FIFO would block),
    /// which is deleted so the download starts over into a fresh file.</summary>
    internal static long PartLength(string part)
    {
        var info = new FileInfo(part);
        if (info.LinkTarget is null && FileKind.Of(part) is FileKindValue.Regular or FileKindValue.Unknown) return info.Length;
        if (info.LinkTarget is not null || info.Exists) TryDelete(part);
        return 0;
    }

    internal static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Counts bytes and files across parallel transfers and reports them, at most once per 64 KiB of progress
/// plus once per finished file.</summary>
internal sealed class ProgressTracker(IProgress<DownloadProgress>? sink)
{
    private long _done, _expected, _lastReported;
    private int _filesDone, _filesTotal;

    public void SetFilesTotal(int total) { Volatile.Write(ref _filesTotal, total); Report(""); }

    public void AddExpected(long bytes) => Interlocked.Add(ref _expected, bytes);

    public void AddDone(long delta, string file)
    {
        if (delta == 0) return;
        long done = Interlocked.Add(ref _done, delta);
        long last = Volatile.Read(ref _lastReported);
        if (Math.Abs(done - last) >= 64 * 1024 && Interlocked.CompareExchange(ref _lastReported, done, last) == last) Report(file);
    }

    public void FileDone(string file)
    {
        Interlocked.Increment(ref _filesDone);
        Report(file);
    }

    private void Report(string file) =>
        sink?.Report(new DownloadProgress(Interlocked.Read(ref _done), Interlocked.Read(ref _expected), Volatile.Read(ref _filesDone), Volatile.Read(ref _filesTotal), file));
}
