using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Unicode;

namespace OmniKernels.Weights;

/// <summary>
/// Parses and validates a safetensors header against the bytes of the whole file. Every number the
/// header holds is checked before anything is sized or addressed by it: the header length against
/// the cap and the file, each dimension (non-negative integer), the element count and byte size
/// (overflow-checked), the offsets (ordered, inside the data area, matching shape × dtype) and the
/// spans of all tensors (no two overlap). Gaps between tensors are allowed; the writer leaves none.
/// </summary>
internal static class SafetensorsHeader
{
    /// <summary>The format's cap on the header length (the reference implementation's 100 MB).</summary>
    public const long MaxHeaderLength = 100_000_000;

    public const string MetadataKey = "__metadata__";

    // Root object, tensor entry, shape array: anything deeper is not a safetensors header.
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 8 };

    /// <summary>
    /// Validates the 8-byte length at the start of a file of <paramref name="fileLength"/> bytes and returns the
    /// header length N (the data area starts at 8 + N).
    /// </summary>
    public static long ReadLength(ReadOnlySpan<byte> start, long fileLength, string path)
    {
        if (fileLength < 8 || start.Length < 8)
            throw Fail(path, $"truncated: {fileLength} bytes, shorter than the 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(start);
        if (n > MaxHeaderLength)
            throw Fail(path, $"header length {n} exceeds the {MaxHeaderLength}-byte cap");
        if (n > (ulong)(fileLength - 8))
            throw Fail(path, $"truncated: header length {n} runs past the end of the file ({fileLength} bytes)");
        if (n < 2)
            throw Fail(path, $"header length {n} is too short for a JSON object");
        return (long)n;
    }

    /// <summary>
    /// Parses the header of a file of <paramref name="fileLength"/> bytes whose first 8 + N bytes are
    /// <paramref name="start"/> (N from <see cref="ReadLength"/>); returns the tensors sorted by name and the metadata.
    /// </summary>
    public static (TensorInfo[] Tensors, Dictionary<string, string> Metadata) Parse(ReadOnlySpan<byte> start, long fileLength, string path)
    {
        long n = ReadLength(start, fileLength, path);
        ReadOnlySpan<byte> text = start.Slice(8, (int)n);
        if (!Utf8.IsValid(text))
            throw Fail(path, "header is not valid UTF-8");

        long dataStart = 8 + n;
        long dataLength = fileLength - dataStart;
        JsonDocument doc;
        try
        {
            // n is validated (≤ the cap and ≤ the file), so this copy is bounded.
            doc = JsonDocument.Parse(text.ToArray(), Options);
        }
        catch (JsonException e)
        {
            throw Fail(path, $"header is not valid JSON: {OneLine(e.Message)}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Fail(path, $"header is not a JSON object (found {Kind(root)})");

            var names = new HashSet<string>(StringComparer.Ordinal);
            var tensors = new List<TensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in root.EnumerateObject())
            {
                if (!names.Add(entry.Name))
                    throw Fail(path, $"'{entry.Name}' appears twice in the header", entry.Name == MetadataKey ? null : entry.Name);
                if (entry.Name == MetadataKey)
                    ReadMetadata(entry.Value, metadata, path);
                else
                    tensors.Add(ReadTensor(entry.Name, entry.Value, dataStart, dataLength, path));
            }
            CheckOverlaps(tensors, dataStart, path);
            tensors.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            return (tensors.ToArray(), metadata);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw Fail(path, $"{MetadataKey} is {Kind(value)}, expected an object of strings");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Fail(path, $"{MetadataKey} entry '{item.Name}' is {Kind(item.Value)}, expected a string");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw Fail(path, $"{MetadataKey} entry '{item.Name}' appears twice");
        }
    }

    private static TensorInfo ReadTensor(string name, JsonElement value, long dataStart, long dataLength, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Fail(path, $"tensor '{name}': entry is {Kind(value)}, expected an object with dtype, shape and data_offsets", name);
        JsonElement? dtypeValue = null, shapeValue = null, offsetsValue = null;
        foreach (var field in value.EnumerateObject())
        {
            // Unknown fields are ignored, as the reference implementation does; a repeated one is ambiguous.
            ref JsonElement? slot = ref dtypeValue;
            if (field.NameEquals("dtype")) slot = ref dtypeValue;
            else if (field.NameEquals("shape")) slot = ref shapeValue;
            else if (field.NameEquals("data_offsets")) slot = ref offsetsValue;
            else continue;
            if (slot is not null) throw Fail(path, $"tensor '{name}': field '{field.Name}' appears twice", name);
            slot = field.Value;
        }

        if (dtypeValue is not { } dt)
            throw Fail(path, $"tensor '{name}': no dtype", name);
        if (dt.ValueKind != JsonValueKind.String || !SafetensorsDTypes.TryParse(dt.GetString(), out var dtype))
            throw Fail(path, $"tensor '{name}': unknown dtype {Clip(dt.GetRawText())} (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)", name);

        if (shapeValue is not { } sv)
            throw Fail(path, $"tensor '{name}': no shape", name);
        if (sv.ValueKind != JsonValueKind.Array)
            throw Fail(path, $"tensor '{name}': shape is {Kind(sv)}, expected an array of integers", name);
        var shape = new long[sv.GetArrayLength()];
        int i = 0;
        foreach (var d in sv.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim))
                throw Fail(path, $"tensor '{name}': dimension {i} is {Clip(d.GetRawText())}, not an integer in 64-bit range", name);
            if (dim < 0)
                throw Fail(path, $"tensor '{name}': dimension {i} is negative ({dim})", name);
            shape[i++] = dim;
        }
        long bytes;
        try
        {
            long count = 1;
            foreach (long dim in shape) count = checked(count * dim);
            bytes = checked(count * dtype.Size());
        }
        catch (OverflowException)
        {
            throw Fail(path, $"tensor '{name}': shape {TensorInfo.FormatShape(shape)} of {dtype.Name()} overflows a 64-bit byte count", name);
        }

        if (offsetsValue is not { } ov)
            throw Fail(path, $"tensor '{name}': no data_offsets", name);
        if (ov.ValueKind != JsonValueKind.Array || ov.GetArrayLength() != 2)
            throw Fail(path, $"tensor '{name}': data_offsets is {Clip(ov.GetRawText())}, expected [begin, end]", name);
        long begin = Offset(ov[0], "begin", name, path), end = Offset(ov[1], "end", name, path);
        if (begin > end)
            throw Fail(path, $"tensor '{name}': data_offsets [{begin}, {end}] are reversed", name);
        if (end > dataLength)
            throw Fail(path, $"tensor '{name}': data_offsets [{begin}, {end}] run past the end of the data area ({dataLength} bytes; file truncated?)", name);
        if (end - begin != bytes)
            throw Fail(path, $"tensor '{name}': data_offsets [{begin}, {end}] hold {end - begin} bytes but {dtype.Name()} {TensorInfo.FormatShape(shape)} needs {bytes}", name);
        return new TensorInfo(name, dtype, shape, dataStart + begin, dataStart + end, path);
    }

    private static long Offset(JsonElement e, string which, string name, string path)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < 0)
            throw Fail(path, $"tensor '{name}': data_offsets {which} is {Clip(e.GetRawText())}, not a non-negative 64-bit integer", name);
        return v;
    }

    private static void CheckOverlaps(List<TensorInfo> tensors, long dataStart, string path)
    {
        // Empty tensors occupy no bytes and overlap nothing.
        var spans = tensors.Where(t => t.DataEnd > t.DataBegin).OrderBy(t => t.DataBegin).ToList();
        for (int i = 1; i < spans.Count; i++)
        {
            var (a, b) = (spans[i - 1], spans[i]);
            if (b.DataBegin < a.DataEnd)
                throw Fail(path, $"tensors '{a.Name}' [{a.DataBegin - dataStart}, {a.DataEnd - dataStart}] and '{b.Name}' [{b.DataBegin - dataStart}, {b.DataEnd - dataStart}] overlap", b.Name);
        }
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    // Hostile headers may hold huge values: quote at most a few dozen characters of one.
    private static string Clip(string raw) => raw.Length <= 40 ? raw : raw[..40] + "...";

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    private static SafetensorsFormatException Fail(string path, string what, string? tensor = null) =>
        new($"{path}: {what}", path, tensor);
}
