using NUnit.Framework;
using OmniKernels.Ops;

namespace OmniKernels.Tests;

/// <summary>Seeded random inputs: never zeros, never the same between inputs.</summary>
public static class RandomInputs
{
    public static float[] Uniform(int seed, long n, float lo = -1f, float hi = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return a;
    }

    public static HostTensor Tensor(int seed, params long[] shape) =>
        new(shape, Uniform(seed, shape.Aggregate(1L, (x, y) => x * y)));
}

/// <summary>
/// One parity case (ggml's test-backend-ops): an op with its inputs, parameters and tolerance,
/// printable, run on a backend and on the float64 reference. <paramref name="ElementBounds"/>, where given,
/// maps the inputs and the reference to a bound on each element's absolute error, replacing the loose
/// per-element bound (INT8: the bound follows from the quantization steps).
/// </summary>
public sealed record ParityCase(string Name, string Op, Func<Dictionary<string, HostTensor>> Inputs,
    Dictionary<string, string> Params, double Tolerance, bool Large = false,
    Func<Dictionary<string, HostTensor>, double[], double[]>? ElementBounds = null)
{
    public override string ToString() => Name;

    public BoundOp Bind() => OpCatalog.Find(Op).Bind(Inputs(), new OpParams(Params));
}

/// <summary>Checks a device result against the reference: every element finite and within its bound, relative L2 error within tolerance.</summary>
public static class ParityCheck
{
    /// <summary>‖out − ref‖₂ / ‖ref‖₂, in double.</summary>
    public static double RelativeError(ReadOnlySpan<float> output, ReadOnlySpan<double> reference)
    {
        double num = 0, den = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double d = output[i] - reference[i];
            num += d * d;
            den += reference[i] * reference[i];
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    /// <summary>
    /// Every element finite and within its bound (<paramref name="bounds"/>[i], or else 100 × tolerance × max|ref|),
    /// and the relative L2 error within <paramref name="tolerance"/>.
    /// </summary>
    public static void AssertClose(float[] output, double[] reference, double tolerance, string what, double[]? bounds = null)
    {
        Assert.That(output, Has.Length.EqualTo(reference.Length), $"{what}: output length");
        double scale = 0;
        foreach (var r in reference) scale = Math.Max(scale, Math.Abs(r));
        for (int i = 0; i < output.Length; i++)
        {
            if (!float.IsFinite(output[i]))
                Assert.Fail($"{what}: element {i} is {output[i]} (reference {reference[i]}): never written, or overflowed");
            // A loose per-element bound, so that one wrong element cannot hide inside a large norm.
            double bound = bounds?[i] ?? 100 * tolerance * scale + 1e-30;
            if (Math.Abs(output[i] - reference[i]) > bound)
                Assert.Fail($"{what}: element {i} is {output[i]}, reference {reference[i]} (bound {bound:E2})");
        }
        double err = RelativeError(output, reference);
        TestContext.Out.WriteLine($"{what}: relative error {err:E2} (tolerance {tolerance:E0})");
        Assert.That(err, Is.LessThanOrEqualTo(tolerance), $"{what}: ‖out − ref‖/‖ref‖");
    }
}
