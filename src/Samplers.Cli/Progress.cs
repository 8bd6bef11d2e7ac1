using Spectre.Console;

namespace Samplers.Cli;

/// <summary>Progress, always on stderr (stdout holds only results, so <c>--json</c> output stays one clean document):
/// a Spectre.Console bar when stderr is a terminal, a few plain lines otherwise, nothing with <c>--quiet</c>.</summary>
internal static class Progress
{
    public static async Task<T> Run<T>(CliContext c, string what, Func<IProgress<(long Done, long Total)>, CancellationToken, Task<T>> work, CancellationToken ct)
    {
        if (c.Quiet) return await work(new SyncProgress<(long Done, long Total)>(_ => { }), ct).ConfigureAwait(false);
        if (!c.Interactive)
        {
            // Plain lines at 0%, every 25% and the end, so logs stay short.
            int lastQuarter = -1;
            object gate = new();
            var sink = new SyncProgress<(long Done, long Total)>(p =>
            {
                if (p.Total <= 0) return;
                int q = (int)(4 * p.Done / p.Total);
                lock (gate)
                    if (q > lastQuarter) { lastQuarter = q; c.Err.WriteLine(TerminalText.Escape($"{what}: {p.Done}/{p.Total}")); }
            });
            return await work(sink, ct).ConfigureAwait(false);
        }
        T result = default!;
        // The bar is drawn on stderr (AnsiConsole's default is stdout, which would mix it into the results).
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(c.Err) });
        await console.Progress().AutoClear(true).StartAsync(async ctx =>
        {
            var task = ctx.AddTask(what, autoStart: true, maxValue: 1);
            object gate = new();
            var sink = new SyncProgress<(long Done, long Total)>(p => { lock (gate) { task.MaxValue = Math.Max(1, p.Total); task.Value = p.Done; } });
            result = await work(sink, ct).ConfigureAwait(false);
            task.Value = task.MaxValue;
        }).ConfigureAwait(false);
        return result;
    }
}

/// <summary>Reports synchronously on the reporting thread (System.Progress posts to the thread pool, which reorders
/// lines). The one adapter for load, download and bar progress.</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
