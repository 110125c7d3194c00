using Microsoft.ML.Tokenizers;
using OmniKernels.IO;

namespace OmniKernels.Text;

/// <summary>A tokenizer file is missing, unreadable, malformed, or disagrees with what the caller expects of it.</summary>
public sealed class TokenizerFormatException : Exception
{
    /// <summary>Creates the exception with a one-line message that names the file and the problem.</summary>
    public TokenizerFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a one-line message naming the file, and the library error behind it.</summary>
    public TokenizerFormatException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// Text to token ids for the text towers, through Microsoft.ML.Tokenizers: a SentencePiece model (the models this
/// project trains) or CLIP's byte-level BPE (<c>vocab.json</c> + <c>merges.txt</c>, as in a Hugging Face CLIP
/// folder). <see cref="Encode"/> gives <c>[bos] + tokens + [eos]</c>, cut to the context length with the end token
/// kept last, unpadded (the text towers are causal and pool at the end token).
/// </summary>
/// <remarks>
/// Immutable once created and safe to call from many threads at once: the instance holds only read-only state, and
/// the library's BPE word cache takes a lock (read in its source). Each <see cref="Encode"/> returns a new array
/// that the caller owns.
/// </remarks>
public sealed class TextTokenizer
{
    private readonly Func<string, IReadOnlyList<int>> _encode;

    private TextTokenizer(int bosId, int eosId, int vocabSize, Func<string, IReadOnlyList<int>> encode)
    {
        BosId = bosId;
        EosId = eosId;
        VocabSize = vocabSize;
        _encode = encode;
    }

    /// <summary>The start token's id, first in every encoding.</summary>
    public int BosId { get; }

    /// <summary>The end token's id, last in every encoding.</summary>
    public int EosId { get; }

    /// <summary>One more than the highest id this tokenizer can produce: the rows a token embedding needs.</summary>
    public int VocabSize { get; }

    /// <summary>
    /// Loads a SentencePiece model (BPE or unigram) whose start and end tokens must be <paramref name="bosId"/> and
    /// <paramref name="eosId"/> (the model config's ids; a disagreement is an error, not a silent choice). The text
    /// is normalized as the model's rule says (<c>nmt_nfkc</c>, spm_train's default, or <c>identity</c>), and runs
    /// of unknown pieces collapse into one unknown id, as SentencePiece itself encodes.
    /// </summary>
    /// <exception cref="TokenizerFormatException">
    /// The file is missing, not a SentencePiece model, uses a normalization rule other than those two, or its
    /// start/end ids differ from the ones given.
    /// </exception>
    public static TextTokenizer SentencePiece(string modelPath, int bosId, int eosId)
    {
        SentencePieceModel model = SentencePieceModel.Load(modelPath);
        SentencePieceTokenizer sp = model.Tokenizer;
        if (sp.BeginningOfSentenceId != bosId || sp.EndOfSentenceId != eosId)
            throw new TokenizerFormatException(
                $"{modelPath}: the model's start/end token ids are {sp.BeginningOfSentenceId}/{sp.EndOfSentenceId}, " +
                $"the model config says {bosId}/{eosId}");
        return new TextTokenizer(bosId, eosId, sp.Vocabulary.Values.Max() + 1, model.Encode);
    }

    /// <summary>
    /// Loads CLIP's byte-level BPE from a Hugging Face <c>vocab.json</c> and <c>merges.txt</c>: text NFC-normalized,
    /// whitespace collapsed, lower-cased, split by CLIP's pattern, UTF-8 bytes mapped to CLIP's byte symbols and
    /// merged by rank with <c>&lt;/w&gt;</c> ending each word; <c>&lt;|startoftext|&gt;</c> and
    /// <c>&lt;|endoftext|&gt;</c> are the start and end tokens (and are recognized as such inside the text).
    /// </summary>
    /// <exception cref="TokenizerFormatException">
    /// Either file is missing or malformed, the vocabulary lacks a byte symbol or a special token, or a merge
    /// names a symbol the vocabulary does not hold.
    /// </exception>
    public static TextTokenizer ClipBpe(string vocabJsonPath, string mergesTxtPath)
    {
        (BpeTokenizer bpe, int bos, int eos, int vocabSize) = ClipBpeModel.Load(vocabJsonPath, mergesTxtPath);
        return new TextTokenizer(bos, eos, vocabSize, text => bpe.EncodeToIds(text));
    }

    /// <summary>
    /// The ids of <paramref name="text"/>: <c>[bos] + tokens + [eos]</c>; longer than
    /// <paramref name="contextLength"/>, it is cut to that length and its last id replaced by the end token
    /// (CLIP's rule). Empty text gives <c>[bos, eos]</c>. Nothing is padded.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="contextLength"/> is below 2.</exception>
    public int[] Encode(string text, int contextLength)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 2);
        IReadOnlyList<int> ids = _encode(text);
        // The library returns nothing at all, not even the start and end tokens, for an empty string.
        if (ids.Count == 0)
            return [BosId, EosId];
        var result = new int[Math.Min(ids.Count, contextLength)];
        for (int i = 0; i < result.Length; i++)
            result[i] = ids[i];
        if (ids.Count > contextLength)
            result[^1] = EosId;
        return result;
    }

    /// <summary>The whole file, or the reader's one-line error naming it.</summary>
    internal static byte[] ReadFile(string path) =>
        InputFile.Read(path, stream =>
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return copy.ToArray();
        }, message => new TokenizerFormatException(message));

    /// <summary>The exceptions the library's parsers throw on malformed content (protobuf's derive from IOException).</summary>
    internal static bool IsLibraryFormatError(Exception ex) =>
        ex is InvalidOperationException or ArgumentException or FormatException or IOException or NotSupportedException
            or KeyNotFoundException or IndexOutOfRangeException or OverflowException;
}
