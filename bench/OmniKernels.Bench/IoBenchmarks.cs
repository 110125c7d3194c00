using BenchmarkDotNet.Attributes;
using OmniKernels.Audio;
using OmniKernels.IO;

namespace OmniKernels.Bench;

/// <summary>
/// Host-side audio I/O, timed here rather than asserted under a wall-clock limit in the unit tests (which a
/// busy machine fails spuriously): resampling 10 s of 44.1 kHz audio to 16 kHz (torchaudio's sinc, the
/// tests check its values), and rejecting a WAV file whose data chunk claims 4 GiB in 104 bytes (the tests
/// check the error and that it allocates under 1 MB).
/// </summary>
[MemoryDiagnoser]
public class IoBenchmarks
{
    private float[] _input = null!;
    private string _hugePath = "";

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(7);
        _input = new float[441000];
        for (int i = 0; i < _input.Length; i++) _input[i] = (float)(rng.NextDouble() * 2 - 1);

        // RIFF/WAVE, a 16-byte PCM fmt chunk (mono, 48 kHz, 16-bit), then a data chunk declaring 0xFFFFFFF0 bytes of which 60 follow.
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.ASCII, leaveOpen: true))
        {
            w.Write("RIFF"u8); w.Write(96u); w.Write("WAVE"u8);
            w.Write("fmt "u8); w.Write(16u); w.Write((short)1); w.Write((short)1); w.Write(48000); w.Write(96000); w.Write((short)2); w.Write((short)16);
            w.Write("data"u8); w.Write(0xFFFFFFF0u); w.Write(new byte[60]);
        }
        _hugePath = Path.Combine(Path.GetTempPath(), $"omni-bench-huge-{Environment.ProcessId}.wav");
        File.WriteAllBytes(_hugePath, ms.ToArray());
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_hugePath);

    [Benchmark]
    public float[] Resample10sAt44100To16000() => Resampler.Resample(_input, 44100, 16000);

    [Benchmark]
    public string RejectWavClaiming4GiB()
    {
        try
        {
            WavFile.Read(_hugePath);
        }
        catch (WavFormatException e)
        {
            return e.Message;
        }
        throw new InvalidOperationException($"{_hugePath} was accepted");
    }
}
