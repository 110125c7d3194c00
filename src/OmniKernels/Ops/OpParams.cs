using System.Globalization;

namespace OmniKernels.Ops;

/// <summary>
/// KEY=VALUE parameters of an op. Reading marks a key as known; <see cref="ThrowIfUnread"/>
/// then rejects typos instead of ignoring them.
/// </summary>
public sealed class OpParams
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _read = new();

    /// <summary>Wraps parsed pairs.</summary>
    public OpParams(IReadOnlyDictionary<string, string>? values = null) =>
        _values = new Dictionary<string, string>(values ?? new Dictionary<string, string>(), StringComparer.Ordinal);

    /// <summary>Parses KEY=VALUE strings; a malformed or repeated one throws.</summary>
    public static OpParams Parse(IEnumerable<string> pairs)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in pairs)
        {
            int eq = p.IndexOf('=');
            if (eq <= 0) throw new OpInputException($"--param '{p}' must be KEY=VALUE");
            var key = p[..eq].Trim();
            if (!d.TryAdd(key, p[(eq + 1)..].Trim())) throw new OpInputException($"--param {key} given twice");
        }
        return new OpParams(d);
    }

    /// <summary>A boolean (true/false/1/0), or <paramref name="fallback"/>.</summary>
    public bool Bool(string key, bool fallback)
    {
        if (!Take(key, out var v)) return fallback;
        return v.ToLowerInvariant() switch
        {
            "true" or "1" or "yes" => true,
            "false" or "0" or "no" => false,
            _ => throw new OpInputException($"--param {key}={v}: expected true or false"),
        };
    }

    /// <summary>A finite float, or <paramref name="fallback"/>.</summary>
    public float Float(string key, float fallback)
    {
        if (!Take(key, out var v)) return fallback;
        if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) || !float.IsFinite(f))
            throw new OpInputException($"--param {key}={v}: expected a finite number");
        return f;
    }

    /// <summary>A string, or <paramref name="fallback"/>.</summary>
    public string Text(string key, string fallback) => Take(key, out var v) ? v : fallback;

    /// <summary>Throws naming any key no op read.</summary>
    public void ThrowIfUnread(string op, IEnumerable<string> known)
    {
        var unknown = _values.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new OpInputException($"op '{op}' has no parameter {string.Join(", ", unknown)}; it takes: {string.Join(", ", known)}");
    }

    private bool Take(string key, out string value)
    {
        _read.Add(key);
        return _values.TryGetValue(key, out value!);
    }
}
