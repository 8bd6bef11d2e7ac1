using BenchmarkDotNet.Attributes;
using Samplers.Imaging;
using SkiaSharp;
using StbImageSharp;

namespace Samplers.Bench;

/// <summary>
/// Decoder choice (docs/IMAGE_DECODERS.md): our <see cref="ImageDecoder"/> (managed PNG, SkiaSharp JPEG; into a reused
/// buffer) against plain SkiaSharp and StbImageSharp on a 28x28 grey PNG (mnist-like) and a 500x375 RGB JPEG
/// (imagenette-like). The setup prints the decoders' pixel differences, the correctness half of the comparison.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ImageDecodeBenchmarks
{
    private byte[] _png = [];
    private byte[] _jpeg = [];
    private readonly byte[] _greyDst = new byte[28 * 28];
    private readonly byte[] _rgbDst = new byte[500 * 375 * 3];
    private readonly byte[] _rgbaDst = new byte[500 * 375 * 4];

    [GlobalSetup]
    public void Setup()
    {
        _png = PngEncoder.Encode(ProceduralDigits.Draw(7, 42), 28, 28, PngColorType.Grey);
        _jpeg = MakeJpeg(500, 375, 90);
        Console.WriteLine(CompareDecoders(_png, _jpeg));
    }

    /// <summary>A photo-like 500x375 RGB JPEG: gradients, hard edges (digits) and fine noise.</summary>
    public static byte[] MakeJpeg(int w, int h, int quality)
    {
        var rgba = new byte[w * h * 4];
        ulong s = 12345;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                s = s * 6364136223846793005UL + 1442695040888963407UL;
                int noise = (int)(s >> 59) - 16;
                var digit = ProceduralDigits.Draw((x / 28 + y / 28) % 10, (ulong)(x / 28 * 100 + y / 28));
                int ink = digit[(y % 28) * 28 + x % 28];
                int o = (y * w + x) * 4;
                rgba[o] = (byte)Math.Clamp(x * 255 / w + noise + ink / 3, 0, 255);
                rgba[o + 1] = (byte)Math.Clamp(y * 255 / h + noise - ink / 4, 0, 255);
                rgba[o + 2] = (byte)Math.Clamp(128 + noise + ink / 2, 0, 255);
                rgba[o + 3] = 255;
            }
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
        using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, quality);
        return data.ToArray();
    }

    /// <summary>PNG: ours vs StbImageSharp (must be identical). JPEG: SkiaSharp vs StbImageSharp difference histogram.</summary>
    public static string CompareDecoders(byte[] png, byte[] jpeg)
    {
        var ours = new byte[28 * 28];
        ImageDecoder.Decode(png, ours, 1);
        var stbPng = ImageResult.FromMemory(png, ColorComponents.Grey).Data;
        bool pngSame = ours.AsSpan().SequenceEqual(stbPng);

        var info = ImageDecoder.Measure(jpeg);
        var skia = new byte[info.Height * info.Width * 3];
        ImageDecoder.Decode(jpeg, skia, 3);
        var stbJpeg = ImageResult.FromMemory(jpeg, ColorComponents.RedGreenBlue).Data;
        var hist = new int[256];
        long sum = 0;
        for (int i = 0; i < skia.Length; i++)
        {
            int d = Math.Abs(skia[i] - stbJpeg[i]);
            hist[d]++;
            sum += d;
        }
        int max = Array.FindLastIndex(hist, c => c > 0);
        string spread = string.Join(", ", Enumerable.Range(0, max + 1).Select(d => $"{d}: {100.0 * hist[d] / skia.Length:F2}%"));
        return $"IMAGE-CORRECTNESS png ours==stb: {pngSame}; jpeg {info.Width}x{info.Height} skia-vs-stb mean |d| {(double)sum / skia.Length:F3}, max {max}; |d| share: {spread}";
    }

    [Benchmark(Description = "PNG 28x28 grey: ImageDecoder (managed + CRC walk)")]
    public void PngOurs() => ImageDecoder.Decode(_png, _greyDst, 1);

    [Benchmark(Description = "PNG 28x28 grey: SkiaSharp plain")]
    public void PngSkia() => SkiaInto(_png, SKColorType.Gray8, _greyDst, 28, 28);

    [Benchmark(Description = "PNG 28x28 grey: StbImageSharp")]
    public byte[] PngStb() => ImageResult.FromMemory(_png, ColorComponents.Grey).Data;

    [Benchmark(Description = "JPEG 500x375 RGB: ImageDecoder C=3")]
    public void JpegOurs() => ImageDecoder.Decode(_jpeg, _rgbDst, 3);

    [Benchmark(Description = "JPEG 500x375 RGB: SkiaSharp plain RGBA")]
    public void JpegSkia() => SkiaInto(_jpeg, SKColorType.Rgba8888, _rgbaDst, 500, 375);

    [Benchmark(Description = "JPEG 500x375 RGB: StbImageSharp")]
    public byte[] JpegStb() => ImageResult.FromMemory(_jpeg, ColorComponents.RedGreenBlue).Data;

    private static unsafe void SkiaInto(byte[] encoded, SKColorType ct, byte[] dst, int w, int h)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data);
        var info = new SKImageInfo(w, h, ct, ct == SKColorType.Gray8 ? SKAlphaType.Opaque : SKAlphaType.Unpremul, null);
        fixed (byte* p = dst)
            codec.GetPixels(info, (IntPtr)p);
    }
}
