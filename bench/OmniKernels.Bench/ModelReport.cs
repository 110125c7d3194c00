using System.Globalization;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Reports;

namespace OmniKernels.Bench;

/// <summary>
/// The markdown tables of <see cref="ModelBenchmarks"/>: latency per request with its stage times and
/// allocations, what a single-modality request costs against its tower and saves against a full one,
/// host time outside the kernels of an image-only request, and INT8 against fp32. Reads the summary's
/// medians and the per-process reports in <see cref="ModelBenchmarks.ReportFolder"/>.
/// </summary>
internal static class ModelReport
{
    private static readonly string[] Singles = ["text", "image", "audio", "video"];
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private sealed record Case(string Precision, string Request, int Threads, double Ms, long? Allocated, ModelCaseReport? Report);

    public static string Table(Summary s)
    {
        var cases = s.Reports.Where(r => r.ResultStatistics is not null && r.BenchmarkCase.Descriptor.Type == typeof(ModelBenchmarks)).Select(r =>
        {
            var p = (string)r.BenchmarkCase.Parameters[nameof(ModelBenchmarks.Precision)];
            var q = (string)r.BenchmarkCase.Parameters[nameof(ModelBenchmarks.Request)];
            int threads = int.Parse(r.BenchmarkCase.Job.Id.TrimEnd('T'), Inv);
            string path = ModelBenchmarks.ReportPath(p, q, threads);
            var report = File.Exists(path) ? JsonSerializer.Deserialize<ModelCaseReport>(File.ReadAllText(path)) : null;
            long? bytes = r.GcStats.GetBytesAllocatedPerOperation(r.BenchmarkCase);
            return new Case(p, q, threads, r.ResultStatistics!.Median / 1e6, bytes, report);
        }).ToList();
        var sb = new StringBuilder();
        Latency(sb, cases);
        Skipping(sb, cases);
        Host(sb, cases);
        Int8(sb, cases);
        return sb.ToString();
    }

    private static string F(FormattableString f) => f.ToString(Inv);

    private static string Stages(ModelCaseReport? r) => r is null ? "" :
        string.Join(", ", r.MedianTimingsMs.Where(k => k.Key != "total").Select(k => F($"{k.Key} {k.Value:F1}")));

    private static void Latency(StringBuilder sb, List<Case> cases)
    {
        sb.AppendLine("| precision | threads | request | median ms | stages (median ms) | managed bytes / request | device allocations / request | arena MB | intermediates unshared MB | arena / unshared | first run ms | load s |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var c in cases.OrderBy(c => c.Precision).ThenBy(c => c.Threads).ThenBy(c => Array.IndexOf([.. Singles, "full"], c.Request)))
        {
            var r = c.Report;
            sb.AppendLine(r is null
                ? F($"| {c.Precision} | {c.Threads} | {c.Request} | {c.Ms:F1} | (no report) | {c.Allocated} | | | | | | |")
                : F($"| {c.Precision} | {c.Threads} | {c.Request} | {c.Ms:F1} | {Stages(r)} | {c.Allocated:N0} | {r.DeviceAllocationsPerRequest:F1} | {r.ArenaBytes / 1e6:F1} | {r.UnsharedBytes / 1e6:F1} | {r.ArenaBytes / (double)r.UnsharedBytes:P0} | {r.FirstRunMs:F0} | {r.LoadMs / 1e3:F1} |"));
        }
        sb.AppendLine();
    }

    /// <summary>A single-modality request against its tower's stage time inside the full request, and what it saves against the full request.</summary>
    private static void Skipping(StringBuilder sb, List<Case> cases)
    {
        sb.AppendLine("| precision | threads | request | median ms | its tower in the full request, ms | request / that tower | its tower in its own request, ms | request / own tower | full request ms | saved against full |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var g in cases.GroupBy(c => (c.Precision, c.Threads)).OrderBy(g => g.Key))
        {
            var full = g.FirstOrDefault(c => c.Request == "full");
            foreach (var m in Singles)
            {
                var c = g.FirstOrDefault(x => x.Request == m);
                if (c is null || full is null) continue;
                double inFull = full.Report?.MedianTimingsMs.GetValueOrDefault(m) ?? double.NaN;
                double own = c.Report?.MedianTimingsMs.GetValueOrDefault(m) ?? double.NaN;
                sb.AppendLine(F($"| {c.Precision} | {c.Threads} | {m} | {c.Ms:F1} | {inFull:F1} | {c.Ms / inFull:F3} | {own:F1} | {c.Ms / own:F3} | {full.Ms:F1} | {1 - c.Ms / full.Ms:P1} |"));
            }
        }
        sb.AppendLine();
    }

    /// <summary>
    /// Time outside the plans' nodes, from one profiled run of each single-modality request (synchronized after
    /// every node): the run's total minus the sum of its node times is host work (checks, uploads, downloads,
    /// assembling the result) plus the device front ends that run outside the plan (the audio log-mel). The
    /// launches' own host cost sits inside the node times; the cheapest node per launch bounds it from above.
    /// </summary>
    private static void Host(StringBuilder sb, List<Case> cases)
    {
        sb.AppendLine("| precision | threads | request | median ms | profiled run: total ms | Σ node ms | nodes / launches | outside the nodes | shortest node per launch, ms | launches × that (bound on launch cost) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var c in cases.Where(c => c.Report?.ProfiledNodeMs is not null)
                     .OrderBy(c => c.Precision).ThenBy(c => c.Threads).ThenBy(c => Array.IndexOf(Singles, c.Request)))
        {
            var r = c.Report!;
            double nodes = r.ProfiledNodeMs!.Value, pt = r.ProfiledTotalMs!.Value, shortest = r.ProfiledShortestLaunchMs!.Value;
            double bound = shortest * r.ProfiledLaunches!.Value;
            sb.AppendLine(F($"| {c.Precision} | {c.Threads} | {c.Request} | {c.Ms:F1} | {pt:F1} | {nodes:F1} | {r.ProfiledNodes} / {r.ProfiledLaunches} | {pt - nodes:F2} ms ({(pt - nodes) / pt:P2}) | {shortest:F3} | {bound:F1} ms ({bound / pt:P1}) |"));
        }
        sb.AppendLine();
    }

    /// <summary>INT8 against fp32 (same inputs, full request), and the INT8 checkpoint against quantizing at load.</summary>
    private static void Int8(StringBuilder sb, List<Case> cases)
    {
        sb.AppendLine("| threads | request | fp32 ms | INT8 ms | speed-up | embedding error (relative L2), INT8 vs fp32 |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var g in cases.GroupBy(c => (c.Threads, c.Request)).OrderBy(g => g.Key.Threads).ThenBy(g => Array.IndexOf([.. Singles, "full"], g.Key.Request)))
        {
            var f = g.FirstOrDefault(c => c.Precision == "fp32");
            var q = g.FirstOrDefault(c => c.Precision == "int8");
            if (f is null || q is null) continue;
            string err = f.Report is null || q.Report is null ? "" : string.Join(", ",
                f.Report.Embeddings.Keys.Select(k => F($"{k} {ModelBenchmarks.RelativeError(f.Report.Embeddings[k], q.Report.Embeddings[k]):E1}"))
                    .Append(f.Report.Fused is { } ff && q.Report.Fused is { } qf ? F($"fused {ModelBenchmarks.RelativeError(ff, qf):E1}") : ""));
            sb.AppendLine(F($"| {g.Key.Threads} | {g.Key.Request} | {f.Ms:F1} | {q.Ms:F1} | {f.Ms / q.Ms:F2}× | {err} |"));
        }
        sb.AppendLine();
        foreach (var c in cases.Where(c => c.Report?.Int8CheckpointMedianMs is not null).OrderBy(c => c.Threads))
        {
            var r = c.Report!;
            var fp32 = cases.FirstOrDefault(f => f.Precision == "fp32" && f.Request == "image" && f.Threads == c.Threads)?.Report;
            string vsFp32 = fp32 is null ? "" : F($"; against fp32 {ModelBenchmarks.RelativeError(fp32.Embeddings["image"], r.Int8CheckpointImageEmbedding!):E1}");
            sb.AppendLine(F($"- {c.Threads}T, INT8 checkpoint (`CheckpointQuantizer.Quantize`), image request: load {r.Int8CheckpointLoadMs / 1e3:F1} s (quantized at load: {r.LoadMs / 1e3:F1} s), median of 3 {r.Int8CheckpointMedianMs:F1} ms (quantized at load: {c.Ms:F1} ms); image embedding against quantized-at-load {r.Int8CheckpointVsLoadQuantized:E1}{vsFp32} (relative L2)."));
        }
    }
}
