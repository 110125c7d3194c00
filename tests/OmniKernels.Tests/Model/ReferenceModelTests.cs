using System.Collections.Concurrent;
using NUnit.Framework;
using OmniKernels.IO;
using OmniKernels.Model;
using OmniKernels.Reference;
using OmniKernels.Session;
using Case = OmniKernels.Tests.Model.ModelParityTests.Case;

namespace OmniKernels.Tests.Model;

/// <summary>
/// The float64 whole-model reference (OmniKernels.Reference.ReferenceModel) against the PyTorch
/// mirror's float64 vectors (tools/make_model_vectors.py) on every case of the test folders, and
/// the device session against the reference on every backend, both fed the same inputs: pixels,
/// ids and frames from the case's files, audio as the case's log-mel .npy with its sample count.
/// Errors are ‖out − ref‖ / ‖ref‖ per output.
/// </summary>
[TestFixture]
public sealed class ReferenceModelTests
{
    /// <summary>Two float64 implementations of the same math on the same inputs: only rounding order differs.</summary>
    public const double PyTorchTolerance = 1e-9;

    /// <summary>
    /// PyTorch ran on the float64 log-mel of the waveform; the .npy both sides here read is its float32
    /// rounding (relative error about 3e-8 per value). That input difference, carried through the audio
    /// tower, bounds how well anything the audio reaches can agree.
    /// </summary>
    public const double AudioTolerance = 1e-5;

    /// <summary>fp32 kernels against the float64 reference.</summary>
    public const double DeviceTolerance = ModelParityTests.Tolerance;

    private static readonly string[] Folders = ["tiny-omni", "tiny-omni-tubelet", "tiny-clip-hf"];
    private static readonly ConcurrentDictionary<string, ReferenceModel> References = new();
    private readonly Dictionary<(string, string), OmniSession> _sessions = [];

    public static IEnumerable<TestCaseData> PyTorchCases() =>
        from folder in Folders
        from c in ModelParityTests.Load(folder)
        select new TestCaseData(c).SetName($"reference/{c}");

    public static IEnumerable<TestCaseData> DeviceCases() =>
        from backend in Backends.Names
        from folder in Folders
        from c in ModelParityTests.Load(folder).Take(Backends.IsEmulator(backend) ? 2 : int.MaxValue)
        select new TestCaseData(backend, c).SetName($"{backend}/{c}");

    private static ReferenceModel Reference(string folder) => References.GetOrAdd(folder, f => ReferenceModel.Load(ModelParityTests.ModelDir(f)));

    private static float[] Floats(Case c, string relative) => NpyFile.Read(c.File(relative)).ToFloat32(relative);

    private static string Input(Case c, string modality, string key) => c.Json.GetProperty("inputs").GetProperty(modality).GetProperty(key).GetString()!;

    private static bool Has(Case c, string modality) => c.Json.GetProperty("inputs").TryGetProperty(modality, out _);

    private static int[] Ids(Case c) => c.Json.GetProperty("inputs").GetProperty("text").GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();

    private static int Samples(Case c) => c.Json.GetProperty("inputs").GetProperty("audio").GetProperty("samples").GetInt32();

    /// <summary>The case's inputs as the reference takes them.</summary>
    public static ReferenceRequest ReferenceRequest(Case c) => new()
    {
        Pixels = Has(c, "image") ? Floats(c, Input(c, "image", "pixels")) : null,
        TextIds = Has(c, "text") ? Ids(c) : null,
        LogMel = Has(c, "audio") ? Floats(c, Input(c, "audio", "logmel")) : null,
        LogMelSamples = Has(c, "audio") ? Samples(c) : null,
        VideoFrames = Has(c, "video") ? Floats(c, Input(c, "video", "frames")) : null,
    };

    /// <summary>The same inputs as a session request (preprocessed pixels, not the PNG; the log-mel, not the WAV).</summary>
    public static OmniRequest SessionRequest(Case c) => new()
    {
        Image = Has(c, "image") ? new ImageInput { Pixels = Floats(c, Input(c, "image", "pixels")) } : null,
        TextIds = Has(c, "text") ? Ids(c) : null,
        Audio = Has(c, "audio") ? new AudioInput { LogMel = Floats(c, Input(c, "audio", "logmel")), LogMelSamples = Samples(c) } : null,
        Video = Has(c, "video") ? new VideoInput { Frames = Floats(c, Input(c, "video", "frames")) } : null,
    };

    public static double RelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "length");
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            Assert.That(double.IsFinite(actual[i]), $"element {i} is {actual[i]}");
            num += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            den += expected[i] * expected[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    private static double[]? Output(ReferenceResult r, string name) => name switch
    {
        var e when e.StartsWith("embedding_", StringComparison.Ordinal) => r.Embeddings.GetValueOrDefault(e["embedding_".Length..]),
        "gates" => r.Gates,
        "fused" => r.Fused,
        "logits" => r.Logits,
        "probabilities" => r.Probabilities,
        "similarities" => r.Similarities,
        "similarity_logits" => r.SimilarityLogits,
        var other => throw new InvalidDataException($"unknown output {other}"),
    };

    private static readonly string[] AllOutputs =
        ["embedding_image", "embedding_text", "embedding_audio", "embedding_video", "gates", "fused", "logits", "probabilities", "similarities", "similarity_logits"];

    [TestCaseSource(nameof(PyTorchCases))]
    public void ReferenceMatchesPyTorch(Case c)
    {
        var r = Reference(c.Folder).Run(ReferenceRequest(c));
        Assert.That(r.Modalities, Is.EqualTo(c.Json.GetProperty("towers_run").EnumerateArray().Select(t => t.GetString())), "towers run");
        Assert.That(r.SimilarityPairs, Is.EqualTo(c.Json.GetProperty("similarity_pairs").EnumerateArray().Select(t => t.GetString())), "pairs");
        var outputs = c.Json.GetProperty("outputs");
        bool audio = Has(c, "audio");
        var errors = new List<string>();
        foreach (string name in AllOutputs)
        {
            var actual = Output(r, name);
            if (!outputs.TryGetProperty(name, out _))
            {
                // Similarities are an empty vector with one modality; everything else the case omits is not computed.
                Assert.That(actual is null || (name.StartsWith("similarit", StringComparison.Ordinal) && actual.Length == 0), $"{name}: not expected");
                continue;
            }
            Assert.That(actual, Is.Not.Null, $"{name} missing");
            bool reachedByAudio = audio && !(name.StartsWith("embedding_", StringComparison.Ordinal) && name != "embedding_audio");
            double tol = reachedByAudio ? AudioTolerance : PyTorchTolerance;
            double err = RelativeError(actual, ModelParityTests.Expected(c, name));
            errors.Add($"{name} {err:E2}");
            Assert.That(err, Is.LessThanOrEqualTo(tol), $"{c} {name}: relative error {err:E2} (tolerance {tol:E0})");
        }
        TestContext.Progress.WriteLine($"reference vs PyTorch {c}: {string.Join(", ", errors)}");
    }

    [TestCaseSource(nameof(DeviceCases))]
    public void DeviceMatchesReference(string backend, Case c)
    {
        var expected = Reference(c.Folder).Run(ReferenceRequest(c));
        var session = Session(backend, c.Folder);
        var result = session.Run(SessionRequest(c));
        Assert.That(result.TowersRun.Select(OmniSession.Name), Is.EqualTo(expected.Modalities), "towers run");
        Assert.That(result.Similarities.Keys, Is.EqualTo(expected.SimilarityPairs), "pairs");
        Assert.That(result.Fused is null, Is.EqualTo(expected.Fused is null), "fused present");
        Assert.That(result.Logits is null, Is.EqualTo(expected.Logits is null), "logits present");
        Assert.That(result.SimilarityLogits is null, Is.EqualTo(expected.SimilarityLogits is null), "similarity logits present");
        var pairs = expected.SimilarityPairs;
        var checks = new List<(string Name, float[]? Actual, double[]? Expected)>();
        foreach (var (m, e) in expected.Embeddings) checks.Add(($"embedding_{m}", result.Embeddings[Enum.Parse<Modality>(m, ignoreCase: true)], e));
        checks.Add(("fused", result.Fused, expected.Fused));
        checks.Add(("gates", result.Gates, expected.Gates));
        checks.Add(("logits", result.Logits, expected.Logits));
        var probabilities = result.Classes.ToDictionary(k => k.Label, k => k.Probability);
        checks.Add(("probabilities", expected.Probabilities is null ? null : session.Labels.Select(l => probabilities[l]).ToArray(), expected.Probabilities));
        checks.Add(("similarities", pairs.Select(p => result.Similarities[p]).ToArray(), expected.Similarities));
        checks.Add(("similarity_logits", result.SimilarityLogits is { } sl ? pairs.Select(p => sl[p]).ToArray() : null, expected.SimilarityLogits));
        var errors = new List<string>();
        foreach (var (name, actual, want) in checks)
        {
            if (want is null || want.Length == 0) continue;
            Assert.That(actual, Is.Not.Null, $"{name} missing");
            double err = ModelParityTests.RelativeError(actual, want);
            errors.Add($"{name} {err:E2}");
            Assert.That(err, Is.LessThanOrEqualTo(DeviceTolerance), $"{backend}/{c} {name}: relative error {err:E2} against the reference");
        }
        TestContext.Progress.WriteLine($"{backend} vs reference {c}: {string.Join(", ", errors)}");
    }

    private OmniSession Session(string backend, string folder)
    {
        lock (_sessions)
        {
            if (!_sessions.TryGetValue((backend, folder), out var s))
            {
                s = OmniSession.Load(ModelParityTests.ModelDir(folder), new OmniSessionOptions { Context = Backends.Get(backend) });
                _sessions[(backend, folder)] = s;
            }
            return s;
        }
    }

    [OneTimeTearDown]
    public void DisposeSessions()
    {
        lock (_sessions)
        {
            foreach (var s in _sessions.Values) s.Dispose();
            _sessions.Clear();
        }
    }
}
