using BenchmarkDotNet.Attributes;
using Samplers.Imaging;
using SkiaSharp;

namespace Samplers.Bench;

/// <summary>
/// 500x375 RGB uint8 → 224x224 bilinear (docs/IMAGES.md): our TF-exact resize against a straightforward scalar loop
/// of the same formula and against SkiaSharp's own linear resize (RGBA, its native layout); plus a 32-image table
/// through <see cref="Preprocessing.Apply"/> (parallel over examples). The setup prints the level differences.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ResizeBenchmarks
{
    private const int H = 375, W = 500, O = 224, Batch = 32;
    private byte[] _rgb = [];
    private readonly float[] _out = new float[O * O * 3];
    private readonly byte[] _out8 = new byte[O * O * 3];
    private SKBitmap _src = null!, _dst = null!;
    private ExampleTable _table = null!;
    private IExamplePreprocessor _resize = null!;

    [GlobalSetup]
    public void Setup()
    {
        _rgb = Photo(W, H, 7);
        _src = new SKBitmap(new SKImageInfo(W, H, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        _dst = new SKBitmap(new SKImageInfo(O, O, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var rgba = new byte[W * H * 4];
        for (int i = 0; i < W * H; i++) { rgba[i * 4] = _rgb[i * 3]; rgba[i * 4 + 1] = _rgb[i * 3 + 1]; rgba[i * 4 + 2] = _rgb[i * 3 + 2]; rgba[i * 4 + 3] = 255; }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, _src.GetPixels(), rgba.Length);
        var b = ExampleTableBuilder.Fixed(DType.UInt8, [H, W, 3], Batch);
        for (int i = 0; i < Batch; i++) Photo(W, H, (ulong)i).CopyTo(b.Slot(i));
        _table = b.Build();
        _resize = ImagePreprocessing.Resize(O, O);
        Console.WriteLine(Differences());
    }

    /// <summary>A photo-like RGB image: gradients plus noise.</summary>
    public static byte[] Photo(int w, int h, ulong seed)
    {
        var px = new byte[w * h * 3];
        ulong s = seed * 0x9E3779B97F4A7C15UL + 1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                s = s * 6364136223846793005UL + 1442695040888963407UL;
                int noise = (int)(s >> 58) - 32;
                int o = (y * w + x) * 3;
                px[o] = (byte)Math.Clamp(x * 255 / w + noise, 0, 255);
                px[o + 1] = (byte)Math.Clamp(y * 255 / h - noise, 0, 255);
                px[o + 2] = (byte)Math.Clamp(((x / 16 + y / 16) % 2) * 200 + noise, 0, 255);
            }
        return px;
    }

    /// <summary>Ours vs the scalar loop (must be identical) and vs SkiaSharp's linear resize (levels).</summary>
    public string Differences()
    {
        var a = new float[O * O * 3];
        var s = new float[O * O * 3];
        ImageResize.Resize<byte>(_rgb, H, W, 3, a, O, O);
        ScalarBilinear(_rgb, H, W, 3, s, O, O);
        double scalarMax = 0;
        for (int i = 0; i < a.Length; i++) scalarMax = Math.Max(scalarMax, Math.Abs(a[i] - s[i]));
        SkiaResize();
        var skia = _dst.GetPixelSpan();
        var hist = new int[4];
        double sum = 0;
        for (int p = 0; p < O * O; p++)
            for (int c = 0; c < 3; c++)
            {
                double d = Math.Abs(Math.Round(a[p * 3 + c], MidpointRounding.ToEven) - skia[p * 4 + c]);
                sum += d;
                hist[Math.Min(3, (int)d)]++;
            }
        return $"resize 500x375 -> 224x224 bilinear: ours vs scalar loop max |diff| = {scalarMax}; ours (rounded) vs SkiaSharp linear: " +
               $"mean |diff| {sum / (O * O * 3):F3} levels, 0: {hist[0]}, 1: {hist[1]}, 2: {hist[2]}, >=3: {hist[3]} of {O * O * 3}";
    }

    /// <summary>The formula as written in TF's op, one output value at a time: no cached rows, no vectors.</summary>
    public static void ScalarBilinear(byte[] src, int h, int w, int c, float[] dst, int oh, int ow)
    {
        float sy = h / (float)oh, sx = w / (float)ow;
        for (int y = 0; y < oh; y++)
        {
            float iy = (y + 0.5f) * sy - 0.5f;
            float fy = MathF.Floor(iy);
            int y0 = Math.Max((int)fy, 0), y1 = Math.Min((int)MathF.Ceiling(iy), h - 1);
            float ly = iy - fy;
            for (int x = 0; x < ow; x++)
            {
                float ix = (x + 0.5f) * sx - 0.5f;
                float fx = MathF.Floor(ix);
                int x0 = Math.Max((int)fx, 0), x1 = Math.Min((int)MathF.Ceiling(ix), w - 1);
                float lx = ix - fx;
                for (int k = 0; k < c; k++)
                {
                    float tl = src[(y0 * w + x0) * c + k], tr = src[(y0 * w + x1) * c + k];
                    float bl = src[(y1 * w + x0) * c + k], br = src[(y1 * w + x1) * c + k];
                    float top = tl + (tr - tl) * lx, bottom = bl + (br - bl) * lx;
                    dst[(y * ow + x) * c + k] = top + (bottom - top) * ly;
                }
            }
        }
    }

    [Benchmark(Baseline = true, Description = "ours bilinear -> float32")]
    public void Ours() => ImageResize.Resize<byte>(_rgb, H, W, 3, _out, O, O);

    [Benchmark(Description = "ours bilinear -> uint8 (rounded)")]
    public void OursUInt8()
    {
        ImageResize.Resize<byte>(_rgb, H, W, 3, _out, O, O);
        ImageResize.RoundToByte(_out, _out8);
    }

    [Benchmark(Description = "ours antialiased bilinear -> float32")]
    public void OursAntialias() => ImageResize.Resize<byte>(_rgb, H, W, 3, _out, O, O, ResizeMethod.Bilinear, antialias: true);

    [Benchmark(Description = "scalar loop of the same formula")]
    public void Scalar() => ScalarBilinear(_rgb, H, W, 3, _out, O, O);

    [Benchmark(Description = "SkiaSharp ScalePixels linear (RGBA8888)")]
    public void SkiaResize() => _src.ScalePixels(_dst, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None));

    [Benchmark(OperationsPerInvoke = Batch, Description = "Preprocessing.Apply(Resize) on 32 images, parallel")]
    public ExampleTable TableParallel() => Preprocessing.Apply(_table, _resize);
}
