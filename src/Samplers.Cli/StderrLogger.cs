using Microsoft.Extensions.Logging;

namespace Samplers.Cli;

/// <summary>With --verbose, the library's log messages go to stderr, one line each. A message quotes the data (a dataset
/// name, a class name, a file or cache path), so it is escaped as all text from the data is (<see cref="TerminalText"/>):
/// a control character, a line feed included, becomes <c>\xHH</c> and cannot forge a line or drive the terminal.</summary>
internal sealed class StderrLogger(TextWriter error) : ILogger
{
    private readonly object _gate = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel)) return;
        string message = TerminalText.Escape(formatter(state, exception));
        lock (_gate) error.WriteLine($"{logLevel.ToString().ToLowerInvariant()}: {message}");
    }
}
