using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;
using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// OmniKernels.Core: the PoCL enablement, self-tests, the buffer pool, tensors and views, device
/// names; and sanity of the reference erfc that every GELU check rests on.
/// </summary>
[TestFixture]
public sealed class CoreTests
{
    public static IEnumerable<string> BackendNames() => Backends.Names;

    // ---- PoCL enablement and self-tests -------------------------------------------------------------------

    [Test]
    public void PoclSupport_BackingFieldStillExists()
    {
        // Throws (naming the ILGPU version) if an ILGPU upgrade moved the capability's backing field.
        var field = PoclSupport.GenericAddressSpaceField();
        Assert.That(field.FieldType, Is.EqualTo(typeof(bool)));
        Assert.That(field.IsStatic, Is.False);
        Assert.That(field.DeclaringType, Is.EqualTo(typeof(CLCapabilityContext)));

        var pocl = Backends.All.Where(c => c.Entry.IsPocl).ToList();
        if (DeviceKinds.RequiredName() is { } name && name.Equals("pocl", StringComparison.OrdinalIgnoreCase))
            Assert.That(pocl, Is.Not.Empty, $"{DeviceKinds.RequireVariable}={DeviceKinds.RequirementText()}: PoCL's CPU device must be among the backends");
        foreach (var ctx in pocl)
        {
            var device = (CLDevice)ctx.Entry.Device;
            Assert.That(device.Capabilities.GenericAddressSpace, Is.True, $"{ctx.Entry}: enablement did not stick");
            // The field the enablement writes is the one the public property reads.
            Assert.That(field.GetValue(device.Capabilities), Is.EqualTo(true), $"{ctx.Entry}: backing field");
            Assert.That(ctx.SelfTest.Passed, Is.True, $"{ctx.Entry}: {ctx.SelfTest.Detail}");
        }
    }

    [TestCaseSource(nameof(BackendNames))]
    public void SelfTest_Passes(string backend)
    {
        var ctx = Backends.Get(backend);
        Assert.That(ctx.SelfTest.Passed, Is.True, ctx.SelfTest.Detail);
        // Run again on the live accelerator: the result at creation is not a cached verdict.
        var again = SelfTest.Run(ctx.Accelerator);
        Assert.That(again.Passed, Is.True, again.Detail);
    }

    // ---- BufferPool ---------------------------------------------------------------------------------------

    private static IEnumerable<long> PoolSizes()
    {
        var rng = new Random(8675309);
        for (int i = 0; i < 2000; i++) yield return rng.NextInt64(4097, 1L << 40);
        for (int i = 0; i < 2000; i++) yield return rng.NextInt64(4097, 1 << 20);
        // Powers of two and their neighbours: where the step changes.
        for (int p = 12; p < 45; p++)
            foreach (long d in new long[] { -1, 0, 1 })
                if ((1L << p) + d > 4096) yield return (1L << p) + d;
    }

    [Test]
    public void BufferPool_SizeClass_WastesAtMostAnEighth()
    {
        foreach (long n in PoolSizes())
        {
            long s = BufferPool.SizeClass(n);
            Assert.That(s, Is.GreaterThanOrEqualTo(n), $"SizeClass({n})");
            Assert.That((double)s, Is.LessThanOrEqualTo(1.125 * n), $"SizeClass({n}) = {s}");
            // Returned buffers are filed under their length: a class must map to itself.
            Assert.That(BufferPool.SizeClass(s), Is.EqualTo(s), $"SizeClass(SizeClass({n}))");
        }
        var rng = new Random(12);
        for (int i = 0; i < 100; i++)
        {
            long n = rng.NextInt64(1, 4097);
            Assert.That(BufferPool.SizeClass(n), Is.GreaterThanOrEqualTo(n), $"SizeClass({n})");
        }
    }

    [TestCaseSource(nameof(BackendNames))]
    public void BufferPool_ReusesReturnedBuffer(string backend)
    {
        var pool = Backends.Get(backend).Pool;
        const long bytes = 123_457;
        long inUse0 = pool.BytesInUse;

        var first = pool.Rent(bytes);
        Assert.That(first.Length, Is.EqualTo(BufferPool.SizeClass(bytes)));
        Assert.That(pool.BytesInUse, Is.EqualTo(inUse0 + first.Length));
        pool.Return(first);
        Assert.That(pool.BytesInUse, Is.EqualTo(inUse0));

        long allocations = pool.DeviceAllocations;
        long cached = pool.BytesCached;
        var second = pool.Rent(bytes);
        Assert.That(pool.DeviceAllocations, Is.EqualTo(allocations), "a cached buffer of the class was free");
        Assert.That(second, Is.SameAs(first));
        Assert.That(pool.BytesCached, Is.EqualTo(cached - second.Length));
        pool.Return(second);
        Assert.That(pool.BytesInUse, Is.EqualTo(inUse0));

        // A tensor goes through the pool too: allocate, dispose, allocate the same shape again.
        var shape = new Shape(37, 29);
        Tensor.Allocate(Backends.Get(backend), DType.F32, shape, 16).Dispose();
        allocations = pool.DeviceAllocations;
        using (Tensor.Allocate(Backends.Get(backend), DType.F32, shape, 16))
            Assert.That(pool.DeviceAllocations, Is.EqualTo(allocations));
        Assert.That(pool.BytesInUse, Is.EqualTo(inUse0));
    }

    [TestCaseSource(nameof(BackendNames))]
    public void BufferPool_PeakTracksAndResets(string backend)
    {
        var pool = Backends.Get(backend).Pool;
        long inUse0 = pool.BytesInUse;
        pool.ResetPeak();
        Assert.That(pool.PeakBytesInUse, Is.EqualTo(inUse0));

        var x = pool.Rent(50_001);
        var y = pool.Rent(70_003);
        long peak = inUse0 + x.Length + y.Length;
        Assert.That(pool.PeakBytesInUse, Is.EqualTo(peak));
        pool.Return(x);
        pool.Return(y);
        Assert.That(pool.BytesInUse, Is.EqualTo(inUse0));
        Assert.That(pool.PeakBytesInUse, Is.EqualTo(peak), "the peak outlives the buffers");

        pool.ResetPeak();
        Assert.That(pool.PeakBytesInUse, Is.EqualTo(inUse0));
    }

    // ---- Tensor and TensorView ----------------------------------------------------------------------------

    public static IEnumerable<TestCaseData> RoundTripCases()
    {
        var shapes = new long[][] { [37], [5, 21], [2, 3, 7], [1, 17] };
        foreach (var backend in Backends.Names)
            foreach (var shape in shapes)
                foreach (long align in new long[] { 1, 16 })
                    yield return new TestCaseData(backend, shape, align)
                        .SetName($"{backend}/tensor_roundtrip_{string.Join("x", shape)}_align{align}");
    }

    [TestCaseSource(nameof(RoundTripCases))]
    public void Tensor_RoundTrip_FloatAndInt(string backend, long[] dims, long align)
    {
        var ctx = Backends.Get(backend);
        var shape = new Shape(dims);
        int n = (int)shape.Numel;
        var floats = RandomInputs.Uniform(1000 + n, n, -3f, 3f);
        var rng = new Random(2000 + n);
        var ints = Enumerable.Range(0, n).Select(_ => rng.Next(int.MinValue, int.MaxValue)).ToArray();

        using (var t = Tensor.FromHost<float>(ctx, floats, shape, align))
        {
            Assert.That(t.DType, Is.EqualTo(DType.F32));
            Assert.That(t.Shape, Is.EqualTo(shape));
            if (dims.Length > 1)
                Assert.That(t.View.Strides[-2], Is.EqualTo(Shape.RoundUp(dims[^1], align)), "row pitch");
            Assert.That(t.ToArray<float>(), Is.EqualTo(floats));
        }
        using (var t = Tensor.FromHost<int>(ctx, ints, shape, align))
        {
            Assert.That(t.DType, Is.EqualTo(DType.I32));
            Assert.That(t.ToArray<int>(), Is.EqualTo(ints));
        }
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Tensor_CopyFromHost_LeavesRowPaddingAlone(string backend)
    {
        var ctx = Backends.Get(backend);
        const int rows = 5, cols = 21, pitch = 32;
        var data = RandomInputs.Uniform(31, rows * cols);
        using var t = Tensor.Allocate(ctx, DType.F32, new Shape(rows, cols), 16);
        ElementwiseKernel.Fill(ctx, t.View, float.NaN);
        t.CopyFromHost<float>(data);
        ctx.Synchronize();

        // Read the raw storage, padding included.
        var raw = new float[(rows - 1) * pitch + cols];
        t.View.Elements<float>().SubView(0, raw.Length).CopyToCPU(ctx.Stream, raw);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < pitch && r * pitch + c < raw.Length; c++)
            {
                float v = raw[r * pitch + c];
                if (c < cols) Assert.That(v, Is.EqualTo(data[r * cols + c]), $"element ({r}, {c})");
                else Assert.That(float.IsNaN(v), Is.True, $"padding ({r}, {c}) was overwritten with {v}");
            }
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Tensor_WrongCountOrDType_Throws(string backend)
    {
        var ctx = Backends.Get(backend);
        long inUse0 = ctx.Pool.BytesInUse;
        var shape = new Shape(5, 21);
        var short1 = RandomInputs.Uniform(3, 5 * 21 - 1);
        var long1 = RandomInputs.Uniform(4, 5 * 21 + 1);
        Assert.That(() => Tensor.FromHost<float>(ctx, short1, shape, 16), Throws.ArgumentException);
        Assert.That(() => Tensor.FromHost<float>(ctx, long1, shape), Throws.ArgumentException);
        // A failed FromHost returns its memory.
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(inUse0));

        using var t = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(5, 5 * 21), shape);
        var ints = Enumerable.Range(1, 5 * 21).ToArray();
        Assert.That(() => t.CopyFromHost<int>(ints), Throws.ArgumentException);
        Assert.That(() => t.ToArray<int>(), Throws.ArgumentException);
        Assert.That(() => t.CopyToHost<float>(new float[5 * 21 + 1]), Throws.ArgumentException);
    }

    [TestCaseSource(nameof(BackendNames))]
    public void Tensor_Dispose_IsIdempotent_AndViewThrowsAfter(string backend)
    {
        var ctx = Backends.Get(backend);
        long inUse0 = ctx.Pool.BytesInUse;
        var t = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(6, 2 * 3 * 7), new Shape(2, 3, 7), 16);
        Assert.That(ctx.Pool.BytesInUse, Is.GreaterThan(inUse0));
        t.Dispose();
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(inUse0));
        Assert.That(() => t.Dispose(), Throws.Nothing);
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(inUse0), "a second Dispose must not return the buffer twice");
        Assert.That(() => t.View, Throws.TypeOf<ObjectDisposedException>());
        Assert.That(() => t.ToArray<float>(), Throws.TypeOf<ObjectDisposedException>());
    }

    [TestCaseSource(nameof(BackendNames))]
    public void TensorView_RejectsTooSmallStorage(string backend)
    {
        var ctx = Backends.Get(backend);
        using var t = Tensor.Allocate(ctx, DType.F32, new Shape(9, 13));
        var storage = t.View.Storage;
        long fits = storage.Length / sizeof(float);

        // The boundary: exactly the storage is fine, one element more is not.
        Assert.That(() => new TensorView(storage, DType.F32, new Shape(fits), new Shape(1)), Throws.Nothing);
        Assert.That(() => new TensorView(storage, DType.F32, new Shape(fits + 1), new Shape(1)), Throws.ArgumentException);
        Assert.That(() => new TensorView(storage, DType.F32, new Shape(fits), new Shape(1), offset: 1), Throws.ArgumentException);
        // A row pitch that runs the last row past the end.
        long rows = 7, pitch = fits / (rows - 1);
        Assert.That(() => new TensorView(storage, DType.F32, new Shape(rows, pitch), new Shape(pitch, 1)), Throws.ArgumentException);
        Assert.That(() => new TensorView(storage, DType.I32, new Shape(fits / 2 + 1, 2), new Shape(2, 1)), Throws.ArgumentException);
    }

    // ---- device names -------------------------------------------------------------------------------------

    [Test]
    public void DeviceKinds_Parse_CaseInsensitive()
    {
        var names = new (string Text, DeviceKind Kind)[]
        {
            ("auto", DeviceKind.Auto), ("AUTO", DeviceKind.Auto), ("Cuda", DeviceKind.Cuda), ("CUDA", DeviceKind.Cuda),
            ("opencl", DeviceKind.OpenCL), ("OpenCL", DeviceKind.OpenCL), ("cpu", DeviceKind.Cpu), ("CpU", DeviceKind.Cpu),
            ("reference", DeviceKind.Reference), ("REFERENCE", DeviceKind.Reference),
        };
        foreach (var (text, kind) in names)
            Assert.That(DeviceKinds.Parse(text), Is.EqualTo(kind), text);
        // Every kind's own name parses back to it.
        foreach (var kind in Enum.GetValues<DeviceKind>())
            Assert.That(DeviceKinds.Parse(kind.Name()), Is.EqualTo(kind));

        foreach (var bad in new[] { "tpu", "gpu", "open-cl", "cpu0" })
            Assert.That(() => DeviceKinds.Parse(bad), Throws.ArgumentException.With.Message.Contains($"'{bad}'"));
    }

    [Test]
    public void DeviceCatalog_PickReference_Throws()
    {
        var entries = Backends.All.Select(c => c.Entry).ToList();
        Assert.That(() => DeviceCatalog.Pick(entries, DeviceKind.Reference), Throws.ArgumentException);
        Assert.That(() => DeviceCatalog.Pick([], DeviceKind.Reference), Throws.ArgumentException);
        // Auto picks the first (most preferred) entry; an empty catalog has nothing to pick.
        Assert.That(DeviceCatalog.Pick(entries, DeviceKind.Auto), Is.SameAs(entries[0]));
        Assert.That(() => DeviceCatalog.Pick([], DeviceKind.Auto), Throws.TypeOf<DeviceUnavailableException>());
    }

    // ---- reference erfc -----------------------------------------------------------------------------------

    private static IEnumerable<double> ErfcGrid(double from, double to, double step)
    {
        for (long i = 0; from + i * step <= to; i++) yield return from + i * step;
    }

    [Test]
    public void Erfc_MatchesTheCLibrary()
    {
        // Python's math.erfc (the C library's) from tools/make_op_vectors.py: both signs checked independently.
        string V(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"op_erfc_{name}.npy");
        var xs = (double[])OmniKernels.IO.NpyFile.Read(V("x")).Data;
        var expected = (double[])OmniKernels.IO.NpyFile.Read(V("expected")).Data;
        Assert.That(xs, Has.Length.EqualTo(expected.Length).And.Length.GreaterThan(1000));
        for (int i = 0; i < xs.Length; i++)
        {
            // The series below 2.5 is good to about 1e-13 absolute; the continued fraction above to a few ulps.
            double got = ReferenceOps.Erfc(xs[i]), bound = xs[i] < 2.5 ? 1e-13 : 1e-14 * expected[i];
            Assert.That(Math.Abs(got - expected[i]), Is.LessThanOrEqualTo(bound), $"erfc({xs[i]:R}) = {got:R}; C library {expected[i]:R}");
        }
    }

    [Test]
    public void Erfc_ContinuousAcrossBranchPoint()
    {
        // The series (below 2.5) and the continued fraction (above) must meet. The true change over
        // 2h is ≈ 2h·(2/√π)e^{−6.25} ≈ 4.4e-12 at h = 1e-9, so the jump is measured net of it.
        const double h = 1e-9, x0 = 2.5;
        double below = ReferenceOps.Erfc(x0 - h), above = ReferenceOps.Erfc(x0 + h);
        double slope = 2 / Math.Sqrt(Math.PI) * Math.Exp(-x0 * x0);
        Assert.That(Math.Abs(below - above - 2 * h * slope), Is.LessThan(1e-12), $"erfc({x0}−h) = {below}, erfc({x0}+h) = {above}");
        Assert.That(below, Is.GreaterThan(above));
    }

    [Test]
    public void Erfc_MonotoneDecreasing()
    {
        double prev = double.PositiveInfinity;
        foreach (double x in ErfcGrid(-8, 8, 1e-3))
        {
            double y = ReferenceOps.Erfc(x);
            Assert.That(y, Is.InRange(0.0, 2.0), $"x = {x}");
            // Below −4, erfc is 2 to within an ulp, so only non-increase can hold.
            if (x > -4) Assert.That(y, Is.LessThan(prev), $"x = {x}");
            else Assert.That(y, Is.LessThanOrEqualTo(prev), $"x = {x}");
            prev = y;
        }
    }

    [Test]
    public void Erfc_DerivativeMatchesGaussian()
    {
        // Five-point central difference (error O(h⁴)), so that h can stay large against the series' rounding.
        const double h = 1e-3;
        foreach (double x in new[] { -3.0, -1.3, -0.4, 0.0, 0.2, 0.9, 1.7, 2.4, 2.49, 2.51, 2.6, 3.1, 4.2, 5.5 })
        {
            double numeric = (ReferenceOps.Erfc(x - 2 * h) - 8 * ReferenceOps.Erfc(x - h)
                + 8 * ReferenceOps.Erfc(x + h) - ReferenceOps.Erfc(x + 2 * h)) / (12 * h);
            double exact = -2 / Math.Sqrt(Math.PI) * Math.Exp(-x * x);
            Assert.That(Math.Abs(numeric - exact) / Math.Abs(exact), Is.LessThanOrEqualTo(1e-6),
                $"x = {x}: d/dx erfc ≈ {numeric}, −2/√π·e^(−x²) = {exact}");
        }
    }
}
