using System.Globalization;
using NUnit.Framework;
using OmniKernels.IO;
using OmniKernels.Ops;

namespace OmniKernels.Tests;

/// <summary>
/// The CLI paths <see cref="CliTests"/> leaves out: <c>omni ops</c>, device selection by <c>--device</c> and
/// <c>OMNI_DEVICE</c>, exit code 3 (device failure), <c>omni preprocess</c> without <c>--clip</c>, and
/// <c>op matmul-int8</c> with float32 activations, each against NumPy or the Pillow vectors.
/// Sequential: it sets process environment variables for the duration of a call.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class CliDeviceTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "omni-cli-dev-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static (int Code, string Out, string Err) Omni(params string[] args) => CliTests.Omni(args);

    /// <summary>Runs <paramref name="body"/> with environment variables set, restoring them afterwards.</summary>
    private static T WithEnvironment<T>(Dictionary<string, string?> variables, Func<T> body)
    {
        var saved = variables.Keys.ToDictionary(k => k, Environment.GetEnvironmentVariable);
        try
        {
            foreach (var (k, v) in variables) Environment.SetEnvironmentVariable(k, v);
            return body();
        }
        finally
        {
            foreach (var (k, v) in saved) Environment.SetEnvironmentVariable(k, v);
        }
    }

    private Dictionary<string, string> Fields(string report) =>
        CliTests.Lines(report).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);

    [Test]
    public void Ops_ListsEveryOpWithItsInputsAndParameters()
    {
        var (code, stdout, stderr) = Omni("ops");
        Assert.That(code, Is.EqualTo(0), stderr);
        var lines = CliTests.Lines(stdout);
        foreach (var op in OpCatalog.All)
        {
            int at = Array.FindIndex(lines, l => l.StartsWith(op.Name + ": ", StringComparison.Ordinal));
            Assert.That(at, Is.GreaterThanOrEqualTo(0), $"no line for op {op.Name}");
            var block = lines.Skip(at + 1).TakeWhile(l => l.StartsWith("--", StringComparison.Ordinal)).ToList();
            foreach (var input in op.Inputs)
                Assert.That(block, Has.Some.StartsWith($"--in {input.Name}=FILE.npy"), $"{op.Name}: input {input.Name}");
            foreach (var p in op.ParamNames)
                Assert.That(block, Has.Some.EqualTo($"--param {p}"), $"{op.Name}: parameter {p}");
            Assert.That(block, Has.Count.EqualTo(op.Inputs.Count + op.ParamNames.Count), $"{op.Name}: listed lines");
        }
    }

    private void WriteMatMulInputs() => NumPy.Run("""
        d = sys.argv[1]
        rng = np.random.default_rng(515)
        np.save(d + '/a.npy', rng.standard_normal((13, 21)).astype(np.float32))
        np.save(d + '/b.npy', rng.standard_normal((21, 18)).astype(np.float32))
        """, _dir);

    private double MatMulError() => double.Parse(Fields(NumPy.Run("""
        d = sys.argv[1]
        ref = np.load(d + '/a.npy').astype(np.float64) @ np.load(d + '/b.npy').astype(np.float64)
        c = np.load(d + '/c.npy').astype(np.float64)
        print('err', repr(float(np.linalg.norm(c - ref) / np.linalg.norm(ref))) if c.shape == ref.shape and np.isfinite(c).all() else 'err 1e308')
        """, _dir))["err"], CultureInfo.InvariantCulture);

    public static IEnumerable<string> DeviceNames() => Backends.Names.Append("reference");

    [TestCaseSource(nameof(DeviceNames))]
    public void DeviceOption_And_OMNI_DEVICE_PickTheDevice(string device)
    {
        WriteMatMulInputs();
        string c = Path.Combine(_dir, "c.npy");
        string[] args = ["op", "matmul", "--in", $"a={_dir}/a.npy", "--in", $"b={_dir}/b.npy", "--out", c];
        string expect = device == "reference" ? "matmul on reference" : $"matmul on {device}: ";
        var runs = new (string What, string? Env, string[] Extra)[]
        {
            ("--device", null, ["--device", device]),
            ("OMNI_DEVICE", device, []),
            ("--device over OMNI_DEVICE=tpu", "tpu", ["--device", device]),
        };
        foreach (var (what, env, extra) in runs)
        {
            File.Delete(c);
            var (code, stdout, stderr) = WithEnvironment(new() { [DeviceKinds.EnvironmentVariable] = env }, () => Omni([.. args, .. extra]));
            Assert.That(code, Is.EqualTo(0), $"{what}: {stderr}");
            Assert.That(stdout, Does.StartWith(expect), $"{what}: the run names the device it used");
            Assert.That(MatMulError(), Is.LessThanOrEqualTo(1e-5), $"{what}: against NumPy float64");
        }
        File.Delete(c);
        var bad = WithEnvironment(new() { [DeviceKinds.EnvironmentVariable] = "tpu" }, () => Omni(args));
        Assert.That(bad.Code, Is.EqualTo(2), "OMNI_DEVICE=tpu");
        Assert.That(CliTests.Lines(bad.Err), Has.Length.EqualTo(1).And.Some.Contains("tpu"));
        Assert.That(File.Exists(c), Is.False);
    }

    /// <summary>Every command that opens a device, as arguments; {d} is the scratch folder.</summary>
    private static readonly (string Name, string[] Args)[] DeviceCommands =
    [
        ("op", ["op", "matmul", "--in", "a={d}/a.npy", "--in", "b={d}/b.npy", "--out", "{d}/out.npy"]),
        ("mfcc", ["mfcc", "--wav", "{d}/in.wav", "--out", "{d}/out.npy"]),
        ("preprocess", ["preprocess", "--image", "{d}/in.png", "--size", "24", "--out", "{d}/out.npy"]),
        ("selfcheck", ["selfcheck", "--size", "17"]),
    ];

    [Test]
    public void DeviceFailure_ExitsThree_NamesIt_WritesNothing()
    {
        WriteMatMulInputs();
        File.Copy(Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", "audio", "noise_16k.wav"), Path.Combine(_dir, "in.wav"));
        File.WriteAllBytes(Path.Combine(_dir, "in.png"), ImageVectors.Bytes("rgb61x47_png_file"));
        string auto = Backends.All[0].Kind.Name();
        // A required device name that auto's pick does not have: the device layer refuses it.
        var failures = new List<(string Env, string? Device, string Mention)> { ($"{auto}:no-such-device", null, DeviceKinds.RequireVariable) };
        if (!Backends.All.Any(b => b.Kind == DeviceKind.Cuda))
            failures.Add(("", "cuda", "CUDA"));
        foreach (var (env, device, mention) in failures)
            foreach (var (name, template) in DeviceCommands)
            {
                var args = template.Select(a => a.Replace("{d}", _dir)).Concat(device is null ? [] : ["--device", device]).ToArray();
                var (code, _, stderr) = WithEnvironment(new() { [DeviceKinds.RequireVariable] = env, [DeviceKinds.EnvironmentVariable] = null }, () => Omni(args));
                Assert.That(code, Is.EqualTo(3), $"{name} with {DeviceKinds.RequireVariable}={env} --device {device}: {stderr}");
                Assert.That(CliTests.Lines(stderr), Has.Length.EqualTo(1).And.Some.Contains(mention), name);
                Assert.That(File.Exists(Path.Combine(_dir, "out.npy")), Is.False, $"{name}: nothing written");
            }
    }

    [Test]
    public void SelfCheckReport_FailsWhenTheErrorExceedsItsTolerance()
    {
        // Exit code 1 is selfcheck's verdict; no correct device produces it, so the verdict itself is checked.
        var ctx = Backends.All[0];
        var ok = SelfCheck.Run(ctx, 17, runs: 1);
        Assert.That(ok.Passed, Is.True);
        Assert.That((ok with { RelativeError = ok.Tolerance * 2 }).Passed, Is.False);
        Assert.That((ok with { SelfTest = ok.SelfTest with { Passed = false } }).Passed, Is.False);
    }

    [TestCase("rgb61x47_png_file", 3, "s28c25_bilinear_tv", new[] { "--size", "28", "--crop", "25", "--filter", "bilinear", "--mean", "0.48145466", "0.4578275", "0.40821073", "--std", "0.26862954", "0.26130258", "0.27577711" }, TestName = "preprocess_size_crop_filter_mean_std_rgb61x47")]
    [TestCase("gray33x50_png_file", 1, "s24c21_bicubic_tv", new[] { "--channels", "1", "--size", "24", "--crop", "21", "--mean", "0.5", "--std", "0.25" }, TestName = "preprocess_gray_channels1_gray33x50")]
    [TestCase("rgb61x47_png_file", 3, "s64c60_bicubic_tv", new[] { "--clip", "--size", "64", "--crop", "60" }, TestName = "preprocess_clip_upscaling_rgb61x47")]
    public void Preprocess_OptionsMatchPillowVectors(string file, int channels, string expected, string[] options)
    {
        string image = Path.Combine(_dir, "in.png"), output = Path.Combine(_dir, "pixels.npy");
        File.WriteAllBytes(image, ImageVectors.Bytes(file));
        var (code, _, stderr) = Omni(["preprocess", "--image", image, "--out", output, .. options]);
        Assert.That(code, Is.EqualTo(0), stderr);
        var want = NpyFile.Read(ImageVectors.Path($"{file.Split('_')[0]}_{expected}"));
        var got = NpyFile.Read(output);
        Assert.That(got.Shape, Is.EqualTo(want.Shape));
        Assert.That(got.Shape[0], Is.EqualTo(channels));
        Assert.That(got.ToFloat32("pixels"), Is.EqualTo(want.ToFloat32("expected")), "bit-exact against Pillow + NumPy");
    }

    [TestCase(new[] { "--size", "24", "--mean", "0.5" }, "--mean and --std", TestName = "preprocess_mean_without_std_exits_two")]
    [TestCase(new[] { "--size", "24", "--filter", "lanczos" }, "lanczos", TestName = "preprocess_unknown_filter_exits_two")]
    [TestCase(new[] { "--crop", "24" }, "--size", TestName = "preprocess_no_size_without_clip_exits_two")]
    [TestCase(new[] { "--size", "24", "--crop", "30" }, "crop", TestName = "preprocess_crop_above_size_exits_two")]
    public void Preprocess_BadOptions_ExitTwo(string[] options, string mention)
    {
        string image = Path.Combine(_dir, "in.png"), output = Path.Combine(_dir, "pixels.npy");
        File.WriteAllBytes(image, ImageVectors.Bytes("rgb61x47_png_file"));
        var (code, _, stderr) = Omni(["preprocess", "--image", image, "--out", output, .. options]);
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(CliTests.Lines(stderr), Has.Length.EqualTo(1).And.Some.Contains(mention));
        Assert.That(File.Exists(output), Is.False);
    }

    [TestCase("none", TestName = "matmul_int8_float32_x_bias_equals_numpy_quantized_path")]
    [TestCase("silu", TestName = "matmul_int8_float32_x_bias_silu_equals_numpy_quantized_path")]
    public void MatMulInt8_Float32Activations_MatchNumpy(string activation)
    {
        string output = Path.Combine(_dir, "y.npy");
        NumPy.Run("""
            d = sys.argv[1]
            rng = np.random.default_rng(808)
            np.save(d + '/x.npy', rng.standard_normal((37, 101)).astype(np.float32))
            np.save(d + '/w.npy', rng.integers(-127, 128, (45, 101), dtype=np.int8))
            np.save(d + '/s.npy', rng.uniform(0.001, 0.01, 45).astype(np.float32))
            np.save(d + '/b.npy', rng.standard_normal(45).astype(np.float32))
            """, _dir);
        var (code, _, stderr) = Omni(["op", "matmul-int8", "--in", $"x={_dir}/x.npy", "--in", $"w={_dir}/w.npy", "--in", $"scales={_dir}/s.npy",
            "--in", $"bias={_dir}/b.npy", "--param", $"activation={activation}", "--out", output]);
        Assert.That(code, Is.EqualTo(0), stderr);
        // NumPy's own INT8 path: per-row symmetric quantization, an exact integer product, dequantization.
        var fields = Fields(NumPy.Run("""
            d, act = sys.argv[1], sys.argv[2]
            x, w, s, b = (np.load(d + '/' + n + '.npy') for n in ('x', 'w', 's', 'b'))
            sx = np.abs(x.astype(np.float64)).max(1) / 127
            q = np.clip(np.rint(x / sx[:, None]), -127, 127).astype(np.int64)
            ref = (q @ w.astype(np.int64).T) * sx[:, None] * s.astype(np.float64)[None, :] + b
            if act == 'silu':
                ref = ref / (1 + np.exp(-ref))
            y = np.load(d + '/y.npy').astype(np.float64)
            print('dtype', np.load(d + '/y.npy').dtype)
            print('err', repr(float(np.linalg.norm(y - ref) / np.linalg.norm(ref))) if y.shape == ref.shape and np.isfinite(y).all() else 'err 1e308')
            """, _dir, activation));
        Assert.That(fields["dtype"], Is.EqualTo("float32"));
        Assert.That(double.Parse(fields["err"], CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(1e-5), "against NumPy's quantized product");
    }
}
