using System.Globalization;
using System.Text;

namespace Samplers.FaultProxy;

/// <summary>A request or response head: the start line and the header fields in order.</summary>
internal sealed class HttpHead(string startLine, List<KeyValuePair<string, string>> fields)
{
    public string StartLine { get; set; } = startLine;
    public List<KeyValuePair<string, string>> Fields { get; } = fields;

    public string? Get(string name)
    {
        foreach (var f in Fields)
            if (f.Key.Equals(name, StringComparison.OrdinalIgnoreCase)) return f.Value;
        return null;
    }

    public void Set(string name, string? value)
    {
        Fields.RemoveAll(f => f.Key.Equals(name, StringComparison.OrdinalIgnoreCase));
        if (value is not null) Fields.Add(new(name, value));
    }

    public bool HasToken(string name, string token) =>
        Fields.Any(f => f.Key.Equals(name, StringComparison.OrdinalIgnoreCase)
            && f.Value.Split(',').Any(t => t.Trim().Equals(token, StringComparison.OrdinalIgnoreCase)));

    public byte[] Serialize()
    {
        var sb = new StringBuilder(StartLine).Append("\r\n");
        foreach (var f in Fields) sb.Append(f.Key).Append(": ").Append(f.Value).Append("\r\n");
        return Encoding.Latin1.GetBytes(sb.Append("\r\n").ToString());
    }
}

/// <summary>How a message's body is delimited.</summary>
internal enum Framing { None, Length, Chunked, UntilClose }

/// <summary>Buffered reading of HTTP/1.1 messages from one connection.</summary>
internal sealed class HttpReader(Stream stream)
{
    private const int MaxHead = 64 << 10;
    private readonly byte[] _buffer = new byte[MaxHead];
    private int _start, _end;

    private async ValueTask<bool> FillAsync(CancellationToken ct)
    {
        if (_start == _end) _start = _end = 0;
        if (_end == _buffer.Length)
        {
            if (_start == 0) throw new InvalidDataException($"an HTTP head or chunk line longer than {MaxHead} bytes");
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start; _start = 0;
        }
        int n = await stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
        _end += n;
        return n > 0;
    }

    /// <summary>The next head; null at a clean end of the connection (nothing buffered).</summary>
    public async Task<HttpHead?> ReadHeadAsync(CancellationToken ct)
    {
        while (true)
        {
            int at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
            if (at >= 0)
            {
                string text = Encoding.Latin1.GetString(_buffer, _start, at);
                _start += at + 4;
                var lines = text.Split("\r\n");
                var fields = new List<KeyValuePair<string, string>>();
                foreach (string line in lines.Skip(1))
                {
                    int colon = line.IndexOf(':');
                    if (colon <= 0) throw new InvalidDataException($"a malformed header line '{line}'");
                    fields.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
                }
                return new HttpHead(lines[0], fields);
            }
            bool empty = _start == _end;
            if (!await FillAsync(ct).ConfigureAwait(false))
            {
                if (empty) return null;
                throw new EndOfStreamException("the connection ended inside an HTTP head");
            }
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            int at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (at >= 0)
            {
                string line = Encoding.Latin1.GetString(_buffer, _start, at);
                _start += at + 2;
                return line;
            }
            if (!await FillAsync(ct).ConfigureAwait(false)) throw new EndOfStreamException("the connection ended inside a chunk line");
        }
    }

    /// <summary>Passes the raw body bytes (chunk framing included) to <paramref name="sink"/> until the body ends or the
    /// sink returns false. Returns true when the whole body was passed on.</summary>
    public async Task<bool> CopyBodyAsync(Framing framing, long length, Func<ReadOnlyMemory<byte>, ValueTask<bool>> sink, CancellationToken ct)
    {
        switch (framing)
        {
            case Framing.None:
                return true;
            case Framing.Length:
                return await CopyCountAsync(length, sink, ct).ConfigureAwait(false);
            case Framing.UntilClose:
                while (true)
                {
                    if (_start == _end && !await FillAsync(ct).ConfigureAwait(false)) return true;
                    var piece = _buffer.AsMemory(_start, _end - _start);
                    _start = _end;
                    if (!await sink(piece).ConfigureAwait(false)) return false;
                }
            default:
                while (true)
                {
                    string line = await ReadLineAsync(ct).ConfigureAwait(false);
                    if (!await sink(Encoding.Latin1.GetBytes(line + "\r\n")).ConfigureAwait(false)) return false;
                    string hex = line.Split(';')[0].Trim();
                    if (!long.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long size) || size < 0)
                        throw new InvalidDataException($"a malformed chunk size '{line}'");
                    if (size == 0)
                    {
                        // Trailers, then the empty line.
                        while (true)
                        {
                            string trailer = await ReadLineAsync(ct).ConfigureAwait(false);
                            if (!await sink(Encoding.Latin1.GetBytes(trailer + "\r\n")).ConfigureAwait(false)) return false;
                            if (trailer.Length == 0) return true;
                        }
                    }
                    if (!await CopyCountAsync(size + 2, sink, ct).ConfigureAwait(false)) return false; // data + CRLF
                }
        }
    }

    private async Task<bool> CopyCountAsync(long count, Func<ReadOnlyMemory<byte>, ValueTask<bool>> sink, CancellationToken ct)
    {
        while (count > 0)
        {
            if (_start == _end && !await FillAsync(ct).ConfigureAwait(false)) throw new EndOfStreamException($"the connection ended {count} bytes before the body's end");
            int n = (int)Math.Min(count, _end - _start);
            var piece = _buffer.AsMemory(_start, n);
            _start += n;
            count -= n;
            if (!await sink(piece).ConfigureAwait(false)) return false;
        }
        return true;
    }

    /// <summary>The framing of a message with <paramref name="head"/>.</summary>
    public static (Framing Framing, long Length) FramingOf(HttpHead head, bool isRequest, bool bodiless)
    {
        if (bodiless) return (Framing.None, 0);
        if (head.HasToken("Transfer-Encoding", "chunked")) return (Framing.Chunked, -1);
        if (head.Get("Content-Length") is { } cl)
        {
            if (!long.TryParse(cl, NumberStyles.None, CultureInfo.InvariantCulture, out long n)) throw new InvalidDataException($"a malformed Content-Length '{cl}'");
            return (n == 0 ? Framing.None : Framing.Length, n);
        }
        return isRequest ? (Framing.None, 0) : (Framing.UntilClose, -1);
    }
}
