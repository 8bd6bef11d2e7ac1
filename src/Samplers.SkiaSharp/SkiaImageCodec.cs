using Samplers.Imaging;
using System.Buffers;
using System.Runtime.InteropServices;
using SkiaSharp;

[assembly: Samplers.Imaging.ImageCodec(typeof(Samplers.SkiaSharp.SkiaImageCodec))]

namespace Samplers.SkiaSharp;

/// <summary>
/// JPEG through libjpeg-turbo: grey, YCbCr and CMYK, baseline or progressive, full size or reduced by DCT scaling
/// (1/2, 1/4, 1/8). When the system has libturbojpeg (Debian/Ubuntu: <c>apt-get install libturbojpeg0</c>; Fedora:
/// <c>turbojpeg</c>; Homebrew: <c>jpeg-turbo</c>), it decodes through it, straight to the wanted channel count, with
/// TensorFlow's decode settings (the fast integer IDCT, fancy upsampling; grey output is libjpeg's Y plane): about
/// twice as fast as SkiaSharp's build. Otherwise, and for CMYK files, it decodes through SkiaSharp (the accurate
/// integer IDCT; grey output is BT.601 luma of the decoded RGB with libjpeg's weights and rounding), which differs
/// from TensorFlow by a few levels (docs/IMAGE_DECODERS.md). <see cref="Backend"/> says which one is in use; the
/// environment variable <c>SAMPLERS_JPEG_DECODER=skiasharp</c> forces SkiaSharp. Registered automatically when
/// this assembly is present (see <see cref="ImageCodecs"/>) or explicitly with <see cref="SkiaSharpImaging.Register"/>.
/// Thread-safe.
/// </summary>
public sealed class SkiaImageCodec : IImageCodec
{
    /// <summary>The system library, looked up once per process (null: not installed, or switched off).</summary>
    private static readonly Lazy<TurboJpeg?> SystemTurboJpeg = new(() =>
        string.Equals(Environment.GetEnvironmentVariable("SAMPLERS_JPEG_DECODER"), "skiasharp", StringComparison.OrdinalIgnoreCase)
            ? null
            : TurboJpeg.TryLoad(TurboJpeg.DefaultNames));

    private readonly TurboJpeg? _tj;

    /// <summary>Uses the system's libturbojpeg when it is installed (and <c>SAMPLERS_JPEG_DECODER</c> is not
    /// <c>skiasharp</c>), else SkiaSharp.</summary>
    public SkiaImageCodec() : this(SystemTurboJpeg.Value) { }

    private SkiaImageCodec(TurboJpeg? turboJpeg) => _tj = turboJpeg;

    /// <summary>A codec that never uses libturbojpeg: the fallback path, for tests and the benchmark.</summary>
    internal static SkiaImageCodec WithoutTurboJpeg() => new(null);

    /// <summary>A codec that tries only <paramref name="names"/> for libturbojpeg (a missing name: the fallback).</summary>
    internal static SkiaImageCodec WithTurboJpegNames(params string[] names) => new(TurboJpeg.TryLoad(names));

    /// <summary>The decoder in use: <c>"libturbojpeg (FILE)"</c> with the library file that loaded, or
    /// <c>"SkiaSharp"</c>. CMYK JPEGs always go through SkiaSharp.</summary>
    public string Backend => _tj is null ? "SkiaSharp" : $"libturbojpeg ({_tj.LibraryName})";

    /// <summary>Empty for the SkiaSharp path (the decoder caches were always made with), <c>libturbojpeg-fast-idct</c> for
    /// the system library's path: its pixels differ from SkiaSharp's by about one level, so their caches must not mix.</summary>
    public string CacheIdentity => _tj is null ? "" : "libturbojpeg-fast-idct";

    /// <inheritdoc/>
    public bool CanDecode(ReadOnlySpan<byte> header) => header.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]);

    /// <inheritdoc/>
    public unsafe void Measure(ReadOnlySpan<byte> encoded, string? source, out int height, out int width, out int channels)
    {
        if (_tj is not null)
        {
            if (!_tj.TryHeader(encoded, out width, out height, out int colorspace, out string? error))
                throw new DataFormatException($"{Where(source)}JPEG header could not be read ({error}); the file is corrupt or truncated.", source);
            channels = colorspace == TurboJpeg.ColorspaceGray ? 1 : 3;
            return;
        }
        EnsureNative();
        fixed (byte* src = encoded)
        {
            using var data = SKData.Create((IntPtr)src, encoded.Length, null);
            using var codec = SKCodec.Create(data)
                ?? throw new DataFormatException($"{Where(source)}JPEG header could not be read; the file is corrupt or truncated.", source);
            height = codec.Info.Height;
            width = codec.Info.Width;
            channels = codec.Info.ColorType == SKColorType.Gray8 ? 1 : 3;
        }
    }

    /// <inheritdoc/>
    /// <remarks>Refuses, like the library's decode path, JPEG data too short for its declared size and a progressive
    /// JPEG whose bytes end before its EOI marker (<see cref="ImageCodecs.CheckJpegData"/>).</remarks>
    public unsafe void Decode(ReadOnlySpan<byte> encoded, int height, int width, int channels, Span<byte> destination, string? source)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(channels, 4);
        int pixels = checked(height * width);
        if (destination.Length < pixels * channels)
            throw new ArgumentException($"destination holds {destination.Length} bytes, the {width}x{height}x{channels} image needs {pixels * channels}.", nameof(destination));
        if (_tj is not null && DecodeTurbo(_tj, encoded, height, width, channels, destination, source)) return;
        EnsureNative();
        SKCodecResult result;
        byte[]? tmp = null;
        try
        {
            fixed (byte* src = encoded)
            {
                // Wrap the caller's bytes without copying; the codec is disposed before the pin ends.
                using var data = SKData.Create((IntPtr)src, encoded.Length, null);
                using var codec = SKCodec.Create(data)
                    ?? throw new DataFormatException($"{Where(source)}the image header could not be read.", source);
                // Here, not only in the library's decode path: a caller of this codec gets the same refusal of a file
                // libjpeg would decode from partial data and report as a success (a progressive JPEG cut short).
                ImageCodecs.CheckJpegData(encoded, codec.Info.Height, codec.Info.Width, source);
                bool full = codec.Info.Width == width && codec.Info.Height == height;
                if (!full)
                {
                    // A reduced size must be one of the codec's DCT scales.
                    bool scaled = false;
                    foreach (float scale in (ReadOnlySpan<float>)[0.125f, 0.25f, 0.5f])
                        scaled |= codec.GetScaledDimensions(scale) is var d && d.Width == width && d.Height == height;
                    if (!scaled)
                        throw new DataFormatException($"{Where(source)}decoder reports {codec.Info.Width}x{codec.Info.Height}, asked for {width}x{height}.", source);
                }
                bool grey = codec.Info.ColorType == SKColorType.Gray8;
                // Direct: grey into one channel, anything into RGBA. The rest decode to a pooled buffer and convert.
                bool direct = (grey && channels == 1) || channels == 4;
                int srcChannels = grey && channels != 4 ? 1 : 4; // Gray8 for grey unless RGBA was asked for
                if (!direct) tmp = ArrayPool<byte>.Shared.Rent(pixels * srcChannels);
                var info = new SKImageInfo(width, height, srcChannels == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888,
                    srcChannels == 1 ? SKAlphaType.Opaque : SKAlphaType.Unpremul, null);
                fixed (byte* d = direct ? destination : tmp.AsSpan())
                    result = codec.GetPixels(info, (IntPtr)d);
                if (result == SKCodecResult.Success && !direct)
                    Convert(tmp.AsSpan(0, pixels * srcChannels), srcChannels == 1, channels, destination[..(pixels * channels)]);
            }
        }
        finally
        {
            if (tmp is not null) ArrayPool<byte>.Shared.Return(tmp);
        }
        if (result != SKCodecResult.Success)
            throw new DataFormatException(
                $"{Where(source)}image data is corrupt or truncated (decoder result: {result}); the file decodes only partly.", source);
    }

    /// <summary>
    /// The libturbojpeg path: false (nothing written) for CMYK/YCCK files, which go to SkiaSharp (libjpeg-turbo has no
    /// CMYK to RGB conversion); else decodes straight into <paramref name="destination"/> or throws.
    /// </summary>
    private static bool DecodeTurbo(TurboJpeg tj, ReadOnlySpan<byte> encoded, int height, int width, int channels, Span<byte> destination, string? source)
    {
        if (!tj.TryHeader(encoded, out int fileWidth, out int fileHeight, out int colorspace, out string? error))
            throw new DataFormatException($"{Where(source)}the image header could not be read ({error}).", source);
        if (colorspace is TurboJpeg.ColorspaceCmyk or TurboJpeg.ColorspaceYcck) return false;
        ImageCodecs.CheckJpegData(encoded, fileHeight, fileWidth, source);
        bool sizeOk = fileHeight == height && fileWidth == width;
        foreach (int denominator in (ReadOnlySpan<int>)[8, 4, 2])
            sizeOk |= TurboJpeg.Scaled(fileHeight, denominator) == height && TurboJpeg.Scaled(fileWidth, denominator) == width;
        if (!sizeOk)
            throw new DataFormatException($"{Where(source)}decoder reports {fileWidth}x{fileHeight}, asked for {width}x{height}.", source);
        int pixels = height * width;
        // Straight to the channel count: libjpeg's Y plane for grey (as TensorFlow asks), RGB, or RGB + 255. Two
        // channels: the grey plane, then spread in place from the end (grey, 255).
        int format = channels switch { 1 or 2 => TurboJpeg.PixelGray, 3 => TurboJpeg.PixelRgb, _ => TurboJpeg.PixelRgba };
        if (tj.Decode(encoded, destination, width, height, format, TurboJpeg.FlagFastDct) is { } message)
            throw new DataFormatException(
                $"{Where(source)}image data is corrupt or truncated (libjpeg-turbo: {message}); the file decodes only partly.", source);
        if (channels == 2)
        {
            for (int p = pixels - 1; p >= 0; p--)
            {
                destination[2 * p + 1] = 255;
                destination[2 * p] = destination[p];
            }
        }
        return true;
    }

    /// <inheritdoc/>
    public unsafe bool TryGetReducedSize(ReadOnlySpan<byte> encoded, int minHeight, int minWidth, out int height, out int width)
    {
        height = width = 0;
        if (_tj is not null)
        {
            if (!_tj.TryHeader(encoded, out int fileWidth, out int fileHeight, out int colorspace, out _)) return false;
            if (colorspace is not (TurboJpeg.ColorspaceCmyk or TurboJpeg.ColorspaceYcck))
            {
                // The same choice as the SkiaSharp path below: the smallest of 1/8, 1/4, 1/2 that still covers the minimum.
                foreach (int denominator in (ReadOnlySpan<int>)[8, 4, 2])
                {
                    int h = TurboJpeg.Scaled(fileHeight, denominator), w = TurboJpeg.Scaled(fileWidth, denominator);
                    if (h >= minHeight && w >= minWidth && (h < fileHeight || w < fileWidth))
                    {
                        (height, width) = (h, w);
                        return true;
                    }
                }
                return false;
            }
        }
        if (NativeFailure.Value is not null) return false;
        fixed (byte* src = encoded)
        {
            using var data = SKData.Create((IntPtr)src, encoded.Length, null);
            using var codec = SKCodec.Create(data);
            if (codec is null) return false;
            foreach (float scale in (ReadOnlySpan<float>)[0.125f, 0.25f, 0.5f])
            {
                SKSizeI d = codec.GetScaledDimensions(scale);
                if (d.Height >= minHeight && d.Width >= minWidth && (d.Height < codec.Info.Height || d.Width < codec.Info.Width))
                {
                    (height, width) = (d.Height, d.Width);
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>Grey (one byte a pixel) or RGBA into <paramref name="c"/> channels.</summary>
    private static void Convert(ReadOnlySpan<byte> src, bool grey, int c, Span<byte> dst)
    {
        int pixels = dst.Length / c;
        if (grey)
        {
            for (int p = 0, o = 0; p < pixels; p++)
            {
                byte g = src[p];
                for (int k = 0; k < c; k++) dst[o++] = k == 1 && c == 2 ? (byte)255 : g;
            }
            return;
        }
        for (int p = 0, s = 0, o = 0; p < pixels; p++, s += 4)
        {
            switch (c)
            {
                case 1:
                case 2:
                    // BT.601 luma with libjpeg's 16-bit weights and rounding.
                    dst[o++] = (byte)((19595 * src[s] + 38470 * src[s + 1] + 7471 * src[s + 2] + 32768) >> 16);
                    if (c == 2) dst[o++] = src[s + 3];
                    break;
                default:
                    dst[o++] = src[s]; dst[o++] = src[s + 1]; dst[o++] = src[s + 2];
                    break;
            }
        }
    }

    private static string Where(string? source) => source is null ? "" : source + ": ";

    /// <summary>Whether SkiaSharp's native library loads in this process: null, or the failure (probed once).</summary>
    private static readonly Lazy<Exception?> NativeFailure = new(() =>
    {
        try
        {
            using var probe = SKData.CreateCopy(new byte[1]);
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            return e;
        }
    });

    /// <summary>
    /// Called before any SkiaSharp use: on a platform for which no native library came with the packages (this one
    /// brings Windows, macOS and glibc Linux), the failure names the platform and what to add, instead of surfacing
    /// as a bare <see cref="DllNotFoundException"/> or type-initializer failure.
    /// </summary>
    private static void EnsureNative()
    {
        if (NativeFailure.Value is { } e)
            throw new InvalidOperationException(NativeLibraryMissing(RuntimeInformation.RuntimeIdentifier), e);
    }

    /// <summary>The message for a missing SkiaSharp native library on <paramref name="rid"/>.</summary>
    internal static string NativeLibraryMissing(string rid) =>
        $"JPEG decoding (package Samplers.SkiaSharp) uses SkiaSharp, and its native library (libSkiaSharp) for this platform ({rid}) was not found. " +
        "Samplers.SkiaSharp brings it for Windows, macOS and glibc Linux (SkiaSharp.NativeAssets.Linux.NoDependencies); on another platform add " +
        "SkiaSharp's native-asset package for it, at the SkiaSharp version Samplers.SkiaSharp uses. See docs/API.md \"Packages\".";
}

/// <summary>Explicit registration of <see cref="SkiaImageCodec"/>, for applications where loading the assembly by
/// name may not work (trimmed or native AOT): call <see cref="Register"/> once at start-up.</summary>
public static class SkiaSharpImaging
{
    private static readonly SkiaImageCodec Codec = new();

    /// <summary>Registers the JPEG codec with <see cref="ImageCodecs.Register"/>; calling it again does nothing.</summary>
    public static void Register() => ImageCodecs.Register(Codec);
}
