using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>
/// The gated fusion's GPU-shaped schedule (docs/kernels/gated_fusion.md, "GPU-shaped schedule"):
/// a 256-thread work-group is 16 lanes (the 16 columns of one weight panel) × 16 k-slices. The
/// k-slices split the gate GEMV's reduction over the present input blocks (thread (s, j) sums
/// k ≡ s mod 16 for lane j, for 4 rows at once, reading 256 consecutive weights per step), the
/// partial sums are reduced through shared memory (a 4-step tree, no warp shuffles: PoCL has none),
/// and threads of slices 0–3 finish one row each: bias, σ or the masked softmax, and the weighted
/// sum, all in the same launch. The weights are the CPU schedule's panels, unchanged.
/// </summary>
public static partial class GatedFusionKernel
{
    /// <summary>Threads per work-group of the GPU schedule: 16 lanes × <see cref="KSlices"/>.</summary>
    public const int GroupThreads = 256;

    /// <summary>Slices the GPU schedule splits k into (threads per lane).</summary>
    public const int KSlices = GroupThreads / W;

    /// <summary>
    /// Sums this group's four rows × 16 lanes of panel <paramref name="panel"/> over k in
    /// [k0, k1) (thread slice s takes k ≡ k0 + s mod 16) into this thread's accumulators.
    /// </summary>
    private static void Accumulate<TW>(in Args g, long panel, long k0, long k1, long u0, long u1, long u2, long u3,
        ref float a0, ref float a1, ref float a2, ref float a3) where TW : struct, IGateWeights
    {
        var wt = default(TW);
        long pb = panel * g.K * W + Group.IdxX % W;
        for (long k = k0 + Group.IdxX / W; k < k1; k += KSlices)
        {
            float w = wt.At(g, pb + k * W);
            a0 += w * g.U[u0 + k];
            a1 += w * g.U[u1 + k];
            a2 += w * g.U[u2 + k];
            a3 += w * g.U[u3 + k];
        }
    }

    /// <summary>
    /// Reduces every thread's four partial sums over the k-slices; afterwards
    /// partial[r·256 + j] holds row r's sum for lane j. Ends with a barrier.
    /// </summary>
    private static void ReduceSlices(ArrayView<float> partial, float a0, float a1, float a2, float a3)
    {
        int t = Group.IdxX, slice = t / W;
        partial[t] = a0;
        partial[GroupThreads + t] = a1;
        partial[2 * GroupThreads + t] = a2;
        partial[3 * GroupThreads + t] = a3;
        Group.Barrier();
        for (int s = KSlices / 2; s > 0; s >>= 1)
        {
            if (slice < s)
            {
                int o = t + s * W;
                partial[t] += partial[o];
                partial[GroupThreads + t] += partial[GroupThreads + o];
                partial[2 * GroupThreads + t] += partial[2 * GroupThreads + o];
                partial[3 * GroupThreads + t] += partial[3 * GroupThreads + o];
            }
            Group.Barrier();
        }
    }

    // Group = (row tile, 16-column strip), row tiles fastest. Thread (slice r < 4, lane j) finishes row r0 + r, column e0 + j.
    private static void GroupSigmoidKernel<TW>(Args g) where TW : struct, IGateWeights
    {
        var partial = SharedMemory.Allocate<float>(TileRows * GroupThreads);
        int t = Group.IdxX, lane = t % W, slice = t / W;
        long strip = Grid.IdxX / g.RowTiles, r0 = Grid.IdxX % g.RowTiles * TileRows, last = g.Rows - 1;
        long u0 = r0 * g.Ldu, u1 = Min(r0 + 1, last) * g.Ldu, u2 = Min(r0 + 2, last) * g.Ldu, u3 = Min(r0 + 3, last) * g.Ldu;
        long col = StripStart(strip, g.Width) + lane, row = r0 + slice;
        // Each output element is stored by exactly one thread: the last strip leaves the columns it shares with the one before to it.
        bool owns = slice < TileRows && row < g.Rows && col < g.Width && col >= strip * W;
        long xRow = Min(row, last) * g.Ldx, xCol = Min(col, g.Width - 1), gRow = row * g.Ldg;
        float fused = 0f;
        for (int m = 0; m < g.Modalities; m++)
        {
            if (((g.Present >> m) & 1u) == 0)
            {
                if (owns) g.Gates[gRow + m * g.Width + col] = 0f;
                continue;
            }
            long panel = m * g.Strips + strip;
            float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
            for (int mi = 0; mi < g.Modalities; mi++)
                if (((g.Present >> mi) & 1u) != 0)
                    Accumulate<TW>(g, panel, mi * g.Width, (mi + 1) * g.Width, u0, u1, u2, u3, ref a0, ref a1, ref a2, ref a3);
            ReduceSlices(partial, a0, a1, a2, a3);
            if (slice < TileRows)
            {
                long n = panel * W + lane;
                float gate = KernelMath.Sigmoid(default(TW).Finish(g, partial[slice * GroupThreads + lane], n) + g.Bias[n]);
                if (owns) g.Gates[gRow + m * g.Width + col] = gate;
                fused += gate * g.X[xRow + m * g.Width + xCol];
            }
            Group.Barrier();
        }
        if (owns) g.Fused[row * g.Ldf + col] = fused;
    }

    // Group = (row tile, chunk of 256 fused columns), row tiles fastest. Every chunk recomputes its rows' M logits.
    private static void GroupSoftmaxKernel<TW>(Args g) where TW : struct, IGateWeights
    {
        var partial = SharedMemory.Allocate<float>(TileRows * GroupThreads);
        var weights = SharedMemory.Allocate<float>(TileRows * W);
        int t = Group.IdxX, lane = t % W, slice = t / W;
        long chunk = Grid.IdxX / g.RowTiles, r0 = Grid.IdxX % g.RowTiles * TileRows, last = g.Rows - 1;
        long u0 = r0 * g.Ldu, u1 = Min(r0 + 1, last) * g.Ldu, u2 = Min(r0 + 2, last) * g.Ldu, u3 = Min(r0 + 3, last) * g.Ldu;
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
        Accumulate<TW>(g, 0, 0, g.K, u0, u1, u2, u3, ref a0, ref a1, ref a2, ref a3);
        ReduceSlices(partial, a0, a1, a2, a3);
        // Thread (r, j) turns its logit into row r's softmax weight of modality j (0 when absent or j ≥ M).
        if (slice < TileRows)
        {
            int rb = slice * GroupThreads;
            float max = float.NegativeInfinity;
            for (int m = 0; m < g.Modalities; m++)
                if (((g.Present >> m) & 1u) != 0) max = MathF.Max(max, default(TW).Finish(g, partial[rb + m], m) + g.Bias[m]);
            float sum = 0f;
            for (int m = 0; m < g.Modalities; m++)
                if (((g.Present >> m) & 1u) != 0) sum += MathF.Exp(default(TW).Finish(g, partial[rb + m], m) + g.Bias[m] - max);
            bool present = lane < g.Modalities && ((g.Present >> lane) & 1u) != 0;
            float p = present ? MathF.Exp(default(TW).Finish(g, partial[rb + lane], lane) + g.Bias[lane] - max) / sum : 0f;
            weights[slice * W + lane] = p;
            long row = r0 + slice;
            if (chunk == 0 && row < g.Rows && lane < g.Modalities) g.Gates[row * g.Ldg + lane] = p;
        }
        Group.Barrier();
        long c = chunk * GroupThreads + t;
        if (c >= g.Width) return;
        for (int r = 0; r < TileRows; r++)
        {
            long row = r0 + r;
            if (row >= g.Rows) return;
            float f = 0f;
            for (int m = 0; m < g.Modalities; m++)
                if (((g.Present >> m) & 1u) != 0) f += weights[r * W + m] * g.X[row * g.Ldx + m * g.Width + c];
            g.Fused[row * g.Ldf + c] = f;
        }
    }

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Grouped =
        KernelTables.Explicit<Args>("gated_fusion", typeof(GatedFusionKernel),
            [new(nameof(GroupSigmoidKernel), KernelSchedule.Gpu, GroupThreads), new(nameof(GroupSoftmaxKernel), KernelSchedule.Gpu, GroupThreads)],
            [typeof(Int8Weights), typeof(Fp32Weights)]);

    private static void RunGrouped(DeviceContext ctx, in GatedFusionWeightsView w, in Args args, bool sigmoid)
    {
        long columnGroups = sigmoid ? args.Strips : (args.Width + GroupThreads - 1) / GroupThreads;
        var kernel = Grouped.Get(ctx, sigmoid ? 0 : 1, w.Int8.HasValue ? 0 : 1);
        kernel(ctx.Stream, new KernelConfig(checked((int)(args.RowTiles * columnGroups)), GroupThreads), args);
    }
}
