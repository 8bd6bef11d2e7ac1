using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace Samplers.Imaging;

/// <summary>PNG colour types (the IHDR byte), named after what each pixel holds.</summary>
internal enum PngColorType : byte
{
    /// <summary>One grey sample per pixel.</summary>
    Grey = 0,
    /// <summary>Red, green, blue.</summary>
    Rgb = 2,
    /// <summary>One palette index per pixel (needs <see cref="PngEncodeOptions.Palette"/>).</summary>
    Palette = 3,
    /// <summary>Grey and alpha.</summary>
    GreyAlpha = 4,
    /// <summary>Red, green, blue, alpha.</summary>
    Rgba = 6,
}

/// <summary>Which PNG row filter the encoder writes.</summary>
internal enum PngFilterMode
{
    /// <summary>Filter 0 on every row.</summary>
    None = 0,
    /// <summary>Filter 1 (left neighbour) on every row.</summary>
    Sub = 1,
    /// <summary>Filter 2 (row above) on every row.</summary>
    Up = 2,
    /// <summary>Filter 3 (mean of left and above) on every row.</summary>
    Average = 3,
    /// <summary>Filter 4 (Paeth predictor) on every row.</summary>
    Paeth = 4,
    /// <summary>Row r uses filter r mod 5, so one image exercises all five filters (for decoder tests).</summary>
    Cycle = 5,
}

/// <summary>Options of <see cref="PngEncoder"/>. The defaults give the smallest ordinary 8-bit image.</summary>
internal sealed record PngEncodeOptions
{
    /// <summary>Bits per sample: 8 (all colour types), 16 (not palette), or 1, 2, 4 (grey and palette only).</summary>
    public int BitDepth { get; init; } = 8;

    /// <summary>Write Adam7-interlaced data.</summary>
    public bool Interlaced { get; init; }

    /// <summary>Row filter. <see cref="PngFilterMode.Up"/> compresses images like digits well.</summary>
    public PngFilterMode Filter { get; init; } = PngFilterMode.Up;

    /// <summary>Palette colour type: RGB triples, at most 2^BitDepth entries (the PLTE chunk).</summary>
    public ReadOnlyMemory<byte> Palette { get; init; }

    /// <summary>Palette colour type: one alpha byte per leading palette entry (the tRNS chunk); empty for none.</summary>
    public ReadOnlyMemory<byte> PaletteAlpha { get; init; }
}

/// <summary>
/// A small deterministic PNG encoder for fixtures and the embedded dataset: every colour type, bit depths 1-16,
/// Adam7, a fixed filter choice and a fixed zlib level (<see cref="CompressionLevel.SmallestSize"/>), so the same
/// pixels give the same bytes on one runtime. Chunk CRCs are CRC-32/IEEE. No ancillary chunks (no gAMA/sRGB/time),
/// so decoders apply no colour management.
/// </summary>
internal static class PngEncoder
{
    /// <summary>The 8-byte PNG signature.</summary>
    public static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// Encodes 8-bit-or-less samples. <paramref name="samples"/> is row-major HWC with one byte per sample (values
    /// below 2^BitDepth for depths 1-4; palette indices for <see cref="PngColorType.Palette"/>).
    /// </summary>
    /// <exception cref="ArgumentException">Sizes, depth, palette or sample values do not fit the colour type.</exception>
    public static byte[] Encode(ReadOnlySpan<byte> samples, int width, int height, PngColorType colorType, PngEncodeOptions? options = null)
    {
        options ??= new PngEncodeOptions();
        if (options.BitDepth == 16)
            throw new ArgumentException("BitDepth 16 needs the ushort overload Encode16.", nameof(options));
        var wide = new ushort[samples.Length];
        for (int i = 0; i < samples.Length; i++) wide[i] = samples[i];
        return EncodeCore(wide, width, height, colorType, options);
    }

    /// <summary>Encodes 16-bit samples (row-major HWC, one ushort per sample); BitDepth is forced to 16.</summary>
    /// <exception cref="ArgumentException">Sizes do not fit, or the colour type is Palette.</exception>
    public static byte[] Encode16(ReadOnlySpan<ushort> samples, int width, int height, PngColorType colorType, PngEncodeOptions? options = null)
    {
        options = (options ?? new PngEncodeOptions()) with { BitDepth = 16 };
        return EncodeCore(samples.ToArray(), width, height, colorType, options);
    }

    /// <summary>Writes an encoded image to <paramref name="path"/> by the output rule for a path the caller names
    /// (<see cref="OutputTarget.Resolve"/>): a temporary file beside it and a rename; through a symbolic link (the link
    /// stays, its target receives the image); directly into a FIFO or character device.</summary>
    /// <exception cref="ArgumentException"><paramref name="path"/> is a directory, a block device or a socket.</exception>
    public static void WriteFile(string path, byte[] png)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(png);
        OutputTarget.WriteUserPath(path, s => s.Write(png));
    }

    /// <summary>Samples per pixel of a colour type.</summary>
    public static int SamplesPerPixel(PngColorType colorType) => colorType switch
    {
        PngColorType.Grey or PngColorType.Palette => 1,
        PngColorType.GreyAlpha => 2,
        PngColorType.Rgb => 3,
        PngColorType.Rgba => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(colorType), colorType, "not a PNG colour type"),
    };

    private static byte[] EncodeCore(ushort[] samples, int width, int height, PngColorType colorType, PngEncodeOptions o)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        int spp = SamplesPerPixel(colorType);
        int depth = o.BitDepth;
        bool depthOk = depth switch
        {
            1 or 2 or 4 => colorType is PngColorType.Grey or PngColorType.Palette,
            8 => true,
            16 => colorType != PngColorType.Palette,
            _ => false,
        };
        if (!depthOk)
            throw new ArgumentException($"PNG bit depth {depth} is not allowed with colour type {colorType}.", nameof(o));
        if ((long)width * height * spp != samples.Length)
            throw new ArgumentException($"Expected {width}x{height}x{spp} = {(long)width * height * spp} samples, got {samples.Length}.", nameof(samples));
        int max = depth == 16 ? 65535 : (1 << depth) - 1;
        int paletteEntries = o.Palette.Length / 3;
        if (colorType == PngColorType.Palette)
        {
            if (o.Palette.Length == 0 || o.Palette.Length % 3 != 0 || paletteEntries > (1 << depth))
                throw new ArgumentException($"Palette must hold 1..{1 << depth} RGB triples, got {o.Palette.Length} bytes.", nameof(o));
            if (o.PaletteAlpha.Length > paletteEntries)
                throw new ArgumentException("PaletteAlpha is longer than the palette.", nameof(o));
            max = paletteEntries - 1;
        }
        for (int i = 0; i < samples.Length; i++)
            if (samples[i] > max)
                throw new ArgumentException($"Sample {i} is {samples[i]}, above the maximum {max} for this depth/palette.", nameof(samples));

        using var raw = new MemoryStream();
        if (o.Interlaced)
        {
            for (int pass = 0; pass < 7; pass++)
            {
                var (x0, y0, dx, dy) = Adam7[pass];
                int pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
                if (pw <= 0 || ph <= 0) continue;
                WriteRows(raw, samples, width, spp, depth, x0, y0, dx, dy, pw, ph, o.Filter);
            }
        }
        else
        {
            WriteRows(raw, samples, width, spp, depth, 0, 0, 1, 1, width, height, o.Filter);
        }

        byte[] compressed;
        using (var zbuf = new MemoryStream())
        {
            using (var z = new ZLibStream(zbuf, CompressionLevel.SmallestSize, leaveOpen: true))
                z.Write(raw.GetBuffer(), 0, (int)raw.Length);
            compressed = zbuf.ToArray();
        }

        using var png = new MemoryStream();
        png.Write(Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = (byte)depth;
        ihdr[9] = (byte)colorType;
        ihdr[10] = 0; // deflate
        ihdr[11] = 0; // adaptive filtering
        ihdr[12] = o.Interlaced ? (byte)1 : (byte)0;
        WriteChunk(png, "IHDR"u8, ihdr);
        if (colorType == PngColorType.Palette)
        {
            WriteChunk(png, "PLTE"u8, o.Palette.Span);
            if (o.PaletteAlpha.Length > 0) WriteChunk(png, "tRNS"u8, o.PaletteAlpha.Span);
        }
        WriteChunk(png, "IDAT"u8, compressed);
        WriteChunk(png, "IEND"u8, ReadOnlySpan<byte>.Empty);
        return png.ToArray();
    }

    /// <summary>Adam7 passes: start x, start y, step x, step y.</summary>
    internal static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    private static void WriteRows(MemoryStream raw, ushort[] samples, int width, int spp, int depth,
        int x0, int y0, int dx, int dy, int pw, int ph, PngFilterMode filter)
    {
        int bitsPerPixel = spp * depth;
        int rowBytes = (pw * bitsPerPixel + 7) / 8;
        int bpp = Math.Max(1, bitsPerPixel / 8); // filter distance in bytes
        var prev = new byte[rowBytes];
        var cur = new byte[rowBytes];
        var outRow = new byte[rowBytes];
        for (int r = 0; r < ph; r++)
        {
            Array.Clear(cur);
            int y = y0 + r * dy;
            for (int i = 0; i < pw; i++)
            {
                int x = x0 + i * dx;
                for (int c = 0; c < spp; c++)
                {
                    int v = samples[(y * width + x) * spp + c];
                    int sampleIndex = i * spp + c;
                    if (depth == 16)
                    {
                        cur[sampleIndex * 2] = (byte)(v >> 8);
                        cur[sampleIndex * 2 + 1] = (byte)v;
                    }
                    else if (depth == 8)
                    {
                        cur[sampleIndex] = (byte)v;
                    }
                    else
                    {
                        // Sub-byte samples are packed most significant bits first.
                        int bit = sampleIndex * depth;
                        cur[bit >> 3] |= (byte)(v << (8 - depth - (bit & 7)));
                    }
                }
            }
            int f = filter == PngFilterMode.Cycle ? r % 5 : (int)filter;
            for (int i = 0; i < rowBytes; i++)
            {
                int a = i >= bpp ? cur[i - bpp] : 0;
                int b = prev[i];
                int cc = i >= bpp ? prev[i - bpp] : 0;
                int pred = f switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) >> 1,
                    _ => Paeth(a, b, cc),
                };
                outRow[i] = (byte)(cur[i] - pred);
            }
            raw.WriteByte((byte)f);
            raw.Write(outRow, 0, rowBytes);
            (prev, cur) = (cur, prev);
        }
    }

    internal static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static void WriteChunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        type.CopyTo(head[4..]);
        s.Write(head);
        s.Write(data);
        var crc = new Crc32();
        crc.Append(type);
        crc.Append(data);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc.GetCurrentHashAsUInt32());
        s.Write(tail);
    }
}
