using OmniKernels.Kernels;

namespace OmniKernels.Ops;

/// <summary>Host ↔ device plumbing for bound ops.</summary>
internal static class DeviceIO
{
    public static Tensor Upload(DeviceContext ctx, HostTensor t, string name, long rowAlignment = 1) =>
        Tensor.FromHost<float>(ctx, t.Floats(name), t.ToShape(), rowAlignment);

    public static Tensor PoisonedOutput(DeviceContext ctx, long[] shape, long rowAlignment = 1)
    {
        var y = Tensor.Allocate(ctx, DType.F32, new Shape(shape), rowAlignment);
        try
        {
            ElementwiseKernel.Fill(ctx, y.View, float.NaN);
            return y;
        }
        catch
        {
            y.Dispose();
            throw;
        }
    }

    public static float[] Download(DeviceContext ctx, Tensor y)
    {
        ctx.Synchronize();
        return y.ToArray<float>();
    }
}
