using BenchmarkDotNet.Attributes;
using Parquet;
using Samplers.Cache;

namespace Samplers.Bench;

/// <summary>
/// Cached load (<see cref="ParquetCache.TryLoadAsync"/>) of an MNIST-sized table (70 000 x 28x28 uint8) and a
/// CIFAR-sized one (50 000 x 32x32x3 uint8), per compression, with a memcpy of the same payload as the ceiling.
/// Synthetic data: MNIST-like examples are ~80% zeros with noisy strokes, CIFAR-like ones smooth gradients plus noise,
/// so compression ratios are indicative only. File sizes are printed in the global setup.
/// </summary>
[MemoryDiagnoser]
public class CacheBenchmarks
{
    private string _dir = "";
    private ParquetCache _cache = null!;
    private CacheKey _key = null!;
    private readonly SourceFingerprint _fingerprint = SourceFingerprint.FromValue("bench");
    private ExampleTable _table = null!;
    private byte[] _copyTarget = [];

    /// <summary>Which dataset shape.</summary>
    [Params("mnist", "cifar")]
    public string Dataset { get; set; } = "mnist";

    /// <summary>Compression of the example column.</summary>
    [Params(CompressionMethod.None, CompressionMethod.Snappy, CompressionMethod.Zstd)]
    public CompressionMethod Compression { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _table = Dataset == "mnist" ? Make(70_000, [28, 28], Mnistish) : Make(50_000, [32, 32, 3], Cifarish);
        _dir = Path.Combine(Path.GetTempPath(), "samplers-bench-cache-" + Guid.NewGuid().ToString("N"));
        _cache = new ParquetCache(new ParquetCacheOptions { Directory = _dir, Compression = Compression });
        _key = new CacheKey(_dir, Dataset, "", "1.0.0", "train", "image", "label");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        CacheStoreResult r = _cache.StoreAsync(_key, _fingerprint, _table).GetAwaiter().GetResult();
        if (!r.Stored) throw new InvalidOperationException(r.Detail);
        Console.WriteLine($"// cache file {Dataset}/{Compression}: {r.Bytes:N0} bytes for {_table.PayloadBytes:N0} payload bytes (ratio {(double)r.Bytes / _table.PayloadBytes:F3}), written in {sw.ElapsedMilliseconds} ms");
        _copyTarget = new byte[_table.PayloadBytes];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>A cache hit: open, check, read every row group into a new table, verify the checksum.</summary>
    [Benchmark]
    public int CachedLoad()
    {
        CacheLoadResult r = _cache.TryLoadAsync(_key, _fingerprint).GetAwaiter().GetResult();
        return r.Table?.Count ?? throw new InvalidOperationException(r.Detail);
    }

    /// <summary>The ceiling: copying the same payload once in memory.</summary>
    [Benchmark(Baseline = true)]
    public int MemcpyPayload()
    {
        int at = 0;
        for (int i = 0; i < _table.Count; i++)
        {
            ReadOnlySpan<byte> e = _table.GetExample(i);
            e.CopyTo(_copyTarget.AsSpan(at));
            at += e.Length;
        }
        return at;
    }

    private static ExampleTable Make(int n, int[] shape, Action<int, Span<byte>, Random> fill)
    {
        var b = ExampleTableBuilder.Fixed(DType.UInt8, shape, n);
        var rnd = new Random(1);
        for (int i = 0; i < n; i++)
        {
            fill(i, b.Slot(i), rnd);
            b.SetLabel(i, i % 10);
            b.SetId(i, $"bench-train.tfrecord-{i % 8:D5}-of-00008__{i / 8}");
        }
        b.ClassNames = Enumerable.Range(0, 10).Select(c => c.ToString()).ToArray();
        return b.Build();
    }

    private static void Mnistish(int i, Span<byte> x, Random rnd)
    {
        x.Clear();
        for (int k = 0; k < x.Length / 5; k++) x[rnd.Next(x.Length)] = (byte)rnd.Next(1, 256);
    }

    private static void Cifarish(int i, Span<byte> x, Random rnd)
    {
        for (int p = 0; p < x.Length; p++) x[p] = (byte)((p / 3 % 32) * 4 + (p / 96) * 2 + rnd.Next(16) + i % 7);
    }
}
