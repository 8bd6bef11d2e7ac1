namespace Samplers.Cli;

/// <summary>Entry point of the <c>samplers</c> command-line tool.</summary>
internal static class Program
{
    /// <summary>Exit code: success.</summary>
    public const int ExitOk = 0;
    /// <summary>Exit code: a usage error (unknown command or option, a bad value, a setting the data cannot satisfy).</summary>
    public const int ExitUsage = 1;
    /// <summary>Exit code: a data error (<c>SamplersDataException</c> and subclasses, unreadable or unwritable files, data the loader refuses).</summary>
    public const int ExitData = 2;
    /// <summary>Exit code: an internal error (a bug in the tool or the library; rerun with --verbose for the stack trace and report it).</summary>
    public const int ExitInternal = 3;
    /// <summary>Exit code: standard output's reader went away (a broken pipe, as in <c>samplers plan | head</c>): 128 + SIGPIPE, as the shell reports a tool SIGPIPE ended.</summary>
    public const int ExitBrokenPipe = 141;
    /// <summary>Exit code: SIGINT (Ctrl+C) stopped the command: 128 + 2, as the shell reports a process SIGINT ended.</summary>
    public const int ExitInterrupted = 130;
    /// <summary>Exit code: SIGTERM stopped the command: 128 + 15, as the shell reports a process SIGTERM ended.</summary>
    public const int ExitTerminated = 143;

    /// <summary>Runs the tool; the exit code is 0 on success, 1 on a usage error, 2 on a data or output error, 141 on a broken pipe,
    /// 130 after SIGINT, 143 after SIGTERM, 3 on a bug.</summary>
    public static int Main(string[] args)
    {
        // Signals are handled here, for the real process only (tests run Program.Run in-process, many at once).
        using var termination = Termination.Install(Console.Error);
        return Run(args, StandardOutput(), Console.Error, interactive: !Console.IsErrorRedirected, termination);
    }

    /// <summary>Console.Out, except that on Unix stdout redirected to a pipe is written through its file descriptor: the console
    /// stream drops writes to a closed pipe silently (so <c>samplers plan | head</c> would compute every plan and exit 0),
    /// a file stream reports the broken pipe, which ends the run with exit 141.</summary>
    private static TextWriter StandardOutput()
    {
        // Pipes only: a regular file keeps the console stream, which advances the shared file offset ({ samplers ...; echo; } > f).
        if (OperatingSystem.IsWindows() || !Console.IsOutputRedirected || FileKind.Of("/dev/fd/1") != FileKindValue.Fifo) return Console.Out;
        try
        {
            var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
            return new StreamWriter(stream, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 4096) { AutoFlush = true };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return Console.Out; // stdout is closed or not a file the runtime can open: the console stream reports that
        }
    }

    /// <summary>Runs the tool with the given writers (tests call this in-process).</summary>
    /// <param name="args">The command line.</param>
    /// <param name="output">Standard output: results.</param>
    /// <param name="error">Standard error: errors, progress lines and warnings.</param>
    /// <param name="interactive">True when stderr is a terminal: progress bars (drawn on stderr) instead of plain lines.</param>
    /// <param name="termination">SIGINT/SIGTERM handling (null: none; <see cref="Main"/> installs it).</param>
    public static int Run(string[] args, TextWriter output, TextWriter error, bool interactive = false, Termination? termination = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        // The tool ships the JPEG codec; register it explicitly rather than rely on loading it by name.
        Samplers.SkiaSharp.SkiaSharpImaging.Register();
        // Every write goes through an OutputWriter: a full disk, a closed stream or a closed pipe becomes an output error
        // (exit 2, or 141 on a broken pipe), reported once to the stream that still works, never an unhandled exception.
        var o = new OutputWriter(output, "standard output", escapeControls: true);
        var e = new OutputWriter(error, "standard error");
        try
        {
            return new CliApp(o, e, interactive, termination).Run(args);
        }
        catch (OutputException x)
        {
            // Outside a command's action: help or a parse error that could not be written.
            return ErrorPolicy.Report(o, e, ErrorPolicy.Classify(x), x, json: false, verbose: false, "samplers");
        }
    }
}

/// <summary>Thrown for command-line mistakes the parser cannot see (a bad range, an output folder that does not exist).
/// The message names the option; the error policy adds the hint.</summary>
internal sealed class UsageException(string message) : Exception(message);
