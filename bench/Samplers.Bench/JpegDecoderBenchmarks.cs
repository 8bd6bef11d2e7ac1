using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using OpenCvSharp;
using Samplers.Imaging;
using Samplers.SkiaSharp;
using SkiaSharp;

namespace Samplers.Bench;

/// <summary>
/// The JPEG decoder comparison (docs/IMAGE_DECODERS.md, "JPEG decoder comparison"): one image decoded to 3-channel RGB
/// into a reused buffer, full size at 500x375 q90 (imagenette-like) and DCT-scaled by 1/2 at 1024x768 q90 (the scale
/// the reduced decode picks for a 224x224 target, and the one PIL's <c>draft("RGB", (224, 224))</c> picks).
/// Candidates: SkiaSharp (the fallback path: RGBA, then every 4th byte dropped), NetVips (libvips), OpenCvSharp4
/// (<c>imdecode</c>, <c>IMREAD_REDUCED_COLOR_2</c>), and the system's libturbojpeg through P/Invoke with the accurate
/// (ISLOW) or the fast (IFAST, TensorFlow's default) IDCT. PIL runs in the interleaved command
/// (<c>jpeg-decoders</c>, <see cref="JpegDecodersCommand"/>), since it needs a second process.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class JpegDecoderBenchmarks
{
    private JpegCandidates _c = null!;

    [GlobalSetup]
    public void Setup()
    {
        _c = new JpegCandidates();
        Console.WriteLine(_c.Agreement());
    }

    [GlobalCleanup]
    public void Cleanup() => _c.Dispose();

    [Benchmark(Description = "500x375 full: SkiaSharp (fallback)")] public void FullSkia() => _c.Skia(_c.Small, 1);
    [Benchmark(Description = "500x375 full: NetVips")] public void FullVips() => _c.Vips(_c.Small, 1);
    [Benchmark(Description = "500x375 full: OpenCvSharp4")] public void FullCv() => _c.OpenCv(_c.Small, 1);
    [Benchmark(Description = "500x375 full: libturbojpeg ISLOW")] public void FullTjSlow() => _c.Turbo(_c.Small, 1, TurboJpeg.FlagAccurateDct);
    [Benchmark(Description = "500x375 full: libturbojpeg IFAST")] public void FullTjFast() => _c.Turbo(_c.Small, 1, TurboJpeg.FlagFastDct);
    [Benchmark(Description = "500x375 full: SkiaImageCodec (product)")] public void FullProduct() => _c.Product(_c.Small, 1);
    [Benchmark(Description = "1024x768 1/2: SkiaSharp (fallback)")] public void HalfSkia() => _c.Skia(_c.Large, 2);
    [Benchmark(Description = "1024x768 1/2: NetVips")] public void HalfVips() => _c.Vips(_c.Large, 2);
    [Benchmark(Description = "1024x768 1/2: OpenCvSharp4")] public void HalfCv() => _c.OpenCv(_c.Large, 2);
    [Benchmark(Description = "1024x768 1/2: libturbojpeg ISLOW")] public void HalfTjSlow() => _c.Turbo(_c.Large, 2, TurboJpeg.FlagAccurateDct);
    [Benchmark(Description = "1024x768 1/2: libturbojpeg IFAST")] public void HalfTjFast() => _c.Turbo(_c.Large, 2, TurboJpeg.FlagFastDct);
    [Benchmark(Description = "1024x768 1/2: SkiaImageCodec (product)")] public void HalfProduct() => _c.Product(_c.Large, 2);
}

/// <summary>The two test images and one decode call per candidate, each writing RGB into <see cref="Dst"/>.</summary>
internal sealed class JpegCandidates : IDisposable
{
    /// <summary>500x375 and 1024x768, quality 90, 4:2:0 (encoded by Skia's libjpeg-turbo).</summary>
    public readonly byte[] Small = PhotoJpeg(500, 375, 90), Large = PhotoJpeg(1024, 768, 90);

    /// <summary>Room for the largest output (500x375x3 or 512x384x3).</summary>
    public readonly byte[] Dst = new byte[512 * 384 * 3];

    private readonly SkiaImageCodec _skia = SkiaImageCodec.WithoutTurboJpeg();
    private readonly SkiaImageCodec _product = new();
    private readonly TurboJpeg _tj = TurboJpeg.TryLoad(TurboJpeg.DefaultNames)
        ?? throw new InvalidOperationException("libturbojpeg is not installed (Debian: apt-get install libturbojpeg0); the comparison needs it.");

    public JpegCandidates()
    {
        // libvips: no operation cache (each call really decodes), one worker thread (the per-image cost, as PIL).
        NetVips.Cache.Max = 0;
        NetVips.NetVips.Concurrency = 1;
    }

    /// <summary>The decoded size at 1/<paramref name="scale"/> (libjpeg rounds up).</summary>
    public static (int H, int W) Size(byte[] jpeg, int scale)
    {
        var info = ImageDecoder.Measure(jpeg);
        return (TurboJpeg.Scaled(info.Height, scale), TurboJpeg.Scaled(info.Width, scale));
    }

    public void Skia(byte[] jpeg, int scale)
    {
        var (h, w) = Size(jpeg, scale);
        _skia.Decode(jpeg, h, w, 3, Dst, null);
    }

    public void Product(byte[] jpeg, int scale)
    {
        var (h, w) = Size(jpeg, scale);
        _product.Decode(jpeg, h, w, 3, Dst, null);
    }

    public void Turbo(byte[] jpeg, int scale, int flags)
    {
        var (h, w) = Size(jpeg, scale);
        if (_tj.Decode(jpeg, Dst, w, h, TurboJpeg.PixelRgb, flags) is { } e) throw new InvalidOperationException(e);
    }

    public void Vips(byte[] jpeg, int scale)
    {
        using var img = NetVips.Image.JpegloadBuffer(jpeg, shrink: scale, access: NetVips.Enums.Access.Sequential);
        IntPtr mem = img.WriteToMemory(out ulong size);
        try { Marshal.Copy(mem, Dst, 0, (int)size); }
        finally { NetVips.NetVips.Free(mem); }
    }

    // IMREAD_COLOR_RGB (OpenCV 4.11+, not in OpenCvSharp's enum): RGB order from the decoder, no BGR swap afterwards.
    private const ImreadModes ColorRgb = (ImreadModes)256;

    public unsafe void OpenCv(byte[] jpeg, int scale)
    {
        // The reduced modes are IMREAD_REDUCED_GRAYSCALE_n plus the IMREAD_COLOR bit, which excludes IMREAD_COLOR_RGB:
        // the scale bits alone with IMREAD_COLOR_RGB ask for a reduced RGB decode (checked by the agreement lines).
        ImreadModes scaleBits = scale switch { 1 => 0, 2 => ImreadModes.ReducedGrayscale2, 4 => ImreadModes.ReducedGrayscale4, _ => ImreadModes.ReducedGrayscale8 };
        using Mat m = Cv2.ImDecode(jpeg, scaleBits | ColorRgb | ImreadModes.IgnoreOrientation);
        if (m.Channels() != 3) throw new InvalidOperationException($"OpenCV decoded {m.Channels()} channels");
        int n = m.Rows * m.Cols * 3;
        new ReadOnlySpan<byte>((void*)m.Data, n).CopyTo(Dst);
    }

    /// <summary>Pixel agreement of every candidate with libturbojpeg IFAST (the TensorFlow stand-in) and ISLOW.</summary>
    public string Agreement()
    {
        var lines = new List<string>();
        foreach ((string name, byte[] jpeg, int scale) in new[] { ("500x375 full", Small, 1), ("1024x768 1/2", Large, 2) })
        {
            var (h, w) = Size(jpeg, scale);
            int n = h * w * 3;
            byte[] Run(Action a) { Array.Clear(Dst); a(); return Dst.AsSpan(0, n).ToArray(); }
            var outputs = new (string Name, byte[] Px)[]
            {
                ("SkiaSharp", Run(() => Skia(jpeg, scale))),
                ("NetVips", Run(() => Vips(jpeg, scale))),
                ("OpenCvSharp4", Run(() => OpenCv(jpeg, scale))),
                ("tj-ISLOW", Run(() => Turbo(jpeg, scale, TurboJpeg.FlagAccurateDct))),
                ("tj-IFAST", Run(() => Turbo(jpeg, scale, TurboJpeg.FlagFastDct))),
                ("product", Run(() => Product(jpeg, scale))),
            };
            foreach (string refName in new[] { "tj-IFAST", "tj-ISLOW" })
            {
                byte[] r = outputs.First(o => o.Name == refName).Px;
                foreach (var (cand, px) in outputs)
                    if (cand != refName) lines.Add($"JPEG-AGREEMENT {name} {cand} vs {refName}: {Diff(px, r)}");
            }
        }
        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>mean |d|, max |d| and the share of equal samples.</summary>
    public static string Diff(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) return $"sizes differ ({a.Length} vs {b.Length})";
        long sum = 0, equal = 0;
        int max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            int d = Math.Abs(a[i] - b[i]);
            sum += d;
            max = Math.Max(max, d);
            if (d == 0) equal++;
        }
        return $"mean |d| {(double)sum / a.Length:0.000}, max {max}, equal {100.0 * equal / a.Length:0.00}%";
    }

    /// <summary>A photo-like RGB picture: smooth gradients, hard-edged shapes (digits) and fine noise, as JPEG.</summary>
    public static byte[] PhotoJpeg(int w, int h, int quality)
    {
        var digits = Enumerable.Range(0, 10).Select(d => ProceduralDigits.Draw(d, (ulong)(d * 31 + 7))).ToArray();
        var rgba = new byte[w * h * 4];
        ulong s = 12345;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                s = s * 6364136223846793005UL + 1442695040888963407UL;
                int noise = (int)(s >> 59) - 16;
                int ink = digits[(x / 28 + y / 28) % 10][(y % 28) * 28 + x % 28];
                int o = (y * w + x) * 4;
                rgba[o] = (byte)Math.Clamp(x * 255 / w + noise + ink / 3, 0, 255);
                rgba[o + 1] = (byte)Math.Clamp(y * 255 / h + noise - ink / 4, 0, 255);
                rgba[o + 2] = (byte)Math.Clamp(128 + noise + ink / 2, 0, 255);
                rgba[o + 3] = 255;
            }
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
        using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, quality);
        return data.ToArray();
    }

    public void Dispose() { }
}
