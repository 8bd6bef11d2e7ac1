using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Samplers.Cli.Export;

/// <summary>
/// Writes one array in NumPy's <c>.npy</c> format (version 1.0, or 2.0 when the header needs more than 64 KiB) to a
/// stream: the header first, then the row-major little-endian bytes, row by row, so a table larger than one buffer
/// is written without another copy. <see cref="Complete"/> checks that exactly the announced bytes were written.
/// </summary>
/// <remarks>Format: the magic <c>\x93NUMPY</c>, the version, the header length, then a Python dict literal
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (3, 4), }</c> padded with spaces and a newline so that the
/// data starts at a multiple of 64 bytes. Strings are NumPy unicode (<c>&lt;U{n}</c>: n UTF-32 code units per value,
/// zero-padded), which <c>np.load</c> reads without pickling.</remarks>
internal sealed class NpyWriter
{
    private readonly Stream _stream;
    private readonly long _expected;
    private long _written;

    /// <summary>Writes the header of an array of <paramref name="dtype"/> and <paramref name="shape"/> to <paramref name="stream"/>.</summary>
    /// <exception cref="ArgumentException">The dtype has no fixed-size NumPy form (variable-length bytes), a dimension is
    /// negative, or the array would hold more than 2^63-1 bytes.</exception>
    public NpyWriter(Stream stream, DType dtype, ReadOnlySpan<long> shape)
        : this(stream, Descr(dtype), DTypes.SizeOf(dtype), shape)
    {
    }

    private NpyWriter(Stream stream, string descr, int itemSize, ReadOnlySpan<long> shape)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        long count = 1;
        foreach (long d in shape)
            if (d < 0) throw new ArgumentException($"Array dimensions must be 0 or more, but the shape is ({string.Join(", ", shape.ToArray())}).", nameof(shape));
        try
        {
            foreach (long d in shape) count = checked(count * d);
            _expected = checked(count * itemSize);
        }
        catch (OverflowException e)
        {
            // Found by fuzzing (npy-header target): the contract is an ArgumentException, not an OverflowException.
            throw new ArgumentException($"The shape ({string.Join(", ", shape.ToArray())}) of {itemSize}-byte elements holds more than 2^63-1 bytes; no .npy file can hold it.", nameof(shape), e);
        }
        stream.Write(Header(descr, shape));
    }

    /// <summary>Bytes of data the header announced.</summary>
    public long ExpectedBytes => _expected;

    /// <summary>Bytes of data written so far.</summary>
    public long WrittenBytes => _written;

    /// <summary>Appends data bytes (little-endian elements, row-major).</summary>
    /// <exception cref="InvalidOperationException">More bytes than the header announced.</exception>
    public void Write(ReadOnlySpan<byte> data)
    {
        if (_written + data.Length > _expected)
            throw new InvalidOperationException($"The .npy header announced {_expected} data bytes; writing {data.Length} more after {_written} would exceed it.");
        _stream.Write(data);
        _written += data.Length;
    }

    /// <summary>Checks that every announced byte was written.</summary>
    /// <exception cref="InvalidOperationException">Fewer bytes were written than the header announced.</exception>
    public void Complete()
    {
        if (_written != _expected)
            throw new InvalidOperationException($"The .npy header announced {_expected} data bytes but {_written} were written; the file would not load.");
        _stream.Flush();
    }

    /// <summary>The NumPy type string of <paramref name="dtype"/>: <c>|u1</c>, <c>&lt;f4</c>, <c>|b1</c>, ...</summary>
    /// <exception cref="ArgumentException">Variable-length bytes (TFDS Text) have no fixed-size NumPy form.</exception>
    public static string Descr(DType dtype) => dtype switch
    {
        DType.UInt8 => "|u1",
        DType.Int8 => "|i1",
        DType.Bool => "|b1",
        DType.UInt16 => "<u2",
        DType.Int16 => "<i2",
        DType.Float16 => "<f2",
        DType.UInt32 => "<u4",
        DType.Int32 => "<i4",
        DType.Float32 => "<f4",
        DType.UInt64 => "<u8",
        DType.Int64 => "<i8",
        DType.Float64 => "<f8",
        _ => throw new ArgumentException($"dtype {DTypes.Name(dtype)} (variable-length bytes) has no fixed-size NumPy form; export a numeric or image feature instead.", nameof(dtype)),
    };

    /// <summary>The complete preamble (magic, version, header length, header dict, padding) of an array.</summary>
    public static byte[] Header(string descr, ReadOnlySpan<long> shape)
    {
        ArgumentNullException.ThrowIfNull(descr);
        var dims = new StringBuilder();
        foreach (long d in shape) dims.Append(d.ToString(CultureInfo.InvariantCulture)).Append(", ");
        // A 1-tuple keeps its trailing comma, a 2+-tuple drops the last ", ": Python's repr.
        string tuple = shape.Length switch
        {
            0 => "()",
            1 => "(" + dims.ToString(0, dims.Length - 1) + ")",
            _ => "(" + dims.ToString(0, dims.Length - 2) + ")",
        };
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}";
        byte[] text = Encoding.ASCII.GetBytes(dict);
        int prefix = 10;
        int total = Pad(prefix + text.Length + 1);
        bool v2 = total - prefix > ushort.MaxValue;
        if (v2) { prefix = 12; total = Pad(prefix + text.Length + 1); }
        var header = new byte[total];
        header[0] = 0x93;
        "NUMPY"u8.CopyTo(header.AsSpan(1));
        header[6] = v2 ? (byte)2 : (byte)1;
        header[7] = 0;
        if (v2) BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)(total - prefix));
        else BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)(total - prefix));
        text.CopyTo(header, prefix);
        header.AsSpan(prefix + text.Length, total - prefix - text.Length - 1).Fill((byte)' ');
        header[^1] = (byte)'\n';
        return header;
    }

    private static int Pad(int n) => (n + 63) / 64 * 64;

    /// <summary>Writes a whole array: header and data.</summary>
    /// <exception cref="ArgumentException">The data length differs from the shape's element count times the element size.</exception>
    public static void Write(Stream stream, DType dtype, ReadOnlySpan<long> shape, ReadOnlySpan<byte> data)
    {
        var w = new NpyWriter(stream, dtype, shape);
        if (data.Length != w.ExpectedBytes)
            throw new ArgumentException($"The data holds {data.Length} bytes, but shape ({string.Join(", ", shape.ToArray())}) of {DTypes.Name(dtype)} needs {w.ExpectedBytes}.", nameof(data));
        w.Write(data);
        w.Complete();
    }

    /// <summary>Writes a 1-D int64 array.</summary>
    public static void Write(Stream stream, ReadOnlySpan<long> values) =>
        Write(stream, DType.Int64, [values.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));

    /// <summary>Writes a 1-D NumPy unicode array (<c>&lt;U{n}</c>, n = the longest string in UTF-32 code units, at least 1).</summary>
    public static void WriteStrings(Stream stream, IReadOnlyList<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        int width = 1;
        var runes = new int[values.Count][];
        for (int i = 0; i < values.Count; i++)
        {
            runes[i] = (values[i] ?? "").EnumerateRunes().Select(r => r.Value).ToArray();
            width = Math.Max(width, runes[i].Length);
        }
        var w = new NpyWriter(stream, "<U" + width.ToString(CultureInfo.InvariantCulture), 4 * width, [values.Count]);
        var row = new byte[4 * width];
        foreach (int[] r in runes)
        {
            Array.Clear(row);
            for (int j = 0; j < r.Length; j++) BinaryPrimitives.WriteInt32LittleEndian(row.AsSpan(4 * j), r[j]);
            w.Write(row);
        }
        w.Complete();
    }
}

/// <summary>
/// Writes a NumPy <c>.npz</c> archive (a zip of <c>.npy</c> members, as <c>np.savez</c>) or a folder of <c>.npy</c>
/// files, through a temporary name renamed on <see cref="Complete"/>: a failed or cancelled export leaves nothing
/// half-written under the final name. A symbolic link is written through (the temporary file and the rename are beside
/// its target); a FIFO or character device (<c>/dev/stdout</c>) is written directly, never replaced.
/// </summary>
internal sealed class NpzWriter : IDisposable
{
    private readonly string _path;
    private readonly string _target;
    private readonly string? _temp; // null when writing a FIFO or device directly
    private readonly FileStream _file;
    private readonly ZipArchive _zip;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private bool _done;

    /// <summary>Starts an archive that will be published at <paramref name="path"/>.</summary>
    /// <param name="path">The final <c>.npz</c> path (a regular file, a new file, a symlink, a FIFO or a character
    /// device); its folder must exist.</param>
    /// <param name="compress">Deflate the members (<c>np.savez_compressed</c>); default stored, as <c>np.savez</c>.</param>
    /// <exception cref="ArgumentException">The path is a directory, a block device or a socket.</exception>
    public NpzWriter(string path, bool compress = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = Path.GetFullPath(path);
        (_target, bool direct) = OutputTarget.Resolve(_path);
        if (direct)
        {
            _file = OutputTarget.OpenDirect(_target);
        }
        else
        {
            _temp = OutputTarget.TempBeside(_target);
            _file = new FileStream(_temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        }
        _zip = new ZipArchive(_file, ZipArchiveMode.Create, leaveOpen: true);
        Level = compress ? CompressionLevel.Optimal : CompressionLevel.NoCompression;
    }

    private CompressionLevel Level { get; }

    /// <summary>The final path.</summary>
    public string FinalPath => _path;

    /// <summary>Adds member <c>{name}.npy</c>, whose header and data <paramref name="write"/> writes to the stream it gets.</summary>
    /// <exception cref="ArgumentException">The name is empty, has a path separator, or was used already.</exception>
    public void Add(string name, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(write);
        if (_done) throw new InvalidOperationException("The archive is complete; start a new NpzWriter.");
        if (name.IndexOfAny(['/', '\\']) >= 0 || !_names.Add(name))
            throw new ArgumentException($"Member name '{name}' is invalid or already used; names are unique and have no path separators.", nameof(name));
        var entry = _zip.CreateEntry(name + ".npy", Level);
        // Fixed timestamp: the same export gives the same archive bytes.
        entry.LastWriteTime = new DateTimeOffset(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);
        using Stream s = entry.Open();
        write(s);
    }

    /// <summary>Finishes the archive, flushes it to disk and renames it to the final path (beside a symlink's target);
    /// a FIFO or device gets the bytes directly. On failure (e.g. a full disk) the temporary file is deleted.</summary>
    public void Complete()
    {
        if (_done) return;
        try
        {
            _zip.Dispose();
            _file.Flush(flushToDisk: _temp is not null);
            _file.Dispose();
            if (_temp is not null) File.Move(_temp, _target, overwrite: true);
            _done = true;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Abandons an incomplete archive (its temporary file is deleted); after <see cref="Complete"/>, does nothing.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        try { _zip.Dispose(); } catch (IOException) { } catch (InvalidDataException) { } catch (NotSupportedException) { }
        // Disposing flushes buffered bytes, which fails again on a full disk: the temp file goes regardless.
        try { _file.Dispose(); } catch (IOException) { }
        OutputTarget.DeleteQuietly(_temp);
    }

    /// <summary>Writes one <c>.npy</c> file the user named through a temporary file beside it (beside a symlink's target)
    /// and a rename; a FIFO or character device is written directly (<see cref="OutputTarget.Resolve"/>).</summary>
    /// <exception cref="ArgumentException">The path is a directory, a block device or a socket.</exception>
    public static void WriteFile(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var (target, direct) = OutputTarget.Resolve(path);
        OutputTarget.Write(target, direct, write);
    }

    /// <summary>Writes one <c>.npy</c> file of an output folder (a name the exporter chose): as <see cref="WriteFile"/>,
    /// except that a symlink is replaced by the new file, never written through (<see cref="OutputTarget.ResolveInFolder"/>).</summary>
    /// <exception cref="ArgumentException">The path is a directory, a block device or a socket.</exception>
    public static void WriteFolderFile(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var (target, direct) = OutputTarget.ResolveInFolder(path);
        OutputTarget.Write(target, direct, write);
    }
}
