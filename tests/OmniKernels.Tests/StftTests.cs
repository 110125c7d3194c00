using NUnit.Framework;
using OmniKernels.Audio;
using OmniKernels.IO;

namespace OmniKernels.Tests;

/// <summary>
/// The STFT's other decompositions (n_fft split in 2 or 1 sub-sequences, odd and tiny sizes) and MFCC without
/// the top_db floor, against torchaudio 0.13 in float64 (tools/make_stft_vectors.py); and the two resampled
/// waveforms the audio vectors hold, against this project's reader and resampler.
/// </summary>
[TestFixture]
public sealed class StftTests
{
    /// <summary>The options tools/make_stft_vectors.py called torchaudio.transforms.MFCC with.</summary>
    private static readonly Dictionary<string, AudioFeatureOptions> Configs = new()
    {
        ["nfft402"] = new AudioFeatureOptions { NMfcc = 13, NFft = 402, Hop = 160, NMels = 40 },
        ["nfft401"] = new AudioFeatureOptions { NMfcc = 13, NFft = 401, Hop = 160, NMels = 40 },
        ["nfft12"] = new AudioFeatureOptions { NMfcc = 3, NFft = 12, Hop = 6, NMels = 4 },
        ["nfft9"] = new AudioFeatureOptions { NMfcc = 2, NFft = 9, Hop = 5, NMels = 3 },
        ["nfft20"] = new AudioFeatureOptions { NMfcc = 3, NFft = 20, Hop = 10, NMels = 4 },
        ["nfft124"] = new AudioFeatureOptions { NMfcc = 8, NFft = 124, Hop = 62, NMels = 20 },
        ["nfft200"] = new AudioFeatureOptions { NMfcc = 13, NFft = 200, Hop = 80, NMels = 40 },
        ["no_top_db"] = new AudioFeatureOptions { TopDb = null },
    };

    public static IEnumerable<TestCaseData> Cases() =>
        from backend in Backends.Names
        from config in Configs.Keys
        select new TestCaseData(backend, config).SetName($"{backend}/speech_16k_{config}");

    [TestCaseSource(nameof(Cases))]
    public void MatchesTorchaudio(string backend, string config)
    {
        using var extractor = new AudioFeatureExtractor(Backends.Get(backend), Configs[config]);
        var features = extractor.Compute([MfccTests.Load("speech_16k")])[0];
        var expected = NpyFile.Read(Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"stft_{config}.npy"));
        Assert.That(new long[] { features.Rows, features.Frames }, Is.EqualTo(expected.Shape.ToArray()), "shape");
        ParityCheck.AssertClose(features.Values, (double[])expected.Data, 1e-4, $"{backend}/stft_{config}");
    }

    [TestCase("stereo_44k")]
    [TestCase("holdout_speech_22k")]
    public void ResampledClipsMatchTorchaudio(string clip)
    {
        // <clip>_resampled16k.npy: torchaudio.functional.resample of the float32 mono mix (tools/make_audio_vectors.py).
        string V(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", "audio", name);
        var audio = WavFile.Read(V(clip + ".wav"));
        Assert.That(audio.SampleRate, Is.Not.EqualTo(16000));
        var got = Resampler.Resample(audio.Samples, audio.SampleRate, 16000);
        var expected = NpyFile.Read(V(clip + "_resampled16k.npy")).ToFloat32("expected");
        ParityCheck.AssertClose(got, expected.Select(v => (double)v).ToArray(), 1e-4, $"{clip} resampled to 16 kHz");
    }
}
