using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using NUnit.Framework;
using OmniKernels.IO;

namespace OmniKernels.Tests;

[TestFixture]
public class WavFileTests
{
    private const string Sox = "/usr/bin/sox";
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "wavtest-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    // ---- a small WAV writer --------------------------------------------------------------------------------

    public enum Enc { Pcm8, Pcm16, Pcm24, Pcm32, Float32, Float64 }

    private static (int Tag, int Bits, string Name) Describe(Enc enc) => enc switch
    {
        Enc.Pcm8 => (1, 8, "pcm8"),
        Enc.Pcm16 => (1, 16, "pcm16"),
        Enc.Pcm24 => (1, 24, "pcm24"),
        Enc.Pcm32 => (1, 32, "pcm32"),
        Enc.Float32 => (3, 32, "float32"),
        _ => (3, 64, "float64"),
    };

    private static byte[] Fmt(int tag, int channels, int rate, int bits, int? blockAlign = null)
    {
        var b = new byte[16];
        int align = blockAlign ?? channels * bits / 8;
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(0), (ushort)tag);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2), (ushort)channels);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)rate);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), (uint)(rate * align));
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(12), (ushort)align);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(14), (ushort)bits);
        return b;
    }

    /// <summary>A 40-byte WAVE_FORMAT_EXTENSIBLE fmt body whose SubFormat is the KSDATAFORMAT GUID of <paramref name="subTag"/>.</summary>
    private static byte[] FmtExtensible(int subTag, int channels, int rate, int bits, int validBits, bool badGuid = false)
    {
        var b = new byte[40];
        Fmt(0xFFFE, channels, rate, bits).CopyTo(b, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(16), 22);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(18), (ushort)validBits);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(20), channels == 2 ? 3u : 0u);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(24), (ushort)subTag);
        byte[] suffix = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];
        if (badGuid) suffix[13] ^= 0xFF;
        suffix.CopyTo(b, 26);
        return b;
    }

    /// <summary>A chunk: id, size (the body length unless <paramref name="declared"/> says otherwise), body, pad byte if odd.</summary>
    private static byte[] Chunk(string id, byte[] body, uint? declared = null)
    {
        var ms = new MemoryStream();
        ms.Write(Encoding.ASCII.GetBytes(id));
        Span<byte> size = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(size, declared ?? (uint)body.Length);
        ms.Write(size);
        ms.Write(body);
        if (body.Length % 2 == 1) ms.WriteByte(0);
        return ms.ToArray();
    }

    private static byte[] Riff(params byte[][] chunks) => RiffWith("RIFF", "WAVE", null, chunks);

    private static byte[] RiffWith(string magic, string form, uint? riffSize, params byte[][] chunks)
    {
        int body = 4 + chunks.Sum(c => c.Length);
        var ms = new MemoryStream();
        ms.Write(Encoding.ASCII.GetBytes(magic));
        Span<byte> size = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(size, riffSize ?? (uint)body);
        ms.Write(size);
        ms.Write(Encoding.ASCII.GetBytes(form));
        foreach (byte[] c in chunks) ms.Write(c);
        return ms.ToArray();
    }

    private static byte[] OddList()
    {
        // 27 bytes: odd, so the writer adds a pad byte that the reader must skip to find the next chunk.
        byte[] info = Encoding.ASCII.GetBytes("INFOISFT\x0f\0\0\0wavtest 1.0 xy\0");
        Assert.That(info.Length % 2, Is.EqualTo(1));
        return Chunk("LIST", info);
    }

    /// <summary>
    /// Random interleaved samples (fixed seed, including the extremes, never all zeros) as WAV data bytes, and the
    /// expected mono mix computed independently in double: each sample normalised, channels averaged, then rounded.
    /// </summary>
    private static (byte[] Data, float[] Expected) MakeSamples(Enc enc, int channels, int frames, int seed)
    {
        var rng = new Random(seed);
        int bytesPer = Describe(enc).Bits / 8;
        var data = new byte[frames * channels * bytesPer];
        var expected = new float[frames];
        for (int f = 0; f < frames; f++)
        {
            double sum = 0;
            for (int c = 0; c < channels; c++)
            {
                int k = f * channels + c;
                Span<byte> dst = data.AsSpan(k * bytesPer, bytesPer);
                switch (enc)
                {
                    case Enc.Pcm8:
                    {
                        int v = k == 0 ? 0 : k == 1 ? 255 : rng.Next(0, 256);
                        dst[0] = (byte)v;
                        sum += (v - 128) / 128.0;
                        break;
                    }
                    case Enc.Pcm16:
                    {
                        int v = k == 0 ? short.MinValue : k == 1 ? short.MaxValue : rng.Next(short.MinValue, short.MaxValue + 1);
                        BinaryPrimitives.WriteInt16LittleEndian(dst, (short)v);
                        sum += v / 32768.0;
                        break;
                    }
                    case Enc.Pcm24:
                    {
                        int v = k == 0 ? -8388608 : k == 1 ? 8388607 : rng.Next(-8388608, 8388608);
                        dst[0] = (byte)v;
                        dst[1] = (byte)(v >> 8);
                        dst[2] = (byte)(v >> 16);
                        sum += v / 8388608.0;
                        break;
                    }
                    case Enc.Pcm32:
                    {
                        int v = k == 0 ? int.MinValue : k == 1 ? int.MaxValue : rng.Next(int.MinValue, int.MaxValue);
                        BinaryPrimitives.WriteInt32LittleEndian(dst, v);
                        sum += v / 2147483648.0;
                        break;
                    }
                    case Enc.Float32:
                    {
                        // One value outside [-1, 1]: float data is passed through, not clipped.
                        float v = k == 2 ? 1.25f : (float)(rng.NextDouble() * 2 - 1);
                        BinaryPrimitives.WriteSingleLittleEndian(dst, v);
                        sum += v;
                        break;
                    }
                    default:
                    {
                        double v = k == 2 ? -1.5 : rng.NextDouble() * 2 - 1;
                        BinaryPrimitives.WriteDoubleLittleEndian(dst, v);
                        sum += v;
                        break;
                    }
                }
            }
            expected[f] = (float)(sum / channels);
        }
        Assert.That(expected.Any(x => x != 0), Is.True, "test data must not be all zeros");
        return (data, expected);
    }

    /// <summary>A stream that cannot seek and hands out short reads, as a pipe would.</summary>
    private sealed class NonSeekableStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes, writable: false);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 4093));
        public override int Read(Span<byte> buffer) => _inner.Read(buffer[..Math.Min(buffer.Length, 4093)]);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private string WriteFile(string fileName, byte[] bytes)
    {
        string path = Path.Combine(_dir, fileName);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Reads <paramref name="bytes"/> from a file and from a non-seekable stream; both must agree.</summary>
    private WavAudio ReadBothWays(string fileName, byte[] bytes)
    {
        WavAudio fromFile = WavFile.Read(WriteFile(fileName, bytes));
        WavAudio fromPipe = WavFile.Read(new NonSeekableStream(bytes), fileName);
        Assert.That(fromPipe.Samples, Is.EqualTo(fromFile.Samples), "non-seekable stream decodes differently from the file");
        Assert.That((fromPipe.SampleRate, fromPipe.SourceChannels, fromPipe.SourceEncoding),
            Is.EqualTo((fromFile.SampleRate, fromFile.SourceChannels, fromFile.SourceEncoding)));
        return fromFile;
    }

    /// <summary>Compares within <paramref name="relative"/> plus <paramref name="absolute"/>, reporting the first mismatch.</summary>
    private static void AssertClose(float[] actual, float[] expected, double relative = 1e-7, double absolute = 0)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        for (int i = 0; i < expected.Length; i++)
        {
            double tolerance = relative * Math.Abs(expected[i]) + absolute;
            if (!(Math.Abs(actual[i] - (double)expected[i]) <= tolerance))
                Assert.Fail($"sample {i}: got {actual[i]:R}, expected {expected[i]:R} (tolerance {tolerance:G3})");
        }
    }

    // ---- round trips ---------------------------------------------------------------------------------------

    [Test]
    public void RoundTripsPlainFormats([Values] Enc enc, [Values(1, 2, 3)] int channels)
    {
        var (tag, bits, encName) = Describe(enc);
        // An odd frame count makes the pcm8 mono data chunk odd-sized too.
        var (data, expected) = MakeSamples(enc, channels, frames: 997, seed: 1000 + 10 * (int)enc + channels);
        byte[] bytes = Riff(Chunk("fmt ", Fmt(tag, channels, 16000, bits)), OddList(), Chunk("data", data));

        WavAudio audio = ReadBothWays($"{encName}_{channels}ch.wav", bytes);

        Assert.That(audio.SampleRate, Is.EqualTo(16000));
        Assert.That(audio.SourceChannels, Is.EqualTo(channels));
        Assert.That(audio.SourceEncoding, Is.EqualTo(encName));
        AssertClose(audio.Samples, expected);
    }

    [TestCase(Enc.Pcm24, 1, 24)]
    [TestCase(Enc.Pcm24, 2, 24)]
    [TestCase(Enc.Pcm24, 3, 20)]
    [TestCase(Enc.Pcm16, 2, 16)]
    [TestCase(Enc.Pcm8, 2, 8)]
    [TestCase(Enc.Pcm32, 3, 24)]
    [TestCase(Enc.Float32, 1, 32)]
    [TestCase(Enc.Float32, 2, 32)]
    [TestCase(Enc.Float64, 3, 64)]
    public void RoundTripsExtensible(Enc enc, int channels, int validBits)
    {
        var (tag, bits, encName) = Describe(enc);
        var (data, expected) = MakeSamples(enc, channels, frames: 501, seed: 2000 + 10 * (int)enc + channels);
        byte[] bytes = Riff(Chunk("fmt ", FmtExtensible(tag, channels, 44100, bits, validBits)),
            Chunk("fact", BitConverter.GetBytes(501)), OddList(), Chunk("data", data));

        WavAudio audio = ReadBothWays($"ext_{encName}_{channels}ch.wav", bytes);

        Assert.That(audio.SampleRate, Is.EqualTo(44100));
        Assert.That(audio.SourceChannels, Is.EqualTo(channels));
        Assert.That(audio.SourceEncoding, Is.EqualTo(encName));
        AssertClose(audio.Samples, expected);
    }

    [Test]
    public void ReadsChunksInAnyOrder()
    {
        // data (odd size, so padded) before fmt, with cue and an odd LIST in between, and a RIFF size of 0xFFFFFFFF
        // as streaming writers leave it.
        var (data, expected) = MakeSamples(Enc.Pcm8, 1, frames: 333, seed: 7);
        byte[] bytes = RiffWith("RIFF", "WAVE", 0xFFFFFFFF,
            Chunk("cue ", new byte[4]), Chunk("data", data), OddList(), Chunk("fmt ", Fmt(1, 1, 8000, 8)),
            Chunk("LIST", new byte[10]));

        WavAudio audio = ReadBothWays("data_first.wav", bytes);

        Assert.That(audio.SampleRate, Is.EqualTo(8000));
        Assert.That(audio.SourceEncoding, Is.EqualTo("pcm8"));
        AssertClose(audio.Samples, expected);
    }

    [Test]
    public void IgnoresTrailingPartialFrame()
    {
        // Like soundfile: a data size that is not a whole number of frames decodes the whole frames only.
        var (data, expected) = MakeSamples(Enc.Pcm16, 2, frames: 100, seed: 8);
        byte[] ragged = [.. data, 0x12, 0x34, 0x56];
        byte[] bytes = Riff(Chunk("fmt ", Fmt(1, 2, 16000, 16)), Chunk("data", ragged));

        WavAudio audio = ReadBothWays("ragged.wav", bytes);

        AssertClose(audio.Samples, expected);
    }

    [Test]
    public void ReadsFmtChunkWithExtraBytes()
    {
        // A plain PCM fmt chunk with cbSize = 0 (18 bytes), as some writers produce; the extra bytes are skipped.
        var (data, expected) = MakeSamples(Enc.Pcm16, 1, frames: 64, seed: 9);
        byte[] fmt = [.. Fmt(1, 1, 24000, 16), 0, 0];
        WavAudio audio = ReadBothWays("fmt18.wav", Riff(Chunk("fmt ", fmt), Chunk("data", data)));

        Assert.That(audio.SampleRate, Is.EqualTo(24000));
        AssertClose(audio.Samples, expected);
    }

    // ---- against sox, an independent implementation --------------------------------------------------------

    /// <summary>Runs sox with the given arguments; fails (never skips) when sox is not installed.</summary>
    private static void RunSox(params string[] args)
    {
        if (!File.Exists(Sox))
            Assert.Fail($"{Sox} not found; these tests need sox: apt-get install sox");
        var psi = new ProcessStartInfo(Sox) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start sox");
        var stdoutTask = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("sox did not finish within 60 s");
        }
        _ = stdoutTask.Result;
        if (process.ExitCode != 0)
            Assert.Fail($"sox {string.Join(' ', args)} exited with {process.ExitCode}: {stderr}");
    }

    [TestCase(1, "16", "signed-integer", "pcm16")]
    [TestCase(2, "16", "signed-integer", "pcm16")]
    [TestCase(2, "24", "signed-integer", "pcm24")]
    [TestCase(3, "32", "signed-integer", "pcm32")]
    [TestCase(1, "8", "unsigned-integer", "pcm8")]
    [TestCase(2, "8", "unsigned-integer", "pcm8")]
    [TestCase(2, "32", "floating-point", "float32")]
    [TestCase(3, "64", "floating-point", "float64")]
    public void MatchesSox(int channels, string bits, string encoding, string encName)
    {
        string wav = Path.Combine(_dir, $"sox_{encName}_{channels}ch.wav");
        string raw = Path.Combine(_dir, "sox.f64");
        string[] tones = ["sine", "440", "sine", "660", "sine", "1000"];
        RunSox(["-R", "-n", "-r", "22050", "-c", channels.ToString(System.Globalization.CultureInfo.InvariantCulture), "-b", bits, "-e", encoding, wav,
            "synth", "0.3", .. tones.Take(2 * channels), "gain", "-2"]);
        // sox's own mixdown (-c 1) does average, but it mixes in its int32 internal format and rounds there, so the
        // reference is each channel as raw little-endian float64 (-D: no dither; float32 would round 32-bit PCM),
        // averaged here in double. sox converts PCM to float by an exact power-of-two division, so PCM must match
        // exactly; float input goes through sox's int32 samples, which costs up to 2^-32 absolute per sample and so
        // may move the float mean by one ulp.
        RunSox("-D", wav, "-t", "f64", "-L", raw);
        byte[] rawBytes = File.ReadAllBytes(raw);
        int frames = rawBytes.Length / 8 / channels;
        var expected = new float[frames];
        for (int f = 0; f < frames; f++)
        {
            double sum = 0;
            for (int c = 0; c < channels; c++)
                sum += BinaryPrimitives.ReadDoubleLittleEndian(rawBytes.AsSpan((f * channels + c) * 8));
            expected[f] = (float)(sum / channels);
        }

        WavAudio audio = WavFile.Read(wav);

        Assert.That(audio.SampleRate, Is.EqualTo(22050));
        Assert.That(audio.SourceChannels, Is.EqualTo(channels));
        Assert.That(audio.SourceEncoding, Is.EqualTo(encName));
        Assert.That(frames, Is.EqualTo(6615));
        Assert.That(audio.Samples.Max(x => Math.Abs(x)), Is.GreaterThan(0.3f), "sox wrote near-silence");
        if (encName.StartsWith("float", StringComparison.Ordinal))
            AssertClose(audio.Samples, expected, relative: 2.4e-7, absolute: 1e-9);
        else
            AssertClose(audio.Samples, expected);
    }

    // ---- bad input -----------------------------------------------------------------------------------------

    [Test]
    public void MissingFileIsReported()
    {
        string path = Path.Combine(_dir, "nowhere.wav");
        var ex = Assert.Throws<WavFormatException>(() => WavFile.Read(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("not found"));
    }

    private static IEnumerable<TestCaseData> BadInputs()
    {
        byte[] fmt16 = Fmt(1, 1, 16000, 16);
        byte[] someData = new byte[200];
        new Random(3).NextBytes(someData);
        byte[] Wav(params byte[][] chunks) => Riff(chunks);
        TestCaseData Case(string file, byte[] bytes, params string[] words) =>
            new TestCaseData(file, bytes, words).SetName($"Rejects({file})");

        yield return Case("empty.wav", [], "empty");
        yield return Case("ogg.wav", [.. "OggS"u8, .. new byte[40]], "not a RIFF/WAVE");
        yield return Case("rifx.wav", RiffWith("RIFX", "WAVE", null, Chunk("fmt ", fmt16)), "RIFX", "big-endian");
        yield return Case("rf64.wav", RiffWith("RF64", "WAVE", null, Chunk("fmt ", fmt16)), "RF64");
        yield return Case("avi.wav", RiffWith("RIFF", "AVI ", null, Chunk("fmt ", fmt16)), "not 'WAVE'");
        yield return Case("short.wav", [.. "RIFF"u8, 0, 0, 0, 0, .. "WA"u8], "truncated header");
        yield return Case("cut_chunk_header.wav", [.. Wav(), .. "fmt "u8, 16], "truncated header");
        yield return Case("cut_fmt.wav", [.. Wav(), .. "fmt "u8, 16, 0, 0, 0, 1, 0, 1, 0], "truncated fmt");
        yield return Case("no_data.wav", Wav(Chunk("fmt ", fmt16), OddList()), "no data chunk");
        yield return Case("no_fmt.wav", Wav(OddList(), Chunk("data", someData)), "no fmt chunk");
        yield return Case("short_fmt.wav", Wav(Chunk("fmt ", fmt16[..14]), Chunk("data", someData)), "fmt chunk too short");
        yield return Case("short_ext.wav", Wav(Chunk("fmt ", [.. Fmt(0xFFFE, 1, 16000, 16), 0, 0]), Chunk("data", someData)),
            "too short", "EXTENSIBLE");
        yield return Case("adpcm.wav", Wav(Chunk("fmt ", Fmt(2, 1, 16000, 4, 256)), Chunk("data", someData)),
            "unsupported encoding", "(format tag 2)");
        yield return Case("alaw.wav", Wav(Chunk("fmt ", Fmt(6, 1, 8000, 8)), Chunk("data", someData)),
            "unsupported encoding", "(format tag 6)");
        yield return Case("ext_alaw.wav", Wav(Chunk("fmt ", FmtExtensible(6, 1, 8000, 8, 8)), Chunk("data", someData)),
            "unsupported encoding", "(format tag 6)");
        yield return Case("ext_guid.wav", Wav(Chunk("fmt ", FmtExtensible(1, 1, 8000, 16, 16, badGuid: true)), Chunk("data", someData)),
            "unsupported encoding", "SubFormat");
        yield return Case("ext_valid_bits.wav", Wav(Chunk("fmt ", FmtExtensible(1, 1, 8000, 24, 32)), Chunk("data", someData)),
            "valid bits");
        yield return Case("pcm12.wav", Wav(Chunk("fmt ", Fmt(1, 1, 16000, 12, 2)), Chunk("data", someData)), "bit depth", "12-bit");
        yield return Case("float16.wav", Wav(Chunk("fmt ", Fmt(3, 1, 16000, 16)), Chunk("data", someData)), "bit depth", "16-bit");
        yield return Case("zero_channels.wav", Wav(Chunk("fmt ", Fmt(1, 0, 16000, 16, 2)), Chunk("data", someData)), "zero channels");
        yield return Case("zero_rate.wav", Wav(Chunk("fmt ", Fmt(1, 1, 0, 16)), Chunk("data", someData)), "zero sample rate");
        yield return Case("bad_align.wav", Wav(Chunk("fmt ", Fmt(1, 2, 16000, 16, 3)), Chunk("data", someData)), "block align 3");
        yield return Case("cut_data.wav", Wav(Chunk("fmt ", fmt16), Chunk("data", someData, declared: 1000)),
            "claims 1000 bytes but only 200 follow");
        yield return Case("cut_data_first.wav", Wav(Chunk("data", someData, declared: 1000), Chunk("fmt ", fmt16)),
            "claims 1000 bytes but only 224 follow"); // the fmt chunk's 24 bytes are what follows
        yield return Case("cut_list.wav", Wav(Chunk("fmt ", fmt16), Chunk("LIST", new byte[20], declared: 5000), Chunk("data", someData)),
            "truncated 'LIST' chunk");
        yield return Case("zero_frames.wav", Wav(Chunk("fmt ", fmt16), Chunk("data", [])), "no samples");
        yield return Case("sub_frame.wav", Wav(Chunk("fmt ", Fmt(1, 2, 16000, 16)), Chunk("data", [1, 2, 3])), "no samples");
        yield return Case("two_fmt.wav", Wav(Chunk("fmt ", fmt16), Chunk("fmt ", fmt16), Chunk("data", someData)), "more than one fmt");
    }

    [TestCaseSource(nameof(BadInputs))]
    public void Rejects(string fileName, byte[] bytes, string[] words)
    {
        string path = WriteFile(fileName, bytes);
        var fromFile = Assert.Throws<WavFormatException>(() => WavFile.Read(path))!;
        var fromPipe = Assert.Throws<WavFormatException>(() => WavFile.Read(new NonSeekableStream(bytes), "pipe:" + fileName))!;
        foreach (var (ex, name) in new[] { (fromFile, path), (fromPipe, "pipe:" + fileName) })
        {
            Assert.That(ex.Message, Does.StartWith(name + ": "));
            Assert.That(ex.Message, Does.Not.Contain('\n'));
            foreach (string word in words) Assert.That(ex.Message, Does.Contain(word));
        }
    }

    [Test]
    public void HugeDataClaimFailsWithoutAllocating()
    {
        // A 4 GiB data chunk claimed in a ~100-byte file (both after and before fmt).
        byte[] someData = new byte[60];
        new Random(4).NextBytes(someData);
        byte[] fmt = Fmt(1, 2, 48000, 16);
        byte[][] files =
        [
            Riff(Chunk("fmt ", fmt), Chunk("data", someData, declared: 0xFFFFFFF0)),
            Riff(Chunk("data", someData, declared: 0x7FFF0000), Chunk("fmt ", fmt)),
        ];
        foreach (byte[] bytes in files)
        {
            string path = WriteFile("huge.wav", bytes);
            Func<WavAudio>[] readers = [() => WavFile.Read(path), () => WavFile.Read(new NonSeekableStream(bytes), "pipe:huge.wav")];
            foreach (Func<WavAudio> read in readers)
            {
                Assert.Throws<WavFormatException>(() => read()); // warm-up: the JIT's and pools' first allocations are not the reader's
                long before = GC.GetAllocatedBytesForCurrentThread();
                var ex = Assert.Throws<WavFormatException>(() => read())!;
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.That(ex.Message, Does.Contain("huge.wav").And.Match(@"claims \d+ bytes but only (60|84) follow"));
                Assert.That(allocated, Is.LessThan(1_000_000), $"allocated {allocated} bytes for a bogus header");
            }
        }
    }
}
