using System.Runtime.InteropServices;
using System.Text.Json;
using NUnit.Framework;
using OmniKernels.Weights;

namespace OmniKernels.Tests.Weights;

/// <summary>
/// The reader against files the Python writer made (every dtype, scalars, empty tensors, metadata,
/// shards) and against the malformed corpus: each case a one-line SafetensorsFormatException naming
/// the file, the tensor and the problem, with no handle or mapping left open.
/// </summary>
[TestFixture]
public sealed class SafetensorsReaderTests
{
    private string _root = "";
    private string _valid = "";
    private string _bad = "";

    [OneTimeSetUp]
    public void Write()
    {
        _root = Corpus.NewTempDir("safetensors");
        _valid = Path.Combine(_root, "valid");
        _bad = Path.Combine(_root, "bad");
        Corpus.Run("valid", _valid);
        Corpus.Run("malformed", _bad);
    }

    [OneTimeTearDown]
    public void Delete()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private sealed record Expected(string DType, long[] Shape, byte[] Data, byte[]? Float32);

    private Dictionary<string, (Dictionary<string, string> Metadata, Dictionary<string, Expected> Tensors)> Manifest()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_valid, "manifest.json")));
        var result = new Dictionary<string, (Dictionary<string, string>, Dictionary<string, Expected>)>();
        foreach (var f in doc.RootElement.GetProperty("files").EnumerateObject())
        {
            var meta = f.Value.GetProperty("metadata").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            var tensors = f.Value.GetProperty("tensors").EnumerateObject().ToDictionary(p => p.Name, p => new Expected(
                p.Value.GetProperty("dtype").GetString()!,
                p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                Convert.FromBase64String(p.Value.GetProperty("data").GetString()!),
                p.Value.TryGetProperty("float32", out var f32) ? Convert.FromBase64String(f32.GetString()!) : null));
            result[Path.Combine(_valid, f.Name)] = (meta, tensors);
        }
        return result;
    }

    [Test]
    public void ValidFilesReadExactlyAsPythonWroteThem()
    {
        var manifest = Manifest();
        Assert.That(manifest, Has.Count.EqualTo(4));
        foreach (var (path, (metadata, expected)) in manifest)
        {
            using var file = SafetensorsFile.Open(path);
            Assert.That(file.Metadata, Is.EquivalentTo(metadata), path);
            Assert.That(file.Tensors.Select(t => t.Name), Is.EqualTo(expected.Keys.Order(StringComparer.Ordinal)), path);
            foreach (var (name, e) in expected)
            {
                Assert.That(file.TryGetInfo(name, out var info), Is.True, name);
                Assert.That(info.DType.Name(), Is.EqualTo(e.DType), name);
                Assert.That(info.Shape, Is.EqualTo(e.Shape), name);
                Assert.That(info.ByteLength, Is.EqualTo(e.Data.Length), name);
                Assert.That(file.GetBytes(name).ToArray(), Is.EqualTo(e.Data), name);
                if (e.Float32 is null) continue;
                var values = new float[info.ElementCount];
                Array.Fill(values, float.NaN);
                file.ReadAsFloat32(name, values);
                var want = MemoryMarshal.Cast<byte, float>(e.Float32).ToArray();
                for (int i = 0; i < want.Length; i++)
                    if (!(float.IsNaN(want[i]) && float.IsNaN(values[i])))
                        Assert.That(BitConverter.SingleToInt32Bits(values[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(want[i])),
                            $"{name}[{i}]: {values[i]} vs NumPy's {want[i]}");
            }
        }
    }

    [Test]
    public void FloatConversionCoversEveryFloatDTypeAndEdgeValues()
    {
        var (_, tensors) = Manifest()[Path.Combine(_valid, "all.safetensors")];
        Assert.That(tensors.Values.Where(e => e.Float32 is not null).Select(e => e.DType).Distinct(), Is.EquivalentTo(new[] { "F64", "F32", "F16", "BF16" }));
        using var file = SafetensorsFile.Open(Path.Combine(_valid, "all.safetensors"));
        var f16 = new float[file.GetInfo("w.f16").ElementCount];
        file.ReadAsFloat32("w.f16", f16);
        Assert.That(f16.Count(float.IsNaN), Is.EqualTo(1));
        Assert.That(f16.Count(float.IsPositiveInfinity), Is.EqualTo(1));
        Assert.That(f16.Count(v => v != 0 && MathF.Abs(v) < 6.1e-5f), Is.GreaterThan(0), "a half subnormal");
    }

    [Test]
    public void NonFloatAndWrongLengthAreRejected()
    {
        using var file = SafetensorsFile.Open(Path.Combine(_valid, "all.safetensors"));
        var e = Assert.Throws<SafetensorsFormatException>(() => file.ReadAsFloat32("i.i8", new float[14]))!;
        Assert.That(e.Message, Does.Contain("'i.i8' is I8"));
        Assert.Throws<ArgumentException>(() => file.ReadAsFloat32("w.f32", new float[20]));
        var missing = Assert.Throws<SafetensorsFormatException>(() => file.GetBytes("nope"))!;
        Assert.That(missing.Message, Does.Contain("no tensor 'nope'").And.Contain(file.FilePath));
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.GetBytes("w.f32"));
    }

    [Test]
    public void EveryMalformedFileGivesItsOwnOneLineError()
    {
        var cases = Corpus.ReadMalformed(_bad);
        Assert.That(cases, Has.Count.GreaterThanOrEqualTo(40));
        var messages = new List<string>();
        foreach (var c in cases)
        {
            var e = Assert.Throws<SafetensorsFormatException>(() => { using var s = WeightStore.Open(c.Path); }, c.Path)!;
            TestContext.Out.WriteLine(e.Message);
            Assert.That(e.Message, Does.Contain(c.Expect), c.Path);
            Assert.That(e.Message, Does.Contain(Path.GetFullPath(c.Fails)), c.Path);
            Assert.That(e.FilePath, Is.EqualTo(Path.GetFullPath(c.Fails)), c.Path);
            Assert.That(e.Message, Does.Not.Contain("\n").And.Not.Contain("\r"), c.Path);
            if (c.Tensor is not null)
            {
                Assert.That(e.TensorName, Is.EqualTo(c.Tensor), c.Path);
                Assert.That(e.Message, Does.Contain($"'{c.Tensor}'"), c.Path);
            }
            messages.Add(e.Message);
            Assert.That(Corpus.OpenHandlesUnder(_bad), Is.Empty, $"{c.Path} left a handle or mapping open");
        }
        Assert.That(messages.Distinct().Count(), Is.EqualTo(messages.Count));
    }

    [Test]
    public void MalformedSingleFilesFailInSafetensorsFileOpenToo()
    {
        foreach (var c in Corpus.ReadMalformed(_bad).Where(c => c.Path.EndsWith(".safetensors", StringComparison.Ordinal)))
        {
            var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(c.Path).Dispose(), c.Path)!;
            Assert.That(e.Message, Does.StartWith(Path.GetFullPath(c.Path) + ": ").And.Contain(c.Expect), c.Path);
        }
        Assert.That(Corpus.OpenHandlesUnder(_bad), Is.Empty);
    }

    [Test]
    public void MissingFileIsAFormatErrorNamingIt()
    {
        string path = Path.Combine(_root, "does-not-exist.safetensors");
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path))!;
        Assert.That(e.Message, Does.Contain(path));
    }

    [Test]
    public void DisposeClosesTheMapping()
    {
        var file = SafetensorsFile.Open(Path.Combine(_valid, "all.safetensors"));
        Assert.That(Corpus.OpenHandlesUnder(_valid), Is.Not.Empty);
        file.Dispose();
        file.Dispose();
        Assert.That(Corpus.OpenHandlesUnder(_valid), Is.Empty);
    }
}
