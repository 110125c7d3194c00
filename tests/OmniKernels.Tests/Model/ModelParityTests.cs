using System.Text.Json;
using NUnit.Framework;
using OmniKernels.IO;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Tests.Model;

/// <summary>
/// Whole models against their PyTorch mirror (tools/omni_torch.py, float64) through the vectors
/// tools/make_model_vectors.py wrote: every case of every test model folder on every backend, each
/// output within 1e-4 relative (‖out − ref‖ / ‖ref‖), and the towers that ran exactly those the
/// request carries. The emulator runs the first cases of each folder (it is thousands of times slower).
/// </summary>
[TestFixture]
public sealed class ModelParityTests
{
    public const double Tolerance = 1e-4;
    private static readonly string[] Folders = ["tiny-omni", "tiny-omni-tubelet", "tiny-clip-hf"];

    public static string ModelDir(string folder) => Path.Combine(TestContext.CurrentContext.TestDirectory, "models", folder);

    public sealed record Case(string Folder, JsonElement Json)
    {
        public string Name => Json.GetProperty("name").GetString()!;

        public string Vectors => Path.Combine(ModelDir(Folder), "vectors");

        public string File(string relative) => Path.Combine(Vectors, relative);

        public override string ToString() => $"{Folder}/{Name}";
    }

    public static IReadOnlyList<Case> Load(string folder)
    {
        // Test sources are built before TestContext knows the test directory: resolve from the assembly.
        string dir = Path.Combine(Path.GetDirectoryName(typeof(ModelParityTests).Assembly.Location)!, "models", folder, "vectors", "cases.json");
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(dir));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(folder, c.Clone())).ToArray();
    }

    public static IEnumerable<TestCaseData> Cases() =>
        from backend in Backends.Names
        from folder in Folders
        from c in Load(folder).Take(Backends.IsEmulator(backend) ? 2 : int.MaxValue)
        select new TestCaseData(backend, c).SetName($"{backend}/{c}");

    /// <summary>The request a case describes: pixels, ids and frames from its files, audio from its WAV (the whole front end).</summary>
    public static OmniRequest Request(Case c)
    {
        var r = new OmniRequest();
        foreach (var input in c.Json.GetProperty("inputs").EnumerateObject())
        {
            var v = input.Value;
            r = input.Name switch
            {
                "image" when v.TryGetProperty("png", out var png) => r with { Image = RequestFiles.Image(c.File(png.GetString()!)) },
                "image" => r with { Image = RequestFiles.Image(c.File(v.GetProperty("pixels").GetString()!)) },
                "text" => r with { TextIds = v.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray() },
                "audio" => r with { Audio = RequestFiles.Audio(c.File(v.GetProperty("wav").GetString()!)) },
                "video" => r with { Video = RequestFiles.Video(c.File(v.GetProperty("frames").GetString()!)) },
                var other => throw new InvalidDataException($"{c}: unknown input {other}"),
            };
        }
        return r;
    }

    public static double[] Expected(Case c, string output) =>
        NpyFile.Read(c.File(c.Json.GetProperty("outputs").GetProperty(output).GetString()!)).Data switch
        {
            double[] d => d,
            float[] f => f.Select(x => (double)x).ToArray(),
            var a => throw new InvalidDataException($"{c}/{output}: unexpected {a.GetType()}"),
        };

    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "length");
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            Assert.That(float.IsFinite(actual[i]), $"element {i} is {actual[i]}");
            num += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            den += expected[i] * expected[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    /// <summary>Every output the case lists, against the session's result.</summary>
    public static void Check(Case c, OmniResult result, double tolerance)
    {
        var outputs = c.Json.GetProperty("outputs");
        var towers = c.Json.GetProperty("towers_run").EnumerateArray().Select(t => t.GetString()).ToArray();
        Assert.That(result.TowersRun.Select(OmniSession.Name), Is.EqualTo(towers), "towers run");
        var pairs = c.Json.GetProperty("similarity_pairs").EnumerateArray().Select(p => p.GetString()!).ToArray();
        Assert.That(result.Similarities.Keys, Is.EqualTo(pairs), "similarity pairs");
        foreach (var o in outputs.EnumerateObject())
        {
            float[] actual = o.Name switch
            {
                var e when e.StartsWith("embedding_", StringComparison.Ordinal) =>
                    result.Embeddings[Enum.Parse<Modality>(e["embedding_".Length..], ignoreCase: true)],
                "gates" => result.Gates!,
                "fused" => result.Fused!,
                "logits" => result.Logits!,
                "probabilities" => Probabilities(c, result),
                "similarities" => pairs.Select(p => result.Similarities[p]).ToArray(),
                "similarity_logits" => pairs.Select(p => result.SimilarityLogits![p]).ToArray(),
                var other => throw new InvalidDataException($"{c}: unknown output {other}"),
            };
            Assert.That(actual, Is.Not.Null, $"{o.Name} missing");
            double err = RelativeError(actual, Expected(c, o.Name));
            Assert.That(err, Is.LessThanOrEqualTo(tolerance), $"{c} {o.Name}: relative error {err:E2}");
        }
        if (!outputs.TryGetProperty("fused", out _)) Assert.That(result.Fused, Is.Null, "no fused vector expected");
    }

    /// <summary>Probabilities in the classifier's label order (the result sorts them), labels from the case file.</summary>
    private static float[] Probabilities(Case c, OmniResult r)
    {
        var byLabel = r.Classes.ToDictionary(x => x.Label, x => x.Probability);
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(Path.Combine(c.Vectors, "cases.json")));
        return doc.RootElement.GetProperty("labels").EnumerateArray().Select(l => byLabel[l.GetString()!]).ToArray();
    }

    private static readonly Dictionary<(string, string, bool), OmniSession> Sessions = [];

    /// <summary>
    /// One session per backend, folder and precision for the whole run, on the shared device, without
    /// a feature cache: every run computes (the cache has its own tests).
    /// </summary>
    public static OmniSession Session(string backend, string folder, bool int8 = false)
    {
        lock (Sessions)
        {
            if (!Sessions.TryGetValue((backend, folder, int8), out var s))
            {
                s = OmniSession.Load(ModelDir(folder), new OmniSessionOptions { Context = Backends.Get(backend), Int8 = int8, FeatureCacheBytes = 0 });
                Sessions[(backend, folder, int8)] = s;
            }
            return s;
        }
    }

    [OneTimeTearDown]
    public void DisposeSessions()
    {
        lock (Sessions)
        {
            foreach (var s in Sessions.Values) s.Dispose();
            Sessions.Clear();
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesPyTorch(string backend, Case c)
    {
        var session = Session(backend, c.Folder);
        Check(c, session.Run(Request(c)), Tolerance);
    }

    [TestCaseSource(nameof(TextCases))]
    public void TokenizerMatchesReferenceIds(string folder, string text, int[] ids)
    {
        var session = Session(Backends.Names.OrderBy(Backends.IsEmulator).First(), folder);
        Assert.That(session.Tokenize(text), Is.EqualTo(ids), $"{folder}: '{text}'");
    }

    public static IEnumerable<TestCaseData> TextCases() =>
        from folder in Folders
        from c in Load(folder)
        where c.Json.GetProperty("inputs").TryGetProperty("text", out _)
        let t = c.Json.GetProperty("inputs").GetProperty("text")
        group (t.GetProperty("text").GetString()!, t.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray()) by (folder, t.GetProperty("key").GetString()) into g
        select new TestCaseData(g.Key.folder, g.First().Item1, g.First().Item2).SetName($"tokenize/{g.Key.folder}/{g.Key.Item2}");
}
