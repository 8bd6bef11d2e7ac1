using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Samplers.FaultProxy;

/// <summary>
/// A fault-injecting HTTP/1.1 proxy on 127.0.0.1: clients talk to <see cref="Uri"/> as if it were the server at the
/// upstream address (e.g. s3rver), and each request is forwarded (with its <c>Host</c> header unchanged, so signatures
/// stay valid) or faulted as <see cref="FaultSchedule.Decide"/> says. Keep-alive on both sides; one upstream connection
/// per client connection, reopened when the upstream closes it or a fault abandons it.
/// </summary>
/// <remarks>
/// <para>Request bodies are buffered in memory before forwarding (a test proxy: objects of a few MiB); responses stream.</para>
/// <para>A shortened range rewrites the <c>Range</c> header: a client that signs its headers (SigV4 with credentials)
/// then gets SignatureDoesNotMatch from a server that checks signatures, so use unsigned requests with that fault.</para>
/// <para>Thread-safe; <see cref="Dispose"/> stops listening and closes every connection.</para>
/// </remarks>
public sealed class FaultProxy : IDisposable, IAsyncDisposable
{
    private static readonly byte[] SlowDownBody = Encoding.UTF8.GetBytes(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>" +
        "<RequestId>FAULTPROXY0000000</RequestId><HostId>fault-proxy</HostId></Error>");

    private readonly TcpListener _listener;
    private readonly DnsEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, int> _occurrences = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<TcpClient, Task> _connections = new();
    private readonly ConcurrentQueue<InjectedFault> _injected = new();
    private readonly ConcurrentQueue<ProxyRequest> _seen = new();
    private readonly Task _accepting;
    private long _connectionsCount, _requests, _forwarded, _upstreamConnections, _bytesToClients, _slowDowns, _resets, _cuts, _shortRanges, _stalls;

    private FaultProxy(Uri upstream, FaultSchedule schedule)
    {
        if (!upstream.IsAbsoluteUri || upstream.Scheme != Uri.UriSchemeHttp)
            throw new ArgumentException($"the upstream '{upstream}' is not an absolute http:// URL (the proxy speaks plain HTTP/1.1).", nameof(upstream));
        Upstream = upstream;
        Schedule = schedule;
        _upstream = new DnsEndPoint(upstream.Host, upstream.Port);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Uri = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture)}");
        _accepting = AcceptAsync();
    }

    /// <summary>Starts a proxy on 127.0.0.1 at a free port in front of <paramref name="upstream"/>.</summary>
    /// <param name="upstream">The server's base URL (http://host:port).</param>
    /// <param name="schedule">Which faults to inject.</param>
    public static FaultProxy Start(Uri upstream, FaultSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentNullException.ThrowIfNull(schedule);
        return new FaultProxy(upstream, schedule);
    }

    /// <summary>Where clients connect: http://127.0.0.1:PORT.</summary>
    public Uri Uri { get; }

    /// <summary>The server requests are forwarded to.</summary>
    public Uri Upstream { get; }

    /// <summary>The schedule in force.</summary>
    public FaultSchedule Schedule { get; }

    /// <summary>A snapshot of the counters.</summary>
    public FaultCounters Counters => new(
        Interlocked.Read(ref _connectionsCount), Interlocked.Read(ref _requests), Interlocked.Read(ref _forwarded), Interlocked.Read(ref _upstreamConnections),
        Interlocked.Read(ref _bytesToClients), Interlocked.Read(ref _slowDowns), Interlocked.Read(ref _resets), Interlocked.Read(ref _cuts), Interlocked.Read(ref _shortRanges), Interlocked.Read(ref _stalls));

    /// <summary>Every request received so far, in arrival order (as the schedule saw it, with the client's range).</summary>
    public IReadOnlyList<ProxyRequest> Seen => [.. _seen];

    /// <summary>The faults injected so far, in the order they happened.</summary>
    public IReadOnlyList<InjectedFault> Injected => [.. _injected];

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            Interlocked.Increment(ref _connectionsCount);
            client.NoDelay = true;
            _connections[client] = Task.Run(async () =>
            {
                try { await ServeAsync(client).ConfigureAwait(false); }
                finally { _connections.TryRemove(client, out _); client.Dispose(); }
            });
        }
    }

    /// <summary>The upstream side of one client connection.</summary>
    private sealed class UpstreamConnection(TcpClient client) : IDisposable
    {
        public TcpClient Client { get; } = client;
        public Stream Stream { get; } = client.GetStream();
        public HttpReader Reader { get; } = new(client.GetStream());
        public bool Used { get; set; }
        public void Dispose() => Client.Dispose();
    }

    private async Task<UpstreamConnection> ConnectAsync(CancellationToken ct)
    {
        var c = new TcpClient { NoDelay = true };
        try { await c.ConnectAsync(_upstream.Host, _upstream.Port, ct).ConfigureAwait(false); }
        catch { c.Dispose(); throw; }
        Interlocked.Increment(ref _upstreamConnections);
        return new UpstreamConnection(c);
    }

    private async Task ServeAsync(TcpClient client)
    {
        var ct = _stop.Token;
        var cs = client.GetStream();
        var reader = new HttpReader(cs);
        UpstreamConnection? up = null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var head = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                if (head is null) return;
                Interlocked.Increment(ref _requests);
                string[] start = head.StartLine.Split(' ');
                if (start.Length != 3) throw new InvalidDataException($"a malformed request line '{head.StartLine}'");
                string method = start[0], target = start[1];
                bool closeAfter = head.HasToken("Connection", "close") || (start[2] == "HTTP/1.0" && !head.HasToken("Connection", "keep-alive"));
                string? range = head.Get("Range");
                var request = new ProxyRequest(method, target, range, _occurrences.AddOrUpdate(method + " " + target, 1, (_, n) => n + 1));
                _seen.Enqueue(request);
                var fault = Schedule.Decide(request);
                if (Schedule.Latency > TimeSpan.Zero) await Task.Delay(Schedule.Latency, ct).ConfigureAwait(false);

                if (head.HasToken("Expect", "100-continue"))
                {
                    // Answered here, so the upstream gets the body with the head.
                    await cs.WriteAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray(), ct).ConfigureAwait(false);
                    head.Set("Expect", null);
                }
                var (reqFraming, reqLength) = HttpReader.FramingOf(head, isRequest: true, bodiless: false);
                using var body = new MemoryStream();
                await reader.CopyBodyAsync(reqFraming, reqLength, m => { body.Write(m.Span); return ValueTask.FromResult(true); }, ct).ConfigureAwait(false);

                if (fault.Kind == FaultKind.SlowDown)
                {
                    Interlocked.Increment(ref _slowDowns);
                    Record(request, FaultKind.SlowDown, "503 without forwarding");
                    var answer = new HttpHead("HTTP/1.1 503 Slow Down", [
                        new("Content-Type", "application/xml"), new("Content-Length", (method == "HEAD" ? 0 : SlowDownBody.Length).ToString(CultureInfo.InvariantCulture)),
                        new("x-amz-request-id", "FAULTPROXY0000000"), new("Date", DateTime.UtcNow.ToString("r", CultureInfo.InvariantCulture)),
                        new("Connection", closeAfter ? "close" : "keep-alive")]);
                    await cs.WriteAsync(answer.Serialize(), ct).ConfigureAwait(false);
                    if (method != "HEAD") await cs.WriteAsync(SlowDownBody, ct).ConfigureAwait(false);
                    if (closeAfter) return;
                    continue;
                }

                string? forwardedRange = range;
                long askedFirst = -1; long? askedLast = null;
                if (fault.Kind == FaultKind.ShortRange && TryParseRange(range, out askedFirst, out askedLast))
                {
                    long keep = 1 + (long)(fault.Fraction * Math.Max(1, Schedule.MaxShortRangeBytes));
                    if (askedLast is long last && askedFirst + keep - 1 >= last) keep = Math.Max(1, (last - askedFirst + 1) / 2);
                    forwardedRange = $"bytes={askedFirst.ToString(CultureInfo.InvariantCulture)}-{(askedFirst + keep - 1).ToString(CultureInfo.InvariantCulture)}";
                    head.Set("Range", forwardedRange);
                }

                foreach (string hop in (string[])["Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Upgrade"]) head.Set(hop, null);
                byte[] requestBytes = [.. head.Serialize(), .. body.ToArray()];

                // Send; a kept-alive upstream connection the server closed meanwhile is replaced once.
                HttpHead? response = null;
                for (int tryNo = 0; response is null; tryNo++)
                {
                    up ??= await ConnectAsync(ct).ConfigureAwait(false);
                    bool reused = up.Used;
                    up.Used = true;
                    try
                    {
                        await up.Stream.WriteAsync(requestBytes, ct).ConfigureAwait(false);
                        do response = await up.Reader.ReadHeadAsync(ct).ConfigureAwait(false);
                        while (response is not null && response.StartLine.Split(' ') is [_, var code, ..] && code.Length == 3 && code[0] == '1' && code != "101");
                    }
                    catch (IOException) when (reused && tryNo == 0) { response = null; }
                    if (response is null)
                    {
                        up.Dispose(); up = null;
                        if (!reused || tryNo > 0) throw new IOException("the upstream closed the connection without answering");
                    }
                }
                Interlocked.Increment(ref _forwarded);

                string[] status = response.StartLine.Split(' ', 3);
                int statusCode = int.Parse(status[1], CultureInfo.InvariantCulture);
                var (framing, length) = HttpReader.FramingOf(response, isRequest: false, bodiless: method == "HEAD" || statusCode is 204 or 304);
                bool upstreamCloses = response.HasToken("Connection", "close") || framing == Framing.UntilClose;
                closeAfter |= framing == Framing.UntilClose;
                response.Set("Connection", null);
                response.Set("Keep-Alive", null);
                response.Set("Connection", closeAfter ? "close" : "keep-alive");

                if (fault.Kind == FaultKind.ShortRange && forwardedRange != range && statusCode == 206
                    && TryParseContentRange(response.Get("Content-Range"), out long first, out long lastServed, out long total)
                    && lastServed < (askedLast ?? total - 1) && first == askedFirst)
                {
                    Interlocked.Increment(ref _shortRanges);
                    Record(request, FaultKind.ShortRange, $"forwarded {forwardedRange}, served bytes {first}-{lastServed}/{total}");
                }

                bool cut = fault.Kind is FaultKind.Reset or FaultKind.CutShort or FaultKind.Stall && framing != Framing.None;
                long allowance = !cut ? long.MaxValue
                    : framing == Framing.Length ? (long)(fault.Fraction * length)
                    : (long)(fault.Fraction * (64 << 10));
                long passed = 0;
                await cs.WriteAsync(response.Serialize(), ct).ConfigureAwait(false);
                bool complete = await up!.Reader.CopyBodyAsync(framing, length, async m =>
                {
                    int n = (int)Math.Min(m.Length, allowance - passed);
                    if (n > 0)
                    {
                        await cs.WriteAsync(m[..n], ct).ConfigureAwait(false);
                        passed += n;
                        Interlocked.Add(ref _bytesToClients, n);
                    }
                    return passed < allowance;
                }, ct).ConfigureAwait(false);

                if (cut && !complete)
                {
                    await cs.FlushAsync(ct).ConfigureAwait(false);
                    up.Dispose(); up = null; // the rest of its body was not read: never reused
                    if (fault.Kind == FaultKind.Stall)
                    {
                        Interlocked.Increment(ref _stalls);
                        Record(request, FaultKind.Stall, $"silent after {passed} of {(length >= 0 ? length.ToString(CultureInfo.InvariantCulture) : "?")} body bytes");
                        // Silent until the client closes (a read returns 0 or fails) or the proxy stops.
                        var sink = new byte[256];
                        while (await cs.ReadAsync(sink, ct).ConfigureAwait(false) > 0) { }
                        return;
                    }
                    if (fault.Kind == FaultKind.Reset)
                    {
                        Interlocked.Increment(ref _resets);
                        Record(request, FaultKind.Reset, $"after {passed} of {(length >= 0 ? length.ToString(CultureInfo.InvariantCulture) : "?")} body bytes");
                        client.Client.LingerState = new LingerOption(true, 0); // close sends RST
                    }
                    else
                    {
                        Interlocked.Increment(ref _cuts);
                        Record(request, FaultKind.CutShort, $"after {passed} of {(length >= 0 ? length.ToString(CultureInfo.InvariantCulture) : "?")} body bytes");
                        client.Client.Shutdown(SocketShutdown.Send);
                    }
                    return;
                }
                if (upstreamCloses) { up.Dispose(); up = null; }
                if (closeAfter)
                {
                    await cs.FlushAsync(ct).ConfigureAwait(false);
                    client.Client.Shutdown(SocketShutdown.Send);
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
        {
            // The client or the upstream went away, or spoke something this proxy does not: drop the connection.
        }
        finally
        {
            up?.Dispose();
        }
    }

    private void Record(ProxyRequest request, FaultKind kind, string detail) => _injected.Enqueue(new InjectedFault(request, kind, detail));

    /// <summary>"bytes=a-" or "bytes=a-b" (one range; suffix and multiple ranges are left alone).</summary>
    private static bool TryParseRange(string? range, out long first, out long? last)
    {
        first = -1; last = null;
        if (range is null || !range.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) || range.Contains(',')) return false;
        string[] parts = range[6..].Split('-');
        if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out first)) return false;
        if (parts[1].Length == 0) return true;
        if (!long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long l) || l < first) return false;
        last = l;
        return true;
    }

    private static bool TryParseContentRange(string? value, out long first, out long last, out long total)
    {
        first = last = total = -1;
        if (value is null || !value.StartsWith("bytes ", StringComparison.OrdinalIgnoreCase)) return false;
        string[] a = value[6..].Split('/');
        if (a.Length != 2) return false;
        string[] b = a[0].Split('-');
        return b.Length == 2 && long.TryParse(b[0], NumberStyles.None, CultureInfo.InvariantCulture, out first)
            && long.TryParse(b[1], NumberStyles.None, CultureInfo.InvariantCulture, out last)
            && long.TryParse(a[1], NumberStyles.None, CultureInfo.InvariantCulture, out total);
    }

    /// <summary>Stops listening, closes every connection and waits for their handlers.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <inheritdoc cref="Dispose"/>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Stop();
        foreach (var c in _connections.Keys) c.Dispose();
        try { await Task.WhenAll([_accepting, .. _connections.Values]).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false); }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or IOException or SocketException or ObjectDisposedException) { }
        _stop.Dispose();
    }
}
