using OmniKernels.Kernels;

namespace OmniKernels.Blocks;

/// <summary>
/// Multi-head attention with input and output projections, numerically the function of PyTorch's
/// <c>nn.MultiheadAttention</c> (batch_first) and HF CLIP's attention: q, k, v = x·Wᵀ + b split
/// into heads along the embedding, softmax(q·kᵀ/√D + mask)·v, then y = attn·W_oᵀ + b_o (+ residual,
/// fused into the output GEMM's epilogue). Self-attention runs one GEMM over the concatenated
/// [3E, E] weight; cross-attention projects Q from x and K, V from the other input with column
/// slices of the same packed weight. Heads are read from the projection output by strides
/// ([B, S, H, D] layout), never transposed.
/// Ownership: the block owns its packed weights (dispose it); <see cref="Workspace"/>s are owned by
/// whoever creates them. Forward allocates nothing and is not thread-safe per workspace.
/// </summary>
public sealed class MultiHeadAttentionBlock : IDisposable
{
    private readonly PackedMatrix _inProj;
    private readonly Tensor _inBias;
    private readonly PackedMatrix _outProj;
    private readonly Tensor _outBias;

    private MultiHeadAttentionBlock(int embedDim, int heads, PackedMatrix inProj, Tensor inBias, PackedMatrix outProj, Tensor outBias)
    {
        EmbedDim = embedDim;
        Heads = heads;
        _inProj = inProj;
        _inBias = inBias;
        _outProj = outProj;
        _outBias = outBias;
    }

    /// <summary>Model width E.</summary>
    public int EmbedDim { get; }

    /// <summary>Number of heads H.</summary>
    public int Heads { get; }

    /// <summary>E / H.</summary>
    public int HeadDim => EmbedDim / Heads;

    /// <summary>
    /// Packs PyTorch-layout weights once: <paramref name="inProjWeight"/> [3E, E] (q, k, v stacked),
    /// <paramref name="inProjBias"/> [3E], <paramref name="outWeight"/> [E, E], <paramref name="outBias"/> [E].
    /// </summary>
    public static MultiHeadAttentionBlock Load(DeviceContext ctx, int embedDim, int heads,
        ReadOnlySpan<float> inProjWeight, ReadOnlySpan<float> inProjBias, ReadOnlySpan<float> outWeight, ReadOnlySpan<float> outBias)
    {
        if (heads <= 0 || embedDim <= 0 || embedDim % heads != 0)
            throw new ArgumentException($"embed_dim {embedDim} must be a positive multiple of heads {heads}");
        long e = embedDim;
        Check(inProjWeight.Length, 3 * e * e, "in_proj_weight", $"[{3 * e}, {e}]");
        Check(inProjBias.Length, 3 * e, "in_proj_bias", $"[{3 * e}]");
        Check(outWeight.Length, e * e, "out_proj.weight", $"[{e}, {e}]");
        Check(outBias.Length, e, "out_proj.bias", $"[{e}]");
        var taken = new List<IDisposable>();
        try
        {
            using var w = Tensor.FromHost(ctx, inProjWeight, new Shape(3 * e, e));
            var inProj = Keep(taken, PackedMatrix.Pack(ctx, w.View, transposed: true));
            var inBias = Keep(taken, Tensor.FromHost(ctx, inProjBias, new Shape(3 * e), GemmKernel.PanelWidth));
            using var wo = Tensor.FromHost(ctx, outWeight, new Shape(e, e));
            var outProj = Keep(taken, PackedMatrix.Pack(ctx, wo.View, transposed: true));
            var ob = Keep(taken, Tensor.FromHost(ctx, outBias, new Shape(e), GemmKernel.PanelWidth));
            ctx.Synchronize();
            return new MultiHeadAttentionBlock(embedDim, heads, inProj, inBias, outProj, ob);
        }
        catch
        {
            foreach (var t in taken) t.Dispose();
            throw;
        }
    }

    /// <summary>Packs HF CLIP-style separate q/k/v projections (each weight [E, E], bias [E]) as one [3E, E] weight.</summary>
    public static MultiHeadAttentionBlock LoadSeparate(DeviceContext ctx, int embedDim, int heads,
        ReadOnlySpan<float> qWeight, ReadOnlySpan<float> qBias, ReadOnlySpan<float> kWeight, ReadOnlySpan<float> kBias,
        ReadOnlySpan<float> vWeight, ReadOnlySpan<float> vBias, ReadOnlySpan<float> outWeight, ReadOnlySpan<float> outBias)
    {
        long e = embedDim;
        foreach (var (len, name) in new[] { (qWeight.Length, "q_proj.weight"), (kWeight.Length, "k_proj.weight"), (vWeight.Length, "v_proj.weight") })
            Check(len, e * e, name, $"[{e}, {e}]");
        foreach (var (len, name) in new[] { (qBias.Length, "q_proj.bias"), (kBias.Length, "k_proj.bias"), (vBias.Length, "v_proj.bias") })
            Check(len, e, name, $"[{e}]");
        var w = new float[3 * e * e];
        qWeight.CopyTo(w);
        kWeight.CopyTo(w.AsSpan((int)(e * e)));
        vWeight.CopyTo(w.AsSpan((int)(2 * e * e)));
        var b = new float[3 * e];
        qBias.CopyTo(b);
        kBias.CopyTo(b.AsSpan((int)e));
        vBias.CopyTo(b.AsSpan((int)(2 * e)));
        return Load(ctx, embedDim, heads, w, b, outWeight, outBias);
    }

    private static T Keep<T>(List<IDisposable> taken, T item) where T : IDisposable
    {
        taken.Add(item);
        return item;
    }

    private static void Check(long got, long expected, string name, string shape)
    {
        if (got != expected) throw new ArgumentException($"{name} has {got} values; expected {shape} = {expected}");
    }

    /// <summary>
    /// Preallocated intermediates for one batch shape: the projections (row-padded) and the
    /// attention scratch. Create once per shape and reuse; dispose when done.
    /// </summary>
    public sealed class Workspace : IDisposable
    {
        internal Workspace(DeviceContext ctx, MultiHeadAttentionBlock block, long batch, long seqQ, long seqKv, bool cross)
        {
            Batch = batch;
            SeqQ = seqQ;
            SeqKv = seqKv;
            Cross = cross;
            long e = block.EmbedDim;
            var taken = new List<IDisposable>();
            try
            {
                const int a = GemmKernel.PanelWidth;
                Projection = Keep(taken, Tensor.Allocate(ctx, DType.F32, new Shape(batch, seqQ, cross ? e : 3 * e), a));
                KvProjection = cross ? Keep(taken, Tensor.Allocate(ctx, DType.F32, new Shape(batch, seqKv, 2 * e), a)) : null;
                Attention = Keep(taken, Tensor.Allocate(ctx, DType.F32, new Shape(batch, seqQ, e), a));
                Scratch = Keep(taken, Tensor.Allocate(ctx, DType.F32, new Shape(AttentionKernel.ScratchElements(batch, block.Heads, seqQ, block.HeadDim))));
            }
            catch
            {
                foreach (var t in taken) t.Dispose();
                throw;
            }
        }

        /// <summary>Batch size.</summary>
        public long Batch { get; }

        /// <summary>Query length.</summary>
        public long SeqQ { get; }

        /// <summary>Key/value length.</summary>
        public long SeqKv { get; }

        /// <summary>True for cross-attention.</summary>
        public bool Cross { get; }

        internal Tensor Projection { get; }
        internal Tensor? KvProjection { get; }
        internal Tensor Attention { get; }
        internal Tensor Scratch { get; }

        /// <summary>Returns every buffer to the pool.</summary>
        public void Dispose()
        {
            Scratch.Dispose();
            Attention.Dispose();
            KvProjection?.Dispose();
            Projection.Dispose();
        }
    }

    /// <summary>Allocates a workspace for self-attention (<paramref name="seqKv"/> null) or cross-attention.</summary>
    public Workspace CreateWorkspace(DeviceContext ctx, long batch, long seqQ, long? seqKv = null)
    {
        if (seqKv is not null && EmbedDim % GemmKernel.PanelWidth != 0)
            throw new NotSupportedException($"cross-attention slices the packed QKV weight by panels and needs embed_dim % {GemmKernel.PanelWidth} == 0; got {EmbedDim}");
        return new Workspace(ctx, this, batch, seqQ, seqKv ?? seqQ, seqKv is not null);
    }

    /// <summary>
    /// y = MHA(x, kv) (+ residual). x is [B, S_q, E]; <paramref name="kv"/> is [B, S_kv, E] for
    /// cross-attention (workspace created with seqKv), null for self-attention; y and residual are
    /// [B, S_q, E] with a row pitch of at least E rounded up to 16 (residual may be y).
    /// <paramref name="lengths"/> (int32 [B]) hides key positions at or past each length
    /// (PyTorch's key_padding_mask = position ≥ length); <paramref name="causal"/> hides later keys.
    /// Launches only; the caller synchronizes once per request.
    /// </summary>
    public void Forward(DeviceContext ctx, Workspace ws, TensorView x, TensorView y, TensorView? kv = null,
        TensorView? lengths = null, bool causal = false, TensorView? residual = null)
    {
        long e = EmbedDim, b = ws.Batch;
        var expect = new Shape(b, ws.SeqQ, e);
        if (x.Shape != expect) throw new ArgumentException($"x {x.Shape} must be {expect} for this workspace");
        if (ws.Cross != kv.HasValue) throw new ArgumentException(ws.Cross ? "a cross-attention workspace needs kv" : "kv given to a self-attention workspace");

        var qkv = ws.Projection.View;
        TensorView q, k, v;
        if (kv is { } src)
        {
            var expectKv = new Shape(b, ws.SeqKv, e);
            if (src.Shape != expectKv) throw new ArgumentException($"kv {src.Shape} must be {expectKv} for this workspace");
            var bias = _inBias.View;
            GemmKernel.Launch(ctx, x, _inProj.View.Columns(0, e), qkv, default, Slice(bias, 0, e));
            var kvOut = ws.KvProjection!.View;
            GemmKernel.Launch(ctx, src, _inProj.View.Columns(e, 2 * e), kvOut, default, Slice(bias, e, 2 * e));
            q = Heads4(qkv, 0);
            k = Heads4(kvOut, 0);
            v = Heads4(kvOut, e);
        }
        else
        {
            GemmKernel.Launch(ctx, x, _inProj.View, qkv, default, _inBias.View);
            q = Heads4(qkv, 0);
            k = Heads4(qkv, e);
            v = Heads4(qkv, 2 * e);
        }
        AttentionKernel.Launch(ctx, q, k, v, Heads4(ws.Attention.View, 0), AttentionLayout.Bshd,
            new AttentionParams(Causal: causal), lengths, ws.Scratch.View);
        GemmKernel.Launch(ctx, ws.Attention.View, _outProj.View, y, default, _outBias.View, residual);
    }

    private static TensorView Slice(in TensorView vector, long first, long count) =>
        new(vector.Storage, vector.DType, new Shape(count), new Shape(1), vector.Offset + first);

    /// <summary>Columns [first, first + E) of a [B, S, *] projection seen as [B, S, H, D].</summary>
    private TensorView Heads4(in TensorView t, long first)
    {
        long pitch = t.Strides[1];
        return new TensorView(t.Storage, t.DType, new Shape(t.Shape[0], t.Shape[1], Heads, HeadDim),
            new Shape(t.Strides[0], pitch, HeadDim, 1), t.Offset + first);
    }

    /// <summary>Returns the packed weights to the pool.</summary>
    public void Dispose()
    {
        _outBias.Dispose();
        _outProj.Dispose();
        _inBias.Dispose();
        _inProj.Dispose();
    }
}
