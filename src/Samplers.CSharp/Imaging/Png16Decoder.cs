using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;

namespace Samplers.Imaging;

/// <summary>
/// Decodes 16-bit PNG (grey, grey+alpha, RGB, RGBA; plain or Adam7) exactly to RGBA uint16. SkiaSharp cannot hand
/// out 16-bit samples (only half floats, which lose bits), so this small path does it: inflate, unfilter, scatter.
/// Chunk CRCs were already checked by <see cref="ImageDecoder.PngHeader.Read"/>.
/// </summary>
internal static class Png16Decoder
{
    /// <summary>Fills <paramref name="rgba"/> (H*W*4) with samples; grey sources give (g, g, g, a), alpha 65535 when absent.</summary>
    public static void DecodeRgba(ReadOnlySpan<byte> png, ImageDecoder.PngHeader h, Span<ushort> rgba, string? source)
    {
        int spp = PngEncoder.SamplesPerPixel(h.ColorType);
        int bpp = spp * 2;
        long rawLength = 0;
        var passes = h.Interlaced ? PngEncoder.Adam7 : [(0, 0, 1, 1)];
        foreach (var (x0, y0, dx, dy) in passes)
        {
            long pw = (h.Width - x0 + dx - 1) / dx, ph = (h.Height - y0 + dy - 1) / dy;
            if (pw > 0 && ph > 0) rawLength += ph * (1 + pw * bpp);
        }
        if (rawLength > int.MaxValue)
            throw new DataFormatException($"{ImageDecoder.Where(source)}16-bit PNG of {h.Width}x{h.Height} is too large to decode.", source);

        byte[] idat = ArrayPool<byte>.Shared.Rent(IdatLength(png));
        byte[] raw = ArrayPool<byte>.Shared.Rent((int)rawLength);
        try
        {
            int n = CopyIdat(png, idat);
            Inflate(idat.AsSpan(0, n), raw.AsSpan(0, (int)rawLength), source);
            int pos = 0;
            foreach (var (x0, y0, dx, dy) in passes)
            {
                int pw = (h.Width - x0 + dx - 1) / dx, ph = (h.Height - y0 + dy - 1) / dy;
                if (pw <= 0 || ph <= 0) continue;
                int rowBytes = pw * bpp;
                for (int r = 0; r < ph; r++)
                {
                    int filter = raw[pos];
                    var row = raw.AsSpan(pos + 1, rowBytes);
                    var prev = r == 0 ? Span<byte>.Empty : raw.AsSpan(pos - rowBytes, rowBytes);
                    Unfilter(filter, row, prev, bpp, source, r);
                    int y = y0 + r * dy;
                    for (int i = 0; i < pw; i++)
                    {
                        int o = ((y * h.Width) + x0 + i * dx) * 4;
                        var px = row.Slice(i * bpp, bpp);
                        switch (spp)
                        {
                            case 1: rgba[o] = rgba[o + 1] = rgba[o + 2] = S(px, 0); rgba[o + 3] = 65535; break;
                            case 2: rgba[o] = rgba[o + 1] = rgba[o + 2] = S(px, 0); rgba[o + 3] = S(px, 1); break;
                            case 3: rgba[o] = S(px, 0); rgba[o + 1] = S(px, 1); rgba[o + 2] = S(px, 2); rgba[o + 3] = 65535; break;
                            default: rgba[o] = S(px, 0); rgba[o + 1] = S(px, 1); rgba[o + 2] = S(px, 2); rgba[o + 3] = S(px, 3); break;
                        }
                    }
                    pos += 1 + rowBytes;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(idat);
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    private static ushort S(ReadOnlySpan<byte> px, int k) => BinaryPrimitives.ReadUInt16BigEndian(px[(2 * k)..]);

    private static void Unfilter(int filter, Span<byte> row, ReadOnlySpan<byte> prev, int bpp, string? source, int r)
    {
        bool hasPrev = !prev.IsEmpty;
        for (int i = 0; i < row.Length; i++)
        {
            int a = i >= bpp ? row[i - bpp] : 0;
            int b = hasPrev ? prev[i] : 0;
            int c = hasPrev && i >= bpp ? prev[i - bpp] : 0;
            row[i] = filter switch
            {
                0 => row[i],
                1 => (byte)(row[i] + a),
                2 => (byte)(row[i] + b),
                3 => (byte)(row[i] + ((a + b) >> 1)),
                4 => (byte)(row[i] + PngEncoder.Paeth(a, b, c)),
                _ => throw new DataFormatException($"{ImageDecoder.Where(source)}PNG row {r} has filter type {filter}; only 0-4 exist. The image data is corrupt.", source),
            };
        }
    }

    private static void Inflate(ReadOnlySpan<byte> zlib, Span<byte> raw, string? source)
    {
        // ZLibStream needs a Stream; the IDAT bytes are already in a pooled array, so wrap that array.
        var array = ArrayPool<byte>.Shared.Rent(zlib.Length);
        try
        {
            zlib.CopyTo(array);
            using var ms = new MemoryStream(array, 0, zlib.Length, writable: false);
            using var z = new ZLibStream(ms, CompressionMode.Decompress);
            int total = 0;
            while (total < raw.Length)
            {
                int got = z.Read(raw[total..]);
                if (got == 0) break;
                total += got;
            }
            if (total < raw.Length)
                throw new DataFormatException($"{ImageDecoder.Where(source)}PNG image data is corrupt or truncated: zlib stream ended after {total} of {raw.Length} bytes.", source);
            // Read to the end so zlib verifies the Adler-32 checksum.
            Span<byte> one = stackalloc byte[1];
            while (z.Read(one) > 0) { }
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException($"{ImageDecoder.Where(source)}PNG image data is corrupt or truncated: {e.Message}", source, inner: e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    private static int IdatLength(ReadOnlySpan<byte> png) => CopyIdat(png, Span<byte>.Empty);

    /// <summary>Concatenates IDAT payloads into <paramref name="dst"/> (or only counts them when it is empty).</summary>
    private static int CopyIdat(ReadOnlySpan<byte> png, Span<byte> dst)
    {
        int pos = 8, n = 0;
        while (pos + 8 <= png.Length)
        {
            int len = (int)BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            var type = png.Slice(pos + 4, 4);
            if (type.SequenceEqual("IEND"u8)) break;
            if (type.SequenceEqual("IDAT"u8))
            {
                if (!dst.IsEmpty) png.Slice(pos + 8, len).CopyTo(dst[n..]);
                n += len;
            }
            pos += 12 + len;
        }
        return n;
    }
}
