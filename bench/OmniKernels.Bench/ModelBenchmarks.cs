using System.Diagnostics;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Bench;

/// <summary>What one benchmark process measured besides BenchmarkDotNet's latency; written as JSON for <see cref="ModelReport"/>.</summary>
public sealed record ModelCaseReport
{
    public double LoadMs { get; set; }
    public double FirstRunMs { get; set; }
    public int SteadyRuns { get; set; }
    public double DeviceAllocationsPerRequest { get; set; }
    public long PoolBytesInUseDelta { get; set; }
    public long ArenaBytes { get; set; }
    public long UnsharedBytes { get; set; }
    public double UnprofiledTotalMs { get; set; }
    public double? ProfiledTotalMs { get; set; }
    public double? ProfiledNodeMs { get; set; }
    public int? ProfiledNodes { get; set; }
    public int? ProfiledLaunches { get; set; }
    public double? ProfiledShortestLaunchMs { get; set; }
    public Dictionary<string, double> MedianTimingsMs { get; set; } = [];
    public Dictionary<string, float[]> Embeddings { get; set; } = [];
    public float[]? Fused { get; set; }
    public double? Int8CheckpointLoadMs { get; set; }
    public double? Int8CheckpointMedianMs { get; set; }
    public double? Int8CheckpointVsLoadQuantized { get; set; }
    public float[]? Int8CheckpointImageEmbedding { get; set; }
}

/// <summary>
/// Whole requests through one <see cref="OmniSession"/> of the bench-time model (<see cref="BenchModels"/>):
/// text-only, image-only, audio-only, video-only and full (all four) requests, fp32 and INT8 (Linear
/// weights quantized at load). The session is created and warmed up in setup (the first request builds
/// its plans); setup then measures what the latency cannot show (device allocations over steady-state
/// requests, the plans' arena against their unshared intermediates, a profiled run of each single-modality request,
/// the INT8 checkpoint's load and latency) and every timed request keeps its stage times; all of it goes
/// to <c>bench/generated/model-report/</c> for <see cref="ModelReport"/>. Requests take seconds, so the
/// jobs are cut to one warm-up and three measured iterations of one request each.
/// </summary>
[MemoryDiagnoser]
[WarmupCount(1)]
[IterationCount(3)]
[InvocationCount(1)]
public class ModelBenchmarks : IDisposable
{
    private const int SteadyRuns = 2;

    [Params("fp32", "int8")]
    public string Precision { get; set; } = "";

    [Params("text", "image", "audio", "video", "full")]
    public string Request { get; set; } = "";

    private OmniSession _session = null!;
    private OmniRequest _request = null!;
    private readonly List<IReadOnlyDictionary<string, double>> _timings = [];
    private ModelCaseReport _report = new();

    /// <summary>
    /// One request's own latency: the benchmark repeats the same request, which the feature cache would
    /// answer without running a tower, and a batching window would add its wait to (the load run measures both).
    /// </summary>
    private static OmniSessionOptions Unbatched => new() { Device = DeviceKind.OpenCL, FeatureCacheBytes = 0, MaxBatch = 1, MaxQueueDelay = TimeSpan.Zero };

    public static string ReportFolder => Path.Combine(BenchModels.Generated, "model-report");

    public static string ReportPath(string precision, string request, int threads) => Path.Combine(ReportFolder, $"{precision}-{request}-{threads}T.json");

    [GlobalSetup]
    public void Setup()
    {
        string folder = BenchModels.Fp32();
        _request = BenchModels.Request(Request);
        long t0 = Stopwatch.GetTimestamp();
        _session = OmniSession.Load(folder, Unbatched with { Int8 = Precision == "int8" });
        _report.LoadMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;

        var first = _session.Run(_request);
        _report.FirstRunMs = first.TimingsMs["total"];
        foreach (var (m, emb) in first.Embeddings)
        {
            if (!emb.All(float.IsFinite)) throw new InvalidOperationException($"{Request}: the {OmniSession.Name(m)} embedding is not finite");
            _report.Embeddings[OmniSession.Name(m)] = emb;
        }
        _report.Fused = first.Fused;

        var pool = _session.Device.Pool;
        long allocations = pool.DeviceAllocations, inUse = pool.BytesInUse;
        double total = 0;
        for (int i = 0; i < SteadyRuns; i++) total += _session.Run(_request).TimingsMs["total"];
        _report.SteadyRuns = SteadyRuns;
        _report.DeviceAllocationsPerRequest = (pool.DeviceAllocations - allocations) / (double)SteadyRuns;
        _report.PoolBytesInUseDelta = pool.BytesInUse - inUse;
        _report.UnprofiledTotalMs = total / SteadyRuns;
        (_report.ArenaBytes, _report.UnsharedBytes) = _session.PlanBytes;

        if (Request != "full")
        {
            // Synchronized after every node: the sum of node times is device work plus each node's launch and wait.
            var profiled = _session.Run(BenchModels.Request(Request, profile: true));
            var nodes = profiled.Profile!;
            _report.ProfiledTotalMs = profiled.TimingsMs["total"];
            _report.ProfiledNodeMs = nodes.Sum(n => n.Milliseconds);
            _report.ProfiledNodes = nodes.Count;
            _report.ProfiledLaunches = nodes.Sum(n => n.Launches);
            _report.ProfiledShortestLaunchMs = nodes.Where(n => n.Launches > 0).Min(n => n.Milliseconds / n.Launches);
        }
        if (Request == "image" && Precision == "int8") MeasureInt8Checkpoint(first);
    }

    /// <summary>The INT8 checkpoint (quantized offline) against the same weights quantized at load: load time, latency, embedding difference.</summary>
    private void MeasureInt8Checkpoint(OmniResult atLoad)
    {
        string folder = BenchModels.Int8Checkpoint();
        long t0 = Stopwatch.GetTimestamp();
        using var session = OmniSession.Load(folder, Unbatched);
        _report.Int8CheckpointLoadMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        var r = session.Run(_request);
        var times = Enumerable.Range(0, 3).Select(_ => session.Run(_request).TimingsMs["total"]).Order().ToArray();
        _report.Int8CheckpointMedianMs = times[1];
        _report.Int8CheckpointVsLoadQuantized = RelativeError(atLoad.Embeddings[Modality.Image], r.Embeddings[Modality.Image]);
        _report.Int8CheckpointImageEmbedding = r.Embeddings[Modality.Image];
    }

    public static double RelativeError(float[] expected, float[] got)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            num += (double)(got[i] - expected[i]) * (got[i] - expected[i]);
            den += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(num / den);
    }

    [Benchmark(Description = "OmniSession.Run")]
    public OmniResult Run()
    {
        var r = _session.Run(_request);
        _timings.Add(r.TimingsMs);
        return r;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        if (_timings.Count > 0)
        {
            foreach (var key in _timings[0].Keys)
            {
                var v = _timings.Select(t => t[key]).Order().ToArray();
                _report.MedianTimingsMs[key] = v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
            }
            Directory.CreateDirectory(ReportFolder);
            File.WriteAllText(ReportPath(Precision, Request, BenchSetup.Threads), JsonSerializer.Serialize(_report));
        }
        _session?.Dispose();
        GC.SuppressFinalize(this);
    }
}
