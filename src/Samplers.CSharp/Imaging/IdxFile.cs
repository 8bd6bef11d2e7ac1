using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace Samplers.Imaging;

/// <summary>
/// An IDX file of unsigned bytes, the format MNIST, Fashion-MNIST, KMNIST and EMNIST are distributed in
/// (<c>train-images-idx3-ubyte.gz</c>, <c>train-labels-idx1-ubyte.gz</c>), read whole and checked: a 4-byte magic
/// (<c>00 00</c>, the type <c>08</c> for unsigned byte, the rank), one big-endian 32-bit size per dimension, then the
/// items in row-major order and nothing after them. Gzip-compressed files are recognised by their first bytes
/// (<c>1F 8B</c>), whatever their name.
/// </summary>
/// <remarks>Every refusal is a <see cref="DataFormatException"/> naming the file, the byte offset (in the decompressed
/// data for a gzip file), what was expected and what was found, and what to do. The data is held in memory, bounded by
/// <see cref="MaxDataBytes"/>, which is checked from the header before anything is allocated.</remarks>
public sealed class IdxFile
{
    /// <summary>The most data bytes (the product of the dimensions) a file may declare: 1 GiB. EMNIST ByClass's
    /// training images, the largest IDX distribution in use, are 547 MB.</summary>
    public const long MaxDataBytes = 1L << 30;

    /// <summary>The IDX type byte of unsigned bytes, the one type this reader accepts.</summary>
    private const byte UnsignedByteType = 0x08;

    private readonly byte[] _data;
    private readonly int[] _dimensions;

    private IdxFile(string path, bool compressed, int[] dimensions, byte[] data)
    {
        Path = path;
        Compressed = compressed;
        _dimensions = dimensions;
        _data = data;
        ItemLength = (int)(data.LongLength / dimensions[0]);
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>True when the file was gzip-compressed.</summary>
    public bool Compressed { get; }

    /// <summary>The sizes of the dimensions, the first being the number of items (e.g. 60000, 28, 28).</summary>
    public IReadOnlyList<int> Dimensions => _dimensions;

    /// <summary>The number of dimensions.</summary>
    public int Rank => _dimensions.Length;

    /// <summary>The number of items: the first dimension.</summary>
    public int Count => _dimensions[0];

    /// <summary>Bytes per item: the product of the dimensions after the first (1 for a rank-1 file such as labels).</summary>
    public int ItemLength { get; }

    /// <summary>The bytes of the header (4 + 4 x rank), where the data starts.</summary>
    public int HeaderLength => 4 + 4 * _dimensions.Length;

    /// <summary>All items, back to back, in the file's order.</summary>
    public ReadOnlyMemory<byte> Data => _data;

    /// <summary>The bytes of item <paramref name="index"/> (row-major, e.g. a 28 x 28 image's rows top to bottom).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside [0, <see cref="Count"/>).</exception>
    public ReadOnlySpan<byte> Item(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _data.AsSpan(index * ItemLength, ItemLength);
    }

    /// <summary>Reads and checks an IDX file of unsigned bytes of the given rank (3 for images N x H x W, 1 for labels).</summary>
    /// <param name="path">The file, gzip-compressed or not.</param>
    /// <param name="rank">The rank the caller needs (1 to 255).</param>
    /// <param name="what">What the file is, for messages ("images file", "labels file").</param>
    /// <param name="maxDataBytes">The most data bytes accepted (at most <see cref="MaxDataBytes"/>).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">Not an IDX file of unsigned bytes of that rank; a dimension of 0; more data
    /// declared than <paramref name="maxDataBytes"/>; fewer data bytes than the header declares (truncated); bytes after
    /// the data; a damaged gzip stream; or not a regular file, or a file over 1 GiB.</exception>
    public static IdxFile Read(string path, int rank, string what = "IDX file", long maxDataBytes = MaxDataBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rank, 255);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDataBytes, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxDataBytes, MaxDataBytes);
        ArgumentException.ThrowIfNullOrEmpty(what);
        using FileStream file = SafeFile.OpenRead(path, what, SafeFile.MaxIdxFileBytes, bufferSize: 1 << 16, FileOptions.SequentialScan);
        Span<byte> sniff = stackalloc byte[2];
        int sniffed = file.ReadAtLeast(sniff, 2, throwOnEndOfStream: false);
        bool gzip = sniffed == 2 && sniff[0] == 0x1F && sniff[1] == 0x8B;
        file.Position = 0;
        using Stream input = gzip ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : file;
        var reader = new Reader(path, what, gzip, input);
        try
        {
            return ReadCore(reader, rank, maxDataBytes, gzip ? -1 : file.Length);
        }
        catch (InvalidDataException e)
        {
            throw reader.Error(reader.Position, "a gzip stream", $"damaged compressed data ({e.Message})", "the file is damaged: download it again", e);
        }
    }

    private static IdxFile ReadCore(Reader r, int rank, long maxDataBytes, long fileLength)
    {
        Span<byte> magic = stackalloc byte[4];
        int got = r.Fill(magic);
        if (got < 4)
            throw r.Error(got, "the 4-byte IDX magic (00 00 08 <rank>)", $"the end of the data after {got} byte(s)", "the file is empty or truncated: download it again");
        if (magic[0] != 0 || magic[1] != 0)
            throw r.Error(0, "the IDX magic's first two bytes 00 00", $"{magic[0]:X2} {magic[1]:X2}" + (r.Compressed ? "" : LooksLike(magic)),
                "this is not an IDX file: give the file as distributed (e.g. train-images-idx3-ubyte.gz, gzip-compressed or not)");
        if (magic[2] != UnsignedByteType)
            throw r.Error(2, $"the type byte 08 (unsigned byte)", $"{magic[2]:X2} ({TypeName(magic[2])})",
                "only IDX files of unsigned bytes are supported (as MNIST's images and labels are): convert the file to unsigned bytes");
        if (magic[3] != rank)
            throw r.Error(3, $"the rank byte {rank:X2} ({Shape(rank)})", $"{magic[3]:X2} (rank {magic[3]})",
                (rank, magic[3]) switch
                {
                    (3, 1) => "this looks like a labels file: are the images and labels files swapped?",
                    (1, 3) => "this looks like an images file: are the images and labels files swapped?",
                    _ => $"give an IDX file of rank {rank}",
                });
        var dims = new int[rank];
        Span<byte> size = stackalloc byte[4];
        long total = 1;
        for (int d = 0; d < rank; d++)
        {
            long at = 4 + 4L * d;
            got = r.Fill(size);
            if (got < 4)
                throw r.Error(at + got, $"the 4-byte size of dimension {d} (the header has {rank} sizes, {4 + 4 * rank} bytes in all)", "the end of the data",
                    "the file is truncated: download it again");
            uint n = BinaryPrimitives.ReadUInt32BigEndian(size);
            if (n == 0)
                throw r.Error(at, $"a size of at least 1 for dimension {d}", "0", "an IDX file without items holds nothing to import: give the complete file");
            if (n > int.MaxValue)
                throw r.Error(at, $"a size of dimension {d} below 2^31", n.ToString(CultureInfo.InvariantCulture), "the header is damaged: download the file again");
            dims[d] = (int)n;
            // Checked as the sizes are read, so a product of absurd sizes never overflows and nothing is allocated for it.
            total *= n;
            if (total > maxDataBytes)
                throw r.Error(at, $"at most {maxDataBytes.ToString(CultureInfo.InvariantCulture)} bytes of data in all",
                    $"sizes {string.Join(" x ", dims.Take(d + 1))}{(d + 1 < rank ? " x ..." : "")}, more than that" ,
                    "the header is damaged, or the file is larger than this reader holds in memory");
        }
        long header = 4 + 4L * rank;
        var data = new byte[total];
        got = r.Fill(data);
        if (got < total)
            throw r.Error(header + got, $"{total.ToString(CultureInfo.InvariantCulture)} bytes of data after the {header}-byte header ({string.Join(" x ", dims)})",
                $"the end of the data after {got.ToString(CultureInfo.InvariantCulture)} of them", "the file is truncated: download it again");
        long end = header + total;
        Span<byte> probe = stackalloc byte[1];
        if (r.Fill(probe) > 0)
        {
            string extra = fileLength >= 0
                ? $"{(fileLength - end).ToString(CultureInfo.InvariantCulture)} more byte(s) (the file is {fileLength.ToString(CultureInfo.InvariantCulture)} bytes)"
                : r.CountRest(1);
            throw r.Error(end, $"the end of the file after {total.ToString(CultureInfo.InvariantCulture)} bytes of data ({string.Join(" x ", dims)})", extra,
                "the file holds more than its header declares (two files joined, or a damaged header): download it again");
        }
        return new IdxFile(r.Path, r.Compressed, dims, data);
    }

    private static string Shape(int rank) => rank switch
    {
        1 => "N items, e.g. labels",
        3 => "N x height x width images",
        _ => $"{rank} dimensions",
    };

    private static string TypeName(byte type) => type switch
    {
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "not an IDX type",
    };

    /// <summary>A hint for files of other kinds given by mistake.</summary>
    private static string LooksLike(ReadOnlySpan<byte> magic) => magic switch
    {
        [0x89, 0x50, 0x4E, 0x47] => " (a PNG file)",
        [0x50, 0x4B, 0x03, 0x04] => " (a zip archive: extract it first)",
        [0x42, 0x5A, 0x68, _] => " (a bzip2 file: decompress it first)",
        [0xFD, 0x37, 0x7A, 0x58] => " (an xz file: decompress it first)",
        _ => "",
    };

    /// <summary>Reads the (decompressed) stream, keeping the offset for messages.</summary>
    private sealed class Reader(string path, string what, bool compressed, Stream input)
    {
        public string Path => path;
        public bool Compressed => compressed;
        public long Position { get; private set; }

        /// <summary>Fills <paramref name="buffer"/> as far as the data goes; returns the bytes read.</summary>
        public int Fill(Span<byte> buffer)
        {
            int n = input.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            Position += n;
            return n;
        }

        /// <summary>"N more byte(s)" after the data, counted up to a bound (a gzip member can expand to any size).</summary>
        public string CountRest(long already)
        {
            const long Bound = 1L << 20;
            var chunk = new byte[1 << 16];
            long n = already;
            int read;
            while (n <= Bound && (read = input.Read(chunk)) > 0) n += read;
            return n > Bound ? $"more than {Bound.ToString(CultureInfo.InvariantCulture)} more bytes" : $"{n.ToString(CultureInfo.InvariantCulture)} more byte(s)";
        }

        public DataFormatException Error(long offset, string expected, string found, string todo, Exception? inner = null) => new(
            $"{path}: the {what} is not a valid IDX file: at byte {offset.ToString(CultureInfo.InvariantCulture)}" +
            (compressed ? " of the decompressed data" : "") + $", expected {expected}, found {found}; {todo}" + (todo.EndsWith('?') ? "" : "."),
            path, offset, inner: inner);
    }
}
