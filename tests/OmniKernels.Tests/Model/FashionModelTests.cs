using NUnit.Framework;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Tests.Model;

/// <summary>
/// The shipped model (models/omni-fashion, trained by tools/train_fashion.py) against its PyTorch mirror
/// through the vectors tools/make_fashion_vectors.py wrote from the same files: the bundled samples and a
/// few test-split items, from PNG, WAV, video .npy and text. fp32: every embedding within cosine
/// 0.99999 of PyTorch's, gates within 1e-4 relative, logits within 1e-4 absolute; the shipped INT8
/// checkpoint (models/omni-fashion/int8, written by `omni quantize`) predicts the class fp32 predicts.
/// </summary>
[TestFixture]
public sealed class FashionModelTests
{
    private const string Vectors = "omni-fashion-vectors";
    private const double MinCosine = 0.99999;
    private const double LogitTolerance = 1e-4;

    /// <summary>models/omni-fashion from the repository root, found above the test assembly.</summary>
    public static string ModelDir(bool int8 = false)
    {
        for (var d = new DirectoryInfo(Path.GetDirectoryName(typeof(FashionModelTests).Assembly.Location)!); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "OmniKernels.sln")))
                return int8 ? Path.Combine(d.FullName, "models", "omni-fashion", "int8") : Path.Combine(d.FullName, "models", "omni-fashion");
        }
        throw new DirectoryNotFoundException("no OmniKernels.sln above the test assembly: models/omni-fashion is looked up from the repository root");
    }

    public static IEnumerable<TestCaseData> Cases() =>
        from backend in Backends.Names
        from c in ModelParityTests.Load(Vectors).Take(Backends.IsEmulator(backend) ? 2 : int.MaxValue)
        select new TestCaseData(backend, c).SetName($"{backend}/{c}");

    private static readonly Dictionary<(string, bool), OmniSession> Sessions = [];

    private static OmniSession Session(string backend, bool int8)
    {
        lock (Sessions)
        {
            if (!Sessions.TryGetValue((backend, int8), out var s))
            {
                s = OmniSession.Load(ModelDir(int8), new OmniSessionOptions { Context = Backends.Get(backend), FeatureCacheBytes = 0 });
                Sessions[(backend, int8)] = s;
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

    private static double Cosine(float[] a, double[] b)
    {
        Assert.That(a.Length, Is.EqualTo(b.Length), "length");
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            ab += a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += b[i] * b[i];
        }
        return ab / Math.Sqrt(aa * bb);
    }

    private static int ArgMax(IReadOnlyList<double> x) => Enumerable.Range(0, x.Count).MaxBy(i => x[i]);

    [TestCaseSource(nameof(Cases))]
    public void Fp32MatchesPyTorch(string backend, ModelParityTests.Case c)
    {
        var result = Session(backend, int8: false).Run(ModelParityTests.Request(c));
        var towers = c.Json.GetProperty("towers_run").EnumerateArray().Select(t => t.GetString()).ToArray();
        Assert.That(result.TowersRun.Select(OmniSession.Name), Is.EqualTo(towers), "towers run");
        foreach (var o in c.Json.GetProperty("outputs").EnumerateObject().Where(o => o.Name.StartsWith("embedding_", StringComparison.Ordinal)))
        {
            var m = Enum.Parse<Modality>(o.Name["embedding_".Length..], ignoreCase: true);
            double cos = Cosine(result.Embeddings[m], ModelParityTests.Expected(c, o.Name));
            Assert.That(cos, Is.GreaterThanOrEqualTo(MinCosine), $"{c} {o.Name}: cosine {cos:F8}");
        }
        double gateErr = ModelParityTests.RelativeError(result.Gates!, ModelParityTests.Expected(c, "gates"));
        Assert.That(gateErr, Is.LessThanOrEqualTo(ModelParityTests.Tolerance), $"{c} gates: relative error {gateErr:E2}");
        var logits = ModelParityTests.Expected(c, "logits");
        Assert.That(result.Logits, Has.Length.EqualTo(logits.Length), "logits");
        for (int i = 0; i < logits.Length; i++)
            Assert.That(result.Logits![i], Is.EqualTo(logits[i]).Within(LogitTolerance), $"{c} logit {i}");
    }

    [TestCaseSource(nameof(Cases))]
    public void Int8PredictsAsFp32(string backend, ModelParityTests.Case c)
    {
        var result = Session(backend, int8: true).Run(ModelParityTests.Request(c));
        var logits = ModelParityTests.Expected(c, "logits");
        Assert.That(ArgMax(result.Logits!.Select(x => (double)x).ToArray()), Is.EqualTo(ArgMax(logits)),
            $"{c}: INT8 predicts another class than PyTorch fp32");
    }

    [Test]
    public void TokenizerMatchesSentencePiece()
    {
        var session = Session(Backends.Names.OrderBy(Backends.IsEmulator).First(), int8: false);
        foreach (var c in ModelParityTests.Load(Vectors))
        {
            if (!c.Json.GetProperty("inputs").TryGetProperty("text", out var t)) continue;
            var ids = t.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();
            Assert.That(session.Tokenize(t.GetProperty("text").GetString()!), Is.EqualTo(ids), $"{c}");
        }
    }
}
