using BenchmarkDotNet.Attributes;
using OmniKernels.Kernels;

namespace OmniKernels.Bench;

/// <summary>
/// Attention at the ViT-B/16 (B 8, H 12, S 197, D 64) and Whisper-base encoder (B 1, H 8, S 1500,
/// D 64) shapes, with and without a key-padding mask: the fused kernel, this project's unfused path
/// (GEMM → masked softmax → GEMM), and ONNX Runtime's MultiHeadAttention contrib op and plain
/// Q·Kᵀ → softmax → ·V graph, all on the same data in the same process.
/// </summary>
public class AttentionBenchmarks : IDisposable
{
    [Params("vit", "whisper")]
    public string Shape { get; set; } = "vit";

    [Params(false, true)]
    public bool Masked { get; set; }

    private int _b, _h, _s, _d;
    private DeviceContext _ctx = null!;
    private Tensor _q = null!, _k = null!, _v = null!, _o = null!, _scratch = null!, _lengths = null!;
    private Tensor _kPanels = null!, _vPanels = null!, _scores = null!, _oUnfused = null!;
    private OnnxPeer _ortMha = null!, _ortGraph = null!;

    [GlobalSetup]
    public void Setup()
    {
        (_b, _h, _s, _d) = Shape == "vit" ? (8, 12, 197, 64) : (1, 8, 1500, 64);
        int b = _b, h = _h, s = _s, d = _d;
        var rng = new Random(s);
        float[] Rand() { var x = new float[b * h * s * d]; for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1); return x; }
        float[] q = Rand(), k = Rand(), v = Rand();
        var lengths = Enumerable.Range(0, b).Select(i => Masked ? (Shape == "vit" ? s - 10 * i : 1200) : s).ToArray();

        _ctx = DeviceContext.Create(DeviceKind.OpenCL);
        var shape = new Shape(b, h, s, d);
        _q = Tensor.FromHost<float>(_ctx, q, shape);
        _k = Tensor.FromHost<float>(_ctx, k, shape);
        _v = Tensor.FromHost<float>(_ctx, v, shape);
        _o = Tensor.Allocate(_ctx, DType.F32, shape);
        _scratch = Tensor.Allocate(_ctx, DType.F32, new Shape(AttentionKernel.ScratchElements(b, h, s, d)));
        _lengths = Tensor.FromHost<int>(_ctx, lengths, new Shape(b));
        _kPanels = Tensor.Allocate(_ctx, DType.F32, GemmKernel.PanelShape(b * h, d, s));
        _vPanels = Tensor.Allocate(_ctx, DType.F32, GemmKernel.PanelShape(b * h, s, d));
        _scores = Tensor.Allocate(_ctx, DType.F32, new Shape(b * h, s, s), GemmKernel.PanelWidth);
        _oUnfused = Tensor.Allocate(_ctx, DType.F32, new Shape(b * h, s, d), GemmKernel.PanelWidth);

        // ONNX Runtime: MultiHeadAttention takes [B, S, H·D]; the plain graph takes [B, H, S, D] and an additive mask.
        float[] ToBshd(float[] x)
        {
            var y = new float[x.Length];
            for (int bi = 0; bi < b; bi++) for (int hi = 0; hi < h; hi++) for (int si = 0; si < s; si++)
                Array.Copy(x, ((bi * h + hi) * s + si) * d, y, ((bi * s + si) * h + hi) * d, d);
            return y;
        }
        long[] bshd = [b, s, h * d], bhsd = [b, h, s, d];
        var mhaInputs = new List<(string, Array, long[])> { ("query", ToBshd(q), bshd), ("key", ToBshd(k), bshd), ("value", ToBshd(v), bshd) };
        var graphInputs = new List<(string, Array, long[])> { ("q", q, bhsd), ("k", k, bhsd), ("v", v, bhsd) };
        if (Masked)
        {
            var keep = new int[b * s];
            var bias = new float[b * s];
            for (int bi = 0; bi < b; bi++) for (int j = 0; j < s; j++)
            {
                keep[bi * s + j] = j < lengths[bi] ? 1 : 0;
                bias[bi * s + j] = j < lengths[bi] ? 0f : -10000f;
            }
            mhaInputs.Add(("key_padding_mask", keep, [b, s]));
            graphInputs.Add(("mask_bias", bias, [b, 1, 1, s]));
        }
        string suffix = Masked ? "_mask" : "";
        int threads = BenchSetup.Threads;
        _ortMha = new OnnxPeer(BenchSetup.Model($"mha_{Shape}{suffix}.onnx"), threads, mhaInputs, bshd);
        _ortGraph = new OnnxPeer(BenchSetup.Model($"sdpa_{Shape}{suffix}.onnx"), threads, graphInputs, bhsd);

        // Every contender must compute the same attention before any is timed.
        Fused();
        var fused = _o.ToArray<float>();
        Unfused();
        BenchSetup.RequireSameResult(fused, _oUnfused.ToArray<float>(), "unfused path");
        OrtGraph();
        BenchSetup.RequireSameResult(fused, _ortGraph.Output, "ONNX Runtime graph");
        OrtMultiHeadAttention();
        BenchSetup.RequireSameResult(ToBshd(fused), _ortMha.Output, "ONNX Runtime MultiHeadAttention");
    }

    [Benchmark(Description = "ILGPU fused")]
    public void Fused()
    {
        AttentionKernel.Launch(_ctx, _q.View, _k.View, _v.View, _o.View, AttentionLayout.Bhsd, default,
            Masked ? _lengths.View : null, _scratch.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "ILGPU unfused (GEMM, softmax, GEMM)")]
    public void Unfused()
    {
        var heads = new Shape(_b * _h, _s, _d);
        var q = View3(_q, heads);
        var k = View3(_k, heads);
        var v = View3(_v, heads);
        var kT = new PackedMatrixView(_kPanels.View, _d, _s);
        var vP = new PackedMatrixView(_vPanels.View, _s, _d);
        GemmKernel.Pack(_ctx, k, transposed: true, kT);
        GemmKernel.Launch(_ctx, q, kT, _scores.View);
        SoftmaxKernel.Launch(_ctx, _scores.View, _scores.View, new SoftmaxParams(1f / MathF.Sqrt(_d)), Masked ? _lengths.View : null);
        GemmKernel.Pack(_ctx, v, transposed: false, vP);
        GemmKernel.Launch(_ctx, _scores.View, vP, _oUnfused.View);
        _ctx.Synchronize();
    }

    private static TensorView View3(Tensor t, Shape shape) =>
        new(t.View.Storage, DType.F32, shape, shape.RowMajorStrides(), t.View.Offset);

    [Benchmark(Description = "ONNX Runtime MultiHeadAttention")]
    public void OrtMultiHeadAttention() => _ortMha.Run();

    [Benchmark(Description = "ONNX Runtime Q·Kᵀ → softmax → ·V")]
    public void OrtGraph() => _ortGraph.Run();

    [GlobalCleanup]
    public void Dispose()
    {
        _ortGraph?.Dispose();
        _ortMha?.Dispose();
        foreach (var t in new[] { _oUnfused, _scores, _vPanels, _kPanels, _lengths, _scratch, _o, _v, _k, _q }) t?.Dispose();
        _ctx?.Dispose();
        GC.SuppressFinalize(this);
    }
}
