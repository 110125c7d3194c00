using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace OmniKernels.Bench;

/// <summary>
/// Runs the benchmarks (BenchmarkDotNet arguments pass through, e.g. --filter '*Gemm*'), then
/// writes a markdown table with GFLOP/s, the ratio to ONNX Runtime and the fraction of the
/// core's FMA peak to BenchmarkDotNet.Artifacts/gemm-summary.md. <c>load</c> runs <see cref="LoadRun"/> instead.
/// </summary>
public static class Program
{
    /// <summary>Peak fp32 FLOP/s of one core, measured by tools/fma_peak.c on the benchmark machine.</summary>
    private const string PeakVariable = "OMNI_CORE_PEAK_GFLOPS";

    public static void Main(string[] args)
    {
        if (args is ["load", ..])
        {
            LoadRun.Run(args[1..]);
            return;
        }
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, BenchSetup.Config());
        foreach (var s in summaries.Where(s => s.Reports.Any(r => r.BenchmarkCase.Descriptor.Type == typeof(GemmBenchmarks))))
            Write(s, "gemm-summary.md", GemmTable(s));
        string[] frontEnd = [nameof(FrontEndBenchmarks.Mfcc), nameof(FrontEndBenchmarks.WhisperLogMel), nameof(FrontEndBenchmarks.PatchEmbed), nameof(FrontEndBenchmarks.Gemm)];
        foreach (var s in summaries.Where(s => s.Reports.Any(r => r.BenchmarkCase.Descriptor.Type == typeof(FrontEndBenchmarks))))
        {
            // The table pairs rows with each other and with torchaudio: it needs all of them, measured.
            if (frontEnd.All(m => s.Reports.Count(r => r.ResultStatistics is not null && r.BenchmarkCase.Descriptor.Type == typeof(FrontEndBenchmarks) && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == m) == 2))
                Write(s, "frontend-summary.md", FrontEndTable(s));
            else
                Console.WriteLine("front-end summary skipped: it needs every front-end benchmark measured at 1T and 2T (--filter '*FrontEnd*')");
        }
        foreach (var s in summaries.Where(s => s.Reports.Any(r => r.BenchmarkCase.Descriptor.Type == typeof(ModelBenchmarks))))
            Write(s, "model-summary.md", ModelReport.Table(s));
    }

    private static void Write(Summary s, string name, string text)
    {
        var path = Path.Combine(s.ResultsDirectoryPath, name);
        File.WriteAllText(path, text);
        Console.WriteLine($"summary: {path}");
        Console.WriteLine(text);
    }

    /// <summary>MFCC and Whisper's log-mel next to torchaudio (timed now by its script, same clips and threads); patch embedding as a fraction of the GEMM.</summary>
    private static string FrontEndTable(Summary s)
    {
        var inv = CultureInfo.InvariantCulture;
        double Ms(string method, string job) => s.Reports.First(r => r.BenchmarkCase.Descriptor.Type == typeof(FrontEndBenchmarks) && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method && r.BenchmarkCase.Job.Id == job)
            .ResultStatistics!.Median / 1e6;
        double audioSeconds = FrontEndBenchmarks.Clips * FrontEndBenchmarks.ClipSamples / 16000.0;
        double patchFlops = 2.0 * 8 * 196 * 768 * 768;
        var sb = new StringBuilder();
        sb.AppendLine("| threads | ILGPU MFCC | real-time factor | torchaudio 0.13 MFCC | ratio | ILGPU Whisper log-mel | torchaudio 0.13 MelSpectrogram + Whisper's log | ratio | patch embedding | GEMM same size | patch / GEMM |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var job in new[] { "1T", "2T" })
        {
            int threads = int.Parse(job.TrimEnd('T'), inv);
            double mfcc = Ms(nameof(FrontEndBenchmarks.Mfcc), job), whisper = Ms(nameof(FrontEndBenchmarks.WhisperLogMel), job);
            double patch = Ms(nameof(FrontEndBenchmarks.PatchEmbed), job), gemm = Ms(nameof(FrontEndBenchmarks.Gemm), job);
            double peer = TorchaudioMs(threads, "mfcc"), whisperPeer = TorchaudioMs(threads, "whisper");
            sb.AppendLine(string.Create(inv,
                $"| {threads} | {mfcc:F2} ms | {audioSeconds / (mfcc / 1e3):F0}× | {peer:F2} ms, {audioSeconds / (peer / 1e3):F0}× | {peer / mfcc:F2}× | {whisper:F2} ms | {whisperPeer:F2} ms | {whisperPeer / whisper:F2}× | {patch:F2} ms, {patchFlops / patch / 1e6:F0} GFLOP/s | {gemm:F2} ms, {patchFlops / gemm / 1e6:F0} GFLOP/s | {gemm / patch:P0} |"));
        }
        return sb.ToString();
    }

    private static double TorchaudioMs(int threads, string kind)
    {
        string output = BenchSetup.RunTool("bench_torchaudio_mfcc.py", FrontEndBenchmarks.ClipsPath, threads.ToString(CultureInfo.InvariantCulture), kind);
        Console.WriteLine(output.Trim());
        var field = output.Split(' ').First(f => f.StartsWith("median_ms=", StringComparison.Ordinal));
        return double.Parse(field["median_ms=".Length..], CultureInfo.InvariantCulture);
    }

    private static string GemmTable(Summary s)
    {
        var inv = CultureInfo.InvariantCulture;
        double.TryParse(Environment.GetEnvironmentVariable(PeakVariable), NumberStyles.Float, inv, out double peak);
        // A joined summary (--filter '*') holds every suite's reports: only GEMM's have the N parameter.
        var rows = s.Reports.Where(r => r.ResultStatistics is not null && r.BenchmarkCase.Descriptor.Type == typeof(GemmBenchmarks)).Select(r => new
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
