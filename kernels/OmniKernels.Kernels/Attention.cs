using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>How a 4-D Q, K, V or O tensor orders its dimensions (the head dimension D is always last and dense).</summary>
public enum AttentionLayout
{
    /// <summary>[batch, heads, sequence, head_dim].</summary>
    Bhsd,
    /// <summary>[batch, sequence, heads, head_dim]: what a fused QKV projection produces, viewed by strides.</summary>
    Bshd,
}

/// <summary>Typed parameters of an attention launch.</summary>
/// <param name="Scale">Multiplies Q·Kᵀ; null means 1/√D.</param>
/// <param name="Causal">Query i sees keys j ≤ i (PyTorch's <c>is_causal</c>: top-left aligned when S_q ≠ S_k).</param>
public readonly record struct AttentionParams(float? Scale = null, bool Causal = false);

/// <summary>
/// Fused attention O = softmax(Q·Kᵀ·scale + mask)·V that never materializes the S_q × S_k scores.
/// CPU-shaped schedule (docs/kernels/attention.md): a work-item owns 16 query rows of one (batch,
/// head) as SIMD lanes; it streams keys 18 at a time, scores them as an 18-key × 16-row register
/// tile (K broadcast from its natural layout, Q transposed and pre-scaled by log2(e)·scale into a
/// per-work-item scratch) one 6-key register tile at a time, keeps a running max and sum per row
/// (online softmax in base 2), and rescales its D × 16 accumulator, which lives in the same scratch
/// (L1-resident) with the step's probabilities. Masks: keys at
/// or past a batch's valid length, causal, and the padding of the last key tile all become −1e30;
/// a row with no visible key is written as zeros. The GPU-shaped schedule (FlashAttention-2's
/// forward, AttentionFlash.cs) is chosen by the launcher on GPU-scheduled devices.
/// </summary>
public static partial class AttentionKernel
{
    /// <summary>Query rows per work-item (SIMD lanes).</summary>
    public const int QueryBlock = 16;

    /// <summary>Keys per score tile: three 6-key register tiles.</summary>
    public const int KeyStep = 18;

    private const float Masked = -1e30f;
    private const float Log2E = 1.44269504088896341f;

    /// <summary>Scratch floats one work-item uses: transposed Q, the accumulator, one key step of probabilities, row max and row sum.</summary>
    private static long ScratchPerItem(long d) => (2 * d + KeyStep + 2) * QueryBlock;

    /// <summary>Floats of scratch a launch needs: O(B·H·S_q·D), never S_q·S_k.</summary>
    public static long ScratchElements(long batch, long heads, long seqQ, long headDim) =>
        batch * heads * ((seqQ + QueryBlock - 1) / QueryBlock) * ScratchPerItem(headDim);

    internal struct Args
    {
        public ArrayView<float> Q, K, V, O, Scratch;
        public ArrayView<int> Lengths;
        public long Sq, Sk, D, H, QBlocks, Total;
        public long QB, QH, QS, KB, KH, KS, VB, VH, VS, OB, OH, OS;
        public float Scale2;
        public int Causal, HasLengths;
    }

    /// <summary>Offsets of six key (or value) rows, clamped to the last row so that loads stay in bounds.</summary>
    internal struct Rows6
    {
        public long R0, R1, R2, R3, R4, R5;

        public static Rows6 At(long baseOffset, long first, long last, long stride)
        {
            Rows6 r;
            r.R0 = baseOffset + Min(first, last) * stride;
            r.R1 = baseOffset + Min(first + 1, last) * stride;
            r.R2 = baseOffset + Min(first + 2, last) * stride;
            r.R3 = baseOffset + Min(first + 3, last) * stride;
            r.R4 = baseOffset + Min(first + 4, last) * stride;
            r.R5 = baseOffset + Min(first + 5, last) * stride;
            return r;
        }
    }

    /// <summary>Six keys × sixteen query rows of scores, then of probabilities.</summary>
    internal struct Tile6
    {
        public Vec16 S0, S1, S2, S3, S4, S5;

        public void Score<TMul>(ArrayView<float> k, in Rows6 rows, long d, in Vec16 q) where TMul : struct, IMulAdd
        {
            S0.Fma<TMul>(k[rows.R0 + d], q); S1.Fma<TMul>(k[rows.R1 + d], q); S2.Fma<TMul>(k[rows.R2 + d], q);
            S3.Fma<TMul>(k[rows.R3 + d], q); S4.Fma<TMul>(k[rows.R4 + d], q); S5.Fma<TMul>(k[rows.R5 + d], q);
        }

        public void Mask(float first, in Vec16 limit)
        {
            S0.MaskFrom(first, limit); S1.MaskFrom(first + 1, limit); S2.MaskFrom(first + 2, limit);
            S3.MaskFrom(first + 3, limit); S4.MaskFrom(first + 4, limit); S5.MaskFrom(first + 5, limit);
        }

        public readonly void MaxInto(ref Vec16 m)
        {
            m.Zip<MaxOp>(S0); m.Zip<MaxOp>(S1); m.Zip<MaxOp>(S2); m.Zip<MaxOp>(S3); m.Zip<MaxOp>(S4); m.Zip<MaxOp>(S5);
        }

        public readonly void Store(ArrayView<float> scratch, long offset)
        {
            S0.Store(scratch, offset); S1.Store(scratch, offset + QueryBlock); S2.Store(scratch, offset + 2 * QueryBlock);
            S3.Store(scratch, offset + 3 * QueryBlock); S4.Store(scratch, offset + 4 * QueryBlock); S5.Store(scratch, offset + 5 * QueryBlock);
        }
    }

    private static long Min(long a, long b) => a < b ? a : b;

    private static void Kernel<TMul>(Args g) where TMul : struct, IMulAdd
    {
        long t = Grid.GlobalIndex.X;
        if (t >= g.Total) return;
        long qb = t % g.QBlocks, bh = t / g.QBlocks;
        long h = bh % g.H, b = bh / g.H;
        long q0 = qb * QueryBlock, rows = Min(QueryBlock, g.Sq - q0), d = g.D;
        long qt = t * ScratchPerItem(d), acc = qt + d * QueryBlock, probs = acc + d * QueryBlock, stats = probs + KeyStep * QueryBlock;
        long qBase = b * g.QB + h * g.QH + q0 * g.QS, kBase = b * g.KB + h * g.KH, vBase = b * g.VB + h * g.VH;

        Vec16 zero = default;
        for (long c = 0; c < d; c++)
        {
            var col = Vec16.LoadRows(g.Q, qBase + c, g.QS, rows);
            col.Scale(g.Scale2);
            col.Store(g.Scratch, qt + c * QueryBlock);
            zero.Store(g.Scratch, acc + c * QueryBlock);
        }

        // Keys visible to lane i: [0, limit_i). Causal rows see one more key each.
        long valid = g.HasLengths != 0 ? Min(g.Lengths[b], g.Sk) : g.Sk;
        valid = valid < 0 ? 0 : valid;
        var limit = Vec16.Broadcast(valid);
        long end = valid;
        if (g.Causal != 0)
        {
            Vec16 causal;
            causal.X0 = q0 + 1; causal.X1 = q0 + 2; causal.X2 = q0 + 3; causal.X3 = q0 + 4;
            causal.X4 = q0 + 5; causal.X5 = q0 + 6; causal.X6 = q0 + 7; causal.X7 = q0 + 8;
            causal.X8 = q0 + 9; causal.X9 = q0 + 10; causal.X10 = q0 + 11; causal.X11 = q0 + 12;
            causal.X12 = q0 + 13; causal.X13 = q0 + 14; causal.X14 = q0 + 15; causal.X15 = q0 + 16;
            limit.Zip<MinOp>(causal);
            end = Min(valid, q0 + QueryBlock);
        }

        var max = Vec16.Broadcast(Masked);
        Vec16 sum = default;
        long lastKey = g.Sk - 1;
        for (long j = 0; j < end; j += KeyStep)
        {
            // Scores, one 6-key register tile at a time (12 ymm), stored to the probabilities scratch.
            var newMax = max;
            for (long sub = 0; sub < KeyStep; sub += 6)
            {
                var rows6 = Rows6.At(kBase, j + sub, lastKey, g.KS);
                Tile6 tile = default;
                for (long c = 0; c < d; c++)
                    tile.Score<TMul>(g.K, rows6, c, Vec16.Load(g.Scratch, qt + c * QueryBlock));
                tile.Mask(j + sub, limit);
                tile.MaxInto(ref newMax);
                tile.Store(g.Scratch, probs + sub * QueryBlock);
            }
            var rescale = max;
            rescale.Zip<SubOp>(newMax);
            rescale.Apply<Exp2>();
            sum.Zip<MulOp>(rescale);
            for (long u = 0; u < KeyStep; u++)
            {
                var pu = Vec16.Load(g.Scratch, probs + u * QueryBlock);
                pu.Zip<SubOp>(newMax);
                pu.Apply<Exp2>();
                sum.Zip<AddOp>(pu);
                pu.Store(g.Scratch, probs + u * QueryBlock);
            }
            max = newMax;

            // acc = acc·rescale + P·V, four columns of D at a time: V broadcast from its natural layout,
            // each probability vector loaded once per four columns.
            long c4 = 0;
            for (; c4 + 4 <= d; c4 += 4)
            {
                var a0 = Vec16.Load(g.Scratch, acc + c4 * QueryBlock);
                var a1 = Vec16.Load(g.Scratch, acc + (c4 + 1) * QueryBlock);
                var a2 = Vec16.Load(g.Scratch, acc + (c4 + 2) * QueryBlock);
                var a3 = Vec16.Load(g.Scratch, acc + (c4 + 3) * QueryBlock);
                a0.Zip<MulOp>(rescale); a1.Zip<MulOp>(rescale); a2.Zip<MulOp>(rescale); a3.Zip<MulOp>(rescale);
                for (long u = 0; u < KeyStep; u++)
                {
                    var pu = Vec16.Load(g.Scratch, probs + u * QueryBlock);
                    long vr = vBase + Min(j + u, lastKey) * g.VS + c4;
                    a0.Fma<TMul>(g.V[vr], pu);
                    a1.Fma<TMul>(g.V[vr + 1], pu);
                    a2.Fma<TMul>(g.V[vr + 2], pu);
                    a3.Fma<TMul>(g.V[vr + 3], pu);
                }
                a0.Store(g.Scratch, acc + c4 * QueryBlock);
                a1.Store(g.Scratch, acc + (c4 + 1) * QueryBlock);
                a2.Store(g.Scratch, acc + (c4 + 2) * QueryBlock);
                a3.Store(g.Scratch, acc + (c4 + 3) * QueryBlock);
            }
            for (; c4 < d; c4++)
            {
                var a = Vec16.Load(g.Scratch, acc + c4 * QueryBlock);
                a.Zip<MulOp>(rescale);
                for (long u = 0; u < KeyStep; u++)
                    a.Fma<TMul>(g.V[vBase + Min(j + u, lastKey) * g.VS + c4], Vec16.Load(g.Scratch, probs + u * QueryBlock));
                a.Store(g.Scratch, acc + c4 * QueryBlock);
            }
        }

        max.Store(g.Scratch, stats);
        sum.Store(g.Scratch, stats + QueryBlock);
        long oBase = b * g.OB + h * g.OH + q0 * g.OS;
        for (long i = 0; i < rows; i++)
        {
            // A row whose every key was masked kept the initial max: it is written as zeros.
            float inv = g.Scratch[stats + i] > 0.5f * Masked ? 1f / g.Scratch[stats + QueryBlock + i] : 0f;
            for (long c = 0; c < d; c++)
                g.O[oBase + i * g.OS + c] = g.Scratch[acc + c * QueryBlock + i] * inv;
        }
    }

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Variants =
        KernelTables.Explicit<Args>("attention", typeof(AttentionKernel),
            [new(nameof(Kernel), KernelSchedule.Cpu), new(nameof(FlashKernel), KernelSchedule.Gpu, FlashThreads)], KernelTables.MulAdds);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Variants.Entries;

    /// <summary>
    /// O = softmax(Q·Kᵀ·scale + mask)·V. Q and O are [B, H, S_q, D] or [B, S_q, H, D] as
    /// <paramref name="layout"/> says, K and V likewise with S_k; any strides with a dense last
    /// dimension (so slices of a fused QKV projection work without copies). <paramref name="lengths"/>
    /// (int32 [B], optional) hides keys at or past each batch's length. <paramref name="scratch"/>
    /// holds at least <see cref="ScratchElements"/> floats; when null one is rented from the pool for
    /// the call (the GPU schedule needs none and ignores it; it takes head dimensions up to
    /// <see cref="FlashMaxHeadDim"/>). Q, K, V must not overlap O or the scratch.
    /// </summary>
    public static void Launch(DeviceContext ctx, TensorView q, TensorView k, TensorView v, TensorView o,
        AttentionLayout layout = AttentionLayout.Bhsd, AttentionParams p = default, TensorView? lengths = null, TensorView? scratch = null)
    {
        var args = Validate(q, k, v, o, layout, p, lengths);
        if (ctx.Schedule == KernelSchedule.Gpu)
        {
            if (args.D > FlashMaxHeadDim)
                throw new NotSupportedException($"the GPU attention schedule takes head_dim up to {FlashMaxHeadDim}; got {args.D} (use OMNI_SCHEDULE=cpu)");
            long batch = args.Total / args.QBlocks / args.H;
            args.QBlocks = (args.Sq + FlashQueries - 1) / FlashQueries;
            args.Total = checked(batch * args.H * args.QBlocks);
            Variants.Get(ctx, 1, KernelTables.MulAdd(ctx))(ctx.Stream, new KernelConfig(checked((int)args.Total), FlashThreads), args);
            return;
        }
        long need = ScratchElements(args.Total / args.QBlocks / args.H, args.H, args.Sq, args.D);
        Tensor? rented = null;
        try
        {
            if (scratch is { } s)
            {
                Layout2D.CheckF32(s, "scratch");
                if (s.Capacity < need) throw new ArgumentException($"scratch holds {s.Capacity} floats; this launch needs {need}");
                args.Scratch = s.Elements<float>();
            }
            else
            {
                rented = Tensor.Allocate(ctx, DType.F32, new Shape(need));
                args.Scratch = rented.View.Elements<float>();
            }
            Variants.Get(ctx, 0, KernelTables.MulAdd(ctx))(ctx.Stream, KernelTables.PerItemConfig(ctx, args.Total), args);
        }
        finally
        {
            // The pool hands this memory out again only after the stream has consumed it.
            if (rented is not null)
            {
                ctx.Synchronize();
                rented.Dispose();
            }
        }
    }

    private readonly record struct Dims(long B, long H, long S, long D, long SB, long SH, long SS);

    private static Dims Read(in TensorView t, string name, AttentionLayout layout)
    {
        Layout2D.CheckF32(t, name);
        if (t.Shape.Rank != 4) throw new ArgumentException($"{name} {t.Shape} must be 4-D ({(layout == AttentionLayout.Bhsd ? "[B, H, S, D]" : "[B, S, H, D]")})");
        if (t.Strides[3] != 1) throw new ArgumentException($"{name} {t}: the head dimension must be dense");
        return layout == AttentionLayout.Bhsd
            ? new Dims(t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3], t.Strides[0], t.Strides[1], t.Strides[2])
            : new Dims(t.Shape[0], t.Shape[2], t.Shape[1], t.Shape[3], t.Strides[0], t.Strides[2], t.Strides[1]);
    }

    private static Args Validate(in TensorView q, in TensorView k, in TensorView v, in TensorView o, AttentionLayout layout, in AttentionParams p, TensorView? lengths)
    {
        var dq = Read(q, "q", layout);
        var dk = Read(k, "k", layout);
        var dv = Read(v, "v", layout);
        var dO = Read(o, "o", layout);
        if (dk.B != dq.B || dk.H != dq.H || dk.D != dq.D)
            throw new ArgumentException($"k {k.Shape} must match q {q.Shape} in batch, heads and head_dim");
        if (dv.B != dk.B || dv.H != dk.H || dv.S != dk.S || dv.D != dk.D)
            throw new ArgumentException($"v {v.Shape} must match k {k.Shape}");
        if (dO.B != dq.B || dO.H != dq.H || dO.S != dq.S || dO.D != dq.D)
            throw new ArgumentException($"o {o.Shape} must match q {q.Shape}");
        float scale = p.Scale ?? 1f / MathF.Sqrt(dq.D);
        if (!float.IsFinite(scale)) throw new ArgumentException($"scale must be finite, got {scale}");
        if (lengths is { } l)
        {
            if (l.DType != DType.I32 || l.Shape.Rank != 1 || l.Shape[0] != dq.B || l.Strides[0] != 1)
                throw new ArgumentException($"lengths {l} must be dense int32 [{dq.B}]");
        }
        long qBlocks = (dq.S + QueryBlock - 1) / QueryBlock;
        return new Args
        {
            Q = q.Elements<float>(), K = k.Elements<float>(), V = v.Elements<float>(), O = o.Elements<float>(),
            Lengths = lengths is { } len ? len.Elements<int>() : default,
            Sq = dq.S, Sk = dk.S, D = dq.D, H = dq.H, QBlocks = qBlocks, Total = checked(dq.B * dq.H * qBlocks),
            QB = dq.SB, QH = dq.SH, QS = dq.SS, KB = dk.SB, KH = dk.SH, KS = dk.SS,
            VB = dv.SB, VH = dv.SH, VS = dv.SS, OB = dO.SB, OH = dO.SH, OS = dO.SS,
            Scale2 = scale * Log2E, Causal = p.Causal ? 1 : 0, HasLengths = lengths.HasValue ? 1 : 0,
        };
    }
}
