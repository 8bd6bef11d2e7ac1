using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Google.Protobuf;
using Samplers.Tfds.Protos;

namespace Samplers.Tfds;

/// <summary>
/// Builds a <c>tf.train.Example</c> from typed values, stored the way TFDS stores each feature
/// (TFDS_FORMAT.md 5.2): encoded image bytes, int64 labels, text, bounding boxes and tensors in every encoding.
/// Used by tests to build fixtures and by the dataset generator.
/// </summary>
/// <remarks>Adding a key twice replaces the earlier value. Not thread-safe.</remarks>
public sealed class ExampleBuilder
{
    private readonly Example _example = new() { Features = new Features() };

    /// <summary>Sets <paramref name="key"/> to a bytes list holding <paramref name="values"/>.</summary>
    public ExampleBuilder AddBytes(string key, params byte[][] values)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(values);
        var list = new BytesList();
        foreach (var v in values) list.Value.Add(ByteString.CopyFrom(v ?? throw new ArgumentNullException(nameof(values), $"Value for key '{key}' is null.")));
        _example.Features.Feature[key] = new Feature { BytesList = list };
        return this;
    }

    /// <summary>Sets an Image feature: the encoded PNG/JPEG file bytes.</summary>
    public ExampleBuilder AddImage(string key, byte[] encoded) => AddBytes(key, encoded);

    /// <summary>Sets a Text feature: the UTF-8 bytes of <paramref name="text"/>.</summary>
    public ExampleBuilder AddText(string key, string text) => AddBytes(key, Encoding.UTF8.GetBytes(text));

    /// <summary>Sets a ClassLabel feature (int64; -1 means "no label").</summary>
    public ExampleBuilder AddLabel(string key, long label) => AddInt64s(key, label);

    /// <summary>Sets <paramref name="key"/> to an int64 list.</summary>
    public ExampleBuilder AddInt64s(string key, params long[] values)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(values);
        var list = new Int64List();
        list.Value.Add(values);
        _example.Features.Feature[key] = new Feature { Int64List = list };
        return this;
    }

    /// <summary>Sets <paramref name="key"/> to a float list.</summary>
    public ExampleBuilder AddFloats(string key, params float[] values)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(values);
        var list = new FloatList();
        list.Value.Add(values);
        _example.Features.Feature[key] = new Feature { FloatList = list };
        return this;
    }

    /// <summary>Sets a BBoxFeature: <c>[ymin, xmin, ymax, xmax]</c> as 4 floats.</summary>
    public ExampleBuilder AddBoundingBox(string key, float ymin, float xmin, float ymax, float xmax) => AddFloats(key, ymin, xmin, ymax, xmax);

    /// <summary>
    /// Sets a Tensor feature from row-major <paramref name="values"/> as <paramref name="spec"/> says: with
    /// <c>encoding: none</c> as an int64 or float list (cast as TFDS does: float64 narrows to float32), with
    /// <c>bytes</c>/<c>zlib</c> as little-endian bytes (zlib-compressed), and with two or more unknown dimensions as
    /// <c>&lt;key&gt;/shape</c> + <c>&lt;key&gt;/value</c>.
    /// </summary>
    /// <param name="spec">The Tensor feature.</param>
    /// <param name="values">A one-dimensional array whose element type matches the spec's dtype: byte, sbyte,
    /// ushort, short, uint, int, ulong, long, Half, float, double or bool.</param>
    /// <param name="shape">The value's actual shape; required when the declared shape has unknown dimensions.</param>
    /// <exception cref="ArgumentException">The array type does not match the dtype, or the count does not match the shape.</exception>
    public ExampleBuilder AddTensor(FeatureSpec spec, Array values, int[]? shape = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(values);
        shape ??= spec.Shape;
        if (Array.Exists(shape, d => d < 0))
            throw new ArgumentException($"Feature '{spec.Key}' has unknown dimensions ({string.Join(", ", spec.Shape)}); pass the value's actual shape.", nameof(shape));
        if (shape.Length != spec.Shape.Length || shape.Where((d, i) => spec.Shape[i] >= 0 && spec.Shape[i] != d).Any())
            throw new ArgumentException($"Shape ({string.Join(", ", shape)}) does not fit feature '{spec.Key}' declared ({string.Join(", ", spec.Shape)}).", nameof(shape));
        long count = 1;
        foreach (int d in shape) count *= d;
        if (values.Length != count)
            throw new ArgumentException($"Feature '{spec.Key}': {values.Length} values given for shape ({string.Join(", ", shape)}), which holds {count}.", nameof(values));
        CheckElementType(spec, values);

        if (spec.Encoding == TensorEncoding.None)
        {
            if (spec.DType is DType.Float16 or DType.Float32 or DType.Float64)
                return AddFloats(spec.Key, ToFloats(values));
            return AddInt64s(spec.Key, ToInt64s(values));
        }

        byte[] raw = ToLittleEndianBytes(spec.DType, values);
        if (spec.Encoding == TensorEncoding.Zlib)
        {
            using var ms = new MemoryStream();
            using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
            raw = ms.ToArray();
        }
        int unknown = spec.Shape.Count(d => d < 0);
        if (unknown >= 2)
        {
            AddInt64s(spec.Key + "/shape", shape.Select(d => (long)d).ToArray());
            return AddBytes(spec.Key + "/value", raw);
        }
        return AddBytes(spec.Key, raw);
    }

    /// <summary>Removes <paramref name="key"/> (to build records that lack a key).</summary>
    public ExampleBuilder Remove(string key)
    {
        _example.Features.Feature.Remove(key);
        return this;
    }

    /// <summary>The message built so far (a copy).</summary>
    internal Example ToExample() => _example.Clone();

    /// <summary>The serialized Example, ready to be one TFRecord record.</summary>
    public byte[] ToByteArray() => _example.ToByteArray();

    private static void CheckElementType(FeatureSpec spec, Array values)
    {
        Type want = spec.DType switch
        {
            DType.UInt8 => typeof(byte),
            DType.Int8 => typeof(sbyte),
            DType.UInt16 => typeof(ushort),
            DType.Int16 => typeof(short),
            DType.UInt32 => typeof(uint),
            DType.Int32 => typeof(int),
            DType.UInt64 => typeof(ulong),
            DType.Int64 => typeof(long),
            DType.Float16 => typeof(Half),
            DType.Float32 => typeof(float),
            DType.Float64 => typeof(double),
            DType.Bool => typeof(bool),
            _ => throw new ArgumentException($"Feature '{spec.Key}': dtype {DTypes.Name(spec.DType)} is not a numeric Tensor; use AddBytes.", nameof(spec)),
        };
        Type got = values.GetType().GetElementType()!;
        if (values.Rank != 1 || got != want)
            throw new ArgumentException($"Feature '{spec.Key}' is {DTypes.Name(spec.DType)}: pass a one-dimensional {want.Name}[], not {values.GetType().Name}.", nameof(values));
    }

    private static long[] ToInt64s(Array values) => values switch
    {
        byte[] a => a.Select(v => (long)v).ToArray(),
        sbyte[] a => a.Select(v => (long)v).ToArray(),
        ushort[] a => a.Select(v => (long)v).ToArray(),
        short[] a => a.Select(v => (long)v).ToArray(),
        uint[] a => a.Select(v => (long)v).ToArray(),
        int[] a => a.Select(v => (long)v).ToArray(),
        ulong[] a => a.Select(v => unchecked((long)v)).ToArray(),
        long[] a => a,
        bool[] a => a.Select(v => v ? 1L : 0L).ToArray(),
        _ => throw new ArgumentException($"{values.GetType().Name} is not an integer array.", nameof(values)),
    };

    private static float[] ToFloats(Array values) => values switch
    {
        Half[] a => a.Select(v => (float)v).ToArray(),
        float[] a => a,
        double[] a => a.Select(v => (float)v).ToArray(),
        _ => throw new ArgumentException($"{values.GetType().Name} is not a float array.", nameof(values)),
    };

    private static byte[] ToLittleEndianBytes(DType dtype, Array values)
    {
        int size = DTypes.SizeOf(dtype);
        var raw = new byte[values.Length * size];
        var d = raw.AsSpan();
        switch (values)
        {
            case byte[] a: a.CopyTo(raw, 0); break;
            case sbyte[] a: for (int i = 0; i < a.Length; i++) raw[i] = unchecked((byte)a[i]); break;
            case bool[] a: for (int i = 0; i < a.Length; i++) raw[i] = a[i] ? (byte)1 : (byte)0; break;
            case ushort[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(d[(2 * i)..], a[i]); break;
            case short[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteInt16LittleEndian(d[(2 * i)..], a[i]); break;
            case Half[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(d[(2 * i)..], a[i]); break;
            case uint[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(d[(4 * i)..], a[i]); break;
            case int[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(d[(4 * i)..], a[i]); break;
            case float[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(d[(4 * i)..], a[i]); break;
            case ulong[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(d[(8 * i)..], a[i]); break;
            case long[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(d[(8 * i)..], a[i]); break;
            case double[] a: for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(d[(8 * i)..], a[i]); break;
            default: throw new ArgumentException($"{values.GetType().Name} is not a supported element array.", nameof(values));
        }
        return raw;
    }
}
