using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// Softmax, LayerNorm and RMSNorm on the layouts the ops never upload: rows padded to a pitch (what a GEMM
/// output has), out of place between padded tensors and in place, against the float64 reference. The row
/// padding starts as NaN (poisoned), so a kernel that reads it, or strides by the width instead of the pitch, fails.
/// </summary>
[TestFixture]
public sealed class RowLayoutTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        from backend in Backends.Names
        from kernel in new[] { "softmax", "softmax_lengths", "layernorm", "rmsnorm" }
        from inPlace in new[] { false, true }
        from rows in new long[] { 7, 2 * 3 }
        select new TestCaseData(backend, kernel, inPlace, rows).SetName($"{backend}/{kernel}_{(rows == 7 ? "7x45" : "2x3x45")}_pitch48_{(inPlace ? "in_place" : "out_of_place")}");

    [TestCaseSource(nameof(Cases))]
    public void PaddedRowsMatchTheReference(string backend, string kernel, bool inPlace, long rows)
    {
        var ctx = Backends.Get(backend);
        const int cols = 45;
        var shape = rows == 7 ? new Shape(7, cols) : new Shape(2, 3, cols);
        var x = RandomInputs.Uniform(41 + (int)rows, rows * cols, -6f, 6f);
        var gamma = RandomInputs.Uniform(42, cols, 0.5f, 1.5f);
        var beta = RandomInputs.Uniform(43, cols);
        int[] lengths = rows == 7 ? [30] : [45, 17];
        using var tx = Tensor.FromHost<float>(ctx, x, shape, 16);
        using var ty = inPlace ? null : Tensor.Allocate(ctx, DType.F32, shape, 16);
        using var tg = Tensor.FromHost<float>(ctx, gamma, new Shape(cols));
        using var tb = Tensor.FromHost<float>(ctx, beta, new Shape(cols));
        using var tl = Tensor.FromHost<int>(ctx, lengths, new Shape(lengths.Length));
        Assert.That(tx.View.Strides[-2], Is.EqualTo(48), "rows are padded");
        var y = ty ?? tx;
        var reference = new double[rows * cols];
        switch (kernel)
        {
            case "softmax":
                SoftmaxKernel.Launch(ctx, tx.View, y.View, new SoftmaxParams(0.5f));
                ReferenceOps.Softmax(x, cols, 0.5f, default, reference);
                break;
            case "softmax_lengths":
                SoftmaxKernel.Launch(ctx, tx.View, y.View, default, tl.View);
                ReferenceOps.Softmax(x, cols, 1, lengths, reference);
                break;
            case "layernorm":
                NormalizationKernel.LayerNorm(ctx, tx.View, tg.View, tb.View, y.View);
                ReferenceOps.LayerNorm(x, cols, gamma, beta, 1e-5f, reference);
                break;
            default:
                NormalizationKernel.RmsNorm(ctx, tx.View, tg.View, y.View);
                ReferenceOps.RmsNorm(x, cols, gamma, 1e-6f, reference);
                break;
        }
        ctx.Synchronize();
        ParityCheck.AssertClose(y.ToArray<float>(), reference, 1e-5, $"{backend}/{kernel} {shape} pitch 48{(inPlace ? " in place" : "")}");
    }
}
