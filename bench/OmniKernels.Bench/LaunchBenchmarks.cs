using BenchmarkDotNet.Attributes;
using OmniKernels.Kernels;

namespace OmniKernels.Bench;

/// <summary>
/// Fixed costs on the device, which an executor replaying hundreds of launches per request pays each
/// time: a synchronize with nothing queued, one launch of a kernel over 16 floats (the work is nil, so
/// the time is the host's and the runtime's), 100 such launches queued behind one synchronize (the cost
/// of a launch in a replayed plan), and the 1 × 768 × 3072 INT8 GEMV's two launches apart and together.
/// </summary>
public class LaunchBenchmarks : IDisposable
{
    private const int Queued = 100;
    private const int K = 768, N = 3072;

    private DeviceContext _ctx = null!;
    private Tensor _small = null!, _smallOut = null!, _x = null!, _q = null!, _scale = null!, _y = null!;
    private Int8Matrix _w = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ctx = DeviceContext.Create(DeviceKind.OpenCL);
        _small = Tensor.FromHost<float>(_ctx, BenchModels.Uniform(new Random(1601), 16, 1f), new Shape(16));
        _smallOut = Tensor.Allocate(_ctx, DType.F32, new Shape(16));
        _x = Tensor.FromHost<float>(_ctx, BenchModels.Uniform(new Random(1602), K, 1f), new Shape(1, K));
        _q = Tensor.Allocate(_ctx, DType.F32, new Shape(1, K));
        _scale = Tensor.Allocate(_ctx, DType.F32, new Shape(1));
        _y = Tensor.Allocate(_ctx, DType.F32, new Shape(1, N), GemmKernel.PanelWidth);
        _w = Int8Matrix.QuantizeWeights(_ctx, BenchModels.Uniform(new Random(1603), N * K, 1f), N, K);
        // Compile and load every kernel before timing.
        LaunchAndSynchronize();
        Int8Gemv();
    }

    [Benchmark(Description = "synchronize, nothing queued")]
    public void Synchronize() => _ctx.Synchronize();

    [Benchmark(Description = "one launch (16 floats) + synchronize")]
    public void LaunchAndSynchronize()
    {
        ElementwiseKernel.Activate(_ctx, Activation.Relu, _small.View, _smallOut.View);
        _ctx.Synchronize();
    }

    [Benchmark(OperationsPerInvoke = Queued, Description = "one launch (16 floats) of 100 queued, one synchronize")]
    public void QueuedLaunches()
    {
        for (int i = 0; i < Queued; i++) ElementwiseKernel.Activate(_ctx, Activation.Relu, _small.View, _smallOut.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "INT8 1×768×3072: quantize x + synchronize")]
    public void Quantize()
    {
        Int8GemmKernel.QuantizeRows(_ctx, _x.View, _q.View, _scale.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "INT8 1×768×3072: GEMV + synchronize")]
    public void Gemv()
    {
        Int8GemmKernel.Launch(_ctx, _q.View, _scale.View, _w.View, _y.View);
        _ctx.Synchronize();
    }

    [Benchmark(Description = "INT8 1×768×3072: quantize + GEMV + one synchronize")]
    public void Int8Gemv()
    {
        Int8GemmKernel.QuantizeRows(_ctx, _x.View, _q.View, _scale.View);
        Int8GemmKernel.Launch(_ctx, _q.View, _scale.View, _w.View, _y.View);
        _ctx.Synchronize();
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _w?.Dispose();
        foreach (var t in new[] { _y, _scale, _q, _x, _smallOut, _small }) t?.Dispose();
        _ctx?.Dispose();
        GC.SuppressFinalize(this);
    }
}
