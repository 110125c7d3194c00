using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace OmniKernels.Weights;

/// <summary>Little-endian float tensor bytes to float32, vectorized through <see cref="TensorPrimitives"/>.</summary>
internal static class Float32Conversion
{
    /// <summary>Converts <paramref name="source"/> (elements of <paramref name="dtype"/>) into <paramref name="destination"/> (same element count).</summary>
    public static void Convert(SafetensorsDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case SafetensorsDType.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
                break;
            case SafetensorsDType.BF16:
                // bfloat16 is the top half of a binary32: widen the bits to 32 and shift them up (exact).
                Span<uint> bits = MemoryMarshal.Cast<float, uint>(destination);
                TensorPrimitives.ConvertTruncating<ushort, uint>(MemoryMarshal.Cast<byte, ushort>(source), bits);
                TensorPrimitives.ShiftLeft(bits, 16, bits);
                break;
            case SafetensorsDType.F64:
                TensorPrimitives.ConvertTruncating<double, float>(MemoryMarshal.Cast<byte, double>(source), destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a floating-point dtype");
        }
    }
}
