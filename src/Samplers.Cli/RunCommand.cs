using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Samplers.Core;
using Samplers.Experiments;

namespace Samplers.Cli;

/// <summary><c>samplers run [dataset]</c>: epochs through the sampler like a training loop, with the sampler's report.</summary>
internal static class RunCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Build(CliShared s)
    {
        var dataset = CliShared.DatasetArgument();
        var epochs = new Option<int>("--epochs") { Description = "Epochs to run.", DefaultValueFactory = _ => 1 };
        return s.Define("run",
            "Builds the sampler and runs epochs like a training loop (without training): prints the batch size, class-balance statistics " +
            "(per-class counts, min/max, chi-square p-value), examples seen vs dataset size, batches/s and the plan digest.\n\n" +
            "Examples:\n  samplers run\n  samplers run -c 10 -e 4 --steps-per-epoch 200 --epochs 3 --mode coverage\n  samplers run mnist --data-dir ~/tensorflow_datasets -c 10 --seed 7 --json\n  samplers run cars196 --resize 224x224 -c 16 -e 2",
            [dataset, epochs, s.Options.Resize], s.Options.SamplerOptions, async (r, c, ct) =>
        {
            int epochCount = r.GetValue(epochs);
            if (epochCount < 1) throw new UsageException($"--epochs must be at least 1, but was {epochCount}.");
            var options = s.Settings(r, r.GetValue(dataset));
            var data = await s.LoadAsync(c, options, ct).ConfigureAwait(false);
            var sampler = CliShared.Sampler(data, options);
            long total = (long)epochCount * sampler.Count;
            // The report is the sampler's; the tool only times the call (tally and digest included).
            var clock = Stopwatch.StartNew();
            var report = await Progress.Run(c, "sampling",
                (p, t) => Task.FromResult(sampler.RunEpochs(epochCount, new SyncProgress<long>(done => p.Report((done, total))), t)), ct).ConfigureAwait(false);
            clock.Stop();
            var b = report.Balance;
            double rate = report.Batches / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            var perClass = report.PerClass.Select(k => new { label = k.Label, name = k.Name, count = k.Rows, visits = k.Visits }).ToArray();
            if (c.Json)
            {
                c.WriteJson(new
                {
                    dataset = data.Dir.FullName, fingerprint = CliShared.Fingerprint(data), splits = options.Load.Splits,
                    batchSize = sampler.BatchSize, classesPerBatch = sampler.ClassesPerBatch, examplesPerClassPerBatch = sampler.ExamplesPerClassPerBatch,
                    stepsPerEpoch = sampler.StepsPerEpoch, batchesPerEpoch = sampler.Count, epochs = epochCount, seed = sampler.Seed, mode = options.Mode,
                    rank = options.Rank, worldSize = options.WorldSize, table = data.Remote is null ? data.Table.Backing.ToString().ToLowerInvariant() : "remote", changeCheck = data.Remote is null ? data.Table.Mapped?.ChangeCheck : null,
                    remote = data.Remote?.RemoteTable is { } rt ? new { requests = rt.Requests, bytesFetched = rt.BytesFetched, recordsFetched = rt.RecordsFetched, recordBytesFetched = rt.RecordBytesFetched, recordBytesTotal = rt.RecordBytesTotal, openRequests = rt.OpenRequests, openBytes = rt.OpenBytes } : null,
                    batches = report.Batches, rows = b.Rows, perClass, min = b.Min, max = b.Max, mean = b.Mean, chiSquare = b.ChiSquare, degreesOfFreedom = b.DegreesOfFreedom,
                    pValue = b.PValue, examplesSeen = b.DistinctExamples, examplesAvailable = b.AvailableExamples, datasetSize = data.Table.Count,
                    coverage = b.Coverage, seconds = clock.Elapsed.TotalSeconds, batchesPerSecond = rate, planDigest = report.PlanDigest, planVersion = Planner.PlanVersion,
                });
                return Program.ExitOk;
            }
            var w = c.Out;
            w.WriteLine($"dataset        {data.Dir.FullName} ({string.Join(",", options.Load.Splits)}): {data.Table.Count} examples, {sampler.ClassList.Count} classes");
            w.WriteLine($"batch size     {sampler.BatchSize} ({sampler.ClassesPerBatch} classes x {sampler.ExamplesPerClassPerBatch} examples per class)");
            w.WriteLine(string.Create(Inv, $"sampling       {options.Mode}, seed {sampler.Seed}, rank {options.Rank}/{options.WorldSize}, {epochCount} epoch(s) x {sampler.Count} batches"));
            w.WriteLine("per-class rows");
            CliShared.Table(w, ["label", "name", "rows", "visits"], perClass.Select(k => new[] { k.label.ToString(Inv), k.name, k.count.ToString(Inv), k.visits.ToString(Inv) }));
            w.WriteLine(string.Create(Inv, $"balance        rows per class min {b.Min}, max {b.Max}, mean {b.Mean:0.##}; chi-square over class visits {b.ChiSquare:0.###} (df {b.DegreesOfFreedom}), p-value {b.PValue:0.####}"));
            w.WriteLine(string.Create(Inv, $"examples seen  {b.DistinctExamples} of {b.AvailableExamples} sampled ({b.Coverage:P1}); dataset size {data.Table.Count}"));
            w.WriteLine(string.Create(Inv, $"speed          {report.Batches} batches in {clock.Elapsed.TotalSeconds:0.###} s = {rate:N0} batches/s"));
            if (data.Remote?.RemoteTable is { } remote)
                w.WriteLine(string.Create(Inv, $"remote reads   {remote.RecordsFetched} records in {remote.Requests} requests, {remote.BytesFetched} bytes fetched for {remote.RecordBytesFetched} bytes of records ({remote.RecordBytesTotal} bytes in all the table's records); opening: {remote.OpenRequests} requests, {remote.OpenBytes} bytes"));
            w.WriteLine($"plan digest    {report.PlanDigest}");
            return Program.ExitOk;
        });
    }
}
