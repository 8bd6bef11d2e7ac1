using System.Text.RegularExpressions;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary>
/// The library names its settings as C# properties (<c>XKey</c>, <c>options.TotalExamplesPerClass</c>), constructor
/// parameters (<c>classesPerBatch</c>) or the reference's Python names (<c>x_key</c>, <c>classes_per_batch</c>). A user of
/// the tool typed options, so its messages are rewritten to name those (<c>--x-key</c>) instead.
/// </summary>
internal static partial class OptionNames
{
    // Each CLI option and the library spellings that mean it. Compound names are replaced anywhere in a message;
    // one-word names (rank, seed, mode) only when the exception's parameter is that setting, at the start of the message.
    private static readonly (string Option, string[] Names)[] Table =
    [
        ("--classes-per-batch", ["classesPerBatch", "ClassesPerBatch", "classes_per_batch"]),
        ("--examples-per-class", ["examplesPerClassPerBatch", "ExamplesPerClassPerBatch", "examples_per_class_per_batch", "examplesPerClass"]),
        ("--steps-per-epoch", ["stepsPerEpoch", "StepsPerEpoch", "steps_per_epoch"]),
        ("--class-list", ["classList", "ClassList", "class_list"]),
        ("--total-examples-per-class", ["totalExamplesPerClass", "TotalExamplesPerClass", "total_examples_per_class"]),
        ("--world-size", ["worldSize", "WorldSize", "world_size"]),
        ("--rank", ["rank", "Rank"]),
        ("--seed", ["seed", "Seed"]),
        ("--mode", ["mode", "Mode"]),
        ("--x-key", ["XKey", "xKey", "x_key"]),
        ("--y-key", ["YKey", "yKey", "y_key"]),
        ("--splits", ["Splits", "splits", "spec"]),
        ("--data-dir", ["DataDir", "dataDir", "data_dir"]),
        ("--s3-endpoint", ["Endpoint", "ObjectStore.Endpoint"]),
        ("--s3-access", ["ObjectStore.Access", "options.Load.ObjectStore.Access"]),
        ("--cache-dir", ["CacheDir", "cacheDir"]),
        ("--table", ["Table"]),
        ("--max-image-pixels", ["MaxImagePixels"]),
        ("--base-url", ["BaseUrl", "baseUrl"]),
        ("--timeout", ["Timeout"]),
        ("--retries", ["Retries"]),
        ("--max-parallel", ["MaxDegreeOfParallelism"]),
        ("--epoch", ["firstEpoch"]),
        ("--epochs", ["epochCount", "epochs"]),
        ("--batches", ["startBatch", "endBatch", "firstBatch", "batchCount"]),
    ];

    private static readonly Dictionary<string, string> ByName = Table
        .SelectMany(t => t.Names.Select(n => (n, t.Option)))
        .ToDictionary(p => p.n, p => p.Option, StringComparer.Ordinal);

    /// <summary>The CLI option for a library parameter name (<c>options.XKey</c>, <c>request.Timeout</c>, <c>classesPerBatch</c>), or null.</summary>
    public static string? ForParameter(string? parameter)
    {
        if (string.IsNullOrEmpty(parameter)) return null;
        if (parameter.StartsWith("--", StringComparison.Ordinal)) return parameter;
        int dot = parameter.LastIndexOf('.');
        string name = dot >= 0 ? parameter[(dot + 1)..] : parameter;
        return ByName.GetValueOrDefault(name);
    }

    /// <summary>True when <paramref name="e"/> concerns a setting the user gave as an option: its parameter maps to one, its
    /// message names one of the compound setting names, or it already speaks in options (<c>--batches: ...</c>).</summary>
    public static bool NamesAnOption(ArgumentException e) =>
        ForParameter(e.ParamName) is not null || e.Message.StartsWith("--", StringComparison.Ordinal)
        || CompoundName().Matches(e.Message).Any(m => ByName.ContainsKey(m.Groups["name"].Value));

    /// <summary>The message with every library spelling of a setting replaced by its option.</summary>
    public static string Rewrite(string message, string? parameter)
    {
        // "options.TotalExamplesPerClass ('0') must be ..." as the runtime's guards phrase it.
        string text = CompoundName().Replace(message, m => ByName.TryGetValue(m.Groups["name"].Value, out string? o) ? o : m.Value)
            .Replace("TfdsLoadOptions.Download", "--download", StringComparison.Ordinal); // one word: not a compound name
        string? option = ForParameter(parameter);
        if (option is not null && parameter is not null)
        {
            string name = parameter[(parameter.LastIndexOf('.') + 1)..];
            if (text.StartsWith(name + " ", StringComparison.Ordinal) || text.StartsWith(name + "'", StringComparison.Ordinal)) text = option + text[name.Length..];
            // The runtime's generic "Specified argument was out of the range of valid values." names nothing.
            if (!text.Contains(option, StringComparison.Ordinal)) text = $"{option}: {text}";
        }
        return text;
    }

    // Compound names only (an upper-case letter inside, or an underscore), optionally after "options." / "request.":
    // plain words such as "rank" or "mode" also occur in sentences.
    [GeneratedRegex(@"(?<![\w-])(?:(?:options|request|[A-Z][A-Za-z]*Options)\.)?(?<name>[a-z]+(?:[A-Z][a-z]+)+|[A-Z][a-z]+(?:[A-Z][a-z]+)+|[XY]Key|[a-z]+(?:_[a-z]+)+)(?![\w-])")]
    private static partial Regex CompoundName();
}
