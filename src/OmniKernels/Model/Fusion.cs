using OmniKernels.Graph;
using OmniKernels.Kernels;
using OmniKernels.Weights;

namespace OmniKernels.Model;

/// <summary>What a fusion's plan reads and writes, for one modality set and batch.</summary>
internal sealed record FusionGraph(ValueId[] Inputs, ValueId Fused, ValueId Gates);

/// <summary>A fusion module: which towers it reads, the width of what it writes, and how it records.</summary>
internal abstract class Fusion : IDisposable
{
    protected readonly Owned Owned = new();

    /// <summary>The modalities the fusion takes, in its block order.</summary>
    public abstract IReadOnlyList<Modality> Inputs { get; }

    /// <summary>Width of the fused vector.</summary>
    public abstract int Width { get; }

    /// <summary>Gate values per row: one per input element (sigmoid gate) or per modality (softmax gate).</summary>
    public abstract int GateWidth { get; }

    /// <summary>True when the fusion reads token states rather than pooled embeddings.</summary>
    public abstract bool ReadsTokens { get; }

    /// <summary>Records the fusion of the present inputs (bit i = Inputs[i]) for a batch.</summary>
    public abstract FusionGraph Record(GraphBuilder g, uint present, int batch, IReadOnlyDictionary<Modality, Shape> tokenShapes);

    public void Dispose() => Owned.Dispose();
}

/// <summary>
/// The design articles' gate: g = σ(W_g·[ê_1; …; ê_M] + b_g), fused = Σ g_m ⊙ ê_m over the present
/// modalities, absent blocks neither read nor multiplied (one launch of the gated-fusion kernel).
/// </summary>
internal sealed class GateFusion : Fusion
{
    private readonly GatedFusionWeights _weights;
    private readonly Modality[] _inputs;

    public GateFusion(LoadContext lc, WeightScope s, IReadOnlyList<Modality> modalities, int e)
    {
        _inputs = [.. modalities];
        Width = e;
        int n = modalities.Count * e;
        try
        {
            var gate = s.Pp("gate");
            var w = lc.Matrix(gate, n, n);
            var b = gate.GetFloat32([n], "bias");
            _weights = Owned.Add(GatedFusionWeights.Create(lc.Device, FusionGate.Sigmoid, modalities.Count, n, w, b,
                lc.Int8 ? FusionWeightFormat.Int8 : FusionWeightFormat.Fp32));
        }
        catch
        {
            Owned.Dispose();
            throw;
        }
    }

    public override IReadOnlyList<Modality> Inputs => _inputs;

    public override int Width { get; }

    public override int GateWidth => _inputs.Length * Width;

    public override bool ReadsTokens => false;

    public override FusionGraph Record(GraphBuilder g, uint present, int batch, IReadOnlyDictionary<Modality, Shape> tokenShapes)
    {
        var z = g.Input("fusion.z", DType.F32, new Shape(batch, GateWidth));
        var fused = g.Temp("fusion.fused", new Shape(batch, Width));
        var gates = g.Temp("fusion.gates", new Shape(batch, GateWidth));
        var (w, p) = (_weights.View, new GatedFusionParams(present));
        g.Node("fusion.gate", 1, [z], [fused, gates], v => GatedFusionKernel.LaunchSigmoid(v.Device, w, v[z], v[fused], v[gates], p));
        return new FusionGraph([z], fused, gates);
    }
}

/// <summary>
/// The seed article's AdaptiveCrossModalFusion (../shared/seeds/004): image and text token states
/// projected to F, a gate net (Linear → ReLU → Linear) whose softmax runs over the present modalities,
/// text queries attending over image tokens; fused = w_v·mean(v) + w_t·mean(attn). With one of the
/// two absent, fused is the present one's mean projected token and its weight is 1.
/// </summary>
internal sealed class AdaptiveCrossAttentionFusion : Fusion
{
    private readonly Linear _vision, _text, _gate0, _q, _kv, _out;
    private readonly GatedFusionWeights _gate2;
    private readonly Tensor _oneHot;
    private readonly Modality[] _inputs;
    private readonly int _heads;

    public AdaptiveCrossAttentionFusion(LoadContext lc, WeightScope s, ConfigNode c, int visionWidth, int textWidth)
    {
        Width = c.Int("fusion_dim");
        _heads = c.Int("num_heads");
        if (Width % _heads != 0) throw c.Error("fusion_dim", $"{Width} is not a multiple of num_heads {_heads}");
        _inputs = [Modality.Image, Modality.Text];
        int f = Width;
        try
        {
            _vision = Linear.Load(lc, Owned, visionWidth, (s.Pp("vision_proj"), f, true));
            _text = Linear.Load(lc, Owned, textWidth, (s.Pp("text_proj"), f, true));
            _gate0 = Linear.Load(lc, Owned, 2 * f, (s.Pp("gate_net.0"), f, true));
            var g2 = s.Pp("gate_net.2");
            _gate2 = Owned.Add(GatedFusionWeights.Create(lc.Device, FusionGate.Softmax, 2, f, lc.Matrix(g2, 2, f),
                g2.GetFloat32([2], "bias"), lc.Int8 ? FusionWeightFormat.Int8 : FusionWeightFormat.Fp32));
            // nn.MultiheadAttention keeps Q, K, V stacked in in_proj_weight [3F, F]; split it into the
            // query projection (over text) and the key/value projection (over image tokens).
            var attn = s.Pp("cross_attn");
            var inW = attn.GetFloat32([3 * f, f], "in_proj_weight");
            var inB = attn.GetFloat32([3 * f], "in_proj_bias");
            _q = Linear.FromHost(lc, Owned, inW.AsSpan(0, f * f), inB.AsSpan(0, f), f, f);
            _kv = Linear.FromHost(lc, Owned, inW.AsSpan(f * f), inB.AsSpan(f), f, 2 * f);
            _out = Linear.Load(lc, Owned, f, (attn.Pp("out_proj"), f, true));
            // The gate weights of a lone present modality: row m of the identity.
            _oneHot = Owned.Add(Tensor.FromHost<float>(lc.Device, [1f, 0f, 0f, 1f], new Shape(2, 2)));
        }
        catch
        {
            Owned.Dispose();
            throw;
        }
    }

    public override IReadOnlyList<Modality> Inputs => _inputs;

    public override int Width { get; }

    public override int GateWidth => 2;

    public override bool ReadsTokens => true;

    public override FusionGraph Record(GraphBuilder g, uint present, int batch, IReadOnlyDictionary<Modality, Shape> tokenShapes)
    {
        int f = Width;
        var inputs = new List<ValueId>();
        ValueId? vProj = null, tProj = null, tCount = null;
        var cat = g.Temp("fusion.gate_input", new Shape(batch, 2 * f));
        if ((present & 1) != 0)
        {
            var v = g.Input("fusion.image_tokens", DType.F32, tokenShapes[Modality.Image]);
            inputs.Add(v);
            vProj = _vision.Record(g, "fusion.vision_proj", v);
            MeanInto(g, "fusion.vision_mean", vProj.Value, null, cat, 0, batch);
        }
        if ((present & 2) != 0)
        {
            var t = g.Input("fusion.text_tokens", DType.F32, tokenShapes[Modality.Text]);
            tCount = g.Input("fusion.text_count", DType.I32, new Shape(batch));
            inputs.Add(t);
            inputs.Add(tCount.Value);
            tProj = _text.Record(g, "fusion.text_proj", t);
            MeanInto(g, "fusion.text_mean", tProj.Value, tCount, cat, f, batch);
        }
        if (present != 3)
        {
            // One modality: its mean projected token, weight 1 (the gate's softmax over one entry).
            var fusedOne = g.Temp("fusion.fused", new Shape(batch, f));
            var gw = g.Temp("fusion.gates", new Shape(batch, 2), 1);
            int first = present == 1 ? 0 : f, one = present == 1 ? 0 : 1;
            var hot = _oneHot.View;
            g.Node("fusion.single", 2, [cat], [fusedOne, gw], v =>
            {
                var c = v[cat];
                ElementwiseKernel.Activate<NoActivation>(v.Device, new TensorView(c.Storage, c.DType, new Shape(batch, f), c.Strides, c.Offset + first), v[fusedOne]);
                ElementwiseKernel.Activate<NoActivation>(v.Device, new TensorView(hot.Storage, hot.DType, new Shape(batch, 2), new Shape(0, 1), hot.Offset + 2 * one), v[gw]);
            });
            return new FusionGraph([.. inputs], fusedOne, gw);
        }
        var h = _gate0.Record(g, "fusion.gate_net.0", cat, Activation.Relu);
        // Cross-attention: text queries over image keys and values, then the mean over real text tokens.
        var q = _q.Record(g, "fusion.cross_attn.q", tProj!.Value);
        var kv = _kv.Record(g, "fusion.cross_attn.kv", vProj!.Value);
        var ts = g.ShapeOf(q);
        var attn = g.Temp("fusion.cross_attn.out", ts);
        var scratch = g.Temp("fusion.cross_attn.scratch", new Shape(AttentionKernel.ScratchElements(batch, _heads, ts[1], f / _heads)), 1);
        int heads = _heads;
        g.Node("fusion.cross_attn", 1, [q, kv], [attn, scratch], v => AttentionKernel.Launch(v.Device,
            EncoderLayer.Heads4(v[q], 0, f, heads), EncoderLayer.Heads4(v[kv], 0, f, heads), EncoderLayer.Heads4(v[kv], f, f, heads),
            EncoderLayer.Heads4(v[attn], 0, f, heads), AttentionLayout.Bshd, default, null, v[scratch]));
        var o = _out.Record(g, "fusion.cross_attn.out_proj", attn);
        var candidates = g.Temp("fusion.candidates", new Shape(batch, 2 * f));
        g.Node("fusion.candidates", 2, [cat, o, tCount!.Value], [candidates], v =>
        {
            var c = v[cat];
            var x = v[candidates];
            ElementwiseKernel.Activate<NoActivation>(v.Device, new TensorView(c.Storage, c.DType, new Shape(batch, f), c.Strides, c.Offset),
                new TensorView(x.Storage, x.DType, new Shape(batch, f), x.Strides, x.Offset));
            PoolingKernel.Mean(v.Device, v[o], new TensorView(x.Storage, x.DType, new Shape(batch, f), x.Strides, x.Offset + f), v[tCount.Value]);
        });
        var fused = g.Temp("fusion.fused", new Shape(batch, f));
        var gates = g.Temp("fusion.gates", new Shape(batch, 2), 1);
        var (w2, p) = (_gate2.View, new GatedFusionParams(present));
        g.Node("fusion.gate", 1, [h, candidates], [fused, gates], v => GatedFusionKernel.LaunchSoftmax(v.Device, w2, v[h], v[candidates], v[fused], v[gates], p));
        return new FusionGraph([.. inputs], fused, gates);
    }

    /// <summary>Mean of tokens [B, S, F] (over counts when given) into columns [first, first + F) of a [B, 2F] value.</summary>
    private static void MeanInto(GraphBuilder g, string name, ValueId tokens, ValueId? counts, ValueId target, int first, int batch)
    {
        int f = (int)g.ShapeOf(tokens)[2];
        g.Node(name, 1, counts is { } c0 ? [tokens, c0] : [tokens], [target], v =>
        {
            var t = v[target];
            PoolingKernel.Mean(v.Device, v[tokens], new TensorView(t.Storage, t.DType, new Shape(batch, f), t.Strides, t.Offset + first),
                counts is { } c ? v[c] : null);
        });
    }
}
