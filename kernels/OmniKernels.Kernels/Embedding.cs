using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>
/// Token embedding: y[b, s] = table[ids[b, s]] + pos[s] (CLIP's text embeddings). One work-item per
/// output element (x = column, y = token), so a group reads consecutive columns of one table row.
/// </summary>
public static class EmbeddingKernel
{
    internal struct Args
    {
        public ArrayView<float> Table, Pos, Y;
        public ArrayView<int> Ids;
        public long Cols, S, PitchT, PitchP, PitchY;
    }

    private static void Kernel(Args g)
    {
        long t = Grid.GlobalIndex.Y, c = Grid.GlobalIndex.X;
        if (c >= g.Cols) return;
        long s = t % g.S;
        g.Y[t * g.PitchY + c] = g.Table[g.Ids[t] * g.PitchT + c] + g.Pos[s * g.PitchP + c];
    }

    private static readonly KernelTable<Action<AcceleratorStream, KernelConfig, Args>> Lookups =
        KernelTables.Explicit<Args>("embedding", typeof(EmbeddingKernel), [new(nameof(Kernel))]);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Lookups.Entries;

    /// <summary>
    /// table [V, D], ids I32 [B, S] dense (every id in 0..V−1: the caller validates them on the host,
    /// the kernel reads whatever row an id names), pos [≥ S, D], y [B, S, D] with contiguous rows
    /// whose leading dimensions collapse. Launch only.
    /// </summary>
    public static void Lookup(DeviceContext ctx, TensorView table, TensorView ids, TensorView pos, TensorView y)
    {
        Layout2D.CheckF32(table, "table");
        Layout2D.CheckF32(pos, "pos");
        Layout2D.CheckF32(y, "y");
        if (ids.DType != DType.I32 || ids.Shape.Rank != 2 || ids.Strides != ids.Shape.RowMajorStrides())
            throw new ArgumentException($"ids {ids} must be dense I32 [B, S]");
        long b = ids.Shape[0], s = ids.Shape[1], d = table.Shape[-1];
        if (table.Shape.Rank != 2) throw new ArgumentException($"table {table.Shape} must be [V, D]");
        if (pos.Shape.Rank != 2 || pos.Shape[1] != d || pos.Shape[0] < s) throw new ArgumentException($"pos {pos.Shape} must be [≥ {s}, {d}]");
        if (y.Shape != new Shape(b, s, d)) throw new ArgumentException($"y {y.Shape} must be [{b}, {s}, {d}]");
        var lt = Layout2D.Of(table, "table");
        var lp = Layout2D.Of(pos, "pos");
        var ly = Layout2D.Of(y, "y");
        var k = Lookups.Get(ctx, 0);
        k(ctx.Stream, ElementwiseKernel.RowsConfig(ctx.Accelerator, b * s, d), new Args
        {
            Table = table.Elements<float>(), Pos = pos.Elements<float>(), Y = y.Elements<float>(), Ids = ids.Elements<int>(),
            Cols = d, S = s, PitchT = lt.Pitch, PitchP = lp.Pitch, PitchY = ly.Pitch,
        });
    }
}
