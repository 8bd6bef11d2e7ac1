using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace Samplers.Imaging;

/// <summary>
/// A decoder for an encoded image format that the main package does not decode itself. The main package decodes PNG
/// (all of it, managed code); JPEG needs a native codec and comes from a codec registered here, normally the one in
/// the <c>Samplers.SkiaSharp</c> package. Implementations must be thread-safe: the loader calls them from several
/// threads at once.
/// </summary>
public interface IImageCodec
{
    /// <summary>Whether this codec decodes the image whose file starts with <paramref name="header"/> (at least the
    /// first 12 bytes of the file when it has them).</summary>
    /// <param name="header">The first bytes of the encoded file.</param>
    bool CanDecode(ReadOnlySpan<byte> header);

    /// <summary>Reads the size and native channel count (1 grey, 3 colour, 2 or 4 with alpha) without decoding pixels.</summary>
    /// <param name="encoded">The whole encoded file.</param>
    /// <param name="source">Where the bytes came from (e.g. a <c>tfds_id</c>), to put in front of error messages.</param>
    /// <param name="height">Rows.</param>
    /// <param name="width">Columns.</param>
    /// <param name="channels">Native channels.</param>
    /// <exception cref="DataFormatException">The header is corrupt or truncated.</exception>
    void Measure(ReadOnlySpan<byte> encoded, string? source, out int height, out int width, out int channels);

    /// <summary>
    /// Decodes into <paramref name="destination"/> as (H, W, C) uint8, row-major, top row first, at the measured size
    /// or at a size <see cref="TryGetReducedSize"/> returned. Channel conversion: grey is replicated into colour, an
    /// absent alpha is 255, colour into grey is the codec's luma.
    /// </summary>
    /// <param name="encoded">The whole encoded file.</param>
    /// <param name="height">Rows to decode to: the measured height, or a reduced height.</param>
    /// <param name="width">Columns to decode to: the measured width, or a reduced width.</param>
    /// <param name="channels">C: 1, 2, 3 or 4.</param>
    /// <param name="destination">Exactly <paramref name="height"/> x <paramref name="width"/> x <paramref name="channels"/> bytes.</param>
    /// <param name="source">Where the bytes came from, to put in front of error messages.</param>
    /// <exception cref="DataFormatException">The data is corrupt or truncated.</exception>
    void Decode(ReadOnlySpan<byte> encoded, int height, int width, int channels, Span<byte> destination, string? source);

    /// <summary>
    /// The smallest size the codec can decode at directly (for JPEG: 1/8, 1/4 or 1/2 through DCT scaling) that is
    /// still at least <paramref name="minHeight"/> x <paramref name="minWidth"/> and smaller than the image; false
    /// when there is none. Used by <see cref="Samplers.Tfds.TfdsLoadOptions.ReducedJpegDecode"/>.
    /// </summary>
    /// <param name="encoded">The whole encoded file.</param>
    /// <param name="minHeight">The least acceptable height.</param>
    /// <param name="minWidth">The least acceptable width.</param>
    /// <param name="height">The reduced height.</param>
    /// <param name="width">The reduced width.</param>
    bool TryGetReducedSize(ReadOnlySpan<byte> encoded, int minHeight, int minWidth, out int height, out int width);

    /// <summary>
    /// A short name for the pixels this codec produces, made part of the Parquet cache key of decoded images, so that a
    /// cache written through one decoder is never read back as another's output (two JPEG decoders can differ by a few
    /// levels). Empty only for the library's original decoder (SkiaSharp), whose caches predate the key; the default is
    /// the codec's type name.
    /// </summary>
    string CacheIdentity => GetType().FullName ?? GetType().Name;
}

/// <summary>
/// Marks an assembly that provides an <see cref="IImageCodec"/>: when an image no registered codec decodes is met,
/// <see cref="ImageCodecs"/> loads the known codec assemblies (<c>Samplers.SkiaSharp</c>) by name and registers the
/// codec types they mark with this attribute, so that adding the package is enough.
/// </summary>
/// <param name="codecType">A public type implementing <see cref="IImageCodec"/> with a public parameterless constructor.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class ImageCodecAttribute([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] Type codecType) : Attribute
{
    /// <summary>The codec type.</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)]
    public Type CodecType { get; } = codecType;
}

/// <summary>
/// The image codecs beyond the built-in PNG decoder. <see cref="Register"/> adds one; without any, the first image
/// that needs one makes the registry try to load the <c>Samplers.SkiaSharp</c> assembly by name (present when the
/// application references that package) and register the codec it declares with <see cref="ImageCodecAttribute"/>.
/// Trimmed or AOT applications, where loading by name may not work, call <c>SkiaSharpImaging.Register()</c> (or
/// <see cref="Register"/>) at start-up instead. Thread-safe.
/// </summary>
public static class ImageCodecs
{
    /// <summary>The assembly searched for a codec when none is registered.</summary>
    internal const string KnownCodecAssembly = "Samplers.SkiaSharp";

    private static readonly Lock Gate = new();
    private static IImageCodec[] _codecs = [];
    private static bool _discovered;

    /// <summary>Makes <paramref name="codec"/> available to every decode in the process; a codec registered later is
    /// asked first. Registering the same instance again does nothing.</summary>
    /// <param name="codec">The codec.</param>
    /// <exception cref="ArgumentNullException"><paramref name="codec"/> is null.</exception>
    public static void Register(IImageCodec codec)
    {
        ArgumentNullException.ThrowIfNull(codec);
        lock (Gate)
        {
            if (Array.IndexOf(_codecs, codec) >= 0) return;
            _codecs = [codec, .. _codecs];
        }
    }

    /// <summary>
    /// Refuses JPEG data that cannot hold an image of <paramref name="width"/> x <paramref name="height"/> pixels (the
    /// full size its header declares), before a codec fills in the missing part: a Huffman-coded file (sequential or
    /// progressive) whose scan data is shorter than any image of that size needs, and a progressive file whose bytes end
    /// before its EOI marker (libjpeg decodes the scans that are there and reports success). Anything else passes.
    /// The library's own decode path calls it; a JPEG <see cref="IImageCodec"/> calls it from
    /// <see cref="IImageCodec.Decode"/> so a caller that uses the codec directly gets the same refusal.
    /// </summary>
    /// <param name="jpeg">The encoded file.</param>
    /// <param name="height">The full height its header declares.</param>
    /// <param name="width">The full width its header declares.</param>
    /// <param name="source">The file or record named in messages, or null.</param>
    /// <exception cref="DataFormatException">The data is too short for the size, or a progressive file is cut short.</exception>
    public static void CheckJpegData(ReadOnlySpan<byte> jpeg, int height, int width, string? source)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(height);
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        JpegHeader.CheckDataLength(jpeg, new ImageInfo(height, width, 0, 8, ImageFormat.Jpeg), source);
    }

    /// <summary>The <see cref="IImageCodec.CacheIdentity"/> of the codec that decodes JPEG files here ("" when none is
    /// available: such a load fails anyway, and no cache is written).</summary>
    internal static string JpegCacheIdentity() => Find([0xFF, 0xD8, 0xFF, 0xE0, 0, 16, (byte)'J', (byte)'F', (byte)'I', (byte)'F', 0, 1])?.CacheIdentity ?? "";

    /// <summary>The registered codec for <paramref name="header"/>, trying discovery once when none matches; null when none.</summary>
    internal static IImageCodec? Find(ReadOnlySpan<byte> header)
    {
        if (Match(Volatile.Read(ref _codecs), header) is { } codec) return codec;
        if (!Volatile.Read(ref _discovered)) Discover();
        return Match(Volatile.Read(ref _codecs), header);
    }

    private static IImageCodec? Match(IImageCodec[] codecs, ReadOnlySpan<byte> header)
    {
        foreach (var c in codecs)
            if (c.CanDecode(header)) return c;
        return null;
    }

    /// <summary>Loads <see cref="KnownCodecAssembly"/> by name and registers its marked codecs; once per process (or reset).</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Loading by name is best-effort; trimmed apps register explicitly (SkiaSharpImaging.Register).")]
    private static void Discover()
    {
        lock (Gate)
        {
            if (_discovered) return;
            try
            {
                Assembly assembly;
                try
                {
                    assembly = Assembly.Load(new AssemblyName(KnownCodecAssembly));
                }
                catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException or NotSupportedException or PlatformNotSupportedException)
                {
                    return;
                }
                foreach (var mark in assembly.GetCustomAttributes<ImageCodecAttribute>())
                {
                    if (Activator.CreateInstance(mark.CodecType) is IImageCodec codec)
                        _codecs = [.. _codecs, codec];
                }
            }
            finally
            {
                // Published only now: a thread that saw false waited on the lock, so none decodes before the codecs are in.
                Volatile.Write(ref _discovered, true);
            }
        }
    }

    /// <summary>Tests: forgets every registered codec; with <paramref name="discover"/> false, no discovery is tried
    /// either (as in an application without <c>Samplers.SkiaSharp</c>).</summary>
    internal static void Reset(bool discover)
    {
        lock (Gate)
        {
            _codecs = [];
            _discovered = !discover;
        }
    }

    /// <summary>The one-line refusal of a JPEG when no codec decodes it.</summary>
    internal static string NoJpegCodec(string? source) =>
        $"{Imaging.ImageDecoder.Where(source)}JPEG image, but no JPEG codec is registered: the Samplers package decodes PNG only. " +
        $"Add the package {KnownCodecAssembly} (dotnet add package {KnownCodecAssembly}) or register an IImageCodec with ImageCodecs.Register.";
}
