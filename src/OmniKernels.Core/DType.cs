namespace OmniKernels;

/// <summary>Element types a <see cref="Tensor"/> can hold.</summary>
public enum DType
{
    /// <summary>IEEE 754 binary32.</summary>
    F32,
    /// <summary>IEEE 754 binary16 (storage only; no fp16 kernel exists yet).</summary>
    F16,
    /// <summary>Signed 8-bit integer (quantized weights and activations).</summary>
    I8,
    /// <summary>Signed 32-bit integer (lengths, indices, INT8 accumulators).</summary>
    I32,
}

/// <summary>Sizes and names of <see cref="DType"/> values.</summary>
public static class DTypeInfo
{
    /// <summary>Bytes one element takes.</summary>
    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 => 2,
        DType.I8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>The dtype whose elements are the unmanaged type <typeparamref name="T"/>.</summary>
    public static DType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.F32 :
        typeof(T) == typeof(Half) ? DType.F16 :
        typeof(T) == typeof(sbyte) ? DType.I8 :
        typeof(T) == typeof(int) ? DType.I32 :
        throw new NotSupportedException($"no DType holds elements of type {typeof(T).Name}");
}
