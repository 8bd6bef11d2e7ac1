namespace Samplers;

/// <summary>Element type of example data. Names follow NumPy/TFDS (<c>uint8</c>, <c>float32</c>, ...).</summary>
public enum DType : byte
{
    /// <summary>8-bit unsigned integer (<c>uint8</c>, images).</summary>
    UInt8 = 0,
    /// <summary>8-bit signed integer.</summary>
    Int8 = 1,
    /// <summary>16-bit unsigned integer (16-bit PNG).</summary>
    UInt16 = 2,
    /// <summary>16-bit signed integer.</summary>
    Int16 = 3,
    /// <summary>32-bit unsigned integer.</summary>
    UInt32 = 4,
    /// <summary>32-bit signed integer.</summary>
    Int32 = 5,
    /// <summary>64-bit unsigned integer.</summary>
    UInt64 = 6,
    /// <summary>64-bit signed integer.</summary>
    Int64 = 7,
    /// <summary>IEEE half precision.</summary>
    Float16 = 8,
    /// <summary>IEEE single precision.</summary>
    Float32 = 9,
    /// <summary>IEEE double precision.</summary>
    Float64 = 10,
    /// <summary>Boolean, one byte (0 or 1).</summary>
    Bool = 11,
    /// <summary>Raw bytes of variable length (TFDS <c>Text</c> / <c>string</c>); one byte per element.</summary>
    Bytes = 12,
}

/// <summary>Facts about <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(DType dtype) => dtype switch
    {
        DType.UInt8 or DType.Int8 or DType.Bool or DType.Bytes => 1,
        DType.UInt16 or DType.Int16 or DType.Float16 => 2,
        DType.UInt32 or DType.Int32 or DType.Float32 => 4,
        DType.UInt64 or DType.Int64 or DType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>The NumPy/TFDS name (<c>uint8</c>, <c>float32</c>, <c>string</c> for Bytes).</summary>
    public static string Name(DType dtype) => dtype switch
    {
        DType.UInt8 => "uint8",
        DType.Int8 => "int8",
        DType.UInt16 => "uint16",
        DType.Int16 => "int16",
        DType.UInt32 => "uint32",
        DType.Int32 => "int32",
        DType.UInt64 => "uint64",
        DType.Int64 => "int64",
        DType.Float16 => "float16",
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        DType.Bool => "bool",
        DType.Bytes => "string",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>Parses a NumPy/TFDS dtype name; returns false for names we do not support (e.g. <c>complex64</c>).</summary>
    public static bool TryParse(string name, out DType dtype)
    {
        switch (name)
        {
            case "uint8": dtype = DType.UInt8; return true;
            case "int8": dtype = DType.Int8; return true;
            case "uint16": dtype = DType.UInt16; return true;
            case "int16": dtype = DType.Int16; return true;
            case "uint32": dtype = DType.UInt32; return true;
            case "int32": dtype = DType.Int32; return true;
            case "uint64": dtype = DType.UInt64; return true;
            case "int64": dtype = DType.Int64; return true;
            case "float16": dtype = DType.Float16; return true;
            case "float32": dtype = DType.Float32; return true;
            case "float64": dtype = DType.Float64; return true;
            case "bool": dtype = DType.Bool; return true;
            case "string": dtype = DType.Bytes; return true;
            default: dtype = default; return false;
        }
    }
}
