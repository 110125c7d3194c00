using OmniKernels.Weights;

namespace OmniKernels.Reference;

/// <summary>A fusion's result: the fused vector and its gate values.</summary>
internal sealed record FusionOutput(double[] Fused, double[] Gates);

/// <summary>A fusion over the towers' outputs of one request.</summary>
internal abstract class ReferenceFusion
{
    /// <summary>Width of the fused vector (the classifier's input).</summary>
    public abstract int Width { get; }

    /// <summary>
    /// Fuses the present modalities: <paramref name="embeddings"/> are the L2-normalized ones,
    /// <paramref name="tokens"/> the token states of the towers that give them. Null when the fusion
    /// has none of its inputs.
    /// </summary>
    public abstract FusionOutput? Forward(IReadOnlyDictionary<string, double[]> embeddings, IReadOnlyDictionary<string, double[]> tokens);
}

/// <summary>
/// The design articles' gate over the modalities in the config's order: z = [ê_1; …; ê_M] with
/// absent blocks 0, g = σ(W z + b) with g_m := 0 for absent m, fused = Σ_m g_m ⊙ ê_m.
/// </summary>
internal sealed class GateFusion : ReferenceFusion
{
    private readonly string[] _order;
    private readonly LinearWeights _gate;
    private readonly int _e;

    public GateFusion(WeightScope fusion, IReadOnlyList<string> order, int projectionDim)
    {
        _order = [.. order];
        _e = projectionDim;
        int n = _order.Length * _e;
        _gate = LinearWeights.Load(fusion.Pp("gate"), n, n, bias: true);
    }

    public override int Width => _e;

    public override FusionOutput? Forward(IReadOnlyDictionary<string, double[]> embeddings, IReadOnlyDictionary<string, double[]> tokens)
    {
        int m = _order.Length, e = _e;
        var z = new double[m * e];
        for (int i = 0; i < m; i++)
            if (embeddings.TryGetValue(_order[i], out var emb)) emb.CopyTo(z, i * e);
        var g = _gate.Apply(z);
        var fused = new double[e];
        for (int i = 0; i < m; i++)
        {
            bool present = embeddings.ContainsKey(_order[i]);
            for (int j = 0; j < e; j++)
            {
                int k = i * e + j;
                g[k] = present ? 1 / (1 + Math.Exp(-g[k])) : 0;
                fused[j] += g[k] * z[k];
            }
        }
        return new FusionOutput(fused, g);
    }
}

/// <summary>
/// The seed article's AdaptiveCrossModalFusion (../shared/seeds/004) for one request, its gate's
/// softmax taken over the present modalities: v = vision_proj(image tokens), t = text_proj(text
/// tokens); with both, (w_v, w_t) = softmax(gate_net(cat(mean v, mean t))) and fused = w_v·mean(v) +
/// w_t·mean(MHA(q = t, k = v, v = v)); with one, its weight is 1 and fused is its mean projected
/// token (gate_net is not evaluated). Gates are (w_v, w_t).
/// </summary>
internal sealed class AdaptiveFusion : ReferenceFusion
{
    private readonly string _vision, _text;
    private readonly LinearWeights _vProj, _tProj, _gate0, _gate2, _q, _k, _v, _out;
    private readonly int _f, _heads;

    public AdaptiveFusion(WeightScope s, ConfigObject c, string vision, int visionWidth, string text, int textWidth)
    {
        _vision = vision;
        _text = text;
        _f = c.Int("fusion_dim");
        _heads = c.Int("num_heads");
        if (_f % _heads != 0) throw c.Error("fusion_dim", $"{_f} is not a multiple of num_heads {_heads}");
        int f = _f;
        _vProj = LinearWeights.Load(s.Pp("vision_proj"), f, visionWidth, bias: true);
        _tProj = LinearWeights.Load(s.Pp("text_proj"), f, textWidth, bias: true);
        _gate0 = LinearWeights.Load(s.Pp("gate_net.0"), f, 2 * f, bias: true);
        _gate2 = LinearWeights.Load(s.Pp("gate_net.2"), 2, f, bias: true);
        // nn.MultiheadAttention stacks the q, k and v projections in in_proj_weight [3F, F] / in_proj_bias [3F].
        var attn = s.Pp("cross_attn");
        var w = attn.GetFloat32([3 * f, f], "in_proj_weight");
        var b = attn.GetFloat32([3 * f], "in_proj_bias");
        LinearWeights Part(int i) => new(w[(i * f * f)..((i + 1) * f * f)], b[(i * f)..((i + 1) * f)], f, f);
        (_q, _k, _v) = (Part(0), Part(1), Part(2));
        _out = LinearWeights.Load(attn.Pp("out_proj"), f, f, bias: true);
    }

    public override int Width => _f;

    public override FusionOutput? Forward(IReadOnlyDictionary<string, double[]> embeddings, IReadOnlyDictionary<string, double[]> tokens)
    {
        int f = _f;
        var v = tokens.TryGetValue(_vision, out var vt) ? _vProj.Apply(vt) : null;
        var t = tokens.TryGetValue(_text, out var tt) ? _tProj.Apply(tt) : null;
        if (v is null && t is null) return null;
        if (v is null || t is null)
        {
            var only = v ?? t!;
            return new FusionOutput(ModelMath.MeanRows(only, f, only.Length / f), v is null ? [0, 1] : [1, 0]);
        }
        var vMean = ModelMath.MeanRows(v, f, v.Length / f);
        var h = _gate0.Apply([.. vMean, .. ModelMath.MeanRows(t, f, t.Length / f)]);
        ModelMath.Activate(h, RefActivation.Relu);
        var weights = ModelMath.Softmax(_gate2.Apply(h));
        var attn = _out.Apply(ModelMath.Attention(_q.Apply(t), _k.Apply(v), _v.Apply(v), _heads, f / _heads, causal: false));
        var aMean = ModelMath.MeanRows(attn, f, attn.Length / f);
        var fused = new double[f];
        for (int i = 0; i < f; i++) fused[i] = weights[0] * vMean[i] + weights[1] * aMean[i];
        return new FusionOutput(fused, weights);
    }
}
