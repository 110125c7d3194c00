using OmniKernels.Graph;
using OmniKernels.Kernels;
using OmniKernels.Weights;

namespace OmniKernels.Model;

/// <summary>
/// HF CLIPTextTransformer + text_projection: token and position embeddings, causal layers, final
/// LayerNorm, pooling at the end-of-text token, projection. Text padded past its end changes nothing
/// the pooled token sees (the mask is causal), so length buckets need no key mask.
/// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/clip/modeling_clip.py#L903
/// </summary>
internal sealed class ClipTextTower : Tower
{
    private readonly Tensor _tokens, _pos;
    private readonly EncoderLayer[] _layers;
    private readonly LayerNormWeights _final;
    private readonly Linear _proj;

    public ClipTextTower(LoadContext lc, WeightScope root, ConfigNode c, int projectionDim) : base(Modality.Text, projectionDim)
    {
        try
        {
            VocabSize = c.Int("vocab_size");
            ContextLength = c.Int("max_position_embeddings");
            EosTokenId = c.Id("eos_token_id", 2);
            BosTokenId = c.Id("bos_token_id", 1);
            Dims = new EncoderDims(c.Int("hidden_size"), c.Int("intermediate_size"), c.Int("num_attention_heads"), c.Int("num_hidden_layers"),
                ConfigActivation.Parse(c, "hidden_act", "quick_gelu"), (float)c.Num("layer_norm_eps", 1e-5));
            var m = root.Pp("text_model");
            var emb = m.Pp("embeddings");
            _tokens = Owned.Add(lc.Upload(emb.Pp("token_embedding"), "weight", VocabSize, Dims.Width));
            _pos = Owned.Add(lc.Upload(emb.Pp("position_embedding"), "weight", ContextLength, Dims.Width));
            _layers = LoadLayers(lc, Owned, m.Pp("encoder.layers"), Dims, LayerNames.Clip);
            _final = LayerNormWeights.Load(lc, Owned, m.Pp("final_layer_norm"), Dims.Width, Dims.Eps);
            _proj = Linear.Load(lc, Owned, Dims.Width, (root.Pp("text_projection"), projectionDim, false));
        }
        catch
        {
            Owned.Dispose();
            throw;
        }
    }

    public int VocabSize { get; }

    public int ContextLength { get; }

    public int EosTokenId { get; }

    public int BosTokenId { get; }

    public EncoderDims Dims { get; }

    public override int Width => Dims.Width;

    /// <summary>
    /// The token whose state is pooled: HF's rule, the highest id when the config's eos_token_id is
    /// the legacy 2 (old CLIP configs), else the first eos_token_id (<see cref="Validate"/> rejects ids without one).
    /// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/clip/modeling_clip.py#L956
    /// </summary>
    public int PoolIndex(ReadOnlySpan<int> ids)
    {
        if (EosTokenId == 2)
        {
            int best = 0;
            for (int i = 1; i < ids.Length; i++) if (ids[i] > ids[best]) best = i;
            return best;
        }
        return ids.IndexOf(EosTokenId);
    }

    /// <summary>Checks token ids against the vocabulary and the context length.</summary>
    public void Validate(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty) throw new ArgumentException("text has no tokens");
        if (ids.Length > ContextLength) throw new ArgumentException($"text has {ids.Length} tokens; the model's context is {ContextLength}");
        foreach (int id in ids)
            if ((uint)id >= (uint)VocabSize) throw new ArgumentException($"token id {id} is outside the vocabulary of {VocabSize}");
        // HF pools at the first end-of-text token; ids without one would pool an arbitrary token.
        if (EosTokenId != 2 && ids.IndexOf(EosTokenId) < 0)
            throw new ArgumentException($"text ids carry no end-of-text token (id {EosTokenId}), where the text tower pools");
    }

    public override TowerGraph Record(GraphBuilder g, int batch, int length, bool tokens)
    {
        int w = Dims.Width;
        var ids = g.Input(Name + ".ids", DType.I32, new Shape(batch, length));
        var pool = g.Input(Name + ".pool_index", DType.I32, new Shape(batch));
        var x0 = g.Temp(Name + ".embeddings.out", new Shape(batch, length, w));
        var (table, pos) = (_tokens.View, _pos.View);
        g.Node(Name + ".embeddings", 1, [ids], [x0], v => EmbeddingKernel.Lookup(v.Device, table, v[ids], pos, v[x0]));
        var x = RecordLayers(g, Name, _layers, x0, causal: true, lengths: null);
        var final = _final.Record(g, Name + ".final_layer_norm", x);
        var pooled = g.Temp(Name + ".pooled", new Shape(batch, w));
        g.Node(Name + ".pool", 1, [final, pool], [pooled], v => PoolingKernel.Gather(v.Device, v[final], v[pooled], v[pool]));
        return new TowerGraph(Project(g, _proj, pooled), tokens ? final : null, [ids, pool]);
    }
}

/// <summary>
/// HF WhisperEncoder + audio_projection (ours): two GELU convolutions (the second with stride 2) as
/// GEMMs over offset tables, positions added in the second's epilogue, pre-LN layers, final
/// LayerNorm, mean over the positions that hold real audio, projection.
/// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/whisper/modeling_whisper.py#L1052
/// </summary>
internal sealed class WhisperEncoderTower : Tower
{
    private readonly PackedMatrix _conv1, _conv2;
    private readonly Tensor _b1, _b2, _pos, _zeros;
    private readonly OffsetTable _t1, _t2;
    private readonly EncoderLayer[] _layers;
    private readonly LayerNormWeights _final;
    private readonly Linear _proj;

    public WhisperEncoderTower(LoadContext lc, WeightScope root, ConfigNode c, int projectionDim) : base(Modality.Audio, projectionDim)
    {
        try
        {
            Mels = c.Int("num_mel_bins");
            Positions = c.Int("max_source_positions");
            SampleRate = c.Int("sampling_rate", 16000);
            Dims = new EncoderDims(c.Int("d_model"), c.Int("encoder_ffn_dim"), c.Int("encoder_attention_heads"), c.Int("encoder_layers"),
                ConfigActivation.Parse(c, "activation_function", "gelu"), (float)c.Num("layer_norm_eps", 1e-5));
            int w = Dims.Width, frames = 2 * Positions;
            var m = root.Pp("model.encoder");
            _conv1 = Owned.Add(PackConv(lc, m.Pp("conv1"), w, Mels));
            _conv2 = Owned.Add(PackConv(lc, m.Pp("conv2"), w, w));
            _b1 = Owned.Add(lc.Upload(m.Pp("conv1"), "bias", w));
            _b2 = Owned.Add(lc.Upload(m.Pp("conv2"), "bias", w));
            _pos = Owned.Add(lc.Upload(m.Pp("embed_positions"), "weight", Positions, w));
            _zeros = Owned.Add(Tensor.FromHost<float>(lc.Device, new float[w], new Shape(w)));
            // conv1 reads the log-mel [mels, frames + 2] (one zero column each side), conv2 the time-major
            // conv1 output [frames + 2, pitch] (one zero row each side): padding 1 without a copy.
            _t1 = Owned.Add(OffsetTable.Conv1dChannelMajor(lc.Device, frames, Mels, 3, 1, frames + 2));
            _t2 = Owned.Add(OffsetTable.Conv1dTimeMajor(lc.Device, Positions, w, 3, 2, (int)Shape.RoundUp(w, GemmKernel.PanelWidth)));
            _layers = LoadLayers(lc, Owned, m.Pp("layers"), Dims, LayerNames.Whisper);
            _final = LayerNormWeights.Load(lc, Owned, m.Pp("layer_norm"), w, Dims.Eps);
            _proj = Linear.Load(lc, Owned, w, (root.Pp("audio_projection"), projectionDim, false));
        }
        catch
        {
            Owned.Dispose();
            throw;
        }
    }

    private static PackedMatrix PackConv(LoadContext lc, WeightScope s, int outChannels, int inChannels)
    {
        var w = s.GetFloat32([outChannels, inChannels, 3], "weight");
        using var t = Tensor.FromHost<float>(lc.Device, w, new Shape(outChannels, inChannels * 3));
        var packed = PackedMatrix.Pack(lc.Device, t.View, transposed: true);
        lc.Device.Synchronize();
        return packed;
    }

    public int Mels { get; }

    /// <summary>P: encoder positions; the input is 2P log-mel frames.</summary>
    public int Positions { get; }

    public int SampleRate { get; }

    /// <summary>Samples the waveform is padded or trimmed to: 2P frames of hop 160.</summary>
    public int InputSamples => 2 * Positions * 160;

    public EncoderDims Dims { get; }

    public override int Width => Dims.Width;

    /// <summary>Positions holding real audio for a clip of <paramref name="samples"/> samples (before padding), at least 1.</summary>
    public int ValidPositions(int samples) => Math.Clamp((samples + 319) / 320, 1, Positions);

    public override TowerGraph Record(GraphBuilder g, int batch, int length, bool tokens)
    {
        int w = Dims.Width, frames = 2 * Positions;
        var mel = g.Input(Name + ".log_mel", DType.F32, new Shape(batch, Mels, frames + 2));
        var counts = g.Input(Name + ".valid_positions", DType.I32, new Shape(batch));
        var c1 = g.Temp(Name + ".conv1.out", new Shape(batch, frames + 2, w));
        var (t1, t2, k1, k2, b1, b2, pos, zeros) = (_t1, _t2, _conv1.View, _conv2.View, _b1.View, _b2.View, _pos.View, _zeros.View);
        g.Node(Name + ".conv1", 3, [mel], [c1], v =>
        {
            var t = v[c1];
            long pitch = t.Strides[1];
            var inner = new TensorView(t.Storage, t.DType, new Shape(batch, frames, w), t.Strides, t.Offset + pitch);
            OffsetGemmKernel.Launch(v.Device, v[mel], t1, k1, inner, new GemmParams(Activation.Gelu), b1);
            var zero = new TensorView(zeros.Storage, DType.F32, new Shape(batch, w), new Shape(0, 1), zeros.Offset);
            foreach (long row in (ReadOnlySpan<long>)[0, frames + 1])
                ElementwiseKernel.Activate<NoActivation>(v.Device, zero,
                    new TensorView(t.Storage, t.DType, new Shape(batch, w), new Shape(t.Strides[0], 1), t.Offset + row * pitch));
        });
        var x0 = g.Temp(Name + ".conv2.out", new Shape(batch, Positions, w));
        g.Node(Name + ".conv2", 1, [c1], [x0], v => OffsetGemmKernel.Launch(v.Device, v[c1], t2, k2, v[x0], new GemmParams(Activation.Gelu), b2, pos));
        var x = RecordLayers(g, Name, _layers, x0, causal: false, lengths: null);
        var final = _final.Record(g, Name + ".layer_norm", x);
        var pooled = g.Temp(Name + ".pooled", new Shape(batch, w));
        g.Node(Name + ".pool", 1, [final, counts], [pooled], v => PoolingKernel.Mean(v.Device, v[final], v[pooled], v[counts]));
        return new TowerGraph(Project(g, _proj, pooled), tokens ? final : null, [mel, counts]);
    }
}
