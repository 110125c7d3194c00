using OmniKernels.Graph;
using OmniKernels.Kernels;
using OmniKernels.Weights;

namespace OmniKernels.Model;

/// <summary>
/// CLIP4Clip's meanP: T frames through the image tower as one batch of B·T, then per clip the mean
/// of the frames' normalized embeddings, normalized again. Owns no weights.
/// </summary>
internal sealed class VideoFramesTower(ClipVisionTower image, int frames) : Tower(Modality.Video, image.ProjectionDim)
{
    public ClipVisionTower Image => image;

    public int Frames => frames;

    public override int Width => image.Width;

    public override TowerGraph Record(GraphBuilder g, int batch, int length, bool tokens)
    {
        if (tokens) throw new NotSupportedException("video_frames gives a pooled embedding only; no fusion consumes its token states");
        var pixels = g.Input(Name + ".frames", DType.F32, new Shape(batch * frames, image.Channels, image.ImageSize, image.ImageSize));
        var (perFrame, _) = image.RecordFrom(g, Name, pixels, batch * frames, tokens: false);
        int e = ProjectionDim;
        var mean = g.Temp(Name + ".mean", new Shape(batch, e), 1);
        var emb = g.Temp(Name + ".embedding", new Shape(batch, e), 1);
        g.Node(Name + ".meanP", 2, [perFrame], [mean, emb], v =>
        {
            var f = v[perFrame];
            var clips = new TensorView(f.Storage, f.DType, new Shape(batch, frames, e), new Shape(frames * f.Strides[0], f.Strides[0], 1), f.Offset);
            PoolingKernel.Mean(v.Device, clips, v[mean]);
            PoolingKernel.L2Normalize(v.Device, v[mean], v[emb]);
        });
        return new TowerGraph(emb, null, [pixels]);
    }
}

/// <summary>
/// A tubelet transformer (VideoMAE's embedding: Conv3d with kernel = stride = (t, p, p), as the GEMM
/// over 3-D offset tables) with CLIP-named pre-LN layers, post-LN of the mean token, projection.
/// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/videomae/modeling_videomae.py#L173
/// </summary>
internal sealed class VideoTubeletTower : Tower
{
    private readonly OffsetTable _table;
    private readonly PackedMatrix _proj3d;
    private readonly Tensor _bias, _pos;
    private readonly EncoderLayer[] _layers;
    private readonly LayerNormWeights _post;
    private readonly Linear _proj;

    public VideoTubeletTower(LoadContext lc, WeightScope root, ConfigNode c, int projectionDim) : base(Modality.Video, projectionDim)
    {
        try
        {
            Frames = c.Int("num_frames");
            Tubelet = c.Int("tubelet_size");
            ImageSize = c.Int("image_size");
            Patch = c.Int("patch_size");
            Channels = c.Int("num_channels", 3);
            Dims = new EncoderDims(c.Int("hidden_size"), c.Int("intermediate_size"), c.Int("num_attention_heads"), c.Int("num_hidden_layers"),
                ConfigActivation.Parse(c, "hidden_act", "gelu"), (float)c.Num("layer_norm_eps", 1e-5));
            if (Frames % Tubelet != 0) throw c.Error("num_frames", $"{Frames} is not a multiple of tubelet_size {Tubelet}");
            int w = Dims.Width, k = Channels * Tubelet * Patch * Patch;
            var m = root.Pp("video_model");
            var proj = m.Pp("embeddings.patch_embeddings.projection");
            var weight = proj.GetFloat32([w, Channels, Tubelet, Patch, Patch], "weight");
            using (var t = Tensor.FromHost<float>(lc.Device, weight, new Shape(w, k)))
            {
                _proj3d = Owned.Add(PackedMatrix.Pack(lc.Device, t.View, transposed: true));
                lc.Device.Synchronize();
            }
            _bias = Owned.Add(lc.Upload(proj, "bias", w));
            _table = Owned.Add(OffsetTable.Tubelets(lc.Device, Channels, Frames, ImageSize, ImageSize, Tubelet, Patch));
            _pos = Owned.Add(lc.Upload(m.Pp("embeddings.position_embedding"), "weight", Tokens, w));
            _layers = LoadLayers(lc, Owned, m.Pp("encoder.layers"), Dims, LayerNames.Clip);
            _post = LayerNormWeights.Load(lc, Owned, m.Pp("post_layernorm"), w, Dims.Eps);
            _proj = Linear.Load(lc, Owned, w, (root.Pp("video_projection"), projectionDim, false));
        }
        catch
        {
            Owned.Dispose();
            throw;
        }
    }

    public int Frames { get; }

    public int Tubelet { get; }

    public int ImageSize { get; }

    public int Patch { get; }

    public int Channels { get; }

    public EncoderDims Dims { get; }

    public int Tokens => Frames / Tubelet * (ImageSize / Patch) * (ImageSize / Patch);

    public override int Width => Dims.Width;

    public override TowerGraph Record(GraphBuilder g, int batch, int length, bool tokens)
    {
        int w = Dims.Width;
        // Frames arrive as [T, C, H, W] per clip (what decoders give); the Conv3d reads [C, T, H, W],
        // so the offset tables index the clip as C-major: the host transposes while packing the input.
        var clip = g.Input(Name + ".clip", DType.F32, new Shape(batch, Channels, Frames, ImageSize * ImageSize));
        var x0 = g.Temp(Name + ".embeddings.out", new Shape(batch, Tokens, w));
        var (table, k, bias, pos) = (_table, _proj3d.View, _bias.View, _pos.View);
        g.Node(Name + ".embeddings", 1, [clip], [x0], v => OffsetGemmKernel.Launch(v.Device, v[clip], table, k, v[x0], default, bias, pos));
        var x = RecordLayers(g, Name, _layers, x0, causal: false, lengths: null);
        var mean = g.Temp(Name + ".mean", new Shape(batch, w));
        g.Node(Name + ".pool", 1, [x], [mean], v => PoolingKernel.Mean(v.Device, v[x], v[mean]));
        var post = _post.Record(g, Name + ".post_layernorm", mean);
        return new TowerGraph(Project(g, _proj, post), tokens ? x : null, [clip]);
    }
}
