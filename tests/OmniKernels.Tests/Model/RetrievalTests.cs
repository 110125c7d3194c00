using NUnit.Framework;
using OmniKernels.Search;
using OmniKernels.Session;

namespace OmniKernels.Tests.Model;

/// <summary>
/// <see cref="Retrieval"/> on tiny-omni: the index built through the batched path holds, row for row,
/// what each image gives when run alone; a query must carry exactly one modality.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RetrievalTests
{
    private static string Inputs => Path.Combine(ModelParityTests.ModelDir("tiny-omni"), "vectors", "inputs");

    [Test]
    public void BatchedIndexEqualsImagesRunAlone()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"omni-retrieval-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            foreach (var f in new[] { "image_png.png", "image_i0.npy", "image_i1.npy" }) File.Copy(Path.Combine(Inputs, f), Path.Combine(dir, f));
            // No feature cache: the runs alone must compute, not replay what indexing stored.
            using var session = OmniSession.Load(ModelParityTests.ModelDir("tiny-omni"), new OmniSessionOptions { FeatureCacheBytes = 0 });
            var reports = new List<(int, int)>();
            var index = Retrieval.IndexImagesAsync(session, dir, new Collect(reports), inFlight: 2).GetAwaiter().GetResult();
            Assert.That(reports, Is.EqualTo(new[] { (2, 3), (3, 3) }));
            Assert.That(index.Files, Is.EqualTo(new[] { "image_i0.npy", "image_i1.npy", "image_png.png" }));
            for (int r = 0; r < index.Count; r++)
            {
                var alone = session.Run(new OmniRequest { Image = RequestFiles.Image(Path.Combine(dir, index.Files[r])) }).Embeddings[OmniKernels.Model.Modality.Image];
                Assert.That(index.Embedding(r).ToArray(), Is.EqualTo(alone).Within(1e-5), index.Files[r]);
            }
            var e = Assert.Throws<ArgumentException>(() => Retrieval.EmbedAsync(session, new OmniRequest { Text = "a cat", Image = RequestFiles.Image(Path.Combine(dir, "image_png.png")) }).GetAwaiter().GetResult())!;
            Assert.That(e.Message, Does.Contain("exactly one modality").And.Contain("image").And.Contain("text"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private sealed class Collect(List<(int, int)> into) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => into.Add(value);
    }
}
