using BenchmarkDotNet.Attributes;
using Samplers.Imaging;

namespace Samplers.Bench;

/// <summary>
/// Augmented images per second (docs/IMAGES.md): batches of 32 rows (8 classes x 4) gathered from a table of 500x375
/// RGB uint8 images, through the SimCLR augmenter to 224x224 (one view per row), on all cores and on one thread; the
/// plain gather is the floor. Times are per image (OperationsPerInvoke = 32).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class AugmentBenchmarks
{
    private const int Rows = 32;
    private MultiShotMemorySampler _plain = null!, _all = null!, _one = null!, _blur = null!;

    [GlobalSetup]
    public void Setup()
    {
        var b = ExampleTableBuilder.Fixed(DType.UInt8, [375, 500, 3], 64);
        for (int i = 0; i < 64; i++) { ResizeBenchmarks.Photo(500, 375, (ulong)i).CopyTo(b.Slot(i)); b.SetLabel(i, i % 8); }
        var table = b.Build();
        MultiShotMemorySampler Make(IAugmenter? a) =>
            new(table, new SamplerOptions { ClassesPerBatch = 8, ExamplesPerClassPerBatch = 4, Seed = 1, Augmenter = a, NumAugmentationsPerExample = 1, Warmup = 0 });
        _plain = Make(null);
        _all = Make(ImageAugmenter.SimClr(224, 224));
        _one = Make(new ImageAugmenter(224, 224, ImageAugmenter.SimClr(224, 224).Steps, maxDegreeOfParallelism: 1));
        var withBlur = ImageAugmenter.SimClr(224, 224).Steps.Append(ImageAugmentation.GaussianBlur(22, p: 1.0));
        _blur = Make(new ImageAugmenter(224, 224, withBlur));
    }

    private int _batch;

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows, Description = "gather only (no augmenter)")]
    public void Gather() { using var x = _plain.GenerateBatch(_batch++ % 1000); }

    [Benchmark(OperationsPerInvoke = Rows, Description = "SimCLR 224x224, all cores")]
    public void SimClrAllCores() { using var x = _all.GenerateBatch(_batch++ % 1000); }

    [Benchmark(OperationsPerInvoke = Rows, Description = "SimCLR 224x224, 1 thread")]
    public void SimClrOneThread() { using var x = _one.GenerateBatch(_batch++ % 1000); }

    [Benchmark(OperationsPerInvoke = Rows, Description = "SimCLR + Gaussian blur (k=22, p=1), all cores")]
    public void SimClrBlur() { using var x = _blur.GenerateBatch(_batch++ % 1000); }
}
