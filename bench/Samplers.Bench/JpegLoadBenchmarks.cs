using System.Diagnostics;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Samplers.Tfds;
using Samplers.Imaging;

namespace Samplers.Bench;

/// <summary>
/// Loading a variable-size JPEG dataset resized to 224x224: decode and resize in one pass, with and without
/// reduced-size JPEG decoding. The dataset is <c>synthetic_photos</c> written by
/// <c>dotnet run --project tools/Samplers.DatasetGen -c Release -- photos DIR ...</c>; pass DIR in <c>SAMPLERS_BENCH_PHOTOS</c>.
/// </summary>
[MemoryDiagnoser]
public class JpegLoadBenchmarks
{
    private TfdsLoadOptions _full = null!;
    private TfdsLoadOptions _reduced = null!;

    [GlobalSetup]
    public void Setup()
    {
        string dir = Environment.GetEnvironmentVariable("SAMPLERS_BENCH_PHOTOS")
            ?? throw new InvalidOperationException("Set SAMPLERS_BENCH_PHOTOS to a data directory holding synthetic_photos (tools/Samplers.DatasetGen photos DIR).");
        _full = JpegLoadMeasure.Options(dir, "fused");
        _reduced = JpegLoadMeasure.Options(dir, "reduced");
    }

    /// <summary>Full-size decode, then the TF-exact bilinear resize, in one worker per example.</summary>
    [Benchmark(Baseline = true)]
    public int FullDecodeAndResize() => TfdsLoader.LoadAsync(_full).GetAwaiter().GetResult().Table.Count;

    /// <summary>DCT-scaled decode (1/2, 1/4 or 1/8) of JPEGs at least 2x the target, then the same resize.</summary>
    [Benchmark]
    public int ReducedDecodeAndResize() => TfdsLoader.LoadAsync(_reduced).GetAwaiter().GetResult().Table.Count;
}

/// <summary>
/// <c>dotnet run --project bench/Samplers.Bench -c Release -- jpeg-load DIR MODE</c>: one load of synthetic_photos in DIR
/// resized to 224x224 uint8 (no cache), printing the time and the peak working set above the level before the load
/// (sampled every 2 ms). MODE: <c>fused</c> (decode and resize in one pass), <c>apply</c> (decode everything, then
/// <see cref="Preprocessing.Apply"/>: the way before the fused path), <c>reduced</c> (fused, with reduced-size JPEG decoding),
/// or <c>diff</c> (loads fused and reduced, float32 output, and prints their pixel difference). Run each mode in its own
/// process, since a process's working set does not shrink back after a load.
/// </summary>
public static class JpegLoadMeasure
{
    private static readonly IExamplePreprocessor Resize224 = ImagePreprocessing.Resize(224, 224, ResizeMethod.Bilinear, antialias: false, output: DType.UInt8);

    internal static TfdsLoadOptions Options(string dir, string mode, IExamplePreprocessor? preprocess = null) => new()
    {
        DatasetName = "synthetic_photos", DataDir = dir, UseCache = false, Download = null,
        Preprocess = mode == "apply" ? null : preprocess ?? Resize224,
        ReducedJpegDecode = mode == "reduced",
    };

    public static int Run(string[] args)
    {
        if (args.Length < 3) { Console.Error.WriteLine("usage: jpeg-load DIR fused|apply|reduced|diff"); return 1; }
        string dir = args[1], mode = args[2];
        if (mode == "diff") return Diff(dir);
        using var memory = new PeakWorkingSet();
        var sw = Stopwatch.StartNew();
        TfdsLoadResult r = TfdsLoader.LoadAsync(Options(dir, mode)).GetAwaiter().GetResult();
        ExampleTable table = mode == "apply" ? Preprocessing.Apply(r.Table, Resize224) : r.Table;
        sw.Stop();
        memory.Dispose();
        double mib = 1024.0 * 1024.0;
        using var self = Process.GetCurrentProcess();
        long decoded = mode == "apply" ? r.Table.PayloadBytes : 0;
        Console.WriteLine($"{mode}: {table.Count} examples in {sw.ElapsedMilliseconds} ms ({table.Count * 1000.0 / sw.ElapsedMilliseconds:F0} images/s); " +
            $"output table {table.PayloadBytes / mib:F1} MiB" + (mode == "apply" ? $", decoded table {decoded / mib:F1} MiB" : "") +
            $"; peak working set above the pre-load level {memory.PeakAbove / mib:F1} MiB (output + {(memory.PeakAbove - table.PayloadBytes) / mib:F1} MiB); " +
            $"process peak working set {self.PeakWorkingSet64 / mib:F1} MiB; GC heap after {GC.GetGCMemoryInfo().HeapSizeBytes / mib:F1} MiB");
        GC.KeepAlive(r);
        GC.KeepAlive(table);
        return 0;
    }

    private static int Diff(string dir)
    {
        var f32 = ImagePreprocessing.Resize(224, 224, ResizeMethod.Bilinear, antialias: false, output: DType.Float32);
        ExampleTable full = TfdsLoader.LoadAsync(Options(dir, "fused", f32)).GetAwaiter().GetResult().Table;
        ExampleTable reduced = TfdsLoader.LoadAsync(Options(dir, "reduced", f32)).GetAwaiter().GetResult().Table;
        double sum = 0, max = 0;
        long n = 0, over1 = 0;
        int changed = 0;
        for (int i = 0; i < full.Count; i++)
        {
            ReadOnlySpan<float> a = MemoryMarshal.Cast<byte, float>(full.GetExample(i)), b = MemoryMarshal.Cast<byte, float>(reduced.GetExample(i));
            bool any = false;
            for (int k = 0; k < a.Length; k++)
            {
                double d = Math.Abs(a[k] - b[k]);
                sum += d; n++;
                if (d > max) max = d;
                if (d > 1) over1++;
                any |= d != 0;
            }
            if (any) changed++;
        }
        Console.WriteLine($"reduced vs full decode, bilinear 224x224 float32: {changed} of {full.Count} images differ; max |diff| {max:F2} levels, " +
            $"mean {sum / n:F3} levels, {100.0 * over1 / n:F2}% of values differ by more than 1 level");
        return 0;
    }
}
