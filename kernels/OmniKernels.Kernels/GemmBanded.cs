namespace OmniKernels.Kernels;

/// <summary>
/// A packed B [K, N] whose nonzeros in each 16-column panel lie in one run of rows, such as a mel
/// filterbank (each band covers a few neighbouring FFT bins). Each panel is packed over its own row
/// run only, so the GEMM skips the zero blocks: for 128 HTK mels over 201 bins it does about a
/// seventh of the dense multiply-adds. Owned by its creator: dispose it.
/// </summary>
public sealed class BandedMatrix : IDisposable
{
    private readonly PackedMatrix[] _panels;
    private readonly long[] _firstRow;

    private BandedMatrix(PackedMatrix[] panels, long[] firstRow, long k, long n)
    {
        _panels = panels;
        _firstRow = firstRow;
        K = k;
        N = n;
    }

    /// <summary>Rows of B (A's columns).</summary>
    public long K { get; }

    /// <summary>Columns of B.</summary>
    public long N { get; }

    /// <summary>Rows the panels cover in all, against <see cref="K"/> per panel for a dense B.</summary>
    public long RowsPacked => _panels.Sum(p => p.View.K);

    /// <summary>Number of 16-column panels.</summary>
    public int PanelCount => _panels.Length;

    /// <summary>Panel p: the first row it covers and its packed rows.</summary>
    internal (long FirstRow, PackedMatrixView Packed) Panel(int p) => (_firstRow[p], _panels[p].View);

    /// <summary>
    /// Packs a host row-major [k, n] matrix panel by panel, each over the rows between its first
    /// and last nonzero (one row of zeros for an all-zero panel). The values are copied.
    /// </summary>
    public static BandedMatrix Pack(DeviceContext ctx, ReadOnlySpan<float> b, long k, long n)
    {
        const int w = GemmKernel.PanelWidth;
        if (k <= 0 || n <= 0 || b.Length != k * n) throw new ArgumentException($"b has {b.Length} floats; [{k}, {n}] needs {k * n}");
        int count = checked((int)((n + w - 1) / w));
        var panels = new List<PackedMatrix>(count);
        var first = new long[count];
        try
        {
            for (int p = 0; p < count; p++)
            {
                long c0 = (long)p * w, cols = Math.Min(w, n - c0), lo = k, hi = -1;
                for (long r = 0; r < k; r++)
                    for (long c = c0; c < c0 + cols; c++)
                        if (b[(int)(r * n + c)] != 0f) { lo = Math.Min(lo, r); hi = r; }
                if (hi < 0) lo = hi = 0;
                var block = new float[(hi - lo + 1) * cols];
                for (long r = lo; r <= hi; r++) b.Slice((int)(r * n + c0), (int)cols).CopyTo(block.AsSpan((int)((r - lo) * cols)));
                using var t = Tensor.FromHost<float>(ctx, block, new Shape(hi - lo + 1, cols));
                panels.Add(PackedMatrix.Pack(ctx, t.View, transposed: false));
                first[p] = lo;
                ctx.Synchronize();
            }
            return new BandedMatrix([.. panels], first, k, n);
        }
        catch
        {
            foreach (var p in panels) p.Dispose();
            throw;
        }
    }

    /// <summary>Returns every panel to the pool.</summary>
    public void Dispose()
    {
        foreach (var p in _panels) p.Dispose();
    }
}

public static partial class GemmKernel
{
    /// <summary>
    /// C = A·B for a banded B: one GEMM launch per panel over the rows it covers, A [M, K] and C [M, N]
    /// 2-D with contiguous rows, C's pitch at least N rounded up to 16 (rowAlignment 16). Allocates nothing.
    /// </summary>
    public static void LaunchBanded(DeviceContext ctx, TensorView a, BandedMatrix b, TensorView c)
    {
        Layout2D.CheckF32(a, "a");
        Layout2D.CheckF32(c, "c");
        if (a.Shape.Rank != 2 || a.Shape[1] != b.K) throw new ArgumentException($"a {a.Shape} must be [M, {b.K}]");
        if (c.Shape != new Shape(a.Shape[0], b.N)) throw new ArgumentException($"c {c.Shape} must be [{a.Shape[0]}, {b.N}]");
        long m = a.Shape[0];
        for (int p = 0; p < b.PanelCount; p++)
        {
            var (row, packed) = b.Panel(p);
            var aBand = new TensorView(a.Storage, a.DType, new Shape(m, packed.K), a.Strides, a.Offset + row * a.Strides[1]);
            var cBand = new TensorView(c.Storage, c.DType, new Shape(m, packed.N), c.Strides, c.Offset + (long)p * PanelWidth * c.Strides[1]);
            Launch(ctx, aBand, packed, cBand);
        }
    }
}
