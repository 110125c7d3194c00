using OmniKernels.Kernels;
using OmniKernels.Reference;

namespace OmniKernels.Ops;

/// <summary>Fused scaled dot-product attention with key-padding lengths, causal masking and S_q ≠ S_k.</summary>
internal sealed class AttentionOp : OpDefinition
{
    public override string Name => "attention";
    public override string Summary => "O = softmax(q·kᵀ·scale + mask)·v; q [B,H,Sq,D], k and v [B,H,Sk,D] (layout=bshd: [B,S,H,D])";
    public override IReadOnlyList<OpInputSpec> Inputs { get; } =
    [
        new("q", true, "float32 [B, H, S_q, D] (or [B, S_q, H, D] with layout=bshd)"),
        new("k", true, "float32 [B, H, S_k, D]"),
        new("v", true, "float32, k's shape"),
        new("lengths", false, "int32 [B]: keys at or past lengths[b] are hidden"),
    ];
    public override IReadOnlyList<string> ParamNames { get; } = ["causal=false", "scale=1/sqrt(D)", "layout=bhsd"];

    protected override BoundOp BindChecked(IReadOnlyDictionary<string, HostTensor> inputs, OpParams p)
    {
        var q = inputs["q"];
        var k = inputs["k"];
        var v = inputs["v"];
        bool causal = p.Bool("causal", false);
        var layoutName = p.Text("layout", "bhsd");
        bool bshd = layoutName switch
        {
            "bhsd" => false,
            "bshd" => true,
            _ => throw new OpInputException($"attention: --param layout={layoutName}: expected bhsd or bshd"),
        };
        foreach (var (t, name) in new[] { (q, "q"), (k, "k"), (v, "v") })
        {
            RequireRank(t, name, 4);
            t.Floats(name);
        }
        long Heads(HostTensor t) => bshd ? t.Shape[2] : t.Shape[1];
        long Seq(HostTensor t) => bshd ? t.Shape[1] : t.Shape[2];
        if (k.Shape[0] != q.Shape[0] || Heads(k) != Heads(q) || k.Shape[3] != q.Shape[3])
            throw new OpInputException($"attention: k {k.ShapeText} must match q {q.ShapeText} in batch, heads and head_dim");
        if (!v.Shape.SequenceEqual(k.Shape))
            throw new OpInputException($"attention: v {v.ShapeText} must have k's shape {k.ShapeText}");
        long d = q.Shape[3];
        float scale = p.Float("scale", 1f / MathF.Sqrt(d));
        int[]? lengths = null;
        if (inputs.TryGetValue("lengths", out var l))
        {
            lengths = l.Ints("lengths");
            if (l.Rank != 1 || l.Shape[0] != q.Shape[0])
                throw new OpInputException($"attention: lengths {l.ShapeText} must be ({q.Shape[0]},), one per batch");
            foreach (var len in lengths)
                if (len < 0 || len > Seq(k))
                    throw new OpInputException($"attention: lengths holds {len}; each must be within 0..{Seq(k)} (S_k)");
        }
        return new Bound(q, k, v, lengths, bshd, causal, scale, (int)q.Shape[0], (int)Heads(q), (int)Seq(q), (int)Seq(k), (int)d);
    }

    private sealed class Bound(HostTensor q, HostTensor k, HostTensor v, int[]? lengths, bool bshd, bool causal, float scale,
        int batch, int heads, int seqQ, int seqK, int headDim) : BoundOp
    {
        public override long[] OutputShape => q.Shape;
        public override double Flops => 4.0 * batch * heads * seqQ * seqK * headDim;

        public override float[] RunDevice(DeviceContext ctx)
        {
            using var tq = DeviceIO.Upload(ctx, q, "q");
            using var tk = DeviceIO.Upload(ctx, k, "k");
            using var tv = DeviceIO.Upload(ctx, v, "v");
            using var tl = lengths is null ? null : Tensor.FromHost<int>(ctx, lengths, new Shape(lengths.Length));
            using var o = DeviceIO.PoisonedOutput(ctx, q.Shape);
            AttentionKernel.Launch(ctx, tq.View, tk.View, tv.View, o.View, bshd ? AttentionLayout.Bshd : AttentionLayout.Bhsd,
                new AttentionParams(scale, causal), tl?.View);
            return DeviceIO.Download(ctx, o);
        }

        public override double[] RunReference()
        {
            var y = new double[q.Length];
            ReferenceOps.Attention(q.Floats("q"), k.Floats("k"), v.Floats("v"), batch, heads, seqQ, seqK, headDim, bshd, scale, causal,
                lengths ?? default, y);
            return y;
        }
    }
}
