// A small tour of the façade from C#: build a sampler over data you already hold, read batches (pooled, disposable),
// write a batch into your own buffers, and check that batches are reproducible. Exits non-zero if a check fails,
// so CI can run it.
using Microsoft.Extensions.Logging;
using Samplers;
using Samplers.Imaging;
using Samplers.Tfds;

using ILoggerFactory loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true));
ILogger logger = loggerFactory.CreateLogger("sampler");

// 1. Data the caller already has: 1000 "images" of 8x8 uint8 in 10 classes, back to back, plus one label each.
const int count = 1000, side = 8;
byte[] x = new byte[count * side * side];
long[] y = new long[count];
for (int i = 0; i < count; i++)
{
    y[i] = i % 10;
    x.AsSpan(i * side * side, side * side).Fill((byte)i);
}

// 2. The sampler: 4 classes x 3 examples per batch, scaled to float in [0, 1] once, seeded.
var options = new SamplerOptions
{
    ClassesPerBatch = 4,
    ExamplesPerClassPerBatch = 3,
    StepsPerEpoch = 100,
    Preprocess = Preprocessing.ToFloat32(),
    Seed = 2024,
    Mode = SamplingMode.Independent,
    Logger = logger,
};
var sampler = MultiShotMemorySampler.Create<byte>(x, [side, side], y, options);
Console.WriteLine($"batches per epoch: {sampler.Count}, batch size: {sampler.BatchSize}, classes: {string.Join(",", sampler.ClassNames)}");
Console.WriteLine($"examples: {sampler.NumExamples}, example shape: [{string.Join(", ", sampler.ExampleShape)}], dtype: {DTypes.Name(sampler.DType)}, warmup: {sampler.IsWarmup}");

int failures = 0;
void Check(bool ok, string what)
{
    Console.WriteLine($"{(ok ? "ok  " : "FAIL")} {what}");
    if (!ok) failures++;
}

// 3. One batch: dispose it to return its buffers to the pool.
using (Batch batch = sampler[0])
{
    Span<float> pixels = batch.X<float>();
    Console.WriteLine($"batch 0: shape [{string.Join(", ", batch.Shape.ToArray())}], labels {string.Join(" ", batch.Y.ToArray())}");
    var perClass = batch.Y.ToArray().GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
    Check(perClass.Count == 4 && perClass.Values.All(n => n == 3), "4 classes x 3 examples");
    Check(pixels.Length == 12 * side * side && pixels.ToArray().All(v => v is >= 0f and <= 1f), "pixels scaled to [0, 1]");
}

// 4. The same (seed, epoch, batch id) gives the same batch, whatever was asked before and on any thread.
float[] first;
using (Batch b = sampler[42]) first = b.ToArray<float>();
var fromThreads = new float[8][];
Parallel.For(0, 8, t => { using Batch b = sampler[42]; fromThreads[t] = b.ToArray<float>(); });
Check(fromThreads.All(a => a.AsSpan().SequenceEqual(first)), "batch 42 is the same on 8 threads");

// 5. Into the caller's buffers: no allocation per batch.
float[] xs = new float[sampler.BatchSize * side * side];
long[] ys = new long[sampler.BatchSize];
int rows = sampler.GenerateBatchInto<float>(42, xs, ys);
Check(rows == sampler.BatchSize && xs.AsSpan().SequenceEqual(first), "GenerateBatchInto gives batch 42 too");

// 6. One epoch by enumeration (dispose each batch), then the next epoch: warmup (-1 by default) ends after epoch 0.
int seen = 0;
foreach (Batch b in sampler) using (b) seen += b.Count;
Check(seen == sampler.Count * sampler.BatchSize, $"one epoch = {sampler.Count} batches");
sampler.OnEpochEnd();
using (Batch b = sampler[42]) Check(!b.ToArray<float>().AsSpan().SequenceEqual(first), "epoch 1 gives other batches");
Check(!sampler.IsWarmup && sampler.Epoch == 1, "warmup over after epoch 0");

// 7. Out-of-range ids are caller errors.
try { sampler[sampler.Count].Dispose(); Check(false, "out-of-range id throws"); }
catch (ArgumentOutOfRangeException e) { Check(e.ParamName == "batchId", "out-of-range id throws ArgumentOutOfRangeException"); }

Console.WriteLine(failures == 0 ? "example: all checks passed" : $"example: {failures} check(s) failed");
return failures == 0 ? 0 : 1;
