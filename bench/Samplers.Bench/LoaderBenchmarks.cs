using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Samplers.Imaging;
using Samplers.Tfds;

namespace Samplers.Bench;

/// <summary>
/// <see cref="TfdsLoader.LoadAsync"/> on an MNIST-sized dataset written by <see cref="TfdsDatasetWriter"/> in the
/// global setup: 70 000 examples of 28x28x1 PNG digits (1 000 distinct procedural digits, repeated) with labels,
/// <c>train</c> 60 000 in 4 shards and <c>test</c> 10 000 in 1, loaded as <c>["train", "test"]</c>.
/// </summary>
/// <remarks>
/// <para><see cref="FirstLoad"/> reads and decodes every TFRecord (no cache), <see cref="FirstLoadAndStore"/> adds
/// writing the Parquet cache (what a real first load does), <see cref="CachedLoad"/> reads the cache. The ratio of
/// the first two to the last is the "at least 10x" target.</para>
/// <para>The global setup also measures one uncached load's memory: the peak of the process working set above its
/// level before the load (sampled every 2 ms) against the decoded payload, and the managed bytes allocated.</para>
/// </remarks>
[MemoryDiagnoser]
[MedianColumn]
public class LoaderBenchmarks
{
    private const int Train = 60_000, Test = 10_000;
    private string _root = "";
    private string _cacheDir = "";
    private TfdsLoadOptions _noCache = null!, _cached = null!;

    [GlobalSetup]
    public void Setup()
    {
        _root = Path.Combine(Path.GetTempPath(), "samplers-bench-loader-" + Guid.NewGuid().ToString("N"));
        string data = Path.Combine(_root, "data");
        _cacheDir = Path.Combine(_root, "cache");
        var pngs = new byte[1000][];
        for (int i = 0; i < pngs.Length; i++) pngs[i] = ProceduralDigits.DrawPng(i % 10, (ulong)i);
        var image = new FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [28, 28, 1], EncodingFormat: "png");
        var label = new FeatureSpec("label", FeatureKind.ClassLabel, "tensorflow_datasets.core.features.class_label_feature.ClassLabel", DType.Int64, [], NumClasses: 10,
            ClassNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
        var writer = new TfdsDatasetWriter(Path.Combine(data, "bench_digits", "1.0.0"), "bench_digits", "1.0.0", [image, label]);
        writer.WriteSplit("train", Examples(pngs, Train), 4);
        writer.WriteSplit("test", Examples(pngs, Test), 1);
        writer.Complete();

        _noCache = new TfdsLoadOptions { DatasetName = "bench_digits", DataDir = data, Splits = ["train", "test"], UseCache = false };
        _cached = _noCache with { UseCache = true, CacheDir = _cacheDir };
        if (TfdsLoader.LoadAsync(_cached).GetAwaiter().GetResult().FromCache) throw new InvalidOperationException("the cache directory was not fresh");
        MeasureMemory();
    }

    private static byte[][] Examples(byte[][] pngs, int count)
    {
        var records = new byte[count][];
        for (int i = 0; i < count; i++)
            records[i] = new ExampleBuilder().AddImage("image", pngs[i % pngs.Length]).AddLabel("label", i % 10).ToByteArray();
        return records;
    }

    private void MeasureMemory()
    {
        using var memory = new PeakWorkingSet();
        long allocated0 = GC.GetTotalAllocatedBytes(precise: true);
        var sw = Stopwatch.StartNew();
        TfdsLoadResult r = TfdsLoader.LoadAsync(_noCache).GetAwaiter().GetResult();
        sw.Stop();
        memory.Dispose();
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated0;
        double mib = 1024.0 * 1024.0;
        Console.WriteLine($"// loader memory: {r.Table.Count:N0} examples in {sw.ElapsedMilliseconds} ms; payload {r.Table.PayloadBytes / mib:F1} MiB; " +
            $"peak working set above the pre-load level {memory.PeakAbove / mib:F1} MiB (payload + {(memory.PeakAbove - r.Table.PayloadBytes) / mib:F1} MiB); " +
            $"managed bytes allocated {allocated / mib:F1} MiB");
        GC.KeepAlive(r);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    /// <summary>Reads, CRC-checks, parses and decodes all 70 000 records into a new table (no cache).</summary>
    [Benchmark(Baseline = true)]
    public int FirstLoad() => TfdsLoader.LoadAsync(_noCache).GetAwaiter().GetResult().Table.Count;

    /// <summary>A first load with the cache on: decode, then write and publish the Parquet file.</summary>
    [Benchmark]
    public int FirstLoadAndStore()
    {
        string dir = Path.Combine(_root, "store-" + Guid.NewGuid().ToString("N"));
        try
        {
            TfdsLoadResult r = TfdsLoader.LoadAsync(_noCache with { UseCache = true, CacheDir = dir }).GetAwaiter().GetResult();
            if (r.FromCache) throw new InvalidOperationException("expected a miss");
            return r.Table.Count;
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>The same selection from the Parquet cache (fingerprint the source, read and verify the file).</summary>
    [Benchmark]
    public int CachedLoad()
    {
        TfdsLoadResult r = TfdsLoader.LoadAsync(_cached).GetAwaiter().GetResult();
        return r.FromCache ? r.Table.Count : throw new InvalidOperationException("expected a cache hit: " + r.CacheDetail);
    }
}
