using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Ops;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// INT8: int32 accumulators bit for bit against the integer reference; the dequantized path within
/// the analytic quantization error bound of the float64 fp32 product; memory per weight; zero channels.
/// </summary>
[TestFixture]
public sealed class Int8Tests
{
    private static sbyte[] RandomInt8(int seed, long n)
    {
        var rng = new Random(seed);
        var a = new sbyte[n];
        for (long i = 0; i < n; i++) a[i] = (sbyte)rng.Next(-127, 128);
        return a;
    }

    public static IEnumerable<TestCaseData> RawCases() =>
        from backend in Backends.Names
        from shape in new (int M, int K, int N)[] { (1, 64, 70), (13, 37, 29), (1, 300, 33), (197, 768, 50), (7, 4096, 21) }
        where !Backends.IsEmulator(backend) || shape.K * shape.N * shape.M < 50_000
        select new TestCaseData(backend, shape.M, shape.K, shape.N).SetName($"{backend}/int8_raw_{shape.M}x{shape.K}x{shape.N}");

    [TestCaseSource(nameof(RawCases))]
    public void RawAccumulatorsAreExact(string backend, int m, int k, int n)
    {
        RawExact(backend, m, k, n, asFloats: false);
        RawExact(backend, m, k, n, asFloats: true);
    }

    private static void RawExact(string backend, int m, int k, int n, bool asFloats)
    {
        var ctx = Backends.Get(backend);
        // Extreme values on purpose: ±127 everywhere in one row checks the largest sums.
        var a = RandomInt8(m * 31 + k, (long)m * k);
        for (int i = 0; i < k; i++) a[i] = 127;
        var w = RandomInt8(n * 17 + k, (long)n * k);
        for (int i = 0; i < k; i++) w[i] = -127;
        using var weights = Int8Matrix.FromQuantized(ctx, w, new float[n], n, k);
        using var ta = asFloats ? Tensor.FromHost<float>(ctx, a.Select(v => (float)v).ToArray(), new Shape(m, k)) : Tensor.FromHost<sbyte>(ctx, a, new Shape(m, k));
        using var c = Tensor.Allocate(ctx, DType.I32, new Shape(m, n), GemmKernel.PanelWidth);
        Int8GemmKernel.LaunchRaw(ctx, ta.View, weights.View, c.View);
        ctx.Synchronize();
        var got = c.ToArray<int>();
        var expected = new long[(long)m * n];
        ReferenceOps.MatMulInt8(a, w, m, k, n, expected);
        Assert.That(got.Select(v => (long)v), Is.EqualTo(expected), "int32 accumulators");
    }

    // Also on the CPU devices forced onto the GPU schedule: the group quantizer and the dp4a GEMM together.
    public static IEnumerable<TestCaseData> DequantCases() =>
        from backend in Backends.Names.Concat(Backends.GpuScheduledNames)
        from shape in new (int M, int K, int N)[] { (1, 96, 70), (13, 37, 29), (197, 768, 100), (3, 2100, 40) }
        from q in new[] { DType.I8, DType.F32 }
        where !Backends.IsEmulator(backend) || shape.K * shape.N * shape.M < 50_000
        select new TestCaseData(backend, shape.M, shape.K, shape.N, q).SetName($"{backend}/int8_dequant_{shape.M}x{shape.K}x{shape.N}_q{q}");

    [TestCaseSource(nameof(DequantCases))]
    public void DequantizedWithinTheQuantizationBound(string backend, int m, int k, int n, DType qType)
    {
        var ctx = Backends.Get(backend);
        var x = RandomInputs.Uniform(m + 5, (long)m * k, -2f, 2f);
        var w = RandomInputs.Uniform(n + 7, (long)n * k, -0.5f, 0.5f);
        for (int i = 0; i < k; i++) w[i] = 0f; // output channel 0 is all zero: scale 0 must give bias, not NaN
        var bias = RandomInputs.Uniform(3, n);
        using var weights = Int8Matrix.QuantizeWeights(ctx, w, n, k);
        using var tx = Tensor.FromHost<float>(ctx, x, new Shape(m, k));
        using var q = Tensor.Allocate(ctx, qType, new Shape(m, k));
        using var rowScales = Tensor.Allocate(ctx, DType.F32, new Shape(m));
        using var tb = Tensor.FromHost<float>(ctx, bias, new Shape(n), GemmKernel.PanelWidth);
        using var y = Tensor.Allocate(ctx, DType.F32, new Shape(m, n), GemmKernel.PanelWidth);
        ElementwiseKernel.Fill(ctx, y.View, float.NaN);
        Int8GemmKernel.QuantizeRows(ctx, tx.View, q.View, rowScales.View);
        Int8GemmKernel.Launch(ctx, q.View, rowScales.View, weights.View, y.View, default, tb.View);
        ctx.Synchronize();
        var got = y.ToArray<float>();
        var reference = new double[(long)m * n];
        ReferenceOps.MatMul(x, w, 1, m, k, n, transposeB: true, bias, RefActivation.None, default, reference);

        // |Δ(x·w)| ≤ Σ_k |x_k|·s_w/2 + |w_k|·s_x/2 + s_x·s_w/4, with s = max|·|/127 of the row or channel.
        for (int i = 0; i < m; i++)
        {
            double sx = Enumerable.Range(0, k).Max(j => Math.Abs((double)x[i * k + j])) / 127;
            for (int o = 0; o < n; o++)
            {
                double sw = Enumerable.Range(0, k).Max(j => Math.Abs((double)w[o * k + j])) / 127, bound = 0;
                for (int j = 0; j < k; j++) bound += Math.Abs(x[i * k + j]) * sw / 2 + Math.Abs(w[o * k + j]) * sx / 2 + sx * sw / 4;
                double v = got[i * n + o], r = reference[i * n + o];
                Assert.That(double.IsFinite(v), $"({i}, {o}) is {v}");
                Assert.That(Math.Abs(v - r), Is.LessThanOrEqualTo(bound * 1.0001 + 1e-5 * (Math.Abs(r) + 1)), $"({i}, {o}): {v} vs {r}, bound {bound}");
            }
        }
        Assert.That(Enumerable.Range(0, m).Select(i => got[i * n]), Is.EqualTo(Enumerable.Repeat(bias[0], m)), "an all-zero channel gives its bias");
    }

    [Test]
    public void QuantizedLinearKeepsAByteAWeightPlusOneScalePerChannel()
    {
        var ctx = Backends.All[0];
        const int k = 768, n = 3072;
        var w = RandomInputs.Uniform(1, (long)k * n);
        // What the pool actually hands out for the weight, not what DeviceBytes computes.
        long before = ctx.Pool.BytesInUse;
        using var weights = Int8Matrix.QuantizeWeights(ctx, w, n, k);
        long held = ctx.Pool.BytesInUse - before;
        long fp32 = 4L * k * n;
        TestContext.Out.WriteLine($"INT8 Linear {n}x{k}: {held} bytes rented from the pool = {(double)held / fp32:P2} of fp32; DeviceBytes {weights.DeviceBytes}");
        Assert.That(held, Is.LessThanOrEqualTo(0.26 * fp32), "device memory of an INT8 Linear against fp32");
        // DeviceBytes reports the panels and scales the pool holds, less at most its size-class rounding (12.5%, 4 KiB minimum).
        Assert.That(weights.DeviceBytes, Is.LessThanOrEqualTo(held).And.GreaterThanOrEqualTo((held - 2 * 4096) / 1.125));
        Assert.That(weights.DeviceBytes, Is.GreaterThanOrEqualTo((long)k * n + 4L * n), "a byte per weight and a float per channel at least");
        weights.Dispose();
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(before), "disposing the weight returns all of it");
    }

    [Test]
    public void OpsRejectNonFiniteActivationsAndBadWeights()
    {
        var x = new HostTensor([2, 3], new[] { 1f, float.NaN, 2f, 0f, 1f, 2f });
        var ex = Assert.Throws<OpInputException>(() => OpCatalog.Find("quantize").Bind(new Dictionary<string, HostTensor> { ["x"] = x }, new OpParams()));
        Assert.That(ex!.Message, Does.Contain("finite"));
        var w = new HostTensor([2, 3], new[] { 1, 2, 300, 4, 5, 6 });
        Assert.Throws<OpInputException>(() => OpCatalog.Find("matmul-int8").Bind(
            new Dictionary<string, HostTensor> { ["a"] = new HostTensor([1, 3], new[] { 1, 2, 3 }), ["w"] = w },
            new OpParams(new Dictionary<string, string> { ["raw"] = "true" })));
    }

    public static IEnumerable<string> IntegerBackends() => Backends.Names;

    [TestCaseSource(nameof(IntegerBackends))]
    public void QuantizeRoundsAsNumPyExceptAtTies(string backend)
    {
        var ctx = Backends.Get(backend);
        var data = RandomInputs.Uniform(77, 5 * 37, -3f, 3f);
        // Row 4: max 127, so x·127/max is x itself and ±(j + 0.5) are exact ties (rounded half to even by both).
        for (int c = 0; c < 37; c++) data[4 * 37 + c] = c == 0 ? 127f : c - 18.5f;
        var x = new HostTensor([5, 37], data);
        var op = OpCatalog.Find("quantize").Bind(new Dictionary<string, HostTensor> { ["x"] = x }, new OpParams());
        Int8Checks.AssertQuantizedLikeNumPy(data, 37, op.RunDeviceIntegers(ctx), $"{backend}/quantize");
        Int8Checks.AssertQuantizedLikeNumPy(data, 37, op.RunReferenceIntegers(), "reference quantize");
    }
}
