using System.CommandLine;
using Samplers.Core;
using Samplers.Experiments;

namespace Samplers.Cli;

/// <summary><c>samplers plan [dataset]</c>: the batch plans as a table, JSON lines or CSV, or one digest over them.</summary>
internal static class PlanCommand
{
    public static Command Build(CliShared s)
    {
        var dataset = CliShared.DatasetArgument();
        var epoch = new Option<int>("--epoch") { Description = "First epoch.", DefaultValueFactory = _ => 0 };
        var epochs = new Option<int>("--epochs") { Description = "Number of epochs.", DefaultValueFactory = _ => 1 };
        var batches = new Option<string?>("--batches", "-b") { Description = "Batch range START:END of this rank's batches (end exclusive; default: the whole epoch)." };
        var format = new Option<string>("--format", "-f") { Description = "table, jsonl or csv (--json means jsonl).", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "jsonl", "csv");
        var digest = new Option<bool>("--digest") { Description = "Print one SHA-256 over the plans instead of the plans." };
        return s.Define("plan",
            "The batch plans (example indices and labels) for a seed, epochs and batch range, as a table, JSON lines or CSV; with --digest one SHA-256 over them, to compare runs and machines in one line.\n\n" +
            "Examples:\n  samplers plan -c 3 --batches 0:5\n  samplers plan mnist -c 10 -e 2 --seed 7 --batches 0:5\n  samplers plan mnist -c 10 -e 2 --mode coverage --format csv > plans.csv\n" +
            "  samplers plan mnist -c 10 -e 2 --seed 7 --epochs 3 --digest\n  samplers plan mnist --rank 1 --world-size 4 --json",
            [dataset, epoch, epochs, batches, format, digest], s.Options.SamplerOptions, async (r, c, ct) =>
        {
            int firstEpoch = r.GetValue(epoch), epochCount = r.GetValue(epochs);
            if (firstEpoch < 0) throw new UsageException($"--epoch must be 0 or more, but was {firstEpoch}.");
            if (epochCount < 1) throw new UsageException($"--epochs must be at least 1, but was {epochCount}.");
            // Long: the last epoch of the range must itself be an epoch (an int); int arithmetic would wrap to a negative end.
            long lastEpoch = (long)firstEpoch + epochCount - 1;
            if (lastEpoch > int.MaxValue)
                throw new UsageException($"--epoch {firstEpoch} with --epochs {epochCount} ends at epoch {lastEpoch}, past the last epoch {int.MaxValue}; lower --epoch or --epochs.");
            var options = s.Settings(r, r.GetValue(dataset));
            var data = await s.LoadAsync(c, options, ct).ConfigureAwait(false);
            var sampler = CliShared.Sampler(data, options);
            var (start, end) = CommonOptions.ParseRange(r.GetValue(batches), sampler.Count, "--batches");
            if (r.GetValue(digest))
            {
                string d = sampler.DigestPlans(firstEpoch, epochCount, start, end, ct);
                if (c.Json)
                    c.WriteJson(new
                    {
                        digest = d, dataset = data.Dir.FullName, fingerprint = CliShared.Fingerprint(data), seed = sampler.Seed,
                        mode = options.Mode, config = sampler.PlanConfig.ToString(), firstEpoch, epochs = epochCount, batchStart = start, batchEnd = end,
                        planVersion = Planner.PlanVersion,
                    });
                else
                    c.Out.WriteLine($"{d}  {data.Dir.FullName} seed={sampler.Seed} {sampler.PlanConfig} epochs={firstEpoch}..{lastEpoch} batches={start}:{end}");
                return Program.ExitOk;
            }
            string fmt = c.Json ? "jsonl" : r.GetValue(format)!;
            var w = c.Out;
            if (fmt == "csv") w.WriteLine(PlanText.CsvHeader);
            if (fmt == "table") w.WriteLine(PlanText.TableHeader);
            foreach (var plan in sampler.Plans(firstEpoch, epochCount, start, end))
            {
                ct.ThrowIfCancellationRequested();
                switch (fmt)
                {
                    case "jsonl":
                        c.WriteJson(new { epoch = plan.Key.Epoch, batch = plan.Key.BatchId, globalBatch = plan.GlobalBatchId, indices = plan.Indices.ToArray(), labels = plan.Labels.ToArray() });
                        break;
                    case "csv":
                        foreach (string line in PlanText.CsvLines(plan)) w.WriteLine(line);
                        break;
                    default:
                        w.WriteLine(PlanText.TableLine(plan));
                        break;
                }
            }
            return Program.ExitOk;
        });
    }
}
