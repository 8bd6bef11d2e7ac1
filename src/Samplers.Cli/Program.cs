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

    /// <summary>Runs the tool; the exit code is 0 on success, 1 on a usage error, 2 on a data error, 3 on a bug.</summary>
    public static int Main(string[] args) =>
        Run(args, Console.Out, Console.Error, interactive: !Console.IsErrorRedirected);

    /// <summary>Runs the tool with the given writers (tests call this in-process).</summary>
    /// <param name="args">The command line.</param>
    /// <param name="output">Standard output: results.</param>
    /// <param name="error">Standard error: errors, progress lines and warnings.</param>
    /// <param name="interactive">True when stderr is a terminal: progress bars (drawn on stderr) instead of plain lines.</param>
    public static int Run(string[] args, TextWriter output, TextWriter error, bool interactive = false)
    {
        ArgumentNullException.ThrowIfNull(args);
        // The tool ships the JPEG codec; register it explicitly rather than rely on loading it by name.
        Samplers.SkiaSharp.SkiaSharpImaging.Register();
        return new CliApp(output, error, interactive).Run(args);
    }
}

/// <summary>Thrown for command-line mistakes the parser cannot see (a bad range, an output folder that does not exist).
/// The message names the option; the error policy adds the hint.</summary>
internal sealed class UsageException(string message) : Exception(message);
