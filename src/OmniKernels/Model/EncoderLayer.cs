using OmniKernels.Graph;
using OmniKernels.Kernels;
using OmniKernels.Weights;

namespace OmniKernels.Model;

/// <summary>The tensor names of a pre-LN transformer layer, which CLIP and Whisper spell differently.</summary>
internal sealed record LayerNames(string Norm1, string Norm2, string Fc1, string Fc2, bool KeyBias)
{
    /// <summary>HF CLIPEncoderLayer: layer_norm1, self_attn, layer_norm2, mlp.fc1, mlp.fc2.</summary>
    public static LayerNames Clip { get; } = new("layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2", KeyBias: true);

    /// <summary>HF WhisperEncoderLayer: self_attn_layer_norm, self_attn (k_proj without bias), final_layer_norm, fc1, fc2.</summary>
    public static LayerNames Whisper { get; } = new("self_attn_layer_norm", "final_layer_norm", "fc1", "fc2", KeyBias: false);
}

/// <summary>Sizes of a transformer stack.</summary>
internal sealed record EncoderDims(int Width, int Intermediate, int Heads, int Layers, Activation Activation, float Eps)
{
    public int HeadDim => Width / Heads;
}

/// <summary>
/// One pre-LN transformer layer, as HF's CLIPEncoderLayer and WhisperEncoderLayer compute it:
/// x += out_proj(attn(ln1(x))); x += fc2(act(fc1(ln2(x)))). Q, K and V are one fused GEMM over the
/// three weights stacked at load; attention is the fused kernel reading Q, K, V in place.
/// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/clip/modeling_clip.py#L592
/// </summary>
internal sealed class EncoderLayer
{
    private readonly LayerNormWeights _ln1, _ln2;
    private readonly Linear _qkv, _out, _fc1, _fc2;
    private readonly EncoderDims _d;

    private EncoderLayer(EncoderDims d, LayerNormWeights ln1, Linear qkv, Linear @out, LayerNormWeights ln2, Linear fc1, Linear fc2)
    {
        (_d, _ln1, _qkv, _out, _ln2, _fc1, _fc2) = (d, ln1, qkv, @out, ln2, fc1, fc2);
    }

    public static EncoderLayer Load(LoadContext lc, Owned owned, WeightScope s, EncoderDims d, LayerNames n)
    {
        if (d.Width % d.Heads != 0) throw new ArgumentException($"{s.Prefix}: hidden size {d.Width} is not a multiple of {d.Heads} heads");
        var attn = s.Pp("self_attn");
        int w = d.Width;
        return new EncoderLayer(d,
            LayerNormWeights.Load(lc, owned, s.Pp(n.Norm1), w, d.Eps),
            Linear.Load(lc, owned, w, (attn.Pp("q_proj"), w, true), (attn.Pp("k_proj"), w, n.KeyBias), (attn.Pp("v_proj"), w, true)),
            Linear.Load(lc, owned, w, (attn.Pp("out_proj"), w, true)),
            LayerNormWeights.Load(lc, owned, s.Pp(n.Norm2), w, d.Eps),
            Linear.Load(lc, owned, w, (s.Pp(n.Fc1), d.Intermediate, true)),
            Linear.Load(lc, owned, d.Intermediate, (s.Pp(n.Fc2), w, true)));
    }

    /// <summary>Records the layer over x [B, S, W]; <paramref name="lengths"/> (I32 [B]) hides padded keys.</summary>
    public ValueId Record(GraphBuilder g, string name, ValueId x, bool causal, ValueId? lengths)
    {
        var shape = g.ShapeOf(x);
        long b = shape[0], s = shape[1];
        var h = _ln1.Record(g, name + ".ln1", x);
        var qkv = _qkv.Record(g, name + ".qkv", h);
        var attn = g.Temp(name + ".attn.out", shape);
        var scratch = g.Temp(name + ".attn.scratch", new Shape(AttentionKernel.ScratchElements(b, _d.Heads, s, _d.HeadDim)), 1);
        var p = new AttentionParams(Causal: causal);
        int w = _d.Width, heads = _d.Heads;
        g.Node(name + ".attn", 1, lengths is { } l0 ? [qkv, l0] : [qkv], [attn, scratch], v =>
        {
            var packed = v[qkv];
            AttentionKernel.Launch(v.Device, Heads4(packed, 0, w, heads), Heads4(packed, w, w, heads), Heads4(packed, 2 * w, w, heads),
                Heads4(v[attn], 0, w, heads), AttentionLayout.Bshd, p, lengths is { } l ? v[l] : null, v[scratch]);
        });
        var x1 = _out.Record(g, name + ".out_proj", attn, residual: x);
        var h2 = _ln2.Record(g, name + ".ln2", x1);
        var f = _fc1.Record(g, name + ".fc1", h2, _d.Activation);
        return _fc2.Record(g, name + ".fc2", f, residual: x1);
    }

    /// <summary>Columns [first, first + width) of a [B, S, *] tensor seen as [B, S, H, width / H].</summary>
    internal static TensorView Heads4(in TensorView t, long first, int width, int heads) =>
        new(t.Storage, t.DType, new Shape(t.Shape[0], t.Shape[1], heads, width / heads),
            new Shape(t.Strides[0], t.Strides[1], width / heads, 1), t.Offset + first);
}
