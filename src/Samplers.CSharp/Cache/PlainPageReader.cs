using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Samplers.Cache;

/// <summary>
/// The hot path of a cache hit: copies the <c>data</c> column of a fixed-layout, uncompressed cache file straight from
/// its PLAIN-encoded data pages into the table builder's slots, with no per-example arrays. Parquet.Net's reader
/// allocates one <c>byte[]</c> per BYTE_ARRAY value, which cost more in GC than the copy itself (docs/CACHE.md).
/// </summary>
/// <remarks>
/// Parquet layout (parquet-format, Encodings.md and parquet.thrift): a column chunk is a run of pages, each a
/// Thrift-compact <c>PageHeader</c> followed by <c>compressed_page_size</c> bytes. A version-1 data page of a required,
/// non-nested column has no repetition or definition levels, and PLAIN BYTE_ARRAY values are a 4-byte little-endian
/// length followed by the bytes. Anything else (another page type or encoding, a dictionary page) returns false so
/// the caller falls back to Parquet.Net; wrong lengths or counts are a <see cref="DataFormatException"/>. The payload
/// checksum is verified afterwards either way.
/// </remarks>
internal static class PlainPageReader
{
    /// <summary>A read-only seekable stream over a file handle with its own position, so several readers can share one
    /// open file (one version of it, even if a writer renames a new file over the path meanwhile).</summary>
    internal sealed class HandleStream(SafeFileHandle handle) : Stream
    {
        private long _position;
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => RandomAccess.GetLength(handle);
        public override long Position { get => _position; set => _position = value; }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = RandomAccess.Read(handle, buffer, _position);
            _position += n;
            return n;
        }
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));
        public override long Seek(long offset, SeekOrigin origin)
        {
            _position = origin switch { SeekOrigin.Begin => offset, SeekOrigin.Current => _position + offset, _ => Length + offset };
            return _position;
        }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Row groups read by the fast path since start-up (lets tests prove the path is taken).</summary>
    internal static long FastGroups;

    /// <summary>Reads <paramref name="rows"/> values of the column chunk at [<paramref name="offset"/>, +<paramref name="length"/>)
    /// into slots <paramref name="start"/>...; false when the pages are not what this reader handles.</summary>
    public static bool TryReadFixed(SafeFileHandle file, long offset, long length, int start, int rows, ExampleTableBuilder builder, string path)
    {
        if (length > Array.MaxLength) return false;
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(1, length));
        try
        {
            Span<byte> chunk = buffer.AsSpan(0, (int)length);
            int got = 0;
            while (got < chunk.Length)
            {
                int n = RandomAccess.Read(file, chunk[got..], offset + got);
                if (n == 0) throw new DataFormatException($"{path}: column 'data' ends at byte {offset + got}, expected {offset + length}; the file is truncated.", path, offset + got, "data");
                got += n;
            }
            int pos = 0, row = 0, stride = builder.ExampleBytes;
            while (pos < chunk.Length && row < rows)
            {
                var header = new Header();
                var r = new ThriftReader(chunk[pos..]);
                if (!ReadPageHeader(ref r, ref header)) return false;
                pos += r.Position;
                if (header.Type != 0 || header.Encoding != 0 || !header.HasDataPageHeader) return false;
                if (header.CompressedSize != header.UncompressedSize || header.CompressedSize < 0 || pos + header.CompressedSize > chunk.Length)
                    throw new DataFormatException($"{path}: a data page at byte {offset + pos} declares {header.CompressedSize} bytes, which do not fit the column chunk.", path, offset + pos, "data");
                ReadOnlySpan<byte> page = chunk.Slice(pos, header.CompressedSize);
                int at = 0;
                for (int v = 0; v < header.NumValues; v++, row++)
                {
                    if (row >= rows || at + 4 > page.Length)
                        throw new DataFormatException($"{path}: a data page at byte {offset + pos} holds fewer values than its header says, or more rows than the row group.", path, offset + pos, "data");
                    int len = BinaryPrimitives.ReadInt32LittleEndian(page[at..]);
                    at += 4;
                    if (len != stride || at + len > page.Length)
                        throw new DataFormatException($"{path}: example {start + row} has {len} bytes, expected {stride}.", path, start + row, "data");
                    page.Slice(at, len).CopyTo(builder.Slot(start + row));
                    at += len;
                }
                pos += header.CompressedSize;
            }
            if (row != rows)
                throw new DataFormatException($"{path}: column 'data' holds {row} values in this row group, expected {rows}.", path, start + row, "data");
            Interlocked.Increment(ref FastGroups);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    internal struct Header
    {
        public int Type, UncompressedSize, CompressedSize, NumValues, Encoding;
        public bool HasDataPageHeader;
    }

    internal static bool ReadPageHeader(ref ThriftReader r, ref Header h)
    {
        short field = 0;
        while (true)
        {
            if (!r.FieldHeader(ref field, out int type)) return false;
            if (type == 0) return true;
            switch (field)
            {
                case 1 when type == 5: h.Type = r.I32(); break;
                case 2 when type == 5: h.UncompressedSize = r.I32(); break;
                case 3 when type == 5: h.CompressedSize = r.I32(); break;
                case 5 when type == 12:
                    h.HasDataPageHeader = true;
                    short inner = 0;
                    while (true)
                    {
                        if (!r.FieldHeader(ref inner, out int t)) return false;
                        if (t == 0) break;
                        if (inner == 1 && t == 5) h.NumValues = r.I32();
                        else if (inner == 2 && t == 5) h.Encoding = r.I32();
                        else if (!r.Skip(t, 0)) return false;
                    }
                    break;
                default:
                    if (!r.Skip(type, 0)) return false;
                    break;
            }
        }
    }

    /// <summary>Just enough of the Thrift compact protocol to read a page header and skip what it does not need.</summary>
    internal ref struct ThriftReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        public int Position;

        private bool Byte(out byte b)
        {
            if (Position >= _data.Length) { b = 0; return false; }
            b = _data[Position++];
            return true;
        }

        private bool VarInt(out ulong v)
        {
            v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (!Byte(out byte b)) return false;
                v |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return true;
            }
            return false;
        }

        public int I32() => VarInt(out ulong v) ? (int)((uint)(v >> 1) ^ (uint)-(int)(v & 1)) : -1;

        public bool FieldHeader(ref short field, out int type)
        {
            type = 0;
            if (!Byte(out byte b)) return false;
            type = b & 0x0F;
            if (type == 0) return true;
            int delta = b >> 4;
            if (delta != 0) field += (short)delta;
            else
            {
                if (!VarInt(out ulong z)) return false;
                field = (short)((z >> 1) ^ (0 - (z & 1)));
            }
            return true;
        }

        // Inside lists and maps a boolean takes one byte; as a field it lives in the field header.
        private bool Element(int type, int depth) => type is 1 or 2 ? Byte(out _) : Skip(type, depth + 1);

        public bool Skip(int type, int depth)
        {
            if (depth > 32) return false;
            switch (type)
            {
                case 1: case 2: return true;
                case 3: return Byte(out _);
                case 4: case 5: case 6: return VarInt(out _);
                case 7: Position += 8; return Position <= _data.Length;
                case 8:
                    if (!VarInt(out ulong len) || len > (ulong)(_data.Length - Position)) return false;
                    Position += (int)len;
                    return true;
                case 9: case 10:
                    {
                        if (!Byte(out byte h)) return false;
                        ulong size = (ulong)(h >> 4);
                        int et = h & 0x0F;
                        if (size == 15 && !VarInt(out size)) return false;
                        for (ulong i = 0; i < size; i++)
                            if (!Element(et, depth)) return false;
                        return true;
                    }
                case 11:
                    {
                        if (!VarInt(out ulong size)) return false;
                        if (size == 0) return true;
                        if (!Byte(out byte kv)) return false;
                        for (ulong i = 0; i < size; i++)
                            if (!Element(kv >> 4, depth) || !Element(kv & 0x0F, depth)) return false;
                        return true;
                    }
                case 12:
                    {
                        short f = 0;
                        while (true)
                        {
                            if (!FieldHeader(ref f, out int t)) return false;
                            if (t == 0) return true;
                            if (!Skip(t, depth + 1)) return false;
                        }
                    }
                default: return false;
            }
        }
    }
}
