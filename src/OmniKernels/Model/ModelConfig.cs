using System.Text.Json;
using OmniKernels.Kernels;

namespace OmniKernels.Model;

/// <summary>A model folder that cannot be loaded: the message names the file and the key or tensor.</summary>
public sealed class ModelFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The modalities a request may carry, in the fusion's default order.</summary>
public enum Modality
{
    /// <summary>A still image.</summary>
    Image,
    /// <summary>Text.</summary>
    Text,
    /// <summary>Speech or other audio.</summary>
    Audio,
    /// <summary>A short clip of frames.</summary>
    Video,
}

/// <summary>A JSON object of the config with the path of keys that led to it, so that every error names file and key.</summary>
internal readonly struct ConfigNode(JsonElement e, string file, string path)
{
    public string Path => path;

    public string File => file;

    public bool Has(string key) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    public ConfigNode Obj(string key) => Get(key, JsonValueKind.Object, "an object");

    public string Str(string key) => Get(key, JsonValueKind.String, "a string").Raw.GetString()!;

    public string Str(string key, string fallback) => Has(key) ? Str(key) : fallback;

    public int Int(string key)
    {
        var n = Get(key, JsonValueKind.Number, "an integer");
        if (!n.Raw.TryGetInt32(out int v) || v <= 0) throw Error(key, $"must be a positive integer, got {n.Raw.GetRawText()}");
        return v;
    }

    public int Int(string key, int fallback) => Has(key) ? Int(key) : fallback;

    /// <summary>A token id or other index: an integer ≥ 0.</summary>
    public int Id(string key, int fallback)
    {
        if (!Has(key)) return fallback;
        var n = Get(key, JsonValueKind.Number, "an integer");
        if (!n.Raw.TryGetInt32(out int v) || v < 0) throw Error(key, $"must be an integer ≥ 0, got {n.Raw.GetRawText()}");
        return v;
    }

    public double Num(string key, double fallback) => Has(key) ? Get(key, JsonValueKind.Number, "a number").Raw.GetDouble() : fallback;

    public bool Bool(string key, bool fallback)
    {
        if (!Has(key)) return fallback;
        var v = e.GetProperty(key);
        if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Error(key, "must be true or false");
        return v.GetBoolean();
    }

    public string[] Strings(string key)
    {
        var a = Get(key, JsonValueKind.Array, "an array of strings");
        var list = new List<string>();
        foreach (var item in a.Raw.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) throw Error(key, "must be an array of strings");
            list.Add(item.GetString()!);
        }
        return [.. list];
    }

    public float[]? Floats(string key)
    {
        if (!Has(key)) return null;
        var a = Get(key, JsonValueKind.Array, "an array of numbers");
        var list = new List<float>();
        foreach (var x in a.Raw.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number) throw Error(key, "must hold numbers only");
            list.Add(x.GetSingle());
        }
        return [.. list];
    }

    public IEnumerable<(string Key, ConfigNode Node)> Entries()
    {
        foreach (var p in e.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Object) throw Error(p.Name, "must be an object");
            yield return (p.Name, new ConfigNode(p.Value, file, Join(p.Name)));
        }
    }

    public JsonElement Raw => e;

    public ModelFormatException Error(string key, string what) => new($"{file}: '{Join(key)}' {what}");

    private ConfigNode Get(string key, JsonValueKind kind, string what)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            throw Error(key, "is missing");
        if (v.ValueKind != kind) throw Error(key, $"must be {what}, got {v.ValueKind.ToString().ToLowerInvariant()}");
        return new ConfigNode(v, file, Join(key));
    }

    private string Join(string key) => path.Length == 0 ? key : path + "." + key;
}

/// <summary>Activation names as configs spell them (HF's hidden_act / activation_function).</summary>
internal static class ConfigActivation
{
    public static Activation Parse(ConfigNode n, string key, string fallback) => n.Str(key, fallback) switch
    {
        "quick_gelu" => Activation.QuickGelu,
        "gelu" => Activation.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" => Activation.GeluTanh,
        "silu" or "swish" => Activation.Silu,
        var a => throw n.Error(key, $"names an unsupported activation '{a}' (quick_gelu, gelu, gelu_new, silu)"),
    };
}
