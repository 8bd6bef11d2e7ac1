using System.Buffers.Binary;

namespace Samplers.Tfds;

/// <summary>
/// Writes TFRecord files: per record the uint64 LE length, its masked CRC-32C, the data and the data's masked
/// CRC-32C (TFDS_FORMAT.md 6.1), uncompressed as TFDS writes them.
/// </summary>
/// <remarks>
/// The writer frames records onto a stream; <see cref="WriteFile"/> writes a whole file through a temporary
/// file and a rename, so a crash never leaves a half-written shard under the final name.
/// </remarks>
internal sealed class TfRecordWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private bool _disposed;

    /// <summary>Writes records to <paramref name="stream"/> at its current position.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is null.</exception>
    /// <exception cref="ArgumentException">The stream is not writable.</exception>
    public TfRecordWriter(Stream stream, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("The stream must be writable.", nameof(stream));
        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <summary>Records written so far.</summary>
    public long RecordCount { get; private set; }

    /// <summary>Bytes written so far, framing included.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Appends one record.</summary>
    /// <exception cref="ObjectDisposedException">The writer was disposed.</exception>
    public void Write(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.ComputeMasked(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.ComputeMasked(data));
        _stream.Write(header);
        _stream.Write(data);
        _stream.Write(footer);
        RecordCount++;
        BytesWritten += 16 + data.Length;
    }

    /// <summary>The framed bytes of one record (for tests and fixtures).</summary>
    public static byte[] Frame(ReadOnlySpan<byte> data)
    {
        using var ms = new MemoryStream(data.Length + 16);
        using (var w = new TfRecordWriter(ms, leaveOpen: true)) w.Write(data);
        return ms.ToArray();
    }

    /// <summary>
    /// Writes <paramref name="records"/> to <paramref name="path"/> by the output rule for a path the caller names
    /// (docs/ROBUSTNESS.md, "Output rule"): a temporary file in the same folder, flushed to disk and renamed over the
    /// final name; through a symbolic link (the link stays, its final target receives the file); directly into a FIFO
    /// or character device.
    /// </summary>
    /// <returns>The number of records written.</returns>
    /// <exception cref="ArgumentNullException">A null argument.</exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is a directory, a block device or a socket.</exception>
    public static long WriteFile(string path, IEnumerable<byte[]> records)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(records);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var (target, direct) = OutputTarget.Resolve(full);
        long n = 0;
        OutputTarget.Write(target, direct, s => n = WriteAll(s, records));
        return n;
    }

    /// <summary>A shard the TFDS writer names inside its version folder: always a fresh temporary file and a rename, so
    /// whatever is at the name (a planted symbolic link) is replaced, never written through.</summary>
    internal static long WriteFileInFolder(string path, IEnumerable<byte[]> records)
    {
        long n = 0;
        OutputTarget.ReplaceInFolder(path, s => n = WriteAll(s, records));
        return n;
    }

    private static long WriteAll(Stream s, IEnumerable<byte[]> records)
    {
        // Buffered: a record is three writes (header, data, footer). The buffer is flushed, not disposed (that would
        // close the file before the rule's own flush and rename).
        var buffered = new BufferedStream(s, 1 << 16);
        long n;
        using (var w = new TfRecordWriter(buffered, leaveOpen: true))
        {
            foreach (var r in records) w.Write(r);
            n = w.RecordCount;
        }
        buffered.Flush();
        return n;
    }

    /// <summary>Flushes, and closes the stream unless asked to leave it open.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stream.Flush();
        if (!_leaveOpen) _stream.Dispose();
    }
}
