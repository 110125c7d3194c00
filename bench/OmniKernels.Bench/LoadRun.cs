using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Bench;

/// <summary>
/// <c>load</c>: the batcher under concurrent callers (issue 18). A realistic mix (40% image+text, 30% text,
/// 20% audio+text, 10% all four) of requests whose inputs are all distinct (seeded random pixels, token ids
/// of random lengths, noise clips of random lengths), sent by 1, 4 and 16 callers through one session with
/// batching on (MaxBatch 8, 2 ms window) and off (MaxBatch 1, no window), feature cache off so that every
/// tower runs. Each run is preceded by a warm-up pass over other requests that builds the plans of every
/// batch size. Then the cost of a feature-cache hit against the tower it skips. Writes a markdown table.
/// </summary>
public static class LoadRun
{
    private static readonly (string Kind, double Share)[] Mix = [("image+text", 0.4), ("text", 0.3), ("audio+text", 0.2), ("all", 0.1)];

    public static void Run(string[] args)
    {
        string config = "both";
        int small = 480, large = 48;
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--config": config = args[++i]; break;
                case "--requests-small": small = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--requests-large": large = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"load: unknown argument '{args[i]}' (--config small|vitb|both, --requests-small N, --requests-large N)");
            }
        if (config is not ("small" or "vitb" or "both")) throw new ArgumentException($"load: --config {config}: expected small, vitb or both");
        var sb = new StringBuilder();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, {Cpu()}"));
        sb.AppendLine();
        if (config is "small" or "both")
            Model(sb, "small (tests' tiny-omni)", Path.Combine(BenchSetup.RepoRoot(), "tests", "OmniKernels.Tests", "models", "tiny-omni"), small, audioSeconds: (0.3, 1.0));
        if (config is "vitb" or "both")
            Model(sb, "ViT-B/16-sized (bench model)", BenchModels.Fp32(), large, audioSeconds: (2, 5));
        var path = Path.Combine(BenchModels.Generated, "load-summary.md");
        Directory.CreateDirectory(BenchModels.Generated);
        File.WriteAllText(path, sb.ToString());
        Console.WriteLine($"summary: {path}");
        Console.WriteLine(sb);
    }

    private static string Cpu()
    {
        var lines = File.Exists("/proc/cpuinfo") ? File.ReadAllLines("/proc/cpuinfo") : [];
        string name = lines.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        string flags = lines.FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        return name + (flags.Contains(" avx512f") ? " (AVX-512)" : flags.Contains(" avx2") ? " (AVX2, no AVX-512)" : "");
    }

    private sealed record Shape(int ImageSize, int Frames, int Vocab, int Context, int Bos, int Eos);

    private static Shape ReadShape(string dir)
    {
        var c = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!["towers"]!;
        var text = c["text"]!;
        return new Shape((int)c["image"]!["image_size"]!, (int)c["video"]!["num_frames"]!, (int)text["vocab_size"]!,
            (int)text["max_position_embeddings"]!, (int?)text["bos_token_id"] ?? 1, (int?)text["eos_token_id"] ?? 2);
    }

    /// <summary>Request <paramref name="index"/> of the mix, its inputs drawn from a seed of its own.</summary>
    private static OmniRequest Make(Shape s, int index, string kind, (double Min, double Max) audioSeconds)
    {
        var rng = new Random(1000 + index);
        float[] Pixels(int count) => BenchModels.Uniform(rng, count, 1.7f);
        bool all = kind == "all";
        int frame = 3 * s.ImageSize * s.ImageSize;
        int length = rng.Next(4, s.Context + 1);
        var ids = new int[length];
        ids[0] = s.Bos;
        for (int i = 1; i < length - 1; i++) ids[i] = rng.Next(4, s.Vocab);
        ids[^1] = s.Eos;
        AudioInput? audio = null;
        if (all || kind == "audio+text")
        {
            int samples = (int)((audioSeconds.Min + rng.NextDouble() * (audioSeconds.Max - audioSeconds.Min)) * 16000);
            audio = new AudioInput { Samples = BenchModels.Uniform(rng, samples, 0.5f) };
        }
        return new OmniRequest
        {
            TextIds = ids,
            Image = all || kind == "image+text" ? new ImageInput { Pixels = Pixels(frame) } : null,
            Audio = audio,
            Video = all ? new VideoInput { Frames = Pixels(s.Frames * frame) } : null,
        };
    }

    private static List<OmniRequest> Requests(Shape s, int first, int count, (double, double) audioSeconds)
    {
        var list = new List<OmniRequest>(count);
        for (int i = 0; i < count; i++)
        {
            // Deterministic interleaving that keeps the mix's shares in every prefix.
            double u = (i * 0.6180339887498949) % 1.0, acc = 0;
            string kind = Mix[^1].Kind;
            foreach (var (k, share) in Mix)
                if (u < (acc += share)) { kind = k; break; }
            list.Add(Make(s, first + i, kind, audioSeconds));
        }
        return list;
    }

    private sealed record Outcome(double Throughput, double P50, double P99, IReadOnlyDictionary<string, (long Batches, long Items)> Batches);

    private static Outcome Drive(OmniSession session, IReadOnlyList<OmniRequest> requests, int callers)
    {
        var latencies = new double[requests.Count];
        int next = -1;
        long start = Stopwatch.GetTimestamp();
        var tasks = Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) < requests.Count;)
            {
                long t0 = Stopwatch.GetTimestamp();
                await session.RunAsync(requests[i]);
                latencies[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
        })).ToArray();
        Task.WaitAll(tasks);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var sorted = latencies.Order().ToArray();
        return new Outcome(requests.Count / seconds, sorted[sorted.Length / 2], sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))], session.BatchStats);
    }

    private static void Model(StringBuilder sb, string title, string dir, int count, (double, double) audioSeconds)
    {
        var inv = CultureInfo.InvariantCulture;
        var shape = ReadShape(dir);
        sb.AppendLine(string.Create(inv, $"### {title}: {count} requests per run, all inputs distinct, feature cache off"));
        sb.AppendLine();
        sb.AppendLine("| callers | batching | requests/s | p50 ms | p99 ms | mean batch per tower | on ÷ off |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        var warm = Requests(shape, 1_000_000, Math.Max(16, count / 4), audioSeconds);
        var load = Requests(shape, 0, count, audioSeconds);
        foreach (int callers in new[] { 1, 4, 16 })
        {
            var results = new Dictionary<bool, Outcome>();
            foreach (bool batching in new[] { true, false })
            {
                var options = new OmniSessionOptions
                {
                    Device = DeviceKind.OpenCL,
                    FeatureCacheBytes = 0,
                    MaxBatch = batching ? 8 : 1,
                    MaxQueueDelay = batching ? TimeSpan.FromMilliseconds(2) : TimeSpan.Zero,
                };
                using var session = OmniSession.Load(dir, options);
                Drive(session, warm, 16); // plans of every batch size built, kernels compiled
                var before = session.BatchStats;
                var o = Drive(session, load, callers);
                var batches = o.Batches.ToDictionary(b => b.Key, b => (b.Value.Batches - before.GetValueOrDefault(b.Key).Batches, b.Value.Items - before.GetValueOrDefault(b.Key).Items));
                results[batching] = o with { Batches = batches };
                Console.WriteLine(string.Create(inv, $"{title}: {callers} callers, batching {(batching ? "on" : "off")}: {o.Throughput:F1} req/s"));
            }
            foreach (bool batching in new[] { true, false })
            {
                var o = results[batching];
                string mean = string.Join(", ", o.Batches.OrderBy(b => b.Key, StringComparer.Ordinal).Where(b => b.Value.Batches > 0)
                    .Select(b => string.Create(inv, $"{b.Key} {(double)b.Value.Items / b.Value.Batches:F2}")));
                string ratio = batching ? string.Create(inv, $"{o.Throughput / results[false].Throughput:F2}×") : "";
                sb.AppendLine(string.Create(inv, $"| {callers} | {(batching ? "on (8, 2 ms)" : "off")} | {o.Throughput:F1} | {o.P50:F1} | {o.P99:F1} | {mean} | {ratio} |"));
            }
        }
        sb.AppendLine();
        CacheHit(sb, dir, shape, audioSeconds);
    }

    /// <summary>
    /// Image-only requests, each run twice: the miss runs the image tower and the fusion, the hit only the
    /// fusion. The hit's own cost is its wall time on the caller (input hashing, lookup, the batcher's
    /// hand-off) less its fusion time, set against the image tower's time in the miss.
    /// </summary>
    private static void CacheHit(StringBuilder sb, string dir, Shape shape, (double, double) audioSeconds)
    {
        var inv = CultureInfo.InvariantCulture;
        using var session = OmniSession.Load(dir, new OmniSessionOptions { Device = DeviceKind.OpenCL, FeatureCacheBytes = 256L << 20, MaxQueueDelay = TimeSpan.Zero });
        const int N = 9;
        var towers = new List<double>();
        var hits = new List<double>();
        for (int i = 0; i < N + 1; i++)
        {
            var r = Make(shape, 2_000_000 + i, "image+text", audioSeconds) with { TextIds = null };
            var miss = session.Run(r);
            long t0 = Stopwatch.GetTimestamp();
            var hit = session.Run(r);
            double wall = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (hit.TimingsMs.ContainsKey("image")) throw new InvalidOperationException("the repeated image was not served from the feature cache");
            if (i == 0) continue; // plans built
            towers.Add(miss.TimingsMs["image"]);
            hits.Add(wall - hit.TimingsMs["fusion"]);
        }
        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        double tower = Median(towers), hitMs = Median(hits);
        var stats = session.CacheStats!;
        sb.AppendLine(string.Create(inv, $"Feature cache ({N} distinct image-only requests, each run twice; medians): image tower {tower:F3} ms, " +
            $"a hit {hitMs:F3} ms (hashing, lookup, hand-off): **{tower / hitMs:F0}× cheaper** than the tower; counters {stats.Hits} hits, {stats.Misses} misses."));
        sb.AppendLine();
    }
}
