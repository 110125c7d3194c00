using System.Globalization;
using NUnit.Framework;
using OmniKernels.Cli;

namespace OmniKernels.Tests;

/// <summary>
/// <c>omni op gated-fusion</c> in-process against NumPy's float64 (which also quantizes the INT8
/// weights itself, per output row), and its bad input: exit code 2, one stderr line naming the
/// problem, no output written. Sequential: each device run creates its own accelerator.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class GatedFusionCliTests
{
    private string _dir = "";

    [OneTimeSetUp]
    public void WriteInputs()
    {
        _dir = Path.Combine(Path.GetTempPath(), "omni-fusion-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        // Modality 1 of z and of x holds NaN: the op must never read it with present=0,2 (or present=1 for x's M = 2).
        NumPy.Run("""
            d = sys.argv[1]
            rng = np.random.default_rng(1717)
            z = rng.uniform(-1, 1, (4, 3, 40)).astype(np.float32)
            z[:, 1, :] = np.nan
            np.save(d + '/z.npy', z)
            np.save(d + '/w.npy', (rng.uniform(-1, 1, (120, 120)) * 2 / np.sqrt(120)).astype(np.float32))
            np.save(d + '/bias.npy', rng.uniform(-0.5, 0.5, 120).astype(np.float32))
            np.save(d + '/w_bad.npy', rng.uniform(-1, 1, (120, 119)).astype(np.float32))
            np.save(d + '/z2d.npy', rng.uniform(-1, 1, (4, 120)).astype(np.float32))
            np.save(d + '/h.npy', rng.uniform(-2, 2, (4, 48)).astype(np.float32))
            x = rng.uniform(-1, 1, (4, 2, 40)).astype(np.float32)
            x[:, 0, :] = np.nan
            np.save(d + '/x.npy', x)
            np.save(d + '/x_all.npy', np.nan_to_num(x, nan=0.25))
            np.save(d + '/w2.npy', (rng.uniform(-1, 1, (2, 48)) * 2 / np.sqrt(48)).astype(np.float32))
            np.save(d + '/bias2.npy', rng.uniform(-0.5, 0.5, 2).astype(np.float32))
            """, _dir);
    }

    [OneTimeTearDown]
    public void DeleteInputs()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static (int Code, string Out, string Err) Omni(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        TestContext.Out.WriteLine($"omni {string.Join(' ', args)} -> {code}\nstdout: {stdout}\nstderr: {stderr}");
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static Dictionary<string, string> Fields(string report) =>
        report.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);

    [TestCase("fp32", null, TestName = "gated_fusion_sigmoid_present02_fp32_auto")]
    [TestCase("int8", null, TestName = "gated_fusion_sigmoid_present02_int8_auto")]
    [TestCase("fp32", "reference", TestName = "gated_fusion_sigmoid_present02_reference")]
    public void Sigmoid_MatchesNumpyFloat64(string weights, string? device)
    {
        string fused = Path.Combine(_dir, $"fused_{weights}_{device}.npy"), gates = Path.Combine(_dir, $"gates_{weights}_{device}.npy");
        var args = new List<string>
        {
            "op", "gated-fusion", "--in", $"z={_dir}/z.npy", "--in", $"w={_dir}/w.npy", "--in", $"bias={_dir}/bias.npy", "--out", fused,
            "--param", "present=0,2", "--param", $"weights={weights}", "--param", $"gates_out={gates}",
        };
        if (device is not null) args.AddRange(["--device", device]);
        var (code, stdout, stderr) = Omni([.. args]);
        Assert.That(code, Is.EqualTo(0), $"exit code; stderr: {stderr}");
        Assert.That(stdout, Does.Contain(fused).And.Contain(gates));

        // An independent float64 gate: z with its absent block zeroed (the design's h_m = 0), σ, absent gates forced to 0.
        // For INT8, NumPy quantizes w per output row (max|w|/127, round half to even) and uses the dequantized weights.
        var report = NumPy.Run("""
            d, weights, fused, gates = sys.argv[1:5]
            present = np.array([True, False, True])
            z = np.load(d + '/z.npy').astype(np.float64)
            w = np.load(d + '/w.npy').astype(np.float64)
            if weights == 'int8':
                s = np.abs(w).max(1) / 127
                w = np.clip(np.rint(w / s[:, None]), -127, 127) * s[:, None]
            b, m, e = z.shape
            zm = np.where(present[None, :, None], z, 0).reshape(b, m * e)
            g = 1 / (1 + np.exp(-(zm @ w.T + np.load(d + '/bias.npy'))))
            g = g.reshape(b, m, e) * present[None, :, None]
            ref = (g * zm.reshape(b, m, e)).sum(1)
            f, gg = np.load(fused), np.load(gates)
            print('dtype', f.dtype, gg.dtype)
            print('shape', 'x'.join(map(str, f.shape)), 'x'.join(map(str, gg.shape)))
            print('finite', bool(np.isfinite(f).all() and np.isfinite(gg).all()))
            print('err', repr(float(np.linalg.norm(f - ref) / np.linalg.norm(ref))))
            print('gerr', repr(float(np.linalg.norm(gg - g) / np.linalg.norm(g))))
            """, _dir, weights, fused, gates);
        var f = Fields(report);
        Assert.That(f["dtype"], Is.EqualTo("float32 float32"));
        Assert.That(f["shape"], Is.EqualTo("4x40 4x3x40"));
        Assert.That(f["finite"], Is.EqualTo("True"), "NaN in the output: the absent block was read, or an element never written");
        // INT8: NumPy's quantizer in float64 may round a weight at a tie differently from the float32 one; 1e-4 still
        // rejects the unquantized weights (their gap to the INT8 result is about 1e-3 here).
        double tolerance = weights == "int8" ? 1e-4 : 1e-5;
        Assert.That(double.Parse(f["err"], CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(tolerance), "fused against NumPy");
        Assert.That(double.Parse(f["gerr"], CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(tolerance), "gates against NumPy");
    }

    [TestCase("1", "x.npy", TestName = "gated_fusion_softmax_one_present_is_that_modality")]
    [TestCase("all", "x_all.npy", TestName = "gated_fusion_softmax_all_present")]
    public void Softmax_MatchesNumpyFloat64(string present, string x)
    {
        string fused = Path.Combine(_dir, $"sfused_{present}.npy"), weights = Path.Combine(_dir, $"sweights_{present}.npy");
        var (code, _, stderr) = Omni("op", "gated-fusion", "--in", $"h={_dir}/h.npy", "--in", $"x={_dir}/{x}", "--in", $"w={_dir}/w2.npy",
            "--in", $"bias={_dir}/bias2.npy", "--out", fused, "--param", "gate=softmax", "--param", $"present={present}", "--param", $"gates_out={weights}");
        Assert.That(code, Is.EqualTo(0), $"exit code; stderr: {stderr}");
        var report = NumPy.Run("""
            d, x, present, fused, weights = sys.argv[1:6]
            h = np.load(d + '/h.npy').astype(np.float64)
            x = np.load(d + '/' + x).astype(np.float64)
            mask = np.array([True, True]) if present == 'all' else np.arange(2) == int(present)
            logits = h @ np.load(d + '/w2.npy').astype(np.float64).T + np.load(d + '/bias2.npy')
            logits = np.where(mask[None, :], logits, -np.inf)
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            ref = (p[:, :, None] * np.where(mask[None, :, None], x, 0)).sum(1)
            f, w = np.load(fused), np.load(weights)
            print('shape', 'x'.join(map(str, f.shape)), 'x'.join(map(str, w.shape)))
            print('finite', bool(np.isfinite(f).all() and np.isfinite(w).all()))
            print('err', repr(float(np.linalg.norm(f - ref) / np.linalg.norm(ref))))
            print('werr', repr(float(np.abs(w - p).max())))
            """, _dir, x, present, fused, weights);
        var f = Fields(report);
        Assert.That(f["shape"], Is.EqualTo("4x40 4x2"));
        Assert.That(f["finite"], Is.EqualTo("True"));
        Assert.That(double.Parse(f["err"], CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(1e-5), "fused against NumPy");
        Assert.That(double.Parse(f["werr"], CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(1e-6), "softmax weights against NumPy");
    }

    public static IEnumerable<TestCaseData> BadInputCases()
    {
        string[] Sigmoid(params string[] extra) =>
            ["op", "gated-fusion", "--in", "z={in}/z.npy", "--in", "w={in}/w.npy", "--in", "bias={in}/bias.npy", "--out", "{out}", .. extra];
        var cases = new (string Name, string[] Args, string Mention)[]
        {
            ("present_out_of_range", Sigmoid("--param", "present=0,3"), "'3'"),
            ("present_empty", Sigmoid("--param", "present="), "empty"),
            ("present_negative", Sigmoid("--param", "present=-1"), "'-1'"),
            ("unknown_gate", Sigmoid("--param", "gate=tanh"), "tanh"),
            ("unknown_weights_format", Sigmoid("--param", "weights=int4"), "int4"),
            ("gates_twice", Sigmoid("--param", "output=gates", "--param", "gates_out={out}.g.npy"), "gates_out"),
            ("w_mis_shaped", ["op", "gated-fusion", "--in", "z={in}/z.npy", "--in", "w={in}/w_bad.npy", "--in", "bias={in}/bias.npy", "--out", "{out}"], "(120, 119)"),
            ("z_rank_2", ["op", "gated-fusion", "--in", "z={in}/z2d.npy", "--in", "w={in}/w.npy", "--in", "bias={in}/bias.npy", "--out", "{out}"], "rank 3"),
            ("missing_bias", ["op", "gated-fusion", "--in", "z={in}/z.npy", "--in", "w={in}/w.npy", "--out", "{out}"], "bias"),
            ("sigmoid_given_h", Sigmoid("--in", "h={in}/h.npy"), "gate=sigmoid takes z"),
            ("softmax_without_x", ["op", "gated-fusion", "--in", "h={in}/h.npy", "--in", "w={in}/w2.npy", "--in", "bias={in}/bias2.npy", "--out", "{out}", "--param", "gate=softmax"], "gate=softmax takes h, x"),
            ("softmax_w_mis_shaped", ["op", "gated-fusion", "--in", "h={in}/h.npy", "--in", "x={in}/x.npy", "--in", "w={in}/w.npy", "--in", "bias={in}/bias2.npy", "--out", "{out}", "--param", "gate=softmax"], "(120, 120)"),
        };
        foreach (var (name, args, mention) in cases)
            yield return new TestCaseData(args, mention).SetName($"gated_fusion_bad_input_{name}");
    }

    [TestCaseSource(nameof(BadInputCases))]
    public void BadInput_ExitsTwo_NamesProblem_WritesNothing(string[] template, string mention)
    {
        string output = Path.Combine(_dir, "bad_" + Guid.NewGuid().ToString("N") + ".npy");
        var (code, _, stderr) = Omni(template.Select(s => s.Replace("{in}", _dir).Replace("{out}", output)).ToArray());
        Assert.That(code, Is.EqualTo(2), "exit code for bad input");
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), "stderr must be exactly one line");
        Assert.That(lines[0], Does.Contain(mention), "stderr must name the problem");
        Assert.That(File.Exists(output), Is.False, "--out must not exist after a failed run");
        Assert.That(File.Exists(output + ".g.npy"), Is.False, "no side output after a failed run");
    }
}
