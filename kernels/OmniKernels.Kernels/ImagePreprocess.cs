using ILGPU;
using ILGPU.Runtime;

namespace OmniKernels.Kernels;

/// <summary>Resampling filters of Pillow's <c>Image.resize</c>.</summary>
public enum ResizeFilter
{
    /// <summary>Pillow's BICUBIC: Keys' cubic convolution with a = −0.5, support 2.</summary>
    Bicubic,
    /// <summary>Pillow's BILINEAR: the triangle filter, support 1.</summary>
    Bilinear,
}

/// <summary>
/// Pillow's resampling coefficients for one geometry: an [inHeight, inWidth] image resized to
/// [outHeight, outWidth], of which only the window [cropTop, +cropHeight) × [cropLeft, +cropWidth) is
/// computed (resampling is separable and per output coordinate, so the window equals the same pixels of the
/// full resize). Host data; upload <see cref="Table"/> once as an I32 tensor of <see cref="TableShape"/>.
/// </summary>
/// <remarks>
/// The coefficients are Pillow's (Resample.c, <c>precompute_coeffs</c> and <c>normalize_coeffs_8bpc</c>):
/// per output coordinate x, centre = (x + 0.5)·scale with scale = in/out, support = filter support ·
/// max(scale, 1) (antialiasing when downscaling), taps from ⌊centre − support + 0.5⌋ to
/// ⌊centre + support + 0.5⌋ clamped to the image, weights filter((tap − centre + 0.5) / max(scale, 1))
/// normalised to sum 1 in double, then rounded to 22-bit fixed point. Table layout: for the columns,
/// (first input column, tap count) pairs for each of the cropWidth outputs, then cropWidth rows of
/// <see cref="TapsX"/> weights; from <see cref="VerticalOffset"/> the same for the rows, the first input row
/// counted from <see cref="FirstRow"/>.
/// </remarks>
public sealed class ResamplePlan
{
    /// <summary>Fixed-point fraction bits of the weights (Pillow's PRECISION_BITS, 32 − 8 − 2).</summary>
    public const int PrecisionBits = 22;

    private ResamplePlan(int inWidth, int inHeight, int cropWidth, int cropHeight, int firstRow, int rows, int tapsX, int tapsY, int verticalOffset, int[] table)
    {
        InWidth = inWidth;
        InHeight = inHeight;
        CropWidth = cropWidth;
        CropHeight = cropHeight;
        FirstRow = firstRow;
        Rows = rows;
        TapsX = tapsX;
        TapsY = tapsY;
        VerticalOffset = verticalOffset;
        Table = table;
    }

    /// <summary>Input width.</summary>
    public int InWidth { get; }

    /// <summary>Input height.</summary>
    public int InHeight { get; }

    /// <summary>Output columns computed (the crop width).</summary>
    public int CropWidth { get; }

    /// <summary>Output rows computed (the crop height).</summary>
    public int CropHeight { get; }

    /// <summary>The first input row the computed output rows read.</summary>
    public int FirstRow { get; }

    /// <summary>Input rows, from <see cref="FirstRow"/>, that the row pass resamples.</summary>
    public int Rows { get; }

    /// <summary>Weights stored per output column.</summary>
    public int TapsX { get; }

    /// <summary>Weights stored per output row.</summary>
    public int TapsY { get; }

    /// <summary>Where the row axis starts in <see cref="Table"/>.</summary>
    public int VerticalOffset { get; }

    /// <summary>Bounds and fixed-point weights of both axes (layout in the remarks).</summary>
    public int[] Table { get; }

    /// <summary>Shape of the device copy of <see cref="Table"/>: I32 [Table.Length].</summary>
    public Shape TableShape => new(Table.Length);

    /// <summary>Shape of the row pass's output: I32 [<see cref="Rows"/>, <see cref="CropWidth"/>, channels], values 0..255.</summary>
    public Shape IntermediateShape(int channels) => new(Rows, CropWidth, channels);

    /// <summary>Computes the coefficients of an [inHeight, inWidth] → [outHeight, outWidth] resize, cropped.</summary>
    /// <exception cref="ArgumentException">A size is not positive or the window leaves the output.</exception>
    public static ResamplePlan Create(int inWidth, int inHeight, int outWidth, int outHeight,
        int cropLeft, int cropTop, int cropWidth, int cropHeight, ResizeFilter filter)
    {
        if (inWidth <= 0 || inHeight <= 0 || outWidth <= 0 || outHeight <= 0)
            throw new ArgumentException($"resize {inWidth}×{inHeight} → {outWidth}×{outHeight}: sizes must be positive");
        if (cropWidth <= 0 || cropHeight <= 0 || cropLeft < 0 || cropTop < 0 || (long)cropLeft + cropWidth > outWidth || (long)cropTop + cropHeight > outHeight)
            throw new ArgumentException($"crop {cropWidth}×{cropHeight} at ({cropLeft}, {cropTop}) does not fit in the {outWidth}×{outHeight} output");
        if (filter is not (ResizeFilter.Bicubic or ResizeFilter.Bilinear))
            throw new ArgumentOutOfRangeException(nameof(filter), filter, "unknown resize filter");
        var (boundsX, weightsX, tapsX) = Axis(inWidth, outWidth, cropLeft, cropWidth, filter);
        var (boundsY, weightsY, tapsY) = Axis(inHeight, outHeight, cropTop, cropHeight, filter);
        int first = int.MaxValue, end = 0;
        for (int y = 0; y < cropHeight; y++)
        {
            first = Math.Min(first, boundsY[2 * y]);
            end = Math.Max(end, boundsY[2 * y] + boundsY[2 * y + 1]);
        }
        for (int y = 0; y < cropHeight; y++) boundsY[2 * y] -= first;
        int vOff = checked(boundsX.Length + weightsX.Length);
        var table = new int[checked(vOff + boundsY.Length + weightsY.Length)];
        boundsX.CopyTo(table, 0);
        weightsX.CopyTo(table, boundsX.Length);
        boundsY.CopyTo(table, vOff);
        weightsY.CopyTo(table, vOff + boundsY.Length);
        return new ResamplePlan(inWidth, inHeight, cropWidth, cropHeight, first, end - first, tapsX, tapsY, vOff, table);
    }

    /// <summary>Pillow's <c>precompute_coeffs</c> + <c>normalize_coeffs_8bpc</c> for outputs [start, start + count).</summary>
    private static (int[] Bounds, int[] Weights, int Taps) Axis(int inSize, int outSize, int start, int count, ResizeFilter filter)
    {
        double filterSupport = filter == ResizeFilter.Bicubic ? 2.0 : 1.0;
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        double support = filterSupport * filterScale;
        int taps = checked((int)Math.Ceiling(support) * 2 + 1);
        var bounds = new int[2 * count];
        var weights = new int[checked(count * taps)];
        var w = new double[taps];
        double ss = 1.0 / filterScale;
        for (int i = 0; i < count; i++)
        {
            int xx = start + i;
            double center = (xx + 0.5) * scale;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            double ww = 0.0;
            for (int x = 0; x < xmax; x++)
            {
                w[x] = Filter(filter, (x + xmin - center + 0.5) * ss);
                ww += w[x];
            }
            for (int x = 0; x < xmax; x++)
            {
                double k = ww != 0.0 ? w[x] / ww : w[x];
                weights[i * taps + x] = k < 0 ? (int)(-0.5 + k * (1 << PrecisionBits)) : (int)(0.5 + k * (1 << PrecisionBits));
            }
            bounds[2 * i] = xmin;
            bounds[2 * i + 1] = Math.Max(xmax, 0);
        }
        return (bounds, weights, taps);
    }

    private static double Filter(ResizeFilter filter, double x)
    {
        if (x < 0.0) x = -x;
        if (filter == ResizeFilter.Bilinear) return x < 1.0 ? 1.0 - x : 0.0;
        const double a = -0.5;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }
}

/// <summary>
/// Image preprocessing on the device, Pillow's 8-bit resize then crop and normalise, in two passes like
/// Pillow's <c>ImagingResampleInner</c>: <see cref="ResizeRows"/> resamples along x every input row the
/// output needs, rounding and clamping to 8 bits; <see cref="ResizeColumnsNormalize"/> resamples those along y,
/// rounds and clamps again, and maps each 8-bit value through a per-channel table of (v/255 − mean)/std into a
/// float CHW output. Integer arithmetic identical to Pillow's, so the result is bit-exact. One work-item per
/// output element.
/// </summary>
public static class ImagePreprocessKernel
{
    /// <summary>Entries per channel in the normalisation table (one per 8-bit value).</summary>
    public const int LevelCount = 256;

    internal struct RowArgs
    {
        public ArrayView<sbyte> Src;
        public ArrayView<int> Table;
        public ArrayView<int> Dst;
        public long SrcPitch, Channels, Cols, FirstRow, Taps;
    }

    internal struct ColumnArgs
    {
        public ArrayView<int> Src;
        public ArrayView<int> Table;
        public ArrayView<float> Levels;
        public ArrayView<float> Dst;
        public long Channels, Cols, Rows, Taps, VerticalOffset;
    }

    /// <summary>Pillow's clip8: the fixed-point sum rounded (the ½ is added up front), shifted and clamped to 0..255.</summary>
    private static int Clip8(int sum)
    {
        int v = sum >> ResamplePlan.PrecisionBits;
        return v < 0 ? 0 : v > 255 ? 255 : v;
    }

    // i = ((row · Cols) + x) · Channels + c, row counted from FirstRow.
    private static void RowKernel(Index1D i, RowArgs g)
    {
        long c = i % g.Channels, rest = i / g.Channels;
        long x = rest % g.Cols, row = rest / g.Cols;
        int xmin = g.Table[2 * x], taps = g.Table[2 * x + 1];
        long k = 2 * g.Cols + x * g.Taps;
        long s = (g.FirstRow + row) * g.SrcPitch + xmin * g.Channels + c;
        int sum = 1 << (ResamplePlan.PrecisionBits - 1);
        for (int t = 0; t < taps; t++)
            sum += ((int)g.Src[s + t * g.Channels] & 0xFF) * g.Table[k + t];
        g.Dst[i] = Clip8(sum);
    }

    // i = (c · Rows + y) · Cols + x: the CHW output.
    private static void ColumnKernel(Index1D i, ColumnArgs g)
    {
        long x = i % g.Cols, rest = i / g.Cols;
        long y = rest % g.Rows, c = rest / g.Rows;
        long b = g.VerticalOffset + 2 * y;
        int ymin = g.Table[b], taps = g.Table[b + 1];
        long k = g.VerticalOffset + 2 * g.Rows + y * g.Taps;
        long pitch = g.Cols * g.Channels;
        long s = ymin * pitch + x * g.Channels + c;
        int sum = 1 << (ResamplePlan.PrecisionBits - 1);
        for (int t = 0; t < taps; t++)
            sum += g.Src[s + t * pitch] * g.Table[k + t];
        g.Dst[i] = g.Levels[c * LevelCount + Clip8(sum)];
    }

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, RowArgs>> Rows =
        KernelTables.Implicit<RowArgs>("image", typeof(ImagePreprocessKernel), [new(nameof(RowKernel))]);

    private static readonly KernelTable<Action<AcceleratorStream, Index1D, ColumnArgs>> Columns =
        KernelTables.Implicit<ColumnArgs>("image", typeof(ImagePreprocessKernel), [new(nameof(ColumnKernel))]);

    /// <summary>Every kernel variant this family's launchers can load.</summary>
    internal static IEnumerable<KernelEntry> EntryPoints => Rows.Entries.Concat(Columns.Entries);

    /// <summary>
    /// The per-channel normalisation table, [channels, 256]: entry v of channel c is
    /// float32(v · (1/255 in double)) − mean[c], divided by std[c], in float32 (HF's rescale and normalize;
    /// torchvision's float32 v/255 gives the same 256 values).
    /// </summary>
    /// <exception cref="ArgumentException">Mean and std differ in length, are empty, or std has a zero or non-finite entry.</exception>
    public static float[] NormalizationTable(ReadOnlySpan<float> mean, ReadOnlySpan<float> std)
    {
        if (mean.Length != std.Length || mean.Length == 0)
            throw new ArgumentException($"mean has {mean.Length} entries and std {std.Length}; both need one per channel");
        var table = new float[mean.Length * LevelCount];
        for (int c = 0; c < mean.Length; c++)
        {
            if (!float.IsFinite(mean[c]) || !float.IsFinite(std[c]) || std[c] == 0f)
                throw new ArgumentException($"channel {c}: mean {mean[c]} and std {std[c]} must be finite and std non-zero");
            for (int v = 0; v < LevelCount; v++)
            {
                float x = (float)(v * (1.0 / 255.0));
                table[c * LevelCount + v] = (x - mean[c]) / std[c];
            }
        }
        return table;
    }

    /// <summary>
    /// The row pass: rows[r, x, c] = Pillow's 8-bit horizontal resample of image row plan.FirstRow + r at
    /// output column cropLeft + x. image is dense I8 [InHeight, InWidth, C] holding the uint8 pixels
    /// (reinterpreted); table is dense I32 <see cref="ResamplePlan.TableShape"/> holding <see cref="ResamplePlan.Table"/>;
    /// rows is dense I32 <see cref="ResamplePlan.IntermediateShape"/>. Allocates nothing.
    /// </summary>
    public static void ResizeRows(DeviceContext ctx, TensorView image, ResamplePlan plan, TensorView table, TensorView rows)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (image.DType != DType.I8 || image.Shape.Rank != 3 || image.Shape[0] != plan.InHeight || image.Shape[1] != plan.InWidth)
            throw new ArgumentException($"image {image} must be I8 [{plan.InHeight}, {plan.InWidth}, C] for this plan");
        long channels = image.Shape[2];
        if (channels is < 1 or > 4) throw new ArgumentException($"image {image} must have 1 to 4 channels");
        CheckDense(image, "image");
        CheckTable(table, plan);
        Expect(rows, DType.I32, plan.IntermediateShape((int)channels), "rows");
        var k = Rows.Get(ctx, 0);
        k(ctx.Stream, checked((int)rows.Shape.Numel), new RowArgs
        {
            Src = image.Elements<sbyte>(), Table = table.Elements<int>(), Dst = rows.Elements<int>(),
            SrcPitch = plan.InWidth * channels, Channels = channels, Cols = plan.CropWidth, FirstRow = plan.FirstRow, Taps = plan.TapsX,
        });
    }

    /// <summary>
    /// The column pass and normalisation: output[c, y, x] = levels[c, v] where v is Pillow's 8-bit vertical
    /// resample of <paramref name="rows"/> (from <see cref="ResizeRows"/>) at output row cropTop + y.
    /// levels is dense F32 [C, 256] (<see cref="NormalizationTable"/>); output is dense F32
    /// [C, CropHeight, CropWidth]. Allocates nothing.
    /// </summary>
    public static void ResizeColumnsNormalize(DeviceContext ctx, TensorView rows, ResamplePlan plan, TensorView table, TensorView levels, TensorView output)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (rows.Shape.Rank != 3) throw new ArgumentException($"rows {rows} must be I32 [{plan.Rows}, {plan.CropWidth}, C]");
        long channels = rows.Shape[2];
        Expect(rows, DType.I32, plan.IntermediateShape((int)channels), "rows");
        CheckTable(table, plan);
        Expect(levels, DType.F32, new Shape(channels, LevelCount), "levels");
        Expect(output, DType.F32, new Shape(channels, plan.CropHeight, plan.CropWidth), "output");
        var k = Columns.Get(ctx, 0);
        k(ctx.Stream, checked((int)output.Shape.Numel), new ColumnArgs
        {
            Src = rows.Elements<int>(), Table = table.Elements<int>(), Levels = levels.Elements<float>(), Dst = output.Elements<float>(),
            Channels = channels, Cols = plan.CropWidth, Rows = plan.CropHeight, Taps = plan.TapsY, VerticalOffset = plan.VerticalOffset,
        });
    }

    /// <summary>Both passes: <see cref="ResizeRows"/> into <paramref name="rows"/>, then <see cref="ResizeColumnsNormalize"/>. Allocates nothing.</summary>
    public static void Launch(DeviceContext ctx, TensorView image, ResamplePlan plan, TensorView table, TensorView rows, TensorView levels, TensorView output)
    {
        ResizeRows(ctx, image, plan, table, rows);
        ResizeColumnsNormalize(ctx, rows, plan, table, levels, output);
    }

    private static void CheckTable(in TensorView table, ResamplePlan plan) => Expect(table, DType.I32, plan.TableShape, "table");

    private static void Expect(in TensorView v, DType dtype, Shape shape, string name)
    {
        if (v.DType != dtype || v.Shape != shape)
            throw new ArgumentException($"{name} {v} must be {dtype}{shape}");
        CheckDense(v, name);
    }

    private static void CheckDense(in TensorView v, string name)
    {
        if (v.Strides != v.Shape.RowMajorStrides())
            throw new ArgumentException($"{name} {v} must be dense");
    }
}
