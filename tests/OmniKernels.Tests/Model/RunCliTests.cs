using System.Text.Json;
using NUnit.Framework;

namespace OmniKernels.Tests.Model;

/// <summary>
/// <c>omni run</c> in-process on the test model folders: its JSON against the PyTorch mirror's
/// vectors, the profile of a text-only request, the modality detector, and bad input with exit
/// code 2. Each run loads its own session on the default device, as a user's command would.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RunCliTests
{
    private static (int Code, string Out, string Err) Omni(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = OmniKernels.Cli.Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string Folder(string name) => ModelParityTests.ModelDir(name);

    [TestCase("image_text_cat")]
    [TestCase("image_png")]
    [TestCase("text_unseen")]
    public void JsonOnHfClipFolderMatchesPyTorch(string caseName)
    {
        var c = ModelParityTests.Load("tiny-clip-hf").Single(x => x.Name == caseName);
        var args = new List<string> { "run", "--model", Folder("tiny-clip-hf"), "--json" };
        var inputs = c.Json.GetProperty("inputs");
        if (inputs.TryGetProperty("image", out var img))
            args.AddRange(["--image", c.File((img.TryGetProperty("png", out var png) ? png : img.GetProperty("pixels")).GetString()!)]);
        if (inputs.TryGetProperty("text", out var txt)) args.AddRange(["--text", txt.GetProperty("text").GetString()!]);
        var (code, stdout, stderr) = Omni([.. args]);
        Assert.That(code, Is.Zero, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        foreach (var m in c.Json.GetProperty("towers_run").EnumerateArray().Select(t => t.GetString()!))
        {
            var actual = root.GetProperty("embeddings").GetProperty(m).EnumerateArray().Select(x => x.GetSingle()).ToArray();
            double err = ModelParityTests.RelativeError(actual, ModelParityTests.Expected(c, "embedding_" + m));
            Assert.That(err, Is.LessThanOrEqualTo(ModelParityTests.Tolerance), $"{m}: relative error {err:E2}");
        }
        Assert.That(root.GetProperty("towers_run").EnumerateArray().Select(t => t.GetString()),
            Is.EqualTo(c.Json.GetProperty("towers_run").EnumerateArray().Select(t => t.GetString())));
        foreach (var key in new[] { "model", "device", "fused", "similarities", "classes", "timings_ms" })
            Assert.That(root.TryGetProperty(key, out _), key);
    }

    [Test]
    public void ProfileOfTextOnlyRequestShowsZeroLaunchesElsewhere()
    {
        var (code, stdout, stderr) = Omni("run", "--model", Folder("tiny-omni"), "--text", "the quick dog runs past the old car", "--profile");
        Assert.That(code, Is.Zero, stderr);
        var line = stdout.Split('\n').Single(l => l.Contains("launches per tower:"));
        Assert.That(line, Does.Contain("image 0").And.Contain("audio 0").And.Contain("video 0"));
        Assert.That(line, Does.Match(@"text [1-9]\d*"));
        Assert.That(stdout, Does.Contain("text.layers.1.attn"));
    }

    [Test]
    public void InputDetectsEachModality()
    {
        var vec = Path.Combine(Folder("tiny-omni"), "vectors", "inputs");
        string text = Path.Combine(Path.GetTempPath(), $"omni-text-{Guid.NewGuid():N}.txt");
        File.WriteAllText(text, "a cat on the old car");
        try
        {
            var (code, stdout, stderr) = Omni("run", "--model", Folder("tiny-omni"), "--json",
                "--input", Path.Combine(vec, "image_png.png"), "--input", Path.Combine(vec, "audio_a0.wav"),
                "--input", Path.Combine(vec, "video_v0.npy"), "--input", text);
            Assert.That(code, Is.Zero, stderr);
            Assert.That(stderr, Does.Contain("detected image").And.Contain("detected audio").And.Contain("detected video").And.Contain("detected text"));
            using var doc = JsonDocument.Parse(stdout);
            Assert.That(doc.RootElement.GetProperty("towers_run").EnumerateArray().Select(t => t.GetString()),
                Is.EqualTo(new[] { "image", "text", "audio", "video" }));
        }
        finally
        {
            File.Delete(text);
        }
    }

    [Test]
    public void BadInputExitsWithTwo()
    {
        var vec = Path.Combine(Folder("tiny-omni"), "vectors", "inputs");
        (string[] Args, string Message)[] cases =
        [
            (["run", "--model", "/nonexistent/model", "--text", "x"], "does not exist"),
            (["run", "--model", Folder("tiny-omni")], "at least one of"),
            (["run", "--model", Folder("tiny-clip-hf"), "--audio", Path.Combine(vec, "audio_a0.wav")], "no tower for"),
            (["run", "--model", Folder("tiny-omni"), "--image", Path.Combine(vec, "audio_a0.wav")], "audio_a0.wav"),
            (["run", "--model", Folder("tiny-omni"), "--text-ids", "1,x,3"], "comma-separated"),
            (["run", "--model", Folder("tiny-omni"), "--text", "a", "--text-ids", "1,3"], "exclude each other"),
        ];
        foreach (var (args, message) in cases)
        {
            var (code, stdout, stderr) = Omni(args);
            Assert.That(code, Is.EqualTo(2), $"{string.Join(' ', args)}: {stderr}");
            Assert.That(stderr, Does.Contain(message), string.Join(' ', args));
            Assert.That(stderr.TrimEnd().Split('\n'), Has.Length.EqualTo(1), "one line");
            Assert.That(stdout, Is.Empty);
        }
    }

    [Test]
    public void BulkRequestsEqualSingleRunsAndBatch()
    {
        var vec = Path.Combine(Folder("tiny-omni"), "vectors", "inputs");
        string[] texts = ["the quick dog runs past the old car", "a cat on the old car", "music"];
        var lines = new List<string>();
        for (int i = 0; i < 24; i++)
        {
            var o = new System.Text.Json.Nodes.JsonObject { ["id"] = $"r{i}" };
            if (i % 2 == 0) o["image"] = Path.Combine(vec, i % 4 == 0 ? "image_i0.npy" : "image_png.png");
            if (i % 3 != 2) o["text"] = texts[i % 3];
            if (i % 4 == 1) o["audio"] = Path.Combine(vec, "audio_a1.wav");
            if (i % 6 == 3) o["video"] = Path.Combine(vec, "video_v0.npy");
            if (o.Count == 1) o["text"] = texts[2];
            lines.Add(o.ToJsonString());
        }
        lines.Insert(5, """{"id": "bad", "image": "/nonexistent.png"}""");
        string file = Path.Combine(Path.GetTempPath(), $"omni-requests-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(file, lines);
        try
        {
            var (code, stdout, stderr) = Omni("run", "--model", Folder("tiny-omni"), "--requests", file, "--concurrency", "8");
            Assert.That(code, Is.Zero, stderr);
            var results = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
            Assert.That(results.Select(r => r.GetProperty("id").GetString()), Is.EqualTo(lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString())), "input order");
            Assert.That(results[5].GetProperty("error").GetString(), Does.Contain("nonexistent.png"));
            foreach (int i in new[] { 0, 1, 3, 9, 13 })
            {
                var req = JsonDocument.Parse(lines[i]).RootElement;
                var args = new List<string> { "run", "--model", Folder("tiny-omni"), "--json" };
                foreach (var p in req.EnumerateObject().Where(p => p.Name != "id")) args.AddRange([$"--{p.Name}", p.Value.GetString()!]);
                var single = Omni([.. args]);
                Assert.That(single.Code, Is.Zero, single.Err);
                var one = JsonDocument.Parse(single.Out).RootElement;
                foreach (var e in one.GetProperty("embeddings").EnumerateObject())
                {
                    var a = results[i].GetProperty("embeddings").GetProperty(e.Name).EnumerateArray().Select(x => x.GetSingle()).ToArray();
                    var b = e.Value.EnumerateArray().Select(x => (double)x.GetSingle()).ToArray();
                    Assert.That(ModelParityTests.RelativeError(a, b), Is.LessThanOrEqualTo(1e-6), $"line {i} {e.Name}");
                }
            }
            Assert.That(stderr, Does.Contain("requests 25").And.Contain("p99").And.Contain("mean batch"));
            var batches = System.Text.RegularExpressions.Regex.Matches(stderr, @"(\w+) (\d+\.\d+) \(").Select(m => double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
            Assert.That(batches.Max(), Is.GreaterThan(1.0), "some tower batched more than one request: " + stderr);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
