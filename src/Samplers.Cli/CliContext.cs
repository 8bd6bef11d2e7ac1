using System.Text.Json;

namespace Samplers.Cli;

/// <summary>Per-invocation state: the writers, the output mode and the command being run (for hints).</summary>
internal sealed class CliContext(TextWriter output, TextWriter error, bool interactive, bool json, bool verbose, string commandPath, string? datasetToken = null)
{
    public TextWriter Out { get; } = output;
    public TextWriter Err { get; } = error;
    /// <summary>Progress bars only on a terminal and never with --json.</summary>
    public bool Interactive { get; } = interactive && !json;
    public bool Json { get; } = json;
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

    /// <summary>A status line on stderr (never with --json).</summary>
    public void Status(string line)
    {
        if (!Json) Err.WriteLine(line);
    }
}
