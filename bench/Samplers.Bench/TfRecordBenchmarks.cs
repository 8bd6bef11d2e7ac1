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

/// <summary>
/// Read + parse + decode for mnist-like records (a 300-byte encoded image and a label): what the loader does per
/// record before image decoding. Reports time per shard of <see cref="Records"/> records.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ExampleDecodeBenchmarks
{
    private byte[] _file = [];
    private readonly FeatureSpec _label = new("label", FeatureKind.ClassLabel, "", DType.Int64, [], NumClasses: 10);
    private readonly FeatureSpec _image = new("image", FeatureKind.Image, "", DType.UInt8, [28, 28, 1]);

    /// <summary>Records in the shard.</summary>
    public int Records => 60_000;

    [GlobalSetup]
    public void Setup()
    {
        var png = new byte[300];
        for (int i = 0; i < png.Length; i++) png[i] = (byte)(i * 13);
        using var ms = new MemoryStream();
        using (var w = new TfRecordWriter(ms, leaveOpen: true))
            for (int i = 0; i < Records; i++)
                w.Write(new ExampleBuilder().AddImage("image", png).AddLabel("label", i % 10).ToByteArray());
        _file = ms.ToArray();
        Console.WriteLine($"// shard: {_file.Length} bytes, {Records} records");
    }

    [Benchmark(Description = "read + parse + label + image bytes")]
    public long ReadParseDecode()
    {
        using var r = new TfRecordReader(new MemoryStream(_file, writable: false), "bench");
        long sum = 0;
        while (r.TryReadNext(out var rec))
        {
            var at = RecordLocation.Of(r, rec);
            var ex = ExampleDecoder.Parse(rec.Data.Span, at);
            sum += FeatureDecoder.ReadLabel(_label, ex.Features, at);
            sum += FeatureDecoder.GetBytes(_image, ex.Features, at).Length;
        }
        return sum;
    }
}
