using NUnit.Framework;
using OmniKernels.Kernels;
using OmniKernels.Ops;

namespace OmniKernels.Tests;

/// <summary>
/// The GPU-shaped schedules without a GPU: every parity case (the common list and the cases below,
/// which cross the GPU schedules' block edges) on PoCL and on the emulator forced onto the GPU
/// schedule (<see cref="Backends.GpuScheduled"/>), against the float64 reference; the cases below
/// also run on every device's own schedule.
/// </summary>
[TestFixture]
public sealed class GpuScheduleParityTests
{
    private static Dictionary<string, string> P(params string[] kv) =>
        kv.Select(s => s.Split('=', 2)).ToDictionary(a => a[0], a => a[1]);

    private static Func<Dictionary<string, HostTensor>> In(params (string Name, long[] Shape)[] inputs) => () =>
    {
        var d = new Dictionary<string, HostTensor>();
        int seed = 29;
        foreach (var (name, shape) in inputs) d[name] = RandomInputs.Tensor(seed++ * 104729, shape);
        return d;
    };

    private static Func<Dictionary<string, HostTensor>> Attn(long b, long h, long sq, long sk, long d, bool bshd = false, int[]? lengths = null) => () =>
    {
        long[] Shape(long s) => bshd ? [b, s, h, d] : [b, h, s, d];
        var inputs = In(("q", Shape(sq)), ("k", Shape(sk)), ("v", Shape(sk)))();
        if (lengths is not null) inputs["lengths"] = new HostTensor([lengths.Length], lengths);
        return inputs;
    };

    private static HostTensor Int8Tensor(int seed, params long[] shape)
    {
        var rng = new Random(seed);
        return new HostTensor(shape, Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => rng.Next(-127, 128)).ToArray());
    }

    /// <summary>Shapes chosen against the GPU blocks: 128 × 128 GEMM blocks of depth 8, int8 depth 32, 16-query/16-key attention blocks, the fusion's groups.</summary>
    public static IEnumerable<ParityCase> BlockEdgeCases()
    {
        const double gemm = 1e-5, norm = 1e-5, attn = 1e-5;
        yield return new("gpu_matmul_131x27x145_two_row_and_col_blocks", "matmul", In(("a", [131, 27]), ("b", [27, 145])), P(), gemm);
        yield return new("gpu_matmul_batch2_130x9x20_perbatchB_bias_silu_residual", "matmul",
            In(("a", [2, 130, 9]), ("b", [2, 20, 9]), ("bias", [20]), ("residual", [2, 130, 20])), P("transpose_b=true", "activation=silu"), gemm);
        yield return new("gpu_layernorm_3x300_rows_longer_than_group", "layernorm", In(("x", [3, 300]), ("gamma", [300]), ("beta", [300])), P(), norm);
        yield return new("gpu_rmsnorm_2x513", "rmsnorm", In(("x", [2, 513]), ("gamma", [513])), P(), norm);
        yield return new("gpu_softmax_3x700_lengths", "softmax", () =>
        {
            var d = In(("x", [3, 700]))();
            d["lengths"] = new HostTensor([3], new[] { 700, 0, 259 });
            return d;
        }, P("scale=2.5"), norm);
        yield return new("gpu_attention_sq33_sk50_d128_lengths", "attention", Attn(2, 1, 33, 50, 128, lengths: [50, 17]), P(), attn);
        yield return new("gpu_attention_bshd_causal_s40_d24", "attention", Attn(1, 3, 40, 40, 24, bshd: true), P("layout=bshd", "causal=true"), attn);
        yield return new("gpu_attention_causal_sq40_sk18_cross", "attention", Attn(1, 1, 40, 18, 8), P("causal=true"), attn);
        yield return new("gpu_matmul_int8_raw_133x70x150_k_tail", "matmul-int8", () => new() { ["a"] = Int8Tensor(11, 133, 70), ["w"] = Int8Tensor(12, 150, 70) }, P("raw=true"), 0);
        yield return new("gpu_matmul_int8_131x100x40_bias_silu", "matmul-int8", () =>
        {
            var d = In(("x", [131, 100]), ("bias", [40]))();
            d["w"] = Int8Tensor(13, 40, 100);
            d["scales"] = new HostTensor([40], RandomInputs.Uniform(14, 40, 0.001f, 0.01f));
            return d;
        }, P("activation=silu"), 2e-2);
        // Rows longer than the quantizer's 256-thread group, and an all-zero row (scale 0, q 0).
        yield return new("gpu_quantize_4x700_zero_row", "quantize", () =>
        {
            var x = RandomInputs.Uniform(15, 4 * 700, -3f, 3f);
            Array.Clear(x, 2 * 700, 700);
            return new() { ["x"] = new HostTensor([4, 700], x) };
        }, P(), 1);
        // Rows two 256-thread strides and one column long, k past one warp.
        yield return new("gpu_topk_513x16_q3_k40", "topk", In(("index", [513, 16]), ("queries", [3, 16])), P("k=40"), 0);
        foreach (var c in FusionCases.GpuEdgeCases()) yield return c;
    }

    private static IEnumerable<ParityCase> All => ParityTests.Cases().Concat(BlockEdgeCases());

    public static IEnumerable<TestCaseData> Matrix() =>
        from backend in Backends.GpuScheduledNames.Concat(Backends.Names).Distinct()
        from c in backend.EndsWith("+gpu", StringComparison.Ordinal) ? All : BlockEdgeCases()
        where !(c.Large && Backends.IsEmulator(backend))
        select new TestCaseData(backend, c).SetName($"{backend}/{c.Name}");

    [TestCaseSource(nameof(Matrix))]
    public void MatchesReference(string backend, ParityCase c)
    {
        var ctx = Backends.Get(backend);
        var op = c.Bind();
        if (op.OutputType == DType.F32)
        {
            ParityCheck.AssertClose(op.RunDevice(ctx), op.RunReference(), c.Tolerance, $"{backend}/{c.Name}");
            return;
        }
        var got = op.RunDeviceIntegers(ctx);
        var expected = op.RunReferenceIntegers();
        Assert.That(got, Has.Length.EqualTo(expected.Length));
        int worst = got.Zip(expected).Max(p => Math.Abs(p.First - p.Second));
        TestContext.Out.WriteLine($"{backend}/{c.Name}: largest difference {worst} step(s)");
        Assert.That(worst, Is.LessThanOrEqualTo((int)c.Tolerance));
    }

    public static IEnumerable<string> GpuBackends() => Backends.GpuScheduledNames;

    /// <summary>
    /// A forced context loads only listed variants of the GPU schedule (or of families with one
    /// schedule): the launchers switch for real, and nothing they load escapes the registry.
    /// </summary>
    [TestCaseSource(nameof(GpuBackends))]
    public void ForcedContextLoadsOnlyGpuShapedVariants(string backend)
    {
        var ctx = Backends.Get(backend);
        Assert.That(ctx.Schedule, Is.EqualTo(KernelSchedule.Gpu));
        foreach (var c in BlockEdgeCases())
        {
            var op = c.Bind();
            if (op.OutputType == DType.F32) op.RunDevice(ctx);
            else op.RunDeviceIntegers(ctx);
        }
        var listed = KernelRegistry.All.ToHashSet();
        var loaded = ctx.LoadedKernelKeys();
        Assert.That(loaded.Where(k => k is not KernelEntry e || !listed.Contains(e)), Is.Empty, "loaded kernels missing from the registry");
        var entries = loaded.OfType<KernelEntry>().ToList();
        Assert.That(entries.Where(e => e.Schedule == KernelSchedule.Cpu).Select(e => e.Name), Is.Empty);
        foreach (var method in new[] { "TiledKernel", "FlashKernel", "Dp4aKernel", "GroupKernel", "GroupSigmoidKernel", "GroupSoftmaxKernel", "QuantizeGroupKernel", "SelectGroupKernel" })
            Assert.That(entries.Any(e => e.Method.Name == method), $"{method} never ran on {backend}");
    }

    [Test]
    public void ScheduleResolves()
    {
        Assert.That(KernelSchedules.Parse("GPU"), Is.EqualTo(KernelSchedule.Gpu));
        Assert.That(KernelSchedules.Parse("auto"), Is.Null);
        Assert.That(() => KernelSchedules.Parse("tpu"), Throws.ArgumentException.With.Message.Contains("tpu"));
        Assert.That(KernelSchedules.Resolve(KernelSchedule.Cpu, cpuLike: false), Is.EqualTo(KernelSchedule.Cpu));
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(KernelSchedules.EnvironmentVariable)))
        {
            Assert.That(KernelSchedules.Resolve(null, cpuLike: true), Is.EqualTo(KernelSchedule.Cpu));
            Assert.That(KernelSchedules.Resolve(null, cpuLike: false), Is.EqualTo(KernelSchedule.Gpu));
        }
    }
}
