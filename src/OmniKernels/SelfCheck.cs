using System.Diagnostics;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels;

/// <summary>What <see cref="SelfCheck.Run"/> measured.</summary>
/// <param name="Device">The device it ran on.</param>
/// <param name="SelfTest">The device's self-test at creation.</param>
/// <param name="Shape">M×K·K×N of the GEMM.</param>
/// <param name="RelativeError">‖C − C_ref‖/‖C_ref‖ against the float64 reference.</param>
/// <param name="Tolerance">The bound the check uses.</param>
/// <param name="MedianMs">Median time of one launch plus synchronize, after warm-up.</param>
/// <param name="GFlops">2MNK / median time.</param>
/// <param name="Runs">Timed runs.</param>
public sealed record SelfCheckReport(DeviceEntry Device, SelfTestResult SelfTest, string Shape,
    double RelativeError, double Tolerance, double MedianMs, double GFlops, int Runs)
{
    /// <summary>True when the kernel matched the reference.</summary>
    public bool Passed => SelfTest.Passed && RelativeError <= Tolerance;
}

/// <summary>
/// The main job until the demo model exists: on the chosen device, run a Linear-style GEMM
/// (bias and GELU fused, weights prepacked) against the float64 reference, then time it.
/// </summary>
public static class SelfCheck
{
    /// <summary>Runs the check at M = N = K = <paramref name="size"/> (not a tile multiple by default).</summary>
    public static SelfCheckReport Run(DeviceContext ctx, int size = 509, int runs = 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        int m = size, n = size, k = size;
        var rng = new Random(20261123);
        float[] Rand(int len) { var a = new float[len]; for (int i = 0; i < len; i++) a[i] = (float)(rng.NextDouble() * 2 - 1); return a; }
        float[] a = Rand(m * k), w = Rand(n * k), bias = Rand(n);

        using var ta = Tensor.FromHost<float>(ctx, a, new Shape(m, k));
        using var tw = Tensor.FromHost<float>(ctx, w, new Shape(n, k));
        using var tBias = Tensor.FromHost<float>(ctx, bias, new Shape(n), GemmKernel.PanelWidth);
        using var packed = PackedMatrix.Pack(ctx, tw.View, transposed: true);
        using var c = Tensor.Allocate(ctx, DType.F32, new Shape(m, n), GemmKernel.PanelWidth);
        var p = new GemmParams(Activation.Gelu);

        ElementwiseKernel.Fill(ctx, c.View, float.NaN);
        GemmKernel.Launch(ctx, ta.View, packed.View, c.View, p, tBias.View);
        ctx.Synchronize();
        var got = c.ToArray<float>();
        var expected = new double[m * n];
        ReferenceOps.MatMul(a, w, 1, m, k, n, transposeB: true, bias, RefActivation.Gelu, default, expected);
        double num = 0, den = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double d = got[i] - expected[i];
            num += double.IsFinite(d) ? d * d : double.PositiveInfinity;
            den += expected[i] * expected[i];
        }

        var times = new double[runs];
        for (int i = 0; i < 3; i++) GemmKernel.Launch(ctx, ta.View, packed.View, c.View, p, tBias.View);
        ctx.Synchronize();
        for (int i = 0; i < runs; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            GemmKernel.Launch(ctx, ta.View, packed.View, c.View, p, tBias.View);
            ctx.Synchronize();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        double median = times[runs / 2];
        return new SelfCheckReport(ctx.Entry, ctx.SelfTest, $"{m}x{k} · {k}x{n} (+bias, gelu)",
            Math.Sqrt(num / den), 1e-5, median, 2.0 * m * n * k / (median * 1e6), runs);
    }
}
