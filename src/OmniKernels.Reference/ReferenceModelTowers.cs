using OmniKernels.Weights;

namespace OmniKernels.Reference;

/// <summary>A tower's result: the projected embedding (not yet L2-normalized) and, where a fusion may read them, its token states [S, Width].</summary>
internal sealed record TowerOutput(double[] Embedding, double[]? Tokens);

/// <summary>One modality's encoder in double, weights held as the checkpoint's float32 values.</summary>
internal abstract class ReferenceTower(string modality)
{
    public string Modality { get; } = modality;

    /// <summary>Width of <see cref="TowerOutput.Tokens"/>.</summary>
    public abstract int Width { get; }

    public abstract TowerOutput Forward(ReferenceRequest request);

    protected static void Require(bool ok, string what)
    {
        if (!ok) throw new ArgumentException(what);
    }
}

/// <summary>
/// HF CLIPVisionTransformer + visual_projection: x = cat(cls, patches) + positions, pre_layrnorm,
/// layers, post_layernorm; pooled = the class token; tokens = post_layernorm over every token.
/// https://github.com/huggingface/transformers/blob/679021a6b0ded09d623a96e2bd2f822c5a548872/src/transformers/models/clip/modeling_clip.py
/// </summary>
internal sealed class VisionTower : ReferenceTower
{
    private readonly EncoderSizes _sizes;
    private readonly float[] _patchWeight, _cls, _pos;
    private readonly LayerNormWeights _pre, _post;
    private readonly EncoderLayerWeights[] _layers;
    private readonly LinearWeights _proj;

    public VisionTower(string modality, WeightScope root, ConfigObject c, int projectionDim) : base(modality)
    {
        ImageSize = c.Int("image_size");
        Patch = c.Int("patch_size");
        Channels = c.Int("num_channels", 3);
        _sizes = c.ClipSizes("quick_gelu");
        int w = _sizes.Width, tokens = (ImageSize / Patch) * (ImageSize / Patch) + 1;
        var m = root.Pp("vision_model");
        var emb = m.Pp("embeddings");
        _cls = emb.GetFloat32([w], "class_embedding");
        _patchWeight = emb.Pp("patch_embedding").GetFloat32([w, Channels, Patch, Patch], "weight");
        _pos = emb.Pp("position_embedding").GetFloat32([tokens, w], "weight");
        _pre = LayerNormWeights.Load(m.Pp("pre_layrnorm"), w, _sizes.Eps);
        _layers = EncoderLayerWeights.LoadAll(m.Pp("encoder.layers"), _sizes, whisper: false);
        _post = LayerNormWeights.Load(m.Pp("post_layernorm"), w, _sizes.Eps);
        _proj = LinearWeights.Load(root.Pp("visual_projection"), projectionDim, w, bias: false);
    }

    public int ImageSize { get; }

    public int Patch { get; }

    public int Channels { get; }

    public int PixelCount => Channels * ImageSize * ImageSize;

    public override int Width => _sizes.Width;

    public override TowerOutput Forward(ReferenceRequest request)
    {
        var pixels = request.Pixels ?? throw new ArgumentException("the request has no image");
        Require(pixels.Length == PixelCount, $"image pixels have {pixels.Length} values; the {Modality} tower takes [{Channels}, {ImageSize}, {ImageSize}]");
        return Image(pixels);
    }

    /// <summary>One preprocessed image [C, H, W].</summary>
    public TowerOutput Image(ReadOnlySpan<float> pixels)
    {
        int w = _sizes.Width, tokens = _pos.Length / w;
        var x = new double[tokens * w];
        ReferenceOps.PatchEmbed(pixels, 1, Channels, ImageSize, ImageSize, Patch, _patchWeight, w, default, _cls, _pos, x);
        x = EncoderLayerWeights.Run(_layers, _pre.Apply(x), causal: false);
        // LayerNorm is per row, so post_layernorm(x[0]) is row 0 of post_layernorm over all tokens.
        var states = _post.Apply(x);
        return new TowerOutput(_proj.Apply(states.AsSpan(0, w)), states);
    }
}

/// <summary>
/// HF CLIPTextTransformer + text_projection: token + position embeddings, causal layers,
/// final_layer_norm, pooled at the end-of-text token by HF's rule: the highest id when the config's
/// eos_token_id is the legacy 2, else the first eos_token_id (an error when there is none).
/// https://github.com/huggingface/transformers/blob/679021a6b0ded09d623a96e2bd2f822c5a548872/src/transformers/models/clip/modeling_clip.py
/// </summary>
internal sealed class TextTower : ReferenceTower
{
    private readonly EncoderSizes _sizes;
    private readonly float[] _tokens, _pos;
    private readonly EncoderLayerWeights[] _layers;
    private readonly LayerNormWeights _final;
    private readonly LinearWeights _proj;
    private readonly int _vocab, _context, _eos;

    public TextTower(string modality, WeightScope root, ConfigObject c, int projectionDim) : base(modality)
    {
        _vocab = c.Int("vocab_size");
        _context = c.Int("max_position_embeddings");
        // CLIPTextConfig's old default; checkpoints of that era carry it and the legacy rule exists for them.
        _eos = c.Id("eos_token_id", 2);
        _sizes = c.ClipSizes("quick_gelu");
        int w = _sizes.Width;
        var m = root.Pp("text_model");
        _tokens = m.Pp("embeddings.token_embedding").GetFloat32([_vocab, w], "weight");
        _pos = m.Pp("embeddings.position_embedding").GetFloat32([_context, w], "weight");
        _layers = EncoderLayerWeights.LoadAll(m.Pp("encoder.layers"), _sizes, whisper: false);
        _final = LayerNormWeights.Load(m.Pp("final_layer_norm"), w, _sizes.Eps);
        _proj = LinearWeights.Load(root.Pp("text_projection"), projectionDim, w, bias: false);
    }

    public override int Width => _sizes.Width;

    public override TowerOutput Forward(ReferenceRequest request)
    {
        var ids = request.TextIds ?? throw new ArgumentException("the request has no text ids");
        Require(ids.Length >= 1 && ids.Length <= _context, $"text has {ids.Length} tokens; the {Modality} tower takes 1 to {_context}");
        int w = _sizes.Width;
        var x = new double[ids.Length * w];
        for (int i = 0; i < ids.Length; i++)
        {
            Require((uint)ids[i] < (uint)_vocab, $"token id {ids[i]} is outside the vocabulary of {_vocab}");
            for (int d = 0; d < w; d++) x[i * w + d] = (double)_tokens[ids[i] * w + d] + _pos[i * w + d];
        }
        var states = _final.Apply(EncoderLayerWeights.Run(_layers, x, causal: true));
        int pool = PoolIndex(ids);
        return new TowerOutput(_proj.Apply(states.AsSpan(pool * w, w)), states);
    }

    private int PoolIndex(int[] ids)
    {
        if (_eos == 2)
        {
            int best = 0;
            for (int i = 1; i < ids.Length; i++) if (ids[i] > ids[best]) best = i;
            return best;
        }
        int first = Array.IndexOf(ids, _eos);
        return first >= 0 ? first : throw new ArgumentException($"text ids hold no end-of-text token {_eos}");
    }
}

/// <summary>
/// HF WhisperEncoder + audio_projection (ours): gelu(conv1) (k 3, pad 1), gelu(conv2) (k 3, stride 2,
/// pad 1), + embed_positions, pre-LN layers, layer_norm; the mean over the first
/// min(P, ⌈samples / 320⌉) positions (those holding real audio), projected.
/// https://github.com/huggingface/transformers/blob/5c48f71a682fa7bbcbde1be5d2a2ac16cc654210/src/transformers/models/whisper/modeling_whisper.py
/// </summary>
internal sealed class AudioTower : ReferenceTower
{
    private readonly EncoderSizes _sizes;
    private readonly float[] _w1, _b1, _w2, _b2, _pos;
    private readonly EncoderLayerWeights[] _layers;
    private readonly LayerNormWeights _final;
    private readonly LinearWeights _proj;

    public AudioTower(string modality, WeightScope root, ConfigObject c, int projectionDim) : base(modality)
    {
        Mels = c.Int("num_mel_bins");
        Positions = c.Int("max_source_positions");
        _sizes = new EncoderSizes(c.Int("d_model"), c.Int("encoder_ffn_dim"), c.Int("encoder_attention_heads"), c.Int("encoder_layers"),
            c.Activation("activation_function", "gelu"), c.Num("layer_norm_eps", 1e-5));
        int w = _sizes.Width;
        var m = root.Pp("model.encoder");
        _w1 = m.Pp("conv1").GetFloat32([w, Mels, 3], "weight");
        _b1 = m.Pp("conv1").GetFloat32([w], "bias");
        _w2 = m.Pp("conv2").GetFloat32([w, w, 3], "weight");
        _b2 = m.Pp("conv2").GetFloat32([w], "bias");
        _pos = m.Pp("embed_positions").GetFloat32([Positions, w], "weight");
        _layers = EncoderLayerWeights.LoadAll(m.Pp("layers"), _sizes, whisper: true);
        _final = LayerNormWeights.Load(m.Pp("layer_norm"), w, _sizes.Eps);
        _proj = LinearWeights.Load(root.Pp("audio_projection"), projectionDim, w, bias: false);
    }

    public int Mels { get; }

    /// <summary>P: encoder positions; the log-mel holds 2P frames.</summary>
    public int Positions { get; }

    public override int Width => _sizes.Width;

    public override TowerOutput Forward(ReferenceRequest request)
    {
        var mel = request.LogMel ?? throw new ArgumentException("the request has no log-mel");
        int w = _sizes.Width, frames = 2 * Positions;
        Require(mel.Length == Mels * frames, $"log-mel has {mel.Length} values; the {Modality} tower takes [{Mels}, {frames}]");
        int samples = request.LogMelSamples ?? frames * 160;
        Require(samples > 0, $"audio sample count {samples} must be positive");
        // conv1, channel-major [W, 2P]: both convolutions read zero outside the input (padding 1).
        var c1 = new double[w * frames];
        for (int o = 0; o < w; o++)
            for (int t = 0; t < frames; t++)
            {
                double s = _b1[o];
                for (int i = 0; i < Mels; i++)
                    for (int k = 0; k < 3; k++)
                    {
                        int src = t + k - 1;
                        if (src >= 0 && src < frames) s += (double)_w1[(o * Mels + i) * 3 + k] * mel[i * frames + src];
                    }
                c1[o * frames + t] = ReferenceOps.Activate(RefActivation.Gelu, s);
            }
        // conv2 (stride 2), written time-major [P, W] with the positions added: the layers' layout.
        var x = new double[Positions * w];
        for (int p = 0; p < Positions; p++)
            for (int o = 0; o < w; o++)
            {
                double s = _b2[o];
                for (int i = 0; i < w; i++)
                    for (int k = 0; k < 3; k++)
                    {
                        int src = 2 * p + k - 1;
                        if (src >= 0 && src < frames) s += _w2[(o * w + i) * 3 + k] * c1[i * frames + src];
                    }
                x[p * w + o] = ReferenceOps.Activate(RefActivation.Gelu, s) + _pos[p * w + o];
            }
        var states = _final.Apply(EncoderLayerWeights.Run(_layers, x, causal: false));
        int valid = (int)Math.Min(Positions, (samples + 319L) / 320);
        return new TowerOutput(_proj.Apply(ModelMath.MeanRows(states, w, valid)), states);
    }
}

/// <summary>CLIP4Clip's meanP over the image tower: e = L2(mean_t L2(e_t)) for the T frames. Owns no weights.</summary>
internal sealed class VideoFramesTower(string modality, VisionTower image, int frames) : ReferenceTower(modality)
{
    public override int Width => image.Width;

    public override TowerOutput Forward(ReferenceRequest request)
    {
        var clip = request.VideoFrames ?? throw new ArgumentException("the request has no video frames");
        int per = image.PixelCount;
        Require(clip.Length == frames * per, $"video has {clip.Length} values; the {Modality} tower takes [{frames}, {image.Channels}, {image.ImageSize}, {image.ImageSize}]");
        double[]? sum = null;
        for (int t = 0; t < frames; t++)
        {
            var e = ModelMath.L2Normalize(image.Image(clip.AsSpan(t * per, per)).Embedding);
            if (sum is null) sum = e;
            else ModelMath.AddInto(sum, e);
        }
        for (int i = 0; i < sum!.Length; i++) sum[i] /= frames;
        return new TowerOutput(ModelMath.L2Normalize(sum), null);
    }
}

/// <summary>
/// A tubelet transformer: VideoMAE's Conv3d embedding (kernel = stride = (t, p, p), tokens in
/// (time, row, column) order) + positions, CLIP-named pre-LN layers, post_layernorm of the mean
/// token, video_projection. No class token.
/// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/videomae/modeling_videomae.py
/// </summary>
internal sealed class TubeletTower : ReferenceTower
{
    private readonly EncoderSizes _sizes;
    private readonly float[] _weight, _bias, _pos;
    private readonly EncoderLayerWeights[] _layers;
    private readonly LayerNormWeights _post;
    private readonly LinearWeights _proj;
    private readonly int _frames, _tubelet, _size, _patch, _channels;

    public TubeletTower(string modality, WeightScope root, ConfigObject c, int projectionDim) : base(modality)
    {
        _frames = c.Int("num_frames");
        _tubelet = c.Int("tubelet_size");
        _size = c.Int("image_size");
        _patch = c.Int("patch_size");
        _channels = c.Int("num_channels", 3);
        if (_frames % _tubelet != 0) throw c.Error("num_frames", $"{_frames} is not a multiple of tubelet_size {_tubelet}");
        _sizes = c.ClipSizes("gelu");
        int w = _sizes.Width, g = _size / _patch, tokens = _frames / _tubelet * g * g;
        var m = root.Pp("video_model");
        var proj = m.Pp("embeddings.patch_embeddings.projection");
        _weight = proj.GetFloat32([w, _channels, _tubelet, _patch, _patch], "weight");
        _bias = proj.GetFloat32([w], "bias");
        _pos = m.Pp("embeddings.position_embedding").GetFloat32([tokens, w], "weight");
        _layers = EncoderLayerWeights.LoadAll(m.Pp("encoder.layers"), _sizes, whisper: false);
        _post = LayerNormWeights.Load(m.Pp("post_layernorm"), w, _sizes.Eps);
        _proj = LinearWeights.Load(root.Pp("video_projection"), projectionDim, w, bias: false);
    }

    public override int Width => _sizes.Width;

    public override TowerOutput Forward(ReferenceRequest request)
    {
        var clip = request.VideoFrames ?? throw new ArgumentException("the request has no video frames");
        int hw = _size * _size;
        Require(clip.Length == _frames * _channels * hw, $"video has {clip.Length} values; the {Modality} tower takes [{_frames}, {_channels}, {_size}, {_size}]");
        int w = _sizes.Width, g = _size / _patch, tokens = _pos.Length / w, p = _patch, t = _tubelet;
        var x = new double[tokens * w];
        for (int n = 0; n < tokens; n++)
        {
            int ti = n / (g * g), r = n / g % g, col = n % g;
            for (int d = 0; d < w; d++)
            {
                double s = _bias[d];
                for (int ch = 0; ch < _channels; ch++)
                    for (int dt = 0; dt < t; dt++)
                        for (int py = 0; py < p; py++)
                            for (int px = 0; px < p; px++)
                                s += (double)_weight[(((d * _channels + ch) * t + dt) * p + py) * p + px]
                                    * clip[((ti * t + dt) * _channels + ch) * hw + (r * p + py) * _size + col * p + px];
                x[n * w + d] = s + _pos[n * w + d];
            }
        }
        var states = EncoderLayerWeights.Run(_layers, x, causal: false);
        return new TowerOutput(_proj.Apply(_post.Apply(ModelMath.MeanRows(states, w, tokens))), null);
    }
}
