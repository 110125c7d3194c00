using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>
/// Packed INT8 weights: per-output-channel symmetric int8 in 16-column panels [⌈N/16⌉, K, 16] (zero
/// past N) plus one float32 scale per output channel (storage padded to 16). A view: owns nothing.
/// </summary>
public readonly record struct Int8MatrixView(TensorView Panels, TensorView Scales, long K, long N)
{
    /// <summary>Number of 16-column panels.</summary>
    public long PanelCount => Panels.Shape[0];

    /// <summary>N rounded up to whole panels.</summary>
    public long PaddedN => PanelCount * GemmKernel.PanelWidth;
}

/// <summary>
/// An owned quantized Linear weight: 1 byte per weight plus one float32 scale per output channel on
/// the device. Dispose it when done.
/// </summary>
public sealed class Int8Matrix : IDisposable
{
    private readonly Tensor _panels, _scales;

    private Int8Matrix(Tensor panels, Tensor scales, long k, long n)
    {
        _panels = panels;
        _scales = scales;
        View = new Int8MatrixView(panels.View, scales.View, k, n);
    }

    /// <summary>The packed weight and its scales.</summary>
    public Int8MatrixView View { get; }

    /// <summary>Device bytes held: panels plus scales (padding included).</summary>
    public long DeviceBytes => View.Panels.Shape.Numel + View.PaddedN * sizeof(float);

    /// <summary>
    /// Quantizes a PyTorch Linear weight [N, K] per output channel: scale_n = max|w_n| / 127,
    /// q = round(w / scale_n) in [−127, 127]; an all-zero channel gets scale 0 and zeros.
    /// </summary>
    public static Int8Matrix QuantizeWeights(DeviceContext ctx, ReadOnlySpan<float> weight, int n, int k)
    {
        if (n <= 0 || k <= 0 || weight.Length != (long)n * k)
            throw new ArgumentException($"weight has {weight.Length} values; expected [{n}, {k}]");
        var q = new sbyte[(long)n * k];
        var scales = new float[n];
        for (int o = 0; o < n; o++)
        {
            var row = weight.Slice(o * k, k);
            float max = 0f;
            foreach (var v in row)
            {
                if (!float.IsFinite(v)) throw new ArgumentException($"weight row {o} holds a non-finite value");
                max = MathF.Max(max, MathF.Abs(v));
            }
            // Divide by the scale itself, as the doc and Int8Checkpoint do: multiplying by 127/max rounds
            // differently near half-steps, so load-time and checkpoint quantization would disagree.
            float scale = max / 127f;
            scales[o] = scale;
            for (int i = 0; i < k; i++) q[(long)o * k + i] = scale > 0f ? (sbyte)Math.Clamp(MathF.Round(row[i] / scale), -127f, 127f) : (sbyte)0;
        }
        return FromQuantized(ctx, q, scales, n, k);
    }

    /// <summary>Packs pre-quantized int8 weights [N, K] with their per-output-channel scales [N].</summary>
    public static Int8Matrix FromQuantized(DeviceContext ctx, ReadOnlySpan<sbyte> weight, ReadOnlySpan<float> scales, int n, int k)
    {
        if (weight.Length != (long)n * k || scales.Length != n)
            throw new ArgumentException($"int8 weight [{n}, {k}] and scales [{n}] expected; got {weight.Length} and {scales.Length} values");
        foreach (var s in scales)
            if (!(s >= 0f) || !float.IsFinite(s)) throw new ArgumentException($"weight scales must be finite and non-negative, got {s}");
        const int w = GemmKernel.PanelWidth;
        long panels = (n + w - 1) / w;
        var packed = new sbyte[panels * k * w];
        for (int o = 0; o < n; o++)
            for (int i = 0; i < k; i++)
                packed[(o / w * (long)k + i) * w + o % w] = weight[o * k + i];
        var tPanels = Tensor.FromHost<sbyte>(ctx, packed, new Shape(panels, k, w));
        try
        {
            var tScales = Tensor.Allocate(ctx, DType.F32, new Shape(n), w);
            try
            {
                var padded = new float[panels * w];
                scales.CopyTo(padded);
                tScales.View.Elements<float>().SubView(0, padded.Length).CopyFromCPU(ctx.Stream, padded);
                return new Int8Matrix(tPanels, tScales, k, n);
            }
            catch
            {
                tScales.Dispose();
                throw;
            }
        }
        catch
        {
            tPanels.Dispose();
            throw;
        }
    }

    /// <summary>Returns the memory to the pool.</summary>
    public void Dispose()
    {
        _scales.Dispose();
        _panels.Dispose();
    }
}

/// <summary>Sixteen int32 accumulators as SSA values (the INT8 tile's row).</summary>
internal struct Vec16I
{
    public int X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15;

    /// <summary>Sixteen int8 values widened to floats (exact); sbyte converts with its sign.</summary>
    public static Vec16 LoadAsFloat(ArrayView<sbyte> v, long o)
    {
        Vec16 r;
        r.X0 = v[o]; r.X1 = v[o + 1]; r.X2 = v[o + 2]; r.X3 = v[o + 3];
        r.X4 = v[o + 4]; r.X5 = v[o + 5]; r.X6 = v[o + 6]; r.X7 = v[o + 7];
        r.X8 = v[o + 8]; r.X9 = v[o + 9]; r.X10 = v[o + 10]; r.X11 = v[o + 11];
        r.X12 = v[o + 12]; r.X13 = v[o + 13]; r.X14 = v[o + 14]; r.X15 = v[o + 15];
        return r;
    }

    /// <summary>Adds a chunk's float sums, which hold integers below 2²⁴ and so convert exactly.</summary>
    public void Add(in Vec16 b)
    {
        X0 += (int)b.X0; X1 += (int)b.X1; X2 += (int)b.X2; X3 += (int)b.X3; X4 += (int)b.X4; X5 += (int)b.X5; X6 += (int)b.X6; X7 += (int)b.X7;
        X8 += (int)b.X8; X9 += (int)b.X9; X10 += (int)b.X10; X11 += (int)b.X11; X12 += (int)b.X12; X13 += (int)b.X13; X14 += (int)b.X14; X15 += (int)b.X15;
    }

    public readonly void Store(ArrayView<int> v, long o)
    {
        v[o] = X0; v[o + 1] = X1; v[o + 2] = X2; v[o + 3] = X3; v[o + 4] = X4; v[o + 5] = X5; v[o + 6] = X6; v[o + 7] = X7;
        v[o + 8] = X8; v[o + 9] = X9; v[o + 10] = X10; v[o + 11] = X11; v[o + 12] = X12; v[o + 13] = X13; v[o + 14] = X14; v[o + 15] = X15;
    }

    /// <summary>acc·rowScale·colScale, lane by lane, as floats.</summary>
    public readonly Vec16 Dequantize(float rowScale, in Vec16 colScale)
    {
        Vec16 r;
        r.X0 = X0 * rowScale * colScale.X0; r.X1 = X1 * rowScale * colScale.X1; r.X2 = X2 * rowScale * colScale.X2; r.X3 = X3 * rowScale * colScale.X3;
        r.X4 = X4 * rowScale * colScale.X4; r.X5 = X5 * rowScale * colScale.X5; r.X6 = X6 * rowScale * colScale.X6; r.X7 = X7 * rowScale * colScale.X7;
        r.X8 = X8 * rowScale * colScale.X8; r.X9 = X9 * rowScale * colScale.X9; r.X10 = X10 * rowScale * colScale.X10; r.X11 = X11 * rowScale * colScale.X11;
        r.X12 = X12 * rowScale * colScale.X12; r.X13 = X13 * rowScale * colScale.X13; r.X14 = X14 * rowScale * colScale.X14; r.X15 = X15 * rowScale * colScale.X15;
        return r;
    }
}

/// <summary>
/// INT8 matmul: dynamic per-token (per-row) symmetric quantization of activations, then int8 × int8
/// → int32 on a register tile like the fp32 GEMM's (6 rows × 16 columns, or 1 row for a GEMV so that
/// batch-1 inference does not compute five discarded rows), with a fused epilogue: dequantize
/// (row scale × column scale), bias, activation, residual, fp32 out; or raw int32 out. That is the
/// CPU-shaped schedule; the GPU-shaped one (dp4a on shared-memory tiles) is in Int8Dp4a.cs.
/// </summary>
public static partial class Int8GemmKernel
{
    internal struct QuantArgs
    {
        public ArrayView<float> X, Scales, QF;
        public ArrayView<sbyte> Q;
        public long Cols, PitchX, PitchQ;
    }

    /// <summary>How quantized activations are stored: int8, or the same integers as floats (what the GEMM reads fastest).</summary>
    internal interface IQuantized
    {
        void Store(in QuantArgs g, long i, float q);

        float Load(in Args g, long i);
    }

    internal readonly struct Int8Values : IQuantized
    {
        public void Store(in QuantArgs g, long i, float q) => g.Q[i] = (sbyte)(int)q;

        public float Load(in Args g, long i) => g.A[i];
    }

    internal readonly struct FloatValues : IQuantized
    {
        public void Store(in QuantArgs g, long i, float q) => g.QF[i] = q;

        public float Load(in Args g, long i) => g.AF[i];
    }

    // One work-item per row: the max-abs reduction, then the quantization, in one kernel.
    private static void QuantizeKernel<TQ>(Index1D row, QuantArgs g) where TQ : struct, IQuantized
    {
        long xo = row * g.PitchX, qo = row * g.PitchQ;
        float max = 0f;
        for (long c = 0; c < g.Cols; c++) max = MathF.Max(max, MathF.Abs(g.X[xo + c]));
        float inv = max > 0f ? 127f / max : 0f;
        for (long c = 0; c < g.Cols; c++)
        {
            float v = MathF.Round(g.X[xo + c] * inv);
            default(TQ).Store(g, qo + c, MathF.Min(127f, MathF.Max(-127f, v)));
        }
        g.Scales[row] = max / 127f;
    }

    // GPU schedule: a 256-thread group per row, threads striding over the columns, the max through shared memory.
    private static void QuantizeGroupKernel<TQ>(QuantArgs g) where TQ : struct, IQuantized
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduce.RowThreads);
        long row = Grid.IdxX, t = Group.IdxX;
        long xo = row * g.PitchX, qo = row * g.PitchQ;
        float part = 0f;
        for (long c = t; c < g.Cols; c += GroupReduce.RowThreads) part = MathF.Max(part, MathF.Abs(g.X[xo + c]));
        float max = GroupReduce.All<MaxOp>(part, scratch);
        float inv = max > 0f ? 127f / max : 0f;
        for (long c = t; c < g.Cols; c += GroupReduce.RowThreads)
        {
            float v = MathF.Round(g.X[xo + c] * inv);
            default(TQ).Store(g, qo + c, MathF.Min(127f, MathF.Max(-127f, v)));
        }
        if (t == 0) g.Scales[row] = max / 127f;
    }

    // Declared before the tables that use them: static fields initialize in text order.
    private static readonly Type[] Quantized = [typeof(Int8Values), typeof(FloatValues)];

    /// <summary>RawOut, then DequantOut over activation × bias × residual (index 1 + act·4 + bias·2 + residual).</summary>
    private static readonly Type[] Epilogues =
    [
        typeof(RawOut),
        .. from act in KernelTables.Activations
           from bias in GemmKernel.Terms
           from res in GemmKernel.Terms
           select typeof(DequantOut<,,>).MakeGenericType(act, bias, res),
    ];

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, QuantArgs>> Quantizers =
        KernelTables.Implicit<QuantArgs>("int8", typeof(Int8GemmKernel), [new(nameof(QuantizeKernel), KernelSchedule.Cpu)], Quantized);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, QuantArgs>> GroupQuantizers =
        KernelTables.Explicit<QuantArgs>("int8", typeof(Int8GemmKernel),
            [new(nameof(QuantizeGroupKernel), KernelSchedule.Gpu, GroupReduce.RowThreads)], Quantized);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> RegisterTiled =
        KernelTables.Explicit<Args>("int8", typeof(Int8GemmKernel), [new(nameof(Kernel), KernelSchedule.Cpu)],
            Quantized, KernelTables.MulAdds, [typeof(OneRow), typeof(SixRows)], Epilogues);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> SharedTiled =
        KernelTables.Explicit<Args>("int8", typeof(Int8GemmKernel), [new(nameof(Dp4aKernel), KernelSchedule.Gpu, GemmKernel.TiledThreads)],
            Quantized, Epilogues);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Quantizers.Entries.Concat(GroupQuantizers.Entries).Concat(RegisterTiled.Entries).Concat(SharedTiled.Entries);

    /// <summary>
    /// q = round(x · 127 / max|x_row|) per row, rowScales = max|x_row| / 127 (0 for an all-zero row).
    /// x is F32 [M, K]; q is I8 [M, K], or F32 [M, K] holding the same integers (the GEMM reads those
    /// with one broadcast instead of a load, a conversion and a broadcast); rowScales F32 [M].
    /// Non-finite x is not checked here (callers that take untrusted input validate it first).
    /// </summary>
    public static void QuantizeRows(DeviceContext ctx, TensorView x, TensorView q, TensorView rowScales)
    {
        Layout2D.CheckF32(x, "x");
        if (q.DType is not (DType.I8 or DType.F32)) throw new ArgumentException($"q must be I8 or F32, got {q.DType}");
        if (x.Shape.Rank != 2 || q.Shape != x.Shape) throw new ArgumentException($"x {x.Shape} and q {q.Shape} must be the same [M, K]");
        Layout2D.CheckF32(rowScales, "rowScales");
        if (rowScales.Shape != new Shape(x.Shape[0]) || rowScales.Strides[0] != 1) throw new ArgumentException($"rowScales {rowScales} must be dense [{x.Shape[0]}]");
        var lx = Layout2D.Of(x, "x");
        var lq = Layout2D.Of(q, "q");
        var args = new QuantArgs { X = x.Elements<float>(), Scales = rowScales.Elements<float>(), Cols = lx.Cols, PitchX = lx.Pitch, PitchQ = lq.Pitch };
        int kind = q.DType == DType.I8 ? 0 : 1;
        if (kind == 0) args.Q = q.Elements<sbyte>();
        else args.QF = q.Elements<float>();
        int rows = checked((int)lx.Rows);
        if (ctx.Schedule == KernelSchedule.Cpu) Quantizers.Get(ctx, 0, kind)(ctx.Stream, rows, args);
        else GroupQuantizers.Get(ctx, 0, kind)(ctx.Stream, new KernelConfig(rows, GroupReduce.RowThreads), args);
    }

    /// <summary>Rows per register tile, resolved at compile time.</summary>
    internal interface IRowTile
    {
        int Rows { get; }
    }

    internal readonly struct OneRow : IRowTile
    {
        public int Rows => 1;
    }

    internal readonly struct SixRows : IRowTile
    {
        public int Rows => 6;
    }

    /// <summary>What happens to a finished tile row, resolved at compile time.</summary>
    internal interface IInt8Epilogue
    {
        void Store(in Vec16I acc, long row, long col, long cOffset, in Args g);
    }

    /// <summary>int32 out, as accumulated.</summary>
    internal readonly struct RawOut : IInt8Epilogue
    {
        public void Store(in Vec16I acc, long row, long col, long cOffset, in Args g) => acc.Store(g.CInt, cOffset);
    }

    /// <summary>fp32 out: acc·rowScale·colScale + bias, activation, + residual.</summary>
    internal readonly struct DequantOut<TAct, TBias, TRes> : IInt8Epilogue
        where TAct : struct, IActivation where TBias : struct, GemmKernel.ITileTerm where TRes : struct, GemmKernel.ITileTerm
    {
        public void Store(in Vec16I acc, long row, long col, long cOffset, in Args g)
        {
            var v = acc.Dequantize(g.RowScales[row], Vec16.Load(g.ColScales, col));
            default(TBias).AddTo(ref v, g.Bias, col);
            v.Apply<TAct>();
            default(TRes).AddTo(ref v, g.Res, row * g.Ldr + col);
            v.Store(g.C, cOffset);
        }
    }

    internal struct Args
    {
        public ArrayView<sbyte> A, B;
        public ArrayView<float> AF, C, RowScales, ColScales, Bias, Res;
        public ArrayView<int> CInt;
        public long M, K, Lda, Ldc, Ldr, RowTiles, Panels, Total;
    }

    private static long Min(long a, long b) => a < b ? a : b;

    /// <summary>
    /// k-values per exactly summed chunk: 1024·127·127 &lt; 2²⁴, so float sums of int8 products are exact
    /// integers within a chunk, and chunks add up in int32.
    /// </summary>
    private const long ExactChunk = 1024;

    // Row tiles vary fastest, as in the fp32 GEMM. Rows past M are clamped and their stores repeat identical values.
    // Products accumulate as fp32 FMAs within a chunk: with int32 accumulators LLVM's loop vectorizer took the
    // k-loop and gathered W byte by byte (vpinsrb), about 8× slower; a float chain it leaves to SLP.
    private static void Kernel<TQ, TMul, TRows, TOut>(Args g)
        where TQ : struct, IQuantized where TMul : struct, IMulAdd where TRows : struct, IRowTile where TOut : struct, IInt8Epilogue
    {
        var qa = default(TQ);
        long t = Grid.GlobalIndex.X;
        if (t >= g.Total) return;
        int rows = default(TRows).Rows;
        long rt = t % g.RowTiles, p = t / g.RowTiles;
        long last = g.M - 1, m0 = rt * rows;
        long r0 = m0, r1 = Min(m0 + 1, last), r2 = Min(m0 + 2, last), r3 = Min(m0 + 3, last), r4 = Min(m0 + 4, last), r5 = Min(m0 + 5, last);
        long a0 = r0 * g.Lda, a1 = r1 * g.Lda, a2 = r2 * g.Lda, a3 = r3 * g.Lda, a4 = r4 * g.Lda, a5 = r5 * g.Lda;
        long bo = p * g.K * GemmKernel.PanelWidth;
        Vec16I c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        for (long kc = 0; kc < g.K; kc += ExactChunk)
        {
            long end = Min(kc + ExactChunk, g.K);
            Vec16 f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default;
            long k = kc;
            if (rows == 1)
            {
                // One row has only two FMA chains per k: four k at a time into four partial sums hide the FMA latency.
                for (; k + 4 <= end; k += 4)
                {
                    long o = bo + k * GemmKernel.PanelWidth;
                    f0.Fma<TMul>(qa.Load(g, a0 + k), Vec16I.LoadAsFloat(g.B, o));
                    f1.Fma<TMul>(qa.Load(g, a0 + k + 1), Vec16I.LoadAsFloat(g.B, o + GemmKernel.PanelWidth));
                    f2.Fma<TMul>(qa.Load(g, a0 + k + 2), Vec16I.LoadAsFloat(g.B, o + 2 * GemmKernel.PanelWidth));
                    f3.Fma<TMul>(qa.Load(g, a0 + k + 3), Vec16I.LoadAsFloat(g.B, o + 3 * GemmKernel.PanelWidth));
                }
                f0.Zip<AddOp>(f1);
                f2.Zip<AddOp>(f3);
                f0.Zip<AddOp>(f2);
                f1 = default;
                f2 = default;
                f3 = default;
            }
            for (; k < end; k++)
            {
                var bv = Vec16I.LoadAsFloat(g.B, bo + k * GemmKernel.PanelWidth);
                f0.Fma<TMul>(qa.Load(g, a0 + k), bv);
                if (rows > 1)
                {
                    f1.Fma<TMul>(qa.Load(g, a1 + k), bv);
                    f2.Fma<TMul>(qa.Load(g, a2 + k), bv);
                    f3.Fma<TMul>(qa.Load(g, a3 + k), bv);
                    f4.Fma<TMul>(qa.Load(g, a4 + k), bv);
                    f5.Fma<TMul>(qa.Load(g, a5 + k), bv);
                }
            }
            c0.Add(f0);
            if (rows > 1)
            {
                c1.Add(f1); c2.Add(f2); c3.Add(f3); c4.Add(f4); c5.Add(f5);
            }
        }
        long col = p * GemmKernel.PanelWidth;
        var epilogue = default(TOut);
        if (rows > 1)
        {
            epilogue.Store(c5, r5, col, r5 * g.Ldc + col, g);
            epilogue.Store(c4, r4, col, r4 * g.Ldc + col, g);
            epilogue.Store(c3, r3, col, r3 * g.Ldc + col, g);
            epilogue.Store(c2, r2, col, r2 * g.Ldc + col, g);
            epilogue.Store(c1, r1, col, r1 * g.Ldc + col, g);
        }
        epilogue.Store(c0, r0, col, r0 * g.Ldc + col, g);
    }

    /// <summary>
    /// C = act(dequant(q·Wᵀ) + bias) + residual, fp32 out. q is I8 [M, K] (or F32 holding the integers) with rowScales F32 [M] from
    /// <see cref="QuantizeRows"/>; C and residual F32 [M, N] with a row pitch of at least N rounded up
    /// to 16 (residual must not be C); bias F32 [N] with storage for N rounded up to 16. Allocates nothing.
    /// </summary>
    public static void Launch(DeviceContext ctx, TensorView q, TensorView rowScales, Int8MatrixView w, TensorView c,
        GemmParams p = default, TensorView? bias = null, TensorView? residual = null)
    {
        var args = Validate(q, w, c, DType.F32);
        bool f = q.DType == DType.F32;
        Layout2D.CheckF32(rowScales, "rowScales");
        if (rowScales.Shape != new Shape(args.M) || rowScales.Strides[0] != 1) throw new ArgumentException($"rowScales {rowScales} must be dense [{args.M}]");
        args.RowScales = rowScales.Elements<float>();
        args.ColScales = w.Scales.Elements<float>();
        args.C = c.Elements<float>();
        args.Bias = args.C;
        args.Res = args.C;
        if (bias is { } b)
        {
            Layout2D.CheckF32(b, "bias");
            if (b.Shape != new Shape(w.N) || b.Strides[0] != 1 || b.Capacity < w.PaddedN)
                throw new ArgumentException($"bias {b} must be dense [{w.N}] with storage for {w.PaddedN} floats");
            args.Bias = b.Elements<float>();
        }
        if (residual is { } r)
        {
            Layout2D.CheckF32(r, "residual");
            var lr = Layout2D.Of(r, "residual");
            if (r.Shape != c.Shape || lr.Pitch < w.PaddedN || (lr.Rows - 1) * lr.Pitch + w.PaddedN > r.Capacity)
                throw new ArgumentException($"residual {r} must match c {c.Shape} with a row pitch of at least {w.PaddedN}");
            args.Res = r.Elements<float>();
            args.Ldr = lr.Pitch;
        }
        if ((uint)p.Activation > (uint)Activation.Relu) throw new ArgumentOutOfRangeException(nameof(p), p.Activation, "unknown activation");
        Run(ctx, args, f, 1 + (int)p.Activation * 4 + (bias.HasValue ? 2 : 0) + (residual.HasValue ? 1 : 0));
    }

    /// <summary>C = a·Wᵀ in int32, exactly: a I8 [M, K] (or F32 holding int8 values), C I32 [M, N] with a row pitch of at least N rounded up to 16.</summary>
    public static void LaunchRaw(DeviceContext ctx, TensorView a, Int8MatrixView w, TensorView c)
    {
        var args = Validate(a, w, c, DType.I32);
        args.CInt = c.Elements<int>();
        Run(ctx, args, a.DType == DType.F32, 0);
    }

    private static void Run(DeviceContext ctx, Args args, bool floatValues, int epilogue)
    {
        int q = floatValues ? 1 : 0;
        if (ctx.Schedule == KernelSchedule.Gpu)
        {
            var config = Dp4aConfig(ref args);
            SharedTiled.Get(ctx, 0, q, epilogue)(ctx.Stream, config, args);
            return;
        }
        bool gemv = args.M == 1;
        args.RowTiles = gemv ? 1 : (args.M + GemmKernel.TileRows - 1) / GemmKernel.TileRows;
        args.Total = checked(args.RowTiles * args.Panels);
        RegisterTiled.Get(ctx, 0, q, KernelTables.MulAdd(ctx), gemv ? 0 : 1, epilogue)(ctx.Stream, KernelTables.PerItemConfig(ctx, args.Total), args);
    }

    private static Args Validate(in TensorView a, in Int8MatrixView w, in TensorView c, DType outType)
    {
        if (a.DType is not (DType.I8 or DType.F32)) throw new ArgumentException($"activations must be I8 (or F32 holding integers), got {a.DType}");
        if (c.DType != outType) throw new ArgumentException($"c must be {outType}, got {c.DType}");
        if (a.Shape.Rank != 2) throw new ArgumentException($"activations {a.Shape} must be [M, K]");
        if (a.Shape[1] != w.K) throw new ArgumentException($"activations {a.Shape} have K = {a.Shape[1]}; the weight has K = {w.K}");
        var expect = new Shape(a.Shape[0], w.N);
        if (c.Shape != expect) throw new ArgumentException($"c {c.Shape} must be {expect}");
        var la = Layout2D.Of(a, "activations");
        var lc = Layout2D.Of(c, "c");
        if (lc.Pitch < w.PaddedN || (lc.Rows - 1) * lc.Pitch + w.PaddedN > c.Capacity)
            throw new ArgumentException($"c {c}: row pitch must be at least {w.PaddedN} (allocate with rowAlignment {GemmKernel.PanelWidth})");
        return new Args
        {
            A = a.DType == DType.I8 ? a.Elements<sbyte>() : default, AF = a.DType == DType.F32 ? a.Elements<float>() : default,
            B = w.Panels.Elements<sbyte>(), C = default, CInt = default,
            M = a.Shape[0], K = w.K, Lda = la.Pitch, Ldc = lc.Pitch, Panels = w.PanelCount,
        };
    }
}
