
namespace Samplers.Cli;

/// <summary>How an error ends the run: the exit code, the word that precedes the message, and the message as the user
/// should read it (options, not C# properties).</summary>
internal sealed record Failure(int ExitCode, string Kind, string Message);

/// <summary>
/// The tool's one error policy. Exit 1: the command line is wrong (the tool's own checks, and library argument errors
/// about a setting the user gave as an option). Exit 2: the data or a file is wrong (<see cref="SamplersDataException"/>
/// and subclasses, IO errors, a cancellation without a signal). Exit 130/143: SIGINT/SIGTERM stopped the command (see
/// <see cref="Termination"/>). Exit 3: anything else is a bug in the tool or the library and says so.
/// </summary>
internal static class ErrorPolicy
{
    public static Failure Classify(Exception e, string? datasetToken = null, IReadOnlySet<string>? givenOptions = null, IReadOnlySet<string>? commandOptions = null) => e switch
    {
        UsageException => new(Program.ExitUsage, "usage error", e.Message),
        // Writing the results (or the messages) failed: the data was fine, the stream was not.
        OutputException o => new(o.BrokenPipe ? Program.ExitBrokenPipe : Program.ExitData, "output error", o.Message),
        // The same grammar error type serves dataset names and split specs: which one the user typed decides the name.
        SpecFormatException s when datasetToken is not null && s.Spec == datasetToken => new(Program.ExitUsage, "usage error", $"<dataset>: {WithoutParameterTail(s)}"),
        // A data error may tell how to change a setting: name it as the option the user would type.
        // Its hints, when it has them apart, are re-worded as options, once each, leaving out those that ask for an option
        // the user passed (or one this command does not have).
        SamplersDataException d => new(Program.ExitData, "data error", OptionNames.Rewrite(CliHints(d, givenOptions, commandOptions), null)),
        IOException or UnauthorizedAccessException => new(Program.ExitData, "file error", e.Message),
        OperationCanceledException => new(Program.ExitData, "cancelled", e.Message),
        // The loader's check before decoding (or its report of a heap that ran out while decoding): the data does not fit
        // this process's memory the way it was asked for; the message says why and what to change.
        InsufficientMemoryException => new(Program.ExitData, "not enough memory", OptionNames.Rewrite(e.Message, null).Replace("TfdsLoadOptions.Table", "--table", StringComparison.Ordinal)),
        ArgumentException a when OptionNames.NamesAnOption(a) => new(Program.ExitUsage, "usage error", OptionNames.Rewrite(WithoutParameterTail(a), a.ParamName)),
        // An argument error that names no option came from inside the library: a bug, like any other unexpected type.
        // (Data the loader refuses reaches here as a SamplersDataException: see CliShared.LoadAsync.)
        _ => new(Program.ExitInternal, "internal error", $"{e.GetType().FullName}: {e.Message}"),
    };

    /// <summary>A run stopped by a signal: exit 130 (SIGINT) or 143 (SIGTERM), reported as one line without a stack trace.</summary>
    public static Failure Cancelled(int exitCode, string signal) => new(exitCode, "cancelled", $"stopped by {signal}");

    /// <summary>True for the exit codes of a signal (<see cref="Program.ExitInterrupted"/>, <see cref="Program.ExitTerminated"/>).</summary>
    public static bool IsSignal(int exitCode) => exitCode is Program.ExitInterrupted or Program.ExitTerminated;

    /// <summary>A data error's message for the tool: its facts, then its hints in the tool's options, one per kind and only
    /// those that apply: no "pass --data-dir" when --data-dir was given, no "add --download" when it was (the download's
    /// own failure is in the facts), nothing about the library's download switch. A message without separate hints is kept.</summary>
    internal static string CliHints(SamplersDataException e, IReadOnlySet<string>? given = null, IReadOnlySet<string>? available = null)
    {
        if (e.Facts is null) return e.Message;
        given ??= new HashSet<string>();
        bool Has(string option) => available is null || available.Contains(option);
        var clauses = new List<string>();
        foreach (var h in e.Hints)
        {
            string? text = h.Kind switch
            {
                HintKind.CheckName => h.Text,
                HintKind.DataDir => given.Contains("--data-dir") || !Has("--data-dir") ? null : "give a data directory that holds the dataset with --data-dir (or set TFDS_DATA_DIR)",
                HintKind.Download => given.Contains("--download") || !Has("--download") ? null : "add --download to fetch the dataset",
                HintKind.Mirror => given.Contains("--base-url") ? "check that --base-url is a reachable mirror of the bucket"
                    : Has("--base-url") ? "if there is no network, point --base-url (or SAMPLERS_TFDS_BASE_URL) at a reachable mirror of the bucket" : h.Text,
                _ => null,
            };
            if (text is not null && !clauses.Contains(text)) clauses.Add(text);
        }
        return DataHints.Compose(e.Facts, clauses);
    }

    /// <summary>Prints the failure: one line (a split-spec diagram keeps its own lines) and a hint; the JSON document with
    /// --json; the stack trace with --verbose. Returns the exit code. Never throws: the report goes to whichever stream
    /// still works (stderr, else stdout), once; when neither does, the exit code alone tells.</summary>
    public static int Report(CliContext c, Exception e) =>
        Report(c.Out, c.Err, Classify(e, c.DatasetToken, c.GivenOptions, c.CommandOptions), e, c.Json, c.Verbose, c.CommandPath);

    /// <summary>Reports a failure outside a command's action (the parser's refusal, help that cannot be written).</summary>
    public static int Report(TextWriter output, TextWriter error, Failure f, Exception? e, bool json, bool verbose, string commandPath)
    {
        // The message may quote the data (a feature key, a file name): its control characters are escaped (the JSON writer
        // escapes its own).
        string line = TerminalText.Escape(WithHint($"samplers: {f.Kind}: {f.Message}", Hint(f, commandPath, verbose)), keepLineBreaks: true);
        // A cancellation is no error to debug: never a stack trace, with --verbose neither.
        // The trace repeats the messages (data's text included): escaped too.
        if (verbose && e is not null && !IsSignal(f.ExitCode)) line += Environment.NewLine + TerminalText.Escape(e.ToString(), keepLineBreaks: true);
        bool toErr = OutputWriter.TryWriteLine(error, line);
        if (json)
        {
            string doc = System.Text.Json.JsonSerializer.Serialize(new { error = f.Message, kind = f.Kind, type = e?.GetType().Name ?? "ParseError", exitCode = f.ExitCode }, CliContext.JsonOptions);
            OutputWriter.TryWriteLine(output, doc);
        }
        // stderr is closed or full: the one line goes to stdout (unless the JSON document already carries it).
        else if (!toErr) OutputWriter.TryWriteLine(output, line);
        return f.ExitCode;
    }

    /// <summary>Usage: where the options are documented. Bug: please report. Data: none, the library's message says what to do.</summary>
    private static string? Hint(Failure f, string commandPath, bool verbose) => f.ExitCode switch
    {
        Program.ExitUsage => $"see '{commandPath} --help'",
        Program.ExitInternal => "this is a bug in samplers: please report it with the command line" + (verbose ? " and the stack trace below" : " (rerun with --verbose for the stack trace)"),
        _ => null,
    };

    /// <summary>One line: the message then the hint (a message with its own lines, such as a split-spec diagram, gets the
    /// hint on a line of its own).</summary>
    public static string WithHint(string message, string? hint)
    {
        if (hint is null) return message;
        message = message.TrimEnd();
        if (message.Contains('\n', StringComparison.Ordinal)) return message + Environment.NewLine + hint;
        if (message.EndsWith('?')) return $"{message} {hint}";
        return $"{message.TrimEnd('.')}; {hint}";
    }

    /// <summary>The message without the runtime's " (Parameter 'x')" tail, which names a C# parameter.</summary>
    internal static string WithoutParameterTail(ArgumentException a)
    {
        string m = a.Message;
        if (a.ParamName is { } p)
        {
            int i = m.IndexOf($" (Parameter '{p}')", StringComparison.Ordinal);
            if (i >= 0) m = m.Remove(i, $" (Parameter '{p}')".Length);
        }
        // ArgumentOutOfRangeException appends "Actual value was N." on its own line; the messages we map say it already.
        int actual = m.IndexOf(Environment.NewLine + "Actual value was ", StringComparison.Ordinal);
        return (actual >= 0 ? m[..actual] : m).TrimEnd().TrimEnd('.');
    }
}
