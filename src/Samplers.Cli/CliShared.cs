using System.CommandLine;
using Samplers.Core;
using Samplers.Core.Tfds;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary>What every command shares: the writers, the common options, the dataset argument (defaulting to the embedded
/// dataset), loading, and running an action under the error policy.</summary>
internal sealed class CliShared(TextWriter output, TextWriter error, bool interactive, Termination? termination = null)
{
    /// <summary>The dataset committed under data/ in the repository (and packed with the tool).</summary>
    public const string EmbeddedDataset = "synthetic_digits";

    public CommonOptions Options { get; } = new();
    public Option<bool> Json { get; } = new("--json") { Description = "Machine-readable output on stdout: one JSON document (JSON lines for plan). Progress still goes to stderr (see --quiet).", Recursive = true };
    public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Show stack traces of errors and the library's log messages.", Recursive = true };
    public Option<bool> Quiet { get; } = new("--quiet", "-q") { Description = "No progress or status lines on stderr (errors are still printed).", Recursive = true };

    public CliContext Context(ParseResult r) => new(output, error, interactive, r.GetValue(Json), r.GetValue(Verbose), CommandPath(r),
        r.CommandResult.Children.OfType<System.CommandLine.Parsing.ArgumentResult>().FirstOrDefault(a => a.Argument.Name == "dataset")?.Tokens.FirstOrDefault()?.Value,
        r.GetValue(Quiet), GivenOptions(r), r.CommandResult.Command.Options.Select(o => o.Name).ToHashSet(StringComparer.Ordinal));

    /// <summary>The options typed on the command line (long names), not those left at their defaults.</summary>
    public static IReadOnlySet<string> GivenOptions(ParseResult r)
    {
        var given = new HashSet<string>(StringComparer.Ordinal);
        for (var s = r.CommandResult; s is not null; s = s.Parent as System.CommandLine.Parsing.CommandResult)
            foreach (var o in s.Children.OfType<System.CommandLine.Parsing.OptionResult>())
                if (!o.Implicit) given.Add(o.Option.Name);
        return given;
    }

    /// <summary>"samplers", "samplers run", ...: the command the user ran, for hints.</summary>
    public static string CommandPath(ParseResult r)
    {
        var names = new List<string>();
        for (var s = r.CommandResult; s is not null; s = s.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(s.Command is RootCommand ? "samplers" : s.Command.Name);
        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>The optional <c>&lt;dataset&gt;</c> argument: without it, the embedded dataset.</summary>
    public static Argument<string?> DatasetArgument() => new("dataset")
    {
        Description = $"The TFDS dataset: name, name/config or name[/config]:version (e.g. mnist, mnist:3.0.1). Default: the embedded {EmbeddedDataset}.",
        Arity = ArgumentArity.ZeroOrOne,
    };

    /// <summary>Each command's examples, printed at the end of its --help (the command list shows only the summaries).</summary>
    public Dictionary<Command, string> Examples { get; } = [];

    /// <summary>Splits a help text at its "Examples:" block: the part before is the command's description, the block goes
    /// to <see cref="Examples"/>.</summary>
    public T Describe<T>(T command, string text) where T : Command
    {
        const string Marker = "\n\nExamples:\n";
        int i = text.IndexOf(Marker, StringComparison.Ordinal);
        command.Description = i < 0 ? text : text[..i];
        if (i >= 0) Examples[command] = text[(i + Marker.Length)..];
        return command;
    }

    /// <summary>A command: its own arguments and options, then a shared option set, and the action under the error policy.</summary>
    public Command Define(string name, string description, Symbol[] own, IEnumerable<Option> shared,
        Func<ParseResult, CliContext, CancellationToken, Task<int>> action)
    {
        var cmd = Describe(new Command(name), description);
        foreach (var symbol in own)
        {
            if (symbol is Argument a) cmd.Add(a);
            else cmd.Add((Option)symbol);
        }
        foreach (var o in shared) cmd.Add(o);
        cmd.SetAction(Guarded(action));
        return cmd;
    }

    /// <summary>Runs an action under <see cref="ErrorPolicy"/>. After SIGINT or SIGTERM (<see cref="Termination"/>) whatever
    /// ends the action (the cancellation itself, or an error it caused, such as a download cut short) is reported as one line,
    /// <c>samplers: cancelled: stopped by SIGTERM</c>, with exit 130 or 143.</summary>
    public Func<ParseResult, CancellationToken, Task<int>> Guarded(Func<ParseResult, CliContext, CancellationToken, Task<int>> action) => async (r, ct) =>
    {
        var c = Context(r);
        try
        {
            return await action(r, c, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (termination is { ExitCode: int code, SignalName: string signal })
        {
            if (!termination.TryClaimReport()) return code; // the forced exit is reporting it
            return ErrorPolicy.Report(c.Out, c.Err, ErrorPolicy.Cancelled(code, signal), e, c.Json, c.Verbose, c.CommandPath);
        }
        catch (Exception e)
        {
            return ErrorPolicy.Report(c, e);
        }
    };

    /// <summary>What to load for <paramref name="dataset"/> (null: the embedded dataset, found next to the tool or in the
    /// clone unless --data-dir says where).</summary>
    public TfdsLoadOptions LoadSettings(ParseResult r, string? dataset) =>
        dataset is not null ? Options.ToLoadOptions(r, dataset) : Options.ToLoadOptions(r, EmbeddedDataset, EmbeddedDataDir(r));

    /// <summary>What to load and how to sample, for <paramref name="dataset"/> (null: the embedded dataset).</summary>
    public TFDatasetSamplerOptions Settings(ParseResult r, string? dataset) =>
        dataset is not null ? Options.ToOptions(r, dataset) : Options.ToOptions(r, EmbeddedDataset, EmbeddedDataDir(r));

    private string? EmbeddedDataDir(ParseResult r) => r.GetValue(Options.DataDir) is null ? FindEmbeddedDataDir() : null;

    /// <summary>
    /// Checks what can be checked before loading (with <paramref name="sampling"/>: the sampling settings among themselves,
    /// --classes-per-batch against the label feature's class count in features.json; always: a requested split that
    /// dataset_info.json lists without shards), then loads. An argument error from the loader that names no option is the
    /// data's fault (a shape too large, a channel count the decoder refuses): it becomes a data error naming the dataset's
    /// folder.
    /// </summary>
    public async Task<LoadedDataset> LoadAsync(CliContext c, TfdsLoadOptions load, SamplerOptions? sampling, CancellationToken ct)
    {
        // An s3:// data directory is copied locally first, so the checks below (and the error messages) read the copy.
        if (Samplers.Storage.ObjectStoreLocation.IsRemote(load.DataDir))
            load = await Progress.Run(c, $"copying {load.DatasetName} from {load.DataDir}", (p, t) => ObjectStoreDataDir.LocalizeAsync(load, new SyncProgress<LoadProgress>(x => { if (x.BytesTotal > 0) p.Report((x.BytesRead, x.BytesTotal)); }), t), ct).ConfigureAwait(false);
        CheckBeforeLoading(load, sampling);
        LoadedDataset data;
        try
        {
            data = await Progress.Run(c, $"loading {load.DatasetName}",
                (p, t) => DatasetLoading.LoadAsync(load, c.Verbose ? new StderrLogger(c.Err) : null, p, t), ct).ConfigureAwait(false);
        }
        catch (ArgumentException e) when (!OptionNames.NamesAnOption(e))
        {
            string where = DataDirectory.Resolve(load.DataDir);
            try { where = Catalog.Open(load.DataDir, load.DatasetName).Path; }
            catch (Exception open) when (open is SamplersDataException or ArgumentException or IOException) { } // keep the data directory
            throw new DataFormatException(
                $"{load.DatasetName} cannot be loaded: {ErrorPolicy.WithoutParameterTail(e)}. The metadata in {where} (features.json, dataset_info.json) " +
                "describes data the loader refuses: check those files, or prepare or download the dataset again.",
                where, inner: e);
        }
        c.Status($"loaded {data.Dir.FullName}: {data.Table.Count} examples, {data.Table.Backing.ToString().ToLowerInvariant()}" + (data.FromCache ? $" from the cache {data.CachePath}" : " from TFRecords" + (data.CachePath is null ? " (cache off)" : $"; cache: {data.CacheDetail.TrimStart(';', ' ')}")));
        return data;
    }

    /// <summary>Loads for a sampling command: <see cref="LoadAsync(CliContext, TfdsLoadOptions, SamplerOptions?, CancellationToken)"/> with the sampling checks.</summary>
    public async Task<LoadedDataset> LoadAsync(CliContext c, TFDatasetSamplerOptions options, CancellationToken ct)
    {
        if (Samplers.Storage.ObjectStoreLocation.IsRemote(options.Load.DataDir) && options.Load.ObjectStore?.Access == Samplers.Storage.ObjectStoreAccess.Remote)
        {
            CheckBeforeLoading(options.Load, options);
            var o = options with { Load = options.Load with { Logger = c.Verbose ? new StderrLogger(c.Err) : null } };
            var sampler = await Progress.Run(c, $"opening {options.Load.DatasetName} at {options.Load.DataDir} for remote access",
                (p, t) => TFDatasetMultiShotMemorySampler.LoadAsync(o, new SyncProgress<LoadProgress>(x => p.Report((x.ExamplesDone, x.ExamplesTotal))), t), ct).ConfigureAwait(false);
            var t = sampler.RemoteTable!;
            c.Status($"opened {t.Builder.FullName} for remote access: {t.Count} examples; record index: " +
                string.Join(", ", t.Indexes.Select(i => $"{i.Split} {i.Origin.ToString().ToLowerInvariant()}")) + $" ({t.OpenRequests} requests, {t.OpenBytes} bytes)");
            return new LoadedDataset(t.Builder, sampler.Table, false, null, "remote access", sampler);
        }
        return await LoadAsync(c, options.Load, options, ct).ConfigureAwait(false);
    }

    private static void CheckBeforeLoading(TfdsLoadOptions load, SamplerOptions? o)
    {
        if (o is not null)
        {
            // The batch size first: the core names only one of the two counts when their product overflows.
            long batchSize = (long)o.ClassesPerBatch * o.ExamplesPerClassPerBatch;
            if (o.ClassesPerBatch >= 1 && o.ExamplesPerClassPerBatch >= 1 && batchSize > int.MaxValue)
                throw new UsageException($"--classes-per-batch {o.ClassesPerBatch} x --examples-per-class {o.ExamplesPerClassPerBatch} = {batchSize} examples a batch, more than {int.MaxValue}; lower --classes-per-batch or --examples-per-class.");
            // The core's own checks (counts at least 1, rank below world size); their messages are mapped to the options.
            _ = new PlanConfig(o.ClassesPerBatch, o.ExamplesPerClassPerBatch, o.StepsPerEpoch, o.Mode, o.Rank, o.WorldSize);
            if (o.TotalExamplesPerClass is < 1)
                throw new UsageException($"--total-examples-per-class must be at least 1, but was {o.TotalExamplesPerClass}.");
            if (o.ClassList is { Count: > 0 } list && o.ClassesPerBatch > list.Distinct().Count())
                throw new UsageException($"--classes-per-batch ({o.ClassesPerBatch}) exceeds the {list.Distinct().Count()} classes of --class-list. Lower --classes-per-batch or list more classes.");
        }
        DatasetBuilderDir dir;
        try
        {
            dir = Catalog.Open(load.DataDir, load.DatasetName);
        }
        catch (Exception e) when (e is SamplersDataException or ArgumentException or IOException)
        {
            return; // absent (perhaps to be downloaded) or unreadable: loading reports it, and the sampler checks the counts
        }
        // A split whose metadata lists no shards is the dataset's fault, not the spec's (which would say "no data").
        foreach (string spec in load.Splits)
        {
            SplitPart[] parts;
            try { parts = Splits.Parse(spec); }
            catch (ArgumentException) { continue; } // malformed: loading shows the spec with a caret
            foreach (var part in parts)
                if (dir.Info.Splits.FirstOrDefault(s => s.Name == part.Split) is { ShardLengths.Length: 0 } empty)
                {
                    string info = Path.Combine(dir.Path, "dataset_info.json");
                    throw new DataFormatException(
                        $"Split '{empty.Name}' of {dir.FullName} lists no shards (shardLengths is empty in {info}), so it holds no examples. " +
                        "The dataset's metadata is incomplete: prepare or download the dataset again, or choose other --splits.", info, key: "shardLengths");
                }
        }
        var label = dir.Features.FirstOrDefault(f => f.Key == load.YKey);
        if (o is not null && o.ClassList is not { Count: > 0 } && label is { Kind: FeatureKind.ClassLabel, NumClasses: > 0 } && o.ClassesPerBatch > label.NumClasses)
            throw new UsageException(
                $"--classes-per-batch ({o.ClassesPerBatch}) exceeds the number of classes ({label.NumClasses}) of '{load.YKey}' in {dir.FullName}. Lower --classes-per-batch to at most {label.NumClasses}.");
    }

    public static MultiShotMemorySampler Sampler(LoadedDataset data, TFDatasetSamplerOptions options) => data.Remote is { } remote ? remote : new MultiShotMemorySampler(data.Table, options);

    /// <summary>The content fingerprint of the loaded data; null with remote access (it would read every record).</summary>
    public static string? Fingerprint(LoadedDataset data) => data.Remote is null ? Samplers.Experiments.DatasetFingerprint.Compute(data.Table) : null;

    /// <summary>data/ next to the tool (packed with it), else in the current folder or a parent (a clone).</summary>
    internal static string FindEmbeddedDataDir()
    {
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "data");
                if (Directory.Exists(Path.Combine(candidate, EmbeddedDataset))) return candidate;
            }
        throw new DatasetNotFoundException(
            $"The embedded dataset '{EmbeddedDataset}' was not found in a data/ folder next to the tool or above the current folder. Run from a clone of the repository, or pass a dataset and --data-dir.",
            null, EmbeddedDataset);
    }

    /// <summary>Left-aligned columns, two spaces apart, indented by two. Every cell is escaped (<see cref="TerminalText"/>):
    /// a class name or file name with a control character, a line feed or a tab cannot break the row or the terminal.</summary>
    public static void Table(TextWriter w, string[] headers, IEnumerable<string[]> rows)
    {
        var all = rows.Select(r => r.Select(v => TerminalText.Escape(v)).ToArray()).ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToArray();
        w.WriteLine("  " + string.Join("  ", headers.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in all) w.WriteLine("  " + string.Join("  ", row.Select((v, i) => v.PadRight(widths[i]))).TrimEnd());
    }
}
