using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Cli;

/// <summary><c>omni run</c>: one request through the session, printed as text or JSON (docs/cli.md).</summary>
internal static class RunCommand
{
    public static Command Create(Option<string?> device, TextWriter o, TextWriter err)
    {
        var model = new Option<string>("--model") { Description = "model folder (config.json, safetensors, tokenizer)", Required = true };
        var image = new Option<string?>("--image") { Description = "PNG/JPEG/GIF/WebP, or a .npy of preprocessed pixels [3, H, W]" };
        var audio = new Option<string?>("--audio") { Description = "WAV, or a .npy log-mel [mels, frames]" };
        var text = new Option<string?>("--text") { Description = "text, tokenized by the model's tokenizer" };
        var textIds = new Option<string?>("--text-ids") { Description = "pre-tokenized text: 1,2,3" };
        var video = new Option<string?>("--video") { Description = "animated GIF, folder of frames, or a .npy [T, 3, H, W]" };
        var input = new Option<string[]>("--input") { Description = "a file whose modality is detected from its content (repeatable)", Arity = ArgumentArity.ZeroOrMore };
        var int8 = new Option<bool>("--int8") { Description = "quantize Linear weights to INT8 at load" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var profile = new Option<bool>("--profile") { Description = "per-node launches and times" };
        var requests = new Option<string?>("--requests") { Description = "JSON lines, one request each: {\"id\", \"image\", \"audio\", \"text\", \"video\"}; results as JSON lines in input order" };
        var concurrency = new Option<int>("--concurrency") { Description = "concurrent callers for --requests", DefaultValueFactory = _ => 4 };
        var maxBatch = new Option<int>("--max-batch") { Description = "most requests a tower batches (1: batching off)", DefaultValueFactory = _ => 8 };
        var delay = new Option<double>("--max-queue-delay") { Description = "ms the first request of a window waits for others", DefaultValueFactory = _ => 2 };
        var command = new Command("run", "Run the model on any subset of image, audio, text and video") { model, image, audio, text, textIds, video, input, int8, json, profile, requests, concurrency, maxBatch, delay, device };
        command.SetAction(r =>
        {
            if (r.GetValue(requests) is { } file)
                return BulkRun.Run(r.GetValue(model)!, file, r.GetValue(concurrency), r.GetValue(maxBatch), r.GetValue(delay), r.GetValue(int8), r.GetValue(device), o, err);
            OmniRequest request;
            DeviceKind kind;
            try
            {
                kind = DeviceKinds.Resolve(r.GetValue(device));
                if (kind == DeviceKind.Reference) throw new ArgumentException("run has no float64 reference device; its references are tools/omni_torch.py and the reference forward");
                if (r.GetValue(text) is not null && r.GetValue(textIds) is not null) throw new ArgumentException("--text and --text-ids exclude each other");
                request = new OmniRequest { Profile = r.GetValue(profile) };
                if (r.GetValue(image) is { } i) request = request with { Image = RequestFiles.Image(i) };
                if (r.GetValue(audio) is { } a) request = request with { Audio = RequestFiles.Audio(a) };
                if (r.GetValue(video) is { } v) request = request with { Video = RequestFiles.Video(v) };
                if (r.GetValue(text) is { } t) request = request with { Text = t };
                if (r.GetValue(textIds) is { } ids) request = request with { TextIds = RequestFiles.TextIds(ids) };
                foreach (var f in r.GetValue(input) ?? [])
                {
                    var before = request.Modalities;
                    (request, var m) = RequestFiles.AddDetected(request, f);
                    if (before.Contains(m)) throw new ArgumentException($"{f}: detected as {OmniSession.Name(m)}, which the request already carries");
                    err.WriteLine($"omni run: {f}: detected {OmniSession.Name(m)}");
                }
                if (request.Modalities.Count == 0) throw new ArgumentException("give at least one of --image, --audio, --text, --text-ids, --video, --input");
            }
            catch (ArgumentException e)
            {
                err.WriteLine($"omni run: {e.Message}");
                return 2;
            }
            OmniSession session;
            try
            {
                session = OmniSession.Load(r.GetValue(model)!, new OmniSessionOptions { Device = kind, Int8 = r.GetValue(int8) });
            }
            catch (ModelFormatException e)
            {
                err.WriteLine($"omni run: {e.Message}");
                return 2;
            }
            catch (Exception e) when (e is DeviceUnavailableException or InvalidOperationException)
            {
                err.WriteLine($"omni run: the device failed: {e.Message}");
                return 3;
            }
            using (session)
            {
                OmniResult result;
                try
                {
                    result = session.Run(request);
                }
                catch (ArgumentException e)
                {
                    err.WriteLine($"omni run: {e.Message}");
                    return 2;
                }
                if (r.GetValue(json)) o.WriteLine(Json(result));
                else Print(result, session, o);
                return 0;
            }
        });
        return command;
    }

    /// <summary>The JSON schema of docs/cli.md.</summary>
    public static string Json(OmniResult r)
    {
        var doc = new Dictionary<string, object?>
        {
            ["model"] = r.Model,
            ["device"] = r.Device,
            ["towers_run"] = r.TowersRun.Select(OmniSession.Name).ToArray(),
            ["embeddings"] = r.Embeddings.ToDictionary(e => OmniSession.Name(e.Key), e => e.Value),
            ["fused"] = r.Fused,
            ["gates"] = r.Gates,
            ["similarities"] = r.Similarities,
            ["similarity_logits"] = r.SimilarityLogits,
            ["logits"] = r.Logits,
            ["classes"] = r.Classes.Select(c => new Dictionary<string, object> { ["label"] = c.Label, ["probability"] = c.Probability }).ToArray(),
            ["timings_ms"] = r.TimingsMs,
        };
        if (r.Profile is { } p)
            doc["profile"] = p.Select(n => new Dictionary<string, object> { ["node"] = n.Name, ["launches"] = n.Launches, ["ms"] = n.Milliseconds }).ToArray();
        return JsonSerializer.Serialize(doc);
    }

    private static void Print(OmniResult r, OmniSession s, TextWriter o)
    {
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine($"model {r.Model} on {r.Device}; towers run: {string.Join(", ", r.TowersRun.Select(OmniSession.Name))}");
        foreach (var c in r.Classes.Take(5)) o.WriteLine(string.Format(inv, "  {0,-20} {1,8:P2}", c.Label, c.Probability));
        foreach (var (pair, cos) in r.Similarities) o.WriteLine(string.Format(inv, "  similarity {0}: {1:F4}", pair, cos));
        o.WriteLine("  times (ms): " + string.Join(", ", r.TimingsMs.Select(t => string.Format(inv, "{0} {1:F2}", t.Key, t.Value))));
        if (r.Profile is not { } p) return;
        // Every tower the session has is listed, so a skipped one shows its zero launches.
        o.WriteLine("  launches per tower: " + string.Join(", ", s.Modalities.Select(OmniSession.Name).Append("fusion").Append("head")
            .Select(t => $"{t} {p.Where(n => n.Name.StartsWith(t + ".", StringComparison.Ordinal)).Sum(n => n.Launches)}")));
        foreach (var n in p) o.WriteLine(string.Format(inv, "  {0,-40} {1,3} launches {2,9:F3} ms", n.Name, n.Launches, n.Milliseconds));
    }
}
