using BenchmarkDotNet.Attributes;
using SkiaSharp;
using Samplers.Imaging;

namespace Samplers.Bench;

/// <summary>
/// Lazy examples (docs/IMAGES.md "Lazy examples"): batches of 32 rows (8 classes x 4) from an image folder of 64
/// 500x375 RGB JPEGs, resized to 224x224 uint8: eagerly loaded (the floor), lazily through a warm cache that holds
/// every resized example, and lazily with no cache (every row read, decoded and resized when its batch is built).
/// Times are per image (OperationsPerInvoke = 32).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class LazyBenchmarks
{
    private const int Rows = 32;
    private string _dir = null!;
    private MultiShotMemorySampler _eager = null!, _warm = null!, _cold = null!;
    private int _batch;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "samplers-bench-lazy-" + Guid.NewGuid().ToString("N"));
        for (int i = 0; i < 64; i++)
        {
            string cls = Path.Combine(_dir, "class" + (i % 8));
            Directory.CreateDirectory(cls);
            byte[] rgb = ResizeBenchmarks.Photo(500, 375, (ulong)i);
            using var bmp = new SKBitmap(new SKImageInfo(500, 375, SKColorType.Rgba8888, SKAlphaType.Opaque));
            var rgba = new byte[500 * 375 * 4];
            for (int p = 0; p < 500 * 375; p++) { rgba[4 * p] = rgb[3 * p]; rgba[4 * p + 1] = rgb[3 * p + 1]; rgba[4 * p + 2] = rgb[3 * p + 2]; rgba[4 * p + 3] = 255; }
            System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
            using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(Path.Combine(cls, $"img{i}.jpg"), data.ToArray());
        }
        var folder = ImageFolder.Scan(_dir);
        var resize = ImagePreprocessing.Resize(224, 224, output: DType.UInt8);
        var options = new SamplerOptions { ClassesPerBatch = 8, ExamplesPerClassPerBatch = 4, Seed = 1, Warmup = 0 };
        _eager = new MultiShotMemorySampler(folder.Load(resize), options);
        _warm = MultiShotMemorySampler.CreateLazy(folder.ToLazyTable(resize, new ExampleCache()), options);
        foreach (var b in _warm) b.Dispose(); // fill the cache
        _cold = MultiShotMemorySampler.CreateLazy(folder.ToLazyTable(resize, ExampleCache.None), options);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows, Description = "eager table (gather only)")]
    public void Eager() { using var x = _eager.GenerateBatch(_batch++ % 1000); }

    [Benchmark(OperationsPerInvoke = Rows, Description = "lazy, warm cache")]
    public void LazyWarm() { using var x = _warm.GenerateBatch(_batch++ % 1000); }

    [Benchmark(OperationsPerInvoke = Rows, Description = "lazy, no cache (read + decode + resize per row)")]
    public void LazyCold() { using var x = _cold.GenerateBatch(_batch++ % 1000); }
}
