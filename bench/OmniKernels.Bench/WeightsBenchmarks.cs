using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using OmniKernels.Weights;

namespace OmniKernels.Bench;

/// <summary>
/// The weights loader on a ViT-B/16-sized checkpoint (CLIP vision tower names, about 86 M parameters,
/// 343 MB of fp32), generated on the first run into <c>bench/generated/</c> (ignored by git) as fp32 and
/// bf16 files: opening and validating it, and opening it and reading every tensor as float32 into one
/// reused buffer, from the page cache (the files are read once in setup). "file GB/s" counts the tensor
/// bytes read from the file. The setup also measures the peak of live managed memory while every tensor
/// is read with <see cref="WeightScope.GetFloat32"/> (a new array per tensor, dropped after use): with a
/// memory-mapped reader it stays one tensor above the baseline, nothing copies the whole file.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Columns))]
public class WeightsBenchmarks
{
    public static string Folder => Path.Combine(BenchSetup.RepoRoot(), "bench", "generated");
    public static string Fp32Path => Path.Combine(Folder, "vit_b16_fp32.safetensors");
    public static string Bf16Path => Path.Combine(Folder, "vit_b16_bf16.safetensors");
    private static string MemoryReport => Path.Combine(Folder, "weights-memory.txt");

    private float[] _buffer = [];

    /// <summary>The tensors of a ViT-B/16 image tower, named as Hugging Face's CLIP vision model names them.</summary>
    public static List<(string Name, long[] Shape)> VitB16()
    {
        const int hidden = 768, mlp = 3072, layers = 12, positions = 197;
        const string p = "vision_model.";
        var t = new List<(string, long[])>
        {
            (p + "embeddings.patch_embedding.weight", [hidden, 3, 16, 16]), (p + "embeddings.class_embedding", [hidden]),
            (p + "embeddings.position_embedding.weight", [positions, hidden]),
            (p + "pre_layrnorm.weight", [hidden]), (p + "pre_layrnorm.bias", [hidden]),
            (p + "post_layernorm.weight", [hidden]), (p + "post_layernorm.bias", [hidden]),
        };
        for (int i = 0; i < layers; i++)
        {
            string l = $"{p}encoder.layers.{i}.";
            foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
            {
                t.Add((l + $"self_attn.{proj}.weight", [hidden, hidden]));
                t.Add((l + $"self_attn.{proj}.bias", [hidden]));
            }
            t.Add((l + "mlp.fc1.weight", [mlp, hidden])); t.Add((l + "mlp.fc1.bias", [mlp]));
            t.Add((l + "mlp.fc2.weight", [hidden, mlp])); t.Add((l + "mlp.fc2.bias", [hidden]));
            foreach (var ln in new[] { "layer_norm1", "layer_norm2" })
            {
                t.Add((l + ln + ".weight", [hidden])); t.Add((l + ln + ".bias", [hidden]));
            }
        }
        return t;
    }

    public static long Elements => VitB16().Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    [GlobalSetup]
    public void Setup()
    {
        if (!File.Exists(Fp32Path) || !File.Exists(Bf16Path)) Generate();
        long largest = 0;
        using (var store = WeightStore.Open(Fp32Path))
        {
            largest = store.All.Max(t => t.ElementCount);
            if (store.All.Sum(t => t.ElementCount) != Elements)
                throw new InvalidOperationException($"{Fp32Path} does not hold ViT-B/16; delete {Folder} to regenerate");
        }
        _buffer = new float[largest];
        ReadAll(Fp32Path);
        ReadAll(Bf16Path);
        File.WriteAllText(MemoryReport, string.Create(CultureInfo.InvariantCulture,
            $"{PeakLiveAbove(Fp32Path)} {PeakLiveAbove(Bf16Path)} {largest * sizeof(float)}\n"));
    }

    [Benchmark(Description = "open + validate (fp32 file)")]
    public int Open()
    {
        using var file = SafetensorsFile.Open(Fp32Path);
        return file.Tensors.Count;
    }

    [Benchmark(Description = "open + read all as float32 (fp32 file)")]
    public long ReadFp32() => ReadAll(Fp32Path);

    [Benchmark(Description = "open + read all as float32 (bf16 file)")]
    public long ReadBf16() => ReadAll(Bf16Path);

    private long ReadAll(string path)
    {
        using var store = WeightStore.Open(path);
        long n = 0;
        foreach (var t in store.All)
        {
            var span = _buffer.AsSpan(0, (int)t.ElementCount);
            store.Root.ReadFloat32(t.Shape, t.Name, span);
            n += span.Length;
        }
        return n;
    }

    /// <summary>The most live managed memory above the baseline while reading every tensor into a new array (forced collections: live, not garbage).</summary>
    private static long PeakLiveAbove(string path)
    {
        using var store = WeightStore.Open(path);
        long baseline = GC.GetTotalMemory(forceFullCollection: true), peak = 0;
        foreach (var t in store.All)
        {
            var values = store.Root.GetFloat32(t.Shape, t.Name);
            peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true) - baseline);
            GC.KeepAlive(values);
        }
        return peak;
    }

    private static void Generate()
    {
        Directory.CreateDirectory(Folder);
        var rng = new Random(1616);
        var fp32 = new SafetensorsWriter();
        var bf16 = new SafetensorsWriter();
        foreach (var (name, shape) in VitB16())
        {
            var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < values.Length; i++) values[i] = (rng.NextSingle() * 2 - 1) * 0.05f + 1e-4f;
            fp32.AddFloat32(name, shape, values);
            // bf16 by truncation: benchmark data only (the loader itself never writes bf16).
            var bits = MemoryMarshal.Cast<float, uint>(values.AsSpan());
            TensorPrimitives.ShiftRightLogical(bits, 16, bits);
            var halves = new ushort[values.Length];
            TensorPrimitives.ConvertTruncating<uint, ushort>(bits, halves);
            bf16.Add(name, SafetensorsDType.BF16, shape, MemoryMarshal.AsBytes(halves.AsSpan()));
        }
        fp32.Write(Fp32Path);
        bf16.Write(Bf16Path);
    }

    private sealed class Columns : BenchmarkDotNet.Configs.ManualConfig
    {
        public Columns() => AddColumn(new FileGBps(), new PeakMemory());
    }

    private sealed class FileGBps : IColumn
    {
        public string Id => nameof(FileGBps);
        public string ColumnName => "file GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "tensor bytes read from the file per second";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            int bytesPer = benchmarkCase.Descriptor.WorkloadMethod.Name switch { nameof(ReadFp32) => 4, nameof(ReadBf16) => 2, _ => 0 };
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (bytesPer == 0 || stats is null) return "-";
            return (Elements * bytesPer / stats.Mean).ToString("F2", CultureInfo.InvariantCulture);
        }
    }

    private sealed class PeakMemory : IColumn
    {
        public string Id => nameof(PeakMemory);
        public string ColumnName => "peak live managed / largest tensor";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 1;
        public bool IsNumeric => false;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "most live managed memory above the baseline while reading every tensor into a new float32 array, and the largest tensor as float32";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            if (!File.Exists(MemoryReport)) return "?";
            var v = File.ReadAllText(MemoryReport).Split(' ', StringSplitOptions.TrimEntries).Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            long peak = benchmarkCase.Descriptor.WorkloadMethod.Name switch { nameof(ReadFp32) => v[0], nameof(ReadBf16) => v[1], _ => -1 };
            return peak < 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{peak / 1e6:F2} MB / {v[2] / 1e6:F2} MB");
        }
    }
}
