using Samplers.Imaging;

namespace Samplers.Tfds;

/// <summary>
/// The loader's <see cref="IEncodedImageDecoder"/>: measures and decodes through <see cref="ImageDecoder"/>, naming
/// the shard file, record index, byte offset and <c>tfds_id</c> in every error. With a reduced-decode target (a fused
/// resize and <see cref="TfdsLoadOptions.ReducedJpegDecode"/>), a uint8 JPEG at least twice the target on both sides is
/// measured and decoded at the JPEG codec's reduced scale instead (<see cref="ReducedJpeg"/>).
/// </summary>
internal sealed class LoaderImageDecoder(long maxPixels = ImageDecoder.DefaultMaxPixels, (int Height, int Width)? reduceTo = null) : IEncodedImageDecoder
{
    private static string Source(RecordLocation location) => $"{location} (tfds_id {location.TfdsId})";

    /// <summary>True when images may be decoded at reduced size (the shape of each must then be measured).</summary>
    public bool Reduces => reduceTo is not null;

    public int[] MeasureShape(FeatureSpec spec, ReadOnlySpan<byte> encoded, RecordLocation location)
    {
        ImageInfo info = ImageDecoder.Measure(encoded, Source(location), maxPixels);
        int c = spec.Shape.Length == 3 && spec.Shape[2] > 0 ? spec.Shape[2] : info.Channels;
        if (Reduced(spec, encoded, info) is { } r) return [r.Height, r.Width, c];
        return [info.Height, info.Width, c];
    }

    public void DecodeInto(FeatureSpec spec, ReadOnlySpan<byte> encoded, Span<byte> destination, RecordLocation location)
    {
        if (reduceTo is not null)
        {
            ImageInfo info = ImageDecoder.Measure(encoded, Source(location), maxPixels); // the pixel budget holds for reduced decodes too
            if (Reduced(spec, encoded, info) is { } r)
            {
                int c = spec.Shape[2] > 0 ? spec.Shape[2] : info.Channels;
                ReducedJpeg.Decode(encoded, info, r.Height, r.Width, c, destination, Source(location));
                return;
            }
        }
        // For ragged images ImageFeatures.Decode takes the unknown dimensions from the image; the slot was sized by MeasureShape.
        ImageFeatures.Decode(encoded, spec, destination, Source(location), maxPixels);
    }

    /// <summary>The reduced size to decode at, or null for a full decode (not JPEG, not uint8, a declared size that the
    /// image does not have (the full decode reports that), or less than 2x larger than the target).</summary>
    private (int Height, int Width)? Reduced(FeatureSpec spec, ReadOnlySpan<byte> encoded, ImageInfo info)
    {
        if (reduceTo is not { } t || info.Format != ImageFormat.Jpeg || spec.DType != DType.UInt8 || spec.Shape.Length != 3) return null;
        if ((spec.Shape[0] >= 0 && spec.Shape[0] != info.Height) || (spec.Shape[1] >= 0 && spec.Shape[1] != info.Width)) return null;
        return ReducedJpeg.ScaleFor(encoded, info, t.Height, t.Width);
    }
}
