using System.Globalization;
using BenchmarkDotNet.Attributes;
using OmniKernels.IO;
using OmniKernels.Kernels;

namespace OmniKernels.Bench;

/// <summary>
/// One Linear layer y = x·Wᵀ at M × K × N, fp32 in and out: our INT8 path (quantize x per row, INT8 GEMM
/// against per-output-channel INT8 weights) and our prepacked fp32 GEMM, against ONNX Runtime running
/// the same layer as a fp32 MatMul and as its dynamic quantization (DynamicQuantizeLinear +
/// MatMulInteger, which ORT fuses into DynamicQuantizeMatMul). The weights are too big to commit, so
/// tools/make_onnx_models.py --int8-dir writes the models and weights on the first run.
/// </summary>
public class Int8Benchmarks : IDisposable
{
    /// <summary>M × K × N: one token through ViT-B's MLP up-projection, one token through a 4096-wide projection, a whole ViT-B/16 sequence.</summary>
    [Params("1x768x3072", "1x4096x4096", "197x768x3072")]
    public string Shape { get; set; } = "";

    /// <summary>Quantization error allowed against fp32, as ‖got − fp32‖/‖fp32‖.</summary>
    private const double Int8Tolerance = 3e-2;

    /// <summary>Where the generated models and weights live (ignored by git).</summary>
    public static string ModelDir => Path.Combine(BenchSetup.RepoRoot(), "bench", "generated", "int8-models");

    private DeviceContext _ctx = null!;
    private Tensor _x = null!, _q = null!, _rowScales = null!, _cInt8 = null!, _cFp32 = null!;
    private Int8Matrix _int8Weights = null!;
    private PackedMatrix _fp32Weights = null!;
    private OnnxPeer _ortFp32 = null!, _ortInt8 = null!;

    [GlobalSetup]
    public void Setup()
    {
        var dims = Shape.Split('x').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int m = dims[0], k = dims[1], n = dims[2];
        string name = $"lin_{Shape}";
        string fp32Model = Path.Combine(ModelDir, name + "_fp32.onnx");
        string int8Model = Path.Combine(ModelDir, name + "_int8.onnx");
        string weightsNpy = Path.Combine(ModelDir, name + "_w.npy");
        if (!File.Exists(fp32Model) || !File.Exists(int8Model) || !File.Exists(weightsNpy))
            MakeModels();

        float[] w = NpyFile.Read(weightsNpy).ToFloat32("weights");   // [N, K], PyTorch Linear layout
        if (w.Length != (long)n * k)
            throw new InvalidOperationException($"{weightsNpy} holds {w.Length} values, not {n} × {k}; delete {ModelDir} to regenerate.");
        var rng = new Random(m * 7919 + k);
        var x = new float[m * k];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);

        _ctx = DeviceContext.Create(DeviceKind.OpenCL);
        _x = Tensor.FromHost<float>(_ctx, x, new Shape(m, k));
        _q = Tensor.Allocate(_ctx, DType.F32, new Shape(m, k)); // quantized values as floats: the faster GEMM input
        _rowScales = Tensor.Allocate(_ctx, DType.F32, new Shape(m));
        _cInt8 = Tensor.Allocate(_ctx, DType.F32, new Shape(m, n), GemmKernel.PanelWidth);
        _cFp32 = Tensor.Allocate(_ctx, DType.F32, new Shape(m, n), GemmKernel.PanelWidth);
        _int8Weights = Int8Matrix.QuantizeWeights(_ctx, w, n, k);
        using (var tw = Tensor.FromHost<float>(_ctx, w, new Shape(n, k)))
            _fp32Weights = PackedMatrix.Pack(_ctx, tw.View, transposed: true);

        int threads = BenchSetup.Threads;
        long[] inputShape = [m, k], outputShape = [m, n];
        _ortFp32 = new OnnxPeer(fp32Model, threads, [("x", x, inputShape)], outputShape);
        _ortInt8 = new OnnxPeer(int8Model, threads, [("x", x, inputShape)], outputShape);

        // Every contender must compute the same layer before any is timed: fp32 exactly, INT8 within quantization error.
        Fp32();
        OrtFp32();
        Int8();
        OrtInt8();
        float[] fp32 = _cFp32.ToArray<float>(), int8 = _cInt8.ToArray<float>();
        BenchSetup.RequireSameResult(_ortFp32.Output, fp32, $"fp32 Linear {Shape}");
        double ours = BenchSetup.RequireSameResult(fp32, int8, $"ILGPU INT8 vs ILGPU fp32, {Shape}", Int8Tolerance);
        double ort = BenchSetup.RequireSameResult(_ortFp32.Output, _ortInt8.Output, $"ONNX Runtime INT8 vs ONNX Runtime fp32, {Shape}", Int8Tolerance);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"// {Shape}: INT8 relative L2 error, ILGPU {ours:E2}, ONNX Runtime {ort:E2}; ILGPU INT8 weights {_int8Weights.DeviceBytes} bytes on the device"));
    }

    [Benchmark(Description = "ILGPU INT8 Linear (quantize x + INT8 GEMM)")]
    public void Int8()
    {
        Int8GemmKernel.QuantizeRows(_ctx, _x.View, _q.View, _rowScales.View);
        Int8GemmKernel.Launch(_ctx, _q.View, _rowScales.View, _int8Weights.View, _cInt8.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "ILGPU fp32 Linear, prepacked weights")]
    public void Fp32()
    {
        GemmKernel.Launch(_ctx, _x.View, _fp32Weights.View, _cFp32.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "ONNX Runtime fp32 MatMul, W as initializer")]
    public void OrtFp32() => _ortFp32.Run();

    [Benchmark(Description = "ONNX Runtime INT8 (DynamicQuantizeLinear + MatMulInteger)")]
    public void OrtInt8() => _ortInt8.Run();

    /// <summary>Runs tools/make_onnx_models.py --int8-dir, which writes every shape's models and weights.</summary>
    private static void MakeModels() => Console.WriteLine(BenchSetup.RunTool("make_onnx_models.py", "--int8-dir", ModelDir).Trim());

    [GlobalCleanup]
    public void Dispose()
    {
        _ortInt8?.Dispose();
        _ortFp32?.Dispose();
        _fp32Weights?.Dispose();
        _int8Weights?.Dispose();
        foreach (var t in new[] { _cFp32, _cInt8, _rowScales, _q, _x }) t?.Dispose();
        _ctx?.Dispose();
        GC.SuppressFinalize(this);
    }
}
