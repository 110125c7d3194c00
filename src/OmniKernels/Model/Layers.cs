using OmniKernels.Graph;
using OmniKernels.Kernels;
using OmniKernels.Weights;

namespace OmniKernels.Model;

/// <summary>What a model's modules need at load: the device, fp32 or INT8 Linear layers, and the weights' source.</summary>
internal sealed record LoadContext(DeviceContext Device, bool Int8, OmniKernels.Weights.WeightStore Store)
{
    /// <summary>A Linear's weight [rows, cols] as float: read, or dequantized from an INT8 checkpoint's weight and weight_scale.</summary>
    public float[] Matrix(WeightScope linear, int rows, int cols)
    {
        if (!Int8Checkpoint.IsQuantizedLinear(linear)) return linear.GetFloat32([rows, cols], "weight");
        var l = Int8Checkpoint.ReadLinear(linear, rows, cols);
        var w = new float[(long)rows * cols];
        Int8Checkpoint.Dequantize(l.Weight, l.Scales, rows, cols, w);
        return w;
    }

    /// <summary>Uploads a float tensor read (shape-checked) from the store, rows padded to 16 for the GEMM's epilogue reads.</summary>
    public Tensor Upload(WeightScope scope, string name, params long[] shape)
    {
        var data = scope.GetFloat32(shape, name);
        var t = Tensor.Allocate(Device, DType.F32, new Shape(shape.Length == 0 ? [1] : shape), GemmKernel.PanelWidth);
        try
        {
            t.CopyFromHost<float>(data);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }
}

/// <summary>Device tensors a module owns; disposed together, also when a load fails half way.</summary>
internal sealed class Owned : IDisposable
{
    private readonly List<IDisposable> _items = [];

    public T Add<T>(T item) where T : IDisposable
    {
        _items.Add(item);
        return item;
    }

    public void Dispose()
    {
        for (int i = _items.Count - 1; i >= 0; i--) _items[i].Dispose();
        _items.Clear();
    }
}

/// <summary>
/// A PyTorch Linear ([out, in] weight, optional bias): packed fp32 panels, or INT8 per-channel
/// weights (quantized at load, or read from a compressed-tensors checkpoint) with activations
/// quantized per row at run time.
/// </summary>
internal sealed class Linear
{
    private readonly PackedMatrix? _fp32;
    private readonly Int8Matrix? _int8;
    private readonly Tensor? _bias;

    private Linear(PackedMatrix? fp32, Int8Matrix? int8, Tensor? bias, int inFeatures, int outFeatures)
    {
        _fp32 = fp32;
        _int8 = int8;
        _bias = bias;
        In = inFeatures;
        Out = outFeatures;
    }

    public int In { get; }

    public int Out { get; }

    /// <summary>Loads NAME.weight [out, in] (and NAME.bias [out]); the weights may come as several row blocks (q, k, v) stacked.</summary>
    public static Linear Load(LoadContext lc, Owned owned, int inFeatures, params (WeightScope Scope, int Out, bool Bias)[] blocks)
    {
        int outFeatures = blocks.Sum(b => b.Out);
        var w = new float[(long)outFeatures * inFeatures];
        var bias = blocks.Any(b => b.Bias) ? new float[outFeatures] : null;
        int row = 0;
        // An INT8 checkpoint's Linear is used as stored; a mix of quantized and float blocks is read as float.
        bool allInt8 = blocks.All(b => Int8Checkpoint.IsQuantizedLinear(b.Scope));
        sbyte[]? q = allInt8 ? new sbyte[w.Length] : null;
        float[]? scales = allInt8 ? new float[outFeatures] : null;
        foreach (var (scope, o, hasBias) in blocks)
        {
            if (allInt8)
            {
                var l = Int8Checkpoint.ReadLinear(scope, o, inFeatures);
                l.Weight.CopyTo(q.AsSpan(row * inFeatures));
                l.Scales.CopyTo(scales.AsSpan(row));
            }
            else lc.Matrix(scope, o, inFeatures).CopyTo(w.AsSpan(row * inFeatures));
            if (hasBias) scope.GetFloat32([o], "bias").CopyTo(bias.AsSpan(row));
            row += o;
        }
        if (allInt8)
        {
            var ctx = lc.Device;
            Tensor? b8 = bias is null ? null : owned.Add(Tensor.FromHost<float>(ctx, bias, new Shape(outFeatures), GemmKernel.PanelWidth));
            return new Linear(null, owned.Add(Int8Matrix.FromQuantized(ctx, q, scales, outFeatures, inFeatures)), b8, inFeatures, outFeatures);
        }
        return FromHost(lc, owned, w, bias, inFeatures, outFeatures);
    }

    /// <summary>A Linear from host weights [out, in] (and bias [out]): packed fp32, or quantized when the load asks for INT8.</summary>
    public static Linear FromHost(LoadContext lc, Owned owned, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int inFeatures, int outFeatures)
    {
        var ctx = lc.Device;
        Tensor? biasT = bias.IsEmpty ? null : owned.Add(Tensor.FromHost(ctx, bias, new Shape(outFeatures), GemmKernel.PanelWidth));
        if (lc.Int8)
            return new Linear(null, owned.Add(Int8Matrix.QuantizeWeights(ctx, weight, outFeatures, inFeatures)), biasT, inFeatures, outFeatures);
        using var t = Tensor.FromHost(ctx, weight, new Shape(outFeatures, inFeatures));
        var packed = owned.Add(PackedMatrix.Pack(ctx, t.View, transposed: true));
        ctx.Synchronize();
        return new Linear(packed, null, biasT, inFeatures, outFeatures);
    }

    /// <summary>Records y = act(x·Wᵀ + b) (+ residual) as a new value [rows..., Out]; x's rows must be contiguous.</summary>
    public ValueId Record(GraphBuilder g, string node, ValueId x, Activation act = Activation.None, ValueId? residual = null)
    {
        var xs = g.ShapeOf(x);
        var outShape = xs.Rank == 3 ? new Shape(xs[0], xs[1], Out) : new Shape(xs[0], Out);
        var y = g.Temp(node + ".out", outShape);
        var p = new GemmParams(act);
        var bias = _bias?.View;
        if (_fp32 is { } f)
        {
            var w = f.View;
            g.Node(node, 1, residual is { } r0 ? [x, r0] : [x], [y], v =>
                GemmKernel.Launch(v.Device, v[x], w, v[y], p, bias, residual is { } r ? v[r] : null));
            return y;
        }
        long rows = xs.LeadingProduct;
        var q = g.Temp(node + ".q", new Shape(rows, In), 1, DType.I8);
        var s = g.Temp(node + ".scales", new Shape(rows), 1);
        var wi = _int8!.View;
        g.Node(node, 2, residual is { } r1 ? [x, r1] : [x], [q, s, y], v =>
        {
            Int8GemmKernel.QuantizeRows(v.Device, Flat(v[x]), v[q], v[s]);
            Int8GemmKernel.Launch(v.Device, v[q], v[s], wi, Flat(v[y]), p, bias, residual is { } r ? Flat(v[r]) : null);
        });
        return y;
    }

    /// <summary>[B, S, D] with collapsing strides seen as [B·S, D].</summary>
    internal static TensorView Flat(in TensorView t) => t.Shape.Rank == 2 ? t :
        new TensorView(t.Storage, t.DType, new Shape(t.Shape.LeadingProduct, t.Shape[-1]), new Shape(t.Strides[-2], 1), t.Offset);
}

/// <summary>A LayerNorm's γ and β.</summary>
internal sealed class LayerNormWeights(Tensor gamma, Tensor beta, float eps)
{
    public static LayerNormWeights Load(LoadContext lc, Owned owned, WeightScope s, int width, float eps) =>
        new(owned.Add(lc.Upload(s, "weight", width)), owned.Add(lc.Upload(s, "bias", width)), eps);

    /// <summary>Records y = LayerNorm(x) as a new value of x's shape.</summary>
    public ValueId Record(GraphBuilder g, string node, ValueId x)
    {
        var y = g.Temp(node + ".out", g.ShapeOf(x));
        var (gv, bv, e) = (gamma.View, beta.View, eps);
        g.Node(node, 1, [x], [y], v => NormalizationKernel.LayerNorm(v.Device, v[x], gv, bv, v[y], e));
        return y;
    }
}
