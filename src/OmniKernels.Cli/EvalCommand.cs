using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Cli;

/// <summary>
/// <c>omni eval</c>: a model's accuracy on a data folder (docs/eval-data.md): every modality alone,
/// every pair and all of them, text→image retrieval precision@10 and image→text zero-shot accuracy.
/// Requests go through the session's batched path with its feature cache, so each input's tower runs
/// once however many subsets carry it.
/// </summary>
internal static class EvalCommand
{
    public static Command Create(Option<string?> device, TextWriter o, TextWriter err)
    {
        var model = new Option<string>("--model") { Description = "model folder", Required = true };
        var data = new Option<string>("--data") { Description = "data folder: labels.csv (id,label,image,audio,video,text) and optionally queries.csv (text,label)", Required = true };
        var int8 = new Option<bool>("--int8") { Description = "quantize Linear weights to INT8 at load" };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N rows" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("eval", "Accuracy of a model on a labelled data folder, per modality subset, and cross-modal retrieval") { model, data, int8, limit, json, device };
        command.SetAction(r => Run(r.GetValue(model)!, r.GetValue(data)!, r.GetValue(int8), r.GetValue(limit), r.GetValue(json), r.GetValue(device), o, err));
        return command;
    }

    private sealed record Row(string Label, Dictionary<Modality, string> Files, string? Text);

    private static int Run(string modelDir, string dataDir, bool int8, int? limit, bool json, string? deviceName, TextWriter o, TextWriter err)
    {
        List<Row> rows;
        List<(string Text, string Label)> queries;
        OmniSession session;
        try
        {
            if (limit is < 1) throw new ArgumentException($"--limit {limit} must be at least 1");
            (rows, queries) = ReadData(dataDir);
            if (limit is { } n) rows = rows.Take(n).ToList();
            session = OmniSession.Load(modelDir, new OmniSessionOptions
            {
                Device = DeviceKinds.Resolve(deviceName), Int8 = int8, FeatureCacheBytes = 1L << 30, MaxQueueSize = 1 << 16,
            });
        }
        catch (Exception e) when (e is ArgumentException or ModelFormatException or IOException)
        {
            err.WriteLine($"omni eval: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is DeviceUnavailableException or InvalidOperationException)
        {
            err.WriteLine($"omni eval: the device failed: {e.Message}");
            return 3;
        }
        using (session)
        {
            try
            {
                return Evaluate(session, dataDir, rows, queries, json, o, err).GetAwaiter().GetResult();
            }
            catch (ArgumentException e)
            {
                err.WriteLine($"omni eval: {e.Message}");
                return 2;
            }
        }
    }

    private static async Task<int> Evaluate(OmniSession session, string dataDir, List<Row> rows, List<(string Text, string Label)> queries,
        bool json, TextWriter o, TextWriter err)
    {
        var inv = CultureInfo.InvariantCulture;
        var labels = session.Labels;
        foreach (var r in rows)
            if (!labels.Contains(r.Label)) throw new ArgumentException($"labels.csv: label '{r.Label}' is not one of the model's classes ({string.Join(", ", labels)})");
        var order = Enum.GetValues<Modality>().Where(m => session.Modalities.Contains(m) && rows.Any(r => r.Files.ContainsKey(m) || (m == Modality.Text && r.Text is not null))).ToArray();
        var subsets = DemoCommand.Subsets(order);
        var correct = new int[subsets.Count];
        var counted = new int[subsets.Count];
        var imageEmbeddings = new float[rows.Count][];
        // Decoded inputs by path: clips are shared between rows.
        var inputs = new ConcurrentDictionary<(Modality, string), Lazy<OmniRequest>>();
        OmniRequest Input(Modality m, string file) => inputs.GetOrAdd((m, file), k => new Lazy<OmniRequest>(() =>
        {
            var path = Path.Combine(dataDir, k.Item2);
            return m switch
            {
                Modality.Image => new OmniRequest { Image = RequestFiles.Image(path) },
                Modality.Audio => new OmniRequest { Audio = RequestFiles.Audio(path) },
                _ => new OmniRequest { Video = RequestFiles.Video(path) },
            };
        })).Value;

        long done = 0, total = (long)rows.Count * subsets.Count + queries.Count + labels.Count;
        await Tables.WithProgress(o, err, "eval", async progress =>
        {
            int next = -1;
            var workers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
            {
                for (int i; (i = Interlocked.Increment(ref next)) < rows.Count;)
                {
                    var row = rows[i];
                    var all = new OmniRequest { Text = row.Text };
                    foreach (var (m, f) in row.Files)
                    {
                        var part = Input(m, f);
                        all = all with { Image = part.Image ?? all.Image, Audio = part.Audio ?? all.Audio, Video = part.Video ?? all.Video };
                    }
                    for (int s = 0; s < subsets.Count; s++)
                    {
                        if (!subsets[s].All(all.Modalities.Contains)) continue;
                        var result = await session.RunAsync(DemoCommand.Only(all, subsets[s]));
                        Interlocked.Increment(ref counted[s]);
                        if (result.Classes.FirstOrDefault()?.Label == row.Label) Interlocked.Increment(ref correct[s]);
                        if (subsets[s] is [Modality.Image]) imageEmbeddings[i] = Normalized(result.Embeddings[Modality.Image]);
                        progress(Interlocked.Increment(ref done), total);
                    }
                }
            })).ToArray();
            await Task.WhenAll(workers);
        });

        var table = subsets.Select((s, i) => (Name: DemoCommand.Label(s), Count: counted[i], Accuracy: counted[i] == 0 ? double.NaN : correct[i] / (double)counted[i]))
            .Where(t => t.Count > 0).ToList();
        var retrieval = new List<(string Name, int Count, double Value)>();
        if (session.Modalities.Contains(Modality.Text) && session.Modalities.Contains(Modality.Image) && imageEmbeddings.All(e => e is not null) && rows.Count > 0)
        {
            async Task<float[]> EmbedText(string t) => Normalized((await session.RunAsync(new OmniRequest { Text = t })).Embeddings[Modality.Text]);
            if (queries.Count > 0)
            {
                double precision = 0;
                foreach (var (text, label) in queries)
                {
                    var q = await EmbedText(text);
                    var top = Enumerable.Range(0, rows.Count).OrderByDescending(i => Dot(q, imageEmbeddings[i])).ThenBy(i => i).Take(10).ToArray();
                    precision += top.Count(i => rows[i].Label == label) / (double)top.Length;
                }
                retrieval.Add(("text→image precision@10", queries.Count, precision / queries.Count));
            }
            var classTexts = new List<float[]>();
            foreach (var l in labels) classTexts.Add(await EmbedText(l));
            int zeroShot = Enumerable.Range(0, rows.Count).Count(i =>
                labels[Enumerable.Range(0, labels.Count).MaxBy(c => Dot(imageEmbeddings[i], classTexts[c]))] == rows[i].Label);
            retrieval.Add(("image→text zero-shot (class names)", rows.Count, zeroShot / (double)rows.Count));
        }

        if (json)
        {
            o.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["device"] = session.Device.ToString(),
                ["rows"] = rows.Count,
                ["accuracy"] = table.ToDictionary(t => t.Name, t => t.Accuracy),
                ["retrieval"] = retrieval.ToDictionary(t => t.Name, t => t.Value),
            }));
            return 0;
        }
        o.WriteLine($"{rows.Count} rows of {dataDir} on {session.Device}");
        Tables.Print(o, "Accuracy", ["inputs", "items", "accuracy"], table.Select(t => (string[])[t.Name, t.Count.ToString(inv), t.Accuracy.ToString("P2", inv)]));
        if (retrieval.Count > 0)
            Tables.Print(o, "Retrieval", ["task", "queries", "score"], retrieval.Select(t => (string[])[t.Name, t.Count.ToString(inv), t.Value.ToString("P2", inv)]));
        return 0;
    }

    private static float[] Normalized(float[] v)
    {
        double n = Math.Sqrt(v.Sum(x => (double)x * x));
        return v.Select(x => (float)(x / n)).ToArray();
    }

    private static double Dot(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);

    private static (List<Row>, List<(string, string)>) ReadData(string dir)
    {
        var labelsFile = Path.Combine(dir, "labels.csv");
        if (!File.Exists(labelsFile)) throw new ArgumentException($"{dir}: no labels.csv (docs/eval-data.md)");
        var table = Csv.Read(labelsFile);
        int Column(string name) => Array.IndexOf(table.Header, name) is var i and >= 0 ? i
            : throw new ArgumentException($"{labelsFile}: no '{name}' column (header: {string.Join(",", table.Header)})");
        int label = Column("label");
        var files = new[] { (Modality.Image, "image"), (Modality.Audio, "audio"), (Modality.Video, "video") }
            .Select(c => (c.Item1, Array.IndexOf(table.Header, c.Item2))).Where(c => c.Item2 >= 0).ToArray();
        int text = Array.IndexOf(table.Header, "text");
        var rows = table.Rows.Select(r => new Row(r[label],
            files.Where(f => r[f.Item2].Length > 0).ToDictionary(f => f.Item1, f => r[f.Item2]),
            text >= 0 && r[text].Length > 0 ? r[text] : null)).ToList();
        if (rows.Count == 0) throw new ArgumentException($"{labelsFile}: no rows");
        var queries = new List<(string, string)>();
        var queriesFile = Path.Combine(dir, "queries.csv");
        if (File.Exists(queriesFile))
        {
            var q = Csv.Read(queriesFile);
            int qt = Array.IndexOf(q.Header, "text"), ql = Array.IndexOf(q.Header, "label");
            if (qt < 0 || ql < 0) throw new ArgumentException($"{queriesFile}: the header must have text and label");
            queries.AddRange(q.Rows.Select(r => (r[qt], r[ql])));
        }
        return (rows, queries);
    }
}
