using NUnit.Framework;
using OmniKernels.IO;
using OmniKernels.Kernels;
using OmniKernels.Search;

namespace OmniKernels.Tests;

/// <summary>
/// Retrieval scoring against NumPy's ranking (vectors from tools/make_topk_vectors.py: planted exact
/// ties that the lower index must win), on every backend and on the CPU devices forced onto the GPU
/// schedule; NaN scores; k &gt; N; and <see cref="EmbeddingIndex"/>'s files: round trip, replacement,
/// and each corrupt or mismatched file giving its own error.
/// </summary>
[TestFixture]
public sealed class TopKTests
{
    public static IEnumerable<string> Names => Backends.Names.Concat(Backends.GpuScheduledNames);

    private static NpyArray Vector(string name) =>
        NpyFile.Read(Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", $"topk_{name}.npy"));

    private static (float[] Index, float[] Queries, int N, int E, int Q, int K, int[] Ids, double[] Scores) Vectors()
    {
        var index = Vector("index");
        var queries = Vector("queries");
        var ids = Vector("expected_indices");
        return ((float[])index.Data, (float[])queries.Data, (int)index.Shape[0], (int)index.Shape[1], (int)queries.Shape[0], (int)ids.Shape[1],
            ids.ToInt32("expected_indices"), (double[])Vector("expected_scores").Data);
    }

    [TestCaseSource(nameof(Names))]
    public void KernelMatchesNumPyRanking(string backend)
    {
        var ctx = Backends.Get(backend);
        var v = Vectors();
        using var rows = Tensor.FromHost<float>(ctx, v.Index, new Shape(v.N, v.E));
        using var packed = PackedMatrix.Pack(ctx, rows.View, transposed: true);
        using var q = Tensor.FromHost<float>(ctx, v.Queries, new Shape(v.Q, v.E));
        using var scores = Tensor.Allocate(ctx, DType.F32, new Shape(v.Q, v.N), GemmKernel.PanelWidth);
        using var ids = Tensor.FromHost<int>(ctx, Enumerable.Repeat(-1, v.Q * v.K).ToArray(), new Shape(v.Q, v.K));
        using var values = Tensor.Allocate(ctx, DType.F32, new Shape(v.Q, v.K));
        ElementwiseKernel.Fill(ctx, values.View, float.NaN);
        TopKKernel.Search(ctx, q.View, packed.View, scores.View, v.K, ids.View, values.View);
        ctx.Synchronize();
        Assert.That(ids.ToArray<int>(), Is.EqualTo(v.Ids), $"{backend}: ranking");
        var got = values.ToArray<float>();
        for (int i = 0; i < got.Length; i++)
            Assert.That(got[i], Is.EqualTo(v.Scores[i]).Within(1e-5), $"{backend}: score {i}");
    }

    [TestCaseSource(nameof(Names))]
    public void IndexSearchMatchesNumPyRanking(string backend)
    {
        var v = Vectors();
        var files = Enumerable.Range(0, v.N).Select(i => $"img/{i:D3}.png").ToArray();
        var index = EmbeddingIndex.Create(files, v.Index, v.E);
        var hits = index.SearchMany(Backends.Get(backend), v.Queries, v.Q, v.K);
        for (int qi = 0; qi < v.Q; qi++)
        {
            Assert.That(hits[qi].Select(h => h.Row), Is.EqualTo(v.Ids.Skip(qi * v.K).Take(v.K)), $"{backend}: query {qi}");
            Assert.That(hits[qi].Select(h => h.Rank), Is.EqualTo(Enumerable.Range(1, v.K)));
            Assert.That(hits[qi].Select(h => h.File), Is.EqualTo(hits[qi].Select(h => files[h.Row])));
        }
    }

    [TestCaseSource(nameof(Names))]
    public void NaNRanksLastAndTiesGoToLowerIndex(string backend)
    {
        var ctx = Backends.Get(backend);
        float[] s = [0.5f, float.NaN, 0.9f, 0.5f, -1f, float.NaN, 0.9f];
        // The stated order, written independently of the kernel: score descending (NaN lowest), then index.
        var expected = Enumerable.Range(0, s.Length).OrderByDescending(i => float.IsNaN(s[i]) ? float.NegativeInfinity : s[i]).ThenBy(i => i).ToArray();
        using var scores = Tensor.FromHost<float>(ctx, s, new Shape(1, s.Length));
        using var ids = Tensor.Allocate(ctx, DType.I32, new Shape(1, s.Length));
        using var values = Tensor.Allocate(ctx, DType.F32, new Shape(1, s.Length));
        TopKKernel.Select(ctx, scores.View, s.Length, ids.View, values.View);
        ctx.Synchronize();
        Assert.That(ids.ToArray<int>(), Is.EqualTo(expected));
    }

    [Test]
    public void KAboveNNamesBoth()
    {
        var ctx = Backends.All[0];
        using var scores = Tensor.Allocate(ctx, DType.F32, new Shape(2, 5));
        using var ids = Tensor.Allocate(ctx, DType.I32, new Shape(2, 6));
        using var values = Tensor.Allocate(ctx, DType.F32, new Shape(2, 6));
        var e = Assert.Throws<ArgumentException>(() => TopKKernel.Select(ctx, scores.View, 6, ids.View, values.View))!;
        Assert.That(e.Message, Does.Contain("k = 6").And.Contain("5"));
        var index = EmbeddingIndex.Create(["a", "b"], [1f, 0f, 0f, 1f], 2);
        e = Assert.Throws<ArgumentException>(() => index.Search(ctx, [1f, 0f], 3))!;
        Assert.That(e.Message, Does.Contain("k = 3").And.Contain("2 items"));
    }

    private static string TempDir() => Path.Combine(Path.GetTempPath(), $"omni-index-{Guid.NewGuid():N}");

    private static EmbeddingIndex Small()
    {
        var v = Vectors();
        return EmbeddingIndex.Create(Enumerable.Range(0, 5).Select(i => $"sub dir/é{i}.png").ToArray(), v.Index.AsSpan(0, 5 * v.E), v.E);
    }

    [Test]
    public void SaveLoadRoundTripsAndReplacesAnOlderIndex()
    {
        string dir = TempDir();
        try
        {
            var v = Vectors();
            EmbeddingIndex.Create(["old.png"], v.Index.AsSpan(0, v.E), v.E).Save(dir);
            var index = Small();
            index.Save(dir);
            var back = EmbeddingIndex.Load(dir);
            Assert.That(back.Files, Is.EqualTo(index.Files));
            Assert.That(back.Dimension, Is.EqualTo(index.Dimension));
            for (int r = 0; r < index.Count; r++) Assert.That(back.Embedding(r).ToArray(), Is.EqualTo(index.Embedding(r).ToArray()));
            Assert.That(Directory.GetFileSystemEntries(Path.GetDirectoryName(dir)!, $".{Path.GetFileName(dir)}*"), Is.Empty, "no temporary folder left");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Test]
    public void SaveRefusesAFolderThatIsNotAnIndex()
    {
        string dir = TempDir();
        try
        {
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "photo.png"), "x");
            var e = Assert.Throws<IOException>(() => Small().Save(dir))!;
            Assert.That(e.Message, Does.Contain("holds more than an index"));
            Assert.That(File.Exists(Path.Combine(dir, "photo.png")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    public static IEnumerable<TestCaseData> Corruptions()
    {
        TestCaseData C(string name, Action<string> damage, string message) => new TestCaseData(damage, message).SetName($"Load_{name}");
        string Npy(string d) => Path.Combine(d, EmbeddingIndex.EmbeddingsFile);
        string List(string d) => Path.Combine(d, EmbeddingIndex.FilesFile);
        yield return C("missing_file_list", d => File.Delete(List(d)), "files.txt: missing");
        yield return C("missing_embeddings", d => File.Delete(Npy(d)), "embeddings.npy: missing");
        yield return C("fewer_files_than_rows", d => File.WriteAllText(List(d), "a\nb\n"), "lists 2 files; ");
        yield return C("list_without_final_newline", d => File.WriteAllText(List(d), File.ReadAllText(List(d)).TrimEnd('\n')), "truncated");
        yield return C("duplicate_file", d => File.WriteAllText(List(d), "a\nb\nc\nd\na\n"), "'a' is listed twice");
        yield return C("truncated_npy", d =>
        {
            var b = File.ReadAllBytes(Npy(d));
            File.WriteAllBytes(Npy(d), b[..(b.Length - 7)]);
        }, "embeddings.npy");
        yield return C("float64_npy", d => NpyFile.Write(Npy(d), new NpyArray(NpyDType.Float64, [5, 2], new double[10])), "must be float32 [N, E]");
        yield return C("rank1_npy", d => NpyFile.Write(Npy(d), new NpyArray(NpyDType.Float32, [5], new float[5])), "must be float32 [N, E]");
        yield return C("row_not_normalised", d =>
        {
            var a = NpyFile.Read(Npy(d));
            var x = (float[])a.Data;
            for (int i = 0; i < a.Shape[1]; i++) x[3 * a.Shape[1] + i] *= 2;
            NpyFile.Write(Npy(d), a);
        }, "row 3");
        yield return C("not_a_folder", d =>
        {
            Directory.Delete(d, true);
            File.WriteAllText(d, "x");
        }, "is a file");
    }

    [TestCaseSource(nameof(Corruptions))]
    public void LoadNamesWhatIsWrong(Action<string> damage, string message)
    {
        string dir = TempDir();
        try
        {
            Small().Save(dir);
            damage(dir);
            var e = Assert.Throws<IndexFormatException>(() => EmbeddingIndex.Load(dir))!;
            Assert.That(e.Message, Does.Contain(message));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            else if (File.Exists(dir)) File.Delete(dir);
        }
    }

    [Test]
    public void CreateRejectsBadRows()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => EmbeddingIndex.Create(["a", "b"], [1f, 0f, 0.5f, 0f], 2))!.Message, Does.Contain("row 1 (b)").And.Contain("norm"));
        Assert.That(Assert.Throws<ArgumentException>(() => EmbeddingIndex.Create(["a"], [float.NaN, 0f], 2))!.Message, Does.Contain("row 0 (a) holds NaN"));
        Assert.That(Assert.Throws<ArgumentException>(() => EmbeddingIndex.Create(["a", "b"], [1f, 0f], 2))!.Message, Does.Contain("not 2 rows of 2"));
    }
}
