using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// GemmKernel used directly, as an execution plan would: in-place residual, strided A, prepacked
/// weights reused, packing into caller-owned panels, and the launcher's validation. Every case
/// runs on every backend; shapes are small (the emulator runs them) and not multiples of 6 or 16.
/// </summary>
[TestFixture]
public sealed class GemmLauncherTests
{
    private const double Tolerance = 1e-5;
    private const int Align = GemmKernel.PanelWidth;

    public static IEnumerable<string> BackendNames() => Backends.Names;

    private static double[] Reference(float[] a, float[] b, int batch, int m, int k, int n, bool transposeB,
        float[]? bias = null, RefActivation activation = RefActivation.None, float[]? residual = null)
    {
        var y = new double[batch * m * n];
        ReferenceOps.MatMul(a, b, batch, m, k, n, transposeB, bias ?? default(ReadOnlySpan<float>), activation,
            residual ?? default(ReadOnlySpan<float>), y);
        return y;
    }

    /// <summary>A row-padded output poisoned with NaN, so that an element the kernel misses shows.</summary>
    private static Tensor PoisonedOutput(DeviceContext ctx, Shape shape)
    {
        var c = Tensor.Allocate(ctx, DType.F32, shape, Align);
        ElementwiseKernel.Fill(ctx, c.View, float.NaN);
        return c;
    }

    private static float[] Download(DeviceContext ctx, Tensor t)
    {
        ctx.Synchronize();
        return t.ToArray<float>();
    }

    [TestCaseSource(nameof(BackendNames))]
    public void InPlaceResidual_WithClampedRows(string backend)
    {
        // M = 13: the last row tile holds row 12 once and five clamped duplicates of it, which
        // read the residual from, and store to, the same C row.
        const int m = 13, k = 29, n = 23;
        var ctx = Backends.Get(backend);
        var a = RandomInputs.Uniform(1301, m * k);
        var w = RandomInputs.Uniform(1302, k * n);
        var bias = RandomInputs.Uniform(1303, n);
        var residual = RandomInputs.Uniform(1304, m * n, -2f, 2f);

        using var ta = Tensor.FromHost<float>(ctx, a, new Shape(m, k));
        using var tw = Tensor.FromHost<float>(ctx, w, new Shape(k, n));
        using var tBias = Tensor.FromHost<float>(ctx, bias, new Shape(n), Align);
        using var packed = PackedMatrix.Pack(ctx, tw.View, transposed: false);
        // C holds the residual in its columns; its row padding stays NaN.
        using var c = PoisonedOutput(ctx, new Shape(m, n));
        c.CopyFromHost<float>(residual);

        GemmKernel.Launch(ctx, ta.View, packed.View, c.View, new GemmParams(Activation.Gelu), tBias.View, residual: c.View);

        var expected = Reference(a, w, 1, m, k, n, false, bias, RefActivation.Gelu, residual);
        ParityCheck.AssertClose(Download(ctx, c), expected, Tolerance, $"{backend}/in-place residual {m}x{k}x{n}");
    }

    [TestCaseSource(nameof(BackendNames))]
    public void StridedA_RowPitchKPlus5(string backend)
    {
        const int m = 11, k = 19, n = 21, pitch = k + 5;
        var ctx = Backends.Get(backend);
        var a = RandomInputs.Uniform(1101, m * k);
        var w = RandomInputs.Uniform(1102, n * k);
        // A's rows inside a wider [M, K + 5] tensor whose extra columns are NaN: reading them shows.
        var stored = new float[m * pitch];
        Array.Fill(stored, float.NaN);
        for (int r = 0; r < m; r++) a.AsSpan(r * k, k).CopyTo(stored.AsSpan(r * pitch, k));

        using var t = Tensor.FromHost<float>(ctx, stored, new Shape(m, pitch));
        var aView = new TensorView(t.View.Storage, DType.F32, new Shape(m, k), new Shape(pitch, 1));
        using var tw = Tensor.FromHost<float>(ctx, w, new Shape(n, k));
        using var packed = PackedMatrix.Pack(ctx, tw.View, transposed: true);
        using var c = PoisonedOutput(ctx, new Shape(m, n));

        GemmKernel.Launch(ctx, aView, packed.View, c.View);

        ParityCheck.AssertClose(Download(ctx, c), Reference(a, w, 1, m, k, n, true), Tolerance, $"{backend}/strided A {m}x{k}x{n}");
    }

    [TestCaseSource(nameof(BackendNames))]
    public void PrepackedWeights_ReusedForTwoInputs(string backend)
    {
        const int m = 7, k = 33, n = 18;
        var ctx = Backends.Get(backend);
        var w = RandomInputs.Uniform(701, n * k);
        var bias = RandomInputs.Uniform(702, n);
        using var tw = Tensor.FromHost<float>(ctx, w, new Shape(n, k));
        using var tBias = Tensor.FromHost<float>(ctx, bias, new Shape(n), Align);
        using var packed = PackedMatrix.Pack(ctx, tw.View, transposed: true);
        using var c = Tensor.Allocate(ctx, DType.F32, new Shape(m, n), Align);

        // Pack once, launch twice: the second result must not carry anything of the first.
        foreach (int seed in new[] { 703, 704 })
        {
            var a = RandomInputs.Uniform(seed, m * k, -2f, 2f);
            using var ta = Tensor.FromHost<float>(ctx, a, new Shape(m, k));
            ElementwiseKernel.Fill(ctx, c.View, float.NaN);
            GemmKernel.Launch(ctx, ta.View, packed.View, c.View, new GemmParams(Activation.Silu), tBias.View);
            var expected = Reference(a, w, 1, m, k, n, true, bias, RefActivation.Silu);
            ParityCheck.AssertClose(Download(ctx, c), expected, Tolerance, $"{backend}/prepacked, input seed {seed}");
        }
    }

    public static IEnumerable<TestCaseData> PackCases() =>
        from backend in Backends.Names
        from transposed in new[] { false, true }
        from batch in new[] { 1, 2 }
        select new TestCaseData(backend, transposed, batch)
            .SetName($"{backend}/pack_into_preallocated_{(transposed ? "transposed" : "rowmajor")}_batch{batch}");

    [TestCaseSource(nameof(PackCases))]
    public void PackIntoPreallocatedPanels_ThenLaunch(string backend, bool transposed, int batch)
    {
        const int m = 10, k = 17, n = 35;
        var ctx = Backends.Get(backend);
        var a = RandomInputs.Uniform(900 + batch, batch * m * k);
        var b = RandomInputs.Uniform(950 + batch, batch * k * n);
        var bShape = batch == 1
            ? (transposed ? new Shape(n, k) : new Shape(k, n))
            : (transposed ? new Shape(batch, n, k) : new Shape(batch, k, n));
        var aShape = batch == 1 ? new Shape(m, k) : new Shape(batch, m, k);
        var cShape = batch == 1 ? new Shape(m, n) : new Shape(batch, m, n);

        using var ta = Tensor.FromHost<float>(ctx, a, aShape);
        using var tb = Tensor.FromHost<float>(ctx, b, bShape);
        var panelShape = GemmKernel.PanelShape(batch, k, n);
        using var panels = Tensor.Allocate(ctx, DType.F32, panelShape);
        // Poisoned, so that a panel element the packer skips (zero padding included) shows.
        ElementwiseKernel.Fill(ctx, panels.View, float.NaN);
        var packed = new PackedMatrixView(panels.View, k, n);
        GemmKernel.Pack(ctx, tb.View, transposed, packed);

        // The panels are a pure copy of B: [batch, panel, k, 16], zero past column N.
        var host = Download(ctx, panels);
        long panelCount = panelShape[1];
        for (int bi = 0; bi < batch; bi++)
            for (long p = 0; p < panelCount; p++)
                for (int q = 0; q < k; q++)
                    for (int j = 0; j < GemmKernel.PanelWidth; j++)
                    {
                        long col = p * GemmKernel.PanelWidth + j;
                        float got = host[((bi * panelCount + p) * k + q) * GemmKernel.PanelWidth + j];
                        float want = col >= n ? 0f
                            : b[bi * k * n + (transposed ? col * k + q : q * n + col)];
                        if (got != want)
                            Assert.Fail($"panel element batch {bi}, panel {p}, k {q}, lane {j}: {got}, expected {want}");
                    }

        using var c = PoisonedOutput(ctx, cShape);
        GemmKernel.Launch(ctx, ta.View, packed, c.View);
        ParityCheck.AssertClose(Download(ctx, c), Reference(a, b, batch, m, k, n, transposed), Tolerance,
            $"{backend}/packed into preallocated panels, batch {batch}{(transposed ? ", transposed" : "")}");
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Pack_WrongPanelShape_Throws(string backend)
    {
        const int k = 17, n = 35;
        var ctx = Backends.Get(backend);
        using var tb = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(961, k * n), new Shape(k, n));
        using var extraPanel = Tensor.Allocate(ctx, DType.F32, GemmKernel.PanelShape(1, k, n + GemmKernel.PanelWidth));
        using var wrongK = Tensor.Allocate(ctx, DType.F32, GemmKernel.PanelShape(1, k + 1, n));
        using var right = Tensor.Allocate(ctx, DType.F32, GemmKernel.PanelShape(1, k, n));

        Assert.That(() => GemmKernel.Pack(ctx, tb.View, false, new PackedMatrixView(extraPanel.View, k, n)), Throws.ArgumentException);
        Assert.That(() => GemmKernel.Pack(ctx, tb.View, false, new PackedMatrixView(wrongK.View, k + 1, n)), Throws.ArgumentException);
        // Panels of the right shape but a K or N that disagrees with them.
        Assert.That(() => GemmKernel.Pack(ctx, tb.View, false, new PackedMatrixView(right.View, k - 1, n)), Throws.ArgumentException);
        Assert.That(() => GemmKernel.Pack(ctx, tb.View, false, new PackedMatrixView(right.View, k, n - 1)), Throws.ArgumentException);
        // B read as transposed is [N = 17, K = 35]: the panels for [35, 17] do not fit it.
        Assert.That(() => GemmKernel.Pack(ctx, tb.View, true, new PackedMatrixView(right.View, k, n)), Throws.ArgumentException);
    }

    // ---- validation ---------------------------------------------------------------------------------------

    private sealed class Operands : IDisposable
    {
        public const int M = 9, K = 22, N = 21;
        public readonly Tensor A, C;
        public readonly PackedMatrix B;

        public Operands(DeviceContext ctx)
        {
            A = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(501, M * K), new Shape(M, K));
            using var w = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(502, K * N), new Shape(K, N));
            B = PackedMatrix.Pack(ctx, w.View, transposed: false);
            C = PoisonedOutput(ctx, new Shape(M, N));
        }

        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
            C.Dispose();
        }
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Validate_OutputWithoutRowPadding_Throws(string backend)
    {
        var ctx = Backends.Get(backend);
        using var ops = new Operands(ctx);
        Assert.That(Operands.N % GemmKernel.PanelWidth, Is.Not.Zero, "the case needs N off the panel width");
        using var dense = Tensor.Allocate(ctx, DType.F32, new Shape(Operands.M, Operands.N), rowAlignment: 1);
        Assert.That(() => GemmKernel.Launch(ctx, ops.A.View, ops.B.View, dense.View),
            Throws.ArgumentException.With.Message.Contains("row pitch"));
        // The same for a residual without padding.
        Assert.That(() => GemmKernel.Launch(ctx, ops.A.View, ops.B.View, ops.C.View, residual: dense.View),
            Throws.ArgumentException.With.Message.Contains("row pitch"));
        // A rejected launch ran nothing: C is still all poison.
        Assert.That(Download(ctx, ops.C), Has.All.NaN);
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Validate_KMismatch_Throws(string backend)
    {
        var ctx = Backends.Get(backend);
        using var ops = new Operands(ctx);
        using var a = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(511, Operands.M * (Operands.K + 1)), new Shape(Operands.M, Operands.K + 1));
        Assert.That(() => GemmKernel.Launch(ctx, a.View, ops.B.View, ops.C.View), Throws.ArgumentException.With.Message.Contains("K"));
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Validate_BiasWrongLength_Throws(string backend)
    {
        var ctx = Backends.Get(backend);
        using var ops = new Operands(ctx);
        using var shortBias = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(521, Operands.N - 1), new Shape(Operands.N - 1), Align);
        using var longBias = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(522, Operands.N + 1), new Shape(Operands.N + 1), Align);
        Assert.That(() => GemmKernel.Launch(ctx, ops.A.View, ops.B.View, ops.C.View, bias: shortBias.View), Throws.ArgumentException);
        Assert.That(() => GemmKernel.Launch(ctx, ops.A.View, ops.B.View, ops.C.View, bias: longBias.View), Throws.ArgumentException);
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Validate_BatchMismatch_Throws(string backend)
    {
        const int m = 5, k = 7, n = 9;
        var ctx = Backends.Get(backend);
        using var a = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(531, 3 * m * k), new Shape(3, m, k));
        using var b = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(532, 2 * k * n), new Shape(2, k, n));
        using var packed = PackedMatrix.Pack(ctx, b.View, transposed: false);
        using var c = PoisonedOutput(ctx, new Shape(3, m, n));
        using var c2 = PoisonedOutput(ctx, new Shape(2, m, n));
        // Two packed B matrices for three batches of A.
        Assert.That(() => GemmKernel.Launch(ctx, a.View, packed.View, c.View), Throws.ArgumentException.With.Message.Contains("batch"));
        // C's batch differs from A's.
        using var a2 = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(533, 2 * m * k), new Shape(2, m, k));
        Assert.That(() => GemmKernel.Launch(ctx, a2.View, packed.View, c.View), Throws.ArgumentException);
        Assert.That(() => GemmKernel.Launch(ctx, a.View, packed.View, c2.View), Throws.ArgumentException);
    }
    [TestCaseSource(nameof(BackendNames))]
    public void Banded_SkipsZeroBlocksAndMatchesDense(string backend)
    {
        // Each column c is nonzero on rows near 1.3·c (a filterbank-like band); column 20 is all zero and
        // N = 37 leaves a partial last panel. The zeros the banded GEMM skips must not change the result.
        const int m = 23, k = 53, n = 37;
        var ctx = Backends.Get(backend);
        var a = RandomInputs.Uniform(1401, m * k);
        var w = RandomInputs.Uniform(1402, k * n);
        for (int r = 0; r < k; r++)
            for (int col = 0; col < n; col++)
                if (Math.Abs(r - 1.3 * col) > 3 || col == 20) w[r * n + col] = 0f;
        using var ta = Tensor.FromHost<float>(ctx, a, new Shape(m, k));
        using var banded = BandedMatrix.Pack(ctx, w, k, n);
        Assert.That(banded.RowsPacked, Is.LessThan(banded.PanelCount * k), "a banded B packs fewer rows than a dense one");
        using var c = PoisonedOutput(ctx, new Shape(m, n));
        GemmKernel.LaunchBanded(ctx, ta.View, banded, c.View);
        ParityCheck.AssertClose(Download(ctx, c), Reference(a, w, 1, m, k, n, transposeB: false), Tolerance, $"banded {m}×{k}×{n} on {backend}");
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Banded_WrongShapes_Throw(string backend)
    {
        var ctx = Backends.Get(backend);
        Assert.Throws<ArgumentException>(() => BandedMatrix.Pack(ctx, new float[10], 3, 4));
        using var banded = BandedMatrix.Pack(ctx, RandomInputs.Uniform(1403, 12 * 5), 12, 5);
        using var a = Tensor.Allocate(ctx, DType.F32, new Shape(4, 11));
        using var c = Tensor.Allocate(ctx, DType.F32, new Shape(4, 5), Align);
        var e = Assert.Throws<ArgumentException>(() => GemmKernel.LaunchBanded(ctx, a.View, banded, c.View));
        Assert.That(e!.Message, Does.Contain("[M, 12]"));
    }
}
