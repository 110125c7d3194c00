using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// Launchers must allocate no managed memory once their kernels are loaded, so that an execution
/// plan can replay them without GC pressure (the per-request zero-allocation goal). Measured with
/// the thread's allocation counter around 50 launches of each family, on real devices; the values
/// the launches leave are then checked against the float64 reference.
/// </summary>
[TestFixture]
public sealed class LaunchAllocationTests
{
    public static IEnumerable<string> Devices() => Backends.Devices();

    [TestCaseSource(nameof(Devices))]
    public void SteadyStateLaunchesAllocateNothing(string backend)
    {
        var ctx = Backends.Get(backend);
        float[] ha = RandomInputs.Uniform(1, 37 * 40), hw = RandomInputs.Uniform(2, 29 * 40), hb = RandomInputs.Uniform(3, 29);
        float[] hr = RandomInputs.Uniform(6, 37 * 29), hq = RandomInputs.Uniform(4, 2 * 3 * 21 * 16), hg = RandomInputs.Uniform(5, 29, 0.5f, 1.5f);
        using var a = Tensor.FromHost<float>(ctx, ha, new Shape(37, 40));
        using var w = Tensor.FromHost<float>(ctx, hw, new Shape(29, 40));
        using var packed = PackedMatrix.Pack(ctx, w.View, transposed: true);
        using var bias = Tensor.FromHost<float>(ctx, hb, new Shape(29), GemmKernel.PanelWidth);
        using var residual = Tensor.FromHost<float>(ctx, hr, new Shape(37, 29), GemmKernel.PanelWidth);
        // Row-padded (pitch 32 for 29 columns): softmax, RMSNorm and SiLU run in place on it.
        using var c = Tensor.Allocate(ctx, DType.F32, new Shape(37, 29), GemmKernel.PanelWidth);
        var shape = new Shape(2, 3, 21, 16);
        using var q = Tensor.FromHost<float>(ctx, hq, shape);
        using var o = Tensor.Allocate(ctx, DType.F32, shape);
        using var scratch = Tensor.Allocate(ctx, DType.F32, new Shape(AttentionKernel.ScratchElements(2, 3, 21, 16)));
        using var lengths = Tensor.FromHost<int>(ctx, [21, 9], new Shape(2));
        using var gamma = Tensor.FromHost<float>(ctx, hg, new Shape(29));

        // Every round computes the same values, so the result after 51 rounds is checkable.
        void LaunchAll()
        {
            GemmKernel.Launch(ctx, a.View, packed.View, c.View, new GemmParams(Activation.Gelu), bias.View, residual.View);
            SoftmaxKernel.Launch(ctx, c.View, c.View);
            NormalizationKernel.RmsNorm(ctx, c.View, gamma.View, c.View);
            ElementwiseKernel.Activate(ctx, Activation.Silu, c.View, c.View);
            AttentionKernel.Launch(ctx, q.View, q.View, q.View, o.View, AttentionLayout.Bhsd, new AttentionParams(Causal: true), lengths.View, scratch.View);
        }

        LaunchAll();
        ctx.Synchronize();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++) LaunchAll();
        long after = GC.GetAllocatedBytesForCurrentThread();
        ctx.Synchronize();
        Assert.That(after - before, Is.Zero, "managed bytes allocated by 250 launches");

        // The float64 reference of the chain, stage by stage in float32 as the device hands it on.
        var stage = new double[37 * 29];
        ReferenceOps.MatMul(ha, hw, 1, 37, 40, 29, transposeB: true, hb, RefActivation.Gelu, hr, stage);
        ReferenceOps.Softmax(ToFloats(stage), 29, 1, default, stage);
        ReferenceOps.RmsNorm(ToFloats(stage), 29, hg, 1e-6f, stage);
        ReferenceOps.Activation(ToFloats(stage), RefActivation.Silu, stage);
        ParityCheck.AssertClose(c.ToArray<float>(), stage, 1e-5, $"{backend}: gemm, then in-place softmax, RMSNorm and SiLU on row-padded data");
        var attention = new double[shape.Numel];
        ReferenceOps.Attention(hq, hq, hq, 2, 3, 21, 21, 16, bshd: false, 1 / Math.Sqrt(16), causal: true, [21, 9], attention);
        ParityCheck.AssertClose(o.ToArray<float>(), attention, 1e-5, $"{backend}: causal attention with lengths");
    }

    private static float[] ToFloats(double[] x) => x.Select(v => (float)v).ToArray();
}
