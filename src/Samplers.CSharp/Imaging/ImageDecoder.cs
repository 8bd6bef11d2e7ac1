using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Samplers.Imaging;

/// <summary>Encoded image formats recognised by their magic bytes.</summary>
internal enum ImageFormat
{
    /// <summary>Magic bytes of no known format.</summary>
    Unknown = 0,
    /// <summary>PNG (<c>89 50 4E 47 0D 0A 1A 0A</c>).</summary>
    Png,
    /// <summary>JPEG (<c>FF D8 FF</c>).</summary>
    Jpeg,
    /// <summary>GIF (<c>GIF8</c>); recognised only to refuse it clearly.</summary>
    Gif,
    /// <summary>BMP (<c>BM</c>); recognised only to refuse it clearly.</summary>
    Bmp,
    /// <summary>WebP (<c>RIFF....WEBP</c>); recognised only to refuse it clearly.</summary>
    WebP,
}

/// <summary>
/// What <see cref="ImageDecoder.Measure(ReadOnlySpan{byte}, string?)"/> found in an encoded image's header.
/// </summary>
/// <param name="Height">Rows.</param>
/// <param name="Width">Columns.</param>
/// <param name="Channels">Native channels as TensorFlow counts them with <c>channels=0</c>: 1 grey, 2 grey+alpha,
/// 3 RGB (also palette without tRNS), 4 RGBA (also palette with tRNS).</param>
/// <param name="BitDepth">Bits per sample: 8, or 16 for a 16-bit PNG (1, 2, 4-bit PNGs are expanded to 8).</param>
/// <param name="Format">The sniffed format.</param>
internal readonly record struct ImageInfo(int Height, int Width, int Channels, int BitDepth, ImageFormat Format);

/// <summary>
/// Decodes PNG and JPEG images into caller-owned HWC buffers, the way TFDS's <c>Image</c> feature is decoded by
/// TensorFlow (TFDS_FORMAT.md 5.6): the format is sniffed from magic bytes (the declared <c>encodingFormat</c> is
/// ignored), channels are converted to the requested count, and anything else is refused with a
/// <see cref="DataFormatException"/>. PNG is decoded here, in managed code (<see cref="PngDecoder"/>); JPEG (and any
/// other format) goes to a codec registered with <see cref="ImageCodecs"/>, normally the one of the
/// <c>Samplers.SkiaSharp</c> package (libjpeg-turbo; see docs/IMAGE_DECODERS.md). PNG chunk CRCs are verified before
/// decoding, because a corrupt image must fail rather than decode to garbage. All members are static and thread-safe.
/// </summary>
internal static class ImageDecoder
{
    /// <summary>The formats this decoder decodes, for messages.</summary>
    public const string SupportedFormats = "PNG (1/2/4/8/16-bit, grey, grey+alpha, RGB, RGBA, palette, Adam7), and JPEG (grey, RGB, CMYK; baseline or progressive) " +
        "with the Samplers.SkiaSharp package or another registered IImageCodec";

    /// <summary>The default pixel budget per image (height x width): PIL's decompression-bomb limit,
    /// 89,478,485 pixels (about 0.25 GiB of RGB). Pass a larger budget to decode larger images.</summary>
    public const long DefaultMaxPixels = 89_478_485;

    /// <summary>The best deflate compression ratio (a 258-byte match per 2 bits, about 1032:1): a PNG whose IDAT data
    /// is smaller than its raw pixel rows divided by this cannot hold the pixels it claims.</summary>
    internal const int MaxDeflateRatio = 1032;

    /// <summary>Identifies the format from the first bytes.</summary>
    public static ImageFormat Sniff(ReadOnlySpan<byte> encoded)
    {
        if (encoded.StartsWith(PngEncoder.Signature)) return ImageFormat.Png;
        if (encoded.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])) return ImageFormat.Jpeg;
        if (encoded.StartsWith("GIF8"u8)) return ImageFormat.Gif;
        if (encoded.StartsWith("BM"u8)) return ImageFormat.Bmp;
        if (encoded.Length >= 12 && encoded.StartsWith("RIFF"u8) && encoded.Slice(8, 4).SequenceEqual("WEBP"u8)) return ImageFormat.WebP;
        return ImageFormat.Unknown;
    }

    /// <summary>
    /// Reads the size and native channel count without decoding pixels (for ragged datasets, to size buffers).
    /// PNG chunk CRCs are checked.
    /// </summary>
    /// <param name="encoded">The encoded file bytes.</param>
    /// <param name="source">Where the bytes came from (e.g. a <c>tfds_id</c>), used in error messages.</param>
    /// <exception cref="DataFormatException">Unknown or unsupported format, or a corrupt header.</exception>
    public static ImageInfo Measure(ReadOnlySpan<byte> encoded, string? source = null) => Measure(encoded, source, DefaultMaxPixels);

    /// <summary>
    /// Reads the size and native channel count without decoding pixels, and refuses, from the header alone, an image
    /// above the pixel budget or one whose data is too short to hold the pixels it claims (a decompression bomb or
    /// a truncated file): nothing is allocated for pixels before these checks.
    /// </summary>
    /// <param name="encoded">The encoded file bytes.</param>
    /// <param name="source">Where the bytes came from (e.g. a <c>tfds_id</c>), used in error messages.</param>
    /// <param name="maxPixels">The most pixels (height x width) allowed; see <see cref="DefaultMaxPixels"/>.</param>
    /// <exception cref="DataFormatException">Unknown or unsupported format, a corrupt header, an image above the
    /// budget, or data too short for the declared size.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxPixels"/> is below 1.</exception>
    public static ImageInfo Measure(ReadOnlySpan<byte> encoded, string? source, long maxPixels) => Measure(encoded, source, maxPixels, out _);

    /// <summary>As <see cref="Measure(ReadOnlySpan{byte}, string?, long)"/>, also giving a PNG's chunk walk (default
    /// for other formats) so that a decode does not walk and CRC the chunks a second time.</summary>
    private static ImageInfo Measure(ReadOnlySpan<byte> encoded, string? source, long maxPixels, out PngHeader png)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPixels, 1L);
        png = default;
        var format = Sniff(encoded);
        ImageInfo info;
        switch (format)
        {
            case ImageFormat.Png:
            {
                var header = png = PngHeader.Read(encoded, source);
                info = header.ToInfo();
                CheckBudget(info, maxPixels, source);
                // Raw rows: a filter byte plus the packed samples; deflate cannot shrink them more than ~1032 times.
                int samples = header.ColorType switch { PngColorType.Grey or PngColorType.Palette => 1, PngColorType.GreyAlpha => 2, PngColorType.Rgb => 3, _ => 4 };
                int bitsPerPixel = header.BitDepth * samples;
                long rawBytes = (long)header.Height * (1 + ((long)header.Width * bitsPerPixel + 7) / 8);
                if (header.IdatBytes * MaxDeflateRatio < rawBytes)
                    throw new DataFormatException(
                        $"{Where(source)}PNG claims {header.Width}x{header.Height} pixels ({rawBytes} bytes of raw rows) but holds only {header.IdatBytes} bytes of " +
                        $"image data, less than any deflate stream of those rows (at most {MaxDeflateRatio}:1); the file is truncated or forged. Re-download or regenerate it.", source);
                return info;
            }
            default:
            {
                var codec = CodecFor(format, encoded, source);
                codec.Measure(encoded, source, out int h, out int w, out int ch);
                info = new ImageInfo(h, w, ch, 8, format);
                CheckBudget(info, maxPixels, source);
                if (format == ImageFormat.Jpeg) JpegHeader.CheckDataLength(encoded, info, source);
                return info;
            }
        }
    }

    /// <summary>The registered codec for a non-PNG image; refuses a JPEG without one naming the package to add, and
    /// anything else as an unsupported format.</summary>
    /// <exception cref="DataFormatException">No codec decodes the image.</exception>
    internal static IImageCodec CodecFor(ImageFormat format, ReadOnlySpan<byte> encoded, string? source)
    {
        if (ImageCodecs.Find(encoded[..Math.Min(encoded.Length, 64)]) is { } codec) return codec;
        if (format == ImageFormat.Jpeg) throw new DataFormatException(ImageCodecs.NoJpegCodec(source), source);
        throw Unsupported(format, encoded, source);
    }

    private static void CheckBudget(ImageInfo info, long maxPixels, string? source)
    {
        long pixels = (long)info.Height * info.Width;
        if (pixels > maxPixels)
            throw new DataFormatException(
                $"{Where(source)}{info.Format.ToString().ToUpperInvariant()} image is {info.Width}x{info.Height} = {pixels} pixels, above the budget of {maxPixels} " +
                "pixels per image (a decompression-bomb guard, as PIL's). If the image is genuine, raise the budget (TfdsLoadOptions.MaxImagePixels); " +
                "otherwise the file is forged or damaged: re-download the dataset.", source);
    }

    /// <summary>Number of elements (not bytes) a decode of <paramref name="info"/> to <paramref name="channels"/> needs.</summary>
    /// <param name="info">A measured image.</param>
    /// <param name="channels">Requested channels; -1 or 0 for native.</param>
    public static int ElementCount(ImageInfo info, int channels)
        => checked(info.Height * info.Width * (channels <= 0 ? info.Channels : channels));

    /// <summary>
    /// Decodes an image into <paramref name="destination"/> as (H, W, C) uint8, row-major, top row first. A 16-bit
    /// PNG keeps the high byte of each sample, as TensorFlow does (libpng <c>png_set_strip_16</c>).
    /// </summary>
    /// <param name="encoded">The encoded file bytes (PNG or JPEG, sniffed).</param>
    /// <param name="destination">Receives H*W*C bytes; may be longer.</param>
    /// <param name="channels">C: 1, 2, 3 or 4; -1 (or 0) keeps the native channel count.</param>
    /// <param name="expectedHeight">Declared height, or -1 when the dimension varies.</param>
    /// <param name="expectedWidth">Declared width, or -1 when the dimension varies.</param>
    /// <param name="source">Where the bytes came from (e.g. a <c>tfds_id</c>), used in error messages.</param>
    /// <returns>The decoded image's header facts (Channels = the channels written).</returns>
    /// <exception cref="DataFormatException">Unsupported format, corrupt data, or a size different from the declared one.</exception>
    /// <exception cref="ArgumentException">Bad channel count, or <paramref name="destination"/> too short.</exception>
    /// <param name="maxPixels">The pixel budget (<see cref="DefaultMaxPixels"/>); a larger image is refused from its header.</param>
    public static ImageInfo Decode(ReadOnlySpan<byte> encoded, Span<byte> destination, int channels = -1,
        int expectedHeight = -1, int expectedWidth = -1, string? source = null, long maxPixels = DefaultMaxPixels)
    {
        var info = Prepare(encoded, channels, expectedHeight, expectedWidth, source, maxPixels, out int c, out var png);
        int needed = info.Height * info.Width * c;
        if (destination.Length < needed)
            throw new ArgumentException($"destination holds {destination.Length} bytes, the {info.Width}x{info.Height}x{c} image needs {needed}.", nameof(destination));
        DecodeInto8(encoded, info, png, c, destination[..needed], source);
        return info with { Channels = c };
    }

    /// <summary>
    /// Decodes into (H, W, C) uint16 samples (native byte order): a 16-bit PNG exactly, an 8-bit image widened by
    /// v * 257 as TensorFlow does (255 becomes 65535).
    /// </summary>
    /// <inheritdoc cref="Decode" path="/param"/>
    /// <exception cref="DataFormatException">Unsupported format, corrupt data, or a size different from the declared one.</exception>
    /// <exception cref="ArgumentException">Bad channel count, or <paramref name="destination"/> too short.</exception>
    public static ImageInfo Decode16(ReadOnlySpan<byte> encoded, Span<ushort> destination, int channels = -1,
        int expectedHeight = -1, int expectedWidth = -1, string? source = null, long maxPixels = DefaultMaxPixels)
    {
        var info = Prepare(encoded, channels, expectedHeight, expectedWidth, source, maxPixels, out int c, out var png);
        int needed = info.Height * info.Width * c;
        if (destination.Length < needed)
            throw new ArgumentException($"destination holds {destination.Length} values, the {info.Width}x{info.Height}x{c} image needs {needed}.", nameof(destination));
        var dst = destination[..needed];
        if (info.BitDepth != 16)
        {
            // TensorFlow widens 8-bit samples to uint16 by v * 257 (v in both bytes), so 255 becomes 65535.
            byte[] narrow = ArrayPool<byte>.Shared.Rent(needed);
            try
            {
                DecodeInto8(encoded, info, png, c, narrow.AsSpan(0, needed), source);
                for (int i = 0; i < needed; i++) dst[i] = (ushort)(narrow[i] * 257);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(narrow);
            }
            return info with { Channels = c };
        }
        PngDecoder.Decode16(encoded, png, c, dst, source);
        return info with { Channels = c };
    }

    /// <summary>
    /// Decodes a TFDS float32 image: a 4-channel 8-bit PNG whose four bytes per pixel are one little-endian float32,
    /// reinterpreted to (H, W, 1).
    /// </summary>
    /// <inheritdoc cref="Decode" path="/param"/>
    /// <exception cref="DataFormatException">Not an 8-bit RGBA PNG, corrupt data, or a size different from the declared one.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> too short.</exception>
    public static ImageInfo DecodeFloat32(ReadOnlySpan<byte> encoded, Span<float> destination,
        int expectedHeight = -1, int expectedWidth = -1, string? source = null, long maxPixels = DefaultMaxPixels)
    {
        var info = Prepare(encoded, 4, expectedHeight, expectedWidth, source, maxPixels, out _, out var png);
        if (info.Format != ImageFormat.Png || info.Channels != 4 || info.BitDepth != 8)
            throw new DataFormatException(
                $"{Where(source)}float32 Image must be stored as an 8-bit RGBA PNG (4 bytes per float); found {info.Format.ToString().ToUpperInvariant()} with {info.Channels} channel(s) of {info.BitDepth} bits.", source);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("float32 images are little-endian bytes; big-endian hosts are not supported.");
        int pixels = info.Height * info.Width;
        if (destination.Length < pixels)
            throw new ArgumentException($"destination holds {destination.Length} floats, the {info.Width}x{info.Height}x1 image needs {pixels}.", nameof(destination));
        DecodeInto8(encoded, info, png, 4, MemoryMarshal.AsBytes(destination[..pixels]), source);
        return info with { Channels = 1 };
    }
    private static ImageInfo Prepare(ReadOnlySpan<byte> encoded, int channels, int expectedHeight, int expectedWidth, string? source, long maxPixels, out int c, out PngHeader png)
    {
        if (channels is < -1 or > 4)
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1, 2, 3, 4, or -1/0 for native.");
        var info = Measure(encoded, source, maxPixels, out png);
        if ((expectedHeight >= 0 && expectedHeight != info.Height) || (expectedWidth >= 0 && expectedWidth != info.Width))
            throw new DataFormatException(
                $"{Where(source)}decoded {info.Format.ToString().ToUpperInvariant()} image is {info.Height}x{info.Width} (HxW) but the feature declares " +
                $"{Dim(expectedHeight)}x{Dim(expectedWidth)}. Fix the features.json shape (use -1 for a varying size) or the data.", source);
        c = channels <= 0 ? info.Channels : channels;
        return info;
    }

    private static string Dim(int d) => d < 0 ? "?" : d.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static void DecodeInto8(ReadOnlySpan<byte> encoded, ImageInfo info, in PngHeader png, int c, Span<byte> dst, string? source)
    {
        if (info.Format == ImageFormat.Png)
        {
            PngDecoder.Decode8(encoded, png, c, dst, source);
            return;
        }
        CodecFor(info.Format, encoded, source).Decode(encoded, info.Height, info.Width, c, dst, source);
    }

    private static DataFormatException Unsupported(ImageFormat format, ReadOnlySpan<byte> encoded, string? source)
    {
        string head = Convert.ToHexString(encoded[..Math.Min(8, encoded.Length)]);
        string what = format == ImageFormat.Unknown ? "Unknown image format" : $"Unsupported image format {format}";
        return new DataFormatException(
            $"{Where(source)}{what} (first bytes {(head.Length == 0 ? "<empty>" : head)}, {encoded.Length} bytes). Supported: {SupportedFormats}.", source);
    }

    internal static string Where(string? source) => source is null ? "" : source + ": ";

    /// <summary>IHDR facts and a CRC walk over the chunks.</summary>
    internal readonly record struct PngHeader(int Width, int Height, int BitDepth, PngColorType ColorType, bool Interlaced, bool HasTrns, long IdatBytes = 0)
    {
        /// <summary>Offset of the PLTE chunk's data, or 0 when there is none.</summary>
        public int PlteOffset { get; init; }

        /// <summary>Length of the PLTE chunk's data.</summary>
        public int PlteLength { get; init; }

        /// <summary>Offset of the tRNS chunk's data, or 0 when there is none.</summary>
        public int TrnsOffset { get; init; }

        /// <summary>Length of the tRNS chunk's data.</summary>
        public int TrnsLength { get; init; }

        /// <summary>Offset of the first IDAT chunk (its length field).</summary>
        public int FirstIdat { get; init; }

        public ImageInfo ToInfo()
        {
            int ch = ColorType switch
            {
                PngColorType.Grey => 1,
                PngColorType.GreyAlpha => 2,
                PngColorType.Rgb => 3,
                PngColorType.Rgba => 4,
                _ => HasTrns ? 4 : 3,
            };
            return new ImageInfo(Height, Width, ch, BitDepth == 16 ? 16 : 8, ImageFormat.Png);
        }

        private static string Name(ReadOnlySpan<byte> type) => System.Text.Encoding.ASCII.GetString(type);

        /// <summary>
        /// Walks every chunk up to IEND, checking lengths and the CRC of critical chunks (libpng's default: critical
        /// chunk CRC errors are fatal, ancillary ones are ignored).
        /// </summary>
        public static PngHeader Read(ReadOnlySpan<byte> png, string? source)
        {
            int pos = 8;
            PngHeader? header = null;
            bool trns = false, idat = false;
            long idatBytes = 0;
            int plteAt = 0, plteLen = 0, trnsAt = 0, trnsLen = 0, firstIdat = 0;
            while (true)
            {
                if (pos + 8 > png.Length)
                {
                    if (header is not null && idat) break; // IEND missing after complete data: tolerated, as libpng does
                    throw new DataFormatException($"{Where(source)}PNG truncated at byte {pos} of {png.Length}: expected a chunk header.", source, pos);
                }
                uint len = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
                var type = png.Slice(pos + 4, 4);
                if (len > int.MaxValue || pos + 12L + len > png.Length)
                    throw new DataFormatException($"{Where(source)}PNG truncated: chunk {Name(type)} at byte {pos} declares {len} bytes, only {png.Length - pos - 12} remain.", source, pos);
                var data = png.Slice(pos + 8, (int)len);
                bool critical = (type[0] & 0x20) == 0;
                if (critical)
                {
                    // Type and data are contiguous, so one call covers what the CRC protects.
                    uint actual = Crc32.HashToUInt32(png.Slice(pos + 4, 4 + (int)len));
                    uint stored = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + (int)len)..]);
                    if (stored != actual)
                        throw new DataFormatException(
                            $"{Where(source)}PNG chunk {Name(type)} at byte {pos} is corrupt: CRC 0x{actual:X8}, stored 0x{stored:X8}.", source, pos);
                }
                if (header is null)
                {
                    if (!type.SequenceEqual("IHDR"u8) || len != 13)
                        throw new DataFormatException($"{Where(source)}PNG must start with a 13-byte IHDR chunk; found {Name(type)} ({len} bytes).", source, pos);
                    int w = BinaryPrimitives.ReadInt32BigEndian(data), h = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    int depth = data[8], ct = data[9];
                    bool ok = w > 0 && h > 0 && (long)w * h <= int.MaxValue / 8 && ct is 0 or 2 or 3 or 4 or 6 && depth is 1 or 2 or 4 or 8 or 16
                        && data[12] <= 1 && !(ct == 3 && depth == 16) && !(ct is 2 or 4 or 6 && depth < 8);
                    if (!ok)
                        throw new DataFormatException($"{Where(source)}PNG IHDR is invalid or too large: {w}x{h}, bit depth {depth}, colour type {ct}, interlace {data[12]}.", source, pos);
                    header = new PngHeader(w, h, depth, (PngColorType)ct, data[12] == 1, false);
                }
                else if (type.SequenceEqual("tRNS"u8)) { trns = true; trnsAt = pos + 8; trnsLen = (int)len; }
                else if (type.SequenceEqual("PLTE"u8)) { plteAt = pos + 8; plteLen = (int)len; }
                else if (type.SequenceEqual("IDAT"u8))
                {
                    if (!idat) firstIdat = pos;
                    idat = true;
                    idatBytes += len;
                }
                else if (type.SequenceEqual("IEND"u8)) break;
                pos += 12 + (int)len;
            }
            if (!idat)
                throw new DataFormatException($"{Where(source)}PNG has no IDAT chunk: no pixel data.", source);
            return header!.Value with
            {
                HasTrns = trns, IdatBytes = idatBytes, PlteOffset = plteAt, PlteLength = plteLen, TrnsOffset = trnsAt, TrnsLength = trnsLen, FirstIdat = firstIdat,
            };
        }
    }
}
