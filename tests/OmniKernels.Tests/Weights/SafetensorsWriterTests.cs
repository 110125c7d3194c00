using System.Text.Json;
using NUnit.Framework;
using OmniKernels.Weights;

namespace OmniKernels.Tests.Weights;

/// <summary>What the C# writer writes, read back by the Python reader written from the specification (which also checks the reference layout) and by the C# reader.</summary>
[TestFixture]
public sealed class SafetensorsWriterTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Corpus.NewTempDir("stwriter");

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Random tensors of every dtype, a scalar of each, empty tensors and a zero dimension.</summary>
    internal static SafetensorsWriter EveryKind(int seed, out Dictionary<string, (SafetensorsDType DType, long[] Shape, byte[] Data)> added)
    {
        var rng = new Random(seed);
        var writer = new SafetensorsWriter();
        added = new();
        foreach (var dtype in Enum.GetValues<SafetensorsDType>())
        {
            foreach (long[] shape in new[] { new long[] { 3, 5 }, [], [7], [2, 0, 4], [0] })
            {
                string name = $"t.{dtype.Name().ToLowerInvariant()}.{string.Join("x", shape)}d{shape.Length}";
                long count = shape.Aggregate(1L, (a, b) => a * b);
                var data = new byte[count * dtype.Size()];
                rng.NextBytes(data);
                if (dtype == SafetensorsDType.BOOL) for (int i = 0; i < data.Length; i++) data[i] &= 1;
                writer.Add(name, dtype, shape, data);
                added[name] = (dtype, shape, data);
            }
        }
        writer.Metadata["format"] = "pt";
        writer.Metadata["ключ"] = "значение \"quoted\" <tag> & +";
        return writer;
    }

    [Test]
    public void PythonReadsEveryDTypeScalarAndEmptyTensorBack()
    {
        string path = Path.Combine(_dir, "every.safetensors");
        var writer = EveryKind(16, out var added);
        long bytes = writer.Write(path);
        Assert.That(new FileInfo(path).Length, Is.EqualTo(bytes));

        using var doc = JsonDocument.Parse(Corpus.Run("read", path));
        var file = doc.RootElement.GetProperty(path);
        Assert.That(file.GetProperty("metadata").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()), Is.EquivalentTo(writer.Metadata));
        var tensors = file.GetProperty("tensors");
        Assert.That(tensors.EnumerateObject().Select(p => p.Name), Is.EquivalentTo(added.Keys));
        foreach (var (name, (dtype, shape, data)) in added)
        {
            var t = tensors.GetProperty(name);
            Assert.That(t.GetProperty("dtype").GetString(), Is.EqualTo(dtype.Name()), name);
            Assert.That(t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), Is.EqualTo(shape), name);
            Assert.That(Convert.FromBase64String(t.GetProperty("data").GetString()!), Is.EqualTo(data), name);
        }
    }

    [Test]
    public void CSharpReadsItsOwnFileBack()
    {
        string path = Path.Combine(_dir, "every.safetensors");
        EveryKind(17, out var added).Write(path);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Tensors.Select(t => t.Name), Is.EqualTo(added.Keys.Order(StringComparer.Ordinal)));
        foreach (var (name, (dtype, shape, data)) in added)
        {
            var info = file.GetInfo(name);
            Assert.That((info.DType, info.Shape), Is.EqualTo((dtype, shape)), name);
            Assert.That(info.DataBegin % dtype.Size(), Is.Zero, $"{name} is not aligned to its element size");
            Assert.That(file.GetBytes(name).ToArray(), Is.EqualTo(data), name);
        }
    }

    [Test]
    public void AnEmptyWriterWritesAValidFile()
    {
        string path = Path.Combine(_dir, "empty.safetensors");
        new SafetensorsWriter().Write(path);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Tensors, Is.Empty);
        Assert.That(Corpus.Run("read", path), Does.Contain("\"tensors\": {}"));
    }

    [Test]
    public void BadAddsAreRejected()
    {
        var w = new SafetensorsWriter();
        w.AddFloat32("a", [2], [1f, 2f]);
        Assert.Throws<ArgumentException>(() => w.AddFloat32("a", [2], [1f, 2f]), "duplicate");
        Assert.Throws<ArgumentException>(() => w.AddFloat32("b", [3], [1f, 2f]), "length");
        Assert.Throws<ArgumentException>(() => w.AddFloat32("c", [-1], []), "negative");
        Assert.Throws<ArgumentException>(() => w.AddFloat32("__metadata__", [1], [1f]), "reserved");
        Assert.Throws<ArgumentException>(() => w.AddFloat32("", [1], [1f]), "empty");
    }

    [Test]
    public void AFailedWriteLeavesNothingAndKeepsTheOldFile()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        File.WriteAllText(path, "old contents");
        var w = new SafetensorsWriter();
        w.AddFloat32("x", [2], [1f, 2f]);
        Assert.Throws<DirectoryNotFoundException>(() => w.Write(Path.Combine(_dir, "missing", "m.safetensors")));
        Directory.CreateDirectory(Path.Combine(_dir, "adir"));
        Assert.Throws<IOException>(() => w.Write(Path.Combine(_dir, "adir")));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }));
        Assert.That(File.ReadAllText(path), Is.EqualTo("old contents"));

        // A successful write replaces the file whole, and an open reader keeps the old mapping.
        w.Write(path);
        using (var first = SafetensorsFile.Open(path))
        {
            var w2 = new SafetensorsWriter();
            w2.AddFloat32("y", [1], [5f]);
            w2.Write(path);
            Assert.That(first.GetBytes("x").Length, Is.EqualTo(8));
        }
        using var second = SafetensorsFile.Open(path);
        Assert.That(second.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "y" }));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }));
    }
}
