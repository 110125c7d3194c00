using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using OmniKernels.IO;

namespace OmniKernels.Text;

/// <summary>
/// CLIP's byte-level BPE (openai/CLIP <c>simple_tokenizer.py</c>, Hugging Face <c>CLIPTokenizer</c>) expressed as
/// Microsoft.ML.Tokenizers <see cref="BpeOptions"/>: the vocabulary and merges as read from the files, CLIP's
/// pattern as a <see cref="RegexPreTokenizer"/>, <see cref="BpeOptions.ByteLevel"/> for CLIP's byte-to-unicode map,
/// <c>&lt;/w&gt;</c> as the end-of-word suffix, the start and end tokens as special tokens.
/// </summary>
internal static partial class ClipBpeModel
{
    public const string StartToken = "<|startoftext|>";
    public const string EndToken = "<|endoftext|>";
    private const string EndOfWord = "</w>";
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// CLIP's pre-tokenization pattern. .NET matches UTF-16 code units, so a letter or digit outside the BMP
    /// (a surrogate pair) falls in the last class, not \p{L} / \p{N}: it still forms a piece of its own when
    /// spaced, but joins neighbouring punctuation rather than neighbouring letters.
    /// </summary>
    [GeneratedRegex(@"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    public static (BpeTokenizer Bpe, int Bos, int Eos, int VocabSize) Load(string vocabPath, string mergesPath)
    {
        Dictionary<string, int> vocab = ReadVocabulary(vocabPath);
        List<string> merges = ReadMerges(mergesPath);
        // Hugging Face splits the special tokens out before the pattern runs (its added-token split), so
        // "x!<|endoftext|>" ends in the end token; openai's pattern alone would see "!<|" there.
        var special = new Dictionary<string, int> { [StartToken] = vocab[StartToken], [EndToken] = vocab[EndToken] };
        var options = new BpeOptions(vocab)
        {
            Merges = merges,
            Normalizer = new ClipNormalizer(),
            PreTokenizer = new RegexPreTokenizer(Pattern(), special),
            SpecialTokens = special,
            EndOfWordSuffix = EndOfWord,
            ByteLevel = true,
            BeginningOfSentenceToken = StartToken,
            EndOfSentenceToken = EndToken,
        };
        try
        {
            return (BpeTokenizer.Create(options), vocab[StartToken], vocab[EndToken], vocab.Count);
        }
        catch (Exception ex) when (TextTokenizer.IsLibraryFormatError(ex))
        {
            throw new TokenizerFormatException(
                $"{mergesPath}: does not fit {vocabPath}: {InputFile.OneLine(ex.Message)}", ex);
        }
    }

    /// <summary>
    /// vocab.json: a JSON object of token → id with ids 0..N-1, holding every byte symbol alone and with
    /// <c>&lt;/w&gt;</c> (else the library would silently drop a character it cannot map) and both special tokens.
    /// </summary>
    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        byte[] bytes = TextTokenizer.ReadFile(path);
        Dictionary<string, int>? vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(new MemoryStream(bytes, writable: false));
        }
        catch (JsonException ex)
        {
            throw new TokenizerFormatException(
                $"{path}: not a vocabulary (a JSON object of token to id): {InputFile.OneLine(ex.Message)}", ex);
        }
        if (vocab is null || vocab.Count == 0)
            throw new TokenizerFormatException($"{path}: the vocabulary is empty");
        var seen = new bool[vocab.Count];
        foreach ((string token, int id) in vocab)
        {
            if (id < 0 || id >= vocab.Count || seen[id])
                throw new TokenizerFormatException(
                    $"{path}: token '{InputFile.OneLine(token)}' has id {id}; ids must be 0..{vocab.Count - 1}, each once");
            seen[id] = true;
        }
        foreach (string token in new[] { StartToken, EndToken })
        {
            if (!vocab.ContainsKey(token))
                throw new TokenizerFormatException($"{path}: the vocabulary lacks the special token {token}");
        }
        for (int b = 0; b < 256; b++)
        {
            string symbol = ByteSymbol(b);
            if (!vocab.ContainsKey(symbol) || !vocab.ContainsKey(symbol + EndOfWord))
                throw new TokenizerFormatException(
                    $"{path}: the vocabulary lacks the byte-level symbol '{symbol}' (byte 0x{b:x2}) or '{symbol}{EndOfWord}'");
        }
        return vocab;
    }

    /// <summary>
    /// merges.txt: one "left right" pair per line, highest priority first, after an optional "#version" header
    /// (Hugging Face's slow tokenizer drops the first line unconditionally; its fast one and this reader skip
    /// "#version" lines). Every merge is used: CLIP's 48 894-merge cut is simply the length of its file.
    /// </summary>
    private static List<string> ReadMerges(string path)
    {
        string[] lines;
        try
        {
            lines = StrictUtf8.GetString(TextTokenizer.ReadFile(path)).TrimStart('\uFEFF').Split('\n');
        }
        catch (ArgumentException ex)
        {
            throw new TokenizerFormatException($"{path}: not UTF-8 text: {InputFile.OneLine(ex.Message)}", ex);
        }
        var merges = new List<string>(lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.Length == 0 || (i == 0 && line.StartsWith("#version", StringComparison.Ordinal)))
                continue;
            int space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
                throw new TokenizerFormatException(
                    $"{path}:{i + 1}: a merge is two symbols separated by one space, found '{InputFile.OneLine(line)}'");
            merges.Add(line);
        }
        return merges;
    }

    /// <summary>CLIP's (GPT-2's) byte-to-unicode map: printable Latin-1 bytes stand for themselves, the others
    /// take the code points from 256 upwards in byte order.</summary>
    private static string ByteSymbol(int b)
    {
        static bool Printable(int x) => x is (>= '!' and <= '~') or (>= '¡' and <= '¬') or (>= '®' and <= 'ÿ');
        if (Printable(b))
            return ((char)b).ToString();
        int rank = 0;
        for (int x = 0; x < b; x++)
        {
            if (!Printable(x))
                rank++;
        }
        return ((char)(256 + rank)).ToString();
    }

    /// <summary>
    /// CLIP's cleaning without ftfy, as Hugging Face's fast tokenizer normalizes: NFC, whitespace runs collapsed to
    /// one space and the ends stripped (CLIP's whitespace_clean), then the library's lower-casing. The library has
    /// no NFC or whitespace normalizer, so those two steps are done here. Stateless, so thread-safe.
    /// </summary>
    private sealed class ClipNormalizer : Normalizer
    {
        public override string Normalize(string original) => Normalize(original.AsSpan());

        public override string Normalize(ReadOnlySpan<char> original)
        {
            string nfc = original.ToString().Normalize(NormalizationForm.FormC);
            var sb = new StringBuilder(nfc.Length);
            bool pendingSpace = false;
            foreach (char c in nfc)
            {
                if (char.IsWhiteSpace(c))
                {
                    pendingSpace = sb.Length > 0;
                    continue;
                }
                if (pendingSpace)
                    sb.Append(' ');
                pendingSpace = false;
                sb.Append(c);
            }
            return LowerCaseNormalizer.Instance.Normalize(sb.ToString());
        }
    }
}
