using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Samplers.Core;
using Samplers.Core.Statistics;
using Samplers.Experiments;
using Samplers.Export;
using Samplers.Tfds;
using Samplers.Tfds.Download;

namespace Samplers.Cli;

/// <summary>The command tree. Every command is a thin layer over the libraries: load, call, print.</summary>
internal sealed class Cli(TextWriter output, TextWriter error, bool interactive)
{
    /// <summary>The dataset committed under data/ in the repository (and packed with the tool).</summary>
    public const string EmbeddedDataset = "synthetic_digits";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private readonly CommonOptions _o = new();
    private readonly Option<bool> _json = new("--json") { Description = "Machine-readable output: one JSON document (JSON lines for plan). No progress output.", Recursive = true };
    private readonly Option<bool> _verbose = new("--verbose", "-v") { Description = "Show stack traces of errors and the library's log messages.", Recursive = true };

    public RootCommand BuildRoot()
    {
        var root = new RootCommand(
            "samplers: inspect TFDS datasets, preview and digest class-balanced batch plans, run the sampler, manage the Parquet cache, export to NumPy.\n\n" +
            "Examples:\n  samplers run\n  samplers info mnist --data-dir ~/tensorflow_datasets\n  samplers plan mnist -c 10 -e 2 --seed 7 --batches 0:5\n" +
            "  samplers plan mnist -c 10 -e 2 --seed 7 --digest\n  samplers export mnist --splits test --out mnist-test.npz");
        root.Add(_json);
        root.Add(_verbose);
        root.Add(InfoCommand());
        root.Add(PlanCommand());
        root.Add(RunCommand());
        root.Add(ExportCommand());
        root.Add(CacheCommand());
        root.Add(DownloadCommand());
        return root;
    }

    private static Argument<string> DatasetArgument() => new("dataset") { Description = "The TFDS dataset: name, name/config or name[/config]:version (e.g. mnist, mnist:3.0.1)." };

    private CliContext Ctx(ParseResult r) => new(output, error, interactive, r.GetValue(_json), r.GetValue(_verbose));

    /// <summary>A command: its own arguments and options, then a shared option set, and the action under <see cref="Guarded"/>.</summary>
    private Command Define(string name, string description, Symbol[] own, IEnumerable<Option> shared,
        Func<ParseResult, CliContext, CancellationToken, Task<int>> action)
    {
        var cmd = new Command(name, description);
        foreach (var symbol in own)
        {
            if (symbol is Argument a) cmd.Add(a);
            else cmd.Add((Option)symbol);
        }
        foreach (var o in shared) cmd.Add(o);
        cmd.SetAction(Guarded(action));
        return cmd;
    }

    /// <summary>Refuses a negative <c>--epoch</c>.</summary>
    private static int FirstEpoch(int epoch) =>
        epoch >= 0 ? epoch : throw new UsageException($"--epoch must be 0 or more, but was {epoch}.");

    /// <summary>Refuses an epoch count below 1.</summary>
    private static int EpochCount(int epochs) =>
        epochs >= 1 ? epochs : throw new UsageException($"--epochs must be at least 1, but was {epochs}.");

    /// <summary>Runs an action with the tool's error conventions: one readable message, exit 1 for usage, 2 for data.</summary>
    private Func<ParseResult, CancellationToken, Task<int>> Guarded(Func<ParseResult, CliContext, CancellationToken, Task<int>> action) => async (r, ct) =>
    {
        var c = Ctx(r);
        try
        {
            return await action(r, c, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            (int code, string kind) = e switch
            {
                SamplersDataException => (Program.ExitData, "data error"),
                IOException or UnauthorizedAccessException => (Program.ExitData, "file error"),
                UsageException or ArgumentException or InvalidOperationException => (Program.ExitUsage, "usage error"),
                OperationCanceledException => (Program.ExitData, "cancelled"),
                _ => (Program.ExitInternal, "unexpected error"),
            };
            string message = Clean(e);
            c.Err.WriteLine($"samplers: {kind}: {message}");
            if (code == Program.ExitInternal && !c.Verbose) c.Err.WriteLine("(this is a bug; rerun with --verbose for the stack trace)");
            if (c.Verbose) c.Err.WriteLine(e.ToString());
            if (c.Json) c.WriteJson(new { error = message, kind, type = e.GetType().Name, exitCode = code });
            return code;
        }
    };

    /// <summary>The message without the runtime's "(Parameter 'x')" / "Actual value was" tails, which repeat what the message says.</summary>
    private static string Clean(Exception e)
    {
        string m = e.Message;
        if (e is ArgumentException a && a.ParamName is { } p)
        {
            int i = m.IndexOf($" (Parameter '{p}')", StringComparison.Ordinal);
            if (i >= 0) m = m[..i];
        }
        return m.Replace(Environment.NewLine, " ");
    }

    private async Task<(LoadedDataset Data, TFDatasetSamplerOptions Options)> Load(ParseResult r, CliContext c, string? dataset, CancellationToken ct)
    {
        string? dataDirOverride = null;
        if (dataset is null)
        {
            dataset = EmbeddedDataset;
            dataDirOverride = r.GetValue(_o.DataDir) is null ? FindEmbeddedDataDir() : null;
        }
        var options = _o.ToOptions(r, dataset, dataDirOverride);
        var data = await Progress.Run(c, $"loading {dataset}", (p, t) => DatasetLoading.LoadAsync(options, c.Verbose ? new StderrLogger(c.Err) : null, p, t), ct).ConfigureAwait(false);
        c.Status($"loaded {data.Dir.FullName}: {data.Table.Count} examples" + (data.FromCache ? $" from the cache {data.CachePath}" : " from TFRecords" + (data.CachePath is null ? " (cache off)" : $"; cache: {data.CacheDetail.TrimStart(';', ' ')}")));
        return (data, options);
    }

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

    private static MultiShotMemorySampler Sampler(LoadedDataset data, TFDatasetSamplerOptions options) => new(data.Table, options);

    // ---------------------------------------------------------------- info
    private Command InfoCommand()
    {
        var dataset = DatasetArgument();
        var noCounts = new Option<bool>("--no-counts") { Description = "Skip loading the splits (no per-class counts)." };
        return Define("info",
            "Versions, configs, features (key, type, shape, dtype), splits with sizes, class names and per-class counts of the loaded splits, cache status.\n\n" +
            "Examples:\n  samplers info mnist --data-dir ~/tensorflow_datasets\n  samplers info mnist --splits train --json\n  samplers info mnist --no-counts",
            [dataset, noCounts], _o.LoadOptions, async (r, c, ct) =>
        {
            string name = r.GetValue(dataset)!;
            var options = _o.ToOptions(r, name);
            var dir = Catalog.Open(options.Load.DataDir, name);
            string[] versions = Catalog.Versions(dir);
            string[] configs = Catalog.Configs(dir);
            var features = dir.Features.Select(f => new
            {
                key = f.Key, type = f.Kind.ToString(), dtype = DTypes.Name(f.DType), shape = f.Shape,
                numClasses = f.Kind == FeatureKind.ClassLabel ? f.NumClasses : (long?)null,
            }).ToArray();
            var splits = dir.Info.Splits.Select(s => new { name = s.Name, examples = s.NumExamples, shards = s.ShardLengths.Length, bytes = s.NumBytes }).ToArray();
            IReadOnlyList<ClassCount>? classes = null;
            var entry = TfdsCacheEntry.Resolve(options.Load);
            string cacheStatus = entry is null ? "off" : entry.Exists ? $"present: {entry.Path} ({entry.Bytes} bytes; `samplers cache {name} verify` checks it)" : $"absent: {entry.Path}";
            if (!r.GetValue(noCounts))
            {
                var (data, _) = await Load(r, c, name, ct).ConfigureAwait(false);
                classes = data.Table.ClassCounts();
                if (entry is not null) cacheStatus = data.FromCache ? $"hit: {data.CachePath}" : entry.Exists ? $"built now: {data.CachePath}" : $"not stored: {data.CacheDetail.TrimStart(';', ' ')}";
            }
            if (c.Json)
            {
                c.WriteJson(new
                {
                    dataset = dir.FullName, name = dir.Name, config = dir.Config, version = dir.Version, path = dir.Path,
                    versions, configs, features, splits, loadedSplits = options.Load.Splits, classes, cache = cacheStatus,
                });
                return 0;
            }
            var w = c.Out;
            w.WriteLine($"dataset   {dir.FullName}");
            w.WriteLine($"path      {dir.Path}");
            w.WriteLine($"versions  {string.Join(", ", versions)}");
            w.WriteLine($"configs   {(configs.Length == 0 ? "none" : string.Join(", ", configs))}");
            w.WriteLine("features");
            Table(w, ["key", "type", "dtype", "shape", "classes"],
                features.Select(f => new[] { f.key, f.type, f.dtype, "(" + string.Join(", ", f.shape) + ")", f.numClasses?.ToString(Inv) ?? "" }));
            w.WriteLine("splits");
            Table(w, ["split", "examples", "shards", "bytes"], splits.Select(s => new[] { s.name, s.examples.ToString(Inv), s.shards.ToString(Inv), s.bytes.ToString(Inv) }));
            if (classes is not null)
            {
                w.WriteLine($"classes in {string.Join(",", options.Load.Splits)} (y_key {options.Load.YKey})");
                Table(w, ["label", "name", "count"], classes.Select(k => new[] { k.Label.ToString(Inv), k.Name, k.Count.ToString(Inv) }));
            }
            w.WriteLine($"cache     {cacheStatus}");
            return 0;
        });
    }

    // ---------------------------------------------------------------- plan
    private Command PlanCommand()
    {
        var dataset = DatasetArgument();
        var epoch = new Option<int>("--epoch") { Description = "First epoch.", DefaultValueFactory = _ => 0 };
        var epochs = new Option<int>("--epochs") { Description = "Number of epochs.", DefaultValueFactory = _ => 1 };
        var batches = new Option<string?>("--batches", "-b") { Description = "Batch range START:END of this rank's batches (end exclusive; default: the whole epoch)." };
        var format = new Option<string>("--format", "-f") { Description = "table, jsonl or csv (--json means jsonl).", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "jsonl", "csv");
        var digest = new Option<bool>("--digest") { Description = "Print one SHA-256 over the plans instead of the plans." };
        return Define("plan",
            "The batch plans (example indices and labels) for a seed, epochs and batch range, as a table, JSON lines or CSV; with --digest one SHA-256 over them, to compare runs and machines in one line.\n\n" +
            "Examples:\n  samplers plan mnist -c 10 -e 2 --seed 7 --batches 0:5\n  samplers plan mnist -c 10 -e 2 --mode coverage --format csv > plans.csv\n" +
            "  samplers plan mnist -c 10 -e 2 --seed 7 --epochs 3 --digest\n  samplers plan mnist --rank 1 --world-size 4 --json",
            [dataset, epoch, epochs, batches, format, digest], _o.SamplerOptions, async (r, c, ct) =>
        {
            var (data, options) = await Load(r, c, r.GetValue(dataset), ct).ConfigureAwait(false);
            var sampler = Sampler(data, options);
            int firstEpoch = FirstEpoch(r.GetValue(epoch)), epochCount = EpochCount(r.GetValue(epochs));
            var (start, end) = CommonOptions.ParseRange(r.GetValue(batches), sampler.Count, "--batches");
            if (r.GetValue(digest))
            {
                string d = PlanDigest.Compute(sampler.Planner, sampler.Seed, firstEpoch, epochCount, start, end - start);
                if (c.Json)
                    c.WriteJson(new
                    {
                        digest = d, dataset = data.Dir.FullName, fingerprint = DatasetFingerprint.Compute(data.Table), seed = sampler.Seed,
                        mode = options.Mode, config = sampler.PlanConfig.ToString(), firstEpoch, epochs = epochCount, batchStart = start, batchEnd = end,
                        planVersion = Planner.PlanVersion,
                    });
                else
                    c.Out.WriteLine($"{d}  {data.Dir.FullName} seed={sampler.Seed} {sampler.PlanConfig} epochs={firstEpoch}..{firstEpoch + epochCount - 1} batches={start}:{end}");
                return 0;
            }
            string fmt = c.Json ? "jsonl" : r.GetValue(format)!;
            var w = c.Out;
            if (fmt == "csv") w.WriteLine(PlanText.CsvHeader);
            if (fmt == "table") w.WriteLine(PlanText.TableHeader);
            for (int e = firstEpoch; e < firstEpoch + epochCount; e++)
                for (int b = start; b < end; b++)
                {
                    ct.ThrowIfCancellationRequested();
                    var plan = sampler.Planner.Plan(new PlanKey(sampler.Seed, e, b));
                    switch (fmt)
                    {
                        case "jsonl":
                            c.WriteJson(new { epoch = e, batch = b, globalBatch = plan.GlobalBatchId, indices = plan.Indices.ToArray(), labels = plan.Labels.ToArray() });
                            break;
                        case "csv":
                            foreach (string line in PlanText.CsvLines(plan)) w.WriteLine(line);
                            break;
                        default:
                            w.WriteLine(PlanText.TableLine(plan));
                            break;
                    }
                }
            return 0;
        });
    }

    // ---------------------------------------------------------------- run
    private Command RunCommand()
    {
        var dataset = new Argument<string?>("dataset") { Description = "The TFDS dataset (default: the embedded synthetic_digits in data/).", Arity = ArgumentArity.ZeroOrOne };
        var epochs = new Option<int>("--epochs") { Description = "Epochs to run.", DefaultValueFactory = _ => 1 };
        return Define("run",
            "Builds the sampler and runs epochs like a training loop (without training): prints the batch size, class-balance statistics " +
            "(per-class counts, min/max, chi-square p-value), examples seen vs dataset size, batches/s and the plan digest.\n\n" +
            "Examples:\n  samplers run\n  samplers run -c 10 -e 4 --steps-per-epoch 200 --epochs 3 --mode coverage\n  samplers run mnist --data-dir ~/tensorflow_datasets -c 10 --seed 7 --json",
            [dataset, epochs], _o.SamplerOptions, async (r, c, ct) =>
        {
            int epochCount = EpochCount(r.GetValue(epochs));
            var (data, options) = await Load(r, c, r.GetValue(dataset), ct).ConfigureAwait(false);
            var sampler = Sampler(data, options);
            var tally = new BalanceTally(sampler.ClassIndex, data.Table.Count);
            using var digest = new PlanDigest();
            long batches = 0;
            var clock = Stopwatch.StartNew();
            await Progress.Run(c, "sampling", (p, t) =>
            {
                long total = (long)epochCount * sampler.Count;
                for (int e = 0; e < epochCount; e++)
                {
                    for (int b = 0; b < sampler.Count; b++)
                    {
                        t.ThrowIfCancellationRequested();
                        using var batch = sampler[b];
                        tally.Add(batch.Indices, batch.ClassOrdinals);
                        digest.Add(batch.Key, batch.GlobalBatchId, batch.Indices, batch.ClassOrdinals);
                        batches++;
                        if ((batches & 255) == 0) p.Report((batches, total));
                    }
                    sampler.OnEpochEnd();
                }
                p.Report((batches, total));
                return Task.FromResult(0);
            }, ct).ConfigureAwait(false);
            clock.Stop();
            var s = tally.Summary();
            string d = digest.Finish();
            double rate = batches / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            var names = sampler.ClassNames;
            var perClass = Enumerable.Range(0, s.Counts.Length).Select(o => new { label = sampler.ClassList[o], name = names[o], count = s.Counts[o], visits = s.Visits[o] }).ToArray();
            if (c.Json)
            {
                c.WriteJson(new
                {
                    dataset = data.Dir.FullName, fingerprint = DatasetFingerprint.Compute(data.Table), splits = options.Load.Splits,
                    batchSize = sampler.BatchSize, classesPerBatch = sampler.ClassesPerBatch, examplesPerClassPerBatch = sampler.ExamplesPerClassPerBatch,
                    stepsPerEpoch = sampler.StepsPerEpoch, batchesPerEpoch = sampler.Count, epochs = epochCount, seed = sampler.Seed, mode = options.Mode,
                    rank = options.Rank, worldSize = options.WorldSize,
                    batches, rows = s.Rows, perClass, min = s.Min, max = s.Max, mean = s.Mean, chiSquare = s.ChiSquare, degreesOfFreedom = s.DegreesOfFreedom,
                    pValue = s.PValue, examplesSeen = s.DistinctExamples, examplesAvailable = s.AvailableExamples, datasetSize = data.Table.Count,
                    coverage = s.Coverage, seconds = clock.Elapsed.TotalSeconds, batchesPerSecond = rate, planDigest = d, planVersion = Planner.PlanVersion,
                });
                return 0;
            }
            var w = c.Out;
            w.WriteLine($"dataset        {data.Dir.FullName} ({string.Join(",", options.Load.Splits)}): {data.Table.Count} examples, {sampler.ClassList.Count} classes");
            w.WriteLine($"batch size     {sampler.BatchSize} ({sampler.ClassesPerBatch} classes x {sampler.ExamplesPerClassPerBatch} examples per class)");
            w.WriteLine(string.Create(Inv, $"sampling       {options.Mode}, seed {sampler.Seed}, rank {options.Rank}/{options.WorldSize}, {epochCount} epoch(s) x {sampler.Count} batches"));
            w.WriteLine("per-class rows");
            Table(w, ["label", "name", "rows", "visits"], perClass.Select(k => new[] { k.label.ToString(Inv), k.name, k.count.ToString(Inv), k.visits.ToString(Inv) }));
            w.WriteLine(string.Create(Inv, $"balance        rows per class min {s.Min}, max {s.Max}, mean {s.Mean:0.##}; chi-square over class visits {s.ChiSquare:0.###} (df {s.DegreesOfFreedom}), p-value {s.PValue:0.####}"));
            w.WriteLine(string.Create(Inv, $"examples seen  {s.DistinctExamples} of {s.AvailableExamples} sampled ({s.Coverage:P1}); dataset size {data.Table.Count}"));
            w.WriteLine(string.Create(Inv, $"speed          {batches} batches in {clock.Elapsed.TotalSeconds:0.###} s = {rate:N0} batches/s"));
            w.WriteLine($"plan digest    {d}");
            return 0;
        });
    }

    // ---------------------------------------------------------------- export
    private Command ExportCommand()
    {
        var dataset = DatasetArgument();
        var outPath = new Option<string>("--out", "-o") { Description = "Output: a .npz file, or a folder of .npy files with --format npy.", Required = true };
        var format = new Option<string>("--format", "-f") { Description = "npz (one archive, as np.savez) or npy (a folder: x.npy, y.npy, id.npy, ...).", DefaultValueFactory = _ => "npz" };
        format.AcceptOnlyFromAmong("npz", "npy");
        var compress = new Option<bool>("--compress") { Description = "Deflate the .npz members (as np.savez_compressed)." };
        var batches = new Option<string?>("--batches", "-b") { Description = "Export the rows of these planned batches (START:END of epoch --epoch) instead of the examples." };
        var epoch = new Option<int>("--epoch") { Description = "Epoch of --batches.", DefaultValueFactory = _ => 0 };
        return Define("export",
            "Writes decoded examples to NumPy: x (examples), y (int64 labels), id (TFDS ids) for the selected splits (and --class-list / --total-examples-per-class); " +
            "with --batches, the rows of planned batches in order, plus index (source row), epoch and batch arrays.\n\n" +
            "Examples:\n  samplers export mnist --splits test --out mnist-test.npz\n  samplers export mnist --format npy --out mnist-npy\n" +
            "  samplers export mnist -c 10 -e 2 --seed 7 --batches 0:100 --out batches.npz\n  python -c \"import numpy as np; d = np.load('mnist-test.npz'); print(d['x'].shape)\"",
            [dataset, outPath, format, compress, batches, epoch], _o.SamplerOptions, async (r, c, ct) =>
        {
            string path = r.GetValue(outPath)!;
            var (data, options) = await Load(r, c, r.GetValue(dataset), ct).ConfigureAwait(false);
            var exportOptions = new NumpyExportOptions { Folder = r.GetValue(format) == "npy", Compress = r.GetValue(compress) };
            string? range = r.GetValue(batches);
            int rows;
            if (range is null)
            {
                // Without batches, the examples the sampler would draw from: every row unless a class list or total per class selects.
                if (options.ClassList is not null || options.TotalExamplesPerClass is not null)
                    exportOptions = NumpyExport.SamplerRows(Sampler(data, options), exportOptions);
                rows = exportOptions.Rows?.Count ?? data.Table.Count;
            }
            else
            {
                var s = Sampler(data, options);
                int e = FirstEpoch(r.GetValue(epoch));
                var (start, end) = CommonOptions.ParseRange(range, s.Count, "--batches");
                exportOptions = NumpyExport.PlannedBatches(s, e, start, end, exportOptions);
                rows = exportOptions.Rows!.Count;
            }
            var members = NumpyExport.Write(data.Table, path, exportOptions);
            if (c.Json)
                c.WriteJson(new { path = Path.GetFullPath(path), format = exportOptions.Folder ? "npy" : "npz", rows, members, dtype = DTypes.Name(data.Table.DType), exampleShape = data.Table.ExampleShape.ToArray() });
            else
                c.Out.WriteLine($"wrote {rows} rows ({string.Join(", ", members)}; x {DTypes.Name(data.Table.DType)} ({string.Join(", ", data.Table.ExampleShape.ToArray())})) to {Path.GetFullPath(path)}");
            return 0;
        });
    }

    // ---------------------------------------------------------------- cache
    private Command CacheCommand()
    {
        var dataset = DatasetArgument();
        var action = new Argument<string>("action") { Description = "show (default), build, verify or clear.", DefaultValueFactory = _ => "show" };
        action.AcceptOnlyFromAmong("show", "build", "verify", "clear");
        return Define("cache",
            "Shows, builds, verifies or clears the Parquet cache file of a dataset's split selection (--splits, --x-key, --y-key).\n" +
            "Exit code 2 when verify finds the file absent, stale or damaged.\n\n" +
            "Examples:\n  samplers cache mnist\n  samplers cache mnist build --splits train,test\n  samplers cache mnist verify --json\n  samplers cache mnist clear --cache-dir /data/cache",
            [dataset, action], _o.LoadOptions, async (r, c, ct) =>
        {
            string name = r.GetValue(dataset)!;
            string what = r.GetValue(action)!;
            var options = _o.ToOptions(r, name);
            var entry = TfdsCacheEntry.Resolve(options.Load)
                ?? throw new UsageException($"The cache is off ({(options.Load.UseCache ? "SAMPLERS_NO_CACHE is set" : "--no-cache")}); nothing to {what}.");
            int code = 0;
            string status;
            string? reason = null;
            switch (what)
            {
                case "build":
                    var (data, _) = await Load(r, c, name, ct).ConfigureAwait(false);
                    status = data.FromCache ? "already built (hit)" : entry.Exists ? "built" : "not stored";
                    reason = data.CacheDetail;
                    if (!entry.Exists) code = Program.ExitData;
                    break;
                case "verify":
                    var v = await entry.VerifyAsync(ct).ConfigureAwait(false);
                    status = v.IsHit ? "valid" : "invalid";
                    reason = v.IsHit ? $"{v.Table!.Count} examples, checksum verified" : $"{v.Reason}: {v.Detail}";
                    if (!v.IsHit) code = Program.ExitData;
                    break;
                case "clear":
                    status = entry.Delete() ? "deleted" : "absent (nothing to delete)";
                    break;
                default:
                    status = entry.Exists ? "present" : "absent";
                    break;
            }
            if (c.Json)
                c.WriteJson(new { dataset = entry.Builder.FullName, action = what, status, path = entry.Path, exists = entry.Exists, bytes = entry.Bytes, detail = reason, fingerprint = entry.Fingerprint.Value, key = entry.Key.Canonical.Replace('\u001f', '|') });
            else
            {
                c.Out.WriteLine($"dataset  {entry.Builder.FullName} ({string.Join(",", options.Load.Splits)}; {options.Load.XKey}, {options.Load.YKey})");
                c.Out.WriteLine($"cache    {entry.Path}");
                c.Out.WriteLine($"status   {status}" + (entry.Exists ? $", {entry.Bytes} bytes" : ""));
                if (!string.IsNullOrEmpty(reason)) c.Out.WriteLine($"detail   {reason.TrimStart(';', ' ')}");
            }
            if (code != 0 && !c.Json) c.Err.WriteLine($"samplers: data error: cache {what}: {status}" + (reason is null ? "" : $" ({reason.TrimStart(';', ' ')})"));
            return code;
        });
    }

    // ---------------------------------------------------------------- download
    private Command DownloadCommand()
    {
        var dataset = DatasetArgument();
        var splits = new Option<string[]>("--splits") { Description = "Only the shards of these split specs (comma-separated or repeated; default: every split)." };
        var maxParallel = new Option<int>("--max-parallel") { Description = "Files fetched at once.", DefaultValueFactory = _ => 4 };
        var retries = new Option<int>("--retries") { Description = "Retries of a failed request.", DefaultValueFactory = _ => 4 };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for a response or for more of its body.", DefaultValueFactory = _ => 60 };
        var cmd = new Command("download",
            "Downloads a prepared TFDS dataset (dataset_info.json, features.json, label files, TFRecord shards) into the data directory, " +
            "verifying every file and resuming an interrupted download. Does nothing when the dataset is already complete.\n\n" +
            "Examples:\n  samplers download mnist\n  samplers download mnist:3.0.1 --splits test --data-dir ~/tensorflow_datasets\n" +
            "  samplers download mnist --base-url http://mirror.example/tfds-data --json")
        { dataset, _o.DataDir, splits, _o.BaseUrl, maxParallel, retries, timeout };
        cmd.SetAction(Guarded(async (r, c, ct) =>
        {
            string[] only = (r.GetValue(splits) ?? []).SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
            var request = new DownloadRequest(r.GetValue(dataset)!)
            {
                DataDirectory = r.GetValue(_o.DataDir), BaseUrl = r.GetValue(_o.BaseUrl), Splits = only.Length > 0 ? only : null,
                MaxParallel = r.GetValue(maxParallel), Retries = r.GetValue(retries), Timeout = TimeSpan.FromSeconds(r.GetValue(timeout)),
            };
            string dir = await Progress.Run(c, $"downloading {request.DatasetName}", (p, t) =>
                TfdsDownloader.DownloadAsync(request, new SyncProgress<DownloadProgress>(d => p.Report((d.BytesDone, Math.Max(d.BytesExpected, d.BytesDone)))), t), ct).ConfigureAwait(false);
            var builder = Catalog.Open(request.DataDirectory, request.DatasetName.Contains(':', StringComparison.Ordinal) ? request.DatasetName : request.DatasetName + ":" + Path.GetFileName(dir));
            if (c.Json)
                c.WriteJson(new { dataset = builder.FullName, path = dir, splits = builder.Info.Splits.Select(s => new { name = s.Name, examples = s.NumExamples, shards = s.ShardLengths.Length }) });
            else
                c.Out.WriteLine($"{builder.FullName} is in {dir} ({string.Join(", ", builder.Info.Splits.Select(s => $"{s.Name}: {s.NumExamples}"))})");
            return 0;
        }));
        return cmd;
    }

    // ---------------------------------------------------------------- helpers
    /// <summary>Left-aligned columns, two spaces apart, indented by two.</summary>
    private static void Table(TextWriter w, string[] headers, IEnumerable<string[]> rows)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToArray();
        w.WriteLine("  " + string.Join("  ", headers.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in all) w.WriteLine("  " + string.Join("  ", row.Select((v, i) => v.PadRight(widths[i]))).TrimEnd());
    }
}
