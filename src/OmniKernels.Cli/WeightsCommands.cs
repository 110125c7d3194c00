using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OmniKernels.Weights;

namespace OmniKernels.Cli;

/// <summary>
/// <c>omni weights</c> (list a checkpoint's tensors) and <c>omni quantize</c> (write its INT8 form).
/// Bad input prints one line on stderr and exits 2, writing nothing.
/// </summary>
public static class WeightsCommands
{
    /// <summary>The commands, for the root command.</summary>
    public static IEnumerable<Command> Create(TextWriter stdout, TextWriter stderr) => [Weights(stdout, stderr), Quantize(stdout, stderr)];

    private static Command Weights(TextWriter o, TextWriter err)
    {
        var path = new Argument<string>("FILE_OR_DIR") { Description = "a .safetensors file, a model.safetensors.index.json, or a folder holding either" };
        var json = new Option<bool>("--json") { Description = "print {\"tensors\": [{name, dtype, shape, bytes, file}], \"metadata\": {...}, \"total_bytes\": N}" };
        var command = new Command("weights", "List a safetensors checkpoint's tensors (name, dtype, shape, bytes, file), its metadata, parameters and bytes") { path, json };
        command.SetAction(r =>
        {
            try
            {
                using var store = WeightStore.Open(r.GetValue(path)!);
                if (r.GetValue(json)) WriteJson(store, o);
                else WriteTable(store, o);
                return 0;
            }
            catch (SafetensorsFormatException e)
            {
                err.WriteLine($"omni weights: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    private static void WriteTable(WeightStore store, TextWriter o)
    {
        var inv = CultureInfo.InvariantCulture;
        string folder = Path.GetDirectoryName(store.Source) ?? "";
        int width = Math.Max(4, store.All.Count == 0 ? 0 : store.All.Max(t => t.Name.Length));
        o.WriteLine($"{"name".PadRight(width)}  {"dtype",-5}  {"shape",-20}  {"bytes",14}  file");
        foreach (var t in store.All)
            o.WriteLine(string.Create(inv, $"{t.Name.PadRight(width)}  {t.DType.Name(),-5}  {t.ShapeText,-20}  {t.ByteLength,14:N0}  {Path.GetRelativePath(folder, t.FilePath)}"));
        foreach (var (k, v) in store.Metadata) o.WriteLine($"metadata  {k} = {v}");
        long parameters = store.All.Sum(t => t.ElementCount), bytes = store.All.Sum(t => t.ByteLength);
        o.WriteLine(string.Create(inv, $"{store.All.Count} tensors, {parameters:N0} parameters, {bytes:N0} bytes in {store.Files.Count} file{(store.Files.Count == 1 ? "" : "s")} ({store.Files.Sum(f => f.Length):N0} bytes on disk)"));
    }

    private static void WriteJson(WeightStore store, TextWriter o)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("tensors");
            foreach (var t in store.All)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("dtype", t.DType.Name());
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteNumber("bytes", t.ByteLength);
                w.WriteString("file", t.FilePath);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("metadata");
            foreach (var (k, v) in store.Metadata) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteNumber("total_parameters", store.All.Sum(t => t.ElementCount));
            w.WriteNumber("total_bytes", store.All.Sum(t => t.ByteLength));
            w.WriteEndObject();
        }
        o.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static Command Quantize(TextWriter o, TextWriter err)
    {
        var model = new Option<string>("--model") { Description = "model folder: model.safetensors or model.safetensors.index.json (fp32, fp16 or bf16), config.json, tokenizer files", Required = true };
        var output = new Option<string>("--out") { Description = "new folder for the INT8 checkpoint (must not exist, or be empty)", Required = true };
        var keep = new Option<string[]>("--keep") { Description = "keep 2-D weights whose name contains this in float (repeatable)", Arity = ArgumentArity.ZeroOrMore, AllowMultipleArgumentsPerToken = false };
        var command = new Command("quantize",
            "Write an INT8 checkpoint (compressed-tensors W8A8: I8 weight + F32 weight_scale per output channel) of every Linear weight: "
            + "2-D float *.weight tensors except names containing 'embed' or 'norm'; biases, norms and embeddings stay float")
        { model, output, keep };
        command.SetAction(r =>
        {
            QuantizeReport report;
            try
            {
                report = CheckpointQuantizer.Quantize(r.GetValue(model)!, r.GetValue(output)!, r.GetValue(keep) ?? []);
            }
            catch (Exception e) when (e is SafetensorsFormatException or ArgumentException or IOException or UnauthorizedAccessException)
            {
                err.WriteLine($"omni quantize: {e.Message.ReplaceLineEndings(" ")}");
                return 2;
            }
            var inv = CultureInfo.InvariantCulture;
            o.WriteLine($"quantized {report.Quantized.Count} Linear weights to INT8" + (report.KeptLinear.Count > 0 ? $"; kept in float by --keep: {string.Join(", ", report.KeptLinear)}" : ""));
            if (report.CopiedFiles.Count > 0) o.WriteLine($"copied {string.Join(", ", report.CopiedFiles)}");
            if (report.SkippedFiles.Count > 0) o.WriteLine($"not copied (other weight formats): {string.Join(", ", report.SkippedFiles)}");
            o.WriteLine(string.Create(inv, $"input  {Path.GetFullPath(r.GetValue(model)!)}: {report.InputBytes:N0} bytes"));
            o.WriteLine(string.Create(inv, $"output {Path.GetFullPath(r.GetValue(output)!)}: {report.OutputBytes:N0} bytes ({(double)report.OutputBytes / report.InputBytes:P1} of the input)"));
            return 0;
        });
        return command;
    }
}
