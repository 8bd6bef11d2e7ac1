using BenchmarkDotNet.Attributes;
using Samplers.Core;

namespace Samplers.Bench;

/// <summary>
/// Batch gather bandwidth against memcpy of the same number of bytes, both reading a table far larger than the caches
/// (64 MiB of 32x32x3 uint8 examples), so each reads memory rather than cache. Gather copies rows at fixed, spread-out
/// indices (what a plan gives); memcpy copies one contiguous block, moving through the table between invocations.
/// Target: gather at 70% or more of memcpy for batches of 1 MB and more.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class GatherBandwidthBenchmarks
{
    private const int Rows = 21_845; // * 3072 bytes = 64 MiB
    private const int RowBytes = 32 * 32 * 3;
    private ExampleTable _table = null!;
    private byte[] _flat = null!;
    private byte[] _dest = null!;
    private int[][] _indexSets = null!;
    private int _turn;

    /// <summary>Batch size in MiB (rows = size / 3072).</summary>
    [Params(1, 4)]
    public int BatchMiB { get; set; }

    private int BatchRows => BatchMiB * (1 << 20) / RowBytes;

    [GlobalSetup]
    public void Setup()
    {
        var b = ExampleTableBuilder.Fixed(DType.UInt8, [32, 32, 3], Rows);
        for (int i = 0; i < Rows; i++) { b.Slot(i).Fill((byte)i); b.SetLabel(i, i % 100); }
        _table = b.Build();
        _flat = new byte[(long)Rows * RowBytes];
        new Random(1).NextBytes(_flat); // benchmark filler only; nothing here feeds a plan
        _dest = new byte[BatchRows * RowBytes];
        // Fixed, spread-out index lists (a golden-ratio walk), several of them so consecutive invocations touch different rows.
        _indexSets = new int[16][];
        for (int s = 0; s < _indexSets.Length; s++)
        {
            _indexSets[s] = new int[BatchRows];
            for (int i = 0; i < BatchRows; i++) _indexSets[s][i] = (int)(((ulong)(s * BatchRows + i) * 0x9E3779B97F4A7C15UL >> 32) % Rows);
        }
    }

    /// <summary>The ceiling: one contiguous copy of the batch's bytes.</summary>
    [Benchmark(Baseline = true)]
    public void Memcpy()
    {
        int blocks = _flat.Length / _dest.Length;
        int at = (_turn++ % blocks) * _dest.Length;
        _flat.AsSpan(at, _dest.Length).CopyTo(_dest);
    }

    /// <summary>The façade's gather of planned rows into a batch buffer.</summary>
    [Benchmark]
    public void Gather()
    {
        int[] idx = _indexSets[_turn++ % _indexSets.Length];
        Samplers.Gather.Rows(_table, idx, _dest);
    }
}

/// <summary>
/// A 10 x 2 batch of 28x28 uint8 images (MNIST-sized, 60000 examples): the whole path (plan + gather + pooled batch),
/// the caller-buffer path, and the gather alone. Targets: under 2 us, 0 B allocated per batch.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class SmallBatchBenchmarks
{
    private MultiShotMemorySampler _sampler = null!;
    private ExampleTable _table = null!;
    private byte[] _x = null!;
    private long[] _y = null!;
    private int[] _fixed = null!;
    private int _id;

    [Params(SamplingMode.Independent, SamplingMode.Coverage)]
    public SamplingMode Mode { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        const int n = 60_000;
        var b = ExampleTableBuilder.Fixed(DType.UInt8, [28, 28], n);
        for (int i = 0; i < n; i++) { b.Slot(i).Fill((byte)i); b.SetLabel(i, i % 10 * 10 + i % 7); } // 70 classes
        _table = b.Build();
        _sampler = new MultiShotMemorySampler(_table, new SamplerOptions { ClassesPerBatch = 10, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 1000, Seed = 1, Mode = Mode });
        _x = new byte[20 * 784];
        _y = new long[20];
        _fixed = new int[20];
        for (int i = 0; i < 20; i++) _fixed[i] = i * 2999;
        for (int i = 0; i < 64; i++) _sampler[i].Dispose(); // warm the pool
    }

    /// <summary>sampler[batchId], then Dispose: plan, gather, pooled batch.</summary>
    [Benchmark]
    public int GenerateBatch()
    {
        using Batch batch = _sampler[_id++ % 1000];
        return batch.Count;
    }

    /// <summary>GenerateBatchInto the caller's buffers.</summary>
    [Benchmark]
    public int GenerateBatchInto() => _sampler.GenerateBatchInto<byte>(_id++ % 1000, _x, _y);

    /// <summary>The gather alone, over a fixed index list.</summary>
    [Benchmark]
    public void GatherOnly() => Samplers.Gather.Rows(_table, _fixed, _x);
}

/// <summary>
/// The same sampler over an in-memory table and over the same table memory-mapped from its cache file (in the page
/// cache), with and without read-ahead advice: 32 classes x 4 examples of 32x32x3 uint8 (384 KiB per batch) from a
/// 64 MiB table. Shows what the mapping costs when the data fits in memory (docs/MAPPED.md).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class MappedBatchBenchmarks
{
    private const int Rows = 21_845;
    private string _dir = "";
    private MultiShotMemorySampler _sampler = null!;
    private int _id;

    [Params(TableBacking.Memory, TableBacking.Mapped)]
    public TableBacking Backing { get; set; }

    [Params(0, 4)]
    public int ReadAhead { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var b = ExampleTableBuilder.Fixed(DType.UInt8, [32, 32, 3], Rows);
        for (int i = 0; i < Rows; i++) { b.Slot(i).Fill((byte)i); b.SetLabel(i, i % 100); }
        ExampleTable table = b.Build();
        _dir = Path.Combine(Path.GetTempPath(), "samplers-bench-mapped-" + Guid.NewGuid().ToString("N"));
        var cache = new Samplers.Cache.ParquetCache(new Samplers.Cache.ParquetCacheOptions { Directory = _dir });
        var key = new Samplers.Cache.CacheKey(_dir, "bench", "", "1.0.0", "train", "image", "label");
        var fp = Samplers.Cache.SourceFingerprint.FromValue("bench");
        if (!cache.StoreAsync(key, fp, table).GetAwaiter().GetResult().Stored) throw new InvalidOperationException("store failed");
        ExampleTable t = cache.TryLoadAsync(key, fp, Backing).GetAwaiter().GetResult().Table ?? throw new InvalidOperationException("load failed");
        _sampler = new MultiShotMemorySampler(t, new SamplerOptions { ClassesPerBatch = 32, ExamplesPerClassPerBatch = 4, StepsPerEpoch = 1000, Seed = 1, ReadAheadBatches = ReadAhead });
        for (int i = 0; i < 64; i++) _sampler[i].Dispose(); // warm the pool and the mapping
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>sampler[batchId], then Dispose.</summary>
    [Benchmark]
    public int GenerateBatch()
    {
        using Batch batch = _sampler[_id++ % 1000];
        return batch.Count;
    }
}
