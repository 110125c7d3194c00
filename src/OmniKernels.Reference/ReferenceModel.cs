using System.Text.Json;
using OmniKernels.Weights;

namespace OmniKernels.Reference;

/// <summary>
/// One request to <see cref="ReferenceModel.Run"/>: any non-empty subset of the model's modalities,
/// each already in the form its tower reads (no decoding, tokenization or log-mel here). Immutable;
/// the arrays are read, never kept or written.
/// </summary>
public sealed record ReferenceRequest
{
    /// <summary>Image: preprocessed pixels [C, H, W] in C order, at the tower's image size.</summary>
    public float[]? Pixels { get; init; }

    /// <summary>Text: token ids with the start and end tokens, at most the tower's context length.</summary>
    public int[]? TextIds { get; init; }

    /// <summary>Audio: the Whisper log-mel [mels, 2·P] in C order.</summary>
    public float[]? LogMel { get; init; }

    /// <summary>Real samples behind <see cref="LogMel"/> (the mean pools the first min(P, ⌈samples / 320⌉) positions); null: all 2·P·160 are real.</summary>
    public int? LogMelSamples { get; init; }

    /// <summary>Video: preprocessed frames [T, C, H, W] in C order, T = the tower's frame count.</summary>
    public float[]? VideoFrames { get; init; }
}

/// <summary>
/// What <see cref="ReferenceModel.Run"/> computed, all in float64. Owns only fresh host arrays.
/// Modalities are named "image", "text", "audio", "video".
/// </summary>
public sealed record ReferenceResult
{
    /// <summary>The modalities whose towers ran, in the model's order.</summary>
    public required IReadOnlyList<string> Modalities { get; init; }

    /// <summary>Projected, L2-normalized embedding [E] per modality present.</summary>
    public required IReadOnlyDictionary<string, double[]> Embeddings { get; init; }

    /// <summary>The fused vector, or null when the model has no fusion or none of the fusion's inputs is present.</summary>
    public double[]? Fused { get; init; }

    /// <summary>Gate values: g [M·E] with absent blocks 0 (gate fusion) or (w_v, w_t) (adaptive fusion); null with <see cref="Fused"/>.</summary>
    public double[]? Gates { get; init; }

    /// <summary>Classifier logits over the fused vector, in label order; null without a classifier or a fused vector.</summary>
    public double[]? Logits { get; init; }

    /// <summary>softmax(<see cref="Logits"/>), in label order.</summary>
    public double[]? Probabilities { get; init; }

    /// <summary>The present pairs ("image-text"), each (a, b) with a before b in the model's order.</summary>
    public required IReadOnlyList<string> SimilarityPairs { get; init; }

    /// <summary>ê_a · ê_b per pair of <see cref="SimilarityPairs"/> (the cosine).</summary>
    public required double[] Similarities { get; init; }

    /// <summary>exp(logit_scale)·cosine per pair, when the model has a logit scale.</summary>
    public double[]? SimilarityLogits { get; init; }
}

/// <summary>
/// A test oracle: the float64 forward of a whole model folder (docs/model-format.md; our
/// <c>model_type: omni</c> config or a Hugging Face <c>CLIPModel</c> folder) in naive loops over the
/// checkpoint's float32 weights, sharing no code with the kernels or the runtime's model: it reads
/// config.json and the safetensors itself. Towers: clip_vision, clip_text, whisper_encoder,
/// video_frames, video_tubelet; fusions: gate, adaptive_cross_attention; heads: classifier and
/// similarities. Slow by design (no blocking, no SIMD, no threads): meant for tiny test models.
/// Immutable after <see cref="Load"/> and holds no file open; <see cref="Run"/> is thread-safe.
/// </summary>
public sealed class ReferenceModel
{
    private static readonly string[] Known = ["image", "text", "audio", "video"];

    private readonly Dictionary<string, ReferenceTower> _towers = [];
    private string[] _order = [];
    private ReferenceFusion? _fusion;
    private LinearWeights? _classifier;

    private ReferenceModel(string name) => Name = name;

    /// <summary>The model's name (its folder).</summary>
    public string Name { get; }

    /// <summary>The modalities the model has towers for, in the config's order (the gate fusion's block order).</summary>
    public IReadOnlyList<string> Modalities => _order;

    /// <summary>The classifier's labels (empty without one).</summary>
    public IReadOnlyList<string> Labels { get; private set; } = [];

    /// <summary>exp(logit_scale) when the model has one, else null.</summary>
    public double? LogitScale { get; private set; }

    /// <summary>
    /// Reads <paramref name="directory"/>/config.json and the folder's safetensors (one file or sharded).
    /// </summary>
    /// <exception cref="InvalidDataException">A missing or malformed config key, named with the file.</exception>
    /// <exception cref="SafetensorsFormatException">A missing or mis-shaped tensor, named with the file.</exception>
    public static ReferenceModel Load(string directory)
    {
        string path = Path.Combine(directory, "config.json");
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: missing");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: must be a JSON object");
        var root = new ConfigObject(doc.RootElement, path, "");
        var model = new ReferenceModel(Path.GetFileName(Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar)));
        using var store = WeightStore.Open(directory);
        switch (root.Str("model_type"))
        {
            case "omni": model.LoadOmni(root, store); break;
            case "clip": model.LoadHfClip(root, store); break;
            case var t: throw root.Error("model_type", $"is '{t}'; expected 'omni' or 'clip'");
        }
        return model;
    }

    private void LoadOmni(ConfigObject root, WeightStore store)
    {
        int e = root.Int("projection_dim");
        _order = root.Strings("modalities");
        if (_order.Length == 0 || _order.Distinct().Count() != _order.Length || _order.Any(m => !Known.Contains(m)))
            throw root.Error("modalities", "must name each of image, text, audio, video at most once, and at least one");
        var towers = root.Obj("towers");
        foreach (string key in towers.Keys)
            if (!_order.Contains(key)) throw towers.Error(key, "is a tower for a modality 'modalities' does not list");
        // Vision towers first: a video_frames tower runs one.
        foreach (string m in _order.OrderBy(m => towers.Obj(m).Str("type") == "clip_vision" ? 0 : 1))
        {
            var c = towers.Obj(m);
            string prefix = c.Str("prefix", "").TrimEnd('.');
            var scope = prefix.Length == 0 ? store.Root : store.Scope(prefix);
            _towers[m] = (m, c.Str("type")) switch
            {
                ("image", "clip_vision") => new VisionTower(m, scope, c, e),
                ("text", "clip_text") => new TextTower(m, scope, c, e),
                ("audio", "whisper_encoder") => new AudioTower(m, scope, c, e),
                ("video", "video_frames") => new VideoFramesTower(m,
                    _towers.GetValueOrDefault(c.Str("image_tower", "image")) as VisionTower ?? throw c.Error("image_tower", "must name a clip_vision tower"),
                    c.Int("num_frames")),
                ("video", "video_tubelet") => new TubeletTower(m, scope, c, e),
                var (_, t) => throw c.Error("type", $"'{t}' is not a tower type for {m}"),
            };
        }
        if (root.Has("fusion"))
        {
            var f = root.Obj("fusion");
            _fusion = f.Str("type") switch
            {
                "gate" => new GateFusion(store.Scope("fusion"), _order, e),
                "adaptive_cross_attention" => Adaptive(store, f),
                var t => throw f.Error("type", $"is '{t}'; expected 'gate' or 'adaptive_cross_attention'"),
            };
        }
        if (root.Has("classifier") && _fusion is not null)
        {
            Labels = root.Obj("classifier").Strings("labels");
            if (Labels.Count == 0) throw root.Error("classifier.labels", "is empty");
            _classifier = LinearWeights.Load(store.Scope("classifier"), Labels.Count, _fusion.Width, bias: true);
        }
        if (root.Bool("logit_scale", false)) LogitScale = Math.Exp(store.Root.GetFloat32([], "logit_scale")[0]);
    }

    private AdaptiveFusion Adaptive(WeightStore store, ConfigObject f)
    {
        string vision = f.Str("vision"), text = f.Str("text");
        var v = _towers.GetValueOrDefault(vision) as VisionTower ?? throw f.Error("vision", $"'{vision}' is not a clip_vision tower");
        var t = _towers.GetValueOrDefault(text) as TextTower ?? throw f.Error("text", $"'{text}' is not a clip_text tower");
        return new AdaptiveFusion(store.Scope("fusion"), f, vision, v.Width, text, t.Width);
    }

    /// <summary>HF CLIPModel: vision_config and text_config use the key names our towers read; similarities carry logit_scale.</summary>
    private void LoadHfClip(ConfigObject root, WeightStore store)
    {
        int e = root.Int("projection_dim", 512);
        _order = ["image", "text"];
        _towers["image"] = new VisionTower("image", store.Root, root.Obj("vision_config"), e);
        _towers["text"] = new TextTower("text", store.Root, root.Obj("text_config"), e);
        LogitScale = Math.Exp(store.Root.GetFloat32([], "logit_scale")[0]);
    }

    /// <summary>Runs the towers of the modalities the request carries, the fusion over them and the heads.</summary>
    /// <exception cref="ArgumentException">No modality, one the model lacks, or an input of the wrong size, named in the message.</exception>
    public ReferenceResult Run(ReferenceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.LogMelSamples is not null && request.LogMel is null) throw new ArgumentException("LogMelSamples is set without a LogMel");
        var carried = new List<string>();
        if (request.Pixels is not null) carried.Add("image");
        if (request.TextIds is not null) carried.Add("text");
        if (request.LogMel is not null) carried.Add("audio");
        if (request.VideoFrames is not null) carried.Add("video");
        if (carried.Count == 0) throw new ArgumentException("the request carries no modality");
        foreach (string m in carried)
            if (!_towers.ContainsKey(m)) throw new ArgumentException($"the request carries {m}; the model has towers for {string.Join(", ", _order)}");
        var present = _order.Where(carried.Contains).ToArray();
        var embeddings = new Dictionary<string, double[]>();
        var tokens = new Dictionary<string, double[]>();
        foreach (string m in present)
        {
            var o = _towers[m].Forward(request);
            embeddings[m] = ModelMath.L2Normalize(o.Embedding);
            if (o.Tokens is not null) tokens[m] = o.Tokens;
        }
        var fusion = _fusion?.Forward(embeddings, tokens);
        double[]? logits = fusion is not null ? _classifier?.Apply(fusion.Fused) : null;
        var pairs = new List<string>();
        var cosines = new List<double>();
        for (int i = 0; i < present.Length; i++)
            for (int j = i + 1; j < present.Length; j++)
            {
                pairs.Add($"{present[i]}-{present[j]}");
                cosines.Add(ModelMath.Dot(embeddings[present[i]], embeddings[present[j]]));
            }
        return new ReferenceResult
        {
            Modalities = present,
            Embeddings = embeddings,
            Fused = fusion?.Fused,
            Gates = fusion?.Gates,
            Logits = logits,
            Probabilities = logits is null ? null : ModelMath.Softmax(logits),
            SimilarityPairs = pairs,
            Similarities = [.. cosines],
            SimilarityLogits = LogitScale is { } s ? cosines.Select(c => s * c).ToArray() : null,
        };
    }
}
