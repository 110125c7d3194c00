using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>
/// Numerically stable softmax over the last dimension: subtract the row max, exponentiate, divide
/// by the sum. A row that is all −∞ (every key masked) comes out as zeros, never NaN.
/// One work-item per row.
/// </summary>
public static class SoftmaxKernel
{
    internal struct Args
    {
        public ArrayView<float> X, Y;
        public long Cols, PitchX, PitchY;
    }

    private static void Kernel(Index1D row, Args g)
    {
        long xo = row * g.PitchX, yo = row * g.PitchY;
        float max = float.NegativeInfinity;
        for (long c = 0; c < g.Cols; c++) max = MathF.Max(max, g.X[xo + c]);
        if (max == float.NegativeInfinity)
        {
            for (long c = 0; c < g.Cols; c++) g.Y[yo + c] = 0f;
            return;
        }
        float sum = 0f;
        for (long c = 0; c < g.Cols; c++)
        {
            float e = MathF.Exp(g.X[xo + c] - max);
            g.Y[yo + c] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (long c = 0; c < g.Cols; c++) g.Y[yo + c] *= inv;
    }

    private static readonly object Key = new();
    private static readonly Func<Accelerator, Action<AcceleratorStream, Index1D, Args>> Load =
        acc => acc.LoadAutoGroupedKernel<Index1D, Args>(Kernel);

    /// <summary>y = softmax(x) along the last dimension; x and y may be the same view.</summary>
    public static void Launch(DeviceContext ctx, TensorView x, TensorView y)
    {
        Layout2D.CheckF32(x, "x");
        Layout2D.CheckF32(y, "y");
        if (x.Shape != y.Shape) throw new ArgumentException($"x {x.Shape} and y {y.Shape} differ in shape");
        var lx = Layout2D.Of(x, "x");
        var ly = Layout2D.Of(y, "y");
        var k = ctx.Kernel(Key, Load);
        k(ctx.Stream, checked((int)lx.Rows), new Args { X = x.Elements<float>(), Y = y.Elements<float>(), Cols = lx.Cols, PitchX = lx.Pitch, PitchY = ly.Pitch });
    }
}
