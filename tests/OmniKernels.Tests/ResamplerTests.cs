using NUnit.Framework;
using OmniKernels.Audio;
using OmniKernels.IO;

namespace OmniKernels.Tests;

/// <summary>
/// The resampler against torchaudio.functional.resample (torchaudio 0.13 defaults, float64), through vectors made
/// by tools/make_resample_vectors.py.
/// </summary>
[TestFixture]
public class ResamplerTests
{
    private const double Tolerance = 1e-4;

    private static string VectorPath(string c, string name) =>
        Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"resample_{c}_{name}.npy");

    private static NpyArray Vector(string c, string name)
    {
        string path = VectorPath(c, name);
        if (!File.Exists(path))
            throw new FileNotFoundException($"vectors/resample_{c}_{name}.npy missing: run tools/make_resample_vectors.py");
        return NpyFile.Read(path);
    }

    // The rates of each case, as in CASES of tools/make_resample_vectors.py.
    [TestCase("44100_16000", 44100, 16000)]
    [TestCase("22050_16000", 22050, 16000)]
    [TestCase("48000_16000", 48000, 16000)]
    [TestCase("8000_16000", 8000, 16000)]
    [TestCase("16000_16000", 16000, 16000)]
    [TestCase("11025_16000", 11025, 16000)]
    [TestCase("16000_22050", 16000, 22050)]
    [TestCase("short_44100_16000", 44100, 16000)]
    [TestCase("short_8000_22050", 8000, 22050)]
    public void MatchesTorchaudio(string c, int fromRate, int toRate)
    {
        float[] input = Vector(c, "input").ToFloat32("input");
        var expected = (double[])Vector(c, "expected").Data;

        float[] actual = Resampler.Resample(input, fromRate, toRate);

        Assert.That(actual, Has.Length.EqualTo(expected.Length), "output length");
        double err = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = actual[i] - expected[i];
            err += d * d;
            norm += expected[i] * expected[i];
        }
        double relative = Math.Sqrt(err / norm);
        TestContext.Out.WriteLine($"{c}: {input.Length} -> {actual.Length} samples, relative L2 error {relative:E3}");
        Assert.That(relative, Is.LessThan(Tolerance));
    }

    [Test]
    public void EqualRatesReturnACopy()
    {
        float[] input = [0.5f, -1f, 2f];
        float[] output = Resampler.Resample(input, 16000, 16000);
        Assert.That(output, Is.EqualTo(input));
        Assert.That(output, Is.Not.SameAs(input));
    }

    [Test]
    public void OutputLengthIsCeilingOfReducedRatio()
    {
        // 44100 -> 16000 reduces to 441 -> 160; ceil(160 * n / 441).
        foreach (int n in new[] { 1, 2, 440, 441, 442, 1000 })
            Assert.That(Resampler.Resample(new float[n], 44100, 16000), Has.Length.EqualTo((160 * n + 440) / 441), $"n = {n}");
        Assert.That(Resampler.Resample(new float[3], 8000, 16000), Has.Length.EqualTo(6));
    }

    [TestCase(0, 16000, "fromRate")]
    [TestCase(-44100, 16000, "fromRate")]
    [TestCase(44100, 0, "toRate")]
    [TestCase(44100, -1, "toRate")]
    public void NonPositiveRatesThrow(int fromRate, int toRate, string param)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Resampler.Resample(new float[10], fromRate, toRate));
        Assert.That(ex!.ParamName, Is.EqualTo(param));
    }

    [TestCase(44100, 16000)]
    [TestCase(16000, 16000)]
    public void EmptyInputThrows(int fromRate, int toRate)
    {
        var ex = Assert.Throws<ArgumentException>(() => Resampler.Resample(ReadOnlySpan<float>.Empty, fromRate, toRate));
        Assert.That(ex!.ParamName, Is.EqualTo("input"));
    }
}
