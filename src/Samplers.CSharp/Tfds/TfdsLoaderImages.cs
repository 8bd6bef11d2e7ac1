using Samplers.Imaging;

namespace Samplers.Tfds;

/// <summary>
/// The loader's <see cref="IEncodedImageDecoder"/>: measures and decodes through <see cref="ImageDecoder"/>, naming
/// the shard file, record index, byte offset and <c>tfds_id</c> in every error.
/// </summary>
internal sealed class LoaderImageDecoder(long maxPixels = ImageDecoder.DefaultMaxPixels) : IEncodedImageDecoder
{
    private static string Source(RecordLocation location) => $"{location} (tfds_id {location.TfdsId})";

    public int[] MeasureShape(FeatureSpec spec, ReadOnlySpan<byte> encoded, RecordLocation location)
    {
        ImageInfo info = ImageDecoder.Measure(encoded, Source(location), maxPixels);
        int c = spec.Shape.Length == 3 && spec.Shape[2] > 0 ? spec.Shape[2] : info.Channels;
        return [info.Height, info.Width, c];
    }

    public void DecodeInto(FeatureSpec spec, ReadOnlySpan<byte> encoded, Span<byte> destination, RecordLocation location)
    {
        // For ragged images DecodeFeature takes the unknown dimensions from the image; the slot was sized by MeasureShape.
        ImageDecoder.DecodeFeature(encoded, spec, destination, Source(location), maxPixels);
    }
}
