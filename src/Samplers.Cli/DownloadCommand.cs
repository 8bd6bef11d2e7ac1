using System.CommandLine;
using System.Globalization;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary><c>samplers download DATASET</c>: fetches a prepared TFDS dataset into the data directory.</summary>
internal static class DownloadCommand
{
    /// <summary>The longest timeout .NET timers accept (int.MaxValue milliseconds, about 24.8 days).</summary>
    private const double MaxTimeoutSeconds = int.MaxValue / 1000.0;

    public static Command Build(CliShared s)
    {
        var dataset = new Argument<string>("dataset") { Description = "The TFDS dataset to fetch: name, name/config or name[/config]:version (e.g. mnist, mnist:3.0.1)." };
        var splits = new Option<string[]>("--splits") { Description = "Only the shards of these split specs (comma-separated or repeated; default: every split)." };
        var maxParallel = new Option<int>("--max-parallel") { Description = "Files fetched at once (at least 1).", DefaultValueFactory = _ => 4 };
        var retries = new Option<int>("--retries") { Description = "Retries of a failed request (0 or more).", DefaultValueFactory = _ => 4 };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for a response or for more of its body (more than 0, at most 2147483).", DefaultValueFactory = _ => 60 };
        // Checked by the parser, so the message names the option and nothing is fetched.
        maxParallel.Validators.Add(v => { if (v.GetValueOrDefault<int>() < 1) v.AddError($"--max-parallel must be at least 1, but was {v.GetValueOrDefault<int>()}."); });
        retries.Validators.Add(v => { if (v.GetValueOrDefault<int>() < 0) v.AddError($"--retries must be 0 or more, but was {v.GetValueOrDefault<int>()}."); });
        timeout.Validators.Add(v =>
        {
            double t = v.GetValueOrDefault<double>();
            if (!(t > 0 && t <= MaxTimeoutSeconds))
                v.AddError(string.Create(CultureInfo.InvariantCulture, $"--timeout must be more than 0 and at most {Math.Floor(MaxTimeoutSeconds)} seconds (about 24 days), but was {t}."));
        });
        var cmd = s.Describe(new Command("download"),
            "Downloads a prepared TFDS dataset (dataset_info.json, features.json, label files, TFRecord shards) into the data directory, " +
            "verifying every file and resuming an interrupted download. Does nothing when the dataset is already complete.\n\n" +
            "Examples:\n  samplers download mnist\n  samplers download mnist:3.0.1 --splits test --data-dir ~/tensorflow_datasets\n" +
            "  samplers download mnist --base-url http://mirror.example/tfds-data --json");
        foreach (Symbol symbol in new Symbol[] { dataset, s.Options.DataDir, splits, s.Options.BaseUrl, maxParallel, retries, timeout })
        {
            if (symbol is Argument a) cmd.Add(a);
            else cmd.Add((Option)symbol);
        }
        cmd.SetAction(s.Guarded(async (r, c, ct) =>
        {
            string[] only = (r.GetValue(splits) ?? []).SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
            var request = new TfdsDownloadOptions(r.GetValue(dataset)!)
            {
                DataDir = r.GetValue(s.Options.DataDir), BaseUrl = r.GetValue(s.Options.BaseUrl), Splits = only.Length > 0 ? only : null,
                MaxDegreeOfParallelism = r.GetValue(maxParallel), Retries = r.GetValue(retries), Timeout = TimeSpan.FromSeconds(r.GetValue(timeout)),
            };
            string dir = await Progress.Run(c, $"downloading {request.DatasetName}", (p, t) =>
                TfdsDownloader.DownloadAsync(request, new SyncProgress<DownloadProgress>(d => p.Report((d.BytesDone, Math.Max(d.BytesExpected, d.BytesDone)))), t), ct).ConfigureAwait(false);
            var builder = Catalog.Open(request.DataDir, request.DatasetName.Contains(':', StringComparison.Ordinal) ? request.DatasetName : request.DatasetName + ":" + Path.GetFileName(dir));
            if (c.Json)
                c.WriteJson(new { dataset = builder.FullName, path = dir, splits = builder.Info.Splits.Select(sp => new { name = sp.Name, examples = sp.NumExamples, shards = sp.ShardLengths.Length }) });
            else
                c.Out.WriteLine($"{builder.FullName} is in {dir} ({string.Join(", ", builder.Info.Splits.Select(sp => $"{sp.Name}: {sp.NumExamples}"))})");
            return Program.ExitOk;
        }));
        return cmd;
    }
}
