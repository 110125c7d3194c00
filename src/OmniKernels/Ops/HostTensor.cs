namespace OmniKernels.Ops;

/// <summary>A dense row-major host array with its shape: what <c>omni op</c> reads and writes.</summary>
/// <param name="Shape">Extents, outermost first.</param>
/// <param name="Data">float[] or int[]; its length is the product of <paramref name="Shape"/>.</param>
public sealed record HostTensor(long[] Shape, Array Data)
{
    /// <summary>Wraps float data.</summary>
    public static HostTensor Of(float[] data, params long[] shape) => new(shape, data);

    /// <summary>Number of elements.</summary>
    public long Length => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Rank.</summary>
    public int Rank => Shape.Length;

    /// <summary>The float data, or an error naming the input.</summary>
    public float[] Floats(string name) => Data as float[] ?? throw new OpInputException($"input '{name}' must be float32, got {Data.GetType().GetElementType()?.Name}");

    /// <summary>The int32 data, or an error naming the input.</summary>
    public int[] Ints(string name) => Data as int[] ?? throw new OpInputException($"input '{name}' must be int32, got {Data.GetType().GetElementType()?.Name}");

    /// <summary>The shape as an OmniKernels <see cref="OmniKernels.Shape"/>.</summary>
    public Shape ToShape() => new(Shape);

    /// <summary>Shape as (a, b, c).</summary>
    public string ShapeText => "(" + string.Join(", ", Shape) + ")";
}

/// <summary>An op's inputs or parameters are wrong; the message says which and why.</summary>
public sealed class OpInputException(string message) : Exception(message);
