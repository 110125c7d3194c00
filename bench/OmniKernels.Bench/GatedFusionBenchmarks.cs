using System.Globalization;
using BenchmarkDotNet.Attributes;
using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Bench;

/// <summary>
/// The gated-fusion launch (gate GEMV/GEMM over the present modalities, σ or softmax, weighted sum)
/// at CLIP-sized embeddings: the sigmoid gate with fp32 and INT8 weights, and the softmax gate of
/// the adaptive fusion (M = 2, K = F = E), with every modality present or one. Each result is
/// checked against the float64 reference before anything is timed. No peer: ONNX Runtime has no
/// fused form of this op, and the unfused graph is a Linear plus elementwise ops already measured
/// by the GEMM benchmarks.
/// </summary>
public class GatedFusionBenchmarks : IDisposable
{
    /// <summary>B rows, M modalities, width E: one request and a batch of 16, four modalities of CLIP ViT-L/14's 768.</summary>
    [Params("b1_m4_e768", "b16_m4_e768")]
    public string Shape { get; set; } = "";

    /// <summary>all, or one modality (what skipping absent ones saves: the gate GEMM shrinks by M²).</summary>
    [Params("all", "one")]
    public string Present { get; set; } = "";

    private const int SoftmaxModalities = 2;

    private DeviceContext _ctx = null!;
    private GatedFusionWeights _fp32 = null!, _int8 = null!, _softmax = null!;
    private Tensor _z = null!, _fused = null!, _gates = null!, _h = null!, _x = null!, _sFused = null!, _sWeights = null!;
    private GatedFusionParams _p, _pSoftmax;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('_').Select(s => int.Parse(s[1..], CultureInfo.InvariantCulture)).ToArray();
        int b = parts[0], m = parts[1], e = parts[2], n = m * e;
        bool all = Present == "all";
        var present = Enumerable.Range(0, m).Select(i => all || i == 0).ToArray();
        _p = all ? new GatedFusionParams((1u << m) - 1) : GatedFusionParams.Of(0);
        _pSoftmax = all ? new GatedFusionParams((1u << SoftmaxModalities) - 1) : GatedFusionParams.Of(0);

        var rng = new Random(n + b);
        float[] Uniform(long count, float scale) => Enumerable.Range(0, checked((int)count)).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
        float[] z = Uniform((long)b * n, 1f), w = Uniform((long)n * n, 2f / MathF.Sqrt(n)), bias = Uniform(n, 0.5f);
        float[] h = Uniform((long)b * e, 1f), x = Uniform((long)b * SoftmaxModalities * e, 1f), w2 = Uniform(SoftmaxModalities * e, 2f / MathF.Sqrt(e)), b2 = Uniform(SoftmaxModalities, 0.5f);

        _ctx = DeviceContext.Create(DeviceKind.OpenCL);
        _fp32 = GatedFusionWeights.Create(_ctx, FusionGate.Sigmoid, m, n, w, bias, FusionWeightFormat.Fp32);
        _int8 = GatedFusionWeights.Create(_ctx, FusionGate.Sigmoid, m, n, w, bias, FusionWeightFormat.Int8);
        _softmax = GatedFusionWeights.Create(_ctx, FusionGate.Softmax, SoftmaxModalities, e, w2, b2, FusionWeightFormat.Fp32);
        _z = Tensor.FromHost<float>(_ctx, z, new Shape(b, n));
        _fused = Tensor.Allocate(_ctx, DType.F32, new Shape(b, e));
        _gates = Tensor.Allocate(_ctx, DType.F32, new Shape(b, n));
        _h = Tensor.FromHost<float>(_ctx, h, new Shape(b, e));
        _x = Tensor.FromHost<float>(_ctx, x, new Shape(b, SoftmaxModalities * e));
        _sFused = Tensor.Allocate(_ctx, DType.F32, new Shape(b, e));
        _sWeights = Tensor.Allocate(_ctx, DType.F32, new Shape(b, SoftmaxModalities));

        var refFused = new double[b * e];
        ReferenceOps.GatedFusionSigmoid(z, w, bias, b, m, e, present, refFused, new double[b * n]);
        var expected = refFused.Select(v => (float)v).ToArray();
        SigmoidFp32();
        double errFp32 = BenchSetup.RequireSameResult(expected, _fused.ToArray<float>(), $"sigmoid fp32 {Shape} {Present}");
        SigmoidInt8();
        double errInt8 = BenchSetup.RequireSameResult(expected, _fused.ToArray<float>(), $"sigmoid INT8 {Shape} {Present}", 1e-2);
        var refSoftmax = new double[b * e];
        ReferenceOps.GatedFusionSoftmax(h, w2, b2, x, b, SoftmaxModalities, e, e, present.Take(SoftmaxModalities).ToArray(), refSoftmax, new double[b * SoftmaxModalities]);
        SoftmaxFp32();
        BenchSetup.RequireSameResult(refSoftmax.Select(v => (float)v).ToArray(), _sFused.ToArray<float>(), $"softmax {Shape} {Present}");
        long mp = present.Count(p => p);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"// {Shape} present={Present}: sigmoid gate {2.0 * b * mp * e * mp * e / 1e6:F1} MFLOP, weights read {mp * e * mp * e * 4 / 1e6:F1} MB fp32 / {mp * e * mp * e / 1e6:F1} MB INT8 (device {_fp32.DeviceBytes} / {_int8.DeviceBytes} bytes in all); error vs float64 fp32 {errFp32:E1}, INT8 {errInt8:E1}"));
    }

    [Benchmark(Description = "sigmoid gate, fp32 W")]
    public void SigmoidFp32()
    {
        GatedFusionKernel.LaunchSigmoid(_ctx, _fp32.View, _z.View, _fused.View, _gates.View, _p);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "sigmoid gate, INT8 W")]
    public void SigmoidInt8()
    {
        GatedFusionKernel.LaunchSigmoid(_ctx, _int8.View, _z.View, _fused.View, _gates.View, _p);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "softmax gate (M = 2, K = F = E), fp32 W")]
    public void SoftmaxFp32()
    {
        GatedFusionKernel.LaunchSoftmax(_ctx, _softmax.View, _h.View, _x.View, _sFused.View, _sWeights.View, _pSoftmax);
        _ctx.Synchronize();
    }

    [GlobalCleanup]
    public void Dispose()
    {
        foreach (var t in new[] { _sWeights, _sFused, _x, _h, _gates, _fused, _z }) t?.Dispose();
        _softmax?.Dispose();
        _int8?.Dispose();
        _fp32?.Dispose();
        _ctx?.Dispose();
        GC.SuppressFinalize(this);
    }
}
