using NUnit.Framework;
using OmniKernels.Weights;

namespace OmniKernels.Tests.Weights;

/// <summary>Scoped, shape-checked lookup over single files and shards written by the Python writer.</summary>
[TestFixture]
public sealed class WeightStoreTests
{
    private string _root = "";

    [OneTimeSetUp]
    public void Write()
    {
        _root = Corpus.NewTempDir("weightstore");
        Corpus.Run("valid", _root);
    }

    [OneTimeTearDown]
    public void Delete()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private string Sharded => Path.Combine(_root, "sharded");

    [Test]
    public void ShardedCheckpointOpensFromTheFolderTheIndexOrAShard()
    {
        foreach (var path in new[] { Sharded, Path.Combine(Sharded, WeightStore.IndexFileName) })
        {
            using var store = WeightStore.Open(path);
            Assert.That(store.Files, Has.Count.EqualTo(2));
            Assert.That(store.All.Select(t => t.Name), Is.EqualTo(new[]
            {
                "vision_model.encoder.layers.0.mlp.fc1.bias", "vision_model.encoder.layers.0.mlp.fc1.weight",
                "vision_model.encoder.layers.1.mlp.fc1.weight", "vision_model.post_layernorm.weight",
            }));
            Assert.That(store.All.Select(t => Path.GetFileName(t.FilePath)).Distinct().Count(), Is.EqualTo(2));
        }
        using var one = WeightStore.Open(Path.Combine(Sharded, "model-00002-of-00002.safetensors"));
        Assert.That(one.All, Has.Count.EqualTo(2));
    }

    [Test]
    public void ScopesJoinWithDotsAndReadAcrossShards()
    {
        using var store = WeightStore.Open(Sharded);
        using var shard1 = SafetensorsFile.Open(Path.Combine(Sharded, "model-00001-of-00002.safetensors"));
        using var shard2 = SafetensorsFile.Open(Path.Combine(Sharded, "model-00002-of-00002.safetensors"));
        var vm = store.Scope("vision_model");
        Assert.That(vm.Prefix, Is.EqualTo("vision_model"));
        var layer0 = vm.Pp("encoder.layers.0").Pp("mlp");
        Assert.That(layer0.Prefix, Is.EqualTo("vision_model.encoder.layers.0.mlp"));
        Assert.That(layer0.Contains("fc1.weight"), Is.True);
        Assert.That(layer0.Contains("fc2.weight"), Is.False);

        var w0 = layer0.GetFloat32([8, 4], "fc1.weight");
        var expected0 = new float[32];
        shard1.ReadAsFloat32("vision_model.encoder.layers.0.mlp.fc1.weight", expected0);
        Assert.That(w0, Is.EqualTo(expected0));

        // F16 in the second shard, converted on the way.
        var w1 = new float[32];
        Array.Fill(w1, float.NaN);
        store.Root.Pp("vision_model.encoder.layers.1.mlp").ReadFloat32([8, 4], "fc1.weight", w1);
        var expected1 = new float[32];
        shard2.ReadAsFloat32("vision_model.encoder.layers.1.mlp.fc1.weight", expected1);
        Assert.That(w1, Is.EqualTo(expected1));
        Assert.That(store.Scope("vision_model.encoder.layers.1.mlp").Info("fc1.weight").DType, Is.EqualTo(SafetensorsDType.F16));

        Assert.That(store.Unused(), Is.EqualTo(new[] { "vision_model.encoder.layers.0.mlp.fc1.bias", "vision_model.post_layernorm.weight" }));
    }

    [Test]
    public void WrongShapeNamesTheTensorTheFileAndBothShapes()
    {
        using var store = WeightStore.Open(Sharded);
        var e = Assert.Throws<SafetensorsFormatException>(() => store.Scope("vision_model.encoder.layers.0.mlp").GetFloat32([4, 8], "fc1.weight"))!;
        Assert.That(e.Message, Is.EqualTo(
            $"tensor 'vision_model.encoder.layers.0.mlp.fc1.weight': expected [4, 8], found [8, 4] in {Path.Combine(Sharded, "model-00001-of-00002.safetensors")}"));
        Assert.That(e.TensorName, Is.EqualTo("vision_model.encoder.layers.0.mlp.fc1.weight"));
    }

    [Test]
    public void MissingNameNamesTheFullNameTheFilesAndNeighbours()
    {
        using var store = WeightStore.Open(Sharded);
        var e = Assert.Throws<SafetensorsFormatException>(() => store.Scope("vision_model.encoder.layers.0.mlp").Info("fc2.weight"))!;
        Assert.That(e.Message, Does.StartWith("tensor 'vision_model.encoder.layers.0.mlp.fc2.weight' not found in "));
        Assert.That(e.Message, Does.Contain(WeightStore.IndexFileName).And.Contain("2 shards").And.Contain("fc1.weight"));
        Assert.That(store.Unused(), Has.Count.EqualTo(4), "a failed lookup marks nothing used");
    }

    [Test]
    public void Int8AndDTypeChecks()
    {
        using var store = WeightStore.Open(Path.Combine(_root, "all.safetensors"));
        using var file = SafetensorsFile.Open(Path.Combine(_root, "all.safetensors"));
        var q = store.Scope("i").GetInt8([2, 7], "i8");
        Assert.That(q.Select(v => (byte)v), Is.EqualTo(file.GetBytes("i.i8").ToArray()));
        var e = Assert.Throws<SafetensorsFormatException>(() => store.Scope("w").GetInt8([7, 3], "f32"))!;
        Assert.That(e.Message, Does.Contain("expected I8, found F32"));
        var f = Assert.Throws<SafetensorsFormatException>(() => store.Scope("i").GetFloat32([2, 7], "i8"))!;
        Assert.That(f.Message, Does.Contain("is I8"));
        Assert.That(store.Root.GetBytes([4, 2], SafetensorsDType.I64, "i.i64").ToArray(), Is.EqualTo(file.GetBytes("i.i64").ToArray()));
        Assert.That(store.Root.GetFloat32([], "scalar.f32"), Is.EqualTo(new[] { 3.25f }));
        Assert.That(store.Root.GetFloat32([3, 0, 2], "empty.zero_dim"), Is.Empty);
        Assert.That(store.Scope("unicode").Info("名前.é").Shape, Is.EqualTo(new long[] { 3 }));
    }

    [Test]
    public void FolderWithASingleFileIsPreferredOverItsIndex()
    {
        string dir = Corpus.NewTempDir("prefer");
        try
        {
            File.Copy(Path.Combine(_root, "all.safetensors"), Path.Combine(dir, WeightStore.SingleFileName));
            File.WriteAllText(Path.Combine(dir, WeightStore.IndexFileName), "not even json");
            using var store = WeightStore.Open(dir);
            Assert.That(store.Source, Is.EqualTo(Path.Combine(dir, WeightStore.SingleFileName)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
