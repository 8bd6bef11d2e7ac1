using System.Diagnostics;
using System.Globalization;

namespace Samplers.Bench;

/// <summary>
/// <c>prefetch-wait</c>: the fraction of time a consumer that spends a fixed time per batch (busy, as a CPU training step
/// is) waits for its next batch, with 0, 1 and 2 loader workers. Two setups from the issue: a 10x2 batch of 28x28x1 uint8
/// (MNIST size, no augmenter) and a 64x4 batch of 224x224x3 uint8 with an augmenter (flip + brightness, in place, seeded
/// by the batch key). Each configuration runs <c>--repeats</c> times; the median is printed.
/// Usage: <c>dotnet run --project bench/Samplers.Bench -c Release -- prefetch-wait [--batches N] [--step-ms X] [--repeats N]</c>.
/// </summary>
internal static class PrefetchWaitCommand
{
    internal static void Run(string[] args)
    {
        int batches = Arg(args, "--batches", 200);
        double stepMs = Arg(args, "--step-ms", 2.0);
        int repeats = Arg(args, "--repeats", 3);
        Console.WriteLine($"consumer busy {stepMs} ms per batch, {batches} batches per run, median of {repeats} runs; wait fraction = time in MoveNext / total");
        Console.WriteLine("setup                          workers  wait_fraction  batches/s");
        foreach ((string name, int classes, int perClass, int[] shape, bool augment) in new[]
                 {
                     ("mnist 10x2 (28x28x1)", 10, 2, new[] { 28, 28, 1 }, false),
                     ("rgb 64x4 (224x224x3) + aug", 64, 4, new[] { 224, 224, 3 }, true),
                 })
        {
            ExampleTable table = Table(classes * 8, classes, shape);
            foreach (int workers in new[] { 0, 1, 2 })
            {
                var runs = new List<(double Wait, double Rate)>();
                for (int r = 0; r < repeats; r++) runs.Add(Once(table, classes, perClass, augment, workers, batches, stepMs));
                runs.Sort();
                var med = runs[runs.Count / 2];
                Console.WriteLine($"{name,-30} {workers,7}  {med.Wait,13:F4}  {med.Rate,9:F1}");
            }
        }
    }

    private static (double, double) Once(ExampleTable table, int classes, int perClass, bool augment, int workers, int batches, double stepMs)
    {
        var options = new SamplerOptions
        {
            ClassesPerBatch = classes, ExamplesPerClassPerBatch = perClass, StepsPerEpoch = batches, Seed = 1,
            Augmenter = augment ? Augmenters.FromFunc(FlipAndBrighten) : null, Warmup = 0,
        };
        var sampler = new MultiShotMemorySampler(table, options);
        using var loader = PrefetchLoader.Create(sampler, new PrefetchOptions { Workers = workers, Depth = 4, Epochs = 1 });
        long stepTicks = (long)(stepMs * Stopwatch.Frequency / 1000);
        var clock = Stopwatch.StartNew();
        foreach (Batch b in loader)
        {
            using (b)
            {
                long until = Stopwatch.GetTimestamp() + stepTicks;
                while (Stopwatch.GetTimestamp() < until) { } // the training step
            }
        }
        double total = clock.Elapsed.TotalSeconds;
        return (loader.ConsumerWait.TotalSeconds / total, batches / total);
    }

    // Horizontal flip of every other row and a brightness shift, chosen from the batch key (deterministic).
    private static Batch FlipAndBrighten(Batch batch, int _, bool __)
    {
        ReadOnlySpan<int> shape = batch.Shape;
        int h = shape[1], w = shape[2], c = shape[3];
        Span<byte> x = batch.XBytes;
        byte shift = (byte)((batch.Key.BatchId * 7 + batch.Key.Epoch) % 16);
        for (int i = 0; i < batch.Count; i++)
        {
            Span<byte> img = x.Slice(i * h * w * c, h * w * c);
            if ((i & 1) == 0)
            {
                for (int y = 0; y < h; y++)
                {
                    Span<byte> row = img.Slice(y * w * c, w * c);
                    for (int a = 0, z = w - 1; a < z; a++, z--)
                        for (int k = 0; k < c; k++) (row[a * c + k], row[z * c + k]) = (row[z * c + k], row[a * c + k]);
                }
            }
            for (int p = 0; p < img.Length; p++) img[p] = (byte)Math.Min(255, img[p] + shift);
        }
        return batch;
    }

    private static ExampleTable Table(int count, int classes, int[] shape)
    {
        var b = ExampleTableBuilder.Fixed(DType.UInt8, shape, count);
        var rng = new Random(1); // benchmark filler only; nothing here feeds a plan
        for (int i = 0; i < count; i++) { rng.NextBytes(b.Slot(i)); b.SetLabel(i, i % classes); }
        return b.Build();
    }

    private static T Arg<T>(string[] args, string name, T fallback) where T : IParsable<T>
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? T.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
