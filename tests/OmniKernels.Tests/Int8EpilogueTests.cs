using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// The INT8 GEMM's fused epilogue in every combination the dispatcher specializes: each activation, with
/// and without bias and residual, for int8 and float-held quantized activations, against the float64
/// product of the unquantized x and the dequantized weights, each element within the bound its
/// quantization steps allow (<see cref="Int8Checks.ActivationQuantization"/>).
/// </summary>
[TestFixture]
public sealed class Int8EpilogueTests
{
    private static readonly (Activation Act, bool Bias, bool Residual)[] Epilogues =
    [
        (Activation.None, true, true), (Activation.Gelu, true, true), (Activation.GeluTanh, true, true),
        (Activation.QuickGelu, true, true), (Activation.Silu, true, true),
        (Activation.None, false, true), (Activation.Silu, false, false), (Activation.GeluTanh, true, false),
    ];

    public static IEnumerable<TestCaseData> Cases() =>
        from backend in Backends.Names
        from shape in new (int M, int K, int N)[] { (13, 96, 29), (1, 70, 33), (197, 768, 100) }
        where !Backends.IsEmulator(backend) || shape.M * shape.K * shape.N < 50_000
        from e in Epilogues
        from q in new[] { DType.I8, DType.F32 }
        select new TestCaseData(backend, shape.M, shape.K, shape.N, e.Act, e.Bias, e.Residual, q)
            .SetName($"{backend}/int8_{shape.M}x{shape.K}x{shape.N}_{e.Act}{(e.Bias ? "_bias" : "")}{(e.Residual ? "_residual" : "")}_q{q}");

    [TestCaseSource(nameof(Cases))]
    public void EpilogueWithinTheQuantizationBound(string backend, int m, int k, int n, Activation act, bool withBias, bool withResidual, DType qType)
    {
        var ctx = Backends.Get(backend);
        var x = RandomInputs.Uniform(m * 3 + k, (long)m * k, -2f, 2f);
        var rng = new Random(n * 5 + k);
        var w = Enumerable.Range(0, n * k).Select(_ => (sbyte)rng.Next(-127, 128)).ToArray();
        var scales = RandomInputs.Uniform(n + 1, n, 0.001f, 0.01f);
        var bias = RandomInputs.Uniform(n + 2, n);
        var residual = RandomInputs.Uniform(m + 4, (long)m * n, -3f, 3f);
        using var weights = Int8Matrix.FromQuantized(ctx, w, scales, n, k);
        using var tx = Tensor.FromHost<float>(ctx, x, new Shape(m, k));
        using var q = Tensor.Allocate(ctx, qType, new Shape(m, k));
        using var rowScales = Tensor.Allocate(ctx, DType.F32, new Shape(m));
        using var tb = Tensor.FromHost<float>(ctx, bias, new Shape(n), GemmKernel.PanelWidth);
        using var tr = Tensor.FromHost<float>(ctx, residual, new Shape(m, n), GemmKernel.PanelWidth);
        using var y = Tensor.Allocate(ctx, DType.F32, new Shape(m, n), GemmKernel.PanelWidth);
        Int8GemmKernel.QuantizeRows(ctx, tx.View, q.View, rowScales.View);
        Int8GemmKernel.Launch(ctx, q.View, rowScales.View, weights.View, y.View, new GemmParams(act),
            withBias ? tb.View : null, withResidual ? tr.View : null);
        ctx.Synchronize();

        var wf = new float[w.Length];
        for (int i = 0; i < w.Length; i++) wf[i] = w[i] * scales[i / k];
        var refAct = Enum.Parse<RefActivation>(act.ToString());
        var reference = new double[(long)m * n];
        ReferenceOps.MatMul(x, wf, 1, m, k, n, transposeB: true, withBias ? bias : default, refAct, withResidual ? residual : default, reference);
        var bounds = Int8Checks.ActivationQuantization(x, wf, m, k, n, refAct, reference);
        ParityCheck.AssertClose(y.ToArray<float>(), reference, 2e-2, $"{backend}/int8 {act} bias={withBias} residual={withResidual} q={qType}", bounds);
    }
}
