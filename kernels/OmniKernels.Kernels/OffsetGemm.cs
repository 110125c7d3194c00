namespace OmniKernels.Kernels;

/// <summary>
/// Where the GEMM reads A when A is a convolution's patches taken in place: element (i, k) of the
/// virtual [M, K] matrix sits at Rows[i] + Cols[k] of the input (im2col without the copy). Owns two
/// small device tables; dispose it after the last launch that uses it.
/// </summary>
public sealed class OffsetTable : IDisposable
{
    private OffsetTable(Tensor rows, Tensor cols)
    {
        RowOffsets = rows;
        ColOffsets = cols;
    }

    internal Tensor RowOffsets { get; }

    internal Tensor ColOffsets { get; }

    /// <summary>Rows of the virtual A.</summary>
    public long M => RowOffsets.Shape[0];

    /// <summary>Columns of the virtual A (the packed weight's K).</summary>
    public long K => ColOffsets.Shape[0];

    /// <summary>Uploads the offset tables; every offset must be non-negative.</summary>
    public static OffsetTable Create(DeviceContext ctx, ReadOnlySpan<int> rowOffsets, ReadOnlySpan<int> colOffsets)
    {
        if (rowOffsets.IsEmpty || colOffsets.IsEmpty) throw new ArgumentException("offset tables must not be empty");
        foreach (int r in rowOffsets) if (r < 0) throw new ArgumentException($"row offset {r} is negative");
        foreach (int c in colOffsets) if (c < 0) throw new ArgumentException($"column offset {c} is negative");
        var rows = Tensor.FromHost(ctx, rowOffsets, new Shape(rowOffsets.Length));
        try
        {
            return new OffsetTable(rows, Tensor.FromHost(ctx, colOffsets, new Shape(colOffsets.Length)));
        }
        catch
        {
            rows.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Conv1d (kernel k, stride s, the input already zero-padded by the caller) over a time-major
    /// input [T_in, pitch] (channel c of step t at t·pitch + c): output step t reads steps s·t..s·t+k−1,
    /// column c·k + j (PyTorch's [out, in, k] weight flattened) at j·pitch + c.
    /// </summary>
    public static OffsetTable Conv1dTimeMajor(DeviceContext ctx, int outSteps, int channels, int kernel, int stride, int pitch)
    {
        var rows = new int[outSteps];
        for (int t = 0; t < outSteps; t++) rows[t] = checked(t * stride * pitch);
        var cols = new int[channels * kernel];
        for (int c = 0; c < channels; c++)
            for (int j = 0; j < kernel; j++) cols[c * kernel + j] = checked(j * pitch + c);
        return Create(ctx, rows, cols);
    }

    /// <summary>
    /// Conv1d over a channel-major input [C, pitch] (Whisper's log-mel [mels, frames], zero-padded by
    /// the caller): output step t reads columns s·t..s·t+k−1 of every channel.
    /// </summary>
    public static OffsetTable Conv1dChannelMajor(DeviceContext ctx, int outSteps, int channels, int kernel, int stride, int pitch)
    {
        var rows = new int[outSteps];
        for (int t = 0; t < outSteps; t++) rows[t] = checked(t * stride);
        var cols = new int[channels * kernel];
        for (int c = 0; c < channels; c++)
            for (int j = 0; j < kernel; j++) cols[c * kernel + j] = checked(c * pitch + j);
        return Create(ctx, rows, cols);
    }

    /// <summary>
    /// Conv3d with kernel = stride = (kt, p, p) over a dense [C, T, H, W] clip (VideoMAE's tubelet
    /// embedding): output row i is tubelet (ti, hi, wi) in that order, column (c, dt, dy, dx) in
    /// PyTorch's [out, C, kt, p, p] weight order.
    /// </summary>
    public static OffsetTable Tubelets(DeviceContext ctx, int channels, int frames, int height, int width, int kt, int patch)
    {
        if (kt <= 0 || patch <= 0 || frames < kt || height < patch || width < patch)
            throw new ArgumentException($"a clip of [{channels}, {frames}, {height}, {width}] has no whole {kt}×{patch}×{patch} tubelet");
        int nt = frames / kt, nh = height / patch, nw = width / patch;
        var rows = new int[nt * nh * nw];
        for (int t = 0, i = 0; t < nt; t++)
            for (int y = 0; y < nh; y++)
                for (int x = 0; x < nw; x++) rows[i++] = checked((t * kt * height + y * patch) * width + x * patch);
        var cols = new int[channels * kt * patch * patch];
        for (int c = 0, i = 0; c < channels; c++)
            for (int dt = 0; dt < kt; dt++)
                for (int dy = 0; dy < patch; dy++)
                    for (int dx = 0; dx < patch; dx++) cols[i++] = checked(((c * frames + dt) * height + dy) * width + dx);
        return Create(ctx, rows, cols);
    }

    /// <summary>Returns the tables to the pool.</summary>
    public void Dispose()
    {
        RowOffsets.Dispose();
        ColOffsets.Dispose();
    }
}

/// <summary>
/// C = act(A·W + bias) + residual where A is read through an <see cref="OffsetTable"/>: the
/// GEMM's register tile and packed panels, so a convolution costs what its GEMM costs.
/// </summary>
public static class OffsetGemmKernel
{
    /// <summary>
    /// <paramref name="input"/> is [B, ...] with item b starting at input.Offset + b·Strides[0]
    /// (every offset of the table must stay inside an item); c and residual are [B, M, N] with a row
    /// pitch of at least the packed N rounded up to 16; bias [N] with storage for that many floats.
    /// Launch only; allocates nothing.
    /// </summary>
    public static void Launch(DeviceContext ctx, TensorView input, OffsetTable table, PackedMatrixView w, TensorView c,
        GemmParams p = default, TensorView? bias = null, TensorView? residual = null)
    {
        Layout2D.CheckF32(input, "input");
        Layout2D.CheckF32(c, "c");
        if (w.K != table.K || w.Batch != 1) throw new ArgumentException($"packed weight has K = {w.K}; the offset table has {table.K} columns");
        long batch = input.Shape[0], m = table.M, n = w.N;
        if (c.Shape != new Shape(batch, m, n) || c.Strides[2] != 1 || c.Strides[1] < w.PaddedN || c.Strides[0] < m * c.Strides[1])
            throw new ArgumentException($"c {c} must be [{batch}, {m}, {n}] with a row pitch of at least {w.PaddedN}");
        long ldr = 0, batchR = 0;
        if (residual is { } r)
        {
            Layout2D.CheckF32(r, "residual");
            if (r.Shape.Rank is not (2 or 3) || r.Shape[-2] != m || r.Shape[-1] != n || r.Strides[-1] != 1 || r.Strides[-2] < w.PaddedN)
                throw new ArgumentException($"residual {r} must be [{m}, {n}] or [B, {m}, {n}] with a row pitch of at least {w.PaddedN}");
            ldr = r.Strides[-2];
            batchR = r.Shape.Rank == 3 ? r.Strides[0] : 0;
        }
        if (bias is { } bv && (bv.DType != DType.F32 || bv.Shape != new Shape(n) || bv.Strides[0] != 1 || bv.Capacity < w.PaddedN))
            throw new ArgumentException($"bias {bv} must be dense F32 [{n}] with storage for {w.PaddedN} floats");
        long rowTiles = (m + GemmKernel.TileRows - 1) / GemmKernel.TileRows;
        var args = new GemmKernel.Args
        {
            A = input.Elements<float>(), B = w.Panels.Elements<float>(), C = c.Elements<float>(),
            Bias = (bias ?? c).Elements<float>(), Res = (residual ?? c).Elements<float>(),
            ARows = table.RowOffsets.View.Elements<int>(), ACols = table.ColOffsets.View.Elements<int>(),
            M = m, K = w.K, Lda = 0, Ldc = c.Strides[1], Ldr = ldr,
            BatchA = input.Strides[0], BatchB = 0, BatchC = c.Strides[0], BatchR = batchR,
            RowTiles = rowTiles, Panels = w.PanelCount, Total = checked(rowTiles * w.PanelCount * batch),
        };
        GemmKernel.Launch<GemmKernel.GatheredA>(ctx, args, p.Activation, bias.HasValue, residual.HasValue);
    }
}
