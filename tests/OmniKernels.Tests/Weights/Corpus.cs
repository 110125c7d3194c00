using System.Diagnostics;
using System.Text.Json;
using NUnit.Framework;

namespace OmniKernels.Tests.Weights;

/// <summary>
/// Runs <c>tools/make_safetensors_corpus.py</c> (the Python reader/writer written from the format's
/// specification) into temporary folders: the independent side of every safetensors test.
/// </summary>
public static class Corpus
{
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OmniKernels.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("OmniKernels.sln not found above " + AppContext.BaseDirectory);
    }

    public static string Script => Path.Combine(RepoRoot(), "tools", "make_safetensors_corpus.py");

    /// <summary>Runs the script with <paramref name="args"/>; fails the test on a non-zero exit; returns stdout.</summary>
    public static string Run(params string[] args)
    {
        if (!File.Exists(NumPy.Python))
            Assert.Fail($"{NumPy.Python} not found; these tests need Python with NumPy: apt-get install python3-numpy");
        var psi = new ProcessStartInfo(NumPy.Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start python3");
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(300_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("make_safetensors_corpus.py did not finish within 300 s");
        }
        if (p.ExitCode != 0) Assert.Fail($"make_safetensors_corpus.py {string.Join(' ', args)} exited with {p.ExitCode}: {stderr}");
        return stdout.Result;
    }

    public static string NewTempDir(string tag)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"omni-{tag}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>One malformed case from the script's malformed.json.</summary>
    public sealed record BadCase(string Path, string Fails, string Expect, string? Tensor)
    {
        public override string ToString() => Path;
    }

    public static List<BadCase> ReadMalformed(string dir)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(dir, "malformed.json")));
        return doc.RootElement.EnumerateArray().Select(e => new BadCase(
            System.IO.Path.Combine(dir, e.GetProperty("path").GetString()!),
            System.IO.Path.Combine(dir, e.GetProperty("fails").GetString()!),
            e.GetProperty("expect").GetString()!,
            e.GetProperty("tensor").GetString())).ToList();
    }

    /// <summary>File descriptors and memory mappings of this process on files under <paramref name="dir"/> (Linux /proc).</summary>
    public static List<string> OpenHandlesUnder(string dir)
    {
        var result = File.ReadAllLines("/proc/self/maps").Where(l => l.Contains(dir, StringComparison.Ordinal)).ToList();
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                var target = new FileInfo(fd).LinkTarget;
                if (target is not null && target.StartsWith(dir, StringComparison.Ordinal)) result.Add(target);
            }
            catch (IOException) { /* the descriptor closed while listing */ }
        }
        return result;
    }
}
