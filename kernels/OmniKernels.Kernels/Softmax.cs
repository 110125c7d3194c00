using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>Typed parameters of a softmax launch.</summary>
/// <param name="Scale">Multiplies x before the softmax (attention's 1/√D); positive; null means 1.</param>
public readonly record struct SoftmaxParams(float? Scale = null);

/// <summary>
/// Numerically stable softmax over the last dimension of scale·x: subtract the row max,
/// exponentiate, divide by the sum. Optional per-batch lengths hide the columns at or past
/// lengths[row / rowsPerBatch] (key padding in attention); hidden columns come out as 0, and a row
/// with nothing visible (all hidden, or all −∞) comes out as zeros, never NaN. CPU schedule: one
/// work-item per row. GPU schedule: one 256-thread work-group per row, max and sum reduced through
/// shared memory, exp2 from the hardware (<c>ex2.approx</c> on CUDA).
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

    // Sixteen columns at a time through Vec16 (SLP-vectorized, with the branch-free Exp2), the
    // remainder one by one; a plain per-column loop ran PoCL's scalar exp once per element.
    private static void Kernel(Index1D row, Args g)
    {
        long xo = row * g.PitchX, yo = row * g.PitchY;
        long visible = Visible(g, row);
        long body = visible - visible % 16;

        var max16 = Vec16.Broadcast(float.NegativeInfinity);
        for (long c = 0; c < body; c += 16) max16.Zip<MaxOp>(Vec16.Load(g.X, xo + c));
        float max = max16.Reduce<MaxOp>();
        for (long c = body; c < visible; c++) max = MathF.Max(max, g.X[xo + c]);

        // exp(scale·(x − max)) = 2^(x·scale·log2 e − max·scale·log2 e); scale > 0 keeps the max the max.
        // An all −∞ row shifts by 0 and is zeroed below instead of producing exp(−∞ + ∞) = NaN.
        float s2 = g.Scale * Log2E;
        float shift = max == float.NegativeInfinity ? 0f : max * s2;
        var shift16 = Vec16.Broadcast(shift);
        Vec16 sum16 = default;
        for (long c = 0; c < body; c += 16)
        {
            var e = Vec16.Load(g.X, xo + c);
            e.Scale(s2);
            e.Zip<SubOp>(shift16);
            e.Apply<Exp2>();
            e.Store(g.Y, yo + c);
            sum16.Zip<AddOp>(e);
        }
        float sum = sum16.Reduce<AddOp>();
        for (long c = body; c < visible; c++)
        {
            float e = default(Exp2).Apply(g.X[xo + c] * s2 - shift);
            g.Y[yo + c] = e;
            sum += e;
        }

        float inv = max == float.NegativeInfinity ? 0f : 1f / sum;
        for (long c = 0; c < body; c += 16)
        {
            var y = Vec16.Load(g.Y, yo + c);
            y.Scale(inv);
            y.Store(g.Y, yo + c);
        }
        for (long c = body; c < visible; c++) g.Y[yo + c] *= inv;
        for (long c = visible; c < g.Cols; c++) g.Y[yo + c] = 0f;
    }

    private static long Visible(in Args g, long row)
    {
        if (g.HasLengths == 0) return g.Cols;
        long len = g.Lengths[row / g.RowsPerBatch];
        return len < 0 ? 0 : len < g.Cols ? len : g.Cols;
    }

    private static void GroupKernel(Args g)
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduce.RowThreads);
        long row = Grid.IdxX, t = Group.IdxX;
        long xo = row * g.PitchX, yo = row * g.PitchY;
        long visible = Visible(g, row);
        float max = float.NegativeInfinity;
        for (long c = t; c < visible; c += GroupReduce.RowThreads) max = MathF.Max(max, g.X[xo + c]);
        max = GroupReduce.All<MaxOp>(max, scratch);
        float s2 = g.Scale * Log2E;
        float shift = max == float.NegativeInfinity ? 0f : max * s2;
        float sum = 0f;
        for (long c = t; c < visible; c += GroupReduce.RowThreads)
        {
            float e = default(HardwareExp2).Apply(g.X[xo + c] * s2 - shift);
            g.Y[yo + c] = e;
            sum += e;
        }
        sum = GroupReduce.All<AddOp>(sum, scratch);
        float inv = max == float.NegativeInfinity ? 0f : 1f / sum;
        // Each thread rescales the columns it wrote itself: no barrier needed between the passes.
        for (long c = t; c < visible; c += GroupReduce.RowThreads) g.Y[yo + c] *= inv;
        for (long c = visible + t; c < g.Cols; c += GroupReduce.RowThreads) g.Y[yo + c] = 0f;
    }

    private const float Log2E = 1.44269504088896341f;

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, Args>> PerItem =
        KernelTables.Implicit<Args>("softmax", typeof(SoftmaxKernel), [new(nameof(Kernel), KernelSchedule.Cpu)]);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> PerGroup =
        KernelTables.Explicit<Args>("softmax", typeof(SoftmaxKernel), [new(nameof(GroupKernel), KernelSchedule.Gpu, GroupReduce.RowThreads)]);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => PerItem.Entries.Concat(PerGroup.Entries);

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
        float scale = p.Scale ?? 1f;
        if (!(scale > 0f) || !float.IsFinite(scale)) throw new ArgumentException($"scale must be positive and finite, got {scale}");
        long rowsPerBatch = lx.Rows;
        if (lengths is { } l)
        {
            if (l.DType != DType.I32 || l.Shape.Rank != 1 || l.Strides[0] != 1 || lx.Rows % l.Shape[0] != 0)
                throw new ArgumentException($"lengths {l} must be dense int32 [batch] with batch dividing the {lx.Rows} rows");
            rowsPerBatch = lx.Rows / l.Shape[0];
        }
        var args = new Args
        {
            X = x.Elements<float>(), Y = y.Elements<float>(), Lengths = lengths is { } len ? len.Elements<int>() : default,
            Cols = lx.Cols, PitchX = lx.Pitch, PitchY = ly.Pitch, RowsPerBatch = rowsPerBatch, Scale = scale,
            HasLengths = lengths.HasValue ? 1 : 0,
        };
        if (ctx.Schedule == KernelSchedule.Cpu) PerItem.Get(ctx, 0)(ctx.Stream, checked((int)lx.Rows), args);
        else PerGroup.Get(ctx, 0)(ctx.Stream, new KernelConfig(checked((int)lx.Rows), GroupReduce.RowThreads), args);
    }
}
