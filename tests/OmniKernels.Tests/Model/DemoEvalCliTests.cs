using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Tests.Model;

/// <summary>
/// <c>omni demo</c> and <c>omni eval</c> in-process on the tiny test model: the demo's rows against
/// the PyTorch mirror's vectors of the same inputs, and eval's tables against per-row predictions
/// and embeddings the test computes through the session itself.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DemoEvalCliTests
{
    private static (int Code, string Out, string Err) Omni(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = OmniKernels.Cli.Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private string _dir = "";

    [SetUp]
    public void Folder() => _dir = Directory.CreateTempSubdirectory("omni-demo-").FullName;

    [TearDown]
    public void Remove() => Directory.Delete(_dir, true);

    private static string Input(string name) => Path.Combine(ModelParityTests.ModelDir("tiny-omni"), "vectors", "inputs", name);

    private static string[] Labels()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(ModelParityTests.ModelDir("tiny-omni"), "vectors", "cases.json")));
        return doc.RootElement.GetProperty("labels").EnumerateArray().Select(l => l.GetString()!).ToArray();
    }

    private static string RealBackend => Backends.Names.OrderBy(Backends.IsEmulator).First();

    private const string Text = "the quick dog runs past the old car";

    /// <summary>A copy of tiny-omni with the inputs of its vector cases as the demo's samples.</summary>
    private string ModelWithSamples()
    {
        var model = Path.Combine(_dir, "model");
        Directory.CreateDirectory(Path.Combine(model, "samples"));
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.model" })
            File.Copy(Path.Combine(ModelParityTests.ModelDir("tiny-omni"), f), Path.Combine(model, f));
        File.Copy(Input("image_i0.npy"), Path.Combine(model, "samples", "image.npy"));
        File.Copy(Input("audio_a1.wav"), Path.Combine(model, "samples", "speech.wav"));
        File.Copy(Input("video_v0.npy"), Path.Combine(model, "samples", "video.npy"));
        File.WriteAllText(Path.Combine(model, "samples", "text.txt"), Text + "\n");
        return model;
    }

    [Test]
    public void DemoRowsMatchPyTorchForEverySubset()
    {
        var cases = ModelParityTests.Load("tiny-omni").ToDictionary(c => c.Name);
        var (code, stdout, stderr) = Omni("demo", "--model", ModelWithSamples(), "--json");
        Assert.That(code, Is.Zero, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var subsets = doc.RootElement.GetProperty("subsets").EnumerateArray().ToArray();
        Assert.That(subsets, Has.Length.EqualTo(4 + 6 + 1), "each alone, every pair, all four");
        var labels = Labels();
        foreach (var s in subsets)
        {
            var inputs = s.GetProperty("inputs").EnumerateArray().Select(x => x.GetString()!).ToArray();
            var c = cases[string.Join("_", inputs)];
            var p = ModelParityTests.Expected(c, "probabilities");
            int best = Array.IndexOf(p, p.Max());
            Assert.That(s.GetProperty("label").GetString(), Is.EqualTo(labels[best]), string.Join("+", inputs));
            Assert.That(s.GetProperty("probability").GetDouble(), Is.EqualTo(p[best]).Within(1e-4));
            var gates = ModelParityTests.Expected(c, "gates");
            int block = gates.Length / 4;
            var order = new[] { "image", "text", "audio", "video" };
            var shown = s.GetProperty("gates").EnumerateObject().ToDictionary(g => g.Name, g => g.Value.GetDouble());
            Assert.That(shown.Keys, Is.EquivalentTo(inputs));
            foreach (var (m, g) in shown)
                Assert.That(g, Is.EqualTo(gates.Skip(Array.IndexOf(order, m) * block).Take(block).Average()).Within(1e-5), m);
        }
        Assert.That(doc.RootElement.GetProperty("similarities").EnumerateObject().Count(), Is.EqualTo(6));
    }

    [Test]
    public void DemoPrintsPlainTablesWhenNotATerminal()
    {
        var (code, stdout, stderr) = Omni("demo", "--model", ModelWithSamples());
        Assert.That(code, Is.Zero, stderr);
        Assert.That(stdout, Does.Contain("image+text+audio+video").And.Contain("gate audio").And.Contain("first request"));
        Assert.That(stdout, Does.Not.Contain("\u001b["), "no escape codes into a pipe");
    }

    [Test]
    public void DemoWithoutSamplesIsBadInput()
    {
        var (code, _, stderr) = Omni("demo", "--model", ModelParityTests.ModelDir("tiny-omni"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("no samples/ folder"));
    }

    private sealed record Item(string Label, string Image, string Audio, string Video, string Text);

    [Test]
    public void EvalTablesAgreeWithPerRowSessionRuns()
    {
        var labels = Labels();
        var data = Path.Combine(_dir, "data");
        Directory.CreateDirectory(data);
        foreach (var f in new[] { "image_png.png", "image_i0.npy", "image_i1.npy", "audio_a0.wav", "audio_a1.wav", "audio_a3.wav", "video_v0.npy", "video_v1.npy" })
            File.Copy(Input(f), Path.Combine(data, f));
        string[] images = ["image_png.png", "image_i0.npy", "image_i1.npy"], audio = ["audio_a0.wav", "audio_a1.wav", "audio_a3.wav"], video = ["video_v0.npy", "video_v1.npy"];
        string[] texts = [Text, "a red cat", "music, \"loud\""];
        var items = Enumerable.Range(0, 7).Select(i => new Item(labels[i % labels.Length], images[i % 3], audio[(i + 1) % 3], video[i % 2], texts[(i + 2) % 3])).ToArray();
        static string Q(string s) => "\"" + s.Replace("\"", "\"\"") + "\"";
        File.WriteAllLines(Path.Combine(data, "labels.csv"),
            items.Select((x, i) => $"{i},{x.Label},{x.Image},{x.Audio},{x.Video},{Q(x.Text)}").Prepend("id,label,image,audio,video,text"));
        var queries = labels.Select(l => ("a " + l, l)).ToArray();
        File.WriteAllLines(Path.Combine(data, "queries.csv"), queries.Select(q => $"{q.Item1},{q.l}").Prepend("text,label"));

        var (code, stdout, stderr) = Omni("eval", "--model", ModelParityTests.ModelDir("tiny-omni"), "--data", data, "--json");
        Assert.That(code, Is.Zero, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var accuracy = doc.RootElement.GetProperty("accuracy");

        using var s = OmniSession.Load(ModelParityTests.ModelDir("tiny-omni"), new OmniSessionOptions { Context = Backends.Get(RealBackend) });
        OmniRequest Full(Item x) => new()
        {
            Image = RequestFiles.Image(Path.Combine(data, x.Image)), Audio = RequestFiles.Audio(Path.Combine(data, x.Audio)),
            Video = RequestFiles.Video(Path.Combine(data, x.Video)), Text = x.Text,
        };
        var subsets = OmniKernels.Cli.DemoCommand.Subsets([Modality.Image, Modality.Text, Modality.Audio, Modality.Video]);
        Assert.That(accuracy.EnumerateObject().Count(), Is.EqualTo(subsets.Count));
        foreach (var subset in subsets)
        {
            int right = items.Count(x => s.Run(OmniKernels.Cli.DemoCommand.Only(Full(x), subset)).Classes[0].Label == x.Label);
            Assert.That(accuracy.GetProperty(OmniKernels.Cli.DemoCommand.Label(subset)).GetDouble(), Is.EqualTo(right / (double)items.Length).Within(1e-12));
        }

        static float[] Unit(float[] v)
        {
            double n = Math.Sqrt(v.Sum(x => (double)x * x));
            return v.Select(x => (float)(x / n)).ToArray();
        }
        static double Dot(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();
        var imageEmb = items.Select(x => Unit(s.Run(new OmniRequest { Image = RequestFiles.Image(Path.Combine(data, x.Image)) }).Embeddings[Modality.Image])).ToArray();
        float[] TextEmb(string t) => Unit(s.Run(new OmniRequest { Text = t }).Embeddings[Modality.Text]);
        double precision = queries.Average(q =>
        {
            var e = TextEmb(q.Item1);
            var top = Enumerable.Range(0, items.Length).OrderByDescending(i => Dot(e, imageEmb[i])).ThenBy(i => i).Take(10).ToArray();
            return top.Count(i => items[i].Label == q.l) / (double)top.Length;
        });
        var classEmb = labels.Select(TextEmb).ToArray();
        double zeroShot = items.Select((x, i) => labels[Enumerable.Range(0, labels.Length).MaxBy(c => Dot(imageEmb[i], classEmb[c]))] == x.Label).Count(b => b) / (double)items.Length;
        var retrieval = doc.RootElement.GetProperty("retrieval");
        Assert.That(retrieval.GetProperty("text→image precision@10").GetDouble(), Is.EqualTo(precision).Within(1e-9));
        Assert.That(retrieval.GetProperty("image→text zero-shot (class names)").GetDouble(), Is.EqualTo(zeroShot).Within(1e-9));
    }

    [TestCase("id,label,image\n0,cat\n", "line 2 has 2 fields")]
    [TestCase("id,label,image\n0,cat,\"x.png\n", "never closed")]
    [TestCase("id,image\n0,x.png\n", "no 'label' column")]
    [TestCase("id,label,image\n0,zebra,image_png.png\n", "'zebra' is not one of the model's classes")]
    public void EvalRejectsBadDataWithItsReason(string csv, string reason)
    {
        File.Copy(Input("image_png.png"), Path.Combine(_dir, "image_png.png"));
        File.WriteAllText(Path.Combine(_dir, "labels.csv"), csv);
        var (code, _, stderr) = Omni("eval", "--model", ModelParityTests.ModelDir("tiny-omni"), "--data", _dir);
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain(reason));
    }
}
