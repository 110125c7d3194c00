using NUnit.Framework;
using OmniKernels.IO;
using OmniKernels.Ops;

namespace OmniKernels.Tests;

/// <summary>
/// LayerNorm, RMSNorm, softmax and the activations against PyTorch float64 (vectors from
/// tools/make_op_vectors.py): the float64 reference, which every parity case trusts, checked against an
/// implementation it shares no code with; then each backend against the same numbers.
/// </summary>
[TestFixture]
public sealed class OpVectorTests
{
    /// <summary>Case, op, input names, parameters, device tolerance (the parity harness's for that family).</summary>
    private static readonly (string Case, string Op, string[] Inputs, string[] Params, double Tolerance)[] Vectors =
    [
        ("layernorm_7x45", "layernorm", ["x", "gamma", "beta"], [], 1e-5),
        ("rmsnorm_5x33", "rmsnorm", ["x", "gamma"], [], 1e-5),
        ("softmax_9x77", "softmax", ["x"], ["scale=0.125"], 1e-5),
        ("gelu_7x143", "gelu", ["x"], [], 1e-6),
        ("gelu_tanh_7x143", "gelu_tanh", ["x"], [], 1e-6),
        ("quick_gelu_7x143", "quick_gelu", ["x"], [], 1e-6),
        ("silu_7x143", "silu", ["x"], [], 1e-6),
    ];

    private static NpyArray Read(string c, string name) =>
        NpyFile.Read(Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"op_{c}_{name}.npy"));

    private static (BoundOp Op, double[] Expected) Load(string c, string op, string[] inputs, string[] parameters)
    {
        var dict = new Dictionary<string, HostTensor>();
        foreach (var name in inputs)
        {
            var a = Read(c, name);
            dict[name] = new HostTensor(a.Shape.ToArray(), a.ToFloat32(name));
        }
        var p = parameters.Select(s => s.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        var expected = Read(c, "expected");
        Assert.That(expected.Shape, Is.EqualTo(dict["x"].Shape), $"{c}: expected shape");
        return (OpCatalog.Find(op).Bind(dict, new OpParams(p)), (double[])expected.Data);
    }

    public static IEnumerable<TestCaseData> ReferenceCases() =>
        Vectors.Select(v => new TestCaseData(v.Case, v.Op, v.Inputs, v.Params).SetName($"reference/{v.Case}_vs_torch"));

    [TestCaseSource(nameof(ReferenceCases))]
    public void ReferenceMatchesTorchFloat64(string c, string op, string[] inputs, string[] parameters)
    {
        var (bound, expected) = Load(c, op, inputs, parameters);
        var got = bound.RunReference();
        Assert.That(got, Has.Length.EqualTo(expected.Length));
        // Two float64 implementations: they agree to rounding (a few ulps of the row's scale).
        double scale = expected.Max(Math.Abs), num = 0, den = 0;
        for (int i = 0; i < got.Length; i++)
        {
            Assert.That(Math.Abs(got[i] - expected[i]), Is.LessThanOrEqualTo(1e-13 * scale + 1e-300), $"{c}: element {i}: reference {got[i]}, torch {expected[i]}");
            num += (got[i] - expected[i]) * (got[i] - expected[i]);
            den += expected[i] * expected[i];
        }
        TestContext.Out.WriteLine($"{c}: reference vs torch relative error {Math.Sqrt(num / den):E2}");
    }

    public static IEnumerable<TestCaseData> DeviceCases() =>
        from backend in Backends.Names
        from v in Vectors
        select new TestCaseData(backend, v.Case, v.Op, v.Inputs, v.Params, v.Tolerance).SetName($"{backend}/{v.Case}_vs_torch");

    [TestCaseSource(nameof(DeviceCases))]
    public void DeviceMatchesTorch(string backend, string c, string op, string[] inputs, string[] parameters, double tolerance)
    {
        var (bound, expected) = Load(c, op, inputs, parameters);
        ParityCheck.AssertClose(bound.RunDevice(Backends.Get(backend)), expected, tolerance, $"{backend}/{c} vs torch");
    }
}
