using ILGPU.Runtime;
using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// The small kernels between the towers' layers and the fusion (mean and gather pooling, row L2
/// normalization, token embedding) and the GEMM over offset tables (Whisper's two Conv1d, VideoMAE's
/// Conv3d tubelets), launched directly on every backend and on the CPU devices forced onto the GPU
/// schedule, against the float64 reference: odd shapes, outputs poisoned with NaN, rows that must
/// not be read filled with NaN, row padding that must stay untouched.
/// </summary>
[TestFixture]
public sealed class PoolingTests
{
    private const double Exact = 1e-6, Gemm = 1e-5;

    /// <summary>Every backend on its own schedule, and the CPU devices forced onto the GPU schedule.</summary>
    public static IEnumerable<string> Names => Backends.Names.Concat(Backends.GpuScheduledNames);

    /// <summary>A [rows, cols] view with row pitch <paramref name="pitch"/> over a tensor poisoned with NaN (padding included).</summary>
    private static (Tensor Owner, TensorView View) Poisoned(DeviceContext ctx, long rows, long cols, long pitch)
    {
        var t = Tensor.Allocate(ctx, DType.F32, new Shape(rows, pitch));
        ElementwiseKernel.Fill(ctx, t.View, float.NaN);
        return (t, new TensorView(t.View.Storage, DType.F32, new Shape(rows, cols), new Shape(pitch, 1), t.View.Offset));
    }

    /// <summary>The [rows, cols] values of a pitched poisoned output, asserting that every padding element is still NaN.</summary>
    private static float[] Read(Tensor owner, long rows, long cols, string what)
    {
        var raw = owner.ToArray<float>();
        long pitch = owner.Shape[1];
        var v = new float[rows * cols];
        for (long r = 0; r < rows; r++)
        {
            Array.Copy(raw, r * pitch, v, r * cols, cols);
            for (long c = cols; c < pitch; c++)
                if (!float.IsNaN(raw[r * pitch + c])) Assert.Fail($"{what}: padding [{r}, {c}] was written");
        }
        return v;
    }

    /// <summary>The GPU-shaped variant ran on a forced context (the launcher switched for real).</summary>
    private static void AssertRan(DeviceContext ctx, string backend, string method)
    {
        if (ctx.Schedule != KernelSchedule.Gpu) return;
        Assert.That(ctx.LoadedKernelKeys().OfType<KernelEntry>().Any(e => e.Method.Name == method), $"{method} never ran on {backend}");
    }

    public static IEnumerable<TestCaseData> PoolCases() =>
        from backend in Names
        from counted in new[] { false, true }
        select new TestCaseData(backend, counted).SetName($"{backend}/mean_pool_b3_s9_d37{(counted ? "_counts" : "")}");

    [TestCaseSource(nameof(PoolCases))]
    public void MeanPoolMatchesReference(string backend, bool counted)
    {
        const int b = 3, s = 9, d = 37;
        var ctx = Backends.Get(backend);
        int[] counts = [9, 1, 4];
        var x = RandomInputs.Uniform(21, b * s * d, -3f, 3f);
        // Rows past a count must never be read.
        if (counted)
            for (int i = 0; i < b; i++) Array.Fill(x, float.NaN, (i * s + counts[i]) * d, (s - counts[i]) * d);
        using var tx = Tensor.FromHost<float>(ctx, x, new Shape(b, s, d));
        using var tc = Tensor.FromHost<int>(ctx, counts, new Shape(b));
        var (owner, y) = Poisoned(ctx, b, d, d + 5);
        using var _ = owner;
        PoolingKernel.Mean(ctx, tx.View, y, counted ? tc.View : null);
        ctx.Synchronize();
        var expected = new double[b * d];
        ReferenceOps.MeanPool(x, b, s, d, counted ? counts : [], expected);
        ParityCheck.AssertClose(Read(owner, b, d, "mean"), expected, Exact, $"{backend}/mean");
    }

    [TestCaseSource(nameof(Names))]
    public void GatherMatchesReference(string backend)
    {
        const int b = 3, s = 9, d = 21;
        var ctx = Backends.Get(backend);
        int[] index = [0, 8, 3];
        var x = RandomInputs.Uniform(22, b * s * d);
        using var tx = Tensor.FromHost<float>(ctx, x, new Shape(b, s, d));
        using var ti = Tensor.FromHost<int>(ctx, index, new Shape(b));
        var (owner, y) = Poisoned(ctx, b, d, 32);
        using var _ = owner;
        PoolingKernel.Gather(ctx, tx.View, y, ti.View);
        ctx.Synchronize();
        var expected = new double[b * d];
        ReferenceOps.GatherRows(x, b, s, d, index, expected);
        ParityCheck.AssertClose(Read(owner, b, d, "gather"), expected, 0, $"{backend}/gather");
    }

    public static IEnumerable<TestCaseData> L2Cases() =>
        from backend in Names
        from cols in new[] { 7, 300, 769 }
        from inPlace in new[] { false, true }
        select new TestCaseData(backend, cols, inPlace).SetName($"{backend}/l2_rows5_d{cols}{(inPlace ? "_in_place" : "")}");

    /// <summary>Rows shorter and longer than the GPU schedule's 256-thread group, one all-zero row (stays zero), in place or not.</summary>
    [TestCaseSource(nameof(L2Cases))]
    public void L2NormalizeMatchesReference(string backend, int cols, bool inPlace)
    {
        const int rows = 5;
        var ctx = Backends.Get(backend);
        var x = RandomInputs.Uniform(23 + cols, rows * cols, -4f, 4f);
        Array.Clear(x, 3 * cols, cols);
        var expected = new double[rows * cols];
        ReferenceOps.L2NormalizeRows(x, cols, expected);
        long pitch = cols + 3;
        var (owner, y) = Poisoned(ctx, rows, cols, pitch);
        using var _ = owner;
        using var tx = Tensor.FromHost<float>(ctx, x, new Shape(rows, cols));
        if (inPlace)
        {
            // Upload x into the pitched tensor's rows (its padding stays NaN) and normalize it onto itself.
            for (int r = 0; r < rows; r++)
                y.Elements<float>().SubView(r * pitch, cols).CopyFromCPU(ctx.Stream, x.AsSpan(r * cols, cols).ToArray());
            PoolingKernel.L2Normalize(ctx, y, y);
        }
        else PoolingKernel.L2Normalize(ctx, tx.View, y);
        ctx.Synchronize();
        var got = Read(owner, rows, cols, "l2");
        ParityCheck.AssertClose(got, expected, Exact, $"{backend}/l2");
        Assert.That(got.AsSpan(3 * cols, cols).ToArray(), Is.All.EqualTo(0f), "the zero row");
        AssertRan(ctx, backend, "L2GroupKernel");
    }

    [TestCaseSource(nameof(Names))]
    public void EmbeddingMatchesReference(string backend)
    {
        const int v = 11, d = 37, b = 2, s = 5;
        var ctx = Backends.Get(backend);
        int[] ids = [10, 0, 3, 3, 7, 1, 9, 2, 10, 5];
        var table = RandomInputs.Uniform(24, v * d);
        var pos = RandomInputs.Uniform(25, 7 * d);
        using var tt = Tensor.FromHost<float>(ctx, table, new Shape(v, d));
        using var tp = Tensor.FromHost<float>(ctx, pos, new Shape(7, d));
        using var ti = Tensor.FromHost<int>(ctx, ids, new Shape(b, s));
        using var y = Tensor.Allocate(ctx, DType.F32, new Shape(b, s, d));
        ElementwiseKernel.Fill(ctx, y.View, float.NaN);
        EmbeddingKernel.Lookup(ctx, tt.View, ti.View, tp.View, y.View);
        ctx.Synchronize();
        var expected = new double[b * s * d];
        ReferenceOps.Embedding(table, d, ids, s, pos, expected);
        ParityCheck.AssertClose(y.ToArray<float>(), expected, Exact, $"{backend}/embedding");
    }

    /// <summary>PyTorch's [out, in, …] conv weight as the packed [K, N] matrix the offset GEMM reads.</summary>
    private static PackedMatrix PackWeight(DeviceContext ctx, float[] weight, int outputs, int k)
    {
        using var t = Tensor.FromHost<float>(ctx, weight, new Shape(outputs, k));
        var packed = PackedMatrix.Pack(ctx, t.View, transposed: true);
        ctx.Synchronize();
        return packed;
    }

    private static Tensor PoisonedRows(DeviceContext ctx, params long[] shape)
    {
        var t = Tensor.Allocate(ctx, DType.F32, new Shape(shape), GemmKernel.PanelWidth);
        ElementwiseKernel.Fill(ctx, t.View, float.NaN);
        return t;
    }

    /// <summary>[O, T] per item (the reference's layout) to [T, O].</summary>
    private static double[] Transposed(double[] v, int outputs, int steps)
    {
        var r = new double[v.Length];
        for (int o = 0; o < outputs; o++)
            for (int t = 0; t < steps; t++) r[t * outputs + o] = v[o * steps + t];
        return r;
    }

    /// <summary>
    /// Whisper's conv1 shape: channel-major input [B, C, T + 2] zero-padded by one column each side,
    /// kernel 3, stride 1, padding 1, bias, GELU; T, C and O not multiples of any tile.
    /// </summary>
    [TestCaseSource(nameof(Names))]
    public void Conv1dChannelMajorMatchesReference(string backend)
    {
        const int b = 2, c = 5, steps = 37, o = 21, k = 3;
        var ctx = Backends.Get(backend);
        var x = RandomInputs.Uniform(31, b * c * steps);
        var w = RandomInputs.Uniform(32, o * c * k, -0.5f, 0.5f);
        var bias = RandomInputs.Uniform(33, o);
        var padded = new float[b * c * (steps + 2)];
        for (int i = 0; i < b * c; i++) Array.Copy(x, i * steps, padded, i * (steps + 2) + 1, steps);
        using var tx = Tensor.FromHost<float>(ctx, padded, new Shape(b, c, steps + 2));
        using var table = OffsetTable.Conv1dChannelMajor(ctx, steps, c, k, 1, steps + 2);
        using var pw = PackWeight(ctx, w, o, c * k);
        using var tb = Tensor.FromHost<float>(ctx, bias, new Shape(o), GemmKernel.PanelWidth);
        using var y = PoisonedRows(ctx, b, steps, o);
        OffsetGemmKernel.Launch(ctx, tx.View, table, pw.View, y.View, new GemmParams(Activation.Gelu), tb.View);
        ctx.Synchronize();
        var expected = new List<double>();
        for (int i = 0; i < b; i++)
        {
            var conv = new double[o * steps];
            ReferenceOps.Conv1d(x.AsSpan(i * c * steps, c * steps), c, steps, w, bias, o, k, 1, 1, conv);
            expected.AddRange(Transposed(conv, o, steps).Select(v => ReferenceOps.Activate(RefActivation.Gelu, v)));
        }
        ParityCheck.AssertClose(y.ToArray<float>(), [.. expected], Gemm, $"{backend}/conv1d_channel_major");
    }

    /// <summary>
    /// Whisper's conv2 shape: time-major input [B, T + 2, pitch] (one zero row each side, an odd
    /// pitch past C), kernel 3, stride 2, padding 1, bias and a residual (the positions), odd T.
    /// </summary>
    [TestCaseSource(nameof(Names))]
    public void Conv1dTimeMajorStride2MatchesReference(string backend)
    {
        const int b = 2, c = 19, steps = 37, o = 17, k = 3, pitch = 23;
        const int outSteps = (steps + 2 - k) / 2 + 1;
        var ctx = Backends.Get(backend);
        var x = RandomInputs.Uniform(41, b * c * steps);
        var w = RandomInputs.Uniform(42, o * c * k, -0.5f, 0.5f);
        var bias = RandomInputs.Uniform(43, o);
        var res = RandomInputs.Uniform(44, outSteps * o);
        // x is [B, C, T] channel-major for the reference; the kernel reads it time-major with padding rows and a wider pitch.
        var timeMajor = new float[b * (steps + 2) * pitch];
        for (int i = 0; i < b; i++)
            for (int ch = 0; ch < c; ch++)
                for (int t = 0; t < steps; t++) timeMajor[(i * (steps + 2) + t + 1) * pitch + ch] = x[(i * c + ch) * steps + t];
        using var tx = Tensor.FromHost<float>(ctx, timeMajor, new Shape(b, steps + 2, pitch));
        using var table = OffsetTable.Conv1dTimeMajor(ctx, outSteps, c, k, 2, pitch);
        using var pw = PackWeight(ctx, w, o, c * k);
        using var tb = Tensor.FromHost<float>(ctx, bias, new Shape(o), GemmKernel.PanelWidth);
        using var tr = Tensor.FromHost<float>(ctx, res, new Shape(outSteps, o), GemmKernel.PanelWidth);
        using var y = PoisonedRows(ctx, b, outSteps, o);
        OffsetGemmKernel.Launch(ctx, tx.View, table, pw.View, y.View, default, tb.View, tr.View);
        ctx.Synchronize();
        var expected = new List<double>();
        for (int i = 0; i < b; i++)
        {
            var conv = new double[o * outSteps];
            ReferenceOps.Conv1d(x.AsSpan(i * c * steps, c * steps), c, steps, w, bias, o, k, 2, 1, conv);
            expected.AddRange(Transposed(conv, o, outSteps).Select((v, j) => v + res[j]));
        }
        ParityCheck.AssertClose(y.ToArray<float>(), [.. expected], Gemm, $"{backend}/conv1d_time_major_stride2");
    }

    /// <summary>VideoMAE's tubelets: Conv3d with kernel = stride = (2, 4, 4) over [C, T, H, W] with remainders in T and W that are dropped.</summary>
    [TestCaseSource(nameof(Names))]
    public void TubeletConv3dMatchesReference(string backend)
    {
        const int b = 2, c = 3, frames = 5, h = 12, wd = 10, kt = 2, p = 4, o = 19;
        const int tokens = frames / kt * (h / p) * (wd / p), k = c * kt * p * p;
        var ctx = Backends.Get(backend);
        var x = RandomInputs.Uniform(51, b * c * frames * h * wd);
        var w = RandomInputs.Uniform(52, o * k, -0.3f, 0.3f);
        var bias = RandomInputs.Uniform(53, o);
        using var tx = Tensor.FromHost<float>(ctx, x, new Shape(b, c, frames, h * wd));
        using var table = OffsetTable.Tubelets(ctx, c, frames, h, wd, kt, p);
        using var pw = PackWeight(ctx, w, o, k);
        using var tb = Tensor.FromHost<float>(ctx, bias, new Shape(o), GemmKernel.PanelWidth);
        using var y = PoisonedRows(ctx, b, tokens, o);
        OffsetGemmKernel.Launch(ctx, tx.View, table, pw.View, y.View, default, tb.View);
        ctx.Synchronize();
        var expected = new List<double>();
        int item = c * frames * h * wd;
        for (int i = 0; i < b; i++)
        {
            var conv = new double[o * tokens];
            ReferenceOps.Conv3dTubelets(x.AsSpan(i * item, item), c, frames, h, wd, w, bias, o, kt, p, conv);
            expected.AddRange(Transposed(conv, o, tokens));
        }
        ParityCheck.AssertClose(y.ToArray<float>(), [.. expected], Gemm, $"{backend}/tubelets");
        AssertRan(ctx, backend, "TiledKernel");
    }
}
