using NUnit.Framework;
using OmniKernels.Kernels;

namespace OmniKernels.Tests;

/// <summary>
/// Launchers must allocate no managed memory once their kernels are loaded, so that an execution
/// plan can replay them without GC pressure (the per-request zero-allocation goal). Measured with
/// the thread's allocation counter around 50 launches of each family, on real devices.
/// </summary>
[TestFixture]
public sealed class LaunchAllocationTests
{
    public static IEnumerable<string> Devices() => Backends.Names.Where(n => !Backends.IsEmulator(n));

    [TestCaseSource(nameof(Devices))]
    public void SteadyStateLaunchesAllocateNothing(string backend)
    {
        var ctx = Backends.Get(backend);
        using var a = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(1, 37 * 40), new Shape(37, 40));
        using var w = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(2, 29 * 40), new Shape(29, 40));
        using var packed = PackedMatrix.Pack(ctx, w.View, transposed: true);
        using var bias = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(3, 29), new Shape(29), GemmKernel.PanelWidth);
        using var c = Tensor.Allocate(ctx, DType.F32, new Shape(37, 29), GemmKernel.PanelWidth);
        var shape = new Shape(2, 3, 21, 16);
        using var q = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(4, shape.Numel), shape);
        using var o = Tensor.Allocate(ctx, DType.F32, shape);
        using var scratch = Tensor.Allocate(ctx, DType.F32, new Shape(AttentionKernel.ScratchElements(2, 3, 21, 16)));
        using var lengths = Tensor.FromHost<int>(ctx, [21, 9], new Shape(2));
        using var gamma = Tensor.FromHost<float>(ctx, RandomInputs.Uniform(5, 29), new Shape(29));

        void LaunchAll()
        {
            GemmKernel.Launch(ctx, a.View, packed.View, c.View, new GemmParams(Activation.Gelu), bias.View, c.View);
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
        Assert.That(c.ToArray<float>().All(float.IsFinite) && o.ToArray<float>().All(float.IsFinite), "the launches ran");
    }
}
