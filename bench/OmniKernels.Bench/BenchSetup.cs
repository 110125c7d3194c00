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

    public static string Model(string name) => Path.Combine(RepoRoot(), "bench", "models", name);

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
