using Samplers.Storage;

namespace Samplers.Tfds;

/// <summary>
/// Bytes [from, from + length) of one object version as one stream, over as many ranged reads as the store needs: a
/// 206 with fewer bytes than asked is followed by a range for the rest, a body cut or reset mid-transfer is resumed from
/// the byte it stopped at, every request naming the same ETag (a replaced object fails with
/// <see cref="ObjectChangedException"/>, never mixes versions). Counted as the copy (mode 1) counts: an answer that
/// brought bytes is resumed without counting, up to <see cref="ObjectStoreSource.MaxFreeResumes"/> such per stream;
/// answers that bring nothing and stalls (no byte for the timeout) count, and past the retries the read fails with a
/// <see cref="DownloadException"/> naming the object. Throttling and server errors are the provider's to retry.
/// </summary>
/// <remarks>Not thread-safe (one reader). <see cref="Stream.Read(byte[], int, int)"/> blocks on the asynchronous path:
/// it is meant for a synchronous parser running off the caller's thread (the index scan).</remarks>
internal sealed class ResumingRange : ReadOnlyStream
{
    private readonly IObjectStore _store;
    private readonly string _key, _where;
    private readonly long _from, _length;
    private readonly string? _eTag;
    private readonly int _retries;
    private readonly TimeSpan _timeout;
    private readonly Action? _onRequest;
    private readonly CancellationToken _syncToken;
    private ObjectRead? _answer;
    private long _pos, _answerEnd, _answerStart; // relative to _from
    private int _failures, _freeResumes;
    private bool _shortEnded; // the last answer was complete but shorter than asked (a 206 for fewer bytes)

    /// <param name="store">The store.</param>
    /// <param name="key">The object's key.</param>
    /// <param name="where">The object's location for messages (<c>s3://bucket/key</c>).</param>
    /// <param name="from">The first byte.</param>
    /// <param name="length">How many bytes (at least 1).</param>
    /// <param name="eTag">The version every request must still find; null for any.</param>
    /// <param name="retries">Failed answers allowed before giving up (<see cref="ObjectStoreOptions.Retries"/>).</param>
    /// <param name="timeout">How long a body may send nothing before the answer counts as stalled.</param>
    /// <param name="onRequest">Called once per request made.</param>
    /// <param name="syncToken">Cancels the synchronous <see cref="Read(byte[], int, int)"/>.</param>
    public ResumingRange(IObjectStore store, string key, string where, long from, long length, string? eTag, int retries, TimeSpan timeout, Action? onRequest = null,
        CancellationToken syncToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        _store = store; _key = key; _where = where; _from = from; _length = length; _eTag = eTag;
        _retries = Math.Max(0, retries); _timeout = timeout > TimeSpan.Zero ? timeout : System.Threading.Timeout.InfiniteTimeSpan; _onRequest = onRequest; _syncToken = syncToken;
    }

    /// <summary>Requests made so far.</summary>
    public int Requests { get; private set; }

    /// <summary>Answers that ended before the range did and were resumed (free or counted).</summary>
    public int Resumes { get; private set; }

    /// <summary>Reads all <paramref name="length"/> bytes of the range into a new array.</summary>
    public static async Task<byte[]> ReadAllAsync(IObjectStore store, string key, string where, long from, int length, string? eTag, int retries, TimeSpan timeout, Action? onRequest, CancellationToken ct)
    {
        using var range = new ResumingRange(store, key, where, from, length, eTag, retries, timeout, onRequest);
        var buffer = new byte[length];
        int got = await range.ReadAtLeastAsync(buffer, length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got != length) throw new InvalidOperationException($"Internal error: a resumed range of {where} ended after {got} of {length} bytes; please report this.");
        return buffer;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0 || _pos >= _length) return 0;
        while (true)
        {
            if (_answer is null)
            {
                if (_shortEnded)
                {
                    // A short answer brought bytes: free up to the bound, then counted, as a cut that brought bytes.
                    _shortEnded = false;
                    Resumes++;
                    if (++_freeResumes > ObjectStoreSource.MaxFreeResumes && ++_failures > _retries)
                        throw new DownloadException(
                            $"{_where}: the store answered bytes {_from}..{_from + _length - 1} in parts too short to finish (at byte {_from + _pos} after {Requests} answers); gave up after {_failures} failed answers (ObjectStoreOptions.Retries is {_retries}); try again later.", _where);
                }
                await OpenAsync(cancellationToken).ConfigureAwait(false);
            }
            var answer = _answer!;
            int want = (int)Math.Min(buffer.Length, _answerEnd - _pos);
            string? failure = null;
            bool stalled = false;
            int n = 0;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(_timeout);
                try
                {
                    if (want > 0) n = await answer.Body.ReadAsync(buffer[..want], timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    stalled = true;
                    failure = $"the store stopped sending for longer than the timeout of {_timeout.TotalSeconds:0.###} s (ObjectStoreOptions.Timeout) at byte {_from + _pos} of bytes {_from}..{_from + _length - 1}";
                }
                catch (Exception e) when (e is IOException or HttpRequestException)
                {
                    failure = $"the connection was cut at byte {_from + _pos} of bytes {_from}..{_from + _length - 1} ({e.Message.TrimEnd('.')})";
                }
            }
            if (n > 0)
            {
                _pos += n;
                if (_pos == _answerEnd)
                {
                    Drop();
                    _shortEnded = _pos < _length; // a short answer ends here: the next read asks for the rest
                }
                return n;
            }
            // The answer ended (or broke) before the range did: resume from _pos.
            failure ??= _pos < _answerEnd
                ? $"the answer ended at byte {_from + _pos}, before the {_from + _answerEnd} its length announced"
                : $"the answer ended at byte {_from + _pos}";
            bool progressed = !stalled && _pos > _answerStart;
            Drop();
            Resumes++;
            if (progressed && ++_freeResumes <= ObjectStoreSource.MaxFreeResumes) continue;
            if (++_failures > _retries)
                throw new DownloadException($"{_where}: {failure}; gave up after {_failures} failed answers (ObjectStoreOptions.Retries is {_retries}); try again later.", _where);
        }
    }

    // One ranged request for the rest; an answer that starts elsewhere or is longer than asked is the store's error.
    private async Task OpenAsync(CancellationToken ct)
    {
        long at = _from + _pos, rest = _length - _pos;
        Requests++;
        _onRequest?.Invoke();
        ObjectRead read = await _store.ReadRangeAsync(_key, at, rest, _eTag, ct).ConfigureAwait(false)
            ?? throw (_eTag is { } tag ? new ObjectChangedException(_where, tag, null) : new DownloadException($"{_where}: the object is gone (deleted while it was being read).", _where));
        if (read.IsPastEnd || read.From != at || read.Length > rest || read.Length < 0)
        {
            read.Dispose();
            throw new DataFormatException(
                $"{_where}: asked for bytes {at}..{at + rest - 1}, the store sent {(read.IsPastEnd ? "none (past the end)" : $"{read.Length} bytes from {read.From}")}; the object is shorter than its record index says, or the store does not serve ranges as S3 does.",
                _where, at);
        }
        _answer = read;
        _answerStart = _pos;
        _answerEnd = _pos + read.Length;
    }

    private void Drop()
    {
        _answer?.Dispose();
        _answer = null;
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count), _syncToken).AsTask().GetAwaiter().GetResult();
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (disposing) Drop();
        base.Dispose(disposing);
    }
}
