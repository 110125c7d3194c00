using System.Text;
using OmniKernels.IO;
using OmniKernels.Kernels;

namespace OmniKernels.Search;

/// <summary>One result of <see cref="EmbeddingIndex.Search"/>: its 1-based rank, cosine score, file and row.</summary>
public sealed record SearchHit(int Rank, float Score, string File, int Row);

/// <summary>A saved index is missing, malformed, or does not match itself; the message names the file and what is wrong.</summary>
public sealed class IndexFormatException(string message) : Exception(message);

/// <summary>
/// A retrieval index: N L2-normalised embeddings [N, E] and the file each came from. On disk a folder
/// holding <c>embeddings.npy</c> (float32 [N, E]) and <c>files.txt</c> (N relative paths, one a line,
/// UTF-8, '/' separated). Immutable once built; every member is thread-safe. Owns host arrays only.
/// </summary>
public sealed class EmbeddingIndex
{
    /// <summary>File name of the embeddings inside an index folder.</summary>
    public const string EmbeddingsFile = "embeddings.npy";

    /// <summary>File name of the file list inside an index folder.</summary>
    public const string FilesFile = "files.txt";

    /// <summary>How far a row's L2 norm may stray from 1 (float32 rounding of a normalised vector is far inside it).</summary>
    public const float NormTolerance = 1e-3f;

    private readonly float[] _embeddings;
    private readonly string[] _files;

    private EmbeddingIndex(float[] embeddings, string[] files, int dimension)
    {
        _embeddings = embeddings;
        _files = files;
        Dimension = dimension;
    }

    /// <summary>Number of items.</summary>
    public int Count => _files.Length;

    /// <summary>Embedding width E.</summary>
    public int Dimension { get; }

    /// <summary>The file of each row.</summary>
    public IReadOnlyList<string> Files => _files;

    /// <summary>Row <paramref name="row"/>'s embedding; valid as long as the index.</summary>
    public ReadOnlySpan<float> Embedding(int row) => _embeddings.AsSpan(checked(row * Dimension), Dimension);

    /// <summary>
    /// An index over <paramref name="files"/> and their embeddings (row-major [files.Count, dimension],
    /// copied). Every row must be finite with an L2 norm within <see cref="NormTolerance"/> of 1; a file
    /// name must be non-empty, single-line and unique.
    /// </summary>
    /// <exception cref="ArgumentException">Naming the row or file that is wrong.</exception>
    public static EmbeddingIndex Create(IReadOnlyList<string> files, ReadOnlySpan<float> embeddings, int dimension)
    {
        var error = Check(files, embeddings, dimension);
        if (error is not null) throw new ArgumentException(error);
        return new EmbeddingIndex(embeddings.ToArray(), files.ToArray(), dimension);
    }

    /// <summary>
    /// Writes the index folder <paramref name="path"/> so that no reader sees it half-written: both
    /// files go to a new sibling folder, which then takes the place of <paramref name="path"/> (an older
    /// index there is moved aside first and deleted after). A <paramref name="path"/> that exists and is
    /// not an index folder is left alone.
    /// </summary>
    /// <exception cref="IOException">The folder cannot be written, or <paramref name="path"/> is something else.</exception>
    public void Save(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        if (File.Exists(full)) throw new IOException($"{path} is a file; an index is a folder");
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any(e => Path.GetFileName(e) is not (EmbeddingsFile or FilesFile)))
            throw new IOException($"{path} exists and holds more than an index ({EmbeddingsFile}, {FilesFile}); not replacing it");
        string parent = Path.GetDirectoryName(full) ?? throw new IOException($"{path}: no parent folder");
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        string? old = null;
        try
        {
            Directory.CreateDirectory(temp);
            NpyFile.Write(Path.Combine(temp, EmbeddingsFile), new NpyArray(NpyDType.Float32, [Count, Dimension], _embeddings));
            using (var f = new FileStream(Path.Combine(temp, FilesFile), FileMode.CreateNew, FileAccess.Write))
            {
                f.Write(new UTF8Encoding(false).GetBytes(string.Concat(_files.Select(n => n + "\n"))));
                f.Flush(flushToDisk: true);
            }
            if (Directory.Exists(full))
            {
                old = Path.Combine(parent, $".{Path.GetFileName(full)}.old-{Guid.NewGuid():N}");
                Directory.Move(full, old);
            }
            Directory.Move(temp, full);
        }
        catch
        {
            if (old is not null && !Directory.Exists(full)) Directory.Move(old, full);
            old = null;
            TryDelete(temp);
            throw;
        }
        if (old is not null) TryDelete(old);
    }

    /// <summary>Reads an index folder written by <see cref="Save"/>, checking shape, count and every row.</summary>
    /// <exception cref="IndexFormatException">Naming the file and what is wrong.</exception>
    public static EmbeddingIndex Load(string path)
    {
        if (!Directory.Exists(path))
            throw new IndexFormatException(File.Exists(path) ? $"{path} is a file; an index is a folder holding {EmbeddingsFile} and {FilesFile}" : $"{path}: no such index folder");
        string npy = Path.Combine(path, EmbeddingsFile), list = Path.Combine(path, FilesFile);
        foreach (var f in new[] { npy, list })
            if (!File.Exists(f)) throw new IndexFormatException($"{f}: missing; an index folder holds {EmbeddingsFile} and {FilesFile}");
        NpyArray a;
        try
        {
            a = NpyFile.Read(npy);
        }
        catch (NpyFormatException e)
        {
            throw new IndexFormatException(e.Message);
        }
        if (a.DType != NpyDType.Float32 || a.Shape.Count != 2)
            throw new IndexFormatException($"{npy}: must be float32 [N, E], got {a}");
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(list));
        }
        catch (DecoderFallbackException)
        {
            throw new IndexFormatException($"{list}: not UTF-8 text");
        }
        if (text.Length > 0 && !text.EndsWith('\n')) throw new IndexFormatException($"{list}: truncated (the last line has no newline)");
        var files = text.Length == 0 ? [] : text[..^1].Split('\n');
        if (files.Length != a.Shape[0])
            throw new IndexFormatException($"{list} lists {files.Length} files; {npy} holds {a.Shape[0]} embeddings");
        var data = (float[])a.Data;
        var error = Check(files, data, checked((int)a.Shape[1]));
        if (error is not null) throw new IndexFormatException($"{path}: {error}");
        return new EmbeddingIndex(data, files, (int)a.Shape[1]);
    }

    /// <summary>The <paramref name="k"/> items nearest <paramref name="query"/> (E floats, normalised on the device) by cosine, best first.</summary>
    public SearchHit[] Search(DeviceContext ctx, ReadOnlySpan<float> query, int k) => SearchMany(ctx, query, 1, k)[0];

    /// <summary>
    /// The <paramref name="k"/> nearest items of each of <paramref name="count"/> queries (row-major
    /// [count, E]): on <paramref name="ctx"/> the queries are L2-normalised, scored against every row
    /// (<see cref="TopKKernel.Search"/>) and the best k selected, equal scores by lower row. Uploads and
    /// packs the index each call (batch the queries of one search into one call).
    /// </summary>
    /// <exception cref="ArgumentException">k outside 1..N (naming both), or queries of the wrong width or not finite.</exception>
    public SearchHit[][] SearchMany(DeviceContext ctx, ReadOnlySpan<float> queries, int count, int k)
    {
        if (count < 1 || queries.Length != (long)count * Dimension)
            throw new ArgumentException($"{queries.Length} query values are not {count} queries of the index's width {Dimension}");
        if (k < 1) throw new ArgumentException($"k = {k} must be at least 1");
        if (k > Count) throw new ArgumentException($"k = {k} exceeds the index's {Count} items");
        for (int i = 0; i < queries.Length; i++)
            if (!float.IsFinite(queries[i])) throw new ArgumentException($"query {i / Dimension} holds {queries[i]} at element {i % Dimension}");
        using var rows = Tensor.FromHost<float>(ctx, _embeddings, new Shape(Count, Dimension));
        using var packed = PackedMatrix.Pack(ctx, rows.View, transposed: true);
        using var q = Tensor.FromHost(ctx, queries, new Shape(count, Dimension));
        using var scores = Tensor.Allocate(ctx, DType.F32, new Shape(count, Count), GemmKernel.PanelWidth);
        using var indices = Tensor.Allocate(ctx, DType.I32, new Shape(count, k));
        using var values = Tensor.Allocate(ctx, DType.F32, new Shape(count, k));
        PoolingKernel.L2Normalize(ctx, q.View, q.View);
        TopKKernel.Search(ctx, q.View, packed.View, scores.View, k, indices.View, values.View);
        ctx.Synchronize();
        var ids = indices.ToArray<int>();
        var s = values.ToArray<float>();
        return Enumerable.Range(0, count)
            .Select(qi => Enumerable.Range(0, k).Select(r => new SearchHit(r + 1, s[qi * k + r], _files[ids[qi * k + r]], ids[qi * k + r])).ToArray())
            .ToArray();
    }

    private static string? Check(IReadOnlyList<string> files, ReadOnlySpan<float> embeddings, int dimension)
    {
        if (dimension < 1) return $"embedding width {dimension} must be at least 1";
        if (files.Count == 0) return "an index needs at least one item";
        if (embeddings.Length != (long)files.Count * dimension)
            return $"{embeddings.Length} embedding values are not {files.Count} rows of {dimension}";
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int r = 0; r < files.Count; r++)
        {
            var f = files[r];
            if (f.Length == 0 || f.Contains('\n') || f.Contains('\r')) return $"row {r}: the file name must be one non-empty line, got '{f}'";
            if (!seen.Add(f)) return $"row {r}: file '{f}' is listed twice";
            var row = embeddings.Slice(r * dimension, dimension);
            double sq = 0;
            foreach (var v in row)
            {
                if (!float.IsFinite(v)) return $"row {r} ({f}) holds {v}";
                sq += (double)v * v;
            }
            if (Math.Abs(Math.Sqrt(sq) - 1) > NormTolerance) return $"row {r} ({f}) has L2 norm {Math.Sqrt(sq):G6}; index rows must be L2-normalised";
        }
        return null;
    }

    private static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover hidden folder beside the index is harmless; the original error (if any) matters more.
        }
    }
}
