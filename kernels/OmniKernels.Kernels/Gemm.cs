using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>Typed parameters of a GEMM launch.</summary>
/// <param name="Activation">Applied to A·B + bias, before the residual is added.</param>
public readonly record struct GemmParams(Activation Activation = Activation.None);

/// <summary>
/// B packed for the GEMM: <see cref="Panels"/> is [batch, ⌈N/16⌉, K, 16] (columns past N are zero),
/// so a work-item reads 16 consecutive floats per k. A view: it owns nothing.
/// </summary>
public readonly record struct PackedMatrixView(TensorView Panels, long K, long N)
{
    /// <summary>Number of 16-column panels.</summary>
    public long PanelCount => Panels.Shape[1];

    /// <summary>Number of packed matrices (1 when shared by every batch of A).</summary>
    public long Batch => Panels.Shape[0];

    /// <summary>N rounded up to whole panels: the row pitch C, bias and residual must allow.</summary>
    public long PaddedN => PanelCount * GemmKernel.PanelWidth;

    /// <summary>
    /// Output columns [first, first + count) of the packed matrix, without copying (e.g. the Q or
    /// the K/V part of a fused QKV weight). Both must be multiples of the panel width.
    /// </summary>
    public PackedMatrixView Columns(long first, long count)
    {
        const int w = GemmKernel.PanelWidth;
        if (first % w != 0 || count % w != 0 || first < 0 || count <= 0 || first + count > N)
            throw new ArgumentException($"columns [{first}, {first + count}) of a packed matrix with N = {N} must be whole {w}-column panels");
        var p = Panels;
        var view = new TensorView(p.Storage, p.DType, new Shape(p.Shape[0], count / w, K, w), p.Strides, p.Offset + first / w * p.Strides[1]);
        return new PackedMatrixView(view, K, count);
    }
}

/// <summary>
/// An owned packed B (a Linear layer's weight packed once at load). Dispose it when done;
/// <see cref="View"/> is valid until then.
/// </summary>
public sealed class PackedMatrix : IDisposable
{
    private readonly Tensor _panels;

    private PackedMatrix(Tensor panels, long k, long n)
    {
        _panels = panels;
        View = new PackedMatrixView(panels.View, k, n);
    }

    /// <summary>The packed panels.</summary>
    public PackedMatrixView View { get; }

    /// <summary>
    /// Allocates and packs B: [K, N] or [batch, K, N]; with <paramref name="transposed"/>, [N, K]
    /// or [batch, N, K] (PyTorch Linear's [out, in] weight).
    /// </summary>
    public static PackedMatrix Pack(DeviceContext ctx, TensorView b, bool transposed)
    {
        var (batch, k, n) = GemmKernel.LogicalB(b, transposed);
        var panels = Tensor.Allocate(ctx, DType.F32, GemmKernel.PanelShape(batch, k, n));
        try
        {
            var packed = new PackedMatrix(panels, k, n);
            GemmKernel.Pack(ctx, b, transposed, packed.View);
            return packed;
        }
        catch
        {
            panels.Dispose();
            throw;
        }
    }

    /// <summary>Returns the panels to the pool.</summary>
    public void Dispose() => _panels.Dispose();
}

/// <summary>
/// fp32 GEMM with a fused epilogue: C = act(A·B + bias) + residual, batched by strides.
/// CPU-shaped schedule (see docs/kernels/gemm.md): a work-item owns a 6 × 16 register tile, the
/// k-loop broadcasts six A values against one 16-wide row of a packed B panel, and every store is
/// unconditional so that LLVM's SLP vectorizer turns the tile into SIMD code. Rows past M are
/// clamped to M − 1 (recomputed, stored identically); columns past N land in C's row padding.
/// The GPU-shaped schedule (<c>TiledKernel</c>, GemmTiled.cs) runs the same epilogue on 128 × 128
/// block tiles staged through shared memory.
/// </summary>
public static partial class GemmKernel
{
    /// <summary>Columns per packed panel and per register tile.</summary>
    public const int PanelWidth = 16;

    /// <summary>Rows per register tile.</summary>
    public const int TileRows = 6;

    /// <summary>Shape of the packed panels for a [batch, K, N] B.</summary>
    public static Shape PanelShape(long batch, long k, long n) => new(batch, (n + PanelWidth - 1) / PanelWidth, k, PanelWidth);

    /// <summary>Batch, K and N of an unpacked B as the GEMM reads it.</summary>
    public static (long Batch, long K, long N) LogicalB(in TensorView b, bool transposed)
    {
        Layout2D.CheckF32(b, "b");
        if (b.Shape.Rank is not (2 or 3)) throw new ArgumentException($"b {b.Shape} must be 2-D or 3-D");
        long batch = b.Shape.Rank == 3 ? b.Shape[0] : 1;
        return transposed ? (batch, b.Shape[-1], b.Shape[-2]) : (batch, b.Shape[-2], b.Shape[-1]);
    }

    internal struct PackArgs
    {
        public ArrayView<float> Src, Dst;
        public long K, N, Ld, BatchStride, Panels;
    }

    /// <summary>Where element (k, n) of B sits in its source layout.</summary>
    internal interface IBLayout
    {
        long Index(long k, long n, long ld);
    }

    internal readonly struct RowMajorB : IBLayout
    {
        public long Index(long k, long n, long ld) => k * ld + n;
    }

    internal readonly struct TransposedB : IBLayout
    {
        public long Index(long k, long n, long ld) => n * ld + k;
    }

    // One work-item copies one 16-wide panel row, so there is no div/mod per element.
    private static void PackKernel<TLayout>(Index1D i, PackArgs g) where TLayout : struct, IBLayout
    {
        long k = i % g.K, rest = i / g.K;
        long p = rest % g.Panels, b = rest / g.Panels;
        long dst = ((b * g.Panels + p) * g.K + k) * PanelWidth;
        long src = b * g.BatchStride;
        for (long j = 0; j < PanelWidth; j++)
        {
            long n = p * PanelWidth + j;
            g.Dst[dst + j] = n < g.N ? g.Src[src + default(TLayout).Index(k, n, g.Ld)] : 0f;
        }
    }

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, PackArgs>> Packers =
        KernelTables.Implicit<PackArgs>("gemm", typeof(GemmKernel), [new(nameof(PackKernel))], [typeof(RowMajorB), typeof(TransposedB)]);

    /// <summary>Packs B into preallocated panels (for activations packed per call); allocates nothing.</summary>
    public static void Pack(DeviceContext ctx, TensorView b, bool transposed, PackedMatrixView dst)
    {
        var (batch, k, n) = LogicalB(b, transposed);
        var lb = Layout2D.Of(b, "b");
        if (dst.Panels.Shape != PanelShape(batch, k, n) || dst.K != k || dst.N != n)
            throw new ArgumentException($"packed panels {dst.Panels.Shape} (K {dst.K}, N {dst.N}) do not fit b {b.Shape}{(transposed ? " transposed" : "")}");
        Layout2D.CheckF32(dst.Panels, "packed");
        var args = new PackArgs
        {
            Src = b.Elements<float>(), Dst = dst.Panels.Elements<float>(), K = k, N = n, Ld = lb.Pitch,
            BatchStride = b.Shape.Rank == 3 ? b.Strides[0] : 0, Panels = dst.PanelCount,
        };
        var count = checked((int)(batch * dst.PanelCount * k));
        Packers.Get(ctx, 0, transposed ? 1 : 0)(ctx.Stream, count, args);
    }

    /// <summary>An optional 16-wide term of the epilogue (bias or residual), resolved at compile time.</summary>
    internal interface ITileTerm
    {
        void AddTo(ref Vec16 acc, ArrayView<float> source, long offset);
    }

    internal readonly struct Absent : ITileTerm
    {
        public void AddTo(ref Vec16 acc, ArrayView<float> source, long offset) { }
    }

    internal readonly struct Present : ITileTerm
    {
        public void AddTo(ref Vec16 acc, ArrayView<float> source, long offset) => acc.Zip<AddOp>(Vec16.Load(source, offset));
    }

    /// <summary>Where element (r, k) of A sits, resolved at compile time.</summary>
    internal interface IAAddress
    {
        long Row(ArrayView<int> rows, long r, long lda);

        long Col(ArrayView<int> cols, long k);
    }

    /// <summary>A stored row-major with pitch lda.</summary>
    internal readonly struct DenseA : IAAddress
    {
        public long Row(ArrayView<int> rows, long r, long lda) => r * lda;

        public long Col(ArrayView<int> cols, long k) => k;
    }

    /// <summary>
    /// A read through two offset tables, element (r, k) at rows[r] + cols[k]: the patches of an
    /// image as GEMM rows without an im2col copy (one extra scalar load per k per tile).
    /// </summary>
    internal readonly struct GatheredA : IAAddress
    {
        public long Row(ArrayView<int> rows, long r, long lda) => rows[r];

        public long Col(ArrayView<int> cols, long k) => cols[k];
    }

    internal struct Args
    {
        public ArrayView<float> A, B, C, Bias, Res;
        public ArrayView<int> ARows, ACols;
        public long M, K, Lda, Ldc, Ldr, BatchA, BatchB, BatchC, BatchR, RowTiles, Panels, Total;
    }

    // Row tiles vary fastest so that consecutive work-items (one PoCL thread's chunk) reuse one B panel from cache.
    private static void Kernel<TA, TMul, TAct, TBias, TRes>(Args g)
        where TA : struct, IAAddress where TMul : struct, IMulAdd where TAct : struct, IActivation where TBias : struct, ITileTerm where TRes : struct, ITileTerm
    {
        long t = Grid.GlobalIndex.X;
        if (t >= g.Total) return;
        long rt = t % g.RowTiles, rest = t / g.RowTiles;
        long p = rest % g.Panels, b = rest / g.Panels;
        long last = g.M - 1, m0 = rt * TileRows;
        long r0 = m0, r1 = Min(m0 + 1, last), r2 = Min(m0 + 2, last), r3 = Min(m0 + 3, last), r4 = Min(m0 + 4, last), r5 = Min(m0 + 5, last);
        long ab = b * g.BatchA;
        var at = default(TA);
        long a0 = ab + at.Row(g.ARows, r0, g.Lda), a1 = ab + at.Row(g.ARows, r1, g.Lda), a2 = ab + at.Row(g.ARows, r2, g.Lda);
        long a3 = ab + at.Row(g.ARows, r3, g.Lda), a4 = ab + at.Row(g.ARows, r4, g.Lda), a5 = ab + at.Row(g.ARows, r5, g.Lda);
        long bo = (g.BatchB == 0 ? 0 : b * g.BatchB) + p * g.K * PanelWidth;
        Vec16 c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        for (long k = 0; k < g.K; k++)
        {
            var bv = Vec16.Load(g.B, bo + k * PanelWidth);
            long ka = at.Col(g.ACols, k);
            c0.Fma<TMul>(g.A[a0 + ka], bv);
            c1.Fma<TMul>(g.A[a1 + ka], bv);
            c2.Fma<TMul>(g.A[a2 + ka], bv);
            c3.Fma<TMul>(g.A[a3 + ka], bv);
            c4.Fma<TMul>(g.A[a4 + ka], bv);
            c5.Fma<TMul>(g.A[a5 + ka], bv);
        }
        long col = p * PanelWidth;
        default(TBias).AddTo(ref c0, g.Bias, col);
        default(TBias).AddTo(ref c1, g.Bias, col);
        default(TBias).AddTo(ref c2, g.Bias, col);
        default(TBias).AddTo(ref c3, g.Bias, col);
        default(TBias).AddTo(ref c4, g.Bias, col);
        default(TBias).AddTo(ref c5, g.Bias, col);
        c0.Apply<TAct>(); c1.Apply<TAct>(); c2.Apply<TAct>(); c3.Apply<TAct>(); c4.Apply<TAct>(); c5.Apply<TAct>();
        // Every residual load precedes every store: clamped duplicate rows may alias an in-place residual.
        long rb = b * g.BatchR + col;
        default(TRes).AddTo(ref c0, g.Res, rb + r0 * g.Ldr);
        default(TRes).AddTo(ref c1, g.Res, rb + r1 * g.Ldr);
        default(TRes).AddTo(ref c2, g.Res, rb + r2 * g.Ldr);
        default(TRes).AddTo(ref c3, g.Res, rb + r3 * g.Ldr);
        default(TRes).AddTo(ref c4, g.Res, rb + r4 * g.Ldr);
        default(TRes).AddTo(ref c5, g.Res, rb + r5 * g.Ldr);
        long cb = b * g.BatchC + col;
        c5.Store(g.C, cb + r5 * g.Ldc);
        c4.Store(g.C, cb + r4 * g.Ldc);
        c3.Store(g.C, cb + r3 * g.Ldc);
        c2.Store(g.C, cb + r2 * g.Ldc);
        c1.Store(g.C, cb + r1 * g.Ldc);
        c0.Store(g.C, cb + r0 * g.Ldc);
    }

    private static long Min(long a, long b) => a < b ? a : b;

    // Declared before the tables that use it: static fields initialize in text order.
    internal static readonly Type[] Terms = [typeof(Absent), typeof(Present)];

    /// <summary>Both schedules of the GEMM over A's addressing, multiply-add, activation, bias and residual.</summary>
    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Variants =
        KernelTables.Explicit<Args>("gemm", typeof(GemmKernel),
            [new(nameof(Kernel), KernelSchedule.Cpu), new(nameof(TiledKernel), KernelSchedule.Gpu, TiledThreads)],
            [typeof(DenseA), typeof(GatheredA)], KernelTables.MulAdds, KernelTables.Activations, Terms, Terms);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Packers.Entries.Concat(Variants.Entries);

    /// <summary>
    /// C = act(A·B + bias) + residual. A is [M, K] or [batch, M, K] with contiguous rows; B is packed
    /// (shared by all batches, or one per batch); C and residual are [M, N] or [batch, M, N] with a row
    /// pitch of at least <see cref="PackedMatrixView.PaddedN"/> (allocate them with rowAlignment 16);
    /// bias is [N] with storage for PaddedN floats. Residual may be C itself; A must not overlap C.
    /// Allocates nothing.
    /// </summary>
    public static void Launch(DeviceContext ctx, TensorView a, PackedMatrixView b, TensorView c,
        GemmParams p = default, TensorView? bias = null, TensorView? residual = null)
    {
        var args = Validate(a, b, c, bias, residual);
        Launch<DenseA>(ctx, args, p.Activation, bias.HasValue, residual.HasValue);
    }

    /// <summary>Launches prepared arguments; other kernel families (patch embedding) build gathered ones.</summary>
    internal static void Launch<TA>(DeviceContext ctx, in Args args, Activation activation, bool bias, bool residual) where TA : struct, IAAddress
    {
        if ((uint)activation > (uint)Activation.Relu) throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation");
        int a = typeof(TA) == typeof(GatheredA) ? 1 : 0;
        if (ctx.Schedule == KernelSchedule.Cpu)
        {
            var kernel = Variants.Get(ctx, 0, a, KernelTables.MulAdd(ctx), (int)activation, bias ? 1 : 0, residual ? 1 : 0);
            kernel(ctx.Stream, KernelTables.PerItemConfig(ctx, args.Total), args);
        }
        else
        {
            var kernel = Variants.Get(ctx, 1, a, KernelTables.MulAdd(ctx), (int)activation, bias ? 1 : 0, residual ? 1 : 0);
            kernel(ctx.Stream, TiledConfig(args), TiledArgs(args));
        }
    }

    private static Args Validate(in TensorView a, in PackedMatrixView b, in TensorView c, TensorView? bias, TensorView? residual)
    {
        Layout2D.CheckF32(a, "a");
        Layout2D.CheckF32(c, "c");
        if (a.Shape.Rank is not (2 or 3)) throw new ArgumentException($"a {a.Shape} must be [M, K] or [batch, M, K]");
        if (c.Shape.Rank != a.Shape.Rank) throw new ArgumentException($"c {c.Shape} must have a's rank ({a.Shape})");
        long batch = a.Shape.Rank == 3 ? a.Shape[0] : 1;
        long m = a.Shape[-2], k = a.Shape[-1];
        if (k != b.K) throw new ArgumentException($"a {a.Shape} has K = {k}; packed b has K = {b.K}");
        if (b.Batch != 1 && b.Batch != batch) throw new ArgumentException($"packed b has batch {b.Batch}; a has batch {batch}");
        var expected = a.Shape.Rank == 3 ? new Shape(batch, m, b.N) : new Shape(m, b.N);
        if (c.Shape != expected) throw new ArgumentException($"c {c.Shape} must be {expected}");
        var la = Layout2D.Of(a, "a");
        var lc = CheckPadded(c, "c", b.PaddedN);
        long ldr = 0, batchR = 0;
        if (residual is { } r)
        {
            Layout2D.CheckF32(r, "residual");
            if (r.Shape != c.Shape) throw new ArgumentException($"residual {r.Shape} must match c {c.Shape}");
            ldr = CheckPadded(r, "residual", b.PaddedN).Pitch;
            batchR = r.Shape.Rank == 3 ? r.Strides[0] : 0;
        }
        if (bias is { } bv)
        {
            Layout2D.CheckF32(bv, "bias");
            if (bv.Shape.Rank != 1 || bv.Shape[0] != b.N) throw new ArgumentException($"bias {bv.Shape} must be [{b.N}]");
            if (bv.Strides[0] != 1 || bv.Capacity < b.PaddedN)
                throw new ArgumentException($"bias needs dense storage for {b.PaddedN} floats (allocate it with rowAlignment {PanelWidth})");
        }
        long rowTiles = (m + TileRows - 1) / TileRows;
        return new Args
        {
            A = a.Elements<float>(), B = b.Panels.Elements<float>(), C = c.Elements<float>(),
            Bias = (bias ?? a).Elements<float>(), Res = (residual ?? c).Elements<float>(),
            M = m, K = k, Lda = la.Pitch, Ldc = lc.Pitch, Ldr = ldr,
            BatchA = a.Shape.Rank == 3 ? a.Strides[0] : 0,
            BatchB = b.Batch == 1 ? 0 : b.Panels.Strides[0],
            BatchC = c.Shape.Rank == 3 ? c.Strides[0] : 0,
            BatchR = batchR,
            RowTiles = rowTiles, Panels = b.PanelCount, Total = checked(rowTiles * b.PanelCount * batch),
        };
    }

    private static Layout2D CheckPadded(in TensorView v, string name, long paddedN)
    {
        var l = Layout2D.Of(v, name);
        long batchStride = v.Shape.Rank == 3 ? v.Strides[0] : 0;
        long batch = v.Shape.Rank == 3 ? v.Shape[0] : 1;
        long rows = v.Shape[-2];
        if (l.Pitch < paddedN || (v.Shape.Rank == 3 && batchStride < rows * l.Pitch))
            throw new ArgumentException($"{name} {v}: row pitch must be at least {paddedN} (allocate it with rowAlignment {PanelWidth})");
        if ((batch - 1) * batchStride + (rows - 1) * l.Pitch + paddedN > v.Capacity)
            throw new ArgumentException($"{name} {v}: storage ends before the padded last row");
        return l;
    }
}
