using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace OmniKernels.Bench;

/// <summary>
/// Runs the benchmarks (BenchmarkDotNet arguments pass through, e.g. --filter '*Gemm*'), then
/// writes a markdown table with GFLOP/s, the ratio to ONNX Runtime and the fraction of the
/// core's FMA peak to BenchmarkDotNet.Artifacts/gemm-summary.md.
/// </summary>
public static class Program
{
    /// <summary>Peak fp32 FLOP/s of one core, measured by tools/fma_peak.c on the benchmark machine.</summary>
    private const string PeakVariable = "OMNI_CORE_PEAK_GFLOPS";

    public static void Main(string[] args)
    {
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, BenchSetup.Config());
        foreach (var s in summaries.Where(s => s.Reports.Any(r => r.BenchmarkCase.Descriptor.Type == typeof(GemmBenchmarks))))
        {
            var path = Path.Combine(s.ResultsDirectoryPath, "gemm-summary.md");
            File.WriteAllText(path, GemmTable(s));
            Console.WriteLine($"GEMM summary: {path}");
            Console.WriteLine(File.ReadAllText(path));
        }
    }

    private static string GemmTable(Summary s)
    {
        var inv = CultureInfo.InvariantCulture;
        double.TryParse(Environment.GetEnvironmentVariable(PeakVariable), NumberStyles.Float, inv, out double peak);
        var rows = s.Reports.Where(r => r.ResultStatistics is not null).Select(r => new
        {
            Threads = r.BenchmarkCase.Job.Id,
            N = (int)r.BenchmarkCase.Parameters["N"],
            Method = r.BenchmarkCase.Descriptor.WorkloadMethod.Name,
            Name = r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo,
            Ms = r.ResultStatistics!.Median / 1e6,
        }).ToList();
        var sb = new StringBuilder();
        sb.AppendLine("| threads | n | method | median ms | GFLOP/s | vs ONNX Runtime (same B form) | of FMA peak |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in rows.OrderBy(r => r.Threads).ThenBy(r => r.N).ThenBy(r => r.Method))
        {
            double gflops = 2.0 * r.N * r.N * r.N / (r.Ms * 1e6);
            string peerMethod = r.Method switch { "IlgpuActivations" => "OrtMatMul", "IlgpuLinear" => "OrtLinear", _ => "" };
            var peer = rows.FirstOrDefault(p => p.Threads == r.Threads && p.N == r.N && p.Method == peerMethod);
            string ratio = peer is null ? "" : (peer.Ms / r.Ms).ToString("F2", inv) + "×";
            int threads = int.Parse(r.Threads.TrimEnd('T'), inv);
            string ofPeak = peak > 0 ? (gflops / (peak * threads)).ToString("P0", inv) : "";
            sb.AppendLine(string.Create(inv, $"| {threads} | {r.N} | {r.Name} | {r.Ms:F3} | {gflops:F1} | {ratio} | {ofPeak} |"));
        }
        return sb.ToString();
    }
}
