using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OmniKernels.Weights;

/// <summary>What <see cref="CheckpointQuantizer.Quantize"/> did.</summary>
/// <param name="InputBytes">Bytes of the input's safetensors files.</param>
/// <param name="OutputBytes">Bytes of the output's safetensors files.</param>
/// <param name="Quantized">The Linear weights written as I8 (names, sorted).</param>
/// <param name="KeptLinear">2-D <c>.weight</c> tensors the rule would quantize but <c>keep</c> left in float: the <c>ignore</c> list's modules.</param>
/// <param name="CopiedFiles">Other files of the model folder copied unchanged (tokenizer files and such).</param>
/// <param name="SkippedFiles">Files not copied: other weight formats (.bin, .pt, ...), which would be float copies.</param>
public sealed record QuantizeReport(long InputBytes, long OutputBytes, IReadOnlyList<string> Quantized, IReadOnlyList<string> KeptLinear,
    IReadOnlyList<string> CopiedFiles, IReadOnlyList<string> SkippedFiles);

/// <summary>
/// Turns a float (F32, F16, BF16 or F64) Hugging Face model folder into an INT8 one in the compressed-tensors
/// W8A8 convention (<see cref="Int8Checkpoint"/>): every Linear weight by <see cref="Int8Checkpoint.IsLinearWeight"/>
/// becomes I8 plus its <c>weight_scale</c>; everything else is copied byte for byte. A sharded input gives a sharded
/// output with the same shard names and an updated index. The output folder is built beside the target and
/// renamed into place at the end, so a failure leaves nothing behind.
/// </summary>
public static class CheckpointQuantizer
{
    private static readonly string[] OtherWeightFormats = [".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf"];

    /// <summary>Quantizes the model folder <paramref name="modelDir"/> into the new folder <paramref name="outDir"/> (which must not exist, or be empty).</summary>
    /// <exception cref="SafetensorsFormatException">The input checkpoint is malformed, already quantized or holds a non-finite Linear weight.</exception>
    /// <exception cref="ArgumentException">The folders are unusable (missing input, non-empty output, the same folder).</exception>
    /// <exception cref="IOException">Writing failed.</exception>
    public static QuantizeReport Quantize(string modelDir, string outDir, IReadOnlyCollection<string> keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        string input = Path.GetFullPath(modelDir), output = Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar);
        if (!Directory.Exists(input)) throw new ArgumentException($"--model {input}: not a folder");
        if (output == input.TrimEnd(Path.DirectorySeparatorChar)) throw new ArgumentException("--out must differ from --model");
        if (File.Exists(output) || Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new ArgumentException($"--out {output}: exists and is not an empty folder");
        string parent = Path.GetDirectoryName(output) ?? throw new ArgumentException($"--out {output}: no parent folder");
        if (!Directory.Exists(parent)) throw new ArgumentException($"--out {output}: folder {parent} does not exist");
        if (keep.Any(string.IsNullOrEmpty)) throw new ArgumentException("--keep needs a non-empty name substring");

        JsonObject config = ReadConfig(input);
        using var store = WeightStore.Open(input);
        foreach (var t in store.All)
            if (t.Name.EndsWith("." + Int8Checkpoint.ScaleName, StringComparison.Ordinal) || t.DType == SafetensorsDType.I8 && t.Name.EndsWith(".weight", StringComparison.Ordinal))
                throw new SafetensorsFormatException($"{t.FilePath}: tensor '{t.Name}' shows the checkpoint is already quantized", t.FilePath, t.Name);

        string temp = Path.Combine(parent, "." + Path.GetFileName(output) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        Directory.CreateDirectory(temp);
        try
        {
            var quantized = new List<string>();
            var kept = new List<string>();
            long inBytes = 0, outBytes = 0, tensorBytes = 0;
            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var file in store.Files)
            {
                string name = Path.GetFileName(file.FilePath);
                var writer = new SafetensorsWriter();
                foreach (var (k, v) in file.Metadata) writer.Metadata[k] = v;
                foreach (var t in file.Tensors)
                {
                    if (Int8Checkpoint.IsLinearWeight(t, keep))
                    {
                        QuantizeInto(writer, file, t);
                        quantized.Add(t.Name);
                        weightMap[t.Name[..^"weight".Length] + Int8Checkpoint.ScaleName] = name;
                    }
                    else
                    {
                        if (Int8Checkpoint.IsLinearWeight(t, [])) kept.Add(t.Name);
                        writer.Add(t.Name, t.DType, t.Shape, file.GetBytes(t.Name));
                    }
                    weightMap[t.Name] = name;
                }
                inBytes += file.Length;
                long written = writer.Write(Path.Combine(temp, name));
                outBytes += written;
                tensorBytes += writer.DataLength;
            }
            if (store.Files.Count > 1 || Path.GetFileName(store.Source) == WeightStore.IndexFileName)
                WriteIndex(Path.Combine(temp, WeightStore.IndexFileName), weightMap, tensorBytes);

            config["quantization_config"] = Int8Checkpoint.QuantizationConfig(kept.Select(k => k[..^".weight".Length]).Order(StringComparer.Ordinal));
            File.WriteAllText(Path.Combine(temp, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

            var copied = new List<string>();
            var skipped = new List<string>();
            var weightFiles = store.Files.Select(f => f.FilePath).Append(store.Source).ToHashSet(StringComparer.Ordinal);
            foreach (var f in Directory.EnumerateFiles(input).Order(StringComparer.Ordinal))
            {
                string fileName = Path.GetFileName(f);
                if (weightFiles.Contains(f) || fileName == "config.json" || fileName.EndsWith(".safetensors", StringComparison.Ordinal)) continue;
                if (OtherWeightFormats.Any(e => fileName.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
                {
                    skipped.Add(fileName);
                    continue;
                }
                File.Copy(f, Path.Combine(temp, fileName));
                copied.Add(fileName);
            }

            if (Directory.Exists(output)) Directory.Delete(output);
            Directory.Move(temp, output);
            quantized.Sort(StringComparer.Ordinal);
            kept.Sort(StringComparer.Ordinal);
            return new QuantizeReport(inBytes, outBytes, quantized, kept, copied, skipped);
        }
        catch
        {
            try { Directory.Delete(temp, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* keep the original error */ }
            throw;
        }
    }

    private static void QuantizeInto(SafetensorsWriter writer, SafetensorsFile file, TensorInfo t)
    {
        int rows = checked((int)t.Shape[0]), cols = checked((int)t.Shape[1]);
        var w = new float[checked(rows * cols)];
        file.ReadAsFloat32(t.Name, w);
        var q = new sbyte[w.Length];
        var scales = new float[rows];
        try
        {
            Int8Checkpoint.QuantizeRows(w, rows, cols, q, scales);
        }
        catch (ArgumentException e)
        {
            throw new SafetensorsFormatException($"{t.FilePath}: tensor '{t.Name}': cannot quantize: {e.Message}", t.FilePath, t.Name, e);
        }
        writer.Add(t.Name, SafetensorsDType.I8, t.Shape, MemoryMarshal.AsBytes(q.AsSpan()));
        writer.AddFloat32(t.Name[..^"weight".Length] + Int8Checkpoint.ScaleName, [rows, 1], scales);
    }

    private static JsonObject ReadConfig(string input)
    {
        string path = Path.Combine(input, "config.json");
        if (!File.Exists(path)) return new JsonObject();
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new ArgumentException($"{path}: not valid JSON: {e.Message.ReplaceLineEndings(" ")}");
        }
        if (node is not JsonObject config) throw new ArgumentException($"{path}: not a JSON object");
        if (config.ContainsKey("quantization_config")) throw new ArgumentException($"{path}: already has a quantization_config");
        return config;
    }

    private static void WriteIndex(string path, SortedDictionary<string, string> weightMap, long totalBytes)
    {
        var map = new JsonObject();
        foreach (var (k, v) in weightMap) map[k] = v;
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalBytes }, ["weight_map"] = map };
        File.WriteAllText(path, index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
