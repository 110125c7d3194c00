using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>
/// The GEMM's GPU-shaped schedule (docs/kernels/gemm.md, "GPU schedule"): a 256-thread work-group
/// computes a 128 × 128 block of C. A and B tiles of depth 8 are staged through shared memory in
/// two stages (the next tile's global loads are in flight while the current one is multiplied; one
/// barrier per tile). Thread (tx, ty) owns rows ty + 32i (i &lt; 4) and the whole 16-column panel tx
/// of the block, a 4 × 16 micro-tile of accumulators (64 registers), so the epilogue is the CPU
/// schedule's own <see cref="ITileTerm"/> and <see cref="IActivation"/> on a contiguous 16-float row.
/// B is stored in shared memory swizzled (column n of the block at (n mod 16)·8 + n / 16) so that the
/// eight threads that read one k row read consecutive words: no bank conflicts.
/// </summary>
public static partial class GemmKernel
{
    /// <summary>Rows of C per work-group in the GPU schedule.</summary>
    public const int BlockRows = 128;

    /// <summary>Panels (16 columns each) of C per work-group in the GPU schedule: 128 columns.</summary>
    public const int BlockPanels = 8;

    /// <summary>k-depth of one shared-memory tile.</summary>
    public const int TileDepth = 8;

    /// <summary>Threads per work-group in the GPU schedule: 8 panel columns × 32 row lanes.</summary>
    public const int TiledThreads = 256;

    private const int BlockCols = BlockPanels * PanelWidth;
    // Row of the B tile padded by 4 words, so the shared stores of one warp spread over the banks.
    private const int BRow = BlockCols + 4;
    private const int AStage = TileDepth * BlockRows, BStage = TileDepth * BRow;

    private static KernelConfig TiledConfig(in Args args) =>
        new(checked((int)(args.Total / args.RowTiles / args.Panels * ((args.M + BlockRows - 1) / BlockRows) * ((args.Panels + BlockPanels - 1) / BlockPanels))), TiledThreads);

    /// <summary>The CPU schedule's arguments recounted for 128-row blocks: RowTiles = row blocks, Total = batch.</summary>
    private static Args TiledArgs(in Args args)
    {
        var t = args;
        t.Total = args.Total / args.RowTiles / args.Panels;
        t.RowTiles = (args.M + BlockRows - 1) / BlockRows;
        return t;
    }

    /// <summary>Loads this thread's share of the next A and B tiles into registers (zero past K and past the last panel).</summary>
    private struct TilePrefetch
    {
        public float A0, A1, A2, A3, B0, B1, B2, B3;

        public void Load<TA>(in Args g, long k0, long aRow, long bPanel, int kA, int kB, int cB) where TA : struct, IAAddress
        {
            var at = default(TA);
            long k = k0 + kA;
            A0 = k < g.K ? g.A[aRow + at.Col(g.ACols, k)] : 0f;
            A1 = k + 1 < g.K ? g.A[aRow + at.Col(g.ACols, k + 1)] : 0f;
            A2 = k + 2 < g.K ? g.A[aRow + at.Col(g.ACols, k + 2)] : 0f;
            A3 = k + 3 < g.K ? g.A[aRow + at.Col(g.ACols, k + 3)] : 0f;
            bool inB = bPanel >= 0 && k0 + kB < g.K;
            long o = bPanel + (k0 + kB) * PanelWidth + cB;
            B0 = inB ? g.B[o] : 0f;
            B1 = inB ? g.B[o + 1] : 0f;
            B2 = inB ? g.B[o + 2] : 0f;
            B3 = inB ? g.B[o + 3] : 0f;
        }

        public readonly void Store(ArrayView<float> sa, ArrayView<float> sb, int aAt, int bAt)
        {
            sa[aAt] = A0; sa[aAt + BlockRows] = A1; sa[aAt + 2 * BlockRows] = A2; sa[aAt + 3 * BlockRows] = A3;
            sb[bAt] = B0; sb[bAt + BlockPanels] = B1; sb[bAt + 2 * BlockPanels] = B2; sb[bAt + 3 * BlockPanels] = B3;
        }
    }

    private static Vec16 LoadSwizzled(ArrayView<float> sb, int first)
    {
        Vec16 r;
        r.X0 = sb[first]; r.X1 = sb[first + 8]; r.X2 = sb[first + 16]; r.X3 = sb[first + 24];
        r.X4 = sb[first + 32]; r.X5 = sb[first + 40]; r.X6 = sb[first + 48]; r.X7 = sb[first + 56];
        r.X8 = sb[first + 64]; r.X9 = sb[first + 72]; r.X10 = sb[first + 80]; r.X11 = sb[first + 88];
        r.X12 = sb[first + 96]; r.X13 = sb[first + 104]; r.X14 = sb[first + 112]; r.X15 = sb[first + 120];
        return r;
    }

    private static void TiledKernel<TA, TMul, TAct, TBias, TRes>(Args g)
        where TA : struct, IAAddress where TMul : struct, IMulAdd where TAct : struct, IActivation where TBias : struct, ITileTerm where TRes : struct, ITileTerm
    {
        var sa = SharedMemory.Allocate<float>(2 * AStage);
        var sb = SharedMemory.Allocate<float>(2 * BStage);
        int t = Group.IdxX, tx = t % BlockPanels, ty = t / BlockPanels;
        long colBlocks = (g.Panels + BlockPanels - 1) / BlockPanels;
        long gi = Grid.IdxX;
        long rb = gi % g.RowTiles, rest = gi / g.RowTiles;
        long cbk = rest % colBlocks, b = rest / colBlocks;
        long m0 = rb * BlockRows, p0 = cbk * BlockPanels;

        // Loader roles: A row t/2 of the block, k-quad (t mod 2)·4; B panel t/32, k (t mod 8), columns 4·((t/8) mod 4).
        int aR = t / 2, kA = t % 2 * 4;
        int bP = t / 32, kB = t % 8, cB = t / 8 % 4 * 4;
        long aRow = b * g.BatchA + default(TA).Row(g.ARows, Min(m0 + aR, g.M - 1), g.Lda);
        long bPanel = p0 + bP < g.Panels ? (g.BatchB == 0 ? 0 : b * g.BatchB) + (p0 + bP) * g.K * PanelWidth : -1;
        int aAt = kA * BlockRows + aR, bAt = kB * BRow + cB * BlockPanels + bP;

        Vec16 c0 = default, c1 = default, c2 = default, c3 = default;
        var pre = default(TilePrefetch);
        pre.Load<TA>(g, 0, aRow, bPanel, kA, kB, cB);
        pre.Store(sa, sb, aAt, bAt);
        Group.Barrier();
        long tiles = (g.K + TileDepth - 1) / TileDepth;
        for (long tile = 0; tile < tiles; tile++)
        {
            int stage = (int)(tile & 1);
            bool more = tile + 1 < tiles;
            if (more) pre.Load<TA>(g, (tile + 1) * TileDepth, aRow, bPanel, kA, kB, cB);
            int ao = stage * AStage + ty, bo = stage * BStage + tx;
            for (int kk = 0; kk < TileDepth; kk++)
            {
                var bv = LoadSwizzled(sb, bo + kk * BRow);
                int a = ao + kk * BlockRows;
                c0.Fma<TMul>(sa[a], bv);
                c1.Fma<TMul>(sa[a + 32], bv);
                c2.Fma<TMul>(sa[a + 64], bv);
                c3.Fma<TMul>(sa[a + 96], bv);
            }
            if (more) pre.Store(sa, sb, (1 - stage) * AStage + aAt, (1 - stage) * BStage + bAt);
            Group.Barrier();
        }

        long panel = p0 + tx;
        if (panel >= g.Panels) return;
        long col = panel * PanelWidth;
        TiledEpilogue<TAct, TBias, TRes>(g, ref c0, b, m0 + ty, col);
        TiledEpilogue<TAct, TBias, TRes>(g, ref c1, b, m0 + ty + 32, col);
        TiledEpilogue<TAct, TBias, TRes>(g, ref c2, b, m0 + ty + 64, col);
        TiledEpilogue<TAct, TBias, TRes>(g, ref c3, b, m0 + ty + 96, col);
    }

    private static void TiledEpilogue<TAct, TBias, TRes>(in Args g, ref Vec16 c, long b, long row, long col)
        where TAct : struct, IActivation where TBias : struct, ITileTerm where TRes : struct, ITileTerm
    {
        if (row >= g.M) return;
        default(TBias).AddTo(ref c, g.Bias, col);
        c.Apply<TAct>();
        default(TRes).AddTo(ref c, g.Res, b * g.BatchR + row * g.Ldr + col);
        c.Store(g.C, b * g.BatchC + row * g.Ldc + col);
    }
}
