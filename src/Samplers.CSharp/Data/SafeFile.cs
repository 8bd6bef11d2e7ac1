using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Samplers;

/// <summary>
/// The one way the product opens a file it reads (docs/ROBUSTNESS.md, "Opening files"): the kind is checked with
/// <c>stat</c> on the path before opening (opening a FIFO for reading blocks until a writer appears, and a device such
/// as <c>/dev/zero</c> never ends), checked again with <c>fstat</c> on the opened handle (the path may have been
/// replaced in between), and the size is bounded before a byte is read. Every refusal is a
/// <see cref="DataFormatException"/> naming the file, what it is for, and what it is (or its size and the bound).
/// </summary>
internal static partial class SafeFile
{
    /// <summary>A ClassLabel's <c>&lt;feature&gt;.labels.txt</c>: 64 MiB, the same bound as its download. ImageNet-21k's
    /// 21,841 names take about 400 KB; 64 MiB is room for millions of names while a damaged file cannot take gigabytes.</summary>
    public const long MaxLabelsFileBytes = 64L << 20;

    /// <summary>A cache file's <c>.verified</c> stamp: 64 KiB (a real one is about 180 bytes).</summary>
    public const long MaxStampBytes = 64L << 10;

    /// <summary>An image file of an image folder: 512 MiB. An image within the default pixel budget (89,478,485 pixels)
    /// stored as an uncompressed RGBA PNG is about 358 MB, the largest encoding a real file of that many pixels has; a
    /// larger file is not an image the decoder would accept, and reading it whole would cost its size in memory.</summary>
    public const long MaxImageFileBytes = 512L << 20;

    /// <summary>An IDX file (MNIST's format, <see cref="Samplers.Imaging.IdxFile"/>), gzip-compressed or not: 1 GiB on disk.
    /// The largest IDX distribution in use, EMNIST ByClass's training images, is 547 MB uncompressed; the decoded data
    /// has its own bound (<see cref="Samplers.Imaging.IdxFile.MaxDataBytes"/>), checked from the header.</summary>
    public const long MaxIdxFileBytes = 1L << 30;

    /// <summary>A metadata file read whole (dataset_info.json, features.json, .config/metadata.json, also when hashed into
    /// a source fingerprint): 64 MiB. Real ones are a few KB to a few MB (a features.json with many class names).</summary>
    public const long MaxMetadataBytes = 64L << 20;

    /// <summary>No bound on the size (a file read in place, such as a cache file or a shard): kind checks only.</summary>
    public const long Unbounded = long.MaxValue;

    /// <summary>Opens <paramref name="path"/> for reading after the kind and size checks (see the class summary).</summary>
    /// <param name="path">The file.</param>
    /// <param name="maxBytes">The largest size accepted.</param>
    /// <param name="what">What the file is, for messages ("labels file", "image file").</param>
    /// <param name="options">Options for the handle.</param>
    /// <exception cref="FileNotFoundException">Nothing is there (or a broken symbolic link).</exception>
    /// <exception cref="DataFormatException">Not a regular file, or larger than <paramref name="maxBytes"/>.</exception>
    public static SafeFileHandle OpenHandle(string path, long maxBytes, string what, FileOptions options = FileOptions.None)
    {
        FileKindValue kind = FileKind.Of(path);
        if (kind == FileKindValue.Missing) throw new FileNotFoundException($"{path}: {what} is missing.", path);
        if (!FileKind.IsReadable(kind)) throw NotRegular(path, what, kind);
        SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, options);
        try
        {
            kind = FileKind.OfHandle(handle);
            if (!FileKind.IsReadable(kind)) throw NotRegular(path, what, kind);
            long length = RandomAccess.GetLength(handle);
            if (length > maxBytes) throw TooLarge(path, what, length, maxBytes);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>A read-only stream over the handle <see cref="OpenHandle"/> checked, for a file read in a stream
    /// (a shard, a part file being hashed): the kind checks and the size bound hold for the file as opened; a file read
    /// as a stream with no bound (<see cref="Unbounded"/>) ends where the regular file ends.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for messages.</param>
    /// <param name="maxBytes">The largest size accepted.</param>
    /// <param name="bufferSize">The stream's buffer (0 or 1: none).</param>
    /// <param name="options">Options for the handle.</param>
    /// <exception cref="FileNotFoundException">Nothing is there (or a broken symbolic link).</exception>
    /// <exception cref="DataFormatException">Not a regular file, or larger than <paramref name="maxBytes"/>.</exception>
    public static FileStream OpenRead(string path, string what, long maxBytes = Unbounded, int bufferSize = 4096, FileOptions options = FileOptions.None)
    {
        SafeFileHandle handle = OpenHandle(path, maxBytes, what, options);
        try
        {
            return new FileStream(handle, FileAccess.Read, bufferSize);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>All bytes of <paramref name="path"/>, after the checks of <see cref="OpenHandle"/>; a file that grows past
    /// <paramref name="maxBytes"/> while being read is refused too.</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        using SafeFileHandle handle = OpenHandle(path, maxBytes, what);
        long length = RandomAccess.GetLength(handle);
        var buffer = new byte[(int)Math.Min(length, Array.MaxLength)];
        int filled = 0;
        Span<byte> probe = stackalloc byte[1];
        while (true)
        {
            if (filled == buffer.Length)
            {
                // The file may have grown since fstat (or reported no length): read on, bounded.
                if (RandomAccess.Read(handle, probe, filled) == 0) break;
                long grown = (long)filled + 1;
                if (grown > maxBytes || buffer.Length >= Array.MaxLength) throw TooLarge(path, what, grown, maxBytes);
                int next = (int)Math.Min(Math.Min(Math.Max(4096L, buffer.Length * 2L), maxBytes), Array.MaxLength);
                Array.Resize(ref buffer, next);
                buffer[filled++] = probe[0];
                continue;
            }
            int n = RandomAccess.Read(handle, buffer.AsSpan(filled), filled);
            if (n == 0) break;
            filled += n;
        }
        if (filled != buffer.Length) Array.Resize(ref buffer, filled);
        return buffer;
    }

    /// <summary>The text of <paramref name="path"/> (UTF-8 unless a byte order mark says otherwise, as
    /// <see cref="File.ReadAllText(string)"/>), after the checks of <see cref="OpenHandle"/>.</summary>
    public static string ReadAllText(string path, long maxBytes, string what)
    {
        byte[] bytes = ReadAllBytes(path, maxBytes, what);
        using var reader = new StreamReader(new MemoryStream(bytes, writable: false), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }

    private static DataFormatException NotRegular(string path, string what, FileKindValue kind) =>
        new($"{path}: the {what} is {FileKind.Describe(kind)}, not a regular file; replace it with the real file.", path, 0);

    private static DataFormatException TooLarge(string path, string what, long length, long maxBytes) =>
        new($"{path}: the {what} is {length} bytes, over the bound of {maxBytes} bytes for it; the file is damaged or of another kind.", path, 0);
}
