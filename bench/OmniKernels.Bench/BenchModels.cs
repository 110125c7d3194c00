using System.Text.Json.Nodes;
using OmniKernels.Session;
using OmniKernels.Weights;

namespace OmniKernels.Bench;

/// <summary>
/// The benchmark's omni model, written at bench time into <c>bench/generated/</c> (ignored by git) in our
/// folder format (docs/model-format.md) from seeded random normals (std 0.02, as CLIP and Whisper
/// initialize; LayerNorm γ = 1 + that noise): a ViT-B/16 image tower, CLIP's 12-layer, width-512 text tower,
/// a Whisper-base encoder (30 s input), an 8-frame video tower over the image tower, the gate fusion and a
/// 10-class head. The INT8 checkpoint is the same folder through <see cref="CheckpointQuantizer"/>. Each
/// folder is built beside its target and renamed into place, so a folder that exists is complete.
/// </summary>
internal static class BenchModels
{
    public const int ProjectionDim = 512;
    public const int VideoFrames = 8;
    public const int ImageSize = 224;
    public const int TextTokens = 32;
    public const int AudioSeconds = 5;
    private const int Bos = 49406, Eos = 49407, Vocab = 49408, Labels = 10;

    public static string Generated => Path.Combine(BenchSetup.RepoRoot(), "bench", "generated");

    public static string Fp32Folder => Path.Combine(Generated, "omni-bench");

    public static string Int8CheckpointFolder => Path.Combine(Generated, "omni-bench-int8");

    /// <summary>The fp32 model folder, generated on first use.</summary>
    public static string Fp32()
    {
        if (!Directory.Exists(Fp32Folder)) Build(Fp32Folder, Write);
        return Fp32Folder;
    }

    /// <summary>The compressed-tensors INT8 checkpoint of <see cref="Fp32"/>, quantized on first use.</summary>
    public static string Int8Checkpoint()
    {
        string source = Fp32();
        if (!Directory.Exists(Int8CheckpointFolder)) CheckpointQuantizer.Quantize(source, Int8CheckpointFolder, []);
        return Int8CheckpointFolder;
    }

    private static void Build(string target, Action<string> write)
    {
        Directory.CreateDirectory(Generated);
        string temp = target + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            Directory.Move(temp, target);
        }
        catch
        {
            Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    private static void Write(string dir)
    {
        var w = new SafetensorsWriter();
        int seed = 1;
        void Normal(string name, params long[] shape) => w.AddFloat32(name, shape, Normals(shape, seed++, 0f));
        void Norm(string name, int width)
        {
            w.AddFloat32(name + ".weight", [width], Normals([width], seed++, 1f));
            Normal(name + ".bias", width);
        }
        void Linear(string name, int outF, int inF, bool bias = true)
        {
            Normal(name + ".weight", outF, inF);
            if (bias) Normal(name + ".bias", outF);
        }
        void Layers(string prefix, int layers, int width, int ffn, bool whisper)
        {
            for (int i = 0; i < layers; i++)
            {
                string l = $"{prefix}.{i}.";
                Norm(l + (whisper ? "self_attn_layer_norm" : "layer_norm1"), width);
                Norm(l + (whisper ? "final_layer_norm" : "layer_norm2"), width);
                foreach (var p in new[] { "q_proj", "k_proj", "v_proj", "out_proj" }) Linear(l + "self_attn." + p, width, width, bias: !(whisper && p == "k_proj"));
                Linear(l + (whisper ? "fc1" : "mlp.fc1"), ffn, width);
                Linear(l + (whisper ? "fc2" : "mlp.fc2"), width, ffn);
            }
        }
        const int e = ProjectionDim;
        // ViT-B/16.
        Normal("vision_model.embeddings.class_embedding", 768);
        Normal("vision_model.embeddings.patch_embedding.weight", 768, 3, 16, 16);
        Normal("vision_model.embeddings.position_embedding.weight", (ImageSize / 16) * (ImageSize / 16) + 1, 768);
        Norm("vision_model.pre_layrnorm", 768);
        Layers("vision_model.encoder.layers", 12, 768, 3072, whisper: false);
        Norm("vision_model.post_layernorm", 768);
        Linear("visual_projection", e, 768, bias: false);
        // CLIP text (ViT-B's text tower).
        Normal("text_model.embeddings.token_embedding.weight", Vocab, 512);
        Normal("text_model.embeddings.position_embedding.weight", 77, 512);
        Layers("text_model.encoder.layers", 12, 512, 2048, whisper: false);
        Norm("text_model.final_layer_norm", 512);
        Linear("text_projection", e, 512, bias: false);
        // Whisper base encoder.
        Normal("model.encoder.conv1.weight", 512, 80, 3);
        Normal("model.encoder.conv1.bias", 512);
        Normal("model.encoder.conv2.weight", 512, 512, 3);
        Normal("model.encoder.conv2.bias", 512);
        Normal("model.encoder.embed_positions.weight", 1500, 512);
        Layers("model.encoder.layers", 6, 512, 2048, whisper: true);
        Norm("model.encoder.layer_norm", 512);
        Linear("audio_projection", e, 512, bias: false);
        // Gate fusion over four modalities, and the head.
        Linear("fusion.gate", 4 * e, 4 * e);
        Linear("classifier", Labels, e);
        w.Write(Path.Combine(dir, "model.safetensors"));

        // The tokenizer the config names must exist; the benchmark feeds token ids, so a small valid CLIP BPE will do.
        string tiny = Path.Combine(BenchSetup.RepoRoot(), "tests", "OmniKernels.Tests", "models", "tiny-clip-hf");
        foreach (var f in new[] { "vocab.json", "merges.txt" }) File.Copy(Path.Combine(tiny, f), Path.Combine(dir, f));
        File.WriteAllText(Path.Combine(dir, "config.json"), Config().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static JsonObject Config() => new()
    {
        ["model_type"] = "omni",
        ["projection_dim"] = ProjectionDim,
        ["modalities"] = new JsonArray("image", "text", "audio", "video"),
        ["towers"] = new JsonObject
        {
            ["image"] = new JsonObject
            {
                ["type"] = "clip_vision", ["hidden_size"] = 768, ["intermediate_size"] = 3072, ["num_hidden_layers"] = 12,
                ["num_attention_heads"] = 12, ["image_size"] = ImageSize, ["patch_size"] = 16, ["num_channels"] = 3, ["hidden_act"] = "quick_gelu",
            },
            ["text"] = new JsonObject
            {
                ["type"] = "clip_text", ["vocab_size"] = Vocab, ["max_position_embeddings"] = 77, ["hidden_size"] = 512,
                ["intermediate_size"] = 2048, ["num_hidden_layers"] = 12, ["num_attention_heads"] = 8, ["hidden_act"] = "quick_gelu",
                ["bos_token_id"] = Bos, ["eos_token_id"] = Eos,
                ["tokenizer"] = new JsonObject { ["type"] = "clip_bpe", ["vocab"] = "vocab.json", ["merges"] = "merges.txt" },
            },
            ["audio"] = new JsonObject
            {
                ["type"] = "whisper_encoder", ["num_mel_bins"] = 80, ["max_source_positions"] = 1500, ["d_model"] = 512,
                ["encoder_layers"] = 6, ["encoder_attention_heads"] = 8, ["encoder_ffn_dim"] = 2048, ["activation_function"] = "gelu",
            },
            ["video"] = new JsonObject { ["type"] = "video_frames", ["num_frames"] = VideoFrames },
        },
        ["fusion"] = new JsonObject { ["type"] = "gate" },
        ["classifier"] = new JsonObject { ["labels"] = new JsonArray([.. Enumerable.Range(0, Labels).Select(i => (JsonNode)$"class{i}")]) },
    };

    /// <summary><paramref name="mean"/> + N(0, 0.02²) values, Box–Muller over a seeded generator.</summary>
    private static float[] Normals(long[] shape, int seed, float mean, float std = 0.02f)
    {
        var x = new float[shape.Aggregate(1L, (a, b) => a * b)];
        var rng = new Random(seed);
        for (long i = 0; i < x.Length; i += 2)
        {
            double u = 1 - rng.NextDouble(), v = rng.NextDouble(), r = Math.Sqrt(-2 * Math.Log(u));
            x[i] = mean + std * (float)(r * Math.Cos(2 * Math.PI * v));
            if (i + 1 < x.Length) x[i + 1] = mean + std * (float)(r * Math.Sin(2 * Math.PI * v));
        }
        return x;
    }

    /// <summary>
    /// <paramref name="count"/> values uniform in ±<paramref name="amplitude"/>: preprocessed pixels at 1.7 (about
    /// the spread of CLIP-normalized pixels), a noise waveform at 0.5.
    /// </summary>
    public static float[] Uniform(Random rng, int count, float amplitude)
    {
        var v = new float[count];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1) * amplitude;
        return v;
    }

    /// <summary>
    /// The request of a kind (text, image, audio, video, or full: all four), from fixed seeds: preprocessed
    /// pixels and frames ~ N(0, 1) (CLIP-normalized pixels have about that spread), <see cref="TextTokens"/> ids
    /// (start, random ids, end), a 5 s waveform of uniform noise at 16 kHz.
    /// </summary>
    public static OmniRequest Request(string kind, bool profile = false)
    {
        var rng = new Random(17);
        float[] Pixels(int count) => Uniform(rng, count, 1.7f);
        bool all = kind == "full";
        if (!all && kind is not ("text" or "image" or "audio" or "video")) throw new ArgumentException($"unknown request kind '{kind}'");
        int[]? ids = null;
        if (all || kind == "text")
        {
            ids = new int[TextTokens];
            ids[0] = Bos;
            for (int i = 1; i < ids.Length - 1; i++) ids[i] = rng.Next(0, Bos);
            ids[^1] = Eos;
        }
        AudioInput? audio = null;
        if (all || kind == "audio")
        {
            audio = new AudioInput { Samples = Uniform(rng, AudioSeconds * 16000, 0.5f), SampleRate = 16000 };
        }
        int frame = 3 * ImageSize * ImageSize;
        return new OmniRequest
        {
            TextIds = ids,
            Image = all || kind == "image" ? new ImageInput { Pixels = Pixels(frame) } : null,
            Audio = audio,
            Video = all || kind == "video" ? new VideoInput { Frames = Pixels(VideoFrames * frame) } : null,
            Profile = profile,
        };
    }
}
