using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Samplers.Imaging;
using SkiaSharp;

namespace Samplers.Bench;

/// <summary>
/// A real-MNIST-sized cold load: 10,000 MNIST-like 28x28 grey PNGs (procedural digits, encoded by the repo's
/// <see cref="PngEncoder"/> as the embedded dataset is) decoded one after another into one (N, 28, 28, 1) buffer, as
/// the loader's decode step does per image. The main package's managed decoder (<see cref="ImageDecoder"/>: CRC walk,
/// budget checks, inflate, unfilter, rows straight into the buffer) against the SkiaSharp path it replaced (the same
/// CRC walk, then libpng through <see cref="SKCodec"/> into the buffer). Both must give identical pixels (checked in
/// the setup). Run: <c>dotnet run --project bench/Samplers.Bench -c Release -- --filter '*PngColdLoad*'</c>.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 20)]
public class PngColdLoadBenchmarks
{
    private const int N = 10_000, Side = 28;
    private byte[][] _pngs = [];
    private readonly byte[] _dst = new byte[N * Side * Side];

    [GlobalSetup]
    public void Setup()
    {
        _pngs = new byte[N][];
        for (int i = 0; i < N; i++) _pngs[i] = PngEncoder.Encode(ProceduralDigits.Draw(i % 10, (ulong)i), Side, Side, PngColorType.Grey);
        var skia = new byte[_dst.Length];
        Managed();
        for (int i = 0; i < N; i++) SkiaInto(_pngs[i], skia.AsSpan(i * Side * Side, Side * Side));
        long bytes = _pngs.Sum(p => (long)p.Length);
        Console.WriteLine($"PNG-COLD-LOAD {N} PNGs, {bytes} bytes (mean {bytes / N} per image); managed == SkiaSharp: {_dst.AsSpan().SequenceEqual(skia)}");
    }

    [Benchmark(Baseline = true, Description = "10000 PNG 28x28 grey: SkiaSharp (CRC walk + libpng)")]
    public void Skia()
    {
        for (int i = 0; i < N; i++) SkiaInto(_pngs[i], _dst.AsSpan(i * Side * Side, Side * Side));
    }

    [Benchmark(Description = "10000 PNG 28x28 grey: managed ImageDecoder")]
    public void Managed()
    {
        for (int i = 0; i < N; i++) ImageDecoder.Decode(_pngs[i], _dst.AsSpan(i * Side * Side, Side * Side), 1, Side, Side, "bench");
    }

    /// <summary>What ImageDecoder did for a grey PNG before the managed decoder: the chunk/CRC walk, then Skia's codec
    /// over the caller's bytes (no copy) into the destination as Gray8.</summary>
    private static unsafe void SkiaInto(byte[] png, Span<byte> dst)
    {
        ImageDecoder.PngHeader.Read(png, "bench");
        fixed (byte* src = png)
        fixed (byte* d = dst)
        {
            using var data = SKData.Create((IntPtr)src, png.Length, null);
            using var codec = SKCodec.Create(data);
            var result = codec.GetPixels(new SKImageInfo(Side, Side, SKColorType.Gray8, SKAlphaType.Opaque, null), (IntPtr)d);
            if (result != SKCodecResult.Success) throw new InvalidOperationException(result.ToString());
        }
    }
}
