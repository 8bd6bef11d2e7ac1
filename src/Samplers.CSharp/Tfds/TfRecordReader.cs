using System.Buffers;
using System.Buffers.Binary;

namespace Samplers.Tfds;

/// <summary>One record of a TFRecord file: where it starts, its index in the file, and its data bytes.</summary>
/// <param name="Offset">Byte offset of the record's header in the file (64-bit: shards may exceed 2 GiB).</param>
/// <param name="Index">Zero-based index of the record in the file.</param>
/// <param name="Data">The record's data (one serialized <c>tf.train.Example</c> in TFDS shards). It points into
/// the reader's buffer and is valid only until the next call on the reader; copy it to keep it.</param>
internal readonly record struct TfRecord(long Offset, long Index, ReadOnlyMemory<byte> Data);

/// <summary>
/// Streams the records of one TFRecord file (TFDS_FORMAT.md 6), verifying the masked CRC-32C of every length
/// field and every record's data, with memory bounded by the largest record plus a fixed read window.
/// </summary>
/// <remarks>
/// <para>Layout per record: uint64 LE length, masked CRC of those 8 bytes, data, masked CRC of the data.</para>
/// <para>Failure classes follow TensorFlow's reader: a file ending inside a record is "truncated record at
/// &lt;offset&gt;", a CRC mismatch is "corrupted record at &lt;offset&gt;". The length is checked against the bytes
/// left in the file before any buffer is sized, so a hostile length never causes a large allocation (for a
/// stream of unknown length the buffer only grows as real bytes arrive). Records already returned stay valid
/// results: the error is raised when the bad record is reached.</para>
/// <para>gzip-compressed TFRecords (magic <c>1F 8B</c>) are refused: TFDS never writes them.</para>
/// <para>Not thread-safe; use one reader per file per thread.</para>
/// </remarks>
internal sealed class TfRecordReader : IDisposable
{
    private const int HeaderBytes = 12;
    private const int FooterBytes = 4;
    private const int DefaultWindow = 1 << 20;
    /// <summary>The largest record data this reader accepts: the data must fit in one array.</summary>
    public const long MaxRecordBytes = int.MaxValue - 64;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly long _fileLength; // -1 when unknown (non-seekable stream)
    private byte[] _buf;
    private int _start;     // first unread byte in _buf
    private int _end;       // one past the last valid byte in _buf
    private bool _eof;
    private bool _disposed;

    /// <summary>Opens <paramref name="path"/> for sequential reading.</summary>
    /// <param name="path">The TFRecord file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The path is not a regular file (a FIFO, whose open would block; a device
    /// such as <c>/dev/zero</c>, which never ends; a directory): checked before the open and again on the opened handle.</exception>
    public TfRecordReader(string path)
        : this(path, DefaultWindow)
    {
    }

    /// <summary>Opens <paramref name="path"/> for sequential reading with a read window of <paramref name="windowBytes"/>
    /// (smaller when many files are open at once; the window still grows to hold a larger record).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The path is not a regular file (checked as by the other constructor).</exception>
    public TfRecordReader(string path, int windowBytes)
        : this(SafeFile.OpenRead(path, "TFRecord file", SafeFile.Unbounded, bufferSize: 1, FileOptions.SequentialScan), path, leaveOpen: false, windowBytes)
    {
    }

    /// <summary>Reads records from <paramref name="stream"/>, starting at its current position.</summary>
    /// <param name="stream">A readable stream. If seekable, offsets count from position 0 and its length bounds
    /// record lengths; otherwise offsets count from where reading starts.</param>
    /// <param name="filePath">The name used in error messages.</param>
    /// <param name="leaveOpen">Whether disposing the reader leaves the stream open.</param>
    /// <param name="windowBytes">The initial read window (it grows to hold a larger record).</param>
    /// <exception cref="ArgumentNullException">A null argument.</exception>
    /// <exception cref="ArgumentException">The stream is not readable.</exception>
    public TfRecordReader(Stream stream, string filePath, bool leaveOpen = false, int windowBytes = DefaultWindow)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowBytes, HeaderBytes);
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(filePath);
        if (!stream.CanRead) throw new ArgumentException("The stream must be readable.", nameof(stream));
        _stream = stream;
        _leaveOpen = leaveOpen;
        FilePath = filePath;
        if (stream.CanSeek)
        {
            _fileLength = stream.Length;
            NextOffset = stream.Position;
        }
        else
        {
            _fileLength = -1;
        }
        _buf = ArrayPool<byte>.Shared.Rent(windowBytes);
    }

    /// <summary>The file name used in messages.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset of the next record to read.</summary>
    public long NextOffset { get; private set; }

    /// <summary>Index of the next record to read (records read or skipped so far).</summary>
    public long NextIndex { get; private set; }

    /// <summary>
    /// Reads the next record. Returns false at a clean end of file (the file ends exactly after a record).
    /// </summary>
    /// <param name="record">The record; its <see cref="TfRecord.Data"/> is valid until the next call.</param>
    /// <exception cref="DataFormatException">Truncated or corrupted record, or a compressed file.</exception>
    /// <exception cref="ObjectDisposedException">The reader was disposed.</exception>
    public bool TryReadNext(out TfRecord record)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long offset = NextOffset;
        int have = Ensure(HeaderBytes);
        if (have == 0)
        {
            record = default;
            return false;
        }
        if (have < HeaderBytes)
        {
            if (offset == 0 && LooksGzip(have)) throw Gzip();
            throw new DataFormatException(
                $"{FilePath}: truncated record at {offset}: the file ends {have} bytes into the {HeaderBytes}-byte record header " +
                $"(record {NextIndex}); the file was cut short: re-download or regenerate the shard.",
                FilePath, offset);
        }

        ReadOnlySpan<byte> header = _buf.AsSpan(_start, HeaderBytes);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header);
        uint storedLengthCrc = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        uint lengthCrc = Crc32C.ComputeMasked(header[..8]);
        if (storedLengthCrc != lengthCrc)
        {
            if (offset == 0 && LooksGzip(have)) throw Gzip();
            string zero = header.IndexOfAnyExcept((byte)0) < 0
                ? " The header is all zero bytes: a zero-filled tail (a pre-allocated or partly copied file)."
                : "";
            throw new DataFormatException(
                $"{FilePath}: corrupted record at {offset}: length CRC 0x{storedLengthCrc:X8} stored, 0x{lengthCrc:X8} expected " +
                $"(masked CRC-32C of the length bytes, record {NextIndex}).{zero} The shard is corrupt: re-download or regenerate it.",
                FilePath, offset);
        }

        if (_fileLength >= 0)
        {
            long remaining = _fileLength - offset - HeaderBytes;
            // Compare without overflow: length is untrusted and may be near 2^64.
            if (length > (ulong)Math.Max(0, remaining - FooterBytes) || remaining < FooterBytes)
            {
                throw new DataFormatException(
                    $"{FilePath}: truncated record at {offset}: the header declares {length} data bytes (+{FooterBytes} CRC bytes) " +
                    $"but only {remaining} bytes follow the header (file size {_fileLength}, record {NextIndex}); " +
                    "the file was cut short or is corrupt: re-download or regenerate the shard.",
                    FilePath, offset);
            }
        }
        if (length > MaxRecordBytes)
        {
            throw new DataFormatException(
                $"{FilePath}: record {NextIndex} at {offset} declares {length} data bytes, more than the {MaxRecordBytes} bytes " +
                "one record may hold here; the file is corrupt or not a TFRecord file.",
                FilePath, offset);
        }

        int dataLength = (int)length;
        long total = HeaderBytes + (long)dataLength + FooterBytes;
        have = Ensure((int)total);
        if (have < total)
        {
            throw new DataFormatException(
                $"{FilePath}: truncated record at {offset}: the header declares {dataLength} data bytes but the file ends " +
                $"{Math.Max(0, have - HeaderBytes)} bytes into the data and CRC (record {NextIndex}); " +
                "the file was cut short: re-download or regenerate the shard.",
                FilePath, offset);
        }

        var data = new ReadOnlyMemory<byte>(_buf, _start + HeaderBytes, dataLength);
        uint storedDataCrc = BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(_start + HeaderBytes + dataLength, FooterBytes));
        uint dataCrc = Crc32C.ComputeMasked(data.Span);
        if (storedDataCrc != dataCrc)
        {
            throw new DataFormatException(
                $"{FilePath}: corrupted record at {offset}: data CRC 0x{storedDataCrc:X8} stored, 0x{dataCrc:X8} expected " +
                $"(masked CRC-32C of {dataLength} data bytes, record {NextIndex}); the shard is corrupt: re-download or regenerate it.",
                FilePath, offset);
        }

        record = new TfRecord(offset, NextIndex, data);
        _start += (int)total;
        NextOffset = offset + total;
        NextIndex++;
        return true;
    }

    /// <summary>
    /// Skips up to <paramref name="count"/> records, still reading and CRC-checking each one (as TensorFlow's
    /// <c>skip</c> does, TFDS_FORMAT.md 6.3). Returns the number skipped: fewer only at the end of the file.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    /// <exception cref="DataFormatException">A skipped record is truncated or corrupted.</exception>
    public long Skip(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        long n = 0;
        while (n < count && TryReadNext(out _)) n++;
        return n;
    }

    /// <summary>Reads every record of <paramref name="path"/> into new arrays (for tests and small files).</summary>
    /// <exception cref="DataFormatException">A truncated or corrupted record.</exception>
    public static List<byte[]> ReadAllRecords(string path)
    {
        using var reader = new TfRecordReader(path);
        var list = new List<byte[]>();
        while (reader.TryReadNext(out var r)) list.Add(r.Data.ToArray());
        return list;
    }

    /// <summary>Returns the buffer to the pool and closes the stream unless asked to leave it open.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ArrayPool<byte>.Shared.Return(_buf);
        _buf = [];
        if (!_leaveOpen) _stream.Dispose();
    }

    private bool LooksGzip(int have) => have >= 2 && _buf[_start] == 0x1F && _buf[_start + 1] == 0x8B;

    private DataFormatException Gzip() => new(
        $"{FilePath}: compressed TFRecord not supported: the file starts with the gzip magic bytes 1F 8B and its first " +
        "record header does not verify. TFDS writes uncompressed TFRecords; decompress the file (e.g. gunzip) or regenerate it.",
        FilePath, 0);

    // Makes at least n bytes available from _start, unless the stream ends first; returns the bytes available.
    // The buffer grows only while it is full of real bytes, so an untrusted n cannot force a large allocation.
    private int Ensure(int n)
    {
        int avail = _end - _start;
        while (avail < n && !_eof)
        {
            if (_end == _buf.Length)
            {
                if (_start > 0)
                {
                    // Slide the unread bytes to the front of the window.
                    Buffer.BlockCopy(_buf, _start, _buf, 0, avail);
                    _start = 0;
                    _end = avail;
                }
                else
                {
                    // The window is full of real bytes and still too small: at most double it, bounded by n.
                    byte[] bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(n, 2L * _buf.Length));
                    Buffer.BlockCopy(_buf, 0, bigger, 0, avail);
                    ArrayPool<byte>.Shared.Return(_buf);
                    _buf = bigger;
                }
            }
            int read = _stream.Read(_buf, _end, _buf.Length - _end);
            if (read <= 0) _eof = true;
            else _end += read;
            avail = _end - _start;
        }
        return Math.Min(avail, n);
    }
}
