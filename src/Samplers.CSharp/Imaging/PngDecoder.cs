using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Samplers.Imaging;

/// <summary>
/// The managed PNG decoder: every colour type and bit depth (1, 2, 4, 8, 16), palette with or without tRNS, grey and
/// RGB colour keys (tRNS), Adam7. Inflate (<see cref="ZLibStream"/> reading the IDAT payloads in place), unfilter each
/// row in place, then write the row into the caller's buffer, converting channels on the way the way TensorFlow's
/// <c>png_io.cc</c> asks libpng to: 1/2/4-bit grey scaled to 8 bits, palette expanded, alpha from tRNS when the output
/// has an alpha channel, RGB to grey with libpng's <c>rgb_to_gray</c> weights, 16-bit to 8-bit by the high byte.
/// Chunk CRCs, the pixel budget and the deflate-ratio check were done by <see cref="ImageDecoder.PngHeader.Read"/>
/// and <see cref="ImageDecoder.Measure(ReadOnlySpan{byte}, string?, long)"/> before any pixel memory is touched.
/// Per image it rents two buffers (raw rows, one expanded row) from <see cref="ArrayPool{T}.Shared"/>; when the
/// requested channels are the image's own 8-bit samples, rows are copied straight into the destination.
/// </summary>
internal static class PngDecoder
{
    /// <summary>Decodes into (H, W, <paramref name="c"/>) uint8; 16-bit samples keep their high byte (libpng's
    /// <c>png_set_strip_16</c>, as TensorFlow reads 16-bit PNG into uint8).</summary>
    /// <exception cref="DataFormatException">Corrupt or truncated image data, a bad filter byte, or a palette image
    /// without a palette.</exception>
    public static void Decode8(ReadOnlySpan<byte> png, in ImageDecoder.PngHeader h, int c, Span<byte> dst, string? source)
    {
        var sink = new Sink8(png, h, c, dst, source);
        try
        {
            Run(png, h, ref sink, source);
        }
        finally
        {
            sink.Return();
        }
    }

    /// <summary>Decodes a 16-bit PNG into (H, W, <paramref name="c"/>) uint16 samples, exactly.</summary>
    /// <exception cref="DataFormatException">Corrupt or truncated image data or a bad filter byte.</exception>
    public static void Decode16(ReadOnlySpan<byte> png, in ImageDecoder.PngHeader h, int c, Span<ushort> dst, string? source)
    {
        var sink = new Sink16(png, h, c, dst);
        try
        {
            Run(png, h, ref sink, source);
        }
        finally
        {
            sink.Return();
        }
    }

    /// <summary>Receives each unfiltered row.</summary>
    private interface IRowSink
    {
        /// <summary>One row: <paramref name="pw"/> pixels for image row <paramref name="y"/>, at columns
        /// <paramref name="x0"/>, <paramref name="x0"/> + <paramref name="dx"/>, ... (dx is 1 unless Adam7).</summary>
        void Row(ReadOnlySpan<byte> row, int pw, int y, int x0, int dx);
    }

    private static readonly (int X0, int Y0, int Dx, int Dy)[] Plain = [(0, 0, 1, 1)];

    /// <summary>Inflates the IDAT stream into a rented buffer, unfilters row by row and hands each row to the sink.</summary>
    private static unsafe void Run<TSink>(ReadOnlySpan<byte> png, in ImageDecoder.PngHeader h, ref TSink sink, string? source)
        where TSink : IRowSink, allows ref struct
    {
        int bitsPerPixel = PngEncoder.SamplesPerPixel(h.ColorType) * h.BitDepth;
        int bpp = Math.Max(1, bitsPerPixel / 8); // the filters' "left" distance, in bytes
        var passes = h.Interlaced ? PngEncoder.Adam7 : Plain;
        long rawLength = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            long pw = (h.Width - x0 + dx - 1) / dx, ph = (h.Height - y0 + dy - 1) / dy;
            if (pw > 0 && ph > 0) rawLength += ph * (1 + (pw * bitsPerPixel + 7) / 8);
        }
        if (rawLength > Array.MaxLength)
            throw new DataFormatException($"{ImageDecoder.Where(source)}PNG of {h.Width}x{h.Height} is too large to decode ({rawLength} bytes of raw rows).", source);

        byte[] raw = ArrayPool<byte>.Shared.Rent((int)rawLength);
        try
        {
            fixed (byte* p = png)
                Inflate(new IdatStream(p, png.Length, h.FirstIdat), raw.AsSpan(0, (int)rawLength), source);
            int pos = 0;
            foreach (var (x0, y0, dx, dy) in passes)
            {
                int pw = (h.Width - x0 + dx - 1) / dx, ph = (h.Height - y0 + dy - 1) / dy;
                if (pw <= 0 || ph <= 0) continue;
                int rowBytes = (int)(((long)pw * bitsPerPixel + 7) / 8);
                for (int r = 0; r < ph; r++)
                {
                    int filter = raw[pos];
                    var row = raw.AsSpan(pos + 1, rowBytes);
                    if (r == 0) UnfilterFirst(filter, row, bpp, source, r);
                    else Unfilter(filter, row, raw.AsSpan(pos - rowBytes, rowBytes), bpp, source, r);
                    sink.Row(row, pw, y0 + r * dy, x0, dx);
                    pos += 1 + rowBytes;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    private static void Inflate(Stream idat, Span<byte> raw, string? source)
    {
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int total = 0;
            while (total < raw.Length)
            {
                int got = z.Read(raw[total..]);
                if (got == 0) break;
                total += got;
            }
            if (total < raw.Length)
                throw new DataFormatException($"{ImageDecoder.Where(source)}PNG image data is corrupt or truncated: zlib stream ended after {total} of {raw.Length} bytes.", source);
            // Read to the end so zlib verifies the Adler-32 checksum (extra data after the rows is ignored, as libpng does).
            Span<byte> rest = stackalloc byte[64];
            while (z.Read(rest) > 0) { }
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException($"{ImageDecoder.Where(source)}PNG image data is corrupt or truncated: {e.Message}", source, inner: e);
        }
    }

    private static DataFormatException BadFilter(int filter, string? source, int r) =>
        new($"{ImageDecoder.Where(source)}PNG row {r} has filter type {filter}; only 0-4 exist. The image data is corrupt.", source);

    /// <summary>Unfilters the first row of a pass (the row above counts as zeros: Up is None, Paeth is Sub).</summary>
    private static void UnfilterFirst(int filter, Span<byte> row, int bpp, string? source, int r)
    {
        switch (filter)
        {
            case 0:
            case 2:
                return;
            case 1:
            case 4:
                for (int i = bpp; i < row.Length; i++) row[i] += row[i - bpp];
                return;
            case 3:
                for (int i = bpp; i < row.Length; i++) row[i] += (byte)(row[i - bpp] >> 1);
                return;
            default:
                throw BadFilter(filter, source, r);
        }
    }

    /// <summary>Reverses filter 0-4 on <paramref name="row"/> in place, given the unfiltered row above.</summary>
    private static void Unfilter(int filter, Span<byte> row, ReadOnlySpan<byte> prev, int bpp, string? source, int r)
    {
        switch (filter)
        {
            case 0:
                return;
            case 1:
                for (int i = bpp; i < row.Length; i++) row[i] += row[i - bpp];
                return;
            case 2:
            {
                int i = 0;
                if (Vector.IsHardwareAccelerated)
                {
                    for (; i + Vector<byte>.Count <= row.Length; i += Vector<byte>.Count)
                        (new Vector<byte>(row[i..]) + new Vector<byte>(prev[i..])).CopyTo(row[i..]);
                }
                for (; i < row.Length; i++) row[i] += prev[i];
                return;
            }
            case 3:
            {
                int n = Math.Min(bpp, row.Length);
                for (int i = 0; i < n; i++) row[i] += (byte)(prev[i] >> 1);
                for (int i = bpp; i < row.Length; i++) row[i] += (byte)((row[i - bpp] + prev[i]) >> 1);
                return;
            }
            case 4:
            {
                int n = Math.Min(bpp, row.Length);
                for (int i = 0; i < n; i++) row[i] += prev[i]; // a = c = 0: Paeth picks b
                for (int i = bpp; i < row.Length; i++)
                {
                    int a = row[i - bpp], b = prev[i], c = prev[i - bpp];
                    int pa = Math.Abs(b - c), pb = Math.Abs(a - c), pc = Math.Abs(a + b - 2 * c);
                    row[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                return;
            }
            default:
                throw BadFilter(filter, source, r);
        }
    }

    /// <summary>The colour-key sample values of a grey (one) or RGB (three) tRNS chunk, masked to the bit depth as
    /// libpng's <c>png_do_expand</c> compares them; null when there is no valid key.</summary>
    private static (int G, int R, int B)? Key(ReadOnlySpan<byte> png, in ImageDecoder.PngHeader h)
    {
        if (h.TrnsOffset <= 0) return null;
        var t = png.Slice(h.TrnsOffset, h.TrnsLength);
        int mask = h.BitDepth == 16 ? 0xFFFF : (1 << h.BitDepth) - 1;
        if (h.ColorType == PngColorType.Grey && t.Length == 2)
            return (BinaryPrimitives.ReadUInt16BigEndian(t) & mask, 0, 0);
        if (h.ColorType == PngColorType.Rgb && t.Length == 6)
            return (BinaryPrimitives.ReadUInt16BigEndian(t[2..]) & mask, BinaryPrimitives.ReadUInt16BigEndian(t) & mask, BinaryPrimitives.ReadUInt16BigEndian(t[4..]) & mask);
        return null; // a tRNS of the wrong length is ignored, as libpng does (a benign error)
    }

    /// <summary>libpng's <c>png_set_rgb_to_gray(1, 0.299, 0.587)</c> as TensorFlow calls it: 15-bit weights
    /// 9797/19234/3737, truncating; grey pixels (r = g = b) pass unchanged.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Luma(int r, int g, int b) => r == g && g == b ? r : (9797 * r + 19234 * g + 3737 * b) >> 15;

    /// <summary>The uint8 writer: expands each row to (grey, alpha) or (R, G, B, A) bytes and stores the requested channels.</summary>
    private ref struct Sink8 : IRowSink
    {
        private readonly Span<byte> _dst;
        private readonly int _width, _c, _depth;
        private readonly PngColorType _type;
        private readonly bool _direct, _greyFamily;
        private readonly (int G, int R, int B)? _key;
        private byte[]? _px, _palette;

        public Sink8(ReadOnlySpan<byte> png, in ImageDecoder.PngHeader h, int c, Span<byte> dst, string? source)
        {
            _dst = dst;
            _width = h.Width;
            _c = c;
            _depth = h.BitDepth;
            _type = h.ColorType;
            int spp = PngEncoder.SamplesPerPixel(h.ColorType);
            // The image's own 8-bit samples are what was asked for (no alpha to add from tRNS): copy rows as they are.
            _direct = h.BitDepth == 8 && h.ColorType != PngColorType.Palette && c == spp;
            _greyFamily = h.ColorType is PngColorType.Grey or PngColorType.GreyAlpha;
            _key = Key(png, h);
            if (h.ColorType == PngColorType.Palette)
            {
                if (h.PlteOffset <= 0)
                    throw new DataFormatException($"{ImageDecoder.Where(source)}PNG palette image has no PLTE chunk (no palette); the file is corrupt.", source);
                // 256 entries as libpng keeps them: indices past the palette read black, entries past tRNS are opaque.
                _palette = ArrayPool<byte>.Shared.Rent(256 * 4);
                var pal = _palette.AsSpan(0, 256 * 4);
                pal.Clear();
                var plte = png.Slice(h.PlteOffset, Math.Min(h.PlteLength, 256 * 3));
                var trns = h.TrnsOffset > 0 ? png.Slice(h.TrnsOffset, Math.Min(h.TrnsLength, 256)) : default;
                for (int i = 0; i < 256; i++)
                {
                    if (3 * i + 2 < plte.Length) { pal[4 * i] = plte[3 * i]; pal[4 * i + 1] = plte[3 * i + 1]; pal[4 * i + 2] = plte[3 * i + 2]; }
                    pal[4 * i + 3] = i < trns.Length ? trns[i] : (byte)255;
                }
            }
            if (!_direct) _px = ArrayPool<byte>.Shared.Rent(h.Width * 4);
        }

        public void Return()
        {
            if (_px is not null) ArrayPool<byte>.Shared.Return(_px);
            if (_palette is not null) ArrayPool<byte>.Shared.Return(_palette);
            _px = _palette = null;
        }

        public readonly void Row(ReadOnlySpan<byte> row, int pw, int y, int x0, int dx)
        {
            int c = _c;
            int o = (y * _width + x0) * c, step = dx * c;
            if (_direct)
            {
                if (dx == 1)
                {
                    row[..(pw * c)].CopyTo(_dst.Slice(o, pw * c));
                }
                else
                {
                    for (int i = 0; i < pw; i++, o += step) row.Slice(i * c, c).CopyTo(_dst.Slice(o, c));
                }
                return;
            }
            int k = _greyFamily ? 2 : 4;
            Span<byte> px = _px.AsSpan(0, pw * k);
            Expand(row, pw, px);
            Span<byte> d = _dst;
            if (_greyFamily)
            {
                for (int i = 0, s = 0; i < pw; i++, s += 2, o += step)
                {
                    byte g = px[s];
                    switch (c)
                    {
                        case 1: d[o] = g; break;
                        case 2: d[o] = g; d[o + 1] = px[s + 1]; break;
                        case 3: d[o] = d[o + 1] = d[o + 2] = g; break;
                        default: d[o] = d[o + 1] = d[o + 2] = g; d[o + 3] = px[s + 1]; break;
                    }
                }
                return;
            }
            switch (c)
            {
                case 1:
                    for (int i = 0, s = 0; i < pw; i++, s += 4, o += step) d[o] = (byte)Luma(px[s], px[s + 1], px[s + 2]);
                    break;
                case 2:
                    for (int i = 0, s = 0; i < pw; i++, s += 4, o += step) { d[o] = (byte)Luma(px[s], px[s + 1], px[s + 2]); d[o + 1] = px[s + 3]; }
                    break;
                case 3:
                    for (int i = 0, s = 0; i < pw; i++, s += 4, o += step) { d[o] = px[s]; d[o + 1] = px[s + 1]; d[o + 2] = px[s + 2]; }
                    break;
                default:
                    if (dx == 1) px.CopyTo(d.Slice(o, pw * 4));
                    else for (int i = 0; i < pw; i++, o += step) px.Slice(i * 4, 4).CopyTo(d.Slice(o, 4));
                    break;
            }
        }

        /// <summary>One row to (grey, alpha) pairs or RGBA quads of 8-bit samples.</summary>
        private readonly void Expand(ReadOnlySpan<byte> row, int pw, Span<byte> px)
        {
            int depth = _depth;
            switch (_type)
            {
                case PngColorType.Grey when depth == 16:
                {
                    int key = _key?.G ?? -1;
                    for (int i = 0; i < pw; i++)
                    {
                        int v = BinaryPrimitives.ReadUInt16BigEndian(row[(2 * i)..]);
                        px[2 * i] = (byte)(v >> 8);
                        px[2 * i + 1] = v == key ? (byte)0 : (byte)255;
                    }
                    break;
                }
                case PngColorType.Grey:
                {
                    int key = _key?.G ?? -1, mask = (1 << depth) - 1, scale = 255 / mask;
                    for (int i = 0; i < pw; i++)
                    {
                        int v = depth == 8 ? row[i] : (row[(i * depth) >> 3] >> (8 - depth - ((i * depth) & 7))) & mask;
                        px[2 * i] = (byte)(v * scale);
                        px[2 * i + 1] = v == key ? (byte)0 : (byte)255;
                    }
                    break;
                }
                case PngColorType.GreyAlpha:
                    if (depth == 8) row[..(pw * 2)].CopyTo(px);
                    else for (int i = 0; i < pw * 2; i++) px[i] = row[2 * i];
                    break;
                case PngColorType.Rgb:
                {
                    var (kg, kr, kb) = _key ?? (-1, -1, -1);
                    int w = depth == 16 ? 2 : 1;
                    for (int i = 0; i < pw; i++)
                    {
                        int s = 3 * i * w;
                        int r, g, b;
                        if (w == 1) { r = row[s]; g = row[s + 1]; b = row[s + 2]; }
                        else { r = BinaryPrimitives.ReadUInt16BigEndian(row[s..]); g = BinaryPrimitives.ReadUInt16BigEndian(row[(s + 2)..]); b = BinaryPrimitives.ReadUInt16BigEndian(row[(s + 4)..]); }
                        bool clear = r == kr && g == kg && b == kb;
                        int shift = w == 1 ? 0 : 8;
                        px[4 * i] = (byte)(r >> shift); px[4 * i + 1] = (byte)(g >> shift); px[4 * i + 2] = (byte)(b >> shift);
                        px[4 * i + 3] = clear ? (byte)0 : (byte)255;
                    }
                    break;
                }
                case PngColorType.Rgba:
                    if (depth == 8) row[..(pw * 4)].CopyTo(px);
                    else for (int i = 0; i < pw * 4; i++) px[i] = row[2 * i];
                    break;
                default: // palette, 1/2/4/8 bits
                {
                    ReadOnlySpan<uint> pal = MemoryMarshal.Cast<byte, uint>(_palette.AsSpan(0, 256 * 4));
                    Span<uint> quads = MemoryMarshal.Cast<byte, uint>(px);
                    if (depth == 8)
                    {
                        for (int i = 0; i < pw; i++) quads[i] = pal[row[i]];
                    }
                    else
                    {
                        int mask = (1 << depth) - 1;
                        for (int i = 0; i < pw; i++) quads[i] = pal[(row[(i * depth) >> 3] >> (8 - depth - ((i * depth) & 7))) & mask];
                    }
                    break;
                }
            }
        }
    }

    /// <summary>The uint16 writer for 16-bit PNG: (grey, alpha) or RGBA samples, then the requested channels.</summary>
    private ref struct Sink16 : IRowSink
    {
        private readonly Span<ushort> _dst;
        private readonly int _width, _c;
        private readonly PngColorType _type;
        private readonly (int G, int R, int B)? _key;
        private ushort[]? _px;

        public Sink16(ReadOnlySpan<byte> png, in ImageDecoder.PngHeader h, int c, Span<ushort> dst)
        {
            _dst = dst;
            _width = h.Width;
            _c = c;
            _type = h.ColorType;
            _key = Key(png, h);
            _px = ArrayPool<ushort>.Shared.Rent(h.Width * 4);
        }

        public void Return()
        {
            if (_px is not null) ArrayPool<ushort>.Shared.Return(_px);
            _px = null;
        }

        public readonly void Row(ReadOnlySpan<byte> row, int pw, int y, int x0, int dx)
        {
            int c = _c, o = (y * _width + x0) * c, step = dx * c;
            bool grey = _type is PngColorType.Grey or PngColorType.GreyAlpha;
            Span<ushort> px = _px.AsSpan(0, pw * 4);
            int spp = PngEncoder.SamplesPerPixel(_type);
            for (int i = 0; i < pw; i++)
            {
                var s = row.Slice(i * spp * 2, spp * 2);
                ushort s0 = BinaryPrimitives.ReadUInt16BigEndian(s);
                switch (_type)
                {
                    case PngColorType.Grey:
                        px[4 * i] = s0;
                        px[4 * i + 3] = _key is { } kg && s0 == kg.G ? (ushort)0 : (ushort)65535;
                        break;
                    case PngColorType.GreyAlpha:
                        px[4 * i] = s0; px[4 * i + 3] = BinaryPrimitives.ReadUInt16BigEndian(s[2..]);
                        break;
                    default:
                        ushort s1 = BinaryPrimitives.ReadUInt16BigEndian(s[2..]), s2 = BinaryPrimitives.ReadUInt16BigEndian(s[4..]);
                        px[4 * i] = s0; px[4 * i + 1] = s1; px[4 * i + 2] = s2;
                        px[4 * i + 3] = _type == PngColorType.Rgba ? BinaryPrimitives.ReadUInt16BigEndian(s[6..])
                            : _key is { } k && s0 == k.R && s1 == k.G && s2 == k.B ? (ushort)0 : (ushort)65535;
                        break;
                }
            }
            Span<ushort> d = _dst;
            for (int i = 0, s = 0; i < pw; i++, s += 4, o += step)
            {
                ushort r = px[s], a = px[s + 3];
                ushort g = grey ? r : px[s + 1], b = grey ? r : px[s + 2];
                switch (c)
                {
                    case 1: d[o] = grey ? r : (ushort)Luma(r, g, b); break;
                    case 2: d[o] = grey ? r : (ushort)Luma(r, g, b); d[o + 1] = a; break;
                    case 3: d[o] = r; d[o + 1] = g; d[o + 2] = b; break;
                    default: d[o] = r; d[o + 1] = g; d[o + 2] = b; d[o + 3] = a; break;
                }
            }
        }
    }

    /// <summary>
    /// A read-only stream over the IDAT payloads of a pinned PNG, chunk after chunk, so the zlib stream is read in
    /// place: nothing is copied out of the file, however many IDAT chunks it has. Valid only while the PNG is pinned.
    /// </summary>
    private sealed unsafe class IdatStream(byte* png, int length, int firstIdat) : Stream
    {
        private int _next = firstIdat, _pos, _end;

        public override int Read(Span<byte> buffer)
        {
            while (_pos == _end)
            {
                if (!NextIdat()) return 0;
            }
            int n = Math.Min(buffer.Length, _end - _pos);
            new ReadOnlySpan<byte>(png + _pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        private bool NextIdat()
        {
            var all = new ReadOnlySpan<byte>(png, length);
            while (_next > 0 && _next + 8 <= length)
            {
                int len = (int)BinaryPrimitives.ReadUInt32BigEndian(all[_next..]);
                var type = all.Slice(_next + 4, 4);
                if (type.SequenceEqual("IEND"u8)) break;
                int start = _next + 8;
                _next = start + len + 4;
                if (type.SequenceEqual("IDAT"u8))
                {
                    _pos = start;
                    _end = start + len;
                    return true;
                }
            }
            _next = 0;
            return false;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
