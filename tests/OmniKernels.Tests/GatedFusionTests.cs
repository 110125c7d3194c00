using ILGPU.Runtime;
using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// The fusion launchers directly: absent modalities' blocks are never read (NaN, infinities and
/// zeros there give bit-identical results), stores stay inside each row's columns (row padding
/// poisoned with NaN stays NaN), bad shapes and present sets are rejected before anything is
/// written, and steady-state launches allocate nothing.
/// </summary>
[TestFixture]
public sealed class GatedFusionTests
{
    private const int B = 5, M = 3, E = 37, K = 29, F = 24;
    private static readonly GatedFusionParams Present02 = GatedFusionParams.Of(0, 2);

    /// <summary>Every backend on its own schedule, and the CPU devices forced onto the GPU schedule.</summary>
    public static IEnumerable<string> Names => Backends.Names.Concat(Backends.GpuScheduledNames);

    private static float[] Filled(float[] v, int width, float fill)
    {
        var r = (float[])v.Clone();
        for (int b = 0; b < B; b++) Array.Fill(r, fill, (b * M + 1) * width, width);
        return r;
    }

    private static GatedFusionWeights Sigmoid(DeviceContext ctx, FusionWeightFormat format) =>
        GatedFusionWeights.Create(ctx, FusionGate.Sigmoid, M, M * E, RandomInputs.Uniform(2, M * E * M * E, -0.2f, 0.2f), RandomInputs.Uniform(3, M * E), format);

    private static GatedFusionWeights Softmax(DeviceContext ctx, FusionWeightFormat format) =>
        GatedFusionWeights.Create(ctx, FusionGate.Softmax, M, K, RandomInputs.Uniform(4, M * K), RandomInputs.Uniform(5, M), format);

    private static Tensor Poisoned(DeviceContext ctx, long rows, long cols, long rowAlignment = 1)
    {
        var t = Tensor.Allocate(ctx, DType.F32, new Shape(rows, cols), rowAlignment);
        ElementwiseKernel.Fill(ctx, t.View, float.NaN);
        return t;
    }

    /// <summary>fused and gates after one sigmoid launch with modality 1's block of z set to <paramref name="fill"/>.</summary>
    private static (float[] Fused, float[] Gates) RunSigmoid(DeviceContext ctx, GatedFusionWeights w, float fill)
    {
        using var z = Tensor.FromHost<float>(ctx, Filled(RandomInputs.Uniform(1, B * M * E), E, fill), new Shape(B, M * E));
        using var fused = Poisoned(ctx, B, E);
        using var gates = Poisoned(ctx, B, M * E);
        GatedFusionKernel.LaunchSigmoid(ctx, w.View, z.View, fused.View, gates.View, Present02);
        ctx.Synchronize();
        return (fused.ToArray<float>(), gates.ToArray<float>());
    }

    private static (float[] Fused, float[] Weights) RunSoftmax(DeviceContext ctx, GatedFusionWeights w, float fill)
    {
        using var h = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(6, B * K), new Shape(B, K));
        using var x = Tensor.FromHost<float>(ctx, Filled(RandomInputs.Uniform(7, B * M * F), F, fill), new Shape(B, M * F));
        using var fused = Poisoned(ctx, B, F);
        using var weights = Poisoned(ctx, B, M);
        GatedFusionKernel.LaunchSoftmax(ctx, w.View, h.View, x.View, fused.View, weights.View, Present02);
        ctx.Synchronize();
        return (fused.ToArray<float>(), weights.ToArray<float>());
    }

    [Test]
    public void AbsentBlocksAreNeverRead([ValueSource(nameof(Names))] string backend, [Values] FusionWeightFormat format)
    {
        var ctx = Backends.Get(backend);
        using (var w = Sigmoid(ctx, format))
        {
            var zeros = RunSigmoid(ctx, w, 0f);
            foreach (float fill in new[] { float.NaN, float.PositiveInfinity, -3e38f })
            {
                var other = RunSigmoid(ctx, w, fill);
                Assert.That(other.Fused, Is.EqualTo(zeros.Fused), $"sigmoid fused with {fill} in the absent block");
                Assert.That(other.Gates, Is.EqualTo(zeros.Gates), $"sigmoid gates with {fill} in the absent block");
            }
            for (int b = 0; b < B; b++)
                Assert.That(zeros.Gates.Skip(b * M * E + E).Take(E), Is.All.EqualTo(0f), "the absent modality's gates are 0");
        }
        using (var w = Softmax(ctx, format))
        {
            var zeros = RunSoftmax(ctx, w, 0f);
            foreach (float fill in new[] { float.NaN, float.NegativeInfinity })
            {
                var other = RunSoftmax(ctx, w, fill);
                Assert.That(other.Fused, Is.EqualTo(zeros.Fused), $"softmax fused with {fill} in the absent block");
                Assert.That(other.Weights, Is.EqualTo(zeros.Weights), $"softmax weights with {fill} in the absent block");
            }
            for (int b = 0; b < B; b++)
            {
                Assert.That(zeros.Weights[b * M + 1], Is.EqualTo(0f), "the absent modality's weight is 0");
                Assert.That(zeros.Weights[b * M] + zeros.Weights[b * M + 2], Is.EqualTo(1f).Within(1e-6f), "present weights sum to 1");
            }
        }
    }

    [TestCaseSource(nameof(Names))]
    public void StoresStayInsideRowsOfPaddedOutputs(string backend)
    {
        var ctx = Backends.Get(backend);
        using var w = Sigmoid(ctx, FusionWeightFormat.Fp32);
        var zHost = RandomInputs.Uniform(8, B * M * E);
        using var z = Tensor.FromHost<float>(ctx, zHost, new Shape(B, M * E));
        // Pitches 48 and 112: every column past E (or M·E) of a row is padding poisoned with NaN.
        using var fused = Poisoned(ctx, B, E, GemmKernel.PanelWidth);
        using var gates = Poisoned(ctx, B, M * E, GemmKernel.PanelWidth);
        GatedFusionKernel.LaunchSigmoid(ctx, w.View, z.View, fused.View, gates.View, GatedFusionParams.Of(0, 1, 2));
        ctx.Synchronize();
        var rawFused = new float[fused.View.Capacity];
        fused.View.Elements<float>().SubView(0, rawFused.Length).CopyToCPU(ctx.Stream, rawFused);
        long pitch = fused.View.Strides[0];
        Assert.That(pitch, Is.GreaterThan(E));
        var expected = new double[B * E];
        ReferenceOps.GatedFusionSigmoid(zHost, RandomInputs.Uniform(2, M * E * M * E, -0.2f, 0.2f), RandomInputs.Uniform(3, M * E), B, M, E, [true, true, true], expected, new double[B * M * E]);
        for (int b = 0; b < B; b++)
        {
            for (int e = 0; e < E; e++) Assert.That(rawFused[b * pitch + e], Is.EqualTo(expected[b * E + e]).Within(1e-5), $"fused[{b}, {e}]");
            for (long e = E; e < pitch; e++) Assert.That(rawFused[b * pitch + e], Is.NaN, $"padding [{b}, {e}] was written");
        }
        Assert.That(gates.ToArray<float>(), Is.All.Matches<float>(float.IsFinite));
    }

    public static IEnumerable<TestCaseData> BadLaunches()
    {
        yield return new TestCaseData("empty", "empty").SetName("bad_launch_empty_present_set");
        yield return new TestCaseData("bit3", "M = 3").SetName("bad_launch_present_modality_past_M");
        yield return new TestCaseData("z_width", "111").SetName("bad_launch_z_width_not_M_times_E");
        yield return new TestCaseData("z_rank", "2-D").SetName("bad_launch_z_3d");
        yield return new TestCaseData("z_dtype", "F32").SetName("bad_launch_z_int32");
        yield return new TestCaseData("fused_shape", "fused").SetName("bad_launch_fused_shape");
        yield return new TestCaseData("gates_shape", "gates").SetName("bad_launch_gates_shape");
        yield return new TestCaseData("gate_kind", "softmax gate weights").SetName("bad_launch_sigmoid_weights_to_softmax");
        yield return new TestCaseData("x_width", "M = 3").SetName("bad_launch_softmax_x_not_M_blocks");
        yield return new TestCaseData("h_width", "h").SetName("bad_launch_softmax_h_width");
    }

    [TestCaseSource(nameof(BadLaunches))]
    public void BadLaunch_Throws_NamingTheProblem_WritesNothing(string kind, string mention)
    {
        var ctx = Backends.All[0];
        using var sig = Sigmoid(ctx, FusionWeightFormat.Fp32);
        using var soft = Softmax(ctx, FusionWeightFormat.Fp32);
        using var z = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(9, B * M * E), new Shape(B, M * E));
        using var z3 = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(9, B * M * E), new Shape(B, M, E));
        using var zNarrow = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(9, B * (M * E - 1)), new Shape(B, M * E - 1));
        using var zInt = Tensor.FromHost<int>(ctx, new int[B * M * E], new Shape(B, M * E));
        using var h = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(10, B * (K + 1)), new Shape(B, K + 1));
        using var hOk = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(10, B * K), new Shape(B, K));
        using var x = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(11, B * (M * F + 1)), new Shape(B, M * F + 1));
        using var fused = Poisoned(ctx, B, E);
        using var fusedWrong = Poisoned(ctx, B, E + 1);
        using var gates = Poisoned(ctx, B, M * E);
        using var gatesWrong = Poisoned(ctx, B + 1, M * E);

        TestDelegate launch = kind switch
        {
            "empty" => () => GatedFusionKernel.LaunchSigmoid(ctx, sig.View, z.View, fused.View, gates.View, new GatedFusionParams(0)),
            "bit3" => () => GatedFusionKernel.LaunchSigmoid(ctx, sig.View, z.View, fused.View, gates.View, GatedFusionParams.Of(0, 3)),
            "z_width" => () => GatedFusionKernel.LaunchSigmoid(ctx, sig.View, zNarrow.View, fused.View, gates.View, Present02),
            "z_rank" => () => GatedFusionKernel.LaunchSigmoid(ctx, sig.View, z3.View, fused.View, gates.View, Present02),
            "z_dtype" => () => GatedFusionKernel.LaunchSigmoid(ctx, sig.View, zInt.View, fused.View, gates.View, Present02),
            "fused_shape" => () => GatedFusionKernel.LaunchSigmoid(ctx, sig.View, z.View, fusedWrong.View, gates.View, Present02),
            "gates_shape" => () => GatedFusionKernel.LaunchSigmoid(ctx, sig.View, z.View, fused.View, gatesWrong.View, Present02),
            "gate_kind" => () => GatedFusionKernel.LaunchSoftmax(ctx, sig.View, hOk.View, z.View, fused.View, gates.View, Present02),
            "x_width" => () => GatedFusionKernel.LaunchSoftmax(ctx, soft.View, hOk.View, x.View, fused.View, gates.View, Present02),
            "h_width" => () => GatedFusionKernel.LaunchSoftmax(ctx, soft.View, h.View, z.View, fused.View, gates.View, Present02),
            _ => throw new ArgumentException(kind),
        };
        var e = Assert.Throws<ArgumentException>(launch)!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.Contain(mention));
        ctx.Synchronize();
        Assert.That(fused.ToArray<float>(), Is.All.NaN, "nothing written before the error");
        Assert.That(gates.ToArray<float>(), Is.All.NaN, "nothing written before the error");
    }

    [TestCase(FusionGate.Sigmoid, 0, 6, 36, 6, "modalities")]
    [TestCase(FusionGate.Sigmoid, 17, 17, 289, 17, "modalities")]
    [TestCase(FusionGate.Sigmoid, 3, 10, 100, 10, "multiple of M")]
    [TestCase(FusionGate.Sigmoid, 3, 9, 80, 9, "[9, 9]")]
    [TestCase(FusionGate.Sigmoid, 3, 9, 81, 3, "bias")]
    [TestCase(FusionGate.Softmax, 2, 8, 17, 2, "[2, 8]")]
    [TestCase(FusionGate.Softmax, 2, 8, 16, 8, "bias")]
    public void BadWeights_Throw(FusionGate gate, int m, int inputWidth, int weightLength, int biasLength, string mention)
    {
        var ctx = Backends.All[0];
        long before = ctx.Pool.BytesInUse;
        var e = Assert.Throws<ArgumentException>(() =>
            GatedFusionWeights.Create(ctx, gate, m, inputWidth, RandomInputs.Uniform(1, weightLength), RandomInputs.Uniform(2, biasLength), FusionWeightFormat.Int8).Dispose())!;
        Assert.That(e.Message, Does.Contain(mention));
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(before), "a failed load holds no device memory");
    }

    [Test]
    public void NonFiniteInt8Weights_Throw_AndReturnTheirMemory()
    {
        var ctx = Backends.All[0];
        long before = ctx.Pool.BytesInUse;
        var w = RandomInputs.Uniform(1, 36);
        w[7] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => GatedFusionWeights.Create(ctx, FusionGate.Sigmoid, 2, 6, w, RandomInputs.Uniform(2, 6), FusionWeightFormat.Int8).Dispose())!;
        Assert.That(e.Message, Does.Contain("non-finite"));
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(before));
    }

    public static IEnumerable<string> Devices() => Names.Where(n => !Backends.IsEmulator(n));

    [TestCaseSource(nameof(Devices))]
    public void SteadyStateLaunchesAllocateNothing(string backend)
    {
        var ctx = Backends.Get(backend);
        using var sig = Sigmoid(ctx, FusionWeightFormat.Int8);
        using var soft = Softmax(ctx, FusionWeightFormat.Fp32);
        using var z = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(12, B * M * E), new Shape(B, M * E));
        using var h = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(13, B * K), new Shape(B, K));
        using var x = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(14, B * M * F), new Shape(B, M * F));
        using var fused = Poisoned(ctx, B, E);
        using var gates = Poisoned(ctx, B, M * E);
        using var fusedF = Poisoned(ctx, B, F);
        using var weights = Poisoned(ctx, B, M);

        void LaunchAll()
        {
            GatedFusionKernel.LaunchSigmoid(ctx, sig.View, z.View, fused.View, gates.View, Present02);
            GatedFusionKernel.LaunchSoftmax(ctx, soft.View, h.View, x.View, fusedF.View, weights.View, Present02);
        }

        LaunchAll();
        ctx.Synchronize();
        long bytes = GC.GetAllocatedBytesForCurrentThread(), device = ctx.Pool.DeviceAllocations, inUse = ctx.Pool.BytesInUse;
        for (int i = 0; i < 50; i++) LaunchAll();
        long after = GC.GetAllocatedBytesForCurrentThread();
        ctx.Synchronize();
        Assert.That(after - bytes, Is.Zero, "managed bytes allocated by 100 launches");
        Assert.That(ctx.Pool.DeviceAllocations, Is.EqualTo(device), "device allocations");
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(inUse), "pool bytes in use");
        Assert.That(fused.ToArray<float>().Concat(fusedF.ToArray<float>()), Is.All.Matches<float>(float.IsFinite), "the launches ran");
    }

    [Test]
    public void ReluParsesAndClampsNegatives()
    {
        Assert.That(Activations.Parse(" ReLU "), Is.EqualTo(Activation.Relu));
        Assert.That(Enum.Parse<RefActivation>(Activation.Relu.ToString()), Is.EqualTo(RefActivation.Relu));
        var r = default(ReluActivation);
        Assert.That(new[] { r.Apply(-2.5f), r.Apply(0f), r.Apply(3.25f) }, Is.EqualTo(new[] { 0f, 0f, 3.25f }));
    }
}
