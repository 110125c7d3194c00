using System.Text.Json;
using NUnit.Framework;
using OmniKernels.IO;
using OmniKernels.Search;

namespace OmniKernels.Tests.Model;

/// <summary>
/// <c>omni index</c> and <c>omni search</c> in-process on tiny-omni over a folder of four images (three
/// of the model's test inputs and one flipped copy) beside a WAV and a text file that indexing skips:
/// an image finds itself first; text and speech queries rank as the host's float64 cosines of
/// <c>omni run</c>'s embedding against the saved index; bad input exits 2 naming what is wrong.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SearchCliTests
{
    private string _root = "";
    private string Images => Path.Combine(_root, "images");
    private string IndexDir => Path.Combine(_root, "index");
    private static string Model => ModelParityTests.ModelDir("tiny-omni");
    private static string Inputs => Path.Combine(Model, "vectors", "inputs");

    private static (int Code, string Out, string Err) Omni(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = OmniKernels.Cli.Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [OneTimeSetUp]
    public void BuildIndex()
    {
        _root = Path.Combine(Path.GetTempPath(), $"omni-search-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(Images, "more"));
        File.Copy(Path.Combine(Inputs, "image_png.png"), Path.Combine(Images, "photo.png"));
        File.Copy(Path.Combine(Inputs, "image_i0.npy"), Path.Combine(Images, "i0.npy"));
        File.Copy(Path.Combine(Inputs, "image_i1.npy"), Path.Combine(Images, "more", "i1.npy"));
        var i0 = NpyFile.Read(Path.Combine(Inputs, "image_i0.npy"));
        var flipped = i0.ToFloat32("i0");
        Array.Reverse(flipped);
        NpyFile.Write(Path.Combine(Images, "more", "i0_flipped.npy"), new NpyArray(NpyDType.Float32, i0.Shape.ToArray(), flipped));
        File.Copy(Path.Combine(Inputs, "audio_a0.wav"), Path.Combine(Images, "not_an_image.wav"));
        File.WriteAllText(Path.Combine(Images, "notes.txt"), "not an image");
        var (code, stdout, stderr) = Omni("index", "--model", Model, "--images", Images, "--out", IndexDir);
        Assert.That(code, Is.Zero, stderr);
        Assert.That(stderr, Does.Contain("4/4 images"));
        Assert.That(stdout, Does.Contain("indexed 4 images"));
    }

    [OneTimeTearDown]
    public void Clean()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private static JsonElement[] Hits(string stdout)
    {
        using var doc = JsonDocument.Parse(stdout);
        return doc.RootElement.GetProperty("hits").EnumerateArray().Select(h => h.Clone()).ToArray();
    }

    [Test]
    public void IndexListsEveryImageAndOnlyImages()
    {
        var index = EmbeddingIndex.Load(IndexDir);
        Assert.That(index.Files, Is.EqualTo(new[] { "i0.npy", "more/i0_flipped.npy", "more/i1.npy", "photo.png" }));
    }

    [TestCase("photo.png")]
    [TestCase("i0.npy")]
    [TestCase("more/i0_flipped.npy")]
    [TestCase("more/i1.npy")]
    public void ImageQueryFindsItselfFirst(string file)
    {
        var (code, stdout, stderr) = Omni("search", "--index", IndexDir, "--model", Model, "--image", Path.Combine(Images, file), "--top", "4", "--json");
        Assert.That(code, Is.Zero, stderr);
        var hits = Hits(stdout);
        Assert.That(hits.Select(h => h.GetProperty("rank").GetInt32()), Is.EqualTo(new[] { 1, 2, 3, 4 }));
        Assert.That(hits[0].GetProperty("file").GetString(), Is.EqualTo(file));
        Assert.That(hits[0].GetProperty("score").GetSingle(), Is.EqualTo(1f).Within(1e-4));
    }

    /// <summary>The query's embedding from <c>omni run</c>, its float64 cosines against the saved rows, ranked by score then row.</summary>
    private string[] HostRanking(params string[] runArgs)
    {
        var (code, stdout, stderr) = Omni(["run", "--model", Model, "--json", .. runArgs]);
        Assert.That(code, Is.Zero, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var e = doc.RootElement.GetProperty("embeddings").EnumerateObject().Single().Value.EnumerateArray().Select(x => (double)x.GetSingle()).ToArray();
        double norm = Math.Sqrt(e.Sum(v => v * v));
        var index = EmbeddingIndex.Load(IndexDir);
        var cos = Enumerable.Range(0, index.Count).Select(r =>
        {
            var row = index.Embedding(r).ToArray();
            return row.Select((v, i) => v * e[i]).Sum() / norm;
        }).ToArray();
        return Enumerable.Range(0, index.Count).OrderByDescending(r => cos[r]).ThenBy(r => r).Select(r => index.Files[r]).ToArray();
    }

    [Test]
    public void TextQueryRanksAsHostCosines()
    {
        const string q = "a cat on the old car";
        var (code, stdout, stderr) = Omni("search", "--index", IndexDir, "--model", Model, "--text", q, "--top", "4", "--json");
        Assert.That(code, Is.Zero, stderr);
        Assert.That(Hits(stdout).Select(h => h.GetProperty("file").GetString()), Is.EqualTo(HostRanking("--text", q)));
    }

    [Test]
    public void SpeechQueryRanksAsHostCosinesInPlainText()
    {
        string wav = Path.Combine(Inputs, "audio_a0.wav");
        var (code, stdout, stderr) = Omni("search", "--index", IndexDir, "--model", Model, "--audio", wav, "--top", "3");
        Assert.That(code, Is.Zero, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.That(lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2]), Is.EqualTo(HostRanking("--audio", wav).Take(3)));
        Assert.That(lines[0].TrimStart(), Does.StartWith("1 "));
    }

    [TestCase(new[] { "--text", "a cat", "--top", "9" }, "--top 9 exceeds the index's 4 items")]
    [TestCase(new[] { "--text", "a cat", "--image", "x.png" }, "exactly one of --text, --audio, --image")]
    [TestCase(new[] { "--text", "a cat", "--top", "0" }, "--top 0 must be at least 1")]
    public void BadSearchExits2(string[] args, string message)
    {
        var (code, _, stderr) = Omni(["search", "--index", IndexDir, "--model", Model, .. args]);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain(message));
    }

    [Test]
    public void SearchOfAMissingIndexAndIndexOfAnEmptyFolderExit2()
    {
        var (code, _, stderr) = Omni("search", "--index", Path.Combine(_root, "nope"), "--model", Model, "--text", "a cat");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("no such index folder"));
        string empty = Path.Combine(_root, "empty");
        Directory.CreateDirectory(empty);
        (code, _, stderr) = Omni("index", "--model", Model, "--images", empty, "--out", Path.Combine(_root, "index2"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("no image files"));
        Assert.That(Directory.Exists(Path.Combine(_root, "index2")), Is.False, "nothing written");
    }
}
