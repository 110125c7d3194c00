using NUnit.Framework;
using OmniKernels.Ops;
using OmniKernels.Reference;

namespace OmniKernels.Tests;

/// <summary>
/// The parity harness: every case on every backend present against the float64 reference.
/// Small cases run everywhere (the emulator included); large ones on real devices only.
/// Shapes are deliberately not multiples of the GEMM's 6 × 16 tile.
/// </summary>
[TestFixture]
public sealed class ParityTests
{
    private static Dictionary<string, string> P(params string[] kv) =>
        kv.Select(s => s.Split('=', 2)).ToDictionary(a => a[0], a => a[1]);

    private static Func<Dictionary<string, HostTensor>> In(params (string Name, long[] Shape)[] inputs) => () =>
    {
        var d = new Dictionary<string, HostTensor>();
        int seed = 17;
        foreach (var (name, shape) in inputs) d[name] = RandomInputs.Tensor(seed++ * 7919, shape);
        return d;
    };

    private static Func<Dictionary<string, HostTensor>> Wide(string name, float lo, float hi, params long[] shape) => () =>
        new() { [name] = new HostTensor(shape, RandomInputs.Uniform(91, shape.Aggregate(1L, (a, b) => a * b), lo, hi)) };

    /// <summary>A softmax input whose row 1 is entirely −∞ and whose row 2 is partly −∞ (masked keys).</summary>
    private static Func<Dictionary<string, HostTensor>> Masked(long rows, long cols) => () =>
    {
        var x = RandomInputs.Uniform(5, rows * cols, -8f, 8f);
        for (long c = 0; c < cols; c++) x[cols + c] = float.NegativeInfinity;
        for (long c = 0; c < cols; c += 3) x[2 * cols + c] = float.NegativeInfinity;
        return new() { ["x"] = new HostTensor([rows, cols], x) };
    };

    /// <summary>Attention inputs: q [B,H,Sq,D] (or bshd), k and v with Sk, optional int32 lengths.</summary>
    private static Func<Dictionary<string, HostTensor>> Attn(long b, long h, long sq, long sk, long d, bool bshd = false, int[]? lengths = null) => () =>
    {
        long[] Shape(long s) => bshd ? [b, s, h, d] : [b, h, s, d];
        var inputs = In(("q", Shape(sq)), ("k", Shape(sk)), ("v", Shape(sk)))();
        if (lengths is not null) inputs["lengths"] = new HostTensor([lengths.Length], lengths);
        return inputs;
    };

    /// <summary>An index whose rows 2, 5 and 9 are copies of row 7 (equal scores for every query), and two queries.</summary>
    private static Func<Dictionary<string, HostTensor>> DuplicateRows(long n, long e) => () =>
    {
        var d = In(("index", [n, e]), ("queries", [2, e]))();
        var x = d["index"].Floats("index");
        foreach (long r in new long[] { 2, 5, 9 }) Array.Copy(x, 7 * e, x, r * e, e);
        return d;
    };

    private static HostTensor Int8Tensor(int seed, params long[] shape)
    {
        var rng = new Random(seed);
        return new HostTensor(shape, Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => rng.Next(-127, 128)).ToArray());
    }

    /// <summary>matmul-int8's per-element bound: the activation quantization error through the dequantized weights.</summary>
    private static Func<Dictionary<string, HostTensor>, double[], double[]> Int8DequantBounds(RefActivation activation) => (inputs, reference) =>
    {
        var w = inputs["w"].Ints("w");
        var s = inputs["scales"].Floats("scales");
        var x = inputs["x"];
        int n = s.Length, k = (int)x.Shape[1], m = (int)x.Shape[0];
        var wf = new float[w.Length];
        for (int i = 0; i < w.Length; i++) wf[i] = w[i] * s[i / k];
        return Int8Checks.ActivationQuantization(x.Floats("x"), wf, m, k, n, activation, reference);
    };

    public static IEnumerable<ParityCase> Cases()
    {
        const double gemm = 1e-5, pointwise = 1e-6, norm = 1e-5;
        yield return new("matmul_37x53x29", "matmul", In(("a", [37, 53]), ("b", [53, 29])), P(), gemm);
        yield return new("matmul_37x53x29_tb_bias_gelu", "matmul", In(("a", [37, 53]), ("b", [29, 53]), ("bias", [29])), P("transpose_b=true", "activation=gelu"), gemm);
        yield return new("matmul_13x40x33_bias_quickgelu_residual", "matmul", In(("a", [13, 40]), ("b", [40, 33]), ("bias", [33]), ("residual", [13, 33])), P("activation=quick_gelu"), gemm);
        yield return new("matmul_11x19x17_silu_residual", "matmul", In(("a", [11, 19]), ("b", [19, 17]), ("residual", [11, 17])), P("activation=silu"), gemm);
        yield return new("matmul_9x21x35_tb_gelutanh", "matmul", In(("a", [9, 21]), ("b", [35, 21])), P("transpose_b=true", "activation=gelu_tanh"), gemm);
        yield return new("matmul_batch3_13x21x17_sharedB", "matmul", In(("a", [3, 13, 21]), ("b", [21, 17])), P(), gemm);
        yield return new("matmul_batch3_7x21x18_perbatchB_tb", "matmul", In(("a", [3, 7, 21]), ("b", [3, 18, 21]), ("bias", [18])), P("transpose_b=true"), gemm);
        yield return new("matmul_1x64x70_gemv", "matmul", In(("a", [1, 64]), ("b", [64, 70])), P(), gemm);
        yield return new("matmul_5x3x16_m_below_tile", "matmul", In(("a", [5, 3]), ("b", [3, 16])), P(), gemm);
        yield return new("matmul_8x1x5_k1", "matmul", In(("a", [8, 1]), ("b", [1, 5])), P(), gemm);
        yield return new("layernorm_7x45", "layernorm", In(("x", [7, 45]), ("gamma", [45]), ("beta", [45])), P(), norm);
        yield return new("layernorm_2x3x33_eps1e-6", "layernorm", In(("x", [2, 3, 33]), ("gamma", [33]), ("beta", [33])), P("eps=1e-6"), norm);
        yield return new("rmsnorm_5x33", "rmsnorm", In(("x", [5, 33]), ("gamma", [33])), P(), norm);
        yield return new("softmax_9x77", "softmax", Wide("x", -10f, 10f, 9, 77), P(), norm);
        yield return new("softmax_4x29_masked_rows", "softmax", Masked(4, 29), P(), norm);
        yield return new("softmax_6x31_scale_lengths", "softmax", () =>
        {
            var d = Wide("x", -5f, 5f, 6, 31)();
            d["lengths"] = new HostTensor([3], new[] { 31, 0, 12 });
            return d;
        }, P("scale=0.125"), norm);
        foreach (var act in new[] { "gelu", "gelu_tanh", "quick_gelu", "silu" })
            yield return new($"{act}_1001", act, Wide("x", -9f, 9f, 7, 143), P(), pointwise);
        yield return new("add_3x37", "add", In(("a", [3, 37]), ("b", [3, 37])), P(), pointwise);
        yield return new("mul_3x37", "mul", In(("a", [3, 37]), ("b", [3, 37])), P(), pointwise);

        const double attn = 1e-5;
        yield return new("attention_b2_h3_s21_d16", "attention", Attn(2, 3, 21, 21, 16), P(), attn);
        yield return new("attention_s1", "attention", Attn(1, 2, 1, 1, 8), P(), attn);
        yield return new("attention_causal_s23_d8", "attention", Attn(1, 2, 23, 23, 8), P("causal=true"), attn);
        yield return new("attention_cross_sq7_sk29", "attention", Attn(2, 1, 7, 29, 12), P(), attn);
        yield return new("attention_lengths_5_0_29_fully_masked_batch", "attention", Attn(3, 1, 9, 29, 8, lengths: [5, 0, 29]), P(), attn);
        yield return new("attention_bshd_causal_lengths_scale", "attention", Attn(2, 2, 19, 19, 8, bshd: true, lengths: [19, 7]), P("layout=bshd", "causal=true", "scale=0.3"), attn);
        yield return new("attention_d80_s19", "attention", Attn(1, 1, 19, 19, 80), P(), attn);

        yield return new("patch_embed_b2_c3_20x23_p6_d40_cls_pos", "patch-embed",
            In(("image", [2, 3, 20, 23]), ("weight", [40, 3, 6, 6]), ("bias", [40]), ("cls", [40]), ("pos", [10, 40])), P(), gemm);
        yield return new("patch_embed_b1_c1_9x9_p3_d17_plain", "patch-embed", In(("image", [1, 1, 9, 9]), ("weight", [17, 1, 3, 3])), P(), gemm);
        yield return new("patch_embed_b3_c2_8x12_p4_d20_pos_no_cls", "patch-embed",
            In(("image", [3, 2, 8, 12]), ("weight", [20, 2, 4, 4]), ("bias", [20]), ("pos", [6, 20])), P(), gemm);

        // Integer outputs: exact (quantize: as NumPy rounds, except at exact ties, see IntegerOpsMatchReference).
        yield return new("quantize_5x37", "quantize", In(("x", [5, 37])), P(), 0);
        yield return new("matmul_int8_raw_13x37x29", "matmul-int8", () => new() { ["a"] = Int8Tensor(1, 13, 37), ["w"] = Int8Tensor(2, 29, 37) }, P("raw=true"), 0);
        // fp32 out: the reference uses the dequantized weights and unquantized x, so the gap is the activation quantization.
        yield return new("matmul_int8_13x96x29_bias_gelu", "matmul-int8", () =>
        {
            var d = In(("x", [13, 96]), ("bias", [29]))();
            d["w"] = Int8Tensor(3, 29, 96);
            d["scales"] = new HostTensor([29], RandomInputs.Uniform(4, 29, 0.001f, 0.01f));
            return d;
        }, P("activation=gelu"), 2e-2, ElementBounds: Int8DequantBounds(RefActivation.Gelu));

        yield return new("matmul_300x517x211", "matmul", In(("a", [300, 517]), ("b", [517, 211])), P(), gemm, Large: true);
        yield return new("matmul_197x768x1000_linear_bias_gelu_residual", "matmul",
            In(("a", [197, 768]), ("b", [1000, 768]), ("bias", [1000]), ("residual", [197, 1000])), P("transpose_b=true", "activation=gelu"), gemm, Large: true);
        yield return new("matmul_61x4096x70_k4096", "matmul", In(("a", [61, 4096]), ("b", [4096, 70])), P(), gemm, Large: true);
        yield return new("matmul_batch4_97x64x130", "matmul", In(("a", [4, 97, 64]), ("b", [4, 64, 130])), P(), gemm, Large: true);
        yield return new("layernorm_197x768", "layernorm", In(("x", [197, 768]), ("gamma", [768]), ("beta", [768])), P(), norm, Large: true);
        yield return new("softmax_96x1500", "softmax", Wide("x", -12f, 12f, 96, 1500), P(), norm, Large: true);
        yield return new("attention_b2_h3_s197_d64", "attention", Attn(2, 3, 197, 197, 64), P(), attn, Large: true);
        yield return new("attention_s1500_d64", "attention", Attn(1, 1, 1500, 1500, 64), P(), attn, Large: true);
        foreach (var d in new long[] { 32, 80, 96, 128 })
            yield return new($"attention_s77_d{d}", "attention", Attn(1, 2, 77, 77, d), P(), attn, Large: true);
        yield return new("attention_s333_causal_lengths", "attention", Attn(2, 2, 333, 333, 64, lengths: [333, 150]), P("causal=true"), attn, Large: true);
        yield return new("attention_cross_sq50_sk1500_bshd", "attention", Attn(1, 4, 50, 1500, 64, bshd: true, lengths: [1111]), P("layout=bshd"), attn, Large: true);
        yield return new("patch_embed_clip_b2_224_p16_d768", "patch-embed",
            In(("image", [2, 3, 224, 224]), ("weight", [768, 3, 16, 16]), ("bias", [768]), ("cls", [768]), ("pos", [197, 768])), P(), gemm, Large: true);
        yield return new("gelu_1000003", "gelu", Wide("x", -9f, 9f, 1000003), P(), pointwise, Large: true);

        // Exact tile multiples (16 queries per work-item, 18 keys per step): no partial tile to mask.
        yield return new("attention_sq32_sk36_tile_multiples", "attention", Attn(1, 2, 32, 36, 16), P(), attn);
        yield return new("attention_sq16_sk18_one_tile", "attention", Attn(2, 1, 16, 18, 8, lengths: [18, 11]), P(), attn);
        // Causal with S_q ≠ S_k: top-left aligned (query i sees keys j ≤ i), as PyTorch's is_causal.
        yield return new("attention_causal_sq7_sk29", "attention", Attn(1, 2, 7, 29, 8), P("causal=true"), attn);
        yield return new("attention_causal_sq29_sk7", "attention", Attn(1, 1, 29, 7, 8), P("causal=true"), attn);
        yield return new("attention_causal_sq16_sk54_lengths_bshd", "attention", Attn(2, 2, 16, 54, 8, bshd: true, lengths: [54, 20]), P("causal=true", "layout=bshd"), attn);
        yield return new("attention_sq64_sk180_tile_multiples", "attention", Attn(1, 2, 64, 180, 64), P(), attn, Large: true);
        yield return new("attention_causal_sq48_sk216", "attention", Attn(1, 2, 48, 216, 64), P("causal=true"), attn, Large: true);
        // ReLU, pointwise and as the GEMM epilogue (the adaptive fusion's gate_net: Linear → ReLU → Linear).
        yield return new("relu_1001", "relu", Wide("x", -9f, 9f, 7, 143), P(), pointwise);
        yield return new("matmul_5x96x48_tb_bias_relu", "matmul", In(("a", [5, 96]), ("b", [48, 96]), ("bias", [48])), P("transpose_b=true", "activation=relu"), gemm);
        yield return new("matmul_int8_7x96x48_bias_relu", "matmul-int8", () =>
        {
            var d = In(("x", [7, 96]), ("bias", [48]))();
            d["w"] = Int8Tensor(5, 48, 96);
            d["scales"] = new HostTensor([48], RandomInputs.Uniform(6, 48, 0.001f, 0.01f));
            return d;
        }, P("activation=relu"), 2e-2, ElementBounds: Int8DequantBounds(RefActivation.Relu));
        // Retrieval: indices exact. Sizes off the 6 × 16 tile; 600 rows stride past one 256-thread group.
        yield return new("topk_67x24_q5_k7", "topk", In(("index", [67, 24]), ("queries", [5, 24])), P("k=7"), 0);
        yield return new("topk_600x20_q3_k10", "topk", In(("index", [600, 20]), ("queries", [3, 20])), P("k=10"), 0);
        yield return new("topk_11x8_q2_k11_duplicate_rows_tie_to_lower_index", "topk", DuplicateRows(11, 8), P("k=11"), 0);
        foreach (var c in FusionCases.All()) yield return c;
    }

    public static IEnumerable<TestCaseData> Matrix() =>
        from backend in Backends.Names
        from c in Cases()
        where !(c.Large && Backends.IsEmulator(backend)) && c.Bind().OutputType == DType.F32
        select new TestCaseData(backend, c).SetName($"{backend}/{c.Name}");

    [TestCaseSource(nameof(Matrix))]
    public void MatchesReference(string backend, ParityCase c)
    {
        var ctx = Backends.Get(backend);
        var op = c.Bind();
        var reference = op.RunReference();
        var output = op.RunDevice(ctx);
        var bounds = c.ElementBounds?.Invoke(c.Inputs(), reference);
        ParityCheck.AssertClose(output, reference, c.Tolerance, $"{backend}/{c.Name}", bounds);
    }

    public static IEnumerable<TestCaseData> IntegerMatrix() =>
        from backend in Backends.Names
        from c in Cases()
        where !(c.Large && Backends.IsEmulator(backend)) && c.Bind().OutputType != DType.F32
        select new TestCaseData(backend, c).SetName($"{backend}/{c.Name}");

    [TestCaseSource(nameof(IntegerMatrix))]
    public void IntegerOpsMatchReference(string backend, ParityCase c)
    {
        var op = c.Bind();
        var got = op.RunDeviceIntegers(Backends.Get(backend));
        var expected = op.RunReferenceIntegers();
        Assert.That(got, Has.Length.EqualTo(expected.Length));
        if (c.Op == "quantize")
        {
            var x = c.Inputs()["x"];
            Int8Checks.AssertQuantizedLikeNumPy(x.Floats("x"), (int)x.Shape[^1], got, $"{backend}/{c.Name}");
            return;
        }
        int worst = got.Zip(expected).Max(p => Math.Abs(p.First - p.Second));
        TestContext.Out.WriteLine($"{backend}/{c.Name}: largest difference {worst} step(s)");
        Assert.That(worst, Is.LessThanOrEqualTo((int)c.Tolerance));
    }

    [Test]
    public void EveryOpHasACase()
    {
        var covered = Cases().Select(c => c.Op).ToHashSet();
        Assert.That(OpCatalog.All.Select(o => o.Name).Where(n => !covered.Contains(n)), Is.Empty);
    }
}
