using System.Text.Json;
using NUnit.Framework;
using OmniKernels.Cli;

namespace OmniKernels.Tests.Weights;

/// <summary><c>omni weights</c>: lists what the Python writer wrote; every malformed file gives one stderr line and exit 2.</summary>
[TestFixture]
public sealed class WeightsCliTests
{
    private string _root = "";

    [OneTimeSetUp]
    public void Write()
    {
        _root = Corpus.NewTempDir("weightscli");
        Corpus.Run("valid", Path.Combine(_root, "valid"));
        Corpus.Run("malformed", Path.Combine(_root, "bad"));
    }

    [OneTimeTearDown]
    public void Delete()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    internal static (int Code, string Out, string Err) Omni(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Test]
    public void JsonListsEveryTensorExactlyAsPythonWroteIt()
    {
        string file = Path.Combine(_root, "valid", "all.safetensors");
        var (code, output, err) = Omni("weights", file, "--json");
        Assert.That((code, err), Is.EqualTo((0, "")));
        using var got = JsonDocument.Parse(output);
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_root, "valid", "manifest.json")));
        var expected = manifest.RootElement.GetProperty("files").GetProperty("all.safetensors");
        var tensors = got.RootElement.GetProperty("tensors").EnumerateArray().ToList();
        var want = expected.GetProperty("tensors").EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        Assert.That(tensors.Select(t => t.GetProperty("name").GetString()), Is.EqualTo(want.Select(p => p.Name)));
        long total = 0;
        for (int i = 0; i < want.Count; i++)
        {
            var (t, w) = (tensors[i], want[i].Value);
            Assert.That(t.GetProperty("dtype").GetString(), Is.EqualTo(w.GetProperty("dtype").GetString()));
            Assert.That(t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), Is.EqualTo(w.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())));
            long bytes = Convert.FromBase64String(w.GetProperty("data").GetString()!).Length;
            Assert.That(t.GetProperty("bytes").GetInt64(), Is.EqualTo(bytes));
            Assert.That(t.GetProperty("file").GetString(), Is.EqualTo(file));
            total += bytes;
        }
        Assert.That(got.RootElement.GetProperty("total_bytes").GetInt64(), Is.EqualTo(total));
        Assert.That(got.RootElement.GetProperty("metadata").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()),
            Is.EquivalentTo(expected.GetProperty("metadata").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString())));
    }

    [Test]
    public void TableListsShardsWithTotals()
    {
        var (code, output, _) = Omni("weights", Path.Combine(_root, "valid", "sharded"));
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain("vision_model.encoder.layers.1.mlp.fc1.weight").And.Contain("F16").And.Contain("[8, 4]").And.Contain("model-00002-of-00002.safetensors"));
        Assert.That(output, Does.Contain("4 tensors, 76 parameters, 240 bytes in 2 files"));
        Assert.That(output, Does.Contain("metadata  format = pt"));
    }

    [Test]
    public void EveryMalformedInputPrintsOneLineAndExits2()
    {
        var cases = Corpus.ReadMalformed(Path.Combine(_root, "bad"));
        var lines = new HashSet<string>();
        foreach (var c in cases)
        {
            var (code, output, err) = Omni("weights", c.Path);
            Assert.That(code, Is.EqualTo(2), c.Path);
            Assert.That(output, Is.Empty, c.Path);
            var errLines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(errLines, Has.Length.EqualTo(1), c.Path);
            Assert.That(errLines[0], Does.StartWith("omni weights: ").And.Contain(c.Expect).And.Contain(Path.GetFullPath(c.Fails)), c.Path);
            Assert.That(lines.Add(errLines[0]), Is.True, $"{c.Path}: the same message as another case");
        }
        var (missing, _, missingErr) = Omni("weights", Path.Combine(_root, "nothing-here"));
        Assert.That((missing, missingErr.Trim()), Is.EqualTo((2, $"omni weights: {Path.Combine(_root, "nothing-here")}: no such file or folder")));
    }
}
