using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using NUnit.Framework;
using OmniKernels.Weights;

namespace OmniKernels.Tests.Weights;

/// <summary>
/// The INT8 checkpoint: per-channel quantization bit-exact against NumPy (ties to even, zero and
/// underflowing rows), <c>omni quantize</c> on ViT-shaped checkpoints read back by <c>omni weights</c>
/// and checked by NumPy, the 28% size bound at ViT-B/16 size, and failures that leave nothing behind.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class Int8CheckpointTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Corpus.NewTempDir("int8");

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private const string NumPyQuantize = """
        sys.path.insert(0, sys.argv[1])
        import safetensors_np as st
        def f32(t, d, n):
            return st.bf16_bits_to_float32(t[n]) if d[n] == "BF16" else t[n].astype(np.float32)
        def expect(w):
            s = (np.abs(w).max(axis=1, initial=0) / np.float32(127)).astype(np.float32)
            safe = np.where(s > 0, s, np.float32(1))
            q = np.where(s[:, None] > 0, np.round(w / safe[:, None]), 0).astype(np.int8)
            return q, s
        """;

    [Test]
    public void QuantizeRowsMatchesNumPyBitForBit()
    {
        const int rows = 37, cols = 53;
        var rng = new Random(808);
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() * 2 - 1) * (1 + i % 7);
        w.AsSpan(3 * cols, cols).Clear();                       // an all-zero row: scale 0, q 0
        float[] ties = [127f, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, -126.5f]; // scale exactly 1: halves round to even
        ties.CopyTo(w.AsSpan(5 * cols));
        w.AsSpan(5 * cols + ties.Length, cols - ties.Length).Fill(4.5f);
        w.AsSpan(7 * cols, cols).Fill(0f);
        w[7 * cols + 2] = float.Epsilon;                         // max / 127 underflows to 0
        w[9 * cols + 4] = -1000f;                                // the extreme is negative

        var q = new sbyte[w.Length];
        var s = new float[rows];
        Array.Fill(s, float.NaN);
        Int8Checkpoint.QuantizeRows(w, rows, cols, q, s);

        string path = Path.Combine(_dir, "w.safetensors");
        var writer = new SafetensorsWriter();
        writer.AddFloat32("w", [rows, cols], w);
        writer.Write(path);
        string result = NumPy.Run(NumPyQuantize + "\n" + """
            t, d, _ = st.load(sys.argv[2])
            q, s = expect(f32(t, d, "w"))
            print(q.tobytes().hex()); print(s.tobytes().hex())
            """, Path.Combine(Corpus.RepoRoot(), "tools"), path);
        var lines = result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(Convert.ToHexStringLower(MemoryMarshal.AsBytes(q.AsSpan())), Is.EqualTo(lines[0]));
        Assert.That(Convert.ToHexStringLower(MemoryMarshal.AsBytes(s.AsSpan())), Is.EqualTo(lines[1]));
        Assert.That(q.AsSpan(5 * cols, ties.Length).ToArray(), Is.EqualTo(new sbyte[] { 127, 2, -4, 0, 0, 2, -126 }));
        Assert.That((s[3], s[7]), Is.EqualTo((0f, 0f)));

        var back = new float[w.Length];
        Int8Checkpoint.Dequantize(q, s, rows, cols, back);
        Assert.That(back.AsSpan(3 * cols, cols).ToArray(), Is.All.EqualTo(0f));
        for (int i = 0; i < w.Length; i++)
            Assert.That(back[i], Is.EqualTo(w[i]).Within(s[i / cols] / 2 * 1.0001f + 1e-30f), $"element {i}");
    }

    [Test]
    public void NonFiniteWeightsAreRejected()
    {
        var w = new float[] { 1f, float.NaN, 2f, 3f };
        Assert.Throws<ArgumentException>(() => Int8Checkpoint.QuantizeRows(w, 2, 2, new sbyte[4], new float[2]));
        w[1] = float.PositiveInfinity;
        Assert.Throws<ArgumentException>(() => Int8Checkpoint.QuantizeRows(w, 2, 2, new sbyte[4], new float[2]));
    }

    [Test]
    public void LinearRuleKeepsEmbeddingsNormsBiasesAndConvolutions()
    {
        TensorInfo T(string name, SafetensorsDType dtype, params long[] shape) => new(name, dtype, shape, 0, 0, "x");
        string[] none = [];
        Assert.That(Int8Checkpoint.IsLinearWeight(T("m.encoder.layers.0.mlp.fc1.weight", SafetensorsDType.F32, 8, 4), none), Is.True);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("m.encoder.layers.0.self_attn.q_proj.weight", SafetensorsDType.BF16, 8, 8), none), Is.True);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("m.encoder.layers.0.mlp.fc1.bias", SafetensorsDType.F32, 8), none), Is.False);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("m.embeddings.position_embedding.weight", SafetensorsDType.F32, 197, 8), none), Is.False);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("text.token_embedding.weight", SafetensorsDType.F16, 100, 8), none), Is.False);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("m.embeddings.patch_embedding.weight", SafetensorsDType.F32, 8, 3, 16, 16), none), Is.False);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("m.pre_layrnorm.weight", SafetensorsDType.F32, 8, 8), none), Is.False);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("m.fc.weight", SafetensorsDType.I32, 8, 8), none), Is.False);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("m.fc.weight_scale", SafetensorsDType.F32, 8, 1), none), Is.False);
        Assert.That(Int8Checkpoint.IsLinearWeight(T("lm_head.weight", SafetensorsDType.F32, 8, 8), ["lm_head"]), Is.False);
    }

    private static (int Code, string Out, string Err) Omni(params string[] args) => WeightsCliTests.Omni(args);

    [Test]
    public void QuantizeWritesACheckpointOmniWeightsReadsAndNumPyConfirms()
    {
        string model = Path.Combine(_dir, "vit"), output = Path.Combine(_dir, "vit-int8");
        Corpus.Run("vit", model, "64", "2", "256");
        var (code, text, err) = Omni("quantize", "--model", model, "--out", output, "--keep", "layers.1.mlp.fc2");
        Assert.That((code, err), Is.EqualTo((0, "")), text);
        Assert.That(text, Does.Contain("quantized 11 Linear weights to INT8; kept in float by --keep: vision_model.encoder.layers.1.mlp.fc2.weight"));
        Assert.That(text, Does.Contain("copied tokenizer.json"));
        Assert.That(File.ReadAllBytes(Path.Combine(output, "tokenizer.json")), Is.EqualTo(File.ReadAllBytes(Path.Combine(model, "tokenizer.json"))));

        using (var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(output, "config.json"))))
        {
            var root = config.RootElement;
            Assert.That(root.GetProperty("hidden_size").GetInt32(), Is.EqualTo(64), "the input's config is kept");
            var qc = root.GetProperty("quantization_config");
            Assert.That(qc.GetProperty("quant_method").GetString(), Is.EqualTo("compressed-tensors"));
            var group = qc.GetProperty("config_groups").GetProperty("group_0");
            Assert.That(group.GetProperty("weights").GetProperty("strategy").GetString(), Is.EqualTo("channel"));
            Assert.That(group.GetProperty("input_activations").GetProperty("strategy").GetString(), Is.EqualTo("token"));
            Assert.That(group.GetProperty("input_activations").GetProperty("dynamic").GetBoolean(), Is.True);
            Assert.That(qc.GetProperty("ignore").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "vision_model.encoder.layers.1.mlp.fc2" }));
        }

        var (listed, json, _) = Omni("weights", output, "--json");
        Assert.That(listed, Is.Zero);
        using (var doc = JsonDocument.Parse(json))
        {
            var dtypes = doc.RootElement.GetProperty("tensors").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!, t => t.GetProperty("dtype").GetString());
            Assert.That(dtypes["vision_model.encoder.layers.0.mlp.fc1.weight"], Is.EqualTo("I8"));
            Assert.That(dtypes["vision_model.encoder.layers.0.mlp.fc1.weight_scale"], Is.EqualTo("F32"));
            Assert.That(dtypes["vision_model.encoder.layers.1.mlp.fc2.weight"], Is.EqualTo("F32"));
            Assert.That(dtypes["vision_model.embeddings.position_embedding.weight"], Is.EqualTo("F32"));
        }

        // NumPy: every I8 weight and scale from the float input by the rule; every other tensor byte-identical.
        string check = NumPy.Run(NumPyQuantize + "\n" + """
            t, d, _ = st.load(sys.argv[2]); o, od, _ = st.load(sys.argv[3])
            st.check_reference_layout(sys.argv[3])
            n = 0
            for name in t:
                if od[name] == "I8":
                    q, s = expect(f32(t, d, name))
                    assert np.array_equal(o[name], q), name
                    sn = name[:-len("weight")] + "weight_scale"
                    assert od[sn] == "F32" and o[sn].shape == (q.shape[0], 1) and np.array_equal(o[sn][:, 0].view(np.uint32), s.view(np.uint32)), sn
                    n += 1
                else:
                    assert od[name] == d[name] and o[name].tobytes() == t[name].tobytes(), name
            assert len(o) == len(t) + n
            print(n)
            """, Path.Combine(Corpus.RepoRoot(), "tools"), Path.Combine(model, "model.safetensors"), Path.Combine(output, "model.safetensors"));
        Assert.That(check.Trim(), Is.EqualTo("11"));

        using var store = WeightStore.Open(output);
        var fc1 = store.Scope("vision_model.encoder.layers.0.mlp.fc1");
        Assert.That(Int8Checkpoint.IsQuantizedLinear(fc1), Is.True);
        Assert.That(Int8Checkpoint.IsQuantizedLinear(store.Scope("vision_model.encoder.layers.1.mlp.fc2")), Is.False);
        var linear = Int8Checkpoint.ReadLinear(fc1, 256, 64);
        Assert.That((linear.Weight.Length, linear.Scales.Length), Is.EqualTo((256 * 64, 256)));
        Assert.That(store.Unused(), Does.Not.Contain("vision_model.encoder.layers.0.mlp.fc1.weight_scale"));
        Assert.Throws<SafetensorsFormatException>(() => Int8Checkpoint.ReadLinear(fc1, 64, 256));
    }

    [Test]
    public void ShardedBf16CheckpointQuantizesIntoShardsWithAnIndex()
    {
        string model = Path.Combine(_dir, "sharded"), output = Path.Combine(_dir, "out");
        Directory.CreateDirectory(model);
        NumPy.Run("""
            sys.path.insert(0, sys.argv[1])
            import safetensors_np as st, json
            rng = np.random.default_rng(5)
            a = {"l.0.fc.weight": st.float32_to_bf16_bits(rng.standard_normal((6, 5)).astype(np.float32)), "l.0.fc.bias": st.float32_to_bf16_bits(np.ones(6, np.float32))}
            b = {"l.1.fc.weight": rng.standard_normal((3, 6)).astype(np.float16), "embed.weight": rng.standard_normal((10, 5)).astype(np.float32)}
            st.save(sys.argv[2] + "/model-00001-of-00002.safetensors", a, None, {k: "BF16" for k in a})
            st.save(sys.argv[2] + "/model-00002-of-00002.safetensors", b)
            wm = {**{k: "model-00001-of-00002.safetensors" for k in a}, **{k: "model-00002-of-00002.safetensors" for k in b}}
            json.dump({"metadata": {}, "weight_map": wm}, open(sys.argv[2] + "/model.safetensors.index.json", "w"))
            """, Path.Combine(Corpus.RepoRoot(), "tools"), model);
        var (code, text, err) = Omni("quantize", "--model", model, "--out", output);
        Assert.That((code, err), Is.EqualTo((0, "")), text);
        using var store = WeightStore.Open(output);
        Assert.That(store.Files, Has.Count.EqualTo(2));
        Assert.That(store.Scope("l.0.fc").Info("weight_scale").FilePath, Does.EndWith("model-00001-of-00002.safetensors"));
        Assert.That(store.Scope("l.1.fc").Info("weight").DType, Is.EqualTo(SafetensorsDType.I8));
        Assert.That(store.Root.Info("embed.weight").DType, Is.EqualTo(SafetensorsDType.F32));
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(output, WeightStore.IndexFileName)));
        Assert.That(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), Is.EqualTo(store.All.Sum(t => t.ByteLength)));
        Assert.That(File.Exists(Path.Combine(output, "config.json")), Is.True);
    }

    [Test]
    public void FailuresPrintOneLineExit2AndLeaveNothing()
    {
        string model = Path.Combine(_dir, "vit"), output = Path.Combine(_dir, "q");
        Corpus.Run("vit", model, "32", "1", "64");
        void ExpectFailure(string because, params string[] args)
        {
            var before = Directory.GetFileSystemEntries(_dir).Order().ToArray();
            var (code, text, err) = Omni(args);
            Assert.That(code, Is.EqualTo(2), because);
            Assert.That(text, Is.Empty, because);
            Assert.That(err.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1), because);
            Assert.That(err, Does.StartWith("omni quantize: "), because);
            Assert.That(Directory.GetFileSystemEntries(_dir).Order().ToArray(), Is.EqualTo(before), because + ": something was left behind");
        }
        ExpectFailure("missing model", "quantize", "--model", Path.Combine(_dir, "none"), "--out", output);
        ExpectFailure("out = model", "quantize", "--model", model, "--out", model);
        ExpectFailure("out's parent missing", "quantize", "--model", model, "--out", Path.Combine(_dir, "a", "b"));
        File.WriteAllText(Path.Combine(_dir, "busy"), "x");
        ExpectFailure("out is a file", "quantize", "--model", model, "--out", Path.Combine(_dir, "busy"));

        var (ok, _, _) = Omni("quantize", "--model", model, "--out", output);
        Assert.That(ok, Is.Zero);
        ExpectFailure("out not empty", "quantize", "--model", model, "--out", output);
        ExpectFailure("already quantized", "quantize", "--model", output, "--out", Path.Combine(_dir, "q2"));

        // A NaN in the last Linear weight: the failure comes after other tensors were quantized.
        string nan = Path.Combine(_dir, "nan");
        Directory.CreateDirectory(nan);
        NumPy.Run("""
            sys.path.insert(0, sys.argv[1])
            import safetensors_np as st
            w = np.ones((4, 4), np.float32); w[2, 1] = np.nan
            st.save(sys.argv[2] + "/model.safetensors", {"a.weight": np.ones((4, 4), np.float32), "z.weight": w})
            """, Path.Combine(Corpus.RepoRoot(), "tools"), nan);
        ExpectFailure("NaN weight", "quantize", "--model", nan, "--out", Path.Combine(_dir, "q3"));
        var (_, _, nanErr) = Omni("quantize", "--model", nan, "--out", Path.Combine(_dir, "q3"));
        Assert.That(nanErr, Does.Contain("'z.weight'").And.Contain("NaN"));

        File.WriteAllText(Path.Combine(nan, "model.safetensors"), "garbage!garbage!");
        ExpectFailure("malformed input", "quantize", "--model", nan, "--out", Path.Combine(_dir, "q4"));
    }

    [Test]
    public void VitB16SizedInt8CheckpointIsAtMost28PercentOfFp32()
    {
        // ViT-B/16 (hidden 768, 12 layers, MLP 3072, 224 px, CLIP vision names): about 86 M parameters, 345 MB of fp32.
        string model = Path.Combine(_dir, "vit-b16"), output = Path.Combine(_dir, "vit-b16-int8");
        Corpus.Run("vit", model, "768", "12", "3072");
        var (code, text, err) = Omni("quantize", "--model", model, "--out", output);
        Assert.That((code, err), Is.EqualTo((0, "")));
        TestContext.Out.WriteLine(text);
        long fp32 = new FileInfo(Path.Combine(model, "model.safetensors")).Length;
        long int8 = new FileInfo(Path.Combine(output, "model.safetensors")).Length;
        Assert.That(fp32, Is.GreaterThan(340_000_000));
        Assert.That(text, Does.Contain(fp32.ToString("N0", CultureInfo.InvariantCulture) + " bytes").And.Contain(int8.ToString("N0", CultureInfo.InvariantCulture) + " bytes"));
        Assert.That((double)int8 / fp32, Is.LessThanOrEqualTo(0.28));
        Assert.That(text, Does.Contain("quantized 72 Linear weights"));
    }
}
