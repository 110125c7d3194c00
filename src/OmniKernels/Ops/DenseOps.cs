using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Ops;

/// <summary>C = act(A·B + bias) + residual, with B as [K, N] or, transposed, [N, K] (PyTorch Linear).</summary>
internal sealed class MatMulOp : OpDefinition
{
    public override string Name => "matmul";
    public override string Summary => "C = act(a·b + bias) + residual; a [M,K] or [batch,M,K], b [K,N] (or [N,K] with transpose_b=true)";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } =
    [
        new("a", true, "float32 [M, K] or [batch, M, K]"),
        new("b", true, "float32 [K, N], [N, K] with transpose_b=true, or batched with a leading batch dimension"),
        new("bias", false, "float32 [N]"),
        new("residual", false, "float32, the shape of the output"),
    ];
    public override IReadOnlyList<string> ParamNames { get; } = ["transpose_b=false", "activation=none"];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var a = inputs["a"];
        var b = inputs["b"];
        bool transposed = p.Bool("transpose_b", false);
        var activation = ParseActivation(p.Text("activation", "none"));
        RequireRank(a, "a", 2, 3);
        RequireRank(b, "b", 2, 3);
        a.Floats("a");
        b.Floats("b");
        long batch = a.Rank == 3 ? a.Shape[0] : 1, m = a.Shape[^2], k = a.Shape[^1];
        long bBatch = b.Rank == 3 ? b.Shape[0] : 1;
        long bk = transposed ? b.Shape[^1] : b.Shape[^2], n = transposed ? b.Shape[^2] : b.Shape[^1];
        if (bk != k)
            throw new OpInputException($"matmul: a {a.ShapeText} has K = {k} but b {b.ShapeText}{(transposed ? " (transposed)" : "")} has K = {bk}");
        if (bBatch != 1 && bBatch != batch)
            throw new OpInputException($"matmul: b {b.ShapeText} has batch {bBatch}; a {a.ShapeText} has batch {batch}");
        long[] outShape = a.Rank == 3 ? [batch, m, n] : [m, n];
        inputs.TryGetValue("bias", out var bias);
        inputs.TryGetValue("residual", out var residual);
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != n))
            throw new OpInputException($"matmul: bias {bias.ShapeText} must be ({n},)");
        bias?.Floats("bias");
        if (residual is not null && !residual.Shape.SequenceEqual(outShape))
            throw new OpInputException($"matmul: residual {residual.ShapeText} must be the output shape ({string.Join(", ", outShape)})");
        residual?.Floats("residual");
        return new Bound(a, b, bias, residual, transposed, activation, outShape, (int)batch, (int)m, (int)k, (int)n);
    }

    internal static (Activation Kernel, RefActivation Reference) ParseActivation(string name)
    {
        try
        {
            var act = Activations.Parse(name);
            return (act, Enum.Parse<RefActivation>(act.ToString()));
        }
        catch (ArgumentException e)
        {
            throw new OpInputException(e.Message);
        }
    }

    private sealed class Bound(HostTensor a, HostTensor b, HostTensor? bias, HostTensor? residual, bool transposed,
        (Activation Kernel, RefActivation Reference) activation, long[] outShape, int batch, int m, int k, int n) : BoundOp
    {
        public override long[] OutputShape => outShape;
        public override double Flops => 2.0 * batch * m * n * k;

        public override float[] RunDevice(DeviceContext ctx)
        {
            const int align = GemmKernel.PanelWidth;
            using var ta = DeviceIO.Upload(ctx, a, "a");
            using var tb = DeviceIO.Upload(ctx, b, "b");
            using var packed = PackedMatrix.Pack(ctx, tb.View, transposed);
            using var tBias = bias is null ? null : DeviceIO.Upload(ctx, bias, "bias", align);
            using var tRes = residual is null ? null : DeviceIO.Upload(ctx, residual, "residual", align);
            using var c = DeviceIO.PoisonedOutput(ctx, outShape, align);
            GemmKernel.Launch(ctx, ta.View, packed.View, c.View, new GemmParams(activation.Kernel), tBias?.View, tRes?.View);
            return DeviceIO.Download(ctx, c);
        }

        public override double[] RunReference()
        {
            var y = new double[(long)batch * m * n];
            ReferenceOps.MatMul(a.Floats("a"), b.Floats("b"), batch, m, k, n, transposed,
                bias?.Floats("bias") ?? default, activation.Reference, residual?.Floats("residual") ?? default, y);
            return y;
        }
    }
}

/// <summary>LayerNorm or RMSNorm over the last dimension.</summary>
internal sealed class NormOp(bool layerNorm) : OpDefinition
{
    public override string Name => layerNorm ? "layernorm" : "rmsnorm";
    public override string Summary => layerNorm
        ? "y = (x - mean)/sqrt(var + eps)·gamma + beta over the last dimension"
        : "y = x/sqrt(mean(x²) + eps)·gamma over the last dimension";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } = layerNorm
        ? [new("x", true, "float32 [..., D]"), new("gamma", false, "float32 [D], default ones"), new("beta", false, "float32 [D], default zeros")]
        : [new("x", true, "float32 [..., D]"), new("gamma", false, "float32 [D], default ones")];
    public override IReadOnlyList<string> ParamNames { get; } = [layerNorm ? "eps=1e-5" : "eps=1e-6"];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var x = inputs["x"];
        RequireRank(x, "x", 1, 2, 3, 4);
        x.Floats("x");
        long d = x.Shape[^1];
        float eps = p.Float("eps", layerNorm ? 1e-5f : 1e-6f);
        if (!(eps > 0)) throw new OpInputException($"{Name}: eps must be positive, got {eps}");
        var gamma = Vector(inputs, "gamma", d, 1f);
        var beta = Vector(inputs, "beta", d, 0f);
        return new Bound(layerNorm, x, gamma, beta, eps);
    }

    private HostTensor Vector(IReadOnlyDictionary<string, HostTensor> inputs, string name, long d, float fill)
    {
        if (!inputs.TryGetValue(name, out var v))
            return HostTensor.Of(Enumerable.Repeat(fill, (int)d).ToArray(), d);
        if (v.Rank != 1 || v.Shape[0] != d)
            throw new OpInputException($"{Name}: {name} {v.ShapeText} must be ({d},), the last dimension of x");
        v.Floats(name);
        return v;
    }

    private sealed class Bound(bool layerNorm, HostTensor x, HostTensor gamma, HostTensor beta, float eps) : BoundOp
    {
        public override long[] OutputShape => x.Shape;
        public override double Flops => 8.0 * x.Length;

        public override float[] RunDevice(DeviceContext ctx)
        {
            using var tx = DeviceIO.Upload(ctx, x, "x");
            using var tg = DeviceIO.Upload(ctx, gamma, "gamma");
            using var tb = DeviceIO.Upload(ctx, beta, "beta");
            using var y = DeviceIO.PoisonedOutput(ctx, x.Shape);
            if (layerNorm) NormalizationKernel.LayerNorm(ctx, tx.View, tg.View, tb.View, y.View, eps);
            else NormalizationKernel.RmsNorm(ctx, tx.View, tg.View, y.View, eps);
            return DeviceIO.Download(ctx, y);
        }

        public override double[] RunReference()
        {
            var y = new double[x.Length];
            int d = (int)x.Shape[^1];
            if (layerNorm) ReferenceOps.LayerNorm(x.Floats("x"), d, gamma.Floats("gamma"), beta.Floats("beta"), eps, y);
            else ReferenceOps.RmsNorm(x.Floats("x"), d, gamma.Floats("gamma"), eps, y);
            return y;
        }
    }
}

/// <summary>Row softmax of scale·x over the last dimension, with optional per-batch visible lengths.</summary>
internal sealed class SoftmaxOp : OpDefinition
{
    public override string Name => "softmax";
    public override string Summary => "y = softmax(scale·x) over the last dimension; columns at or past lengths[batch] give 0, as do rows with nothing visible";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } =
    [
        new("x", true, "float32 [..., D]"),
        new("lengths", false, "int32 [batch]: the rows form batch equal groups; group b sees columns below lengths[b]"),
    ];
    public override IReadOnlyList<string> ParamNames { get; } = ["scale=1"];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var x = inputs["x"];
        RequireRank(x, "x", 1, 2, 3, 4);
        x.Floats("x");
        float scale = p.Float("scale", 1f);
        if (!(scale > 0)) throw new OpInputException($"softmax: scale must be positive, got {scale}");
        int[]? lengths = null;
        if (inputs.TryGetValue("lengths", out var l))
        {
            lengths = l.Ints("lengths");
            long rows = x.Length / x.Shape[^1];
            if (l.Rank != 1 || rows % l.Shape[0] != 0)
                throw new OpInputException($"softmax: lengths {l.ShapeText} must be (batch,) with batch dividing the {rows} rows of x");
            if (lengths.Any(v => v < 0 || v > x.Shape[^1]))
                throw new OpInputException($"softmax: every length must be within 0..{x.Shape[^1]}");
        }
        return new Bound(x, scale, lengths);
    }

    private sealed class Bound(HostTensor x, float scale, int[]? lengths) : BoundOp
    {
        public override long[] OutputShape => x.Shape;
        public override double Flops => 5.0 * x.Length;

        public override float[] RunDevice(DeviceContext ctx)
        {
            using var tx = DeviceIO.Upload(ctx, x, "x");
            using var tl = lengths is null ? null : Tensor.FromHost<int>(ctx, lengths, new Shape(lengths.Length));
            using var y = DeviceIO.PoisonedOutput(ctx, x.Shape);
            SoftmaxKernel.Launch(ctx, tx.View, y.View, new SoftmaxParams(scale), tl?.View);
            return DeviceIO.Download(ctx, y);
        }

        public override double[] RunReference()
        {
            var y = new double[x.Length];
            ReferenceOps.Softmax(x.Floats("x"), (int)x.Shape[^1], scale, lengths ?? default, y);
            return y;
        }
    }
}

/// <summary>A pointwise activation.</summary>
internal sealed class ActivationOp(string name, string formula) : OpDefinition
{
    public override string Name => name;
    public override string Summary => formula;
    public override IReadOnlyList<OpInputSpec> Inputs { get; } = [new("x", true, "float32, any shape")];
    public override IReadOnlyList<string> ParamNames { get; } = [];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var x = inputs["x"];
        x.Floats("x");
        return new Bound(x, MatMulOp.ParseActivation(name));
    }

    private sealed class Bound(HostTensor x, (Activation Kernel, RefActivation Reference) act) : BoundOp
    {
        public override long[] OutputShape => x.Shape;
        public override double Flops => x.Length;

        public override float[] RunDevice(DeviceContext ctx)
        {
            using var tx = DeviceIO.Upload(ctx, x, "x");
            using var y = DeviceIO.PoisonedOutput(ctx, x.Shape);
            ElementwiseKernel.Activate(ctx, act.Kernel, tx.View, y.View);
            return DeviceIO.Download(ctx, y);
        }

        public override double[] RunReference()
        {
            var y = new double[x.Length];
            ReferenceOps.Activation(x.Floats("x"), act.Reference, y);
            return y;
        }
    }
}

/// <summary>Elementwise add or mul of two same-shaped tensors.</summary>
internal sealed class BinaryOp(bool add) : OpDefinition
{
    public override string Name => add ? "add" : "mul";
    public override string Summary => add ? "y = a + b (same shapes)" : "y = a · b (same shapes)";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } = [new("a", true, "float32"), new("b", true, "float32, a's shape")];
    public override IReadOnlyList<string> ParamNames { get; } = [];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var a = inputs["a"];
        var b = inputs["b"];
        a.Floats("a");
        b.Floats("b");
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new OpInputException($"{Name}: a {a.ShapeText} and b {b.ShapeText} differ in shape");
        return new Bound(add, a, b);
    }

    private sealed class Bound(bool add, HostTensor a, HostTensor b) : BoundOp
    {
        public override long[] OutputShape => a.Shape;
        public override double Flops => a.Length;

        public override float[] RunDevice(DeviceContext ctx)
        {
            using var ta = DeviceIO.Upload(ctx, a, "a");
            using var tb = DeviceIO.Upload(ctx, b, "b");
            using var y = DeviceIO.PoisonedOutput(ctx, a.Shape);
            if (add) ElementwiseKernel.Add(ctx, ta.View, tb.View, y.View);
            else ElementwiseKernel.Mul(ctx, ta.View, tb.View, y.View);
            return DeviceIO.Download(ctx, y);
        }

        public override double[] RunReference()
        {
            var y = new double[a.Length];
            if (add) ReferenceOps.Add(a.Floats("a"), b.Floats("b"), y);
            else ReferenceOps.Mul(a.Floats("a"), b.Floats("b"), y);
            return y;
        }
    }
}
