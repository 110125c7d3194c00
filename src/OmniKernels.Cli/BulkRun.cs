using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Cli;

/// <summary>
/// <c>omni run --requests FILE.jsonl</c>: every line a request sent through the batched session by N
/// concurrent callers; one JSON result per line on stdout, in input order (a failed line gives an
/// error object for its id and the rest carry on); a summary on stderr.
/// </summary>
internal static class BulkRun
{
    public static int Run(string modelDir, string file, int concurrency, int maxBatch, double delayMs, bool int8, string? deviceName, TextWriter o, TextWriter err)
    {
        string[] lines;
        DeviceKind kind;
        try
        {
            if (concurrency < 1) throw new ArgumentException($"--concurrency {concurrency} must be at least 1");
            if (maxBatch < 1) throw new ArgumentException($"--max-batch {maxBatch} must be at least 1");
            if (!(delayMs >= 0)) throw new ArgumentException($"--max-queue-delay {delayMs} must be ≥ 0");
            kind = DeviceKinds.Resolve(deviceName);
            if (!File.Exists(file)) throw new ArgumentException($"--requests {file}: no such file");
            lines = File.ReadAllLines(file).Where(l => l.Trim().Length > 0).ToArray();
            if (lines.Length == 0) throw new ArgumentException($"--requests {file}: no requests");
        }
        catch (Exception e) when (e is ArgumentException or IOException)
        {
            err.WriteLine($"omni run: {e.Message}");
            return 2;
        }
        OmniSession session;
        try
        {
            session = OmniSession.Load(modelDir, new OmniSessionOptions { Device = kind, Int8 = int8, MaxBatch = maxBatch, MaxQueueDelay = TimeSpan.FromMilliseconds(delayMs) });
        }
        catch (ModelFormatException e)
        {
            err.WriteLine($"omni run: {e.Message}");
            return 2;
        }
        using (session)
        {
            var outputs = new string[lines.Length];
            var latencies = new double[lines.Length];
            long start = Stopwatch.GetTimestamp();
            int next = -1;
            var callers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
            {
                for (int i; (i = Interlocked.Increment(ref next)) < lines.Length;)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    outputs[i] = await One(session, lines[i], i + 1);
                    latencies[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
            })).ToArray();
            Task.WaitAll(callers);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            foreach (var line in outputs) o.WriteLine(line);
            var sorted = latencies.Order().ToArray();
            var inv = CultureInfo.InvariantCulture;
            err.WriteLine(string.Format(inv, "requests {0}, {1:F1} requests/s, latency p50 {2:F1} ms, p99 {3:F1} ms", lines.Length, lines.Length / seconds,
                sorted[sorted.Length / 2], sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))]));
            err.WriteLine("mean batch: " + string.Join(", ", session.BatchStats.OrderBy(b => b.Key, StringComparer.Ordinal)
                .Select(b => string.Format(inv, "{0} {1:F2} ({2} in {3})", b.Key, (double)b.Value.Items / b.Value.Batches, b.Value.Items, b.Value.Batches))));
            if (session.CacheStats is { } c) err.WriteLine($"cache: {c.Hits} hits, {c.Misses} misses, {c.Entries} entries, {c.Bytes} bytes");
            return 0;
        }
    }

    /// <summary>One line: a result object with the request's id, or an error object for it.</summary>
    private static async Task<string> One(OmniSession session, string line, int number)
    {
        JsonNode? id = number;
        try
        {
            var obj = JsonNode.Parse(line) as JsonObject ?? throw new ArgumentException($"line {number}: not a JSON object");
            id = obj["id"]?.DeepClone() ?? number;
            var request = new OmniRequest();
            foreach (var (key, value) in obj)
            {
                if (key == "id") continue;
                string v = value?.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : throw new ArgumentException($"line {number}: '{key}' must be a string");
                request = key switch
                {
                    "image" => request with { Image = RequestFiles.Image(v) },
                    "audio" => request with { Audio = RequestFiles.Audio(v) },
                    "video" => request with { Video = RequestFiles.Video(v) },
                    "text" => request with { Text = v },
                    _ => throw new ArgumentException($"line {number}: unknown key '{key}' (id, image, audio, text, video)"),
                };
            }
            var result = await session.RunAsync(request);
            var json = JsonNode.Parse(RunCommand.Json(result))!.AsObject();
            var withId = new JsonObject { ["id"] = id };
            foreach (var (k, n) in json) withId[k] = n?.DeepClone();
            return withId.ToJsonString();
        }
        catch (Exception e) when (e is ArgumentException or JsonException or QueueFullException or TimeoutException)
        {
            return new JsonObject { ["id"] = id?.DeepClone(), ["error"] = e.Message }.ToJsonString();
        }
    }
}
