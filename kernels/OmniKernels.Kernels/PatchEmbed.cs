using ILGPU;

namespace OmniKernels.Kernels;

/// <summary>
/// The offset tables that let the GEMM read the P × P patches of a [C, H, W] image as rows of A in
/// place: element (patch i, k = (c, py, px)) sits at rows[i] + cols[k]. Made once per image
/// geometry; owned by its creator (dispose it).
/// </summary>
public sealed class PatchGrid : IDisposable
{
    private PatchGrid(int channels, int height, int width, int patch, Tensor rows, Tensor cols)
    {
        Channels = channels;
        Height = height;
        Width = width;
        Patch = patch;
        Rows = rows;
        Cols = cols;
    }

    /// <summary>Image channels C.</summary>
    public int Channels { get; }

    /// <summary>Image height H.</summary>
    public int Height { get; }

    /// <summary>Image width W.</summary>
    public int Width { get; }

    /// <summary>Patch size P (kernel = stride).</summary>
    public int Patch { get; }

    /// <summary>Patches per column, ⌊H/P⌋ (rows and columns past the last whole patch are ignored, as Conv2d does).</summary>
    public int GridHeight => Height / Patch;

    /// <summary>Patches per row, ⌊W/P⌋.</summary>
    public int GridWidth => Width / Patch;

    /// <summary>N = GridHeight · GridWidth.</summary>
    public int Patches => GridHeight * GridWidth;

    /// <summary>K = C · P · P, the length of one flattened patch (PyTorch's weight order).</summary>
    public int PatchLength => Channels * Patch * Patch;

    internal Tensor Rows { get; }

    internal Tensor Cols { get; }

    /// <summary>Builds and uploads the tables for images of [C, H, W] and patch size P.</summary>
    public static PatchGrid Create(DeviceContext ctx, int channels, int height, int width, int patch)
    {
        if (channels <= 0 || patch <= 0 || height < patch || width < patch)
            throw new ArgumentException($"an image of [{channels}, {height}, {width}] has no whole {patch}×{patch} patch");
        if ((long)channels * height * width > int.MaxValue)
            throw new ArgumentException($"an image of [{channels}, {height}, {width}] is too large for 32-bit patch offsets");
        int gw = width / patch, n = height / patch * gw, k = channels * patch * patch;
        var rows = new int[n];
        for (int i = 0; i < n; i++) rows[i] = i / gw * patch * width + i % gw * patch;
        var cols = new int[k];
        for (int c = 0, j = 0; c < channels; c++)
            for (int py = 0; py < patch; py++)
                for (int px = 0; px < patch; px++, j++)
                    cols[j] = c * height * width + py * width + px;
        var tRows = Tensor.FromHost<int>(ctx, rows, new Shape(n));
        try
        {
            var tCols = Tensor.FromHost<int>(ctx, cols, new Shape(k));
            return new PatchGrid(channels, height, width, patch, tRows, tCols);
        }
        catch
        {
            tRows.Dispose();
            throw;
        }
    }

    /// <summary>Returns the tables to the pool.</summary>
    public void Dispose()
    {
        Cols.Dispose();
        Rows.Dispose();
    }
}

/// <summary>
/// Patch embedding: a Conv2d with kernel = stride = P computed as the GEMM over patches (A gathered
/// through <see cref="PatchGrid"/>, no im2col copy), bias in the GEMM epilogue and the position
/// embeddings as its residual; then the class token row, cls + pos[0]. Tokens come out as
/// [B, 1 + N, D] (or [B, N, D] without a class token): HF CLIP's vision embeddings.
/// </summary>
public static class PatchEmbedKernel
{
    /// <summary>
    /// tokens[b, t0 + i] = conv(image[b])_i + bias + pos[t0 + i] and, with a class token, tokens[b, 0] = cls + pos[0]
    /// (t0 = 1). image is dense [B, C, H, W]; weight is the packed [D, C·P·P] conv weight (PyTorch's
    /// [D, C, P, P] packed with transposed: true); bias [D] and cls [D] (bias with storage for D rounded
    /// up to 16); pos [T, D] and tokens [B, T, D] with a row pitch of at least D rounded up to 16.
    /// Allocates nothing.
    /// </summary>
    public static void Launch(DeviceContext ctx, TensorView image, PatchGrid grid, PackedMatrixView weight, TensorView tokens,
        TensorView? bias = null, TensorView? cls = null, TensorView? pos = null)
    {
        Layout2D.CheckF32(image, "image");
        Layout2D.CheckF32(tokens, "tokens");
        if (image.Shape.Rank != 4 || image.Shape[1] != grid.Channels || image.Shape[2] != grid.Height || image.Shape[3] != grid.Width)
            throw new ArgumentException($"image {image.Shape} must be [B, {grid.Channels}, {grid.Height}, {grid.Width}] for this patch grid");
        if (image.Strides != image.Shape.RowMajorStrides())
            throw new ArgumentException($"image {image} must be dense");
        if (weight.K != grid.PatchLength || weight.Batch != 1)
            throw new ArgumentException($"packed weight has K = {weight.K}; patches of {grid.Channels}×{grid.Patch}×{grid.Patch} need {grid.PatchLength}");
        long batch = image.Shape[0], n = grid.Patches, d = weight.N, t0 = cls.HasValue ? 1 : 0, t = n + t0;
        var expect = new Shape(batch, t, d);
        if (tokens.Shape != expect) throw new ArgumentException($"tokens {tokens.Shape} must be {expect}");
        long pitch = tokens.Strides[1];
        if (tokens.Strides[2] != 1 || pitch < weight.PaddedN || tokens.Strides[0] < t * pitch ||
            (batch - 1) * tokens.Strides[0] + (t - 1) * pitch + weight.PaddedN > tokens.Capacity)
            throw new ArgumentException($"tokens {tokens}: rows must be contiguous with a pitch of at least {weight.PaddedN} (allocate with rowAlignment {GemmKernel.PanelWidth})");
        if (bias is { } bv && (bv.DType != DType.F32 || bv.Shape.Rank != 1 || bv.Shape[0] != d || bv.Strides[0] != 1 || bv.Capacity < weight.PaddedN))
            throw new ArgumentException($"bias {bv} must be dense F32 [{d}] with storage for {weight.PaddedN} floats");
        if (cls is { } cv && (cv.DType != DType.F32 || cv.Shape.Rank != 1 || cv.Shape[0] != d || cv.Strides[0] != 1))
            throw new ArgumentException($"cls {cv} must be dense F32 [{d}]");
        long posPitch = 0;
        if (pos is { } pv)
        {
            Layout2D.CheckF32(pv, "pos");
            if (pv.Shape != new Shape(t, d)) throw new ArgumentException($"pos {pv.Shape} must be [{t}, {d}]");
            posPitch = pv.Strides[0];
            if (pv.Strides[1] != 1 || posPitch < weight.PaddedN || (t - 1) * posPitch + weight.PaddedN > pv.Capacity)
                throw new ArgumentException($"pos {pv}: row pitch must be at least {weight.PaddedN} (allocate with rowAlignment {GemmKernel.PanelWidth})");
        }

        long rowTiles = (n + GemmKernel.TileRows - 1) / GemmKernel.TileRows;
        var outputs = tokens.Elements<float>().SubView(t0 * pitch);
        var args = new GemmKernel.Args
        {
            A = image.Elements<float>(), B = weight.Panels.Elements<float>(), C = outputs,
            Bias = (bias ?? tokens).Elements<float>(),
            Res = pos is { } p ? p.Elements<float>().SubView(t0 * posPitch) : outputs,
            ARows = grid.Rows.View.Elements<int>(), ACols = grid.Cols.View.Elements<int>(),
            M = n, K = weight.K, Lda = 0, Ldc = pitch, Ldr = posPitch,
            BatchA = image.Strides[0], BatchB = 0, BatchC = tokens.Strides[0], BatchR = 0,
            RowTiles = rowTiles, Panels = weight.PanelCount, Total = checked(rowTiles * weight.PanelCount * batch),
        };
        GemmKernel.Launch<GemmKernel.GatheredA>(ctx, args, Activation.None, bias.HasValue, pos.HasValue);

        if (cls is { } c)
        {
            var broadcast = new Shape(0, 1);
            var classRows = new TensorView(tokens.Storage, DType.F32, new Shape(batch, d), new Shape(tokens.Strides[0], 1), tokens.Offset);
            var clsRows = new TensorView(c.Storage, DType.F32, new Shape(batch, d), broadcast, c.Offset);
            if (pos is { } p0)
                ElementwiseKernel.Add(ctx, clsRows, new TensorView(p0.Storage, DType.F32, new Shape(batch, d), broadcast, p0.Offset), classRows);
            else
                ElementwiseKernel.Activate<NoActivation>(ctx, clsRows, classRows);
        }
    }
}
