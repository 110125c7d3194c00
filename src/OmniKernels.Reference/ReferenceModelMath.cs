using OmniKernels.Weights;

namespace OmniKernels.Reference;

/// <summary>
/// The whole-model reference's building blocks over double activations: ReferenceOps takes float
/// inputs, but a forward that stays in double has to feed each op the previous op's double output.
/// Plain loops accumulating in double; rows are dense and row-major.
/// </summary>
internal static class ModelMath
{
    /// <summary>y[r, o] = b[o] + Σ_i x[r, i]·w[o, i] (a PyTorch Linear, weight [out, in]).</summary>
    public static double[] Linear(ReadOnlySpan<double> x, int inputs, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int outputs)
    {
        int rows = x.Length / inputs;
        var y = new double[rows * outputs];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outputs; o++)
            {
                double s = bias.IsEmpty ? 0 : bias[o];
                for (int i = 0; i < inputs; i++) s += x[r * inputs + i] * weight[o * inputs + i];
                y[r * outputs + o] = s;
            }
        return y;
    }

    /// <summary>Per row: (x − mean)/√(var + eps)·γ + β with the biased variance, as nn.LayerNorm.</summary>
    public static double[] LayerNorm(ReadOnlySpan<double> x, int cols, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / cols; r++)
        {
            var row = x.Slice(r * cols, cols);
            double mean = 0, var = 0;
            foreach (double v in row) mean += v;
            mean /= cols;
            foreach (double v in row) var += (v - mean) * (v - mean);
            double inv = 1 / Math.Sqrt(var / cols + eps);
            for (int c = 0; c < cols; c++) y[r * cols + c] = (row[c] - mean) * inv * gamma[c] + beta[c];
        }
        return y;
    }

    /// <summary>
    /// Multi-head scaled dot-product attention with q [Sq, H·D], k and v [Sk, H·D] (head h = columns
    /// h·D … h·D + D − 1, as PyTorch's view(S, H, D)): out = softmax(q·kᵀ/√D)·v per head; when causal,
    /// query i sees keys 0 … i only.
    /// </summary>
    public static double[] Attention(ReadOnlySpan<double> q, ReadOnlySpan<double> k, ReadOnlySpan<double> v, int heads, int headDim, bool causal)
    {
        int width = heads * headDim, sq = q.Length / width, sk = k.Length / width;
        double scale = 1 / Math.Sqrt(headDim);
        var o = new double[q.Length];
        var p = new double[sk];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < sq; i++)
            {
                int visible = causal ? Math.Min(i + 1, sk) : sk;
                double max = double.NegativeInfinity;
                for (int j = 0; j < visible; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) dot += q[i * width + h * headDim + d] * k[j * width + h * headDim + d];
                    p[j] = dot * scale;
                    max = Math.Max(max, p[j]);
                }
                double sum = 0;
                for (int j = 0; j < visible; j++) sum += p[j] = Math.Exp(p[j] - max);
                for (int d = 0; d < headDim; d++)
                {
                    double s = 0;
                    for (int j = 0; j < visible; j++) s += p[j] * v[j * width + h * headDim + d];
                    o[i * width + h * headDim + d] = s / sum;
                }
            }
        return o;
    }

    /// <summary>x = act(x), elementwise, in place.</summary>
    public static void Activate(Span<double> x, RefActivation activation)
    {
        for (int i = 0; i < x.Length; i++) x[i] = ReferenceOps.Activate(activation, x[i]);
    }

    /// <summary>x += y, elementwise, in place.</summary>
    public static void AddInto(Span<double> x, ReadOnlySpan<double> y)
    {
        for (int i = 0; i < x.Length; i++) x[i] += y[i];
    }

    /// <summary>The mean of the first <paramref name="rows"/> rows of x [·, cols].</summary>
    public static double[] MeanRows(ReadOnlySpan<double> x, int cols, int rows)
    {
        var m = new double[cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) m[c] += x[r * cols + c];
        for (int c = 0; c < cols; c++) m[c] /= rows;
        return m;
    }

    /// <summary>x / ‖x‖₂ (F.normalize without its epsilon: a zero vector is an error).</summary>
    public static double[] L2Normalize(ReadOnlySpan<double> x)
    {
        double n = Math.Sqrt(Dot(x, x));
        if (n == 0) throw new InvalidOperationException("cannot L2-normalize a zero vector");
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = x[i] / n;
        return y;
    }

    /// <summary>Σ a[i]·b[i].</summary>
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>softmax(x) over the whole vector.</summary>
    public static double[] Softmax(ReadOnlySpan<double> x)
    {
        double max = double.NegativeInfinity;
        foreach (double v in x) max = Math.Max(max, v);
        var y = new double[x.Length];
        double sum = 0;
        for (int i = 0; i < x.Length; i++) sum += y[i] = Math.Exp(x[i] - max);
        for (int i = 0; i < x.Length; i++) y[i] /= sum;
        return y;
    }
}

/// <summary>A Linear's weight [Out, In] and optional bias [Out], as float32 from the checkpoint.</summary>
internal sealed record LinearWeights(float[] Weight, float[]? Bias, int In, int Out)
{
    public static LinearWeights Load(WeightScope s, int outputs, int inputs, bool bias) =>
        new(s.GetFloat32([outputs, inputs], "weight"), bias ? s.GetFloat32([outputs], "bias") : null, inputs, outputs);

    public double[] Apply(ReadOnlySpan<double> x) => ModelMath.Linear(x, In, Weight, Bias, Out);
}

/// <summary>An nn.LayerNorm's γ, β and ε.</summary>
internal sealed record LayerNormWeights(float[] Gamma, float[] Beta, double Eps)
{
    public static LayerNormWeights Load(WeightScope s, int width, double eps) =>
        new(s.GetFloat32([width], "weight"), s.GetFloat32([width], "bias"), eps);

    public double[] Apply(ReadOnlySpan<double> x) => ModelMath.LayerNorm(x, Gamma.Length, Gamma, Beta, Eps);
}

/// <summary>The transformer sizes a tower's config gives.</summary>
internal readonly record struct EncoderSizes(int Width, int Inner, int Heads, int Layers, RefActivation Activation, double Eps);

/// <summary>
/// One pre-LN transformer layer, CLIPEncoderLayer or WhisperEncoderLayer (the same math; Whisper
/// names its norms self_attn_layer_norm and final_layer_norm, keeps fc1/fc2 at the layer's top and
/// has no k_proj bias): x += out(attn(ln1(x))); x += fc2(act(fc1(ln2(x)))).
/// https://github.com/huggingface/transformers/blob/679021a6b0ded09d623a96e2bd2f822c5a548872/src/transformers/models/clip/modeling_clip.py
/// https://github.com/huggingface/transformers/blob/5c48f71a682fa7bbcbde1be5d2a2ac16cc654210/src/transformers/models/whisper/modeling_whisper.py
/// </summary>
internal sealed class EncoderLayerWeights
{
    private readonly LayerNormWeights _ln1, _ln2;
    private readonly LinearWeights _q, _k, _v, _out, _fc1, _fc2;
    private readonly EncoderSizes _sizes;

    private EncoderLayerWeights(WeightScope s, EncoderSizes sizes, bool whisper)
    {
        _sizes = sizes;
        int w = sizes.Width;
        if (w % sizes.Heads != 0) throw new InvalidDataException($"{s}: width {w} is not a multiple of {sizes.Heads} heads");
        var attn = s.Pp("self_attn");
        _q = LinearWeights.Load(attn.Pp("q_proj"), w, w, true);
        _k = LinearWeights.Load(attn.Pp("k_proj"), w, w, !whisper);
        _v = LinearWeights.Load(attn.Pp("v_proj"), w, w, true);
        _out = LinearWeights.Load(attn.Pp("out_proj"), w, w, true);
        _ln1 = LayerNormWeights.Load(s.Pp(whisper ? "self_attn_layer_norm" : "layer_norm1"), w, sizes.Eps);
        _ln2 = LayerNormWeights.Load(s.Pp(whisper ? "final_layer_norm" : "layer_norm2"), w, sizes.Eps);
        var mlp = whisper ? s : s.Pp("mlp");
        _fc1 = LinearWeights.Load(mlp.Pp("fc1"), sizes.Inner, w, true);
        _fc2 = LinearWeights.Load(mlp.Pp("fc2"), w, sizes.Inner, true);
    }

    /// <summary>The <c>layers.{i}</c> of a tower, i = 0 … Layers − 1.</summary>
    public static EncoderLayerWeights[] LoadAll(WeightScope layers, EncoderSizes sizes, bool whisper) =>
        Enumerable.Range(0, sizes.Layers).Select(i => new EncoderLayerWeights(layers.Pp(i.ToString()), sizes, whisper)).ToArray();

    /// <summary>All layers over x [S, W], returning the new states.</summary>
    public static double[] Run(EncoderLayerWeights[] layers, double[] x, bool causal)
    {
        foreach (var layer in layers) x = layer.Forward(x, causal);
        return x;
    }

    private double[] Forward(double[] x, bool causal)
    {
        var h = _ln1.Apply(x);
        var a = ModelMath.Attention(_q.Apply(h), _k.Apply(h), _v.Apply(h), _sizes.Heads, _sizes.Width / _sizes.Heads, causal);
        var y = (double[])x.Clone();
        ModelMath.AddInto(y, _out.Apply(a));
        var f = _fc1.Apply(_ln2.Apply(y));
        ModelMath.Activate(f, _sizes.Activation);
        ModelMath.AddInto(y, _fc2.Apply(f));
        return y;
    }
}
