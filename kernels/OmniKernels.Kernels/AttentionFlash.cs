using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>
/// Attention's GPU-shaped schedule (docs/kernels/attention.md, "GPU schedule"), FlashAttention-2's
/// forward: a 64-thread work-group owns 16 query rows of one (batch, head); keys and values stream
/// through shared memory 16 rows at a time; scores, the online softmax (running max and sum per row,
/// base 2) and the output accumulator live in shared memory, so the head dimension is a launch
/// parameter (up to <see cref="FlashMaxHeadDim"/>) rather than a compile-time register count. Masks
/// (lengths, causal, the last block's padding) and the all-masked-row rule are the CPU schedule's.
/// </summary>
public static partial class AttentionKernel
{
    /// <summary>Query rows per work-group in the GPU schedule.</summary>
    public const int FlashQueries = 16;

    /// <summary>Key/value rows per shared-memory block in the GPU schedule.</summary>
    public const int FlashKeys = 16;

    /// <summary>Threads per work-group in the GPU schedule: four per query row.</summary>
    public const int FlashThreads = 64;

    /// <summary>Largest head dimension the GPU schedule takes (shared memory is sized for it).</summary>
    public const int FlashMaxHeadDim = 128;

    // Q and K rows are padded by one word so that the four rows a warp reads at once sit in different banks.
    private const int FlashLd = FlashMaxHeadDim + 1;

    private static void FlashKernel<TMul>(Args g) where TMul : struct, IMulAdd
    {
        var qs = SharedMemory.Allocate<float>(FlashQueries * FlashLd);
        var ks = SharedMemory.Allocate<float>(FlashKeys * FlashLd);
        var vs = SharedMemory.Allocate<float>(FlashKeys * FlashMaxHeadDim);
        var os = SharedMemory.Allocate<float>(FlashQueries * FlashMaxHeadDim);
        var ps = SharedMemory.Allocate<float>(FlashQueries * FlashKeys);
        var stats = SharedMemory.Allocate<float>(3 * FlashQueries);
        var mul = default(TMul);
        int t = Group.IdxX;
        long gi = Grid.IdxX;
        long qb = gi % g.QBlocks, bh = gi / g.QBlocks;
        long h = bh % g.H, b = bh / g.H;
        long q0 = qb * FlashQueries, rows = Min(FlashQueries, g.Sq - q0);
        int d = (int)g.D, ld = (int)g.D + 1;
        long qBase = b * g.QB + h * g.QH + q0 * g.QS, kBase = b * g.KB + h * g.KH, vBase = b * g.VB + h * g.VH;

        for (int idx = t; idx < FlashQueries * d; idx += FlashThreads)
        {
            int i = idx / d, c = idx % d;
            qs[i * ld + c] = g.Q[qBase + Min(i, rows - 1) * g.QS + c] * g.Scale2;
            os[idx] = 0f;
        }
        if (t < FlashQueries)
        {
            stats[t] = Masked;
            stats[FlashQueries + t] = 0f;
        }
        long valid = g.HasLengths != 0 ? Min(g.Lengths[b], g.Sk) : g.Sk;
        valid = valid < 0 ? 0 : valid;
        long end = g.Causal != 0 ? Min(valid, q0 + FlashQueries) : valid;
        Group.Barrier();

        // Score roles: thread t scores query row t / 4 against keys t mod 4 + 4u.
        int si = t / 4, sj = t % 4;
        for (long j0 = 0; j0 < end; j0 += FlashKeys)
        {
            for (int idx = t; idx < FlashKeys * d; idx += FlashThreads)
            {
                int j = idx / d, c = idx % d;
                long kr = Min(j0 + j, g.Sk - 1);
                ks[j * ld + c] = g.K[kBase + kr * g.KS + c];
                vs[idx] = g.V[vBase + kr * g.VS + c];
            }
            Group.Barrier();

            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            int qo = si * ld;
            for (int c = 0; c < d; c++)
            {
                float q = qs[qo + c];
                s0 = mul.Apply(q, ks[sj * ld + c], s0);
                s1 = mul.Apply(q, ks[(sj + 4) * ld + c], s1);
                s2 = mul.Apply(q, ks[(sj + 8) * ld + c], s2);
                s3 = mul.Apply(q, ks[(sj + 12) * ld + c], s3);
            }
            // Key j is visible to query row i when j < valid and, if causal, j ≤ q0 + i.
            long limit = g.Causal != 0 ? Min(valid, q0 + si + 1) : valid;
            long key = j0 + sj;
            ps[si * FlashKeys + sj] = key < limit ? s0 : Masked;
            ps[si * FlashKeys + sj + 4] = key + 4 < limit ? s1 : Masked;
            ps[si * FlashKeys + sj + 8] = key + 8 < limit ? s2 : Masked;
            ps[si * FlashKeys + sj + 12] = key + 12 < limit ? s3 : Masked;
            Group.Barrier();

            if (t < FlashQueries)
            {
                float old = stats[t], max = old;
                for (int j = 0; j < FlashKeys; j++) max = MathF.Max(max, ps[t * FlashKeys + j]);
                float rescale = default(HardwareExp2).Apply(old - max), sum = stats[FlashQueries + t] * rescale;
                for (int j = 0; j < FlashKeys; j++)
                {
                    float p = default(HardwareExp2).Apply(ps[t * FlashKeys + j] - max);
                    ps[t * FlashKeys + j] = p;
                    sum += p;
                }
                stats[t] = max;
                stats[FlashQueries + t] = sum;
                stats[2 * FlashQueries + t] = rescale;
            }
            Group.Barrier();

            for (int idx = t; idx < FlashQueries * d; idx += FlashThreads)
            {
                int i = idx / d, c = idx % d;
                float acc = os[idx] * stats[2 * FlashQueries + i];
                for (int j = 0; j < FlashKeys; j++) acc = mul.Apply(ps[i * FlashKeys + j], vs[j * d + c], acc);
                os[idx] = acc;
            }
            Group.Barrier();
        }

        long oBase = b * g.OB + h * g.OH + q0 * g.OS;
        for (int idx = t; idx < rows * d; idx += FlashThreads)
        {
            int i = idx / d, c = idx % d;
            // A row whose every key was masked kept the initial max: it is written as zeros.
            float inv = stats[i] > 0.5f * Masked ? 1f / stats[FlashQueries + i] : 0f;
            g.O[oBase + i * g.OS + c] = os[idx] * inv;
        }
    }
}
