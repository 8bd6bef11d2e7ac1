using Microsoft.Extensions.Logging;

namespace Samplers.Cli;

/// <summary>With --verbose, the library's log messages go to stderr, one line each.</summary>
internal sealed class StderrLogger(TextWriter error) : ILogger
{
    private readonly object _gate = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel)) return;
        lock (_gate) error.WriteLine($"{logLevel.ToString().ToLowerInvariant()}: {formatter(state, exception)}");
    }
}
