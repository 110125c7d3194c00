using System.Text.Json;

namespace OmniKernels.Weights;

/// <summary>
/// A model's tensors over one safetensors file or the shards of a <c>model.safetensors.index.json</c>,
/// looked up by name through <see cref="WeightScope"/>s (candle's <c>VarBuilder</c>). The store owns the
/// files it opened and unmaps them on <see cref="Dispose"/>; scopes and spans are valid until then.
/// Lookups are thread-safe; the record of which names were requested (<see cref="Unused"/>) is too.
/// </summary>
public sealed class WeightStore : IDisposable
{
    /// <summary>The single-file name Hugging Face checkpoints use.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>The shard index name Hugging Face checkpoints use.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly SafetensorsFile[] _files;
    private readonly Dictionary<string, (TensorInfo Info, SafetensorsFile File)> _byName;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private readonly Lock _usedLock = new();

    private WeightStore(string source, SafetensorsFile[] files, Dictionary<string, (TensorInfo, SafetensorsFile)> byName)
    {
        Source = source;
        _files = files;
        _byName = byName;
        All = byName.Values.Select(v => v.Item1).OrderBy(t => t.Name, StringComparer.Ordinal).ToArray();
        Files = Array.AsReadOnly(files);
        var metadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in files)
            foreach (var (k, v) in f.Metadata) metadata.TryAdd(k, v);
        Metadata = metadata.AsReadOnly();
    }

    /// <summary>What was opened: the safetensors file or the index (full path).</summary>
    public string Source { get; }

    /// <summary>The open files, one per shard (owned by the store).</summary>
    public IReadOnlyList<SafetensorsFile> Files { get; }

    /// <summary>The files' <c>__metadata__</c> merged (for shards, the first shard holding a key gives its value).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor of every file, sorted by name.</summary>
    public IReadOnlyList<TensorInfo> All { get; }

    /// <summary>The unprefixed scope.</summary>
    public WeightScope Root => new(this, "");

    /// <summary>A scope under <paramref name="prefix"/>: the same as <c>Root.Pp(prefix)</c>.</summary>
    public WeightScope Scope(string prefix) => Root.Pp(prefix);

    /// <summary>
    /// Opens a <c>.safetensors</c> file, a <c>model.safetensors.index.json</c>, or a folder holding
    /// <c>model.safetensors</c> (preferred, as Hugging Face does) or the index. Every file is validated; for an
    /// index, a name listed twice, a shard that is missing or not a plain file name in the index's folder, a
    /// listed tensor absent from its shard, and a shard tensor the index does not list are each reported.
    /// On failure every file opened so far is closed.
    /// </summary>
    /// <exception cref="SafetensorsFormatException">Anything missing or malformed, named in the message.</exception>
    public static WeightStore Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            string single = Path.Combine(full, SingleFileName), index = Path.Combine(full, IndexFileName);
            if (File.Exists(single)) return OpenSingle(single);
            if (File.Exists(index)) return OpenIndex(index);
            throw new SafetensorsFormatException($"{full}: folder holds neither {SingleFileName} nor {IndexFileName}", full);
        }
        if (!File.Exists(full))
            throw new SafetensorsFormatException($"{full}: no such file or folder", full);
        return full.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(full) : OpenSingle(full);
    }

    private static WeightStore OpenSingle(string file)
    {
        var f = SafetensorsFile.Open(file);
        return new WeightStore(file, [f], f.Tensors.ToDictionary(t => t.Name, t => (t, f), StringComparer.Ordinal));
    }

    private static WeightStore OpenIndex(string index)
    {
        var map = ReadWeightMap(index);
        string folder = Path.GetDirectoryName(index)!;
        var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            var byName = new Dictionary<string, (TensorInfo, SafetensorsFile)>(StringComparer.Ordinal);
            foreach (var (name, shard) in map)
            {
                if (!opened.TryGetValue(shard, out var file))
                {
                    string shardPath = Path.Combine(folder, shard);
                    if (!File.Exists(shardPath))
                        throw new SafetensorsFormatException($"{index}: tensor '{name}' is in shard {shard}, which does not exist", index, name);
                    file = SafetensorsFile.Open(shardPath);
                    opened.Add(shard, file);
                }
                if (!file.TryGetInfo(name, out var info))
                    throw new SafetensorsFormatException($"{index}: tensor '{name}' is listed in shard {shard}, but {file.FilePath} does not hold it", index, name);
                byName.Add(name, (info, file));
            }
            foreach (var file in opened.Values)
                foreach (var t in file.Tensors)
                {
                    if (!byName.TryGetValue(t.Name, out var listed))
                        throw new SafetensorsFormatException($"{index}: shard {file.FilePath} holds tensor '{t.Name}', which the index does not list", index, t.Name);
                    if (listed.Item2 != file)
                        throw new SafetensorsFormatException($"{index}: tensor '{t.Name}' is in shard {file.FilePath} too, but the index lists it in {listed.Item2.FilePath}", index, t.Name);
                }
            return new WeightStore(index, opened.Values.OrderBy(f => f.FilePath, StringComparer.Ordinal).ToArray(), byName);
        }
        catch
        {
            foreach (var f in opened.Values) f.Dispose();
            throw;
        }
    }

    /// <summary>Reads an index's <c>weight_map</c> (name → shard file name), rejecting repeated names and unsafe file names.</summary>
    internal static List<(string Name, string Shard)> ReadWeightMap(string index)
    {
        byte[] bytes;
        try
        {
            var length = new FileInfo(index).Length;
            if (length > SafetensorsHeader.MaxHeaderLength)
                throw new SafetensorsFormatException($"{index}: {length} bytes, more than the {SafetensorsHeader.MaxHeaderLength}-byte cap for an index", index);
            bytes = File.ReadAllBytes(index);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SafetensorsFormatException($"{index}: cannot read: {e.Message}", index, null, e);
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException($"{index}: not valid JSON: {e.Message.ReplaceLineEndings(" ")}", index);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException($"{index}: expected a JSON object with a \"weight_map\" object", index);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var list = new List<(string, string)>();
            foreach (var e in wm.EnumerateObject())
            {
                if (!seen.Add(e.Name))
                    throw new SafetensorsFormatException($"{index}: tensor '{e.Name}' is listed twice in weight_map", index, e.Name);
                if (e.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsFormatException($"{index}: weight_map entry '{e.Name}' is not a file name string", index, e.Name);
                string shard = e.Value.GetString()!;
                // Shards live beside the index: a path elsewhere would let an index open any file.
                if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or "..")
                    throw new SafetensorsFormatException($"{index}: tensor '{e.Name}' names shard '{shard}', which is not a file name in the index's folder", index, e.Name);
                list.Add((e.Name, shard));
            }
            return list;
        }
    }

    /// <summary>The names never requested through any scope (<see cref="WeightScope.Info"/> and the getters), sorted: a sign of a naming mismatch.</summary>
    public IReadOnlyList<string> Unused()
    {
        lock (_usedLock)
            return All.Select(t => t.Name).Where(n => !_used.Contains(n)).ToArray();
    }

    internal (TensorInfo Info, SafetensorsFile File) Lookup(string fullName, bool markUsed)
    {
        if (!_byName.TryGetValue(fullName, out var entry))
            throw new SafetensorsFormatException($"tensor '{fullName}' not found in {Describe()}{Nearby(fullName)}", Source, fullName);
        if (markUsed)
            lock (_usedLock) _used.Add(fullName);
        return entry;
    }

    internal bool Has(string fullName) => _byName.ContainsKey(fullName);

    internal TensorInfo? Peek(string fullName) => _byName.TryGetValue(fullName, out var e) ? e.Info : null;

    private string Describe() => _files.Length == 1 ? _files[0].FilePath : $"{Source} ({_files.Length} shards)";

    // A few names under the deepest enclosing scope that has any, so a typo or a renamed module shows.
    private string Nearby(string fullName)
    {
        for (int dot = fullName.LastIndexOf('.'); dot > 0; dot = fullName.LastIndexOf('.', dot - 1))
        {
            string parent = fullName[..(dot + 1)];
            var names = All.Select(t => t.Name).Where(n => n.StartsWith(parent, StringComparison.Ordinal)).Take(6).ToList();
            if (names.Count > 0)
                return $" (under '{parent}': {string.Join(", ", names.Take(5))}{(names.Count > 5 ? ", ..." : "")})";
        }
        return "";
    }

    /// <summary>Closes every file; scopes, infos' spans and float arrays already returned stay as they are.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
