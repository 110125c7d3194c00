using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>Typed parameters of a softmax launch.</summary>
/// <param name="Scale">Multiplies x before the softmax (attention's 1/√D).</param>
public readonly record struct SoftmaxParams(float Scale = 1f);

/// <summary>
/// Numerically stable softmax over the last dimension of scale·x: subtract the row max,
/// exponentiate, divide by the sum. Optional per-batch lengths hide the columns at or past
/// lengths[row / rowsPerBatch] (key padding in attention); hidden columns come out as 0, and a row
/// with nothing visible (all hidden, or all −∞) comes out as zeros, never NaN. One work-item per row.
/// </summary>
public static class SoftmaxKernel
{
    internal struct Args
    {
        public ArrayView<float> X, Y;
        public ArrayView<int> Lengths;
        public long Cols, PitchX, PitchY, RowsPerBatch;
        public float Scale;
        public int HasLengths;
    }

    private static void Kernel(Index1D row, Args g)
    {
        long xo = row * g.PitchX, yo = row * g.PitchY;
        long visible = g.Cols;
        if (g.HasLengths != 0)
        {
            long len = g.Lengths[row / g.RowsPerBatch];
            visible = len < 0 ? 0 : len < visible ? len : visible;
        }
        float max = float.NegativeInfinity;
        for (long c = 0; c < visible; c++) max = MathF.Max(max, g.Scale * g.X[xo + c]);
        // An all −∞ row shifts by 0 instead, so its exponentials are 0 rather than exp(−∞ + ∞) = NaN.
        float shift = max == float.NegativeInfinity ? 0f : max;
        float sum = 0f;
        for (long c = 0; c < visible; c++)
        {
            float e = MathF.Exp(g.Scale * g.X[xo + c] - shift);
            g.Y[yo + c] = e;
            sum += e;
        }
        float inv = max == float.NegativeInfinity ? 0f : 1f / sum;
        for (long c = 0; c < visible; c++) g.Y[yo + c] *= inv;
        for (long c = visible; c < g.Cols; c++) g.Y[yo + c] = 0f;
    }

    private static readonly object Key = new();
    private static readonly Func<Accelerator, Action<AcceleratorStream, Index1D, Args>> Load =
        acc => acc.LoadAutoGroupedKernel<Index1D, Args>(Kernel);

    /// <summary>
    /// y = softmax(scale·x) along the last dimension; x and y may be the same view.
    /// <paramref name="lengths"/> (int32 [batch]) splits the rows into batch equal groups, each with its own visible length.
    /// </summary>
    public static void Launch(DeviceContext ctx, TensorView x, TensorView y, SoftmaxParams p = default, TensorView? lengths = null)
    {
        Layout2D.CheckF32(x, "x");
        Layout2D.CheckF32(y, "y");
        if (x.Shape != y.Shape) throw new ArgumentException($"x {x.Shape} and y {y.Shape} differ in shape");
        var lx = Layout2D.Of(x, "x");
        var ly = Layout2D.Of(y, "y");
        if (!float.IsFinite(p.Scale)) throw new ArgumentException($"scale must be finite, got {p.Scale}");
        long rowsPerBatch = lx.Rows;
        if (lengths is { } l)
        {
            if (l.DType != DType.I32 || l.Shape.Rank != 1 || l.Strides[0] != 1 || lx.Rows % l.Shape[0] != 0)
                throw new ArgumentException($"lengths {l} must be dense int32 [batch] with batch dividing the {lx.Rows} rows");
            rowsPerBatch = lx.Rows / l.Shape[0];
        }
        var k = ctx.Kernel(Key, Load);
        k(ctx.Stream, checked((int)lx.Rows), new Args
        {
            X = x.Elements<float>(), Y = y.Elements<float>(), Lengths = lengths is { } len ? len.Elements<int>() : default,
            Cols = lx.Cols, PitchX = lx.Pitch, PitchY = ly.Pitch, RowsPerBatch = rowsPerBatch, Scale = p.Scale,
            HasLengths = lengths.HasValue ? 1 : 0,
        });
    }
}
