using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace OmniKernels.Kernels;

/// <summary>
/// INT8 matmul's GPU-shaped schedule (docs/kernels/int8.md, "GPU schedule"): the fp32 GEMM's block
/// shape (256 threads, 128 × 128 block, thread (tx, ty) owning rows ty + 32i and panel tx) on int8
/// data. A tile is 32 k deep: each 4 consecutive k of a row (A) or of a column (B) are packed into one
/// int32 in shared memory, so a thread's inner step is 64 four-way dot products, <c>dp4a</c> on CUDA
/// (sm_61 and later), exact int32 arithmetic elsewhere. Two shared stages, as in the fp32 GEMM. The
/// epilogue is the CPU schedule's <see cref="IInt8Epilogue"/> on a contiguous 16-column row.
/// </summary>
public static partial class Int8GemmKernel
{
    /// <summary>k-depth of one shared tile: 8 packed words of four int8 each.</summary>
    public const int Int8TileDepth = 32;

    private const int Words = Int8TileDepth / 4;
    private const int Rows = GemmKernel.BlockRows, Panels = GemmKernel.BlockPanels;
    private const int BRow = Panels * GemmKernel.PanelWidth + 4;
    private const int AStage = Words * Rows, BStage = Words * BRow;

    /// <summary>
    /// c + Σ of the four sign-extended byte products of a and b: PTX's <c>dp4a.s32.s32</c> where the
    /// backend is CUDA, the same sum in portable integer arithmetic elsewhere (OpenCL would silently
    /// drop a surviving inline-PTX statement, so the portable branch is not optional).
    /// </summary>
    internal static int Dot4(int a, int b, int c)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("dp4a.s32.s32 %0, %1, %2, %3;", out int r, a, b, c);
            return r;
        }
        return c + (sbyte)a * (sbyte)b + (sbyte)(a >> 8) * (sbyte)(b >> 8) + (sbyte)(a >> 16) * (sbyte)(b >> 16) + (a >> 24) * (b >> 24);
    }

    /// <summary>The byte of an int8 value at position <paramref name="shift"/> of a packed word.</summary>
    private static int Byte(int v, int shift) => (v & 0xFF) << shift;

    private struct Int8Prefetch
    {
        public int A0, A1, A2, A3, B0, B1, B2, B3;

        // A: row aRow, words wA..wA+3 (k = 4·word + byte). B: panel bPanel, word wB, columns cB..cB+3.
        public void Load<TQ>(in Args g, long k0, long aRow, long bPanel, int wA, int wB, int cB) where TQ : struct, IQuantized
        {
            A0 = PackA<TQ>(g, aRow, k0 + 4 * wA);
            A1 = PackA<TQ>(g, aRow, k0 + 4 * (wA + 1));
            A2 = PackA<TQ>(g, aRow, k0 + 4 * (wA + 2));
            A3 = PackA<TQ>(g, aRow, k0 + 4 * (wA + 3));
            long k = k0 + 4 * wB;
            B0 = PackB(g, bPanel, k, cB);
            B1 = PackB(g, bPanel, k, cB + 1);
            B2 = PackB(g, bPanel, k, cB + 2);
            B3 = PackB(g, bPanel, k, cB + 3);
        }

        private static int PackA<TQ>(in Args g, long row, long k) where TQ : struct, IQuantized
        {
            var qa = default(TQ);
            int w = 0;
            for (int i = 0; i < 4; i++)
                if (k + i < g.K) w |= Byte((int)qa.Load(g, row + k + i), 8 * i);
            return w;
        }

        private static int PackB(in Args g, long panel, long k, int col)
        {
            if (panel < 0) return 0;
            int w = 0;
            for (int i = 0; i < 4; i++)
                if (k + i < g.K) w |= Byte(g.B[panel + (k + i) * GemmKernel.PanelWidth + col], 8 * i);
            return w;
        }

        public readonly void Store(ArrayView<int> sa, ArrayView<int> sb, int aAt, int bAt)
        {
            sa[aAt] = A0; sa[aAt + Rows] = A1; sa[aAt + 2 * Rows] = A2; sa[aAt + 3 * Rows] = A3;
            sb[bAt] = B0; sb[bAt + Panels] = B1; sb[bAt + 2 * Panels] = B2; sb[bAt + 3 * Panels] = B3;
        }
    }

    private static void Dot4Row(ref Vec16I acc, int a, ArrayView<int> sb, int first)
    {
        acc.X0 = Dot4(a, sb[first], acc.X0); acc.X1 = Dot4(a, sb[first + 8], acc.X1); acc.X2 = Dot4(a, sb[first + 16], acc.X2); acc.X3 = Dot4(a, sb[first + 24], acc.X3);
        acc.X4 = Dot4(a, sb[first + 32], acc.X4); acc.X5 = Dot4(a, sb[first + 40], acc.X5); acc.X6 = Dot4(a, sb[first + 48], acc.X6); acc.X7 = Dot4(a, sb[first + 56], acc.X7);
        acc.X8 = Dot4(a, sb[first + 64], acc.X8); acc.X9 = Dot4(a, sb[first + 72], acc.X9); acc.X10 = Dot4(a, sb[first + 80], acc.X10); acc.X11 = Dot4(a, sb[first + 88], acc.X11);
        acc.X12 = Dot4(a, sb[first + 96], acc.X12); acc.X13 = Dot4(a, sb[first + 104], acc.X13); acc.X14 = Dot4(a, sb[first + 112], acc.X14); acc.X15 = Dot4(a, sb[first + 120], acc.X15);
    }

    private static void Dp4aKernel<TQ, TOut>(Args g) where TQ : struct, IQuantized where TOut : struct, IInt8Epilogue
    {
        var sa = SharedMemory.Allocate<int>(2 * AStage);
        var sb = SharedMemory.Allocate<int>(2 * BStage);
        int t = Group.IdxX, tx = t % Panels, ty = t / Panels;
        long colBlocks = (g.Panels + Panels - 1) / Panels;
        long gi = Grid.IdxX;
        long m0 = gi % g.RowTiles * Rows, p0 = gi / g.RowTiles * Panels;

        // Loader roles: A row t/2, words (t mod 2)·4 … +3; B panel t/32, word t mod 8, columns 4·((t/8) mod 4) … +3.
        int aR = t / 2, wA = t % 2 * 4;
        int bP = t / 32, wB = t % 8, cB = t / 8 % 4 * 4;
        long aRow = Min(m0 + aR, g.M - 1) * g.Lda;
        long bPanel = p0 + bP < g.Panels ? (p0 + bP) * g.K * GemmKernel.PanelWidth : -1;
        int aAt = wA * Rows + aR, bAt = wB * BRow + cB * Panels + bP;

        Vec16I c0 = default, c1 = default, c2 = default, c3 = default;
        var pre = default(Int8Prefetch);
        pre.Load<TQ>(g, 0, aRow, bPanel, wA, wB, cB);
        pre.Store(sa, sb, aAt, bAt);
        Group.Barrier();
        long tiles = (g.K + Int8TileDepth - 1) / Int8TileDepth;
        for (long tile = 0; tile < tiles; tile++)
        {
            int stage = (int)(tile & 1);
            bool more = tile + 1 < tiles;
            if (more) pre.Load<TQ>(g, (tile + 1) * Int8TileDepth, aRow, bPanel, wA, wB, cB);
            int ao = stage * AStage + ty, bo = stage * BStage + tx;
            for (int w = 0; w < Words; w++)
            {
                int a = ao + w * Rows, bw = bo + w * BRow;
                Dot4Row(ref c0, sa[a], sb, bw);
                Dot4Row(ref c1, sa[a + 32], sb, bw);
                Dot4Row(ref c2, sa[a + 64], sb, bw);
                Dot4Row(ref c3, sa[a + 96], sb, bw);
            }
            if (more) pre.Store(sa, sb, (1 - stage) * AStage + aAt, (1 - stage) * BStage + bAt);
            Group.Barrier();
        }

        long panel = p0 + tx;
        if (panel >= g.Panels) return;
        long col = panel * GemmKernel.PanelWidth;
        var epilogue = default(TOut);
        long r = m0 + ty;
        if (r < g.M) epilogue.Store(c0, r, col, r * g.Ldc + col, g);
        if (r + 32 < g.M) epilogue.Store(c1, r + 32, col, (r + 32) * g.Ldc + col, g);
        if (r + 64 < g.M) epilogue.Store(c2, r + 64, col, (r + 64) * g.Ldc + col, g);
        if (r + 96 < g.M) epilogue.Store(c3, r + 96, col, (r + 96) * g.Ldc + col, g);
    }

    private static KernelConfig Dp4aConfig(ref Args args)
    {
        args.RowTiles = (args.M + Rows - 1) / Rows;
        args.Total = checked(args.RowTiles * ((args.Panels + Panels - 1) / Panels));
        return new KernelConfig(checked((int)args.Total), GemmKernel.TiledThreads);
    }
}
