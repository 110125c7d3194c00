using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// The fused kernel's device memory is O(B·H·S·D): at S = 8192 a call must take less than one
/// S × S fp32 matrix (256 MiB), measured by the buffer pool's peak accounting. Real devices only
/// (the emulator would take hours at this size).
/// </summary>
[TestFixture]
public sealed class AttentionMemoryTests
{
    public static IEnumerable<string> Devices() => Backends.Devices();

    [TestCaseSource(nameof(Devices))]
    public void S8192_AllocatesLessThanOneScoreMatrix(string backend)
    {
        const int s = 8192, d = 64;
        var ctx = Backends.Get(backend);
        var shape = new Shape(1, 1, s, d);
        float[] q = RandomInputs.Uniform(11, s * d), k = RandomInputs.Uniform(12, s * d), v = RandomInputs.Uniform(13, s * d);
        using var tq = Tensor.FromHost<float>(ctx, q, shape);
        using var tk = Tensor.FromHost<float>(ctx, k, shape);
        using var tv = Tensor.FromHost<float>(ctx, v, shape);
        using var o = Tensor.Allocate(ctx, DType.F32, shape);
        ElementwiseKernel.Fill(ctx, o.View, float.NaN);
        ctx.Synchronize();

        long before = ctx.Pool.BytesInUse;
        ctx.Pool.ResetPeak();
        AttentionKernel.Launch(ctx, tq.View, tk.View, tv.View, o.View);
        ctx.Synchronize();
        long used = ctx.Pool.PeakBytesInUse - before;
        long scoreMatrix = (long)s * s * sizeof(float);
        TestContext.Out.WriteLine($"attention S={s} D={d}: {used / 1024.0 / 1024:F1} MiB of device memory during the call; one S×S matrix is {scoreMatrix / 1024 / 1024} MiB");
        Assert.That(used, Is.LessThan(scoreMatrix));
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(before), "the call's scratch went back to the pool");

        // Rows are independent without a causal mask: check a few, spread over the sequence, against float64.
        var output = o.ToArray<float>();
        Assert.That(output.All(float.IsFinite), "every element written");
        int[] rows = [0, 1, 4095, 4096, 8190, 8191];
        var qRows = rows.SelectMany(r => q.AsSpan(r * d, d).ToArray()).ToArray();
        var reference = new double[rows.Length * d];
        ReferenceOps.Attention(qRows, k, v, 1, 1, rows.Length, s, d, false, 1 / Math.Sqrt(d), false, default, reference);
        var got = rows.SelectMany(r => output.AsSpan(r * d, d).ToArray()).ToArray();
        ParityCheck.AssertClose(got, reference, 1e-5, $"{backend}/attention_s8192 sampled rows");
    }
}
