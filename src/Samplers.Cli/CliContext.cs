using System.Text.Json;

namespace Samplers.Cli;

/// <summary>Per-invocation state: the writers, the output mode and the command being run (for hints).</summary>
internal sealed class CliContext(TextWriter output, TextWriter error, bool interactive, bool json, bool verbose, string commandPath, string? datasetToken = null,
    bool quiet = false, IReadOnlySet<string>? givenOptions = null, IReadOnlySet<string>? commandOptions = null)
{
    public TextWriter Out { get; } = output;
    public TextWriter Err { get; } = error;
    /// <summary>Progress bars when stderr is a terminal (they are drawn on stderr, so --json output is unaffected).</summary>
    public bool Interactive { get; } = interactive;
    public bool Json { get; } = json;
    /// <summary>--quiet: no progress or status lines on stderr (errors still are).</summary>
    public bool Quiet { get; } = quiet;
    /// <summary>The options the user typed (by their long name, e.g. "--data-dir"): hints never ask for an option that was given.</summary>
    public IReadOnlySet<string> GivenOptions { get; } = givenOptions ?? new HashSet<string>();
    /// <summary>The options the command has (null: unknown, any): hints name only these.</summary>
    public IReadOnlySet<string>? CommandOptions { get; } = commandOptions;
    public bool Verbose { get; } = verbose;
    /// <summary>"samplers run" etc.: where the hint sends the user.</summary>
    public string CommandPath { get; } = commandPath;
    /// <summary>The &lt;dataset&gt; argument as typed (null when absent): a malformed name is reported against it.</summary>
    public string? DatasetToken { get; } = datasetToken;

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Writes one JSON document on one line.</summary>
    public void WriteJson(object value) => Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>A status line on stderr (with --json too: stdout keeps the JSON alone); none with --quiet.</summary>
    public void Status(string line)
    {
        if (!Quiet) Err.WriteLine(TerminalText.Escape(line)); // it names the dataset's folder and cache file: data's text
    }
}
