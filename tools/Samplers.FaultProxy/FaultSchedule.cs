namespace Samplers.FaultProxy;

/// <summary>What the proxy does to one request.</summary>
public enum FaultKind
{
    /// <summary>Forwarded untouched.</summary>
    None,
    /// <summary>Answered by the proxy with 503 and S3's <c>SlowDown</c> error document; never forwarded.</summary>
    SlowDown,
    /// <summary>Forwarded; the response's headers and a part of its body are passed on, then the connection is reset (RST).</summary>
    Reset,
    /// <summary>Forwarded; the response's headers (announcing the whole length) and a part of its body are passed on,
    /// then the connection is closed normally (FIN): a body cut short.</summary>
    CutShort,
    /// <summary>A ranged GET whose <c>Range</c> is rewritten to a shorter one before forwarding; the server's correct
    /// 206 and <c>Content-Range</c> for the shorter range are passed on, so the client gets fewer bytes than it asked for.</summary>
    ShortRange,
    /// <summary>Forwarded; the response's headers and a part of its body are passed on, then nothing more: the connection
    /// stays open and silent until the client gives up and closes it (a server or a path that hangs mid-body). Chosen
    /// only by <see cref="FaultSchedule.Script"/>, never by the seeded draw.</summary>
    Stall,
}

/// <summary>A request as the schedule sees it.</summary>
/// <param name="Method">The HTTP method.</param>
/// <param name="Target">The request target (path and query) as sent.</param>
/// <param name="Range">The <c>Range</c> header, or null.</param>
/// <param name="Occurrence">1 for the first request with this method and target, 2 for the next, ... The range is not
/// part of the identity, so a resume from whatever offset a cut left is the same request's next occurrence.</param>
public sealed record ProxyRequest(string Method, string Target, string? Range, int Occurrence);

/// <summary>The decision for one request.</summary>
/// <param name="Kind">What to do.</param>
/// <param name="Fraction">In [0, 1): where to cut a body (<see cref="FaultKind.Reset"/>, <see cref="FaultKind.CutShort"/>:
/// after this fraction of its announced length), or how much of <see cref="FaultSchedule.MaxShortRangeBytes"/> a
/// shortened range keeps (<see cref="FaultKind.ShortRange"/>).</param>
public readonly record struct Fault(FaultKind Kind, double Fraction)
{
    /// <summary>No fault.</summary>
    public static Fault None => default;
}

/// <summary>
/// Which requests get which fault. Seeded: the decision for a request is a pure function of the seed, the method,
/// the target and the occurrence (<see cref="ProxyRequest.Occurrence"/>), never of arrival order or timing, so
/// concurrent clients see the same faults on the same requests in every run with the same seed.
/// </summary>
/// <remarks>Per request, one kind is drawn with the given probabilities among those that apply: <see cref="SlowDown"/>
/// to any request, <see cref="Reset"/> and <see cref="CutShort"/> to GETs, <see cref="ShortRange"/> to GETs carrying a
/// <c>Range</c> header. <see cref="Script"/>, when set, decides instead (null from it falls back to the draw).</remarks>
public sealed record FaultSchedule
{
    /// <summary>The seed.</summary>
    public ulong Seed { get; init; }
    /// <summary>Probability of a 503 SlowDown.</summary>
    public double SlowDown { get; init; }
    /// <summary>Probability of a connection reset mid-body (GET).</summary>
    public double Reset { get; init; }
    /// <summary>Probability of a body cut short with a normal close (GET).</summary>
    public double CutShort { get; init; }
    /// <summary>Probability of a shortened range (ranged GET).</summary>
    public double ShortRange { get; init; }
    /// <summary>A shortened range asks for 1 to this many bytes from the start the client asked for (64 KiB).</summary>
    public int MaxShortRangeBytes { get; init; } = 64 << 10;
    /// <summary>Added before every request is handled (fault or not); zero for none.</summary>
    public TimeSpan Latency { get; init; }
    /// <summary>Decides instead of the seeded draw when set; returning null falls back to the draw.</summary>
    public Func<ProxyRequest, Fault?>? Script { get; init; }

    /// <summary>No faults (latency only, if set): a plain forwarding proxy.</summary>
    public static FaultSchedule Clean => new();

    /// <summary>The decision for <paramref name="request"/>: the same for the same seed and request, always.</summary>
    /// <param name="request">The request.</param>
    public Fault Decide(ProxyRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Script?.Invoke(request) is { } scripted) return scripted;
        bool get = request.Method == "GET";
        bool ranged = get && request.Range is not null;
        ulong h = Mix(Seed, request.Method, request.Target, request.Occurrence);
        double u = Unit(h), fraction = Unit(SplitMix(h));
        foreach (var (kind, p, applies) in new[] { (FaultKind.SlowDown, SlowDown, true), (FaultKind.Reset, Reset, get), (FaultKind.CutShort, CutShort, get), (FaultKind.ShortRange, ShortRange, ranged) })
        {
            if (!applies || p <= 0) continue;
            if (u < p) return new Fault(kind, fraction);
            u -= p;
        }
        return Fault.None;
    }

    // FNV-1a over the identity, then SplitMix64 with the seed: stable across processes and runtimes (string.GetHashCode is not).
    private static ulong Mix(ulong seed, string method, string target, int occurrence)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in method + " " + target + " #" + occurrence.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        return SplitMix(h ^ SplitMix(seed));
    }

    private static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private static double Unit(ulong x) => (x >> 11) * (1.0 / (1UL << 53));
}

/// <summary>One fault the proxy injected (for messages: which request, which occurrence, what).</summary>
/// <param name="Request">The request.</param>
/// <param name="Kind">The fault.</param>
/// <param name="Detail">What exactly: the bytes passed on before a cut, the range forwarded instead of the one asked.</param>
public sealed record InjectedFault(ProxyRequest Request, FaultKind Kind, string Detail)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Request.Method} {Request.Target} #{Request.Occurrence}{(Request.Range is null ? "" : " (" + Request.Range + ")")}: {Kind} {Detail}";
}

/// <summary>What the proxy saw and did so far.</summary>
/// <param name="Connections">Client connections accepted.</param>
/// <param name="Requests">Requests received from clients.</param>
/// <param name="Forwarded">Requests sent upstream (all but the SlowDowns).</param>
/// <param name="UpstreamConnections">Connections opened to the upstream (fewer than <see cref="Forwarded"/> when kept alive).</param>
/// <param name="BytesToClients">Response body bytes passed on to clients.</param>
/// <param name="SlowDowns">503 SlowDown answers.</param>
/// <param name="Resets">Bodies cut with a reset.</param>
/// <param name="CutShorts">Bodies cut with a normal close.</param>
/// <param name="ShortRanges">Ranged GETs answered with fewer bytes than asked (counted when the served range really was shorter).</param>
/// <param name="Stalls">Bodies that stopped mid-way on an open connection.</param>
public sealed record FaultCounters(long Connections, long Requests, long Forwarded, long UpstreamConnections, long BytesToClients, long SlowDowns, long Resets, long CutShorts, long ShortRanges, long Stalls)
{
    /// <summary>Faults of every kind.</summary>
    public long Injected => SlowDowns + Resets + CutShorts + ShortRanges + Stalls;
}
