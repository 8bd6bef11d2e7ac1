using System.Diagnostics;

namespace Samplers.Bench;

/// <summary>
/// Samples the process's working set every 2 ms on a background thread, from construction until <see cref="Dispose"/>:
/// the peak above the level at the start is what a load costs in memory beyond what it keeps. A full compacting GC
/// first, so the starting level holds no garbage of earlier work.
/// </summary>
internal sealed class PeakWorkingSet : IDisposable
{
    private readonly ManualResetEventSlim _done = new();
    private readonly Thread _sampler;
    private long _peak;

    public PeakWorkingSet()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        using (var self = Process.GetCurrentProcess()) Before = self.WorkingSet64;
        _peak = Before;
        _sampler = new Thread(() =>
        {
            using var p = Process.GetCurrentProcess();
            while (!_done.IsSet)
            {
                p.Refresh();
                _peak = Math.Max(_peak, p.WorkingSet64);
                _done.Wait(2);
            }
        }) { IsBackground = true };
        _sampler.Start();
    }

    /// <summary>The working set when sampling started.</summary>
    public long Before { get; }

    /// <summary>The highest working set seen above <see cref="Before"/>; final after <see cref="Dispose"/>.</summary>
    public long PeakAbove => _peak - Before;

    /// <summary>Stops sampling (idempotent).</summary>
    public void Dispose()
    {
        if (_done.IsSet) return;
        _done.Set();
        _sampler.Join();
        _done.Dispose();
    }
}
