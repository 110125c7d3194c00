using System.Text;
using Google.Protobuf;
using Microsoft.ML.Tokenizers;
using OmniKernels.IO;

namespace OmniKernels.Text;

/// <summary>
/// A SentencePiece model loaded through Microsoft.ML.Tokenizers, with the text normalization done here: in 2.0.1 the
/// library's <see cref="SentencePieceNormalizer"/> returns an empty string for any text of one character (so "a"
/// encoded to nothing), and it does not apply the model's normalization rule (it checks the precompiled
/// <c>nmt_nfkc</c> map that spm_train writes by default, then leaves "ﬁ" or "Ｔ" as they are). The library still does the encoding, from text normalized as SentencePiece does.
/// </summary>
internal sealed class SentencePieceModel
{
    private const char Escape = '\u2581'; // SentencePiece's visible space, ▁

    private readonly bool _nmtNfkc;
    private readonly bool _removeExtraWhitespace;

    private SentencePieceModel(SentencePieceTokenizer tokenizer, bool nmtNfkc, bool removeExtraWhitespace)
    {
        Tokenizer = tokenizer;
        _nmtNfkc = nmtNfkc;
        _removeExtraWhitespace = removeExtraWhitespace;
    }

    public SentencePieceTokenizer Tokenizer { get; }

    public static SentencePieceModel Load(string path)
    {
        byte[] bytes = TextTokenizer.ReadFile(path);
        SentencePieceTokenizer tokenizer;
        string rule;
        try
        {
            (rule, bool hasPieces, bool hasTrainerSpec) = Inspect(bytes);
            // The library dereferences a missing trainer spec (NullReferenceException): check before handing over.
            if (!hasPieces || !hasTrainerSpec)
                throw new TokenizerFormatException($"{path}: not a SentencePiece model: it holds no " +
                    (hasPieces ? "trainer spec" : "pieces"));
            tokenizer = SentencePieceTokenizer.Create(new MemoryStream(bytes, writable: false),
                addBeginningOfSentence: true, addEndOfSentence: true);
        }
        catch (Exception ex) when (TextTokenizer.IsLibraryFormatError(ex))
        {
            throw new TokenizerFormatException($"{path}: not a SentencePiece model: {InputFile.OneLine(ex.Message)}", ex);
        }
        if (rule is not ("nmt_nfkc" or "identity"))
            throw new TokenizerFormatException(
                $"{path}: normalization rule '{InputFile.OneLine(rule)}' is not supported (nmt_nfkc and identity are)");
        if (tokenizer.TreatWhitespaceAsSuffix)
            throw new TokenizerFormatException($"{path}: models that treat whitespace as a suffix are not supported");
        if (!tokenizer.AddDummyPrefix || !tokenizer.EscapeWhiteSpaces)
            throw new TokenizerFormatException(
                $"{path}: only models that add the dummy prefix and escape whitespace (spm_train's defaults) are supported");
        bool removeExtra = tokenizer.Normalizer is SentencePieceNormalizer { RemoveExtraWhiteSpaces: true };
        return new SentencePieceModel(tokenizer, rule == "nmt_nfkc", removeExtra);
    }

    /// <summary>[bos] + pieces + [eos] for <paramref name="text"/>, or nothing when it normalizes to nothing.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        IReadOnlyList<int> ids = Tokenizer.EncodeToIds(Normalize(text), addBeginningOfSentence: true,
            addEndOfSentence: true, considerPreTokenization: false, considerNormalization: false);
        return FuseUnknown(ids, Tokenizer.UnknownId);
    }

    /// <summary>
    /// SentencePiece's normalizer: the rule's map (nmt_nfkc = NFKC plus the NMT additions: a few invisible and
    /// separator characters become spaces, ASCII/C1 control characters vanish; builder.cc, MergeNmtMap), then
    /// spaces trimmed and collapsed, a dummy-prefix space in front, and every space written as ▁.
    /// </summary>
    private string Normalize(string text)
    {
        if (_nmtNfkc)
        {
            var mapped = new StringBuilder(text.Length);
            foreach (char c in text)
            {
                if (IsNmtSpace(c))
                    mapped.Append(' ');
                else if (!IsNmtRemoved(c))
                    mapped.Append(c);
            }
            text = mapped.ToString().Normalize(NormalizationForm.FormKC);
        }
        var sb = new StringBuilder(text.Length + 1);
        bool pendingSpace = false;
        foreach (char c in text)
        {
            if (c == ' ' && _removeExtraWhitespace)
            {
                pendingSpace = sb.Length > 0;
                continue;
            }
            if (pendingSpace)
                sb.Append(' ');
            pendingSpace = false;
            sb.Append(c);
        }
        if (sb.Length == 0)
            return "";
        sb.Insert(0, ' ');
        return sb.Replace(' ', Escape).ToString();
    }

    private static bool IsNmtSpace(char c) => c is '\t' or '\n' or '\f' or '\r' or '\u1680' or '\u200B' or '\u200C'
        or '\u200E' or '\u200F' or '\u2028' or '\u2029' or '\u2581' or '\uFEFF' or '\uFFFD';

    private static bool IsNmtRemoved(char c) =>
        c is (>= '\u0001' and <= '\u0008') or '\u000B' or (>= '\u000E' and <= '\u001F') or '\u007F' or '\u008F' or '\u009F';

    /// <summary>SentencePiece merges each run of unknown pieces into one; the library emits one per character.</summary>
    private static IReadOnlyList<int> FuseUnknown(IReadOnlyList<int> ids, int unknownId)
    {
        var fused = new List<int>(ids.Count);
        foreach (int id in ids)
        {
            if (id == unknownId && fused.Count > 0 && fused[^1] == unknownId)
                continue;
            fused.Add(id);
        }
        return fused;
    }

    /// <summary>
    /// The ModelProto's top level (sentencepiece_model.proto): whether it has pieces (field 1) and a trainer spec
    /// (field 2), and <c>normalizer_spec.name</c> (field 3, its field 1), which the library parses but does not
    /// expose. A model without a precompiled normalization map normalizes nothing, whatever its rule's name.
    /// </summary>
    private static (string Rule, bool HasPieces, bool HasTrainerSpec) Inspect(byte[] model)
    {
        string name = "";
        bool hasMap = false, hasPieces = false, hasTrainerSpec = false;
        var input = new CodedInputStream(model);
        for (uint tag = input.ReadTag(); tag != 0; tag = input.ReadTag())
        {
            int number = WireFormat.GetTagFieldNumber(tag);
            hasPieces |= number == 1;
            hasTrainerSpec |= number == 2;
            if (number != 3 || WireFormat.GetTagWireType(tag) != WireFormat.WireType.LengthDelimited)
            {
                input.SkipLastField();
                continue;
            }
            var spec = new CodedInputStream(input.ReadBytes().ToByteArray());
            for (uint t = spec.ReadTag(); t != 0; t = spec.ReadTag())
            {
                int field = WireFormat.GetTagFieldNumber(t);
                if (field == 1 && WireFormat.GetTagWireType(t) == WireFormat.WireType.LengthDelimited)
                    name = spec.ReadString();
                else if (field == 2 && WireFormat.GetTagWireType(t) == WireFormat.WireType.LengthDelimited)
                    hasMap = spec.ReadBytes().Length > 0;
                else
                    spec.SkipLastField();
            }
        }
        return (hasMap ? name : "identity", hasPieces, hasTrainerSpec);
    }
}
