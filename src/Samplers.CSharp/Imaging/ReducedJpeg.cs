using System.Buffers;
using SkiaSharp;

namespace Samplers.Imaging;

/// <summary>
/// Decoding a JPEG at 1/2, 1/4 or 1/8 of its size through libjpeg-turbo's DCT scaling (SkiaSharp's scaled
/// <see cref="SKCodec.GetPixels(SKImageInfo, IntPtr)"/>): the inverse DCT computes fewer pixels, so a photo that is going
/// to be resized to a much smaller size decodes several times faster. The pixels differ from a full decode followed by
/// a resize (docs/IMAGES.md gives the measured difference), so the loader uses it only when asked
/// (<see cref="TfdsLoadOptions.ReducedJpegDecode"/>).
/// </summary>
internal static class ReducedJpeg
{
    /// <summary>The smallest DCT-scaled size (1/8, then 1/4, then 1/2) that is still at least
    /// <paramref name="targetHeight"/> x <paramref name="targetWidth"/>, so the resize after it still shrinks; null when
    /// even 1/2 is smaller than the target (the image is less than 2x the target) or the codec cannot scale.</summary>
    public static unsafe (int Height, int Width)? ScaleFor(ReadOnlySpan<byte> encoded, ImageInfo info, int targetHeight, int targetWidth)
    {
        if (info.Height < 2 * targetHeight || info.Width < 2 * targetWidth) return null;
        fixed (byte* src = encoded)
        {
            using var data = SKData.Create((IntPtr)src, encoded.Length, null);
            using var codec = SKCodec.Create(data);
            if (codec is null) return null;
            foreach (float scale in (ReadOnlySpan<float>)[0.125f, 0.25f, 0.5f])
            {
                SKSizeI d = codec.GetScaledDimensions(scale);
                if (d.Height >= targetHeight && d.Width >= targetWidth && (d.Height < info.Height || d.Width < info.Width))
                    return (d.Height, d.Width);
            }
        }
        return null;
    }

    /// <summary>Decodes at <paramref name="height"/> x <paramref name="width"/> (a size <see cref="ScaleFor"/> returned)
    /// into <paramref name="destination"/> as (H, W, <paramref name="channels"/>) uint8, converting channels as the full
    /// decoder does for JPEG (grey replicated, alpha 255, BT.601 luma).</summary>
    /// <exception cref="DataFormatException">The data is corrupt or truncated.</exception>
    public static unsafe void Decode(ReadOnlySpan<byte> encoded, ImageInfo info, int height, int width, int channels, Span<byte> destination, string? source)
    {
        bool grey = info.Channels == 1;
        int pixels = height * width, srcChannels = grey ? 1 : 4;
        byte[] tmp = ArrayPool<byte>.Shared.Rent(pixels * srcChannels);
        try
        {
            SKCodecResult result;
            fixed (byte* src = encoded)
            fixed (byte* t = tmp)
            {
                using var data = SKData.Create((IntPtr)src, encoded.Length, null);
                using var codec = SKCodec.Create(data)
                    ?? throw new DataFormatException($"{ImageDecoder.Where(source)}the image header could not be read.", source);
                var skInfo = new SKImageInfo(width, height, grey ? SKColorType.Gray8 : SKColorType.Rgba8888, grey ? SKAlphaType.Opaque : SKAlphaType.Unpremul, null);
                result = codec.GetPixels(skInfo, (IntPtr)t);
            }
            if (result != SKCodecResult.Success)
                throw new DataFormatException(
                    $"{ImageDecoder.Where(source)}image data is corrupt or truncated (reduced-size decoder result: {result}); the file decodes only partly.", source);
            Convert(tmp.AsSpan(0, pixels * srcChannels), grey, channels, destination.Slice(0, pixels * channels));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }

    private static void Convert(ReadOnlySpan<byte> src, bool grey, int c, Span<byte> dst)
    {
        int pixels = dst.Length / c;
        for (int p = 0; p < pixels; p++)
        {
            int o = p * c;
            if (grey)
            {
                byte g = src[p];
                for (int k = 0; k < c; k++) dst[o + k] = k == 1 && c == 2 ? (byte)255 : g;
                continue;
            }
            int s = p * 4;
            switch (c)
            {
                case 1:
                case 2:
                    // libjpeg's BT.601 weights and rounding, as ImageDecoder's JPEG luma.
                    dst[o] = (byte)((19595 * src[s] + 38470 * src[s + 1] + 7471 * src[s + 2] + 32768) >> 16);
                    if (c == 2) dst[o + 1] = 255;
                    break;
                case 3:
                    dst[o] = src[s]; dst[o + 1] = src[s + 1]; dst[o + 2] = src[s + 2];
                    break;
                default:
                    dst[o] = src[s]; dst[o + 1] = src[s + 1]; dst[o + 2] = src[s + 2]; dst[o + 3] = 255;
                    break;
            }
        }
    }

    /// <summary>The target size of a preprocess whose output does not depend on the exact input size beyond its content
    /// (a plain resize, possibly followed by more steps); null for anything else.</summary>
    public static (int Height, int Width)? TargetOf(IExamplePreprocessor preprocess) =>
        preprocess is IResizeTarget r ? r.ResizeTarget : null;
}

/// <summary>A preprocess that starts by resizing to a fixed size (so a smaller input that is still larger than that size is acceptable).</summary>
internal interface IResizeTarget
{
    /// <summary>The size the input is first resized to, or null.</summary>
    (int Height, int Width)? ResizeTarget { get; }
}
