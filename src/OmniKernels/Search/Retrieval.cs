using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Search;

/// <summary>
/// Cross-modal retrieval through a session: embed a folder of images into an <see cref="EmbeddingIndex"/>,
/// embed one query of any modality, search. The embeddings are the session's own (projected,
/// L2-normalised, <see cref="OmniResult.Embeddings"/>), so text, speech, video and images share one space.
/// Stateless; thread-safe as the session is.
/// </summary>
public static class Retrieval
{
    /// <summary>The projected embedding of a request carrying exactly one modality.</summary>
    /// <exception cref="ArgumentException">The request carries no or several modalities, or one the model lacks.</exception>
    public static async Task<float[]> EmbedAsync(OmniSession session, OmniRequest request, CancellationToken cancel = default)
    {
        var present = request.Modalities;
        if (present.Count != 1)
            throw new ArgumentException($"a query carries exactly one modality; this one carries {(present.Count == 0 ? "none" : string.Join(", ", present.Select(OmniSession.Name)))}");
        var result = await session.RunAsync(request, cancel).ConfigureAwait(false);
        return result.Embeddings[present[0]];
    }

    /// <summary>
    /// The image files under <paramref name="folder"/> (all depths), judged by content as
    /// <see cref="RequestFiles.DetectFile"/> does, as '/'-separated relative paths in ordinal order.
    /// </summary>
    public static IReadOnlyList<string> ImageFiles(string folder)
    {
        if (!Directory.Exists(folder)) throw new ArgumentException($"{folder}: no such folder");
        return Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(IsImage)
            .Select(f => Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Order(StringComparer.Ordinal)
            .ToArray();
    }

    /// <summary>
    /// Embeds every image of <paramref name="folder"/> (<see cref="ImageFiles"/>) through
    /// <see cref="OmniSession.RunAsync"/>, <paramref name="inFlight"/> requests at a time so that the
    /// session's batcher runs the image tower over them together, and reports (done, total) after
    /// each group to <paramref name="progress"/> (called on the awaiting thread, in order).
    /// </summary>
    /// <exception cref="ArgumentException">No image tower, no images, or an image that does not decode (naming it).</exception>
    public static async Task<EmbeddingIndex> IndexImagesAsync(OmniSession session, string folder, IProgress<(int Done, int Total)>? progress = null,
        int inFlight = 8, CancellationToken cancel = default)
    {
        if (!session.Modalities.Contains(Modality.Image)) throw new ArgumentException($"model {session.ModelName} has no image tower");
        if (inFlight < 1) throw new ArgumentException($"inFlight {inFlight} must be at least 1");
        var files = ImageFiles(folder);
        if (files.Count == 0) throw new ArgumentException($"{folder}: no image files (PNG, JPEG, GIF, BMP or a .npy [3, H, W])");
        int dim = -1, done = 0;
        float[] rows = [];
        foreach (var group in files.Chunk(inFlight))
        {
            var requests = group.Select(f => new OmniRequest { Image = RequestFiles.Image(Path.Combine(folder, f)) }).ToArray();
            var embeddings = await Task.WhenAll(requests.Select(r => EmbedAsync(session, r, cancel))).ConfigureAwait(false);
            if (dim < 0)
            {
                dim = embeddings[0].Length;
                rows = new float[checked(files.Count * dim)];
            }
            foreach (var e in embeddings) e.CopyTo(rows, done++ * dim);
            progress?.Report((done, files.Count));
        }
        return EmbeddingIndex.Create(files, rows, dim);
    }

    /// <summary>Embeds <paramref name="query"/> (one modality) and returns the <paramref name="k"/> nearest items of <paramref name="index"/>, on the session's device.</summary>
    /// <exception cref="ArgumentException">The query is bad, its width is not the index's (another model built it), or k is outside 1..N.</exception>
    public static async Task<SearchHit[]> SearchAsync(OmniSession session, EmbeddingIndex index, OmniRequest query, int k, CancellationToken cancel = default)
    {
        var e = await EmbedAsync(session, query, cancel).ConfigureAwait(false);
        if (e.Length != index.Dimension)
            throw new ArgumentException($"model {session.ModelName} embeds {e.Length} values; the index holds {index.Dimension} per item (was it built with another model?)");
        return session.OnDevice(ctx => index.Search(ctx, e, k));
    }

    private static bool IsImage(string path)
    {
        try
        {
            return RequestFiles.DetectFile(path) == Modality.Image;
        }
        catch (ArgumentException)
        {
            // A .npy of no modality's rank is no image: skipped, as text and audio files are.
            return false;
        }
    }
}
