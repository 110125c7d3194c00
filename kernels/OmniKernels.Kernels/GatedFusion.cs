using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>The gate a <see cref="GatedFusionWeights"/> holds.</summary>
public enum FusionGate
{
    /// <summary>
    /// The design articles' gate over M modality embeddings of width E packed as z [B, M·E]:
    /// g = σ(W·z + b) with W [M·E, M·E] (PyTorch Linear [out, in]) and b [M·E], computed over the
    /// present modalities' columns only; g of absent blocks is 0; fused = Σ_m g_m ⊙ z_m [B, E].
    /// </summary>
    Sigmoid,

    /// <summary>
    /// The adaptive cross-attention fusion's gate: logits = W·h + b with W [M, K], b [M] over a dense
    /// h [B, K]; weights = softmax over the present modalities (absent weight 0, one present → 1);
    /// fused = Σ_m w_m·x_m [B, F] over candidates x [B, M·F].
    /// </summary>
    Softmax,
}

/// <summary>How gate weights are stored on the device.</summary>
public enum FusionWeightFormat
{
    /// <summary>float32, as given.</summary>
    Fp32,

    /// <summary>Per-output-row symmetric int8 plus a float32 scale per row (<see cref="Int8Matrix"/>), dequantized on the fly.</summary>
    Int8,
}

/// <summary>Typed parameters of a fusion launch.</summary>
/// <param name="PresentMask">
/// Bit m set: modality m is present, in every row of the launch (the executor groups requests by
/// modality set). Must be non-zero and name only modalities below M.
/// </param>
public readonly record struct GatedFusionParams(uint PresentMask)
{
    /// <summary>The mask with the given modality indices set.</summary>
    public static GatedFusionParams Of(params ReadOnlySpan<int> present)
    {
        uint mask = 0;
        foreach (int m in present)
        {
            if (m is < 0 or >= GatedFusionWeights.MaxModalities)
                throw new ArgumentOutOfRangeException(nameof(present), m, $"modality indices are 0..{GatedFusionWeights.MaxModalities - 1}");
            mask |= 1u << m;
        }
        return new GatedFusionParams(mask);
    }
}

/// <summary>
/// Device gate weights as the fusion kernel reads them. A view: it owns nothing and is valid while
/// the <see cref="GatedFusionWeights"/> it came from lives. Exactly one of <see cref="Fp32"/> and
/// <see cref="Int8"/> is set.
/// </summary>
/// <param name="Gate">Sigmoid or softmax.</param>
/// <param name="Modalities">M.</param>
/// <param name="InputWidth">Columns of W: M·E for the sigmoid gate, K for the softmax gate.</param>
/// <param name="Fp32">fp32 panels, when stored as fp32.</param>
/// <param name="Int8">int8 panels and scales, when stored as INT8.</param>
/// <param name="Bias">The bias in the panels' row order, padded to whole panels.</param>
public readonly record struct GatedFusionWeightsView(FusionGate Gate, int Modalities, long InputWidth,
    PackedMatrixView? Fp32, Int8MatrixView? Int8, TensorView Bias)
{
    /// <summary>E for the sigmoid gate (the width of each modality's block); 0 for the softmax gate, whose F comes from x.</summary>
    public long Width => Gate == FusionGate.Sigmoid ? InputWidth / Modalities : 0;

    /// <summary>How the weights are stored.</summary>
    public FusionWeightFormat Format => Int8.HasValue ? FusionWeightFormat.Int8 : FusionWeightFormat.Fp32;
}

/// <summary>
/// Owned gate weights on the device, packed once at load for <see cref="GatedFusionKernel"/>.
/// Dispose it when done; <see cref="View"/> is valid until then. Immutable after creation, so one
/// instance may serve launches from many threads (the launches themselves must be serialized per stream).
/// </summary>
/// <remarks>
/// Sigmoid weights are packed per output block: panel (m, p) holds the 16 output columns
/// m·E + s(p) … m·E + s(p) + 15 with s(p) = min(16p, E − 16), so that a work-item's gate tile
/// covers exactly the columns of its 16-wide strip of the fused output (the last strip overlaps the
/// one before it when 16 ∤ E; for E &lt; 16 the columns past E repeat column E − 1). Rows are
/// reordered on the host and packed by <see cref="PackedMatrix"/> or quantized by
/// <see cref="Int8Matrix"/>, whose per-output-row scales are unchanged by a row reorder.
/// </remarks>
public sealed class GatedFusionWeights : IDisposable
{
    /// <summary>The most modalities a fusion takes: the softmax gate keeps all M logits in one 16-lane panel.</summary>
    public const int MaxModalities = 16;

    private readonly PackedMatrix? _fp32;
    private readonly Int8Matrix? _int8;
    private readonly Tensor _bias;

    private GatedFusionWeights(FusionGate gate, int modalities, long inputWidth, PackedMatrix? fp32, Int8Matrix? int8, Tensor bias)
    {
        _fp32 = fp32;
        _int8 = int8;
        _bias = bias;
        View = new GatedFusionWeightsView(gate, modalities, inputWidth, fp32?.View, int8?.View, bias.View);
    }

    /// <summary>The packed weights.</summary>
    public GatedFusionWeightsView View { get; }

    /// <summary>Device bytes held: panels, scales and bias, padding included.</summary>
    public long DeviceBytes =>
        (_fp32 is { } f ? f.View.Panels.Shape.Numel * sizeof(float) : _int8!.DeviceBytes) + _bias.Shape.Numel * sizeof(float);

    /// <summary>
    /// Packs a gate's PyTorch Linear weight and bias, as fp32 or quantized to INT8 per output row.
    /// Sigmoid: weight [M·E, M·E] and bias [M·E], with <paramref name="inputWidth"/> = M·E.
    /// Softmax: weight [M, K] and bias [M], with <paramref name="inputWidth"/> = K.
    /// The spans are copied; they may be released on return.
    /// </summary>
    public static GatedFusionWeights Create(DeviceContext ctx, FusionGate gate, int modalities, int inputWidth,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, FusionWeightFormat format)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (modalities is < 1 or > MaxModalities)
            throw new ArgumentException($"a fusion takes 1..{MaxModalities} modalities, got {modalities}");
        if (inputWidth < 1) throw new ArgumentException($"inputWidth must be positive, got {inputWidth}");
        if (gate == FusionGate.Sigmoid && inputWidth % modalities != 0)
            throw new ArgumentException($"sigmoid gate: inputWidth {inputWidth} must be M·E, a multiple of M = {modalities}");
        int outputs = gate == FusionGate.Sigmoid ? inputWidth : modalities;
        if (weight.Length != (long)outputs * inputWidth)
            throw new ArgumentException($"{gate} gate weight has {weight.Length} values; expected [{outputs}, {inputWidth}]");
        if (bias.Length != outputs)
            throw new ArgumentException($"{gate} gate bias has {bias.Length} values; expected [{outputs}]");

        var order = RowOrder(gate, modalities, inputWidth);
        var rows = new float[(long)order.Length * inputWidth];
        var packedBias = new float[order.Length];
        for (int r = 0; r < order.Length; r++)
        {
            if (order[r] < 0) continue;
            weight.Slice(order[r] * inputWidth, inputWidth).CopyTo(rows.AsSpan(r * inputWidth, inputWidth));
            packedBias[r] = bias[order[r]];
        }
        var tBias = Tensor.FromHost<float>(ctx, packedBias, new Shape(packedBias.Length));
        try
        {
            if (format == FusionWeightFormat.Int8)
                return new GatedFusionWeights(gate, modalities, inputWidth, null, Int8Matrix.QuantizeWeights(ctx, rows, order.Length, inputWidth), tBias);
            using var staged = Tensor.FromHost<float>(ctx, rows, new Shape(order.Length, inputWidth));
            var packed = PackedMatrix.Pack(ctx, staged.View, transposed: true);
            ctx.Synchronize();
            return new GatedFusionWeights(gate, modalities, inputWidth, packed, null, tBias);
        }
        catch
        {
            tBias.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Source row of each packed row: sigmoid rows follow the output strips (see the remarks);
    /// softmax rows are the M logits padded to one panel (−1: a zero row).
    /// </summary>
    private static int[] RowOrder(FusionGate gate, int modalities, int inputWidth)
    {
        const int w = GemmKernel.PanelWidth;
        if (gate == FusionGate.Softmax)
            return Enumerable.Range(0, w).Select(r => r < modalities ? r : -1).ToArray();
        int e = inputWidth / modalities;
        long strips = GatedFusionKernel.Strips(e);
        var order = new int[modalities * strips * w];
        for (int m = 0; m < modalities; m++)
            for (long p = 0; p < strips; p++)
                for (int j = 0; j < w; j++)
                    order[(m * strips + p) * w + j] = m * e + (int)GatedFusionKernel.Column(p, j, e);
        return order;
    }

    /// <summary>Returns the memory to the pool.</summary>
    public void Dispose()
    {
        _bias.Dispose();
        _int8?.Dispose();
        _fp32?.Dispose();
    }
}

/// <summary>
/// Gated fusion of modality embeddings in one launch: the gate GEMV/GEMM over the present
/// modalities only, the gate nonlinearity (σ, or a softmax over the present modalities) and the
/// gate-weighted sum, writing the fused vector and the gates. CPU-shaped schedule (see
/// docs/kernels/gated_fusion.md): a work-item owns 4 rows × one 16-wide strip of the fused output
/// and, for every present modality, the matching 16 gate columns; every store is unconditional and
/// consecutive so that LLVM's SLP vectorizer packs the tiles. The GPU-shaped schedule (group
/// reductions over k) is in GatedFusionGroup.cs.
/// </summary>
public static partial class GatedFusionKernel
{
    /// <summary>Rows per work-item tile (rows past B are clamped to B − 1 and recomputed identically).</summary>
    public const int TileRows = 4;

    private const int W = GemmKernel.PanelWidth;

    /// <summary>16-wide strips of a fused output of width <paramref name="width"/>.</summary>
    internal static long Strips(long width) => (width + W - 1) / W;

    /// <summary>First column of strip p: the last strip is pulled back to end at the last column when 16 ∤ width.</summary>
    internal static long StripStart(long p, long width) => width >= W ? Math.Min(p * W, width - W) : 0;

    /// <summary>Column that lane j of strip p computes (for width &lt; 16, lanes past the end repeat the last column).</summary>
    internal static long Column(long p, int j, long width) => Math.Min(StripStart(p, width) + j, width - 1);

    internal struct Args
    {
        public ArrayView<float> U, X, Fused, Gates, Wf, Scales, Bias;
        public ArrayView<sbyte> Wq;
        public long Rows, K, Width, Strips, RowTiles, Total, Ldu, Ldx, Ldf, Ldg;
        public int Modalities;
        public uint Present;
    }

    internal struct RowTile
    {
        public long R0, R1, R2, R3;
    }

    /// <summary>One Vec16 per tile row.</summary>
    internal struct Tile4
    {
        public Vec16 Q0, Q1, Q2, Q3;
    }

    /// <summary>How the gate weights are read: a 16-wide panel row per k, and the per-lane scale applied once at the end.</summary>
    internal interface IGateWeights
    {
        Vec16 Row(in Args g, long offset);

        void Finish(ref Vec16 acc, in Args g, long lane0);

        /// <summary>One weight (the GPU schedule's scalar read).</summary>
        float At(in Args g, long i);

        /// <summary>A finished scalar sum of lane <paramref name="lane"/>, scaled.</summary>
        float Finish(in Args g, float acc, long lane);
    }

    internal readonly struct Fp32Weights : IGateWeights
    {
        public Vec16 Row(in Args g, long offset) => Vec16.Load(g.Wf, offset);

        public void Finish(ref Vec16 acc, in Args g, long lane0) { }

        public float At(in Args g, long i) => g.Wf[i];

        public float Finish(in Args g, float acc, long lane) => acc;
    }

    /// <summary>int8 widened to fp32 and multiplied by fp32 inputs (exact enough, one launch); the row scale multiplies the sum.</summary>
    internal readonly struct Int8Weights : IGateWeights
    {
        public Vec16 Row(in Args g, long offset) => Vec16I.LoadAsFloat(g.Wq, offset);

        public void Finish(ref Vec16 acc, in Args g, long lane0) => acc.Zip<MulOp>(Vec16.Load(g.Scales, lane0));

        public float At(in Args g, long i) => g.Wq[i];

        public float Finish(in Args g, float acc, long lane) => acc * g.Scales[lane];
    }

    /// <summary>How a strip's 16 lanes map to columns: consecutive (width ≥ 16) or clamped to the last column (width &lt; 16).</summary>
    internal interface IColumns
    {
        Vec16 Load(ArrayView<float> v, long rowStart, long e0, long width);

        void Store(in Vec16 t, ArrayView<float> v, long rowStart, long e0, long width);
    }

    internal readonly struct WideColumns : IColumns
    {
        public Vec16 Load(ArrayView<float> v, long rowStart, long e0, long width) => Vec16.Load(v, rowStart + e0);

        public void Store(in Vec16 t, ArrayView<float> v, long rowStart, long e0, long width) => t.Store(v, rowStart + e0);
    }

    internal readonly struct NarrowColumns : IColumns
    {
        public Vec16 Load(ArrayView<float> v, long rowStart, long e0, long width) => Vec16.LoadRows(v, rowStart, 1, width);

        // Lanes past the end hold the last column's value, so their repeated stores are identical.
        public void Store(in Vec16 t, ArrayView<float> v, long rowStart, long e0, long width) => t.StoreRows(v, rowStart, 1, width);
    }

    /// <summary>
    /// The gate as a struct operation: <see cref="Prepare"/> runs once per work-item, then
    /// <see cref="Tile"/> gives the 4 × 16 gate tile of each present modality (what multiplies its
    /// block of x) and <see cref="Absent"/> runs for each absent one.
    /// </summary>
    internal interface IFusionGate
    {
        void Prepare(in Args g, in RowTile rows, long strip);

        void Tile(in Args g, int m, in RowTile rows, long strip, long e0, ref Tile4 q);

        void Absent(in Args g, int m, in RowTile rows, long e0);
    }

    private readonly struct SigmoidActivation : IActivation
    {
        public float Apply(float x) => KernelMath.Sigmoid(x);
    }

    internal readonly struct SigmoidGate<TW, TMul, TCols> : IFusionGate
        where TW : struct, IGateWeights where TMul : struct, IMulAdd where TCols : struct, IColumns
    {
        public void Prepare(in Args g, in RowTile rows, long strip) { }

        // Gate columns m·E + strip: a GEMV over the present input blocks only; absent blocks of z are never read.
        public void Tile(in Args g, int m, in RowTile rows, long strip, long e0, ref Tile4 q)
        {
            var wt = default(TW);
            long panel = m * g.Strips + strip, pb = panel * g.K * W;
            long u0 = rows.R0 * g.Ldu, u1 = rows.R1 * g.Ldu, u2 = rows.R2 * g.Ldu, u3 = rows.R3 * g.Ldu;
            Vec16 c0 = default, c1 = default, c2 = default, c3 = default;
            for (int mi = 0; mi < g.Modalities; mi++)
            {
                if (((g.Present >> mi) & 1u) == 0) continue;
                long k1 = (mi + 1) * g.Width;
                for (long k = mi * g.Width; k < k1; k++)
                {
                    var bv = wt.Row(g, pb + k * W);
                    c0.Fma<TMul>(g.U[u0 + k], bv);
                    c1.Fma<TMul>(g.U[u1 + k], bv);
                    c2.Fma<TMul>(g.U[u2 + k], bv);
                    c3.Fma<TMul>(g.U[u3 + k], bv);
                }
            }
            long lane0 = panel * W;
            wt.Finish(ref c0, g, lane0); wt.Finish(ref c1, g, lane0); wt.Finish(ref c2, g, lane0); wt.Finish(ref c3, g, lane0);
            var bias = Vec16.Load(g.Bias, lane0);
            c0.Zip<AddOp>(bias); c1.Zip<AddOp>(bias); c2.Zip<AddOp>(bias); c3.Zip<AddOp>(bias);
            c0.Apply<SigmoidActivation>(); c1.Apply<SigmoidActivation>(); c2.Apply<SigmoidActivation>(); c3.Apply<SigmoidActivation>();
            var cols = default(TCols);
            long gc = m * g.Width;
            cols.Store(c3, g.Gates, rows.R3 * g.Ldg + gc, e0, g.Width);
            cols.Store(c2, g.Gates, rows.R2 * g.Ldg + gc, e0, g.Width);
            cols.Store(c1, g.Gates, rows.R1 * g.Ldg + gc, e0, g.Width);
            cols.Store(c0, g.Gates, rows.R0 * g.Ldg + gc, e0, g.Width);
            q.Q0 = c0; q.Q1 = c1; q.Q2 = c2; q.Q3 = c3;
        }

        public void Absent(in Args g, int m, in RowTile rows, long e0)
        {
            var cols = default(TCols);
            Vec16 zero = default;
            long gc = m * g.Width;
            cols.Store(zero, g.Gates, rows.R3 * g.Ldg + gc, e0, g.Width);
            cols.Store(zero, g.Gates, rows.R2 * g.Ldg + gc, e0, g.Width);
            cols.Store(zero, g.Gates, rows.R1 * g.Ldg + gc, e0, g.Width);
            cols.Store(zero, g.Gates, rows.R0 * g.Ldg + gc, e0, g.Width);
        }
    }

    /// <summary>
    /// Every strip recomputes its rows' M logits (one panel: lane m = modality m, K FMAs per row,
    /// small next to the M·F of the weighted sum) so that no work-item waits on another.
    /// </summary>
    internal struct SoftmaxGate<TW, TMul> : IFusionGate
        where TW : struct, IGateWeights where TMul : struct, IMulAdd
    {
        private Vec16 _w0, _w1, _w2, _w3;

        public void Prepare(in Args g, in RowTile rows, long strip)
        {
            var wt = default(TW);
            long u0 = rows.R0 * g.Ldu, u1 = rows.R1 * g.Ldu, u2 = rows.R2 * g.Ldu, u3 = rows.R3 * g.Ldu;
            Vec16 l0 = default, l1 = default, l2 = default, l3 = default;
            for (long k = 0; k < g.K; k++)
            {
                var bv = wt.Row(g, k * W);
                l0.Fma<TMul>(g.U[u0 + k], bv);
                l1.Fma<TMul>(g.U[u1 + k], bv);
                l2.Fma<TMul>(g.U[u2 + k], bv);
                l3.Fma<TMul>(g.U[u3 + k], bv);
            }
            wt.Finish(ref l0, g, 0); wt.Finish(ref l1, g, 0); wt.Finish(ref l2, g, 0); wt.Finish(ref l3, g, 0);
            var bias = Vec16.Load(g.Bias, 0);
            l0.Zip<AddOp>(bias); l1.Zip<AddOp>(bias); l2.Zip<AddOp>(bias); l3.Zip<AddOp>(bias);
            _w0 = Normalize(l0, g.Modalities, g.Present);
            _w1 = Normalize(l1, g.Modalities, g.Present);
            _w2 = Normalize(l2, g.Modalities, g.Present);
            _w3 = Normalize(l3, g.Modalities, g.Present);
            if (strip != 0) return;
            for (int m = 0; m < g.Modalities; m++)
            {
                g.Gates[rows.R3 * g.Ldg + m] = Lane(_w3, m);
                g.Gates[rows.R2 * g.Ldg + m] = Lane(_w2, m);
                g.Gates[rows.R1 * g.Ldg + m] = Lane(_w1, m);
                g.Gates[rows.R0 * g.Ldg + m] = Lane(_w0, m);
            }
        }

        public readonly void Tile(in Args g, int m, in RowTile rows, long strip, long e0, ref Tile4 q)
        {
            q.Q0 = Vec16.Broadcast(Lane(_w0, m));
            q.Q1 = Vec16.Broadcast(Lane(_w1, m));
            q.Q2 = Vec16.Broadcast(Lane(_w2, m));
            q.Q3 = Vec16.Broadcast(Lane(_w3, m));
        }

        public readonly void Absent(in Args g, int m, in RowTile rows, long e0) { }

        /// <summary>Softmax over the present lanes below M; every other lane is 0.</summary>
        private static Vec16 Normalize(in Vec16 logits, int modalities, uint present)
        {
            float max = float.NegativeInfinity;
            for (int m = 0; m < modalities; m++)
                if (((present >> m) & 1u) != 0) max = MathF.Max(max, Lane(logits, m));
            float sum = 0f;
            for (int m = 0; m < modalities; m++)
                if (((present >> m) & 1u) != 0) sum += MathF.Exp(Lane(logits, m) - max);
            float inv = 1f / sum;
            Vec16 w = default;
            for (int m = 0; m < modalities; m++)
                if (((present >> m) & 1u) != 0) SetLane(ref w, m, MathF.Exp(Lane(logits, m) - max) * inv);
            return w;
        }
    }

    private static float Lane(in Vec16 v, int i) => i switch
    {
        0 => v.X0, 1 => v.X1, 2 => v.X2, 3 => v.X3, 4 => v.X4, 5 => v.X5, 6 => v.X6, 7 => v.X7,
        8 => v.X8, 9 => v.X9, 10 => v.X10, 11 => v.X11, 12 => v.X12, 13 => v.X13, 14 => v.X14, _ => v.X15,
    };

    private static void SetLane(ref Vec16 v, int i, float x)
    {
        switch (i)
        {
            case 0: v.X0 = x; break; case 1: v.X1 = x; break; case 2: v.X2 = x; break; case 3: v.X3 = x; break;
            case 4: v.X4 = x; break; case 5: v.X5 = x; break; case 6: v.X6 = x; break; case 7: v.X7 = x; break;
            case 8: v.X8 = x; break; case 9: v.X9 = x; break; case 10: v.X10 = x; break; case 11: v.X11 = x; break;
            case 12: v.X12 = x; break; case 13: v.X13 = x; break; case 14: v.X14 = x; break; default: v.X15 = x; break;
        }
    }

    private static long Min(long a, long b) => a < b ? a : b;

    // Row tiles vary fastest so that consecutive work-items (one PoCL thread's chunk) share the strip's weight panels in cache.
    private static void Kernel<TGate, TCols>(Args g) where TGate : struct, IFusionGate where TCols : struct, IColumns
    {
        long t = Grid.GlobalIndex.X;
        if (t >= g.Total) return;
        long rt = t % g.RowTiles, strip = t / g.RowTiles;
        long last = g.Rows - 1, m0 = rt * TileRows;
        RowTile rows;
        rows.R0 = m0; rows.R1 = Min(m0 + 1, last); rows.R2 = Min(m0 + 2, last); rows.R3 = Min(m0 + 3, last);
        long e0 = StripStart(strip, g.Width);
        var gate = default(TGate);
        gate.Prepare(g, rows, strip);
        var cols = default(TCols);
        Vec16 f0 = default, f1 = default, f2 = default, f3 = default;
        Tile4 q = default;
        for (int m = 0; m < g.Modalities; m++)
        {
            if (((g.Present >> m) & 1u) == 0)
            {
                gate.Absent(g, m, rows, e0);
                continue;
            }
            gate.Tile(g, m, rows, strip, e0, ref q);
            long xc = m * g.Width;
            q.Q0.Zip<MulOp>(cols.Load(g.X, rows.R0 * g.Ldx + xc, e0, g.Width));
            q.Q1.Zip<MulOp>(cols.Load(g.X, rows.R1 * g.Ldx + xc, e0, g.Width));
            q.Q2.Zip<MulOp>(cols.Load(g.X, rows.R2 * g.Ldx + xc, e0, g.Width));
            q.Q3.Zip<MulOp>(cols.Load(g.X, rows.R3 * g.Ldx + xc, e0, g.Width));
            f0.Zip<AddOp>(q.Q0); f1.Zip<AddOp>(q.Q1); f2.Zip<AddOp>(q.Q2); f3.Zip<AddOp>(q.Q3);
        }
        cols.Store(f3, g.Fused, rows.R3 * g.Ldf, e0, g.Width);
        cols.Store(f2, g.Fused, rows.R2 * g.Ldf, e0, g.Width);
        cols.Store(f1, g.Fused, rows.R1 * g.Ldf, e0, g.Width);
        cols.Store(f0, g.Fused, rows.R0 * g.Ldf, e0, g.Width);
    }

    // Gate variants in the order Run indexes them: sigmoid gates by (columns, multiply-add, weights), then softmax gates.
    private static readonly Type[] Gates =
    [
        typeof(SigmoidGate<Int8Weights, OpenCLFma, WideColumns>), typeof(SigmoidGate<Fp32Weights, OpenCLFma, WideColumns>),
        typeof(SigmoidGate<Int8Weights, PlainMulAdd, WideColumns>), typeof(SigmoidGate<Fp32Weights, PlainMulAdd, WideColumns>),
        typeof(SigmoidGate<Int8Weights, OpenCLFma, NarrowColumns>), typeof(SigmoidGate<Fp32Weights, OpenCLFma, NarrowColumns>),
        typeof(SigmoidGate<Int8Weights, PlainMulAdd, NarrowColumns>), typeof(SigmoidGate<Fp32Weights, PlainMulAdd, NarrowColumns>),
        typeof(SoftmaxGate<Int8Weights, OpenCLFma>), typeof(SoftmaxGate<Fp32Weights, OpenCLFma>),
        typeof(SoftmaxGate<Int8Weights, PlainMulAdd>), typeof(SoftmaxGate<Fp32Weights, PlainMulAdd>),
    ];

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Variants =
        KernelTables.Explicit<Args>("gated_fusion", typeof(GatedFusionKernel), [new(nameof(Kernel))], Gates, [typeof(WideColumns), typeof(NarrowColumns)]);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Variants.Entries.Concat(Grouped.Entries);

    /// <summary>
    /// The design articles' gate in one launch: gates = σ(W·z + b) over the present modalities'
    /// columns (absent blocks of z are never read, so they may hold anything, NaN included; absent
    /// gate blocks are written as 0), fused[b, e] = Σ_{m present} gates[b, m·E + e]·z[b, m·E + e].
    /// z is F32 [B, M·E] (block m = columns m·E … m·E + E − 1), fused F32 [B, E], gates F32 [B, M·E];
    /// rows contiguous, any row pitch; outputs must not overlap z. Launch only: allocates nothing and
    /// does not synchronize (the caller synchronizes before reading the outputs).
    /// </summary>
    public static void LaunchSigmoid(DeviceContext ctx, GatedFusionWeightsView weights, TensorView z, TensorView fused, TensorView gates, GatedFusionParams p)
    {
        if (weights.Gate != FusionGate.Sigmoid) throw new ArgumentException($"LaunchSigmoid needs sigmoid gate weights, got {weights.Gate}");
        var args = Validate(weights, p, z, "z", z, "z", weights.Width, fused, gates, weights.InputWidth);
        Run(ctx, weights, args, sigmoid: true, wide: weights.Width >= W);
    }

    /// <summary>
    /// The adaptive fusion's gate in one launch: logits = W·h + b, weights = softmax over the present
    /// modalities (absent → 0), fused[b, f] = Σ_{m present} weights[b, m]·x[b, m·F + f]. h is F32
    /// [B, K] (dense in its columns, every row present), x F32 [B, M·F] (absent blocks are never
    /// read), fused F32 [B, F], weights F32 [B, M]; rows contiguous, any row pitch; outputs must not
    /// overlap the inputs. Launch only: allocates nothing and does not synchronize.
    /// </summary>
    public static void LaunchSoftmax(DeviceContext ctx, GatedFusionWeightsView weights, TensorView h, TensorView x, TensorView fused, TensorView gateWeights, GatedFusionParams p)
    {
        if (weights.Gate != FusionGate.Softmax) throw new ArgumentException($"LaunchSoftmax needs softmax gate weights, got {weights.Gate}");
        Check2D(x, "x");
        if (x.Shape[1] % weights.Modalities != 0)
            throw new ArgumentException($"x {x.Shape} must be [B, M·F] with M = {weights.Modalities}");
        long f = x.Shape[1] / weights.Modalities;
        var args = Validate(weights, p, h, "h", x, "x", f, fused, gateWeights, weights.Modalities);
        Run(ctx, weights, args, sigmoid: false, wide: f >= W);
    }

    private static void Run(DeviceContext ctx, in GatedFusionWeightsView w, in Args args, bool sigmoid, bool wide)
    {
        if (ctx.Schedule == KernelSchedule.Gpu)
        {
            RunGrouped(ctx, w, args, sigmoid);
            return;
        }
        int variant = KernelTables.MulAdd(ctx) * 2 + (w.Int8.HasValue ? 0 : 1);
        int gate = sigmoid ? (wide ? 0 : 4) + variant : 8 + variant;
        var kernel = Variants.Get(ctx, 0, gate, wide ? 0 : 1);
        // A CPU device runs one tile per work-item (PoCL's SLP path); a GPU groups independent tiles into warps.
        kernel(ctx.Stream, KernelTables.PerItemConfig(ctx, args.Total), args);
    }

    private static Args Validate(in GatedFusionWeightsView w, GatedFusionParams p, in TensorView u, string uName, in TensorView x, string xName,
        long width, in TensorView fused, in TensorView gates, long gateCols)
    {
        int mCount = w.Modalities;
        if (p.PresentMask == 0) throw new ArgumentException("the present set is empty: at least one modality must be present");
        if (mCount < 32 && p.PresentMask >> mCount != 0)
            throw new ArgumentException($"present set 0x{p.PresentMask:X} names a modality at or above M = {mCount}");
        Check2D(u, uName);
        Check2D(x, xName);
        Check2D(fused, "fused");
        Check2D(gates, "gates");
        long b = u.Shape[0];
        if (u.Shape[1] != w.InputWidth) throw new ArgumentException($"{uName} {u.Shape} must be [B, {w.InputWidth}] (the gate weight's input width)");
        if (x.Shape != new Shape(b, mCount * width)) throw new ArgumentException($"{xName} {x.Shape} must be [{b}, {mCount * width}]");
        if (fused.Shape != new Shape(b, width)) throw new ArgumentException($"fused {fused.Shape} must be [{b}, {width}]");
        if (gates.Shape != new Shape(b, gateCols)) throw new ArgumentException($"gates {gates.Shape} must be [{b}, {gateCols}]");
        var wf = w.Fp32 is { } f ? f.Panels : w.Bias;
        var wq = w.Int8 is { } q ? q.Panels : default;
        long rowTiles = (b + TileRows - 1) / TileRows, strips = Strips(width);
        return new Args
        {
            U = u.Elements<float>(), X = x.Elements<float>(), Fused = fused.Elements<float>(), Gates = gates.Elements<float>(),
            Wf = wf.Elements<float>(), Wq = w.Int8.HasValue ? wq.Elements<sbyte>() : default,
            Scales = (w.Int8 is { } s ? s.Scales : w.Bias).Elements<float>(), Bias = w.Bias.Elements<float>(),
            Rows = b, K = w.InputWidth, Width = width, Strips = strips, RowTiles = rowTiles, Total = checked(rowTiles * strips),
            Ldu = u.Strides[0], Ldx = x.Strides[0], Ldf = fused.Strides[0], Ldg = gates.Strides[0],
            Modalities = mCount, Present = p.PresentMask,
        };
    }

    private static void Check2D(in TensorView v, string name)
    {
        Layout2D.CheckF32(v, name);
        if (v.Shape.Rank != 2) throw new ArgumentException($"{name} {v.Shape} must be 2-D");
        if (!v.RowsContiguous) throw new ArgumentException($"{name} {v}: rows must be contiguous (last stride 1)");
    }
}
