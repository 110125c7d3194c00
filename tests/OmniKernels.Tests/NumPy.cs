using System.Diagnostics;
using NUnit.Framework;

namespace OmniKernels.Tests;

/// <summary>Runs snippets under Debian's Python with NumPy, the independent implementation several tests compare against.</summary>
public static class NumPy
{
    /// <summary>Debian's interpreter: the python3 first on PATH may lack NumPy.</summary>
    public const string Python = "/usr/bin/python3";

    /// <summary>Runs <c>python3 -c code args...</c> with sys and numpy (as np) imported; fails the test (never skips) when Python or NumPy is missing.</summary>
    public static string Run(string code, params string[] args)
    {
        if (!File.Exists(Python))
            Assert.Fail($"{Python} not found; these tests need Python with NumPy: apt-get install python3-numpy");
        var psi = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import sys\nimport numpy as np\n" + code);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start python3");
        var stdoutTask = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("python3 did not finish within 120 s");
        }
        string stdout = stdoutTask.Result;
        if (process.ExitCode != 0)
        {
            if (stderr.Contains("No module named 'numpy'"))
                Assert.Fail($"NumPy is not installed for {Python}: apt-get install python3-numpy");
            Assert.Fail($"python3 exited with {process.ExitCode}: {stderr}");
        }
        return stdout;
    }
}
