using BenchmarkDotNet.Attributes;
using OmniKernels.IO;
using OmniKernels.Kernels;

namespace OmniKernels.Bench;

/// <summary>
/// fp32 GEMM C = A·B at n × n × n: B as activations (packed every call) and B as prepacked Linear
/// weights, against ONNX Runtime's MatMul on the same data in the same process.
/// </summary>
public class GemmBenchmarks : IDisposable
{
    [Params(512, 1024, 2048)]
    public int N { get; set; }

    private DeviceContext _ctx = null!;
    private Tensor _a = null!, _b = null!, _c = null!;
    private PackedMatrix _weights = null!;
    private Tensor _panels = null!;
    private PackedMatrixView _activationPanels;
    private OnnxPeer _ortMatMul = null!, _ortLinear = null!;

    [GlobalSetup]
    public void Setup()
    {
        int n = N;
        var rng = new Random(n);
        float[] Rand() { var x = new float[n * n]; for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1); return x; }
        float[] a = Rand(), b = Rand();
        float[] w = NpyFile.Read(BenchSetup.Model($"linear_{n}_b.npy")).ToFloat32("weights");

        _ctx = DeviceContext.Create(DeviceKind.OpenCL);
        _a = Tensor.FromHost<float>(_ctx, a, new Shape(n, n));
        _b = Tensor.FromHost<float>(_ctx, b, new Shape(n, n));
        _c = Tensor.Allocate(_ctx, DType.F32, new Shape(n, n), GemmKernel.PanelWidth);
        using (var tw = Tensor.FromHost<float>(_ctx, w, new Shape(n, n)))
            _weights = PackedMatrix.Pack(_ctx, tw.View, transposed: false);
        _panels = Tensor.Allocate(_ctx, DType.F32, GemmKernel.PanelShape(1, n, n));
        _activationPanels = new PackedMatrixView(_panels.View, n, n);

        int threads = BenchSetup.Threads;
        long[] shape = [n, n];
        _ortMatMul = new OnnxPeer(BenchSetup.Model($"matmul_{n}.onnx"), threads, [("A", a, shape), ("B", b, shape)], shape);
        _ortLinear = new OnnxPeer(BenchSetup.Model($"linear_{n}.onnx"), threads, [("A", a, shape)], shape);

        // Both sides must compute the same product before either is timed.
        IlgpuActivations();
        _ortMatMul.Run();
        BenchSetup.RequireSameResult(_c.ToArray<float>(), _ortMatMul.Output, "B as activations");
        IlgpuLinear();
        _ortLinear.Run();
        BenchSetup.RequireSameResult(_c.ToArray<float>(), _ortLinear.Output, "prepacked Linear");
    }

    [Benchmark(Description = "ILGPU, B as activations (pack + GEMM)")]
    public void IlgpuActivations()
    {
        GemmKernel.Pack(_ctx, _b.View, transposed: false, _activationPanels);
        GemmKernel.Launch(_ctx, _a.View, _activationPanels, _c.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "ILGPU, prepacked Linear weights")]
    public void IlgpuLinear()
    {
        GemmKernel.Launch(_ctx, _a.View, _weights.View, _c.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "ONNX Runtime MatMul, B as input")]
    public void OrtMatMul() => _ortMatMul.Run();

    [Benchmark(Description = "ONNX Runtime MatMul, B as initializer")]
    public void OrtLinear() => _ortLinear.Run();

    [GlobalCleanup]
    public void Dispose()
    {
        _ortLinear?.Dispose();
        _ortMatMul?.Dispose();
        _panels?.Dispose();
        _weights?.Dispose();
        _c?.Dispose();
        _b?.Dispose();
        _a?.Dispose();
        _ctx?.Dispose();
        GC.SuppressFinalize(this);
    }
}
