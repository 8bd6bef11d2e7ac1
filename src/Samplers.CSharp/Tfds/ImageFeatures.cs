using System.Runtime.InteropServices;
using Samplers.Imaging;

namespace Samplers.Tfds;

/// <summary>Decodes a TFDS <c>Image</c> feature as its <see cref="FeatureSpec"/> declares it (dtype, shape, channels), with
/// the decoders of Samplers.Imaging, which know nothing of TFDS.</summary>
internal static class ImageFeatures
{
    /// <summary>
    /// Decodes one example of an <c>Image</c> feature into its slot of a column: <paramref name="destination"/> is
    /// the H*W*C elements of the feature's dtype as raw bytes (uint8, uint16 or float32, native byte order).
    /// Channels and the fixed H/W come from <paramref name="spec"/>'s shape (H, W, C); -1 dims are taken from the image.
    /// </summary>
    /// <param name="encoded">The encoded bytes from the Example.</param>
    /// <param name="spec">The feature: Kind Image, shape rank 3, dtype uint8/uint16/float32 (float32 needs C = 1).</param>
    /// <param name="destination">The bytes to fill; must hold H*W*C elements of the dtype.</param>
    /// <param name="source">Where the bytes came from (e.g. the <c>tfds_id</c>), for error messages.</param>
    /// <returns>The decoded image's facts (Channels = channels written).</returns>
    /// <exception cref="DataFormatException">Unsupported, corrupt or wrongly sized image.</exception>
    /// <exception cref="ArgumentException"><paramref name="spec"/> is not a rank-3 Image of a supported dtype, or
    /// <paramref name="destination"/> is too short.</exception>
    /// <param name="maxPixels">The pixel budget (<see cref="ImageDecoder.DefaultMaxPixels"/>); a larger image is refused from its header.</param>
    public static ImageInfo Decode(ReadOnlySpan<byte> encoded, FeatureSpec spec, Span<byte> destination, string? source = null, long maxPixels = ImageDecoder.DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Kind != FeatureKind.Image || spec.Shape.Length != 3)
            throw new ArgumentException(
                $"Feature '{spec.Key}' is {spec.Kind} with shape ({string.Join(", ", spec.Shape)}); an image feature needs an Image of shape (H, W, C).", nameof(spec));
        int h = spec.Shape[0], w = spec.Shape[1], c = spec.Shape[2];
        switch (spec.DType)
        {
            case DType.UInt8:
                return ImageDecoder.Decode(encoded, destination, c, h, w, source, maxPixels);
            case DType.UInt16:
                return ImageDecoder.Decode16(encoded, MemoryMarshal.Cast<byte, ushort>(destination), c, h, w, source, maxPixels);
            case DType.Float32:
                if (c != 1)
                    throw new ArgumentException($"Feature '{spec.Key}' is a float32 Image with {c} channels; TFDS float32 images have exactly 1.", nameof(spec));
                return ImageDecoder.DecodeFloat32(encoded, MemoryMarshal.Cast<byte, float>(destination), h, w, source, maxPixels);
            default:
                throw new ArgumentException(
                    $"Feature '{spec.Key}' is an Image of dtype {spec.DType}; supported: UInt8, UInt16 (PNG), Float32 (1 channel).", nameof(spec));
        }
    }
}
