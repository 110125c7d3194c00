using OmniKernels.Graph;
using OmniKernels.Kernels;
using OmniKernels.Weights;

namespace OmniKernels.Model;

/// <summary>A tower's recorded graph for one signature: its host-fed inputs and its results.</summary>
internal sealed record TowerGraph(ValueId Embedding, ValueId? Tokens, ValueId[] Inputs);

/// <summary>
/// One modality's encoder. <see cref="Record"/> adds its nodes to a graph for a batch and a padded
/// length (recording touches no device memory); the weights were uploaded at load and are shared,
/// read-only, by every plan.
/// </summary>
internal abstract class Tower(Modality modality, int projectionDim) : IDisposable
{
    protected readonly Owned Owned = new();

    public Modality Modality { get; } = modality;

    public string Name => Modality.ToString().ToLowerInvariant();

    /// <summary>E: width of the projected embedding.</summary>
    public int ProjectionDim { get; } = projectionDim;

    /// <summary>Width of the token states <see cref="TowerGraph.Tokens"/> holds.</summary>
    public abstract int Width { get; }

    /// <summary>Records the tower for <paramref name="batch"/> items of padded length <paramref name="length"/> (ignored by fixed-size inputs).</summary>
    public abstract TowerGraph Record(GraphBuilder g, int batch, int length, bool tokens);

    /// <summary>Records ê = L2(x·Pᵀ): the projected, normalized embedding every head and the fusion use.</summary>
    protected ValueId Project(GraphBuilder g, Linear projection, ValueId pooled, string? name = null)
    {
        name ??= Name;
        var e = projection.Record(g, name + ".projection", pooled);
        var n = g.Temp(name + ".embedding", g.ShapeOf(e), 1);
        g.Node(name + ".l2", 1, [e], [n], v => PoolingKernel.L2Normalize(v.Device, v[e], v[n]));
        return n;
    }

    protected static ValueId RecordLayers(GraphBuilder g, string name, IReadOnlyList<EncoderLayer> layers, ValueId x, bool causal, ValueId? lengths)
    {
        for (int i = 0; i < layers.Count; i++) x = layers[i].Record(g, $"{name}.layers.{i}", x, causal, lengths);
        return x;
    }

    protected static EncoderLayer[] LoadLayers(LoadContext lc, Owned owned, WeightScope layers, EncoderDims d, LayerNames names) =>
        Enumerable.Range(0, d.Layers).Select(i => EncoderLayer.Load(lc, owned, layers.Pp(i.ToString()), d, names)).ToArray();

    public void Dispose() => Owned.Dispose();
}

/// <summary>
/// HF CLIPVisionTransformer + visual_projection: patches and class token with positions, pre-LN,
/// the layers, post-LN of the class token, projection.
/// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/clip/modeling_clip.py#L1034
/// </summary>
internal sealed class ClipVisionTower : Tower
{
    private readonly PatchGrid _grid;
    private readonly PackedMatrix _patch;
    private readonly Tensor _cls, _pos;
    private readonly LayerNormWeights _pre, _post;
    private readonly EncoderLayer[] _layers;
    private readonly Linear _proj;

    public ClipVisionTower(LoadContext lc, WeightScope root, ConfigNode c, int projectionDim, Modality modality = Modality.Image)
        : base(modality, projectionDim)
    {
        try
        {
            ImageSize = c.Int("image_size");
            Patch = c.Int("patch_size");
            Channels = c.Int("num_channels", 3);
            Dims = new EncoderDims(c.Int("hidden_size"), c.Int("intermediate_size"), c.Int("num_attention_heads"), c.Int("num_hidden_layers"),
                ConfigActivation.Parse(c, "hidden_act", "quick_gelu"), (float)c.Num("layer_norm_eps", 1e-5));
            Mean = c.Floats("image_mean");
            Std = c.Floats("image_std");
            int w = Dims.Width, tokens = ImageSize / Patch * (ImageSize / Patch) + 1;
            var m = root.Pp("vision_model");
            var emb = m.Pp("embeddings");
            _grid = Owned.Add(PatchGrid.Create(lc.Device, Channels, ImageSize, ImageSize, Patch));
            var conv = emb.Pp("patch_embedding").GetFloat32([w, Channels, Patch, Patch], "weight");
            using (var t = Tensor.FromHost<float>(lc.Device, conv, new Shape(w, Channels * Patch * Patch)))
            {
                _patch = Owned.Add(PackedMatrix.Pack(lc.Device, t.View, transposed: true));
                lc.Device.Synchronize();
            }
            _cls = Owned.Add(lc.Upload(emb, "class_embedding", w));
            _pos = Owned.Add(lc.Upload(emb.Pp("position_embedding"), "weight", tokens, w));
            _pre = LayerNormWeights.Load(lc, Owned, m.Pp("pre_layrnorm"), w, Dims.Eps);
            _layers = LoadLayers(lc, Owned, m.Pp("encoder.layers"), Dims, LayerNames.Clip);
            _post = LayerNormWeights.Load(lc, Owned, m.Pp("post_layernorm"), w, Dims.Eps);
            _proj = Linear.Load(lc, Owned, w, (root.Pp("visual_projection"), projectionDim, false));
        }
        catch
        {
            Owned.Dispose();
            throw;
        }
    }

    public int ImageSize { get; }

    public int Patch { get; }

    public int Channels { get; }

    public EncoderDims Dims { get; }

    public float[]? Mean { get; }

    public float[]? Std { get; }

    public override int Width => Dims.Width;

    /// <summary>Tokens per image: patches plus the class token.</summary>
    public int Tokens => _grid.Patches + 1;

    public override TowerGraph Record(GraphBuilder g, int batch, int length, bool tokens)
    {
        var pixels = g.Input(Name + ".pixels", DType.F32, new Shape(batch, Channels, ImageSize, ImageSize));
        var (emb, states) = RecordFrom(g, Name, pixels, batch, tokens);
        return new TowerGraph(emb, states, [pixels]);
    }

    /// <summary>The tower over a pixel value [B, C, H, W] (video frames reuse it).</summary>
    public (ValueId Embedding, ValueId? Tokens) RecordFrom(GraphBuilder g, string name, ValueId pixels, int batch, bool tokens)
    {
        int w = Dims.Width;
        var x0 = g.Temp(name + ".embeddings.out", new Shape(batch, Tokens, w));
        var (grid, patch, cls, pos) = (_grid, _patch.View, _cls.View, _pos.View);
        g.Node(name + ".embeddings", 2, [pixels], [x0], v => PatchEmbedKernel.Launch(v.Device, v[pixels], grid, patch, v[x0], null, cls, pos));
        var x = _pre.Record(g, name + ".pre_layrnorm", x0);
        x = RecordLayers(g, name, _layers, x, causal: false, lengths: null);
        // Class-token pooling: row 0 of every image, gathered through a strided view.
        var post = _post.Record(g, name + ".post_layernorm", RowZero(g, name, x, batch, w));
        ValueId? states = tokens ? _post.Record(g, name + ".post_layernorm.tokens", x) : null;
        return (Project(g, _proj, post, name), states);
    }

    private static ValueId RowZero(GraphBuilder g, string name, ValueId x, int batch, int w)
    {
        var y = g.Temp(name + ".cls", new Shape(batch, w));
        g.Node(name + ".cls", 1, [x], [y], v =>
        {
            var t = v[x];
            var rows = new TensorView(t.Storage, t.DType, new Shape(batch, w), new Shape(t.Strides[0], 1), t.Offset);
            ElementwiseKernel.Activate<NoActivation>(v.Device, rows, v[y]);
        });
        return y;
    }
}
