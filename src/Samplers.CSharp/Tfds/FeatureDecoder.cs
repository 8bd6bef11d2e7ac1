using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Samplers.Tfds.Protos;

namespace Samplers.Tfds;

/// <summary>
/// Turns an Image feature's encoded bytes into pixels. The record decoder does not decode images itself: the
/// loader supplies an implementation backed by the image decoder.
/// </summary>
internal interface IEncodedImageDecoder
{
    /// <summary>The (H, W, C) shape the encoded image decodes to under <paramref name="spec"/>.</summary>
    int[] MeasureShape(FeatureSpec spec, ReadOnlySpan<byte> encoded, RecordLocation location);

    /// <summary>Decodes the image into <paramref name="destination"/> (exactly H*W*C*itemsize bytes).</summary>
    void DecodeInto(FeatureSpec spec, ReadOnlySpan<byte> encoded, Span<byte> destination, RecordLocation location);
}

/// <summary>A decoded feature value: its shape and its elements as little-endian bytes of the spec's dtype.</summary>
/// <param name="Shape">The actual shape of this example's value.</param>
/// <param name="Data">Row-major elements, <c>DTypes.SizeOf(dtype)</c> bytes each, little-endian.</param>
internal sealed record DecodedFeature(int[] Shape, byte[] Data);

/// <summary>
/// Decodes one feature of a parsed <c>tf.train.Example</c> according to its <see cref="FeatureSpec"/>
/// (TFDS_FORMAT.md 5): finds the flat key, checks the list kind and value count, casts to the declared dtype
/// and writes little-endian elements into a caller's buffer.
/// </summary>
/// <remarks>
/// <para>Two steps for ragged data: <see cref="MeasureShape"/> gives the example's actual shape (for fixed shapes,
/// the declared one), then <see cref="DecodeInto"/> fills exactly <see cref="ByteCount"/> bytes. For fixed shapes the
/// loader can call <see cref="DecodeInto"/> directly.</para>
/// <para>Supported: ClassLabel (int64, -1 passes); Tensor of every dtype of TFDS_FORMAT 4.4 with the casts of 5.3
/// (integers truncate, uint64 reinterprets, bool is value != 0, float16 rounds to nearest even, float64 widens the
/// stored float32), fixed shapes, a first dimension that varies (the key may then be absent: zero rows),
/// <c>encoding: bytes</c> and <c>zlib</c> with at most one unknown dimension inferred from the byte length, and two
/// or more unknown dimensions through <c>&lt;key&gt;/shape</c> + <c>&lt;key&gt;/value</c>; optional Tensors (a missing key
/// fills the dtype's minimum); scalar string Tensors and Text as raw bytes (shape = (byte count)); BBoxFeature as
/// float32 (4); features inside a Sequence as a leading varying dimension. Images go to an
/// <see cref="IEncodedImageDecoder"/>. Keys in the Example that no spec names are ignored.</para>
/// <para>Thread-safe: all methods are pure functions of their arguments.</para>
/// </remarks>
internal static class FeatureDecoder
{
    /// <summary>The byte length of a value of <paramref name="shape"/> and the spec's dtype.</summary>
    /// <exception cref="ArgumentException">A dimension is negative or the size exceeds 2 GiB.</exception>
    public static int ByteCount(FeatureSpec spec, ReadOnlySpan<int> shape)
    {
        ArgumentNullException.ThrowIfNull(spec);
        // Text is raw bytes whatever dtype the spec carries; the other kinds are stored as StorageDType.
        long n = spec.Kind == FeatureKind.Text ? 1 : DTypes.SizeOf(spec.StorageDType);
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Shape ({string.Join(", ", shape.ToArray())}) has an unknown dimension; measure the example first.", nameof(shape));
            n *= d;
            if (n > int.MaxValue) throw new ArgumentException($"A value of shape ({string.Join(", ", shape.ToArray())}) exceeds 2 GiB.", nameof(shape));
        }
        return (int)n;
    }

    /// <summary>Returns the label of a ClassLabel (or integer scalar Tensor) feature as int64; -1 passes through.</summary>
    /// <exception cref="ArgumentException">The spec is not a scalar integer feature.</exception>
    /// <exception cref="DataFormatException">The key is missing, or not an int64 list of exactly one value.</exception>
    public static long ReadLabel(FeatureSpec spec, Features features, RecordLocation location)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(features);
        if (!spec.IsLabel)
            throw new ArgumentException($"Feature '{spec.Key}' ({spec}) is not a scalar ClassLabel or integer Tensor, so it cannot be a label; choose a ClassLabel feature as y_key.", nameof(spec));
        var f = Require(spec, features, location, spec.Key);
        var list = ExpectKind(spec, f, Feature.KindOneofCase.Int64List, location, spec.Key).Int64List.Value;
        if (list.Count != 1) throw CountMismatch(spec, location, spec.Key, "1 value (a scalar)", list.Count);
        return list[0];
    }

    /// <summary>
    /// The single byte string of an Image or Text feature (or a scalar string Tensor), without copying.
    /// </summary>
    /// <exception cref="ArgumentException">The spec is not a single-byte-string feature.</exception>
    /// <exception cref="DataFormatException">The key is missing or is not a bytes list of one value.</exception>
    public static ReadOnlyMemory<byte> GetBytes(FeatureSpec spec, Features features, RecordLocation location)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(features);
        bool single = !spec.InSequence && (spec.Kind is FeatureKind.Image or FeatureKind.Text ||
            (spec.Kind == FeatureKind.Tensor && spec.DType == DType.Bytes && spec.Shape.Length == 0));
        if (!single)
            throw new ArgumentException($"Feature '{spec.Key}' ({spec}) is not stored as one byte string.", nameof(spec));
        return SingleBytes(spec, features, location, spec.Key).Memory;
    }

    /// <summary>The actual shape of this example's value of <paramref name="spec"/>.</summary>
    /// <param name="spec">The feature.</param>
    /// <param name="features">The parsed Example's features.</param>
    /// <param name="location">The record, for messages.</param>
    /// <param name="images">Needed for an Image feature whose declared shape has unknown dimensions.</param>
    /// <exception cref="DataFormatException">Missing key, wrong list kind, wrong value count, bad zlib data.</exception>
    /// <exception cref="NotSupportedException">A shape or type TFDS itself cannot parse, or out of scope.</exception>
    public static int[] MeasureShape(FeatureSpec spec, Features features, RecordLocation location, IEncodedImageDecoder? images = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(features);
        return spec.Kind switch
        {
            FeatureKind.Image => MeasureImage(spec, features, location, images),
            FeatureKind.Text => [SingleBytes(spec, features, location, spec.Key).Length],
            _ => Plan(spec, features, location, needData: false).Shape,
        };
    }

    /// <summary>
    /// Decodes the value into <paramref name="destination"/>, which must be exactly <see cref="ByteCount"/> of the
    /// measured shape. Returns the number of bytes written.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> has the wrong length.</exception>
    /// <exception cref="ArgumentNullException">An Image feature without <paramref name="images"/>.</exception>
    /// <exception cref="DataFormatException">Missing key, wrong list kind, wrong value count, bad zlib data.</exception>
    /// <exception cref="NotSupportedException">A shape or type TFDS itself cannot parse, or out of scope.</exception>
    public static int DecodeInto(FeatureSpec spec, Features features, RecordLocation location, Span<byte> destination, IEncodedImageDecoder? images = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(features);
        if (spec.Kind == FeatureKind.Image)
        {
            ArgumentNullException.ThrowIfNull(images);
            RefuseImageSequence(spec);
            var encoded = SingleBytes(spec, features, location, spec.Key);
            images.DecodeInto(spec, encoded.Span, destination, location);
            return destination.Length;
        }
        if (spec.Kind == FeatureKind.Text)
        {
            var text = SingleBytes(spec, features, location, spec.Key);
            CheckDestination(spec, destination, text.Length, [text.Length]);
            text.Span.CopyTo(destination);
            return text.Length;
        }
        var plan = Plan(spec, features, location, needData: true);
        int bytes = ByteCount(spec, plan.Shape);
        CheckDestination(spec, destination, bytes, plan.Shape);
        destination = destination[..bytes];
        switch (plan.Source)
        {
            case Source.Missing:
                FillMinimum(spec.DType, destination);
                break;
            case Source.Int64:
                WriteInt64s(spec.DType, plan.Feature!.Int64List.Value, destination);
                break;
            case Source.Float:
                WriteFloats(spec.DType, plan.Feature!.FloatList.Value, destination);
                break;
            case Source.RawBytes:
                plan.Raw.Span.CopyTo(destination);
                if (spec.DType == DType.Bool) NormaliseBools(destination);
                break;
            case Source.Zlib:
                Inflate(spec, plan.Raw, destination, location, plan.RawKey);
                if (spec.DType == DType.Bool) NormaliseBools(destination);
                break;
            case Source.String:
                plan.Raw.Span.CopyTo(destination);
                break;
        }
        return bytes;
    }

    /// <summary>Measures and decodes into a new array (convenient for tests and small data).</summary>
    /// <exception cref="DataFormatException">As <see cref="DecodeInto"/>.</exception>
    public static DecodedFeature Decode(FeatureSpec spec, Features features, RecordLocation location, IEncodedImageDecoder? images = null)
    {
        int[] shape = MeasureShape(spec, features, location, images);
        var data = new byte[ByteCount(spec, shape)];
        DecodeInto(spec, features, location, data, images);
        return new DecodedFeature(shape, data);
    }

    // ---- planning: where the values are and what shape they make ----

    private enum Source { Missing, Int64, Float, RawBytes, Zlib, String }

    private readonly record struct ValuePlan(int[] Shape, Source Source, Feature? Feature, ReadOnlyMemory<byte> Raw, string RawKey);

    private static ValuePlan Plan(FeatureSpec spec, Features features, RecordLocation location, bool needData)
    {
        int[] declared = spec.StorageShape;
        DType dtype = spec.StorageDType;
        if (spec.Kind == FeatureKind.ClassLabel && spec.DType != DType.Int64)
            throw new NotSupportedException($"Feature '{spec.Key}': a ClassLabel decodes to int64, but its spec says {DTypes.Name(spec.DType)}.");
        if (spec.Kind == FeatureKind.BoundingBox && spec.DType != DType.Float32)
            throw new NotSupportedException($"Feature '{spec.Key}': a BBoxFeature decodes to float32, but its spec says {DTypes.Name(spec.DType)}.");

        if (dtype == DType.Bytes)
        {
            if (declared.Length != 0 || spec.InSequence || spec.Encoding != TensorEncoding.None)
                throw new NotSupportedException($"Feature '{spec.Key}' ({spec}): only scalar string Tensors are supported (one byte string per example).");
            var s = SingleBytes(spec, features, location, spec.Key);
            return new ValuePlan([s.Length], Source.String, null, s.Memory, spec.Key);
        }

        int unknown = 0;
        foreach (int d in declared) if (d < 0) unknown++;

        if (spec.Encoding == TensorEncoding.None)
        {
            if (unknown > 1 || (unknown == 1 && declared[0] >= 0))
                throw new NotSupportedException(
                    $"Feature '{spec.Key}' ({spec}): with encoding 'none' only the first dimension may be unknown; TFDS cannot parse this shape either.");
            var kind = FeatureSpec.IsIntegerOrBool(dtype) ? Feature.KindOneofCase.Int64List : Feature.KindOneofCase.FloatList;
            bool firstUnknown = unknown == 1;
            if (!features.Feature.TryGetValue(spec.Key, out var f))
            {
                if (firstUnknown)
                {
                    int[] empty = (int[])declared.Clone();
                    empty[0] = 0;
                    return new ValuePlan(empty, Source.Missing, null, default, spec.Key);
                }
                if (spec.Optional) return new ValuePlan((int[])declared.Clone(), Source.Missing, null, default, spec.Key);
                throw MissingKey(spec, features, location, spec.Key);
            }
            // A Feature with no kind set reads as an empty list of any kind (TFDS_FORMAT 7.2).
            int count = f.KindCase == Feature.KindOneofCase.None ? 0 : ExpectKind(spec, f, kind, location, spec.Key) switch
            {
                var g when kind == Feature.KindOneofCase.Int64List => g.Int64List.Value.Count,
                var g => g.FloatList.Value.Count,
            };
            long inner = 1;
            for (int i = firstUnknown ? 1 : 0; i < declared.Length; i++) inner *= declared[i];
            int[] shape = (int[])declared.Clone();
            if (firstUnknown)
            {
                if (inner == 0 ? count != 0 : count % inner != 0)
                    throw CountMismatch(spec, location, spec.Key, $"a multiple of {inner} values (shape ({Dims(declared)}))", count);
                shape[0] = inner == 0 ? 0 : (int)(count / inner);
            }
            else if (count != inner)
            {
                throw CountMismatch(spec, location, spec.Key, $"{inner} values (shape ({Dims(declared)}))", count);
            }
            if (f.KindCase == Feature.KindOneofCase.None) return new ValuePlan(shape, Source.Missing, null, default, spec.Key);
            return new ValuePlan(shape, kind == Feature.KindOneofCase.Int64List ? Source.Int64 : Source.Float, f, default, spec.Key);
        }

        // encoding: bytes / zlib
        Source src = spec.Encoding == TensorEncoding.Zlib ? Source.Zlib : Source.RawBytes;
        int item = DTypes.SizeOf(dtype);
        if (unknown >= 2)
        {
            string shapeKey = spec.Key + "/shape", valueKey = spec.Key + "/value";
            if (!features.Feature.TryGetValue(shapeKey, out var sf)) throw MissingKey(spec, features, location, shapeKey);
            var dims = ExpectKind(spec, sf, Feature.KindOneofCase.Int64List, location, shapeKey).Int64List.Value;
            if (dims.Count != declared.Length) throw CountMismatch(spec, location, shapeKey, $"{declared.Length} dimensions (the rank of ({Dims(declared)}))", dims.Count);
            int[] shape = new int[declared.Length];
            for (int i = 0; i < shape.Length; i++)
            {
                long d = dims[i];
                if (d < 0 || d > int.MaxValue || (declared[i] >= 0 && d != declared[i]))
                    throw new DataFormatException(
                        $"{location}: feature '{shapeKey}' holds shape ({string.Join(", ", dims)}), which does not fit the declared shape ({Dims(declared)}) from features.json; the data and features.json disagree: regenerate the dataset.",
                        location.FilePath, location.Offset, shapeKey);
                shape[i] = (int)d;
            }
            var value = SingleBytes(spec, features, location, valueKey);
            long expect = ByteCount(spec, shape);
            if (src == Source.RawBytes && value.Length != expect)
                throw CountMismatch(spec, location, valueKey, $"{expect} bytes (shape ({Dims(shape)}) x {item})", value.Length, "bytes");
            if (src == Source.Zlib && !needData)
            {
                long n = InflatedLength(spec, value.Memory, location, valueKey);
                if (n != expect) throw CountMismatch(spec, location, valueKey, $"{expect} bytes after zlib (shape ({Dims(shape)}) x {item})", n, "bytes");
            }
            return new ValuePlan(shape, src, null, value.Memory, valueKey);
        }
        else
        {
            if (!features.Feature.TryGetValue(spec.Key, out _) && spec.Optional && unknown == 0)
                return new ValuePlan((int[])declared.Clone(), Source.Missing, null, default, spec.Key);
            var value = SingleBytes(spec, features, location, spec.Key);
            long known = item;
            foreach (int d in declared) if (d >= 0) known *= d;
            // A fixed-shape zlib value is length-checked while inflating into the destination: inflate once only.
            long byteLength = src != Source.Zlib ? value.Length
                : needData && unknown == 0 ? known
                : InflatedLength(spec, value.Memory, location, spec.Key);
            string after = src == Source.Zlib ? " after zlib" : "";
            int[] shape = (int[])declared.Clone();
            if (unknown == 1)
            {
                if (known == 0 ? byteLength != 0 : byteLength % known != 0)
                    throw CountMismatch(spec, location, spec.Key, $"a multiple of {known} bytes{after} (shape ({Dims(declared)}) x {item})", byteLength, "bytes");
                long k = known == 0 ? 0 : byteLength / known;
                if (k > int.MaxValue) throw CountMismatch(spec, location, spec.Key, "at most 2 GiB", byteLength, "bytes");
                shape[Array.FindIndex(declared, d => d < 0)] = (int)k;
            }
            else if (byteLength != known)
            {
                throw CountMismatch(spec, location, spec.Key, $"{known} bytes{after} (shape ({Dims(declared)}) x {item})", byteLength, "bytes");
            }
            return new ValuePlan(shape, src, null, value.Memory, spec.Key);
        }
    }

    private static int[] MeasureImage(FeatureSpec spec, Features features, RecordLocation location, IEncodedImageDecoder? images)
    {
        RefuseImageSequence(spec);
        var encoded = SingleBytes(spec, features, location, spec.Key);
        if (spec.IsFixedShape) return (int[])spec.Shape.Clone();
        if (images is null)
            throw new ArgumentNullException(nameof(images), $"Feature '{spec.Key}' ({spec}) has unknown dimensions: measuring it needs an image decoder.");
        return images.MeasureShape(spec, encoded.Span, location);
    }

    private static void RefuseImageSequence(FeatureSpec spec)
    {
        if (spec.InSequence)
            throw new NotSupportedException($"Feature '{spec.Key}' ({spec}): images inside a Sequence are not supported.");
    }

    // ---- lookups and messages ----

    private static Feature Require(FeatureSpec spec, Features features, RecordLocation location, string key)
    {
        if (features.Feature.TryGetValue(key, out var f)) return f;
        throw MissingKey(spec, features, location, key);
    }

    private static ByteString SingleBytes(FeatureSpec spec, Features features, RecordLocation location, string key)
    {
        var f = Require(spec, features, location, key);
        var list = ExpectKind(spec, f, Feature.KindOneofCase.BytesList, location, key).BytesList.Value;
        if (list.Count != 1) throw CountMismatch(spec, location, key, "1 byte string", list.Count);
        return list[0];
    }

    private static Feature ExpectKind(FeatureSpec spec, Feature f, Feature.KindOneofCase kind, RecordLocation location, string key)
    {
        if (f.KindCase == kind) return f;
        throw new DataFormatException(
            $"{location}: feature '{key}' ({spec}) expected {KindName(kind)}, found {KindName(f.KindCase)}; the dtype in features.json " +
            "does not match the data: check that features.json belongs to these shards, or regenerate the dataset.",
            location.FilePath, location.Offset, key);
    }

    private static DataFormatException MissingKey(FeatureSpec spec, Features features, RecordLocation location, string key)
    {
        var present = features.Feature.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        return new DataFormatException(
            $"{location}: feature '{key}' ({spec}) is missing from the Example; features.json has a key the data lacks. " +
            $"Keys present: {(present.Count == 0 ? "(none)" : string.Join(", ", present))}. Check that features.json belongs to these shards, or regenerate the dataset.",
            location.FilePath, location.Offset, key);
    }

    private static DataFormatException CountMismatch(FeatureSpec spec, RecordLocation location, string key, string expected, long found, string unit = "values") =>
        new($"{location}: feature '{key}' ({spec}) expected {expected}, found {found} {unit}; the shape or dtype in features.json " +
            "does not match the data: check that features.json belongs to these shards, or regenerate the dataset.",
            location.FilePath, location.Offset, key);

    private static void CheckDestination(FeatureSpec spec, Span<byte> destination, int bytes, int[] shape)
    {
        if (destination.Length != bytes)
            throw new ArgumentException(
                $"Feature '{spec.Key}': the destination holds {destination.Length} bytes, but this example's value of shape ({Dims(shape)}) needs exactly {bytes}; call MeasureShape first.",
                nameof(destination));
    }

    private static string KindName(Feature.KindOneofCase kind) => kind switch
    {
        Feature.KindOneofCase.BytesList => "bytes_list",
        Feature.KindOneofCase.FloatList => "float_list",
        Feature.KindOneofCase.Int64List => "int64_list",
        _ => "no list (kind not set)",
    };

    private static string Dims(IEnumerable<int> shape) => string.Join(", ", shape);


    // ---- value conversion (TFDS_FORMAT 5.3) ----

    private static void WriteInt64s(DType dtype, Google.Protobuf.Collections.RepeatedField<long> values, Span<byte> d)
    {
        int n = values.Count;
        switch (dtype)
        {
            case DType.Bool: for (int i = 0; i < n; i++) d[i] = values[i] != 0 ? (byte)1 : (byte)0; break;
            case DType.UInt8: for (int i = 0; i < n; i++) d[i] = unchecked((byte)values[i]); break;
            case DType.Int8: for (int i = 0; i < n; i++) d[i] = unchecked((byte)(sbyte)values[i]); break;
            case DType.UInt16: for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt16LittleEndian(d[(2 * i)..], unchecked((ushort)values[i])); break;
            case DType.Int16: for (int i = 0; i < n; i++) BinaryPrimitives.WriteInt16LittleEndian(d[(2 * i)..], unchecked((short)values[i])); break;
            case DType.UInt32: for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt32LittleEndian(d[(4 * i)..], unchecked((uint)values[i])); break;
            case DType.Int32: for (int i = 0; i < n; i++) BinaryPrimitives.WriteInt32LittleEndian(d[(4 * i)..], unchecked((int)values[i])); break;
            case DType.UInt64: for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt64LittleEndian(d[(8 * i)..], unchecked((ulong)values[i])); break;
            case DType.Int64: for (int i = 0; i < n; i++) BinaryPrimitives.WriteInt64LittleEndian(d[(8 * i)..], values[i]); break;
            default: throw new NotSupportedException($"dtype {DTypes.Name(dtype)} is not stored as int64.");
        }
    }

    private static void WriteFloats(DType dtype, Google.Protobuf.Collections.RepeatedField<float> values, Span<byte> d)
    {
        int n = values.Count;
        switch (dtype)
        {
            case DType.Float32: for (int i = 0; i < n; i++) BinaryPrimitives.WriteSingleLittleEndian(d[(4 * i)..], values[i]); break;
            case DType.Float64: for (int i = 0; i < n; i++) BinaryPrimitives.WriteDoubleLittleEndian(d[(8 * i)..], values[i]); break;
            // (Half) rounds to nearest even, as TensorFlow's cast does.
            case DType.Float16: for (int i = 0; i < n; i++) BinaryPrimitives.WriteHalfLittleEndian(d[(2 * i)..], (Half)values[i]); break;
            default: throw new NotSupportedException($"dtype {DTypes.Name(dtype)} is not stored as float.");
        }
    }

    private static void NormaliseBools(Span<byte> d)
    {
        for (int i = 0; i < d.Length; i++) if (d[i] > 1) d[i] = 1;
    }

    // Default for a missing optional value: the dtype's minimum (TFDS_FORMAT 4.3).
    private static void FillMinimum(DType dtype, Span<byte> d)
    {
        int size = DTypes.SizeOf(dtype);
        Span<byte> one = stackalloc byte[8];
        switch (dtype)
        {
            case DType.UInt8 or DType.UInt16 or DType.UInt32 or DType.UInt64 or DType.Bool: d.Clear(); return;
            case DType.Int8: one[0] = 0x80; break;
            case DType.Int16: BinaryPrimitives.WriteInt16LittleEndian(one, short.MinValue); break;
            case DType.Int32: BinaryPrimitives.WriteInt32LittleEndian(one, int.MinValue); break;
            case DType.Int64: BinaryPrimitives.WriteInt64LittleEndian(one, long.MinValue); break;
            case DType.Float16: BinaryPrimitives.WriteHalfLittleEndian(one, Half.MinValue); break;
            case DType.Float32: BinaryPrimitives.WriteSingleLittleEndian(one, float.MinValue); break;
            case DType.Float64: BinaryPrimitives.WriteDoubleLittleEndian(one, double.MinValue); break;
            default: d.Clear(); return;
        }
        for (int i = 0; i + size <= d.Length; i += size) one[..size].CopyTo(d[i..]);
    }

    private static Stream OpenZlib(ReadOnlyMemory<byte> compressed)
    {
        Stream inner = MemoryMarshal.TryGetArray(compressed, out var seg)
            ? new MemoryStream(seg.Array!, seg.Offset, seg.Count, writable: false)
            : new MemoryStream(compressed.ToArray(), writable: false);
        return new ZLibStream(inner, CompressionMode.Decompress);
    }

    private static long InflatedLength(FeatureSpec spec, ReadOnlyMemory<byte> compressed, RecordLocation location, string key)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            using var z = OpenZlib(compressed);
            long total = 0;
            int n;
            while ((n = z.Read(scratch, 0, scratch.Length)) > 0) total += n;
            return total;
        }
        catch (InvalidDataException e)
        {
            throw BadZlib(spec, location, key, e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static void Inflate(FeatureSpec spec, ReadOnlyMemory<byte> compressed, Span<byte> destination, RecordLocation location, string key)
    {
        try
        {
            using var z = OpenZlib(compressed);
            int got = 0;
            while (got < destination.Length)
            {
                int n = z.Read(destination[got..]);
                if (n == 0) break;
                got += n;
            }
            Span<byte> probe = stackalloc byte[1];
            int extra = got == destination.Length ? z.Read(probe) : 0;
            if (got != destination.Length || extra != 0)
                throw CountMismatch(spec, location, key, $"{destination.Length} bytes after zlib", extra != 0 ? destination.Length + 1L : got, extra != 0 ? "or more bytes" : "bytes");
        }
        catch (InvalidDataException e)
        {
            throw BadZlib(spec, location, key, e);
        }
    }

    private static DataFormatException BadZlib(FeatureSpec spec, RecordLocation location, string key, Exception e) =>
        new($"{location}: feature '{key}' ({spec}) expected a zlib stream (encoding: zlib), but it does not inflate ({e.Message}); regenerate the dataset.",
            location.FilePath, location.Offset, key, e);
}
