using System.Text.Json;
using OmniKernels.Kernels;
using OmniKernels.Text;
using OmniKernels.Weights;

namespace OmniKernels.Model;

/// <summary>
/// A loaded model folder: its towers, fusion and heads with their weights on the device, the
/// tokenizer, and what the config says of inputs. Immutable after load; the session owns and
/// disposes it. Two config flavours: ours (<c>model_type: omni</c>, docs/model-format.md) and a
/// Hugging Face <c>CLIPModel</c> folder, loaded as it is.
/// </summary>
internal sealed class OmniModel : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private readonly Owned _heads = new();

    private OmniModel(string name) => Name = name;

    public string Name { get; }

    public string Directory { get; private set; } = "";

    /// <summary>The modalities the model has towers for, in the config's order.</summary>
    public IReadOnlyList<Modality> Modalities { get; private set; } = [];

    public Dictionary<Modality, Tower> Towers { get; } = [];

    public Fusion? Fusion { get; private set; }

    public Linear? Classifier { get; private set; }

    public string[] Labels { get; private set; } = [];

    /// <summary>exp(logit_scale) when the checkpoint has one, else null (similarities are plain cosines).</summary>
    public float? LogitScale { get; private set; }

    public TextTokenizer? Tokenizer { get; private set; }

    /// <summary>Names the checkpoint holds that no module asked for (a sign of a naming mismatch; HF's position_ids buffers among them).</summary>
    public IReadOnlyList<string> UnusedTensors { get; private set; } = [];

    /// <summary>
    /// Loads a model folder. Every problem (a missing file or key, an unknown tower or fusion type,
    /// a missing or mis-shaped tensor) throws <see cref="ModelFormatException"/> naming the file and
    /// the key or tensor; whatever was uploaded before it is freed.
    /// </summary>
    public static OmniModel Load(DeviceContext ctx, string dir, bool int8, IReadOnlySet<Modality>? only)
    {
        string configPath = Path.Combine(dir, "config.json");
        if (!System.IO.Directory.Exists(dir)) throw new ModelFormatException($"{dir}: model folder does not exist");
        if (!File.Exists(configPath)) throw new ModelFormatException($"{configPath}: missing (a model folder holds config.json and its safetensors)");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(configPath), new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{configPath}: not valid JSON: {e.Message}", e);
        }
        using var _ = doc;
        var root = new ConfigNode(doc.RootElement, configPath, "");
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{configPath}: must be a JSON object");
        string type = root.Str("model_type");
        var model = new OmniModel(Path.GetFileName(Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar))) { Directory = dir };
        WeightStore? store = null;
        try
        {
            store = WeightStore.Open(dir);
            var lc = new LoadContext(ctx, int8, store);
            switch (type)
            {
                case "omni": model.LoadOmni(lc, root, dir, only); break;
                case "clip": model.LoadHfClip(lc, root, dir, only); break;
                default: throw root.Error("model_type", $"is '{type}'; expected 'omni' or 'clip'");
            }
            model.UnusedTensors = store.Unused();
            return model;
        }
        catch (SafetensorsFormatException e)
        {
            model.Dispose();
            throw new ModelFormatException(e.Message, e);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            store?.Dispose();
        }
    }

    private void LoadOmni(LoadContext lc, ConfigNode root, string dir, IReadOnlySet<Modality>? only)
    {
        int e = root.Int("projection_dim");
        var names = root.Strings("modalities");
        var order = names.Select(n => ParseModality(root, "modalities", n)).ToArray();
        if (order.Length == 0 || order.Distinct().Count() != order.Length) throw root.Error("modalities", "must name each modality once");
        Modalities = order;
        var towers = root.Obj("towers");
        foreach (var (key, node) in towers.Entries())
        {
            var m = ParseModality(towers, key, key);
            if (!order.Contains(m)) throw towers.Error(key, $"is a tower for '{key}', which 'modalities' does not list");
        }
        foreach (var m in order)
        {
            string key = m.ToString().ToLowerInvariant();
            if (!towers.Has(key)) throw towers.Error(key, "is missing: every listed modality needs a tower");
        }
        // The image tower first: a video_frames tower runs it.
        foreach (var m in order.OrderBy(m => m == Modality.Image ? 0 : 1))
        {
            string key = m.ToString().ToLowerInvariant();
            if (only is not null && !only.Contains(m) && !(m == Modality.Image && only.Contains(Modality.Video))) continue;
            var c = towers.Obj(key);
            string prefix = c.Str("prefix", "").TrimEnd('.');
            var scope = prefix.Length == 0 ? lc.Store.Root : lc.Store.Scope(prefix);
            string kind = c.Str("type");
            Tower tower = (m, kind) switch
            {
                (Modality.Image, "clip_vision") => new ClipVisionTower(lc, scope, c, e),
                (Modality.Text, "clip_text") => new ClipTextTower(lc, scope, c, e),
                (Modality.Audio, "whisper_encoder") => new WhisperEncoderTower(lc, scope, c, e),
                (Modality.Video, "video_frames") => new VideoFramesTower(
                    Towers.GetValueOrDefault(Modality.Image) as ClipVisionTower ?? throw c.Error("type", "video_frames needs a clip_vision image tower"),
                    c.Int("num_frames")),
                (Modality.Video, "video_tubelet") => new VideoTubeletTower(lc, scope, c, e),
                _ => throw c.Error("type", $"'{kind}' is not a tower type for {key} (image: clip_vision; text: clip_text; audio: whisper_encoder; video: video_frames or video_tubelet)"),
            };
            Own(tower);
            Towers[m] = tower;
            if (m == Modality.Text) Tokenizer = LoadTokenizer(c, dir, (ClipTextTower)tower);
        }
        var fusion = root.Obj("fusion");
        string ft = fusion.Str("type");
        Fusion = ft switch
        {
            "gate" => Own(new GateFusion(lc, lc.Store.Scope("fusion"), order, e)),
            "adaptive_cross_attention" => LoadAdaptive(lc, fusion, order),
            _ => throw fusion.Error("type", $"is '{ft}'; expected 'gate' or 'adaptive_cross_attention'"),
        };
        if (root.Has("classifier") && Fusion is not null)
        {
            Labels = root.Obj("classifier").Strings("labels");
            if (Labels.Length == 0) throw root.Error("classifier.labels", "is empty");
            Classifier = Linear.Load(lc, _heads, Fusion.Width, (lc.Store.Scope("classifier"), Labels.Length, true));
        }
        if (root.Bool("logit_scale", false)) LogitScale = MathF.Exp(lc.Store.Root.GetFloat32([], "logit_scale")[0]);
    }

    private Fusion? LoadAdaptive(LoadContext lc, ConfigNode fusion, Modality[] order)
    {
        if (!order.Contains(Modality.Image) || !order.Contains(Modality.Text))
            throw fusion.Error("type", "adaptive_cross_attention needs image and text towers");
        // Loaded with only some towers, the fusion has nothing to read unless both of its own are there.
        if (!Towers.ContainsKey(Modality.Image) || !Towers.ContainsKey(Modality.Text)) return null;
        return Own(new AdaptiveCrossAttentionFusion(lc, lc.Store.Scope("fusion"), fusion, Towers[Modality.Image].Width, Towers[Modality.Text].Width));
    }

    /// <summary>
    /// A Hugging Face CLIPModel folder: text_config and vision_config hold HF's key names, which our
    /// tower configs share; the BPE tokenizer is vocab.json + merges.txt beside it.
    /// </summary>
    private void LoadHfClip(LoadContext lc, ConfigNode root, string dir, IReadOnlySet<Modality>? only)
    {
        int e = root.Int("projection_dim", 512);
        Modalities = [Modality.Image, Modality.Text];
        if (only is null || only.Contains(Modality.Image))
            Towers[Modality.Image] = Own(new ClipVisionTower(lc, lc.Store.Root, root.Obj("vision_config"), e));
        if (only is null || only.Contains(Modality.Text))
        {
            var c = root.Obj("text_config");
            var text = Own(new ClipTextTower(lc, lc.Store.Root, c, e));
            Towers[Modality.Text] = text;
            Tokenizer = TextTokenizer.ClipBpe(RequireFile(dir, "vocab.json"), RequireFile(dir, "merges.txt"));
        }
        LogitScale = MathF.Exp(lc.Store.Root.GetFloat32([], "logit_scale")[0]);
    }

    private static TextTokenizer LoadTokenizer(ConfigNode c, string dir, ClipTextTower text)
    {
        var t = c.Obj("tokenizer");
        string kind = t.Str("type");
        return kind switch
        {
            "sentencepiece" => TextTokenizer.SentencePiece(RequireFile(dir, t.Str("file")), text.BosTokenId, text.EosTokenId),
            "clip_bpe" => TextTokenizer.ClipBpe(RequireFile(dir, t.Str("vocab")), RequireFile(dir, t.Str("merges"))),
            _ => throw t.Error("type", $"is '{kind}'; expected 'sentencepiece' or 'clip_bpe'"),
        };
    }

    private static string RequireFile(string dir, string name)
    {
        string path = Path.Combine(dir, name);
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: missing (the text tower's tokenizer)");
        return path;
    }

    private static Modality ParseModality(ConfigNode n, string key, string name) => name switch
    {
        "image" => Modality.Image,
        "text" => Modality.Text,
        "audio" => Modality.Audio,
        "video" => Modality.Video,
        _ => throw n.Error(key, $"names an unknown modality '{name}' (image, text, audio, video)"),
    };

    private T Own<T>(T item) where T : IDisposable
    {
        _owned.Add(item);
        return item;
    }

    /// <summary>Frees every device tensor the model uploaded.</summary>
    public void Dispose()
    {
        _heads.Dispose();
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _owned.Clear();
    }
}
