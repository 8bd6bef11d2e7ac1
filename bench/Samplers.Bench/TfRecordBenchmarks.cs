using BenchmarkDotNet.Attributes;
using Samplers.Tfds;

namespace Samplers.Bench;

/// <summary>
/// TFRecord read throughput: framing + both CRC-32C checks over a 64 MiB shard held in memory (no disk in the
/// measurement) and the same shard as a temp file (page cache). Baselines: CRC-32C alone over the same bytes, and a
/// plain copy (the ceiling). MB/s = <see cref="TotalBytes"/> / median.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class TfRecordBenchmarks
{
    private const int TargetBytes = 64 << 20;
    private byte[] _file = [];
    private byte[] _copy = [];
    private string _path = "";

    /// <summary>Data bytes per record: mnist-like small PNGs, and larger JPEG-like records.</summary>
    [Params(300, 100_000)]
    public int RecordBytes { get; set; }

    /// <summary>Bytes in the shard, framing included.</summary>
    public long TotalBytes => _file.Length;

    [GlobalSetup]
    public void Setup()
    {
        var data = new byte[RecordBytes];
        // Deterministic filler; content does not matter to CRC speed.
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 31 + 7);
        using var ms = new MemoryStream();
        using (var w = new TfRecordWriter(ms, leaveOpen: true))
            while (ms.Length < TargetBytes) w.Write(data);
        _file = ms.ToArray();
        _copy = new byte[_file.Length];
        _path = Path.Combine(Path.GetTempPath(), $"samplers-bench-{Environment.ProcessId}-{RecordBytes}.tfrecord");
        File.WriteAllBytes(_path, _file);
        Console.WriteLine($"// shard: {_file.Length} bytes, {RecordBytes}-byte records");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        try { File.Delete(_path); } catch (IOException) { }
    }

    [Benchmark(Description = "read records (memory)")]
    public long ReadMemory()
    {
        using var r = new TfRecordReader(new MemoryStream(_file, writable: false), "bench");
        long n = 0;
        while (r.TryReadNext(out var rec)) n += rec.Data.Length;
        return n;
    }

    [Benchmark(Description = "read records (temp file)")]
    public long ReadFile()
    {
        using var r = new TfRecordReader(_path);
        long n = 0;
        while (r.TryReadNext(out var rec)) n += rec.Data.Length;
        return n;
    }

    [Benchmark(Description = "CRC-32C only")]
    public uint CrcOnly() => Crc32C.Compute(_file);

    [Benchmark(Baseline = true, Description = "memcpy ceiling")]
    public void Copy() => _file.AsSpan().CopyTo(_copy);
}
