using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>How <see cref="PoolingKernel"/> reduces the S token rows of one batch item to one row.</summary>
public interface IRowPooling
{
    /// <summary>The pooled value of column <paramref name="c"/> of batch item <paramref name="b"/>.</summary>
    float Pool(in PoolingKernel.Args g, long b, long c);
}

/// <summary>Mean over the first count[b] rows (all S without counts): masked mean pooling (Whisper, tubelets, meanP).</summary>
public readonly struct MeanPooling : IRowPooling
{
    /// <inheritdoc/>
    public float Pool(in PoolingKernel.Args g, long b, long c)
    {
        long n = g.HasIndex != 0 ? g.Index[b] : g.S;
        long o = b * g.BatchX + c;
        float sum = 0f;
        for (long s = 0; s < n; s++) sum += g.X[o + s * g.PitchX];
        return sum / n;
    }
}

/// <summary>Row index[b] of batch item b: pooling at a token (CLIP's end-of-text).</summary>
public readonly struct GatherPooling : IRowPooling
{
    /// <inheritdoc/>
    public float Pool(in PoolingKernel.Args g, long b, long c) => g.X[b * g.BatchX + g.Index[b] * g.PitchX + c];
}

/// <summary>
/// Token pooling and row L2 normalization, the small reductions between a tower's last layer and
/// the fusion. Pooling: one work-item per output element (x = column, y = batch item) on every
/// device, so a group's work-items read consecutive columns of each row (coalesced on a GPU); the
/// reduced dimension is a loop inside it. L2 normalization: a row per work-item (CPU schedule) or a
/// 256-thread group per row with a shared-memory reduction (GPU schedule).
/// </summary>
public static class PoolingKernel
{
    /// <summary>Launch arguments (public for <see cref="IRowPooling"/>).</summary>
    public struct Args
    {
        /// <summary>Input rows and output.</summary>
        public ArrayView<float> X, Y;
        /// <summary>Per-batch row counts (mean) or row indices (gather).</summary>
        public ArrayView<int> Index;
        /// <summary>Sizes and pitches in elements.</summary>
        public long S, Cols, PitchX, BatchX, PitchY;
        /// <summary>1 when <see cref="Index"/> holds data.</summary>
        public int HasIndex;
    }

    private static void PoolKernel<TPool>(Args g) where TPool : struct, IRowPooling
    {
        long b = Grid.GlobalIndex.Y, c = Grid.GlobalIndex.X;
        if (c >= g.Cols) return;
        g.Y[b * g.PitchY + c] = default(TPool).Pool(g, b, c);
    }

    // One work-item per row: the norm needs the whole row before any element is written.
    private static void L2Kernel(Index1D row, Args g)
    {
        long xo = row * g.PitchX, yo = row * g.PitchY;
        float sq = 0f;
        for (long c = 0; c < g.Cols; c++) sq += g.X[xo + c] * g.X[xo + c];
        float inv = sq > 0f ? 1f / MathF.Sqrt(sq) : 0f;
        for (long c = 0; c < g.Cols; c++) g.Y[yo + c] = g.X[xo + c] * inv;
    }

    // GPU schedule: a 256-thread group per row, threads striding over the columns, the sum of squares through shared memory.
    private static void L2GroupKernel(Args g)
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduce.RowThreads);
        long row = Grid.IdxX, t = Group.IdxX;
        long xo = row * g.PitchX, yo = row * g.PitchY;
        float part = 0f;
        for (long c = t; c < g.Cols; c += GroupReduce.RowThreads) part += g.X[xo + c] * g.X[xo + c];
        float sq = GroupReduce.All<AddOp>(part, scratch);
        float inv = sq > 0f ? 1f / MathF.Sqrt(sq) : 0f;
        for (long c = t; c < g.Cols; c += GroupReduce.RowThreads) g.Y[yo + c] = g.X[xo + c] * inv;
    }

    private static readonly Type[] Poolings = [typeof(MeanPooling), typeof(GatherPooling)];

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Pools =
        KernelTables.Explicit<Args>("pooling", typeof(PoolingKernel), [new(nameof(PoolKernel))], Poolings);

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, Args>> Norms =
        KernelTables.Implicit<Args>("pooling", typeof(PoolingKernel), [new(nameof(L2Kernel), KernelSchedule.Cpu)]);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> GroupNorms =
        KernelTables.Explicit<Args>("pooling", typeof(PoolingKernel), [new(nameof(L2GroupKernel), KernelSchedule.Gpu, GroupReduce.RowThreads)]);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Pools.Entries.Concat(Norms.Entries).Concat(GroupNorms.Entries);

    /// <summary>
    /// y[b] = mean of x[b, 0..count[b]) (all S rows when <paramref name="counts"/> is null). x is
    /// [B, S, D] with contiguous rows, y [B, D]; counts I32 [B], each in 1..S (the caller guarantees
    /// it: a count outside reads other rows). Launch only.
    /// </summary>
    public static void Mean(DeviceContext ctx, TensorView x, TensorView y, TensorView? counts = null) =>
        Launch<MeanPooling>(ctx, x, y, counts, "counts");

    /// <summary>y[b] = x[b, index[b]]: x [B, S, D], y [B, D], index I32 [B] in 0..S−1. Launch only.</summary>
    public static void Gather(DeviceContext ctx, TensorView x, TensorView y, TensorView index) =>
        Launch<GatherPooling>(ctx, x, y, index, "index");

    /// <summary>y = x / ‖x‖₂ per row (a zero row stays zero); x, y [..., D], may be the same view. Launch only.</summary>
    public static void L2Normalize(DeviceContext ctx, TensorView x, TensorView y)
    {
        Layout2D.CheckF32(x, "x");
        Layout2D.CheckF32(y, "y");
        if (x.Shape != y.Shape) throw new ArgumentException($"x {x.Shape} and y {y.Shape} differ in shape");
        var lx = Layout2D.Of(x, "x");
        var ly = Layout2D.Of(y, "y");
        var args = new Args
        {
            X = x.Elements<float>(), Y = y.Elements<float>(), Index = default, Cols = lx.Cols, PitchX = lx.Pitch, PitchY = ly.Pitch,
        };
        int rows = checked((int)lx.Rows);
        if (ctx.Schedule == KernelSchedule.Cpu) Norms.Get(ctx, 0)(ctx.Stream, rows, args);
        else GroupNorms.Get(ctx, 0)(ctx.Stream, new KernelConfig(rows, GroupReduce.RowThreads), args);
    }

    private static void Launch<TPool>(DeviceContext ctx, in TensorView x, in TensorView y, TensorView? index, string indexName)
        where TPool : struct, IRowPooling
    {
        Layout2D.CheckF32(x, "x");
        Layout2D.CheckF32(y, "y");
        if (x.Shape.Rank != 3 || x.Strides[2] != 1) throw new ArgumentException($"x {x} must be [B, S, D] with contiguous rows");
        long batch = x.Shape[0], s = x.Shape[1], d = x.Shape[2];
        if (y.Shape != new Shape(batch, d) || y.Strides[1] != 1) throw new ArgumentException($"y {y} must be [{batch}, {d}] with contiguous rows");
        if (index is { } i && (i.DType != DType.I32 || i.Shape != new Shape(batch) || i.Strides[0] != 1))
            throw new ArgumentException($"{indexName} {i} must be dense I32 [{batch}]");
        if (index is null && typeof(TPool) == typeof(GatherPooling)) throw new ArgumentException("gather pooling needs an index");
        var k = Pools.Get(ctx, 0, KernelTables.IndexOf<TPool>(Poolings, "pooling"));
        k(ctx.Stream, ElementwiseKernel.RowsConfig(ctx.Accelerator, batch, d), new Args
        {
            X = x.Elements<float>(), Y = y.Elements<float>(),
            Index = index is { } iv ? iv.Elements<int>() : x.Storage.Cast<int>(),
            S = s, Cols = d, PitchX = x.Strides[1], BatchX = x.Strides[0], PitchY = y.Strides[0], HasIndex = index.HasValue ? 1 : 0,
        });
    }
}
