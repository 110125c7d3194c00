namespace OmniKernels.Weights;

/// <summary>The element types of a safetensors tensor this loader reads and writes (all little-endian).</summary>
public enum SafetensorsDType
{
    /// <summary>IEEE 754 binary64.</summary>
    F64,
    /// <summary>IEEE 754 binary32.</summary>
    F32,
    /// <summary>IEEE 754 binary16 (<see cref="Half"/>).</summary>
    F16,
    /// <summary>bfloat16: the upper 16 bits of a binary32.</summary>
    BF16,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>One byte per element, 0 or 1.</summary>
    BOOL,
}

/// <summary>Sizes and names of <see cref="SafetensorsDType"/> values.</summary>
public static class SafetensorsDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F64 or SafetensorsDType.I64 => 8,
        SafetensorsDType.F32 or SafetensorsDType.I32 => 4,
        SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.I16 => 2,
        SafetensorsDType.I8 or SafetensorsDType.U8 or SafetensorsDType.BOOL => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>True for the floating-point types <see cref="SafetensorsFile.ReadAsFloat32"/> converts.</summary>
    public static bool IsFloat(this SafetensorsDType dtype) =>
        dtype is SafetensorsDType.F64 or SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16;

    /// <summary>The name the header uses (<c>"F32"</c>, <c>"BF16"</c>, ...).</summary>
    public static string Name(this SafetensorsDType dtype) =>
        Enum.IsDefined(dtype) ? dtype.ToString() : throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype");

    /// <summary>Parses a header dtype name, case-sensitively as the format specifies.</summary>
    public static bool TryParse(string? name, out SafetensorsDType dtype)
    {
        dtype = name switch
        {
            "F64" => SafetensorsDType.F64,
            "F32" => SafetensorsDType.F32,
            "F16" => SafetensorsDType.F16,
            "BF16" => SafetensorsDType.BF16,
            "I64" => SafetensorsDType.I64,
            "I32" => SafetensorsDType.I32,
            "I16" => SafetensorsDType.I16,
            "I8" => SafetensorsDType.I8,
            "U8" => SafetensorsDType.U8,
            "BOOL" => SafetensorsDType.BOOL,
            _ => (SafetensorsDType)(-1),
        };
        return Enum.IsDefined(dtype);
    }
}
