using System.CommandLine;
using System.Text.Json;

namespace Samplers.Cli;

/// <summary>Entry point of the <c>samplers</c> command-line tool.</summary>
internal static class Program
{
    /// <summary>Exit code: success.</summary>
    public const int ExitOk = 0;
    /// <summary>Exit code: a usage error (bad option, bad value, a setting the data cannot satisfy).</summary>
    public const int ExitUsage = 1;
    /// <summary>Exit code: a data error (<see cref="SamplersDataException"/> and subclasses, unreadable files).</summary>
    public const int ExitData = 2;
    /// <summary>Exit code: an unexpected failure (a bug; rerun with --verbose for the stack trace).</summary>
    public const int ExitInternal = 3;

    /// <summary>Runs the tool; the exit code is 0 on success, 1 on a usage error, 2 on a data error.</summary>
    public static int Main(string[] args) =>
        Run(args, Console.Out, Console.Error, interactive: !Console.IsOutputRedirected && !Console.IsErrorRedirected);

    /// <summary>Runs the tool with the given writers (tests call this in-process).</summary>
    /// <param name="args">The command line.</param>
    /// <param name="output">Standard output: results.</param>
    /// <param name="error">Standard error: errors, progress lines and warnings.</param>
    /// <param name="interactive">True on a terminal: progress bars instead of plain lines.</param>
    public static int Run(string[] args, TextWriter output, TextWriter error, bool interactive = false)
    {
        ArgumentNullException.ThrowIfNull(args);
        var cli = new Cli(output, error, interactive);
        var root = cli.BuildRoot();
        var parsed = root.Parse(args);
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
    }
}

/// <summary>Thrown for command-line mistakes the parser cannot see (a bad range, a missing --out).</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Per-invocation state: the writers and the output mode.</summary>
internal sealed class CliContext(TextWriter output, TextWriter error, bool interactive, bool json, bool verbose)
{
    public TextWriter Out { get; } = output;
    public TextWriter Err { get; } = error;
    /// <summary>Progress bars only on a terminal and never with --json.</summary>
    public bool Interactive { get; } = interactive && !json;
    public bool Json { get; } = json;
    public bool Verbose { get; } = verbose;

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Writes one JSON document on one line.</summary>
    public void WriteJson(object value) => Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>A status line on stderr (never with --json).</summary>
    public void Status(string line)
    {
        if (!Json) Err.WriteLine(line);
    }
}
