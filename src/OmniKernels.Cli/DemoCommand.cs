using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Cli;

/// <summary>
/// <c>omni demo</c>: the shipped model on its bundled samples (one per modality): what each modality
/// alone, every pair and all of them predict, the gate weights, the cross-modal similarities, the
/// device and the time of each stage (docs/cli.md).
/// </summary>
internal static class DemoCommand
{
    /// <summary>The model the demo runs when none is named: next to the executable, else under the working folder's ancestors.</summary>
    public const string ShippedModel = "models/omni-fashion";

    public static Command Create(Option<string?> device, TextWriter o, TextWriter err)
    {
        var model = new Option<string?>("--model") { Description = $"model folder with a samples/ folder (default: the shipped {ShippedModel})" };
        var int8 = new Option<bool>("--int8") { Description = "quantize Linear weights to INT8 at load" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("demo", "Run the shipped omni-modal model on its bundled image, speech, text and video") { model, int8, json, device };
        command.SetAction(r => Run(r.GetValue(model), r.GetValue(int8), r.GetValue(json), r.GetValue(device), o, err));
        return command;
    }

    /// <summary>The shipped model's folder, or null when it is nowhere to be found.</summary>
    public static string? FindShippedModel()
    {
        var next = Path.Combine(AppContext.BaseDirectory, ShippedModel);
        if (File.Exists(Path.Combine(next, "config.json"))) return next;
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ShippedModel);
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
        return null;
    }

    /// <summary>The bundled samples of <paramref name="dir"/>/samples, one input per modality the model has.</summary>
    private static OmniRequest Samples(string dir, IReadOnlyCollection<Modality> modalities)
    {
        var samples = Path.Combine(dir, "samples");
        if (!Directory.Exists(samples)) throw new ArgumentException($"{dir}: the model folder has no samples/ folder for the demo");
        string Find(string what, params string[] names) =>
            names.Select(n => Path.Combine(samples, n)).FirstOrDefault(File.Exists)
            ?? throw new ArgumentException($"{samples}: no {what} sample (looked for {string.Join(", ", names)})");
        var request = new OmniRequest();
        foreach (var m in modalities)
            request = m switch
            {
                Modality.Image => request with { Image = RequestFiles.Image(Find("image", "image.png", "image.jpg", "image.npy")) },
                Modality.Audio => request with { Audio = RequestFiles.Audio(Find("speech", "speech.wav")) },
                Modality.Text => request with { Text = File.ReadAllText(Find("text", "text.txt")).Trim() },
                Modality.Video => request with { Video = RequestFiles.Video(Find("video", "video.gif", "video.npy")) },
                _ => request,
            };
        return request;
    }

    /// <summary>The request carrying only the modalities in <paramref name="subset"/>.</summary>
    public static OmniRequest Only(OmniRequest all, IReadOnlyCollection<Modality> subset) => new()
    {
        Image = subset.Contains(Modality.Image) ? all.Image : null,
        Text = subset.Contains(Modality.Text) ? all.Text : null,
        TextIds = subset.Contains(Modality.Text) ? all.TextIds : null,
        Audio = subset.Contains(Modality.Audio) ? all.Audio : null,
        Video = subset.Contains(Modality.Video) ? all.Video : null,
    };

    /// <summary>Every modality alone, every pair, and all of them (when there are more than two).</summary>
    public static List<Modality[]> Subsets(IReadOnlyList<Modality> modalities)
    {
        var subsets = modalities.Select(m => new[] { m }).ToList();
        for (int i = 0; i < modalities.Count; i++)
            for (int j = i + 1; j < modalities.Count; j++)
                subsets.Add([modalities[i], modalities[j]]);
        if (modalities.Count > 2) subsets.Add([.. modalities]);
        return subsets;
    }

    public static string Label(IEnumerable<Modality> subset) => string.Join("+", subset.Select(OmniSession.Name));

    private static int Run(string? modelDir, bool int8, bool json, string? deviceName, TextWriter o, TextWriter err)
    {
        var inv = CultureInfo.InvariantCulture;
        OmniSession session;
        OmniRequest all;
        long start = Stopwatch.GetTimestamp();
        try
        {
            modelDir ??= FindShippedModel() ?? throw new ArgumentException($"the shipped model {ShippedModel} is not next to the executable nor under the working folder; name one with --model");
            session = OmniSession.Load(modelDir, new OmniSessionOptions { Device = DeviceKinds.Resolve(deviceName), Int8 = int8, MaxQueueDelay = TimeSpan.Zero, FeatureCacheBytes = 0 });
        }
        catch (Exception e) when (e is ArgumentException or ModelFormatException)
        {
            err.WriteLine($"omni demo: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is DeviceUnavailableException or InvalidOperationException)
        {
            err.WriteLine($"omni demo: the device failed: {e.Message}");
            return 3;
        }
        using (session)
        {
            double loadMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            var order = Enum.GetValues<Modality>().Where(session.Modalities.Contains).ToArray();
            try
            {
                all = Samples(modelDir, order);
            }
            catch (ArgumentException e)
            {
                err.WriteLine($"omni demo: {e.Message}");
                return 2;
            }
            // The first request builds the plans (kernels compile once per process); later ones replay them.
            // No feature cache, so that every row's time is its towers' and fusion's.
            long first = Stopwatch.GetTimestamp();
            var full = session.Run(all);
            double firstMs = Stopwatch.GetElapsedTime(first).TotalMilliseconds;
            var rows = new List<(Modality[] Subset, OmniResult Result, double Ms)>();
            foreach (var subset in Subsets(order))
            {
                long t0 = Stopwatch.GetTimestamp();
                var r = session.Run(Only(all, subset));
                rows.Add((subset, r, Stopwatch.GetElapsedTime(t0).TotalMilliseconds));
            }
            full = rows[^1].Result;
            if (json)
            {
                o.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["model"] = full.Model,
                    ["device"] = full.Device,
                    ["load_ms"] = loadMs,
                    ["first_request_ms"] = firstMs,
                    ["text"] = all.Text,
                    ["subsets"] = rows.Select(x => new Dictionary<string, object?>
                    {
                        ["inputs"] = x.Subset.Select(OmniSession.Name).ToArray(),
                        ["label"] = x.Result.Classes.FirstOrDefault()?.Label,
                        ["probability"] = x.Result.Classes.FirstOrDefault()?.Probability,
                        ["gates"] = x.Result.GateWeights?.ToDictionary(g => OmniSession.Name(g.Key), g => g.Value),
                        ["ms"] = x.Ms,
                    }).ToArray(),
                    ["similarities"] = full.Similarities,
                    ["timings_ms"] = full.TimingsMs,
                }));
                return 0;
            }
            o.WriteLine($"model {full.Model} ({modelDir}) on {full.Device}{(int8 ? ", INT8" : "")}");
            o.WriteLine($"samples: {string.Join(", ", order.Select(OmniSession.Name))}; text \"{all.Text}\"");
            o.WriteLine();
            Tables.Print(o, "Predictions", ["inputs", "prediction", "probability", .. order.Select(m => "gate " + OmniSession.Name(m)), "ms"],
                rows.Select(x => (string[])[
                    Label(x.Subset),
                    x.Result.Classes.FirstOrDefault()?.Label ?? "-",
                    x.Result.Classes.FirstOrDefault() is { } c ? c.Probability.ToString("P1", inv) : "-",
                    .. order.Select(m => x.Result.GateWeights?.TryGetValue(m, out var g) == true ? g.ToString("F3", inv) : ""),
                    x.Ms.ToString("F2", inv),
                ]));
            Tables.Print(o, "Cross-modal cosine similarity", ["pair", "cosine"],
                full.Similarities.Select(s => (string[])[s.Key, s.Value.ToString("F4", inv)]));
            Tables.Print(o, "Time (ms)", ["stage", "ms"],
                new[] { ("load (weights to the device)", loadMs), ("first request (plans built)", firstMs) }
                    .Concat(full.TimingsMs.Select(t => ($"all inputs: {t.Key}", t.Value)))
                    .Select(t => (string[])[t.Item1, t.Item2.ToString("F2", inv)]));
            return 0;
        }
    }
}
