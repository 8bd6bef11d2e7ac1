namespace Samplers.Imaging;

/// <summary>
/// Decoding a JPEG at 1/2, 1/4 or 1/8 of its size through the registered codec's reduced decode
/// (<see cref="IImageCodec.TryGetReducedSize"/>; libjpeg-turbo's DCT scaling in <c>Samplers.SkiaSharp</c>): the
/// inverse DCT computes fewer pixels, so a photo that is going to be resized to a much smaller size decodes several
/// times faster. The pixels differ from a full decode followed by a resize (docs/IMAGES.md gives the measured
/// difference), so the loader uses it only when asked (<see cref="Samplers.Tfds.TfdsLoadOptions.ReducedJpegDecode"/>).
/// </summary>
internal static class ReducedJpeg
{
    /// <summary>The smallest reduced size (1/8, then 1/4, then 1/2) that is still at least
    /// <paramref name="targetHeight"/> x <paramref name="targetWidth"/>, so the resize after it still shrinks; null when
    /// even 1/2 is smaller than the target (the image is less than 2x the target), the image is not a JPEG, or the
    /// codec cannot scale.</summary>
    public static (int Height, int Width)? ScaleFor(ReadOnlySpan<byte> encoded, ImageInfo info, int targetHeight, int targetWidth)
    {
        if (info.Format != ImageFormat.Jpeg || info.Height < 2 * targetHeight || info.Width < 2 * targetWidth) return null;
        if (ImageCodecs.Find(encoded[..Math.Min(encoded.Length, 64)]) is not { } codec) return null;
        return codec.TryGetReducedSize(encoded, targetHeight, targetWidth, out int h, out int w) && (h < info.Height || w < info.Width)
            ? (h, w) : null;
    }

    /// <summary>Decodes at <paramref name="height"/> x <paramref name="width"/> (a size <see cref="ScaleFor"/> returned)
    /// into <paramref name="destination"/> as (H, W, <paramref name="channels"/>) uint8, converting channels as the full
    /// decode does (grey replicated, alpha 255, the codec's luma).</summary>
    /// <exception cref="DataFormatException">The data is corrupt or truncated, or no codec decodes it.</exception>
    public static void Decode(ReadOnlySpan<byte> encoded, ImageInfo info, int height, int width, int channels, Span<byte> destination, string? source)
        => ImageDecoder.CodecFor(info.Format, encoded, source).Decode(encoded, height, width, channels, destination[..(height * width * channels)], source);

    /// <summary>The target size of a preprocess whose output does not depend on the exact input size beyond its content
    /// (a plain resize, possibly followed by more steps); null for anything else.</summary>
    public static (int Height, int Width)? TargetOf(IExamplePreprocessor preprocess) =>
        preprocess is IResizeTarget r ? r.ResizeTarget : null;
}
