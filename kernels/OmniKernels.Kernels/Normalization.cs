using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>Which row normalization: LayerNorm centres on the mean and adds β, RMSNorm does neither.</summary>
public interface INormalization
{
    /// <summary>True for LayerNorm.</summary>
    bool Centers { get; }
}

/// <summary>LayerNorm: y = (x − mean) / √(var + ε) · γ + β.</summary>
public readonly struct LayerNormKind : INormalization
{
    /// <inheritdoc/>
    public bool Centers => true;
}

/// <summary>RMSNorm: y = x / √(mean(x²) + ε) · γ.</summary>
public readonly struct RmsNormKind : INormalization
{
    /// <inheritdoc/>
    public bool Centers => false;
}

/// <summary>
/// Row normalizations over the last dimension, with two passes over a row (mean, then variance of
/// the centred values) rather than a one-pass sum of squares, which cancels catastrophically when
/// |mean| ≫ std. CPU schedule: one work-item per row. GPU schedule: one 256-thread work-group per
/// row, each thread striding over the columns, the sums reduced through shared memory.
/// </summary>
public static class NormalizationKernel
{
    internal struct Args
    {
        public ArrayView<float> X, Y, Gamma, Beta;
        public long Cols, PitchX, PitchY;
        public float Eps;
    }

    private static void Kernel<TKind>(Index1D row, Args g) where TKind : struct, INormalization
    {
        long xo = row * g.PitchX, yo = row * g.PitchY;
        float mean = 0f;
        if (default(TKind).Centers)
        {
            float sum = 0f;
            for (long c = 0; c < g.Cols; c++) sum += g.X[xo + c];
            mean = sum / g.Cols;
        }
        float sq = 0f;
        for (long c = 0; c < g.Cols; c++)
        {
            float d = g.X[xo + c] - mean;
            sq += d * d;
        }
        float inv = 1f / MathF.Sqrt(sq / g.Cols + g.Eps);
        for (long c = 0; c < g.Cols; c++)
        {
            float v = (g.X[xo + c] - mean) * inv * g.Gamma[c];
            g.Y[yo + c] = default(TKind).Centers ? v + g.Beta[c] : v;
        }
    }

    private static void GroupKernel<TKind>(Args g) where TKind : struct, INormalization
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduce.RowThreads);
        long row = Grid.IdxX, t = Group.IdxX;
        long xo = row * g.PitchX, yo = row * g.PitchY;
        float mean = 0f;
        if (default(TKind).Centers)
        {
            float part = 0f;
            for (long c = t; c < g.Cols; c += GroupReduce.RowThreads) part += g.X[xo + c];
            mean = GroupReduce.All<AddOp>(part, scratch) / g.Cols;
        }
        float sq = 0f;
        for (long c = t; c < g.Cols; c += GroupReduce.RowThreads)
        {
            float d = g.X[xo + c] - mean;
            sq += d * d;
        }
        float inv = 1f / MathF.Sqrt(GroupReduce.All<AddOp>(sq, scratch) / g.Cols + g.Eps);
        for (long c = t; c < g.Cols; c += GroupReduce.RowThreads)
        {
            float v = (g.X[xo + c] - mean) * inv * g.Gamma[c];
            g.Y[yo + c] = default(TKind).Centers ? v + g.Beta[c] : v;
        }
    }

    private static readonly Type[] Kinds = [typeof(LayerNormKind), typeof(RmsNormKind)];

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, Args>> PerItem =
        KernelTables.Implicit<Args>("normalization", typeof(NormalizationKernel), [new(nameof(Kernel), KernelSchedule.Cpu)], Kinds);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> PerGroup =
        KernelTables.Explicit<Args>("normalization", typeof(NormalizationKernel), [new(nameof(GroupKernel), KernelSchedule.Gpu, GroupReduce.RowThreads)], Kinds);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => PerItem.Entries.Concat(PerGroup.Entries);

    /// <summary>LayerNorm over the last dimension: x, y [..., D], gamma and beta [D].</summary>
    public static void LayerNorm(DeviceContext ctx, TensorView x, TensorView gamma, TensorView beta, TensorView y, float eps = 1e-5f)
        => Launch<LayerNormKind>(ctx, x, gamma, beta, y, eps);

    /// <summary>RMSNorm over the last dimension: x, y [..., D], gamma [D].</summary>
    public static void RmsNorm(DeviceContext ctx, TensorView x, TensorView gamma, TensorView y, float eps = 1e-6f)
        => Launch<RmsNormKind>(ctx, x, gamma, gamma, y, eps);

    private static void Launch<TKind>(DeviceContext ctx, in TensorView x, in TensorView gamma, in TensorView beta, in TensorView y, float eps)
        where TKind : struct, INormalization
    {
        Layout2D.CheckF32(x, "x");
        Layout2D.CheckF32(y, "y");
        Layout2D.CheckF32(gamma, "gamma");
        Layout2D.CheckF32(beta, "beta");
        if (x.Shape != y.Shape) throw new ArgumentException($"x {x.Shape} and y {y.Shape} differ in shape");
        var lx = Layout2D.Of(x, "x");
        var ly = Layout2D.Of(y, "y");
        if (gamma.Shape.Numel != lx.Cols || gamma.Shape.Rank != 1)
            throw new ArgumentException($"gamma {gamma.Shape} must be [{lx.Cols}]");
        if (beta.Shape.Numel != lx.Cols || beta.Shape.Rank != 1)
            throw new ArgumentException($"beta {beta.Shape} must be [{lx.Cols}]");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be positive");
        var args = new Args
        {
            X = x.Elements<float>(), Y = y.Elements<float>(), Gamma = gamma.Elements<float>(), Beta = beta.Elements<float>(),
            Cols = lx.Cols, PitchX = lx.Pitch, PitchY = ly.Pitch, Eps = eps,
        };
        int kind = default(TKind).Centers ? 0 : 1;
        if (ctx.Schedule == KernelSchedule.Cpu) PerItem.Get(ctx, 0, kind)(ctx.Stream, checked((int)lx.Rows), args);
        else PerGroup.Get(ctx, 0, kind)(ctx.Stream, new KernelConfig(checked((int)lx.Rows), GroupReduce.RowThreads), args);
    }
}
