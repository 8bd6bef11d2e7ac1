using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Samplers.Cli;

/// <summary>The command tree (one registration list) and what happens before a command runs: a command line the parser
/// refuses ends with one line and a hint, never the whole help.</summary>
internal sealed partial class CliApp(TextWriter output, TextWriter error, bool interactive, Termination? termination = null)
{
    /// <summary>Every command, in the order of the help. A new command is one file under Commands/ and one line here.</summary>
    private static readonly Func<CliShared, Command>[] Commands =
    [
        InfoCommand.Build,
        PlanCommand.Build,
        RunCommand.Build,
        ExportCommand.Build,
        CacheCommand.Build,
        DownloadCommand.Build,
        IndexCommand.Build,
        ShowCommand.Build,
        ImportCommand.Build,
    ];

    private readonly CliShared _shared = new(output, error, interactive, termination);

    public RootCommand BuildRoot()
    {
        var root = _shared.Describe(new RootCommand(),
            "samplers: inspect TFDS datasets, preview and digest class-balanced batch plans, run the sampler, manage the Parquet cache, export to NumPy, import IDX files.\n" +
            $"Without a <dataset>, commands use the embedded {CliShared.EmbeddedDataset} (data/ in a clone, packed with the tool).\n\n" +
            "Examples:\n  samplers run\n  samplers info\n  samplers info mnist --data-dir ~/tensorflow_datasets\n  samplers plan mnist -c 10 -e 2 --seed 7 --batches 0:5\n" +
            "  samplers plan mnist -c 10 -e 2 --seed 7 --digest\n  samplers export mnist --splits test --out mnist-test.npz");
        root.Add(_shared.Json);
        root.Add(_shared.Verbose);
        root.Add(_shared.Quiet);
        foreach (var build in Commands) root.Add(build(_shared));
        // --help: the default sections, then the command's examples (the command list keeps to one summary per command).
        var helpOption = root.Options.OfType<HelpOption>().First();
        if (helpOption.Action is HelpAction help) helpOption.Action = new HelpWithExamples(help, _shared.Examples);
        return root;
    }

    public int Run(string[] args)
    {
        var root = BuildRoot();
        var parsed = root.Parse(args);
        if (parsed.Action is not (HelpAction or HelpWithExamples) && (VersionProblem(root, parsed, args) ?? ParseProblem(parsed)) is { } problem)
        {
            var c = _shared.Context(parsed);
            // Never throws: stderr closed or full sends the line to stdout (with --json the document carries it).
            string line = ErrorPolicy.WithHint($"samplers: {problem}", $"see '{c.CommandPath} --help'");
            if (!OutputWriter.TryWriteLine(error, line) && !c.Json) OutputWriter.TryWriteLine(output, line);
            if (c.Json) OutputWriter.TryWriteLine(output, System.Text.Json.JsonSerializer.Serialize(new { error = problem, kind = "usage error", type = "ParseError", exitCode = Program.ExitUsage }, CliContext.JsonOptions));
            return Program.ExitUsage;
        }
        // System.CommandLine's own signal handling is off (ProcessTerminationTimeout = null): after its two seconds it would
        // return from Main while the command still runs. Termination cancels the command's token and waits for it instead.
        var config = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
        return parsed.InvokeAsync(config, termination?.Token ?? CancellationToken.None).GetAwaiter().GetResult();
    }

    /// <summary>The standard help, then "Examples:" and the command's examples.</summary>
    private sealed class HelpWithExamples(HelpAction inner, IReadOnlyDictionary<Command, string> examples) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            int code = inner.Invoke(parseResult);
            if (examples.TryGetValue(parseResult.CommandResult.Command, out string? text))
            {
                var w = parseResult.InvocationConfiguration.Output;
                w.WriteLine("Examples:");
                w.WriteLine(text.TrimEnd());
                w.WriteLine();
            }
            return code;
        }
    }

    /// <summary>The root's --version is honoured only as the sole argument (<c>samplers --version</c>): the parser would
    /// otherwise print the version and exit 0 whatever else the line holds (<c>samplers --version run</c>). Elsewhere it
    /// is not the root's: after a command it is that command's own option if it has one, else an unknown option
    /// (<see cref="ParseProblem"/> says so).</summary>
    internal static string? VersionProblem(RootCommand root, ParseResult parsed, string[] args)
    {
        var version = root.Options.OfType<VersionOption>().FirstOrDefault();
        if (version is null || parsed.GetResult(version) is null || args is ["--version"]) return null;
        return "usage error: --version takes no other arguments; run 'samplers --version' alone";
    }

    /// <summary>The first thing wrong with the command line, as the user typed it; null when it parses.</summary>
    internal static string? ParseProblem(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        string path = CliShared.CommandPath(parsed);
        // An unknown option must never be taken as a value (the <dataset> argument swallows "--epoch" otherwise).
        foreach (var token in parsed.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) break;
            if (token.Type == TokenType.Argument && LooksLikeOption(token.Value))
                return UnknownOption(token.Value, command, path);
        }
        foreach (var token in parsed.UnmatchedTokens)
        {
            if (LooksLikeOption(token)) return UnknownOption(token, command, path);
            if (command is RootCommand)
            {
                string? near = Suggest.Closest(token, command.Subcommands.Select(s => s.Name));
                return $"unknown command '{token}'" + (near is null ? "" : $"; did you mean '{near}'?");
            }
            return $"unexpected argument '{token}' for '{path}'";
        }
        if (parsed.Errors.Count == 0) return null;
        if (command is RootCommand && parsed.Tokens.Count == 0)
            return $"no command given; the commands are {string.Join(", ", command.Subcommands.Select(s => s.Name))}";
        return "usage error: " + Plain(parsed.Errors[0]);
    }

    private static bool LooksLikeOption(string token) => token.Length > 1 && token[0] == '-' && !NegativeNumber().IsMatch(token);

    private static string UnknownOption(string token, Command command, string path)
    {
        string name = token.Split('=', ':')[0];
        var names = OptionsOf(command).SelectMany(o => o.Aliases.Prepend(o.Name)).ToList();
        // A short option (-C) is only suggested with another case (-c); edit distance means nothing on one letter.
        string? near = name.StartsWith("--", StringComparison.Ordinal)
            ? Suggest.Closest(name, names.Where(n => n.StartsWith("--", StringComparison.Ordinal)))
            : names.FirstOrDefault(n => !n.StartsWith("--", StringComparison.Ordinal) && string.Equals(n, name, StringComparison.OrdinalIgnoreCase));
        return $"unknown option '{name}' for '{path}'" + (near is null ? "" : $"; did you mean {near}?");
    }

    /// <summary>The command's own options and the recursive ones of its parents (--json, --verbose, --help).</summary>
    private static IEnumerable<Option> OptionsOf(Command command)
    {
        foreach (var o in command.Options) yield return o;
        foreach (var parent in command.Parents.OfType<Command>())
            foreach (var o in OptionsOf(parent))
                if (o.Recursive) yield return o;
    }

    /// <summary>The parser's messages in the user's terms: "'abc' is not a whole number", not "expected type 'System.Int32'".</summary>
    private static string Plain(ParseError error)
    {
        string message = error.Message;
        var among = NotAmong().Match(message);
        if (among.Success)
        {
            string owner = error.SymbolResult switch
            {
                OptionResult o => o.Option.Name,
                ArgumentResult a => $"<{a.Argument.Name}>",
                _ => "value",
            };
            string[] allowed = among.Groups["list"].Value.Split(['\n', '\t', '\r', '\''], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            string? near = Suggest.Closest(among.Groups["value"].Value, allowed);
            return $"{owner}: '{among.Groups["value"].Value}' is not one of {string.Join(", ", allowed)}" + (near is null ? "" : $"; did you mean '{near}'?");
        }
        var m = CannotParse().Match(message);
        if (!m.Success) return message.ReplaceLineEndings(" ");
        string type = m.Groups["type"].Value;
        // Nullable<T> options (e.g. --total-examples-per-class) name the inner type in brackets.
        if (type.StartsWith("System.Nullable", StringComparison.Ordinal)) type = type.Contains("Int32", StringComparison.Ordinal) ? "System.Int32" : type;
        string kind = type switch
        {
            "System.Int32" => $"a whole number from {int.MinValue.ToString(CultureInfo.InvariantCulture)} to {int.MaxValue.ToString(CultureInfo.InvariantCulture)}",
            "System.UInt64" => $"a whole number from 0 to {ulong.MaxValue.ToString(CultureInfo.InvariantCulture)}",
            "System.Int64" => "a whole number",
            "System.Double" => "a number",
            _ => "a valid value",
        };
        return $"{m.Groups["option"].Value}: '{m.Groups["value"].Value}' is not {kind}";
    }

    [GeneratedRegex(@"^-(\d|\.\d)")]
    private static partial Regex NegativeNumber();

    [GeneratedRegex(@"^Argument '(?<value>.*)' not recognized\. Must be one of:(?<list>.*)$", RegexOptions.Singleline)]
    private static partial Regex NotAmong();

    [GeneratedRegex(@"Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'")]
    private static partial Regex CannotParse();
}
