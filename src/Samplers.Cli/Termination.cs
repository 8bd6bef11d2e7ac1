using System.Runtime.InteropServices;

namespace Samplers.Cli;

/// <summary>
/// SIGINT (Ctrl+C) and SIGTERM for the whole run, handled by the tool itself rather than by System.CommandLine (whose own
/// handler, on by default, waits two seconds for the command and then returns 130/143 from <c>Main</c> while the command's
/// threads still run: a cache writer could be cut between its temporary file and the rename, and a command that had
/// finished its cancellation reported exit 2). Here the first signal cancels <see cref="Token"/>, which every command
/// passes down to loading, the cache writer, downloads and its own loops; the command then unwinds (its temporary files
/// deleted on the way) and the run ends with <see cref="Program.ExitInterrupted"/> (130) or
/// <see cref="Program.ExitTerminated"/> (143) and one line, <c>samplers: cancelled (SIGINT)</c>. A second signal, or a
/// command still running <see cref="Grace"/> after the first (blocked in a write to a pipe nobody reads, say), ends the
/// process at once with the same code.
/// </summary>
internal sealed class Termination : IDisposable
{
    /// <summary>How long a command may take to stop after the first signal before the process is ended without it.</summary>
    public static readonly TimeSpan DefaultGrace = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _cts = new();
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly Action<int> _exit;
    private readonly TextWriter? _error;
    private int _signal; // 0 until the first signal, then its number (2 or 15)
    private int _reported;
    private volatile bool _disposed;

    /// <param name="error">Where the forced exit says why (the command's own report covers the ordinary case).</param>
    /// <param name="grace">See <see cref="Grace"/>.</param>
    /// <param name="exit">Ends the process (tests pass their own).</param>
    public Termination(TextWriter? error = null, TimeSpan? grace = null, Action<int>? exit = null)
    {
        _error = error;
        Grace = grace ?? DefaultGrace;
        _exit = exit ?? Environment.Exit;
    }

    /// <summary>Registers the handlers for SIGINT and SIGTERM (on Windows the runtime maps Ctrl+C and Ctrl+Break, and the
    /// closing of the console, to these signals).</summary>
    public static Termination Install(TextWriter error)
    {
        var t = new Termination(error);
        if (!OperatingSystem.IsBrowser() && !OperatingSystem.IsIOS() && !OperatingSystem.IsTvOS() && !OperatingSystem.IsAndroid())
        {
            t._registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, t.OnSignal));
            t._registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, t.OnSignal));
        }
        return t;
    }

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>The time a command has to stop after the first signal.</summary>
    public TimeSpan Grace { get; }

    /// <summary>"SIGINT" or "SIGTERM" after a signal, else null.</summary>
    public string? SignalName => Volatile.Read(ref _signal) switch { 2 => "SIGINT", 15 => "SIGTERM", _ => null };

    /// <summary>The exit code a signal asks for (130 or 143: 128 + the signal's number, as a shell reports a process the
    /// signal ended), null before any signal.</summary>
    public int? ExitCode => Volatile.Read(ref _signal) switch { 2 => Program.ExitInterrupted, 15 => Program.ExitTerminated, _ => null };

    /// <summary>Marks the cancellation as reported (one line per run, whichever path reports it first).</summary>
    public bool TryClaimReport() => Interlocked.Exchange(ref _reported, 1) == 0;

    private void OnSignal(PosixSignalContext context)
    {
        // The default action would end the process at once, without the command's cleanup.
        context.Cancel = true;
        Raise(context.Signal == PosixSignal.SIGINT ? 2 : 15);
    }

    /// <summary>What a signal does (also called by tests, with the signal's number: 2 or 15).</summary>
    internal void Raise(int signal)
    {
        if (Interlocked.CompareExchange(ref _signal, signal, 0) != 0)
        {
            ForceExit("a second signal came"); // the user does not want to wait for the cleanup
            return;
        }
        // The watchdog first: a cancellation callback that blocks must not keep it from starting.
        _ = Task.Delay(Grace).ContinueWith(_ => ForceExit($"the command did not stop within {Grace.TotalSeconds:0.#} s"), TaskScheduler.Default);
        // On the runtime's signal thread, which exists for this: the callbacks (a socket read, a lock wait) are short.
        try { _cts.Cancel(); }
        catch (AggregateException) { } // a callback failed; the command reports its own state
    }

    private void ForceExit(string why)
    {
        if (_disposed) return; // the run ended (and reported) in time
        int code = ExitCode ?? Program.ExitTerminated;
        if (TryClaimReport() && _error is not null)
            OutputWriter.TryWriteLine(_error, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"samplers: cancelled ({SignalName}); {why}, so the process ends without waiting for the command"));
        _exit(code);
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
    }
}
