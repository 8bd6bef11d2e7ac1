using System.Text;

namespace Samplers.Cli;

/// <summary>
/// Standard output or standard error as the tool writes them: a write that fails (a full disk, a closed stream, a reader
/// that went away) throws <see cref="OutputException"/> naming the stream, and marks the stream broken so the error report
/// goes to the other one instead of failing again.
/// </summary>
/// <param name="inner">The stream's writer.</param>
/// <param name="streamName">"standard output" or "standard error", for the message.</param>
/// <param name="escapeControls">Escape control characters (except line feeds) in everything written: stdout, where data's
/// text lands; not stderr, where the progress bar draws with escape sequences of its own.</param>
internal sealed class OutputWriter(TextWriter inner, string streamName, bool escapeControls = false) : TextWriter
{
    /// <summary>"standard output" or "standard error".</summary>
    public string StreamName { get; } = streamName;

    /// <summary>True after a write failed: nothing more is written to this stream.</summary>
    public bool Broken { get; private set; }

    public override Encoding Encoding => inner.Encoding;
    public override IFormatProvider FormatProvider => inner.FormatProvider;
    public override void Write(char value)
    {
        if (escapeControls && value != '\n' && TerminalText.IsControl(value)) Write(value.ToString());
        else Guard(() => inner.Write(value));
    }
    public override void Write(string? value) => Guard(() => inner.Write(Safe(value)));
    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));
    public override void Write(ReadOnlySpan<char> buffer) => Write(new string(buffer));
    public override void WriteLine() => Guard(() => inner.WriteLine());
    public override void WriteLine(string? value) => Guard(() => inner.WriteLine(Safe(value)));

    private string? Safe(string? text) => escapeControls ? TerminalText.Escape(text, keepLineBreaks: true) : text;
    public override void Flush() => Guard(inner.Flush);

    /// <summary>Writes <paramref name="text"/> as a line and flushes, or returns false (without throwing) when the stream is
    /// broken or breaks now: the error report's own writes.</summary>
    public bool TryWriteLine(string text)
    {
        if (Broken) return false;
        try
        {
            inner.WriteLine(Safe(text));
            inner.Flush();
            return true;
        }
        catch (Exception e) when (IsOutputFailure(e))
        {
            Broken = true;
            return false;
        }
    }

    private void Guard(Action write)
    {
        if (Broken) throw new OutputException(StreamName, null);
        try
        {
            write();
        }
        catch (Exception e) when (IsOutputFailure(e))
        {
            Broken = true;
            throw new OutputException(StreamName, e);
        }
    }

    private static bool IsOutputFailure(Exception e) => e is IOException or UnauthorizedAccessException or ObjectDisposedException or NotSupportedException;

    /// <summary>Writes a line to <paramref name="w"/> without throwing: false when it failed (an <see cref="OutputWriter"/>
    /// then is broken).</summary>
    public static bool TryWriteLine(TextWriter w, string text)
    {
        if (w is OutputWriter o) return o.TryWriteLine(text);
        try
        {
            w.WriteLine(text);
            return true;
        }
        catch (Exception e) when (IsOutputFailure(e))
        {
            return false;
        }
    }

    /// <summary>True when <paramref name="w"/> failed before.</summary>
    public static bool IsBroken(TextWriter w) => w is OutputWriter { Broken: true };
}

/// <summary>Writing to standard output or standard error failed (not an IOException: handlers of file errors must not take it for one): exit 2, or 141 (128 + SIGPIPE) when the reader went away.</summary>
internal sealed class OutputException(string streamName, Exception? inner) : Exception(Describe(streamName, inner), inner)
{
    /// <summary>"standard output" or "standard error".</summary>
    public string StreamName { get; } = streamName;

    /// <summary>The reader closed the pipe (EPIPE): the shell's convention is exit 141, as if SIGPIPE had ended the tool.</summary>
    public bool BrokenPipe { get; } = IsBrokenPipe(inner);

    private static bool IsBrokenPipe(Exception? e) =>
        e is IOException io && (io.HResult == 32 || io.Message.Contains("Broken pipe", StringComparison.OrdinalIgnoreCase));

    private static string Describe(string streamName, Exception? inner) => inner switch
    {
        null => $"cannot write to {streamName}: it failed before",
        _ when IsBrokenPipe(inner) => $"cannot write to {streamName}: the reading end of the pipe was closed (broken pipe)",
        // The runtime reports a closed file descriptor as "Access to the path is denied", which names no path.
        UnauthorizedAccessException or ObjectDisposedException or NotSupportedException => $"cannot write to {streamName}: it is closed or not writable",
        _ => $"cannot write to {streamName}: {inner.Message.TrimEnd().TrimEnd('.')}",
    };
}
