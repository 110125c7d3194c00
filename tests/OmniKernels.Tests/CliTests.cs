using System.Diagnostics;
using System.Globalization;
using NUnit.Framework;
using OmniKernels.IO;
using OmniKernels.Cli;

namespace OmniKernels.Tests;

/// <summary>
/// The <c>omni</c> CLI in-process: results checked by NumPy in float64, bad input rejected with
/// exit code 2 and one stderr line, and nothing written on failure. Sequential on purpose: each
/// device run creates its own accelerator.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class CliTests
{
    private const double GemmTolerance = 1e-5;

    // Bad-input files shared by every bad-input case (written once, never modified).
    private string _inputs = "";
    private string _dir = "";

    [OneTimeSetUp]
    public void WriteBadInputs()
    {
        _inputs = Path.Combine(Path.GetTempPath(), "omni-cli-in-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_inputs);
        NumPy.Run("""
            d = sys.argv[1]
            rng = np.random.default_rng(4242)
            np.save(d + '/a34.npy', rng.standard_normal((3, 4)).astype(np.float32))
            np.save(d + '/b42.npy', rng.standard_normal((4, 2)).astype(np.float32))
            np.save(d + '/b52.npy', rng.standard_normal((5, 2)).astype(np.float32))
            np.save(d + '/a34_i32.npy', rng.integers(-50, 50, (3, 4)).astype(np.int32))
            """, _inputs);

        // No .npy magic at all: seeded random bytes whose first byte cannot be 0x93.
        var garbage = new byte[200];
        new Random(77).NextBytes(garbage);
        garbage[0] = (byte)'G';
        File.WriteAllBytes(Path.Combine(_inputs, "garbage.npy"), garbage);

        // A valid magic and version, then a header that is not a Python dict.
        var bad = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 };
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), ?!#garbage".PadRight(117) + "\n";
        bad.AddRange(BitConverter.GetBytes((ushort)header.Length));
        bad.AddRange(System.Text.Encoding.ASCII.GetBytes(header));
        bad.AddRange(new byte[48]);
        File.WriteAllBytes(Path.Combine(_inputs, "badheader.npy"), bad.ToArray());
    }

    [OneTimeTearDown]
    public void DeleteBadInputs()
    {
        if (Directory.Exists(_inputs)) Directory.Delete(_inputs, recursive: true);
    }

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "omni-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    internal static (int Code, string Out, string Err) Omni(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        TestContext.Out.WriteLine($"omni {string.Join(' ', args)} -> {code}\nstdout: {stdout}\nstderr: {stderr}");
        return (code, stdout.ToString(), stderr.ToString());
    }

    internal static string[] Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    // ---- results against NumPy's float64 ------------------------------------------------------------------

    public static IEnumerable<TestCaseData> MatMulCases()
    {
        yield return new TestCaseData(false, false, null).SetName("matmul_300x517x211_auto");
        yield return new TestCaseData(true, true, null).SetName("matmul_300x517x211_transpose_b_bias_auto");
        yield return new TestCaseData(false, false, "reference").SetName("matmul_300x517x211_reference");
        yield return new TestCaseData(true, true, "reference").SetName("matmul_300x517x211_transpose_b_bias_reference");
    }

    [TestCaseSource(nameof(MatMulCases))]
    public void MatMul_MatchesNumpyFloat64(bool transposeB, bool bias, string? device)
    {
        string a = Path.Combine(_dir, "a.npy"), b = Path.Combine(_dir, "b.npy"), biasFile = Path.Combine(_dir, "bias.npy");
        string c = Path.Combine(_dir, "c.npy");
        NumPy.Run("""
            d, tb, bias = sys.argv[1], sys.argv[2] == '1', sys.argv[3] == '1'
            np.save(d + '/a.npy', np.random.default_rng(101).standard_normal((300, 517)).astype(np.float32))
            np.save(d + '/b.npy', np.random.default_rng(202).standard_normal((211, 517) if tb else (517, 211)).astype(np.float32))
            if bias:
                np.save(d + '/bias.npy', np.random.default_rng(303).standard_normal(211).astype(np.float32))
            """, _dir, transposeB ? "1" : "0", bias ? "1" : "0");

        var args = new List<string> { "op", "matmul", "--in", $"a={a}", "--in", $"b={b}", "--out", c };
        if (bias) args.AddRange(["--in", $"bias={biasFile}"]);
        if (transposeB) args.AddRange(["--param", "transpose_b=true"]);
        if (device is not null) args.AddRange(["--device", device]);
        var (code, stdout, stderr) = Omni([.. args]);
        Assert.That(code, Is.EqualTo(0), $"exit code; stderr: {stderr}");
        Assert.That(stdout, Does.Contain(c));
        Assert.That(File.Exists(c + ".tmp"), Is.False, "temporary output left behind");

        // NumPy reads the output itself, so the CLI's .npy writer is checked too.
        var report = NumPy.Run("""
            d, tb, bias = sys.argv[1], sys.argv[2] == '1', sys.argv[3] == '1'
            a = np.load(d + '/a.npy').astype(np.float64)
            b = np.load(d + '/b.npy').astype(np.float64)
            c = np.load(d + '/c.npy')
            ref = a @ (b.T if tb else b)
            if bias:
                ref = ref + np.load(d + '/bias.npy').astype(np.float64)
            print('dtype', c.dtype)
            print('shape', 'x'.join(map(str, c.shape)))
            print('finite', bool(np.isfinite(c).all()))
            err = np.linalg.norm(c.astype(np.float64) - ref) / np.linalg.norm(ref) if c.shape == ref.shape else float('inf')
            print('err', repr(float(err)) if np.isfinite(err) else '1e308')
            """, _dir, transposeB ? "1" : "0", bias ? "1" : "0");
        var fields = Lines(report).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);
        Assert.That(fields["dtype"], Is.EqualTo("float32"));
        Assert.That(fields["shape"], Is.EqualTo("300x211"));
        Assert.That(fields["finite"], Is.EqualTo("True"), "output has NaN or infinity (an element never written?)");
        double err = double.Parse(fields["err"], CultureInfo.InvariantCulture);
        TestContext.Out.WriteLine($"relative error {err:E2}");
        Assert.That(err, Is.LessThanOrEqualTo(GemmTolerance), "‖c − ref‖/‖ref‖ against NumPy float64");
    }

    [TestCase(false, false, "bhsd", TestName = "attention_b2_h3_s197_d64_auto")]
    [TestCase(true, true, "bhsd", TestName = "attention_lengths_causal_auto")]
    [TestCase(true, false, "bshd", TestName = "attention_lengths_bshd_auto")]
    public void Attention_MatchesNumpyFloat64(bool lengths, bool causal, string layout)
    {
        string o = Path.Combine(_dir, "o.npy");
        NumPy.Run("""
            d, bshd = sys.argv[1], sys.argv[2] == 'bshd'
            rng = np.random.default_rng(7)
            shape = (2, 197, 3, 64) if bshd else (2, 3, 197, 64)
            for name in 'qkv':
                np.save(d + '/' + name + '.npy', rng.uniform(-1, 1, shape).astype(np.float32))
            np.save(d + '/lengths.npy', np.array([197, 120], dtype=np.int32))
            """, _dir, layout);
        var args = new List<string> { "op", "attention", "--in", $"q={_dir}/q.npy", "--in", $"k={_dir}/k.npy", "--in", $"v={_dir}/v.npy", "--out", o, "--param", $"layout={layout}" };
        if (lengths) args.AddRange(["--in", $"lengths={_dir}/lengths.npy"]);
        if (causal) args.AddRange(["--param", "causal=true"]);
        var (code, _, stderr) = Omni([.. args]);
        Assert.That(code, Is.EqualTo(0), $"exit code; stderr: {stderr}");

        // An independent float64 attention in NumPy: masked scores set to -inf before the softmax.
        var report = NumPy.Run("""
            d, bshd, use_len, causal = sys.argv[1], sys.argv[2] == 'bshd', sys.argv[3] == '1', sys.argv[4] == '1'
            q, k, v = (np.load(d + '/' + n + '.npy').astype(np.float64) for n in 'qkv')
            if bshd:
                q, k, v = (x.transpose(0, 2, 1, 3) for x in (q, k, v))
            s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
            keys = np.arange(s.shape[-1])
            mask = np.zeros(s.shape, dtype=bool)
            if use_len:
                lengths = np.load(d + '/lengths.npy')
                mask |= keys[None, None, None, :] >= lengths[:, None, None, None]
            if causal:
                mask |= keys[None, None, None, :] > np.arange(s.shape[-2])[None, None, :, None]
            s = np.where(mask, -np.inf, s)
            p = np.exp(s - s.max(-1, keepdims=True))
            ref = (p / p.sum(-1, keepdims=True)) @ v
            if bshd:
                ref = ref.transpose(0, 2, 1, 3)
            o = np.load(d + '/o.npy')
            print('finite', bool(np.isfinite(o).all()))
            print('err', repr(float(np.linalg.norm(o.astype(np.float64) - ref) / np.linalg.norm(ref))))
            """, _dir, layout, lengths ? "1" : "0", causal ? "1" : "0");
        var fields = Lines(report).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);
        Assert.That(fields["finite"], Is.EqualTo("True"));
        double err = double.Parse(fields["err"], CultureInfo.InvariantCulture);
        TestContext.Out.WriteLine($"relative error {err:E2}");
        Assert.That(err, Is.LessThanOrEqualTo(1e-5), "‖o − ref‖/‖ref‖ against NumPy float64");
    }

    [TestCase(null, TestName = "patch_embed_matches_torch_conv2d_cls_pos_auto")]
    [TestCase("reference", TestName = "patch_embed_matches_torch_conv2d_cls_pos_reference")]
    public void PatchEmbed_MatchesTorchVectors(string? device)
    {
        // Vectors from tools/make_patch_vectors.py: torch.nn.functional.conv2d + class token + positions, float64.
        string V(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"patch_{name}.npy");
        string output = Path.Combine(_dir, "tokens.npy");
        var args = new List<string> { "op", "patch-embed", "--out", output };
        foreach (var name in new[] { "image", "weight", "bias", "cls", "pos" }) args.AddRange(["--in", $"{name}={V(name)}"]);
        if (device is not null) args.AddRange(["--device", device]);
        var (code, _, stderr) = Omni([.. args]);
        Assert.That(code, Is.EqualTo(0), $"exit code; stderr: {stderr}");
        var expected = NpyFile.Read(V("expected"));
        var got = NpyFile.Read(output);
        Assert.That(got.Shape, Is.EqualTo(expected.Shape));
        ParityCheck.AssertClose(got.ToFloat32("tokens"), (double[])expected.Data, 1e-5, "patch-embed vs torch");
    }

    [TestCase("holdout_speech_22k", "mfcc_default", new string[0], TestName = "mfcc_default_holdout_speech_22k_resampled")]
    [TestCase("holdout_mix_16k", "mfcc_default", new string[0], TestName = "mfcc_default_holdout_mix_16k")]
    [TestCase("holdout_speech_22k", "mfcc_small", new[] { "--n-mfcc", "20", "--n-mels", "40", "--hop", "160", "--log-mels" }, TestName = "mfcc_small_log_mels_holdout_speech_22k")]
    [TestCase("holdout_mix_16k", "mfcc_small", new[] { "--n-mfcc", "20", "--n-mels", "40", "--hop", "160", "--log-mels" }, TestName = "mfcc_small_log_mels_holdout_mix_16k")]
    [TestCase("holdout_mix_16k", "logmel_whisper", new[] { "--log-mel-whisper" }, TestName = "logmel_whisper_holdout_mix_16k")]
    [TestCase("holdout_speech_22k", "logmel_whisper", new[] { "--log-mel-whisper" }, TestName = "logmel_whisper_holdout_speech_22k_resampled")]
    [TestCase("holdout_speech_22k", "mfcc_slaney", new[] { "--n-mfcc", "13", "--n-mels", "64", "--mel-scale", "slaney", "--mel-norm", "slaney", "--f-min", "20", "--f-max", "7600", "--n-fft", "512", "--win-length", "400", "--hop", "160", "--sample-rate", "16000" }, TestName = "mfcc_slaney_options_holdout_speech_22k")]
    [TestCase("holdout_mix_16k", "mfcc_slaney", new[] { "--n-mfcc", "13", "--n-mels", "64", "--mel-scale", "slaney", "--mel-norm", "slaney", "--f-min", "20", "--f-max", "7600", "--n-fft", "512", "--win-length", "400", "--hop", "160" }, TestName = "mfcc_slaney_options_holdout_mix_16k")]
    public void Mfcc_MatchesTorchaudioOnHeldOutClips(string clip, string config, string[] options)
    {
        // Clips only these end-to-end tests read; vectors from torchaudio 0.13 (tools/make_audio_vectors.py).
        string V(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", "audio", name);
        string output = Path.Combine(_dir, "features.npy");
        var (code, _, stderr) = Omni(["mfcc", "--wav", V(clip + ".wav"), "--out", output, .. options]);
        Assert.That(code, Is.EqualTo(0), $"exit code; stderr: {stderr}");
        var expected = NpyFile.Read(V($"{clip}_{config}.npy"));
        var got = NpyFile.Read(output);
        Assert.That(got.Shape, Is.EqualTo(expected.Shape));
        ParityCheck.AssertClose(got.ToFloat32("features"), (double[])expected.Data, 1e-4, $"omni mfcc {clip} {config}");
    }

    [TestCase("corrupt", "RIFF", TestName = "mfcc_bad_wav_corrupt")]
    [TestCase("empty", "no samples", TestName = "mfcc_bad_wav_empty_clip")]
    [TestCase("short", "samples", TestName = "mfcc_bad_wav_too_short")]
    [TestCase("scale", "mel-scale", TestName = "mfcc_bad_option_mel_scale")]
    [TestCase("nmfcc", "n_mfcc", TestName = "mfcc_bad_option_n_mfcc_above_n_mels")]
    [TestCase("whisper", "--log-mel-whisper", TestName = "mfcc_bad_option_whisper_with_n_mels")]
    public void Mfcc_BadInput_ExitsTwo_WritesNothing(string kind, string mention)
    {
        string wav = Path.Combine(_dir, "in.wav"), output = Path.Combine(_dir, "out.npy");
        static byte[] Wav(short[] samples)
        {
            using var ms = new MemoryStream();
            using var w = new BinaryWriter(ms);
            w.Write("RIFF"u8); w.Write(36 + samples.Length * 2); w.Write("WAVEfmt "u8); w.Write(16); w.Write((short)1); w.Write((short)1);
            w.Write(16000); w.Write(32000); w.Write((short)2); w.Write((short)16); w.Write("data"u8); w.Write(samples.Length * 2);
            foreach (var x in samples) w.Write(x);
            return ms.ToArray();
        }
        var rng = new Random(9);
        short[] Noise(int n) => Enumerable.Range(0, n).Select(_ => (short)rng.Next(-3000, 3000)).ToArray();
        File.WriteAllBytes(wav, kind switch
        {
            "corrupt" => Enumerable.Range(0, 200).Select(_ => (byte)rng.Next(256)).ToArray(),
            "empty" => Wav([]),
            "short" => Wav(Noise(150)),
            _ => Wav(Noise(8000)),
        });
        string[] extra = kind switch
        {
            "scale" => ["--mel-scale", "bark"],
            "nmfcc" => ["--n-mfcc", "60", "--n-mels", "40"],
            "whisper" => ["--log-mel-whisper", "--n-mels", "40"],
            _ => [],
        };
        var (code, _, stderr) = Omni(["mfcc", "--wav", wav, "--out", output, .. extra]);
        Assert.That(code, Is.EqualTo(2), $"stderr: {stderr}");
        Assert.That(Lines(stderr), Has.Length.EqualTo(1));
        Assert.That(stderr, Does.Contain(mention));
        Assert.That(File.Exists(output), Is.False);
    }

    [TestCase(false, TestName = "preprocess_clip_matches_pillow_rgb61x47_png")]
    [TestCase(true, TestName = "preprocess_bad_image_truncated_jpeg_exits_two")]
    public void Preprocess_MatchesPillowVectors(bool truncated)
    {
        // Vectors from tools/make_image_vectors.py: image files stored as raw bytes, and Pillow + NumPy outputs.
        string V(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"image_{name}.npy");
        var bytes = System.Runtime.InteropServices.MemoryMarshal.Cast<sbyte, byte>((sbyte[])NpyFile.Read(V(truncated ? "truncated_jpg_file" : "rgb61x47_png_file")).Data).ToArray();
        string image = Path.Combine(_dir, truncated ? "in.jpg" : "in.png"), output = Path.Combine(_dir, "pixels.npy");
        File.WriteAllBytes(image, bytes);
        var (code, _, stderr) = Omni(["preprocess", "--image", image, "--clip", "--size", "32", "--crop", "28", "--out", output]);
        if (truncated)
        {
            Assert.That(code, Is.EqualTo(2), $"stderr: {stderr}");
            Assert.That(stderr, Does.Contain(image));
            Assert.That(File.Exists(output), Is.False);
            return;
        }
        Assert.That(code, Is.EqualTo(0), $"exit code; stderr: {stderr}");
        var expected = NpyFile.Read(V("rgb61x47_s32c28_bicubic_tv"));
        var got = NpyFile.Read(output);
        Assert.That(got.Shape, Is.EqualTo(expected.Shape));
        Assert.That(got.ToFloat32("pixels"), Is.EqualTo(expected.ToFloat32("expected")).Within(1e-6f));
    }

    [TestCase(1, 4096, 4096, TestName = "matmul_int8_raw_gemv_1x4096x4096_equals_numpy_int32")]
    [TestCase(197, 768, 300, TestName = "matmul_int8_raw_197x768x300_equals_numpy_int32")]
    public void MatMulInt8Raw_EqualsNumpyInt32(int m, int k, int n)
    {
        string output = Path.Combine(_dir, "c.npy");
        NumPy.Run("""
            d, m, k, n = sys.argv[1], *map(int, sys.argv[2:5])
            rng = np.random.default_rng(m + k + n)
            np.save(d + '/a.npy', rng.integers(-127, 128, (m, k), dtype=np.int8))
            np.save(d + '/w.npy', rng.integers(-127, 128, (n, k), dtype=np.int8))
            """, _dir, m.ToString(CultureInfo.InvariantCulture), k.ToString(CultureInfo.InvariantCulture), n.ToString(CultureInfo.InvariantCulture));
        var (code, _, stderr) = Omni(["op", "matmul-int8", "--in", $"a={_dir}/a.npy", "--in", $"w={_dir}/w.npy", "--param", "raw=true", "--out", output]);
        Assert.That(code, Is.EqualTo(0), $"exit code; stderr: {stderr}");
        var report = NumPy.Run("""
            d = sys.argv[1]
            ref = np.load(d + '/a.npy').astype(np.int32) @ np.load(d + '/w.npy').astype(np.int32).T
            c = np.load(d + '/c.npy')
            print('dtype', c.dtype)
            print('equal', bool(c.shape == ref.shape and np.array_equal(c, ref)))
            """, _dir);
        var fields = Lines(report).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);
        Assert.That(fields["dtype"], Is.EqualTo("int32"));
        Assert.That(fields["equal"], Is.EqualTo("True"), "omni op matmul-int8 raw=true against NumPy's int32 matmul");
    }

    [Test]
    public void Quantize_WritesInt8ValuesAndScales()
    {
        string output = Path.Combine(_dir, "q.npy"), scales = Path.Combine(_dir, "s.npy");
        NumPy.Run("np.save(sys.argv[1] + '/x.npy', np.random.default_rng(3).standard_normal((7, 50)).astype(np.float32))", _dir);
        var (code, _, stderr) = Omni(["op", "quantize", "--in", $"x={_dir}/x.npy", "--out", output, "--param", $"scales_out={scales}"]);
        Assert.That(code, Is.EqualTo(0), $"stderr: {stderr}");
        var report = NumPy.Run("""
            d = sys.argv[1]
            x, q, s = np.load(d + '/x.npy').astype(np.float64), np.load(d + '/q.npy'), np.load(d + '/s.npy')
            ref_s = np.abs(x).max(1) / 127
            t = x * (127 / np.abs(x).max(1))[:, None]
            ref_q = np.clip(np.rint(t), -127, 127)
            # Only an exact tie (to float32's rounding of the product) may go to the other neighbour.
            tie = (np.abs(np.abs(t - np.floor(t)) - 0.5) <= 2e-5) & (np.abs(q - t) <= 0.5 + 2e-5)
            print('dtype', q.dtype, s.dtype)
            print('off', int(((q != ref_q) & ~tie).sum()))
            print('scales', repr(float(np.abs(s - ref_s).max() / ref_s.max())))
            """, _dir);
        var fields = Lines(report).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);
        Assert.That(fields["dtype"], Is.EqualTo("int8 float32"));
        Assert.That(int.Parse(fields["off"], CultureInfo.InvariantCulture), Is.Zero, "elements rounded otherwise than NumPy's rint, ties aside");
        Assert.That(double.Parse(fields["scales"], CultureInfo.InvariantCulture), Is.LessThan(1e-6));
    }

    // ---- bad input ----------------------------------------------------------------------------------------

    /// <summary>Argument templates ({in}: the shared input folder, {out}: the output file) and a word stderr must name.</summary>
    public static IEnumerable<TestCaseData> BadInputCases()
    {
        string[] Valid(params string[] extra) =>
            ["op", "matmul", "--in", "a={in}/a34.npy", "--in", "b={in}/b42.npy", "--out", "{out}", .. extra];
        var cases = new (string Name, string[] Args, string Mention)[]
        {
            ("missing_input_file", ["op", "matmul", "--in", "a={in}/does_not_exist.npy", "--in", "b={in}/b42.npy", "--out", "{out}"], "does_not_exist.npy"),
            ("unknown_op", ["op", "matmull", "--in", "a={in}/a34.npy", "--in", "b={in}/b42.npy", "--out", "{out}"], "matmull"),
            ("int32_input", ["op", "matmul", "--in", "a={in}/a34_i32.npy", "--in", "b={in}/b42.npy", "--out", "{out}"], "float32"),
            ("mismatched_shapes", ["op", "matmul", "--in", "a={in}/a34.npy", "--in", "b={in}/b52.npy", "--out", "{out}"], "(5, 2)"),
            ("corrupt_npy_garbage_bytes", ["op", "matmul", "--in", "a={in}/garbage.npy", "--in", "b={in}/b42.npy", "--out", "{out}"], "garbage.npy"),
            ("corrupt_npy_header_dict", ["op", "matmul", "--in", "a={in}/a34.npy", "--in", "b={in}/badheader.npy", "--out", "{out}"], "badheader.npy"),
            ("unknown_param", Valid("--param", "alpha=2"), "alpha"),
            ("transpose_b_maybe", Valid("--param", "transpose_b=maybe"), "maybe"),
            ("unknown_device", Valid("--device", "tpu"), "tpu"),
        };
        foreach (var (name, args, mention) in cases)
            foreach (bool preexisting in new[] { false, true })
                yield return new TestCaseData(args, mention, preexisting)
                    .SetName($"bad_input_{name}{(preexisting ? "_keeps_existing_output" : "")}");
    }

    [TestCaseSource(nameof(BadInputCases))]
    public void BadInput_ExitsTwo_NamesProblem_WritesNothing(string[] template, string mention, bool preexisting)
    {
        string output = Path.Combine(_dir, "c.npy");
        byte[]? before = null;
        if (preexisting)
        {
            // Arbitrary seeded bytes: a failed run must leave them exactly as they were.
            before = new byte[333];
            new Random(template.Length * 31 + mention.Length).NextBytes(before);
            File.WriteAllBytes(output, before);
        }
        var args = template.Select(s => s.Replace("{in}", _inputs).Replace("{out}", output)).ToArray();

        var (code, _, stderr) = Omni(args);

        Assert.That(code, Is.EqualTo(2), "exit code for bad input");
        var lines = Lines(stderr);
        Assert.That(lines, Has.Length.EqualTo(1), "stderr must be exactly one line");
        Assert.That(lines[0], Does.Contain(mention), "stderr must name the problem");
        Assert.That(File.Exists(output + ".tmp"), Is.False, "temporary output left behind");
        if (before is null)
            Assert.That(File.Exists(output), Is.False, "--out must not exist after a failed run");
        else
            Assert.That(File.ReadAllBytes(output), Is.EqualTo(before), "a pre-existing --out must be untouched");
    }

    // ---- devices and selfcheck ----------------------------------------------------------------------------

    [Test]
    public void Devices_MarksAutoPickAndItsSelfTestPassed()
    {
        var (code, stdout, stderr) = Omni("devices");
        Assert.That(code, Is.EqualTo(0), stderr);
        // The footer "* = picked by auto" also starts with '*'; the device line carries its self-test.
        var picked = Lines(stdout).Where(l => l.StartsWith('*') && l.Contains("passed")).ToList();
        Assert.That(picked, Has.Count.EqualTo(1), "one device line marked '*' whose self-test passed");
        if (DeviceKinds.Required() == DeviceKind.OpenCL)
            Assert.That(picked[0], Does.Contain("opencl"));
        if (DeviceKinds.RequiredName() is { } name && name.Equals("pocl", StringComparison.OrdinalIgnoreCase))
            Assert.That(picked[0], Does.Contain("PoCL"));
    }

    [Test]
    public void SelfCheck_Size67_Passes()
    {
        var (code, stdout, stderr) = Omni("selfcheck", "--size", "67");
        Assert.That(code, Is.EqualTo(0), stderr);
        var gemm = Lines(stdout).Where(l => l.StartsWith("gemm")).ToList();
        Assert.That(gemm, Has.Count.EqualTo(1), "one gemm line");
        Assert.That(gemm[0], Does.Contain("67x67").And.EndsWith("ok"));
        Assert.That(stdout, Does.Not.Contain("FAILED"));
    }
}
