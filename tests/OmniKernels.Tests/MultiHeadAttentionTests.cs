using NUnit.Framework;
using OmniKernels.Blocks;
using OmniKernels.IO;
using OmniKernels.Kernels;

namespace OmniKernels.Tests;

/// <summary>
/// The attention block against PyTorch's nn.MultiheadAttention (float64), through vectors made by
/// tools/make_mha_vectors.py, on every backend.
/// </summary>
[TestFixture]
public sealed class MultiHeadAttentionTests
{
    private static readonly string[] CaseNames = ["self", "self_masked_causal", "cross"];

    public static IEnumerable<TestCaseData> Matrix() =>
        from backend in Backends.Names
        from c in CaseNames
        from separate in new[] { false, true }
        from residual in new[] { false, true }
        select new TestCaseData(backend, c, separate, residual)
            .SetName($"{backend}/mha_{c}{(separate ? "_separate_qkv" : "")}{(residual ? "_residual" : "")}");

    private static NpyArray? Vector(string c, string name)
    {
        var path = Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"mha_{c}_{name}.npy");
        return File.Exists(path) ? NpyFile.Read(path) : null;
    }

    private static NpyArray Required(string c, string name) =>
        Vector(c, name) ?? throw new FileNotFoundException($"vectors/mha_{c}_{name}.npy missing: run tools/make_mha_vectors.py");

    [TestCaseSource(nameof(Matrix))]
    public void MatchesPyTorch(string backend, string c, bool separate, bool withResidual)
    {
        var ctx = Backends.Get(backend);
        var x = Required(c, "x");
        var kv = Vector(c, "kv");
        var lengths = Vector(c, "lengths");
        var w = Required(c, "in_proj_weight").ToFloat32("w");
        var bIn = Required(c, "in_proj_bias").ToFloat32("b");
        var wo = Required(c, "out_proj_weight").ToFloat32("wo");
        var bo = Required(c, "out_proj_bias").ToFloat32("bo");
        var expected = (double[])Required(c, "expected").Data;
        long batch = x.Shape[0], seq = x.Shape[1], e = x.Shape[2];
        int heads = c switch { "self" => 3, "self_masked_causal" => 2, _ => 4 };
        bool causal = c == "self_masked_causal";

        using var block = separate
            ? MultiHeadAttentionBlock.LoadSeparate(ctx, (int)e, heads,
                w.AsSpan(0, (int)(e * e)), bIn.AsSpan(0, (int)e), w.AsSpan((int)(e * e), (int)(e * e)), bIn.AsSpan((int)e, (int)e),
                w.AsSpan((int)(2 * e * e), (int)(e * e)), bIn.AsSpan((int)(2 * e), (int)e), wo, bo)
            : MultiHeadAttentionBlock.Load(ctx, (int)e, heads, w, bIn, wo, bo);
        using var ws = block.CreateWorkspace(ctx, batch, seq, kv?.Shape[1]);
        var xs = x.ToFloat32("x");
        using var tx = Tensor.FromHost<float>(ctx, xs, new Shape(batch, seq, e), GemmKernel.PanelWidth);
        using var tkv = kv is null ? null : Tensor.FromHost<float>(ctx, kv.ToFloat32("kv"), new Shape(batch, kv.Shape[1], e));
        using var tl = lengths is null ? null : Tensor.FromHost<int>(ctx, lengths.ToInt32("lengths"), new Shape(batch));
        using var y = Tensor.Allocate(ctx, DType.F32, new Shape(batch, seq, e), GemmKernel.PanelWidth);
        ElementwiseKernel.Fill(ctx, y.View, float.NaN);

        block.Forward(ctx, ws, tx.View, y.View, tkv?.View, tl?.View, causal, withResidual ? tx.View : null);
        ctx.Synchronize();
        var reference = withResidual ? expected.Select((v, i) => v + xs[i]).ToArray() : expected;
        ParityCheck.AssertClose(y.ToArray<float>(), reference, 1e-5, $"{backend}/mha_{c}");
    }

    [Test]
    public void RejectsWeightsOfTheWrongSize()
    {
        var ctx = Backends.All[0];
        var ex = Assert.Throws<ArgumentException>(() => MultiHeadAttentionBlock.Load(ctx, 32, 2,
            new float[3 * 32 * 32 - 1], new float[96], new float[32 * 32], new float[32]));
        Assert.That(ex!.Message, Does.Contain("in_proj_weight"));
        Assert.Throws<ArgumentException>(() => MultiHeadAttentionBlock.Load(ctx, 30, 4,
            new float[3 * 30 * 30], new float[90], new float[30 * 30], new float[30]));
    }
}
