using NUnit.Framework;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// What the INT8 checks may accept, derived from the quantization rather than chosen: per-element error
/// bounds from the scales, and quantization rounding that matches NumPy's except at exact ties.
/// </summary>
public static class Int8Checks
{
    /// <summary>Largest slope of each activation (|act'(x)| ≤ this everywhere): how far it can stretch an input error.</summary>
    public static double Slope(RefActivation activation) => activation switch
    {
        RefActivation.None => 1,
        // GELU's derivative peaks at 1.1289 (x ≈ 2.12); the tanh form's within 1e-3 of it; SiLU's at 1.0998,
        // and quick_gelu(x) = silu(1.702x)/1.702 has the same peak.
        _ => 1.13,
    };

    /// <summary>
    /// Per-element bound on |y − ref| for y = act(dequant(quant(x)·wqᵀ)·… + bias) + residual against the float64
    /// product with unquantized x and the dequantized weights wf [N, K]: quantizing row i of x to steps of
    /// s_i = max|x_i|/127 moves it by at most s_i/2 per element, so the pre-activation moves by at most
    /// Σ_k |wf[o, k]|·s_i/2, stretched by the activation's slope; plus float32 rounding of the epilogue.
    /// </summary>
    public static double[] ActivationQuantization(ReadOnlySpan<float> x, ReadOnlySpan<float> wf, int m, int k, int n,
        RefActivation activation, ReadOnlySpan<double> reference)
    {
        var bounds = new double[(long)m * n];
        double slope = Slope(activation);
        for (int i = 0; i < m; i++)
        {
            double sx = 0;
            for (int j = 0; j < k; j++) sx = Math.Max(sx, Math.Abs((double)x[i * k + j]));
            sx /= 127;
            for (int o = 0; o < n; o++)
            {
                double wsum = 0;
                for (int j = 0; j < k; j++) wsum += Math.Abs((double)wf[o * k + j]);
                bounds[i * n + o] = slope * wsum * sx / 2 * 1.0001 + 1e-5 * (1 + Math.Abs(reference[i * n + o]));
            }
        }
        return bounds;
    }

    /// <summary>
    /// Checks int8 row quantization q = round(x·127/max|x_row|) against NumPy's float64 rule
    /// (np.clip(np.rint(x·(127/max)), −127, 127)): every element equal, except where the exact value is a
    /// tie (within float32's rounding of the product, 2e-5 of a step at |q| ≤ 127), where either neighbour is right.
    /// </summary>
    public static void AssertQuantizedLikeNumPy(ReadOnlySpan<float> x, int cols, ReadOnlySpan<int> got, string what)
    {
        Assert.That(got.Length, Is.EqualTo(x.Length), $"{what}: length");
        int rows = x.Length / cols, ties = 0;
        for (int r = 0; r < rows; r++)
        {
            double max = 0;
            for (int c = 0; c < cols; c++) max = Math.Max(max, Math.Abs((double)x[r * cols + c]));
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                double t = max == 0 ? 0 : x[i] * (127 / max);
                int expected = (int)Math.Clamp(Math.Round(t, MidpointRounding.ToEven), -127, 127);
                if (got[i] == expected) continue;
                bool tie = Math.Abs(Math.Abs(t - Math.Floor(t)) - 0.5) <= 2e-5 && Math.Abs(got[i] - t) <= 0.5 + 2e-5;
                if (!tie)
                    Assert.Fail($"{what}: element ({r}, {c}) is {got[i]}; x·127/max = {t:R} rounds to {expected}");
                ties++;
            }
        }
        TestContext.Out.WriteLine($"{what}: every element as NumPy rounds it ({ties} tie(s) resolved the other way)");
    }
}
