using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace OmniKernels.Bench;

/// <summary>Thread counts, paths and the two jobs every benchmark runs under.</summary>
internal static class BenchSetup
{
    /// <summary>Read by both sides: PoCL's thread count (set before PoCL loads) and ONNX Runtime's intra-op threads.</summary>
    public const string ThreadsVariable = "OMNI_BENCH_THREADS";

    public static int Threads => int.Parse(Environment.GetEnvironmentVariable(ThreadsVariable) ?? "1", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>One job per thread count; each benchmark process gets both variables before PoCL starts.</summary>
    public static IConfig Config()
    {
        var baseJob = Job.Default.WithWarmupCount(3).WithIterationCount(8).WithLaunchCount(1);
        Job For(int threads) => baseJob
            .WithEnvironmentVariables(
                new EnvironmentVariable(ThreadsVariable, threads.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new EnvironmentVariable("POCL_MAX_PTHREAD_COUNT", threads.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new EnvironmentVariable(DeviceKinds.EnvironmentVariable, "opencl"))
            .WithId($"{threads}T");
        return DefaultConfig.Instance.AddJob(For(1)).AddJob(For(2)).WithOptions(ConfigOptions.JoinSummary);
    }

    /// <summary>The repository root (holds OmniKernels.sln), found from the running binary.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OmniKernels.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("OmniKernels.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Where tools/make_onnx_models.py writes the ONNX peer models (git-ignored).</summary>
    public static string PeerModels => Path.Combine(RepoRoot(), "bench", "generated", "onnx");

    /// <summary>A peer model's path; the first call in a fresh clone runs tools/make_onnx_models.py (seconds).</summary>
    public static string Model(string name)
    {
        if (!File.Exists(Path.Combine(PeerModels, "COMPLETE")))
            Console.WriteLine(RunTool("make_onnx_models.py", "--out-dir", PeerModels).Trim());
        return Path.Combine(PeerModels, name);
    }

    /// <summary>
    /// Runs tools/<paramref name="script"/> with Debian's /usr/bin/python3 and returns its standard output;
    /// a failure throws with the script's standard error and the packages it needs.
    /// </summary>
    public static string RunTool(string script, params string[] args)
    {
        string path = Path.Combine(RepoRoot(), "tools", script);
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepoRoot(),
        };
        psi.ArgumentList.Add(path);
        foreach (var a in args) psi.ArgumentList.Add(a);
        System.Diagnostics.Process p;
        try
        {
            p = System.Diagnostics.Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Could not start /usr/bin/python3 to run {path}: {e.Message}", e);
        }
        using (p)
        {
            // Read stderr on its own task so that neither pipe can fill and stall the script.
            var error = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new InvalidOperationException(
                    $"{path} {string.Join(' ', args)} failed ({p.ExitCode}); it needs Debian's python3-numpy, python3-onnx, python3-torchaudio and libopenblas0-openmp (bash tools/setup.sh --tools): {error.Result}");
            return output;
        }
    }

    /// <summary>
    /// Throws unless ‖got − expected‖/‖expected‖ &lt; <paramref name="tolerance"/> (contenders must agree
    /// before any is timed; INT8 against fp32 passes a looser bound); returns that error.
    /// </summary>
    public static double RequireSameResult(float[] expected, float[] got, string what, double tolerance = 1e-5)
    {
        if (got.Length != expected.Length)
            throw new InvalidOperationException($"{what}: {got.Length} values, expected {expected.Length}");
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = got[i] - expected[i];
            num += d * d;
            den += (double)expected[i] * expected[i];
        }
        double err = Math.Sqrt(num / den);
        if (!(err < tolerance)) throw new InvalidOperationException($"{what}: results differ by {err:E2} (relative L2), more than {tolerance:E0}");
        return err;
    }
}
