using System.Diagnostics;
using System.Globalization;
using Samplers.Imaging;

namespace Samplers.Bench;

/// <summary>
/// How a <see cref="PrefetchLoader"/>'s throughput grows with its workers: SimCLR batches (64 classes x 4 examples, two
/// 224x224 float32 views of each 500x375 photo) drained by a consumer that does nothing else, for each worker count in
/// turn, round after round (interleaved, so a change in the machine's load hits every count alike). Each worker runs the
/// augmenter on one thread by default (<c>--threads</c>), so N workers use N threads. Prints batches per second per count (median over the rounds) and
/// the scaling, rate(N) / (N x rate(1)).
/// Usage: <c>dotnet run -c Release --project bench/Samplers.Bench -- prefetch-scaling [--workers 1,2] [--batches 8] [--rounds 3] [--threads 1]</c>.
/// </summary>
internal static class PrefetchScalingCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(string[] args)
    {
        int[] workers = [1, 2];
        int batches = 8, rounds = 3, threads = 1;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--workers": workers = Next().Split(',').Select(s => int.Parse(s, Inv)).ToArray(); break;
                case "--batches": batches = int.Parse(Next(), Inv); break;
                case "--rounds": rounds = int.Parse(Next(), Inv); break;
                case "--threads": threads = int.Parse(Next(), Inv); break;
                default: Console.Error.WriteLine("usage: prefetch-scaling [--workers 1,2] [--batches N] [--rounds R] [--threads T (augmenter threads per batch; -1: all cores)]"); return 2;
            }
        }
        // 64 classes x 4 photos of 500x375 (distinct pixels per row, so no row is a copy of another).
        const int h = 375, w = 500, rows = 256;
        var b = ExampleTableBuilder.Fixed(DType.UInt8, [h, w, 3], rows);
        for (int r = 0; r < rows; r++)
        {
            ResizeBenchmarks.Photo(w, h, (ulong)r + 1).CopyTo(b.Slot(r));
            b.SetLabel(r, r % 64);
        }
        ExampleTable table = b.Build();
        Console.WriteLine($"# {Environment.ProcessorCount} cores, load average {AnchorsCommand.LoadAverage()} (idle: under 0.5 before the first round, nothing else of ours running), {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; " +
                          $"SimCLR 64x4 batches of two 224x224 views, {batches} batches per run, {rounds} rounds, augmenter threads per batch {threads}");
        var rates = workers.ToDictionary(n => n, _ => new List<double>());
        for (int round = 0; round < rounds; round++)
            foreach (int n in workers)
            {
                var augmenter = new ImageAugmenter(224, 224, ImageAugmenter.SimClr(224, 224).Steps, maxDegreeOfParallelism: threads);
                var sampler = new MultiShotMemorySampler(table, new SamplerOptions { ClassesPerBatch = 64, ExamplesPerClassPerBatch = 4, StepsPerEpoch = batches, Seed = 1, Augmenter = augmenter });
                using var loader = PrefetchLoader.Create(sampler, new PrefetchOptions { Workers = n, Depth = 4, Epochs = 1 });
                var clock = Stopwatch.StartNew();
                int got = 0;
                foreach (Batch batch in loader) { batch.Dispose(); got++; }
                rates[n].Add(got / clock.Elapsed.TotalSeconds);
            }
        double Median(List<double> xs) { var s = xs.Order().ToArray(); return s[s.Length / 2]; }
        double one = workers.Contains(1) ? Median(rates[1]) : double.NaN;
        Console.WriteLine("workers | batches/s (median) | all rounds | scaling rate(N) / (N x rate(1))");
        Console.WriteLine("--- | --- | --- | ---");
        foreach (int n in workers)
            Console.WriteLine($"{n} | {Median(rates[n]):F3} | {string.Join(", ", rates[n].Select(x => x.ToString("F3", Inv)))} | {Median(rates[n]) / (n * one):F2}");
        Console.WriteLine($"# load average at the end {AnchorsCommand.LoadAverage()}");
        return 0;
    }
}
