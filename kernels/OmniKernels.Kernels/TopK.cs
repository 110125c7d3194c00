using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>
/// Retrieval scoring (docs/kernels/topk.md): cosine scores of queries against an index of
/// L2-normalised rows, then the k best per query, both on the device.
/// <para>
/// Scores are the GEMM (<see cref="GemmKernel.Launch"/>) of the queries [Q, E] against the index
/// packed once as Bᵀ (<see cref="PackedMatrix.Pack"/> with transposed: true on the [N, E] rows):
/// for one query a GEMV, which the GEMM serves with its rows clamped to the one row there is.
/// </para>
/// <para>
/// Selection is k passes of an argmax over a query's N scores, each pass taking the best item that
/// ranks after the previous pick, rather than ILGPU.Algorithms' radix sort of (score, index) pairs:
/// retrieval wants k of tens against N of thousands, and the sort orders all N (several launches
/// over the whole row and a temporary buffer) to keep k, while the passes read N·k scores in one
/// launch without scratch memory. The order is total, so the passes need no marks of what was
/// taken: higher score first, equal scores by lower index, NaN below every number. CPU schedule: a
/// work-item per query scans its row; GPU schedule: a 256-thread group per query, threads striding
/// over the row, the best (score, index) pair through a shared-memory tree (barriers only, as
/// <see cref="GroupReduce"/>, so PoCL and the emulator run it). For k approaching N a sort would win.
/// </para>
/// </summary>
public static class TopKKernel
{
    internal struct Args
    {
        public ArrayView<float> Scores, Values;
        public ArrayView<int> Indices;
        public long N, K, Pitch;
    }

    private static float Key(float s) => float.IsNaN(s) ? float.NegativeInfinity : s;

    // (a, i) ranks before (b, j): the total order of the selection.
    private static bool Before(float a, int i, float b, int j) => a > b || (a == b && i < j);

    private static void SelectKernel(Index1D q, Args g)
    {
        long o = q * g.Pitch, out0 = q * g.K;
        // (+∞, −1) ranks before every item: the first pass may take any.
        float prevS = float.PositiveInfinity;
        int prevI = -1;
        for (long r = 0; r < g.K; r++)
        {
            float bestS = float.NegativeInfinity;
            int bestI = int.MaxValue;
            for (int n = 0; n < g.N; n++)
            {
                float s = Key(g.Scores[o + n]);
                if (Before(prevS, prevI, s, n) && Before(s, n, bestS, bestI))
                {
                    bestS = s;
                    bestI = n;
                }
            }
            g.Indices[out0 + r] = bestI;
            g.Values[out0 + r] = g.Scores[o + bestI];
            prevS = bestS;
            prevI = bestI;
        }
    }

    private static void SelectGroupKernel(Args g)
    {
        var ss = SharedMemory.Allocate<float>(GroupReduce.RowThreads);
        var si = SharedMemory.Allocate<int>(GroupReduce.RowThreads);
        long q = Grid.IdxX, o = q * g.Pitch, out0 = q * g.K;
        int t = Group.IdxX;
        float prevS = float.PositiveInfinity;
        int prevI = -1;
        for (long r = 0; r < g.K; r++)
        {
            float bestS = float.NegativeInfinity;
            int bestI = int.MaxValue;
            for (int n = t; n < g.N; n += GroupReduce.RowThreads)
            {
                float s = Key(g.Scores[o + n]);
                if (Before(prevS, prevI, s, n) && Before(s, n, bestS, bestI))
                {
                    bestS = s;
                    bestI = n;
                }
            }
            ss[t] = bestS;
            si[t] = bestI;
            Group.Barrier();
            for (int h = GroupReduce.RowThreads / 2; h > 0; h >>= 1)
            {
                if (t < h && Before(ss[t + h], si[t + h], ss[t], si[t]))
                {
                    ss[t] = ss[t + h];
                    si[t] = si[t + h];
                }
                Group.Barrier();
            }
            prevS = ss[0];
            prevI = si[0];
            // Every thread has read the winner before the next pass overwrites slot 0.
            Group.Barrier();
            if (t == 0)
            {
                g.Indices[out0 + r] = prevI;
                g.Values[out0 + r] = g.Scores[o + prevI];
            }
        }
    }

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, Args>> Rows =
        KernelTables.Implicit<Args>("topk", typeof(TopKKernel), [new(nameof(SelectKernel), KernelSchedule.Cpu)]);

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Groups =
        KernelTables.Explicit<Args>("topk", typeof(TopKKernel), [new(nameof(SelectGroupKernel), KernelSchedule.Gpu, GroupReduce.RowThreads)]);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Rows.Entries.Concat(Groups.Entries);

    /// <summary>
    /// Per row q of <paramref name="scores"/> [Q, N] (contiguous rows, any pitch): indices[q, r] and
    /// values[q, r] for r &lt; k are the r-th best column and its score, best first; equal scores by
    /// lower index; NaN ranks last. indices I32 and values F32 are dense [Q, k]. k in 1..N. Launch only.
    /// </summary>
    public static void Select(DeviceContext ctx, TensorView scores, int k, TensorView indices, TensorView values)
    {
        Layout2D.CheckF32(scores, "scores");
        Layout2D.CheckF32(values, "values");
        if (scores.Shape.Rank != 2) throw new ArgumentException($"scores {scores.Shape} must be [Q, N]");
        long q = scores.Shape[0], n = scores.Shape[1];
        if (k < 1) throw new ArgumentException($"k = {k} must be at least 1");
        if (k > n) throw new ArgumentException($"k = {k} exceeds the {n} scored items");
        if (n > int.MaxValue - 1) throw new ArgumentException($"{n} items: at most {int.MaxValue - 1} per row");
        var expected = new Shape(q, k);
        if (indices.DType != DType.I32 || indices.Shape != expected || !Dense(indices))
            throw new ArgumentException($"indices {indices} must be dense I32 {expected}");
        if (values.Shape != expected || !Dense(values)) throw new ArgumentException($"values {values} must be dense F32 {expected}");
        var ls = Layout2D.Of(scores, "scores");
        var args = new Args
        {
            Scores = scores.Elements<float>(), Values = values.Elements<float>(), Indices = indices.Elements<int>(),
            N = n, K = k, Pitch = ls.Pitch,
        };
        int rows = checked((int)q);
        if (ctx.Schedule == KernelSchedule.Cpu) Rows.Get(ctx, 0)(ctx.Stream, rows, args);
        else Groups.Get(ctx, 0)(ctx.Stream, new KernelConfig(rows, GroupReduce.RowThreads), args);
    }

    private static bool Dense(in TensorView v) => v.Strides[1] == 1 && v.Strides[0] == v.Shape[1];

    /// <summary>
    /// Retrieval: scores = queries · indexᵀ (the cosine when both have L2-normalised rows) into
    /// <paramref name="scores"/> [Q, N] (allocate it with rowAlignment <see cref="GemmKernel.PanelWidth"/>),
    /// then <see cref="Select"/> into indices and values [Q, k]. <paramref name="index"/> is the [N, E]
    /// index packed transposed (K = E, N = items). Allocates nothing; launch only.
    /// </summary>
    public static void Search(DeviceContext ctx, TensorView queries, PackedMatrixView index, TensorView scores, int k, TensorView indices, TensorView values)
    {
        if (k > index.N) throw new ArgumentException($"k = {k} exceeds the index's {index.N} items");
        GemmKernel.Launch(ctx, queries, index, scores);
        Select(ctx, scores, k, indices, values);
    }
}
