using NUnit.Framework;
using OmniKernels.Audio;
using OmniKernels.IO;

namespace OmniKernels.Tests;

/// <summary>
/// The audio front end against torchaudio 0.13, through vectors made by tools/make_audio_vectors.py
/// (float64 torchaudio on the same decoded, mixed and resampled clips), on every backend. The
/// emulator runs one short clip; real devices run every clip and configuration, batched in one call.
/// </summary>
[TestFixture]
public sealed class MfccTests
{
    private const double Tolerance = 1e-4;
    private static readonly string[] Clips = ["speech_16k", "tones_16k", "noise_16k", "quiet_16k", "stereo_44k"];

    /// <summary>The configurations the vectors hold, as torchaudio was called.</summary>
    public static readonly Dictionary<string, AudioFeatureOptions> Configs = new()
    {
        ["mfcc_default"] = new AudioFeatureOptions(),
        ["mfcc_small"] = new AudioFeatureOptions { NMfcc = 20, NMels = 40, Hop = 160, LogMels = true },
        ["mfcc_slaney"] = new AudioFeatureOptions
        {
            NMfcc = 13, NMels = 64, Scale = MelScale.Slaney, Norm = MelNorm.Slaney, FMin = 20, FMax = 7600, NFft = 512, WinLength = 400, Hop = 160,
        },
        ["logmel_whisper"] = AudioFeatureOptions.Whisper,
    };

    private static string Vector(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", "audio", name);

    /// <summary>Decoded, mixed to mono and resampled to 16 kHz by this project's own reader and resampler.</summary>
    public static float[] Load(string clip)
    {
        var audio = WavFile.Read(Vector(clip + ".wav"));
        return audio.SampleRate == 16000 ? audio.Samples : Resampler.Resample(audio.Samples, audio.SampleRate, 16000);
    }

    public static IEnumerable<TestCaseData> Matrix() =>
        from backend in Backends.Names
        from config in Configs.Keys
        where !Backends.IsEmulator(backend) || config == "mfcc_default"
        select new TestCaseData(backend, config).SetName($"{backend}/{config}");

    [TestCaseSource(nameof(Matrix))]
    public void MatchesTorchaudio(string backend, string config)
    {
        var ctx = Backends.Get(backend);
        var clips = Backends.IsEmulator(backend) ? ["quiet_16k"] : Clips;
        using var extractor = new AudioFeatureExtractor(ctx, Configs[config]);
        var features = extractor.Compute(clips.Select(Load).ToList());
        for (int i = 0; i < clips.Length; i++)
        {
            var expected = NpyFile.Read(Vector($"{clips[i]}_{config}.npy"));
            Assert.That(new long[] { features[i].Rows, features[i].Frames }, Is.EqualTo(expected.Shape.ToArray()), $"{clips[i]}: shape");
            ParityCheck.AssertClose(features[i].Values, (double[])expected.Data, Tolerance, $"{backend}/{clips[i]}/{config}");
        }
    }

    [Test]
    public void BatchedClipsOfDifferentLengthsEqualOneByOne()
    {
        var ctx = Backends.All[0];
        using var extractor = new AudioFeatureExtractor(ctx, new AudioFeatureOptions());
        var clips = new[] { "tones_16k", "quiet_16k", "noise_16k" }.Select(Load).ToList();
        var batched = extractor.Compute(clips);
        for (int i = 0; i < clips.Count; i++)
        {
            var alone = extractor.Compute([clips[i]])[0];
            Assert.That(batched[i].Values, Is.EqualTo(alone.Values).Within(1e-6f), $"clip {i}: batching changed its result (the top_db clamp must stay per clip)");
        }
    }

    [Test]
    public void RejectsClipsTooShortAndBadOptions()
    {
        var ctx = Backends.All[0];
        using var extractor = new AudioFeatureExtractor(ctx, new AudioFeatureOptions());
        var ex = Assert.Throws<ArgumentException>(() => extractor.Compute([new float[150]]));
        Assert.That(ex!.Message, Does.Contain("n_fft/2"));
        Assert.Throws<ArgumentException>(() => new AudioFeatureOptions { NMfcc = 200 }.Validate());
        Assert.Throws<ArgumentException>(() => new AudioFeatureOptions { FMax = 9000 }.Validate());
        Assert.Throws<ArgumentException>(() => new AudioFeatureOptions { WinLength = 500 }.Validate());
    }
}
