using System.Text.Json;

namespace OmniKernels.Reference;

/// <summary>
/// A JSON object of a model's config.json with the key path that led to it, so that every error
/// names the file and the key. Deliberately small and separate from the runtime's config parser:
/// the reference reads the format on its own.
/// </summary>
internal readonly struct ConfigObject(JsonElement e, string file, string path)
{
    public string File => file;

    public bool Has(string key) => e.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    public ConfigObject Obj(string key) => new(Get(key, JsonValueKind.Object), file, Join(key));

    public string Str(string key) => Get(key, JsonValueKind.String).GetString()!;

    public string Str(string key, string fallback) => Has(key) ? Str(key) : fallback;

    /// <summary>A size: an integer ≥ 1.</summary>
    public int Int(string key)
    {
        var v = Get(key, JsonValueKind.Number);
        return v.TryGetInt32(out int i) && i > 0 ? i : throw Error(key, $"must be a positive integer, got {v.GetRawText()}");
    }

    public int Int(string key, int fallback) => Has(key) ? Int(key) : fallback;

    /// <summary>A token id: an integer ≥ 0.</summary>
    public int Id(string key, int fallback)
    {
        if (!Has(key)) return fallback;
        var v = Get(key, JsonValueKind.Number);
        return v.TryGetInt32(out int i) && i >= 0 ? i : throw Error(key, $"must be an integer ≥ 0, got {v.GetRawText()}");
    }

    public double Num(string key, double fallback) => Has(key) ? Get(key, JsonValueKind.Number).GetDouble() : fallback;

    public bool Bool(string key, bool fallback)
    {
        if (!Has(key)) return fallback;
        var v = e.GetProperty(key);
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(key, "must be true or false"),
        };
    }

    public string[] Strings(string key)
    {
        var list = new List<string>();
        foreach (var x in Get(key, JsonValueKind.Array).EnumerateArray())
            list.Add(x.ValueKind == JsonValueKind.String ? x.GetString()! : throw Error(key, "must be an array of strings"));
        return [.. list];
    }

    public string[] Keys => [.. e.EnumerateObject().Select(p => p.Name)];

    /// <summary>The activation a config key names (HF's hidden_act / activation_function spellings).</summary>
    public RefActivation Activation(string key, string fallback) => Str(key, fallback) switch
    {
        "quick_gelu" => RefActivation.QuickGelu,
        "gelu" => RefActivation.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" => RefActivation.GeluTanh,
        "silu" or "swish" => RefActivation.Silu,
        "relu" => RefActivation.Relu,
        var a => throw Error(key, $"names an unknown activation '{a}'"),
    };

    /// <summary>The transformer sizes under CLIP's key names.</summary>
    public EncoderSizes ClipSizes(string defaultActivation) => new(Int("hidden_size"), Int("intermediate_size"),
        Int("num_attention_heads"), Int("num_hidden_layers"), Activation("hidden_act", defaultActivation), Num("layer_norm_eps", 1e-5));

    public InvalidDataException Error(string key, string what) => new($"{file}: '{Join(key)}' {what}");

    private JsonElement Get(string key, JsonValueKind kind)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            throw Error(key, "is missing");
        return v.ValueKind == kind ? v : throw Error(key, $"must be {kind.ToString().ToLowerInvariant()}, got {v.ValueKind.ToString().ToLowerInvariant()}");
    }

    private string Join(string key) => path.Length == 0 ? key : path + "." + key;
}
