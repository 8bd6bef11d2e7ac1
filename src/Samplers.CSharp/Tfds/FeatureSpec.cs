
namespace Samplers.Tfds;

/// <summary>The kind of a TFDS feature (the last component of its <c>pythonClassName</c>).</summary>
public enum FeatureKind
{
    /// <summary><c>Image</c>: an encoded PNG/JPEG, decoded to (H, W, C).</summary>
    Image,
    /// <summary><c>ClassLabel</c>: an int64 label.</summary>
    ClassLabel,
    /// <summary><c>Tensor</c> / <c>Scalar</c>: numbers of a dtype and shape.</summary>
    Tensor,
    /// <summary><c>Text</c>: raw bytes.</summary>
    Text,
    /// <summary><c>BBoxFeature</c>: float32 (4,).</summary>
    BoundingBox,
}

/// <summary>How a Tensor's values are stored in the Example.</summary>
public enum TensorEncoding
{
    /// <summary>As an int64/float/bytes list of values.</summary>
    None,
    /// <summary>As one byte string of little-endian elements.</summary>
    Bytes,
    /// <summary>As one zlib-compressed byte string of little-endian elements.</summary>
    Zlib,
}

/// <summary>
/// One leaf feature of a dataset, addressed by its flat key (FeaturesDict names joined by <c>/</c>; see
/// TFDS_FORMAT.md 5.1). Parsed from <c>features.json</c> by the catalog, used by the record decoder.
/// </summary>
/// <param name="Key">The flat key in the <c>tf.train.Example</c> (e.g. <c>image</c>, <c>objects/label</c>).</param>
/// <param name="Kind">The feature kind.</param>
/// <param name="PythonClassName">The fully qualified TFDS class, for messages.</param>
/// <param name="DType">Decoded element type.</param>
/// <param name="Shape">Decoded shape; -1 marks a dimension that varies per example. Empty for scalars.</param>
/// <param name="Encoding">Tensor storage encoding.</param>
/// <param name="NumClasses">ClassLabel: the number of classes.</param>
/// <param name="ClassNames">ClassLabel: names from the sidecar labels file, or "0".."N-1".</param>
/// <param name="EncodingFormat">Image: the declared <c>encodingFormat</c> (a hint only; bytes are sniffed).</param>
/// <param name="InSequence">True when the feature sits inside a <c>Sequence</c> (its Shape then starts with the sequence length).</param>
/// <param name="Optional">Tensor: absent values are allowed.</param>
public sealed record FeatureSpec(
    string Key,
    FeatureKind Kind,
    string PythonClassName,
    DType DType,
    int[] Shape,
    TensorEncoding Encoding = TensorEncoding.None,
    long NumClasses = 0,
    IReadOnlyList<string>? ClassNames = null,
    string? EncodingFormat = null,
    bool InSequence = false,
    bool Optional = false)
{
    /// <summary>True when every dimension is known.</summary>
    public bool IsFixedShape => Array.TrueForAll(Shape, d => d >= 0);

    // The TFDS rules about a feature's decoded form live here once; the loader (which picks x and y and lays out the
    // table) and the record decoder (which writes the values) both read them.

    /// <summary>The element type a decoded value is stored as: ClassLabel values are int64 and BBoxes float32 whatever
    /// the spec's dtype says (TFDS_FORMAT.md 5.3); every other kind keeps <see cref="DType"/>.</summary>
    public DType StorageDType => Kind switch
    {
        FeatureKind.ClassLabel => DType.Int64,
        FeatureKind.BoundingBox => DType.Float32,
        _ => DType,
    };

    /// <summary>The shape a decoded value is stored as: a BBoxFeature declared as a scalar holds 4 floats ((N, 4) inside a
    /// Sequence); every other feature keeps <see cref="Shape"/> (the same array: do not change it).</summary>
    public int[] StorageShape =>
        Kind == FeatureKind.BoundingBox && Shape.Length == 0 ? (InSequence ? [-1, 4] : [4]) : Shape;

    /// <summary>Whether the feature can hold labels (<c>y_key</c>): a scalar ClassLabel, or a scalar integer or bool Tensor
    /// stored as a plain value list.</summary>
    public bool IsLabel => Shape.Length == 0 && !InSequence && Encoding == TensorEncoding.None &&
        (Kind == FeatureKind.ClassLabel || (Kind == FeatureKind.Tensor && IsIntegerOrBool(DType)));

    /// <summary>Whether the feature can hold examples (<c>x_key</c>): numbers (an Image, a numeric Tensor, a ClassLabel or a BBox).</summary>
    public bool IsNumeric => Kind switch
    {
        FeatureKind.Image or FeatureKind.ClassLabel or FeatureKind.BoundingBox => true,
        FeatureKind.Tensor => DType != DType.Bytes,
        _ => false,
    };

    /// <summary>Integer and bool dtypes are stored in an Example's int64 list; floats in its float list.</summary>
    internal static bool IsIntegerOrBool(DType t) => t is DType.Bool or DType.Int8 or DType.Int16 or DType.Int32 or DType.Int64
        or DType.UInt8 or DType.UInt16 or DType.UInt32 or DType.UInt64;

    /// <summary>A short description for messages, e.g. <c>image: Image uint8 (28, 28, 1)</c>.</summary>
    public override string ToString() => $"{Key}: {Kind} {DTypes.Name(DType)} ({string.Join(", ", Shape)})";
}
