namespace OmniKernels.Weights;

/// <summary>
/// One tensor's header entry, validated: <see cref="DataBegin"/> and <see cref="DataEnd"/> are absolute
/// byte offsets into <see cref="FilePath"/> (the data area's start already added), and
/// <c>DataEnd − DataBegin</c> equals <see cref="ByteLength"/>. Immutable; do not modify <see cref="Shape"/>.
/// </summary>
public sealed record TensorInfo(string Name, SafetensorsDType DType, long[] Shape, long DataBegin, long DataEnd, string FilePath)
{
    /// <summary>The product of <see cref="Shape"/> (1 for a scalar, 0 when a dimension is 0).</summary>
    public long ElementCount { get; } = Product(Shape);

    /// <summary><see cref="ElementCount"/> × the dtype's size.</summary>
    public long ByteLength => ElementCount * DType.Size();

    /// <summary>The shape as the error messages write it: <c>[768, 3072]</c>.</summary>
    public string ShapeText => FormatShape(Shape);

    /// <summary>Formats a shape as <c>[a, b, c]</c> (<c>[]</c> for a scalar).</summary>
    public static string FormatShape(ReadOnlySpan<long> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    private static long Product(long[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), $"dimension {d} is negative");
            n = checked(n * d);
        }
        return n;
    }
}
