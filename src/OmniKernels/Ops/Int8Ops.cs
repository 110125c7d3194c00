using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Ops;

/// <summary>Dynamic per-row symmetric int8 quantization; the scales go to a second file.</summary>
internal sealed class QuantizeOp : OpDefinition
{
    public override string Name => "quantize";
    public override string Summary => "q = round(x·127/max|x_row|) as int8 per row; --param scales_out=S.npy receives the float32 row scales";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } = [new("x", true, "float32 [M, K], finite")];
    public override IReadOnlyList<string> ParamNames { get; } = ["scales_out=FILE.npy"];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var x = inputs["x"];
        RequireRank(x, "x", 2);
        Int8Validation.RequireFinite(x.Floats("x"), "x");
        return new Bound(x, p.Text("scales_out", ""));
    }

    private sealed class Bound(HostTensor x, string scalesOut) : BoundOp
    {
        private float[]? _scales;

        public override long[] OutputShape => x.Shape;
        public override double Flops => 3.0 * x.Length;
        public override DType OutputType => DType.I8;

        public override IReadOnlyList<(string Path, float[] Data, long[] Shape)> SideOutputs =>
            scalesOut.Length > 0 && _scales is not null ? [(scalesOut, _scales, [x.Shape[0]])] : [];

        public override float[] RunDevice(DeviceContext ctx) => RunDeviceIntegers(ctx).Select(v => (float)v).ToArray();

        public override int[] RunDeviceIntegers(DeviceContext ctx)
        {
            using var tx = DeviceIO.Upload(ctx, x, "x");
            using var q = Tensor.Allocate(ctx, DType.I8, x.ToShape());
            using var s = Tensor.Allocate(ctx, DType.F32, new Shape(x.Shape[0]));
            Int8GemmKernel.QuantizeRows(ctx, tx.View, q.View, s.View);
            ctx.Synchronize();
            _scales = s.ToArray<float>();
            return q.ToArray<sbyte>().Select(v => (int)v).ToArray();
        }

        public override double[] RunReference()
        {
            var q = RunReferenceIntegers();
            return q.Select(v => (double)v).ToArray();
        }

        public override int[] RunReferenceIntegers()
        {
            var q = new int[x.Length];
            var scales = new double[x.Shape[0]];
            ReferenceOps.QuantizeRows(x.Floats("x"), (int)x.Shape[1], q, scales);
            _scales = scales.Select(v => (float)v).ToArray();
            return q;
        }
    }
}

/// <summary>
/// INT8 matmul against a Linear weight. fp32 activations with int8 weights [N, K] and their float32
/// scales [N] (output fp32); or, with raw=true, int8 activations × int8 weights → exact int32.
/// </summary>
internal sealed class MatMulInt8Op : OpDefinition
{
    public override string Name => "matmul-int8";
    public override string Summary => "y = dequant(quant(x)·wᵀ) + bias (fp32 out), w int8 [N,K] with scales [N]; raw=true: a int8 [M,K] · wᵀ → int32";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } =
    [
        new("x", false, "float32 [M, K] activations (not with raw=true)"),
        new("a", false, "int8 [M, K] activations (raw=true)"),
        new("w", true, "int8 [N, K] weights (PyTorch Linear layout)"),
        new("scales", false, "float32 [N] per-output-channel weight scales (not with raw=true)"),
        new("bias", false, "float32 [N]"),
    ];
    public override IReadOnlyList<string> ParamNames { get; } = ["raw=false", "activation=none"];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        bool raw = p.Bool("raw", false);
        var activation = MatMulOp.ParseActivation(p.Text("activation", "none"));
        var w = inputs["w"];
        RequireRank(w, "w", 2);
        var wq = Int8Validation.RequireInt8(w, "w");
        long n = w.Shape[0], k = w.Shape[1];
        if (raw)
        {
            if (!inputs.TryGetValue("a", out var a) || inputs.ContainsKey("x") || inputs.ContainsKey("scales") || inputs.ContainsKey("bias"))
                throw new OpInputException("matmul-int8 raw=true takes exactly a (int8) and w (int8)");
            RequireRank(a, "a", 2);
            if (a.Shape[1] != k) throw new OpInputException($"matmul-int8: a {a.ShapeText} has K = {a.Shape[1]}; w {w.ShapeText} has K = {k}");
            return new RawBound(Int8Validation.RequireInt8(a, "a"), wq, (int)a.Shape[0], (int)k, (int)n);
        }
        if (!inputs.TryGetValue("x", out var x) || !inputs.TryGetValue("scales", out var scales) || inputs.ContainsKey("a"))
            throw new OpInputException("matmul-int8 takes x (float32), w (int8) and scales (float32); or a and w with --param raw=true");
        RequireRank(x, "x", 2);
        if (x.Shape[1] != k) throw new OpInputException($"matmul-int8: x {x.ShapeText} has K = {x.Shape[1]}; w {w.ShapeText} has K = {k}");
        Int8Validation.RequireFinite(x.Floats("x"), "x");
        if (scales.Rank != 1 || scales.Shape[0] != n) throw new OpInputException($"matmul-int8: scales {scales.ShapeText} must be ({n},)");
        foreach (var s in scales.Floats("scales"))
            if (!(s >= 0) || !float.IsFinite(s)) throw new OpInputException($"matmul-int8: scales must be finite and non-negative, got {s}");
        inputs.TryGetValue("bias", out var bias);
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != n)) throw new OpInputException($"matmul-int8: bias {bias.ShapeText} must be ({n},)");
        bias?.Floats("bias");
        return new Bound(x, wq, scales, bias, activation, (int)x.Shape[0], (int)k, (int)n);
    }

    private sealed class Bound(HostTensor x, sbyte[] w, HostTensor scales, HostTensor? bias,
        (Activation Kernel, RefActivation Reference) activation, int m, int k, int n) : BoundOp
    {
        public override long[] OutputShape => [m, n];
        public override double Flops => 2.0 * m * n * k;

        public override float[] RunDevice(DeviceContext ctx)
        {
            const int align = GemmKernel.PanelWidth;
            using var weights = Int8Matrix.FromQuantized(ctx, w, scales.Floats("scales"), n, k);
            using var tx = DeviceIO.Upload(ctx, x, "x");
            using var q = Tensor.Allocate(ctx, DType.F32, new Shape(m, k));
            using var rowScales = Tensor.Allocate(ctx, DType.F32, new Shape(m));
            using var tb = bias is null ? null : DeviceIO.Upload(ctx, bias, "bias", align);
            using var y = DeviceIO.PoisonedOutput(ctx, OutputShape, align);
            Int8GemmKernel.QuantizeRows(ctx, tx.View, q.View, rowScales.View);
            Int8GemmKernel.Launch(ctx, q.View, rowScales.View, weights.View, y.View, new GemmParams(activation.Kernel), tb?.View);
            return DeviceIO.Download(ctx, y);
        }

        /// <summary>The float64 product with the dequantized weights and unquantized x: what the INT8 path approximates.</summary>
        public override double[] RunReference()
        {
            var s = scales.Floats("scales");
            var wf = new float[w.Length];
            for (int i = 0; i < w.Length; i++) wf[i] = w[i] * s[i / k];
            var y = new double[m * n];
            ReferenceOps.MatMul(x.Floats("x"), wf, 1, m, k, n, transposeB: true, bias?.Floats("bias") ?? default, activation.Reference, default, y);
            return y;
        }
    }

    private sealed class RawBound(sbyte[] a, sbyte[] w, int m, int k, int n) : BoundOp
    {
        public override long[] OutputShape => [m, n];
        public override double Flops => 2.0 * m * n * k;
        public override DType OutputType => DType.I32;

        public override float[] RunDevice(DeviceContext ctx) => RunDeviceIntegers(ctx).Select(v => (float)v).ToArray();

        public override int[] RunDeviceIntegers(DeviceContext ctx)
        {
            using var weights = Int8Matrix.FromQuantized(ctx, w, new float[n], n, k);
            using var ta = Tensor.FromHost<sbyte>(ctx, a, new Shape(m, k));
            using var y = Tensor.Allocate(ctx, DType.I32, new Shape(m, n), GemmKernel.PanelWidth);
            Int8GemmKernel.LaunchRaw(ctx, ta.View, weights.View, y.View);
            ctx.Synchronize();
            return y.ToArray<int>();
        }

        public override double[] RunReference() => RunReferenceIntegers().Select(v => (double)v).ToArray();

        public override int[] RunReferenceIntegers()
        {
            var y = new long[m * n];
            ReferenceOps.MatMulInt8(a, w, m, k, n, y);
            return y.Select(v => checked((int)v)).ToArray();
        }
    }
}

/// <summary>Input checks shared by the INT8 ops.</summary>
internal static class Int8Validation
{
    public static void RequireFinite(float[] x, string name)
    {
        for (int i = 0; i < x.Length; i++)
            if (!float.IsFinite(x[i])) throw new OpInputException($"input '{name}' holds {x[i]} at element {i}: int8 quantization needs finite values");
    }

    /// <summary>An int8 input (int-typed host data within −128..127), as sbyte.</summary>
    public static sbyte[] RequireInt8(HostTensor t, string name)
    {
        var v = t.Ints(name);
        var s = new sbyte[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] is < sbyte.MinValue or > sbyte.MaxValue) throw new OpInputException($"input '{name}' must be int8; element {i} is {v[i]}");
            s[i] = (sbyte)v[i];
        }
        return s;
    }
}
