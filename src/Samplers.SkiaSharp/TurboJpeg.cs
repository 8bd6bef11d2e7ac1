using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Samplers.SkiaSharp;

/// <summary>
/// The system's libjpeg-turbo through its TurboJPEG API (libturbojpeg, API version 2: <c>tjDecompressHeader3</c>,
/// <c>tjDecompress2</c>), loaded at run time with <see cref="NativeLibrary"/>; null from <see cref="TryLoad"/> when the
/// library is not installed. Distribution builds (Debian's libturbojpeg0, Homebrew's jpeg-turbo, ...) carry the SIMD
/// paths, which make it about twice as fast as the libjpeg-turbo inside SkiaSharp (docs/IMAGE_DECODERS.md).
/// Thread-safe: decompressor handles are pooled, one per concurrent call.
/// </summary>
internal sealed unsafe class TurboJpeg
{
    /// <summary>TurboJPEG pixel formats (<c>TJPF_*</c>).</summary>
    internal const int PixelRgb = 0, PixelGray = 6, PixelRgba = 7;

    /// <summary>TurboJPEG colour spaces (<c>TJCS_*</c>) of a JPEG file.</summary>
    internal const int ColorspaceGray = 2, ColorspaceCmyk = 3, ColorspaceYcck = 4;

    /// <summary><c>TJFLAG_FASTDCT</c>: libjpeg's integer-fast IDCT (JDCT_IFAST), TensorFlow's default.</summary>
    internal const int FlagFastDct = 2048;

    /// <summary><c>TJFLAG_ACCURATEDCT</c>: libjpeg's accurate integer IDCT (JDCT_ISLOW), libjpeg's own default.</summary>
    internal const int FlagAccurateDct = 4096;

    /// <summary>Names tried, in order, when no names are given: Linux (Debian/Ubuntu libturbojpeg0, Fedora
    /// turbojpeg), macOS (Homebrew jpeg-turbo), Windows (libjpeg-turbo's installer).</summary>
    internal static readonly string[] DefaultNames = ["libturbojpeg.so.0", "libturbojpeg.so", "libturbojpeg.0.dylib", "libturbojpeg.dylib", "turbojpeg.dll"];

    private readonly delegate* unmanaged<IntPtr> _init;
    private readonly delegate* unmanaged<IntPtr, int> _destroy;
    private readonly delegate* unmanaged<IntPtr, byte*, CULong, int*, int*, int*, int*, int> _header;
    private readonly delegate* unmanaged<IntPtr, byte*, CULong, byte*, int, int, int, int, int, int> _decompress;
    private readonly delegate* unmanaged<IntPtr, byte*> _errorString;
    private readonly ConcurrentBag<IntPtr> _handles = [];

    /// <summary>The file name that loaded.</summary>
    internal string LibraryName { get; }

    private TurboJpeg(IntPtr lib, string name)
    {
        LibraryName = name;
        _init = (delegate* unmanaged<IntPtr>)NativeLibrary.GetExport(lib, "tjInitDecompress");
        _destroy = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(lib, "tjDestroy");
        _header = (delegate* unmanaged<IntPtr, byte*, CULong, int*, int*, int*, int*, int>)NativeLibrary.GetExport(lib, "tjDecompressHeader3");
        _decompress = (delegate* unmanaged<IntPtr, byte*, CULong, byte*, int, int, int, int, int, int>)NativeLibrary.GetExport(lib, "tjDecompress2");
        _errorString = (delegate* unmanaged<IntPtr, byte*>)NativeLibrary.GetExport(lib, "tjGetErrorStr2");
    }

    /// <summary>Loads the first of <paramref name="names"/> that exists and exports the TurboJPEG 2 API; null if none
    /// does (the caller falls back to another decoder).</summary>
    internal static TurboJpeg? TryLoad(IEnumerable<string> names)
    {
        foreach (string name in names)
        {
            if (!NativeLibrary.TryLoad(name, typeof(TurboJpeg).Assembly, null, out IntPtr lib)) continue;
            try
            {
                var tj = new TurboJpeg(lib, name);
                // One handle made and kept: proves the library works here before anything relies on it.
                tj.Return(tj.Rent());
                return tj;
            }
            catch (EntryPointNotFoundException)
            {
                NativeLibrary.Free(lib); // an older TurboJPEG (before 1.4) without tjDecompressHeader3 / tjGetErrorStr2
            }
            catch (InvalidOperationException)
            {
                NativeLibrary.Free(lib);
            }
        }
        return null;
    }

    private IntPtr Rent()
    {
        if (_handles.TryTake(out IntPtr h)) return h;
        h = _init();
        return h != IntPtr.Zero ? h : throw new InvalidOperationException("tjInitDecompress failed (out of memory?).");
    }

    private void Return(IntPtr h, bool failed = false)
    {
        // Keep a few for the worker threads; free the rest, so a burst of threads does not pin handles for ever. A
        // handle whose call failed is freed too: TurboJPEG 2 leaves libjpeg's state as the error found it after a
        // header failure, and the next file read through that handle then fails on good data.
        if (!failed && _handles.Count < 2 * Environment.ProcessorCount) _handles.Add(h);
        else _destroy(h);
    }

    /// <summary>Reads the header: size and the file's colour space (<c>TJCS_*</c>); false when libjpeg cannot.</summary>
    internal bool TryHeader(ReadOnlySpan<byte> jpeg, out int width, out int height, out int colorspace, out string? error)
    {
        IntPtr h = Rent();
        int rc = -1;
        try
        {
            int w, ht, sub, cs;
            fixed (byte* src = jpeg)
                rc = _header(h, src, new CULong((nuint)jpeg.Length), &w, &ht, &sub, &cs);
            (width, height, colorspace) = (w, ht, cs);
            // TurboJPEG 2 reports success with a zero size for data that ends before any frame (it reads it as a
            // tables-only stream): that is no image.
            if (rc == 0 && (w < 1 || ht < 1)) rc = -1;
            error = rc == 0 ? null : ErrorText(h);
            return rc == 0;
        }
        finally
        {
            Return(h, failed: rc != 0);
        }
    }

    /// <summary>
    /// Decodes into <paramref name="destination"/> (rows of <paramref name="width"/> x bytes-per-pixel, no padding) at
    /// <paramref name="width"/> x <paramref name="height"/>: the file's size, or a DCT-scaled size libjpeg-turbo can
    /// produce. Returns null on success, else libjpeg's message; a libjpeg warning (corrupt or truncated data, which
    /// libjpeg would fill in) counts as a failure, as SkiaSharp's incomplete-input result did.
    /// </summary>
    internal string? Decode(ReadOnlySpan<byte> jpeg, Span<byte> destination, int width, int height, int pixelFormat, int flags)
    {
        IntPtr h = Rent();
        int rc = -1;
        try
        {
            fixed (byte* src = jpeg)
            fixed (byte* dst = destination)
                rc = _decompress(h, src, new CULong((nuint)jpeg.Length), dst, width, 0, height, pixelFormat, flags);
            return rc == 0 ? null : ErrorText(h);
        }
        finally
        {
            Return(h, failed: rc != 0);
        }
    }

    private string ErrorText(IntPtr h) => Marshal.PtrToStringUTF8((IntPtr)_errorString(h)) ?? "unknown libjpeg-turbo error";

    /// <summary>libjpeg's scaled size for 1/<paramref name="denominator"/> (rounded up, as <c>TJSCALED</c>).</summary>
    internal static int Scaled(int dimension, int denominator) => (dimension + denominator - 1) / denominator;
}
