using System.Text;
using System.Text.Json;
using NUnit.Framework;
using OmniKernels.Text;

namespace OmniKernels.Tests;

/// <summary>
/// TextTokenizer against ids from independent implementations (tools/make_tokenizer_vectors.py): python
/// sentencepiece for models trained by spm_train, and a CLIP BPE encoder written from CLIP's definition.
/// </summary>
[TestFixture]
public class TextTokenizerTests
{
    private static readonly string Dir = Path.Combine(TestContext.CurrentContext.TestDirectory, "vectors", "text");
    private string _tmp = "";

    private sealed record Case(string Text, int ContextLength, int[] Ids);

    private sealed record Vectors(string File, int BosId, int EosId, int VocabSize, Case[] Cases);

    [SetUp]
    public void SetUp()
    {
        _tmp = Path.Combine(Path.GetTempPath(), "toktest-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_tmp);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_tmp)) Directory.Delete(_tmp, recursive: true);
    }

    private static Vectors Read(JsonElement e, string fileKey) => new(
        Path.Combine(Dir, e.GetProperty(fileKey).GetString()!),
        e.GetProperty("bos_id").GetInt32(), e.GetProperty("eos_id").GetInt32(), e.GetProperty("vocab_size").GetInt32(),
        e.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("text").GetString()!, c.GetProperty("context_length").GetInt32(),
            c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray())).ToArray());

    private static JsonElement Json(string name) => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, name))).RootElement;

    public static IEnumerable<string> SpmModels() =>
        Json("spm_cases.json").GetProperty("models").EnumerateArray().Select(m => m.GetProperty("model").GetString()!);

    private static Vectors Spm(string model) => Read(Json("spm_cases.json").GetProperty("models").EnumerateArray()
        .Single(m => m.GetProperty("model").GetString() == model), "model");

    private static Vectors Clip() => Read(Json("clip_cases.json"), "vocab");

    private static string MergesPath => Path.Combine(Dir, "clip_merges.txt");

    private static string Show(string text) => JsonSerializer.Serialize(text);

    private static void AssertCases(TextTokenizer tokenizer, Vectors v)
    {
        Assert.That(v.Cases, Is.Not.Empty);
        var failures = new List<string>();
        foreach (Case c in v.Cases)
        {
            int[] got = tokenizer.Encode(c.Text, c.ContextLength);
            if (!got.SequenceEqual(c.Ids))
                failures.Add($"{Show(c.Text)} (context {c.ContextLength}): expected [{string.Join(",", c.Ids)}], got [{string.Join(",", got)}]");
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} of {v.Cases.Length} cases differ");
    }

    [TestCaseSource(nameof(SpmModels))]
    public void SentencePiece_MatchesPythonSentencePiece(string model)
    {
        Vectors v = Spm(model);
        var tokenizer = TextTokenizer.SentencePiece(v.File, v.BosId, v.EosId);
        Assert.That((tokenizer.BosId, tokenizer.EosId, tokenizer.VocabSize), Is.EqualTo((v.BosId, v.EosId, v.VocabSize)));
        AssertCases(tokenizer, v);
    }

    [Test]
    public void ClipBpe_MatchesClipDefinition()
    {
        Vectors v = Clip();
        var tokenizer = TextTokenizer.ClipBpe(v.File, MergesPath);
        Assert.That((tokenizer.BosId, tokenizer.EosId, tokenizer.VocabSize), Is.EqualTo((v.BosId, v.EosId, v.VocabSize)));
        AssertCases(tokenizer, v);
    }

    [Test]
    public void Vectors_CoverTruncationAndEmptyText()
    {
        foreach (Vectors v in SpmModels().Select(Spm).Append(Clip()))
        {
            Assert.That(v.Cases.Any(c => c.Ids.Length == c.ContextLength && c.Text.Length > c.ContextLength), v.File);
            Assert.That(v.Cases.Single(c => c.Text.Length == 0).Ids, Is.EqualTo(new[] { v.BosId, v.EosId }), v.File);
        }
    }

    [Test]
    public void Encode_KeepsEndTokenLastAtEveryContextLength()
    {
        Vectors v = Clip();
        var tokenizer = TextTokenizer.ClipBpe(v.File, MergesPath);
        Case longest = v.Cases.MaxBy(c => c.Text.Length)!;
        int[] full = tokenizer.Encode(longest.Text, 1000);
        for (int ctx = 2; ctx <= full.Length + 1; ctx++)
        {
            int[] cut = tokenizer.Encode(longest.Text, ctx);
            int n = Math.Min(ctx, full.Length);
            Assert.That(cut, Is.EqualTo(full.Take(n - 1).Append(tokenizer.EosId).ToArray()), $"context {ctx}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Encode("a", 1));
        Assert.Throws<ArgumentNullException>(() => tokenizer.Encode(null!, 8));
    }

    [Test]
    public void Encode_FromManyThreads_GivesTheSameIds()
    {
        Vectors clip = Clip(), spm = Spm(SpmModels().First());
        var tokenizers = new[]
        {
            (TextTokenizer.ClipBpe(clip.File, MergesPath), clip),
            (TextTokenizer.SentencePiece(spm.File, spm.BosId, spm.EosId), spm),
        };
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            (TextTokenizer tokenizer, Vectors v) = tokenizers[i % 2];
            foreach (Case c in v.Cases.Skip(i % 3))
            {
                if (!tokenizer.Encode(c.Text, c.ContextLength).SequenceEqual(c.Ids))
                    failures.Add($"{i}: {Show(c.Text)}");
            }
        });
        Assert.That(failures, Is.Empty);
    }

    // ---- bad files: one exception, naming the file --------------------------------------------------------

    private string Temp(string name, byte[] content)
    {
        string path = Path.Combine(_tmp, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    private string Temp(string name, string content) => Temp(name, Encoding.UTF8.GetBytes(content));

    private static void AssertNames(TestDelegate load, string path, string detail)
    {
        var ex = Assert.Throws<TokenizerFormatException>(load)!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain(detail));
        Assert.That(ex.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void SentencePiece_BadFiles_NameTheFile()
    {
        Vectors v = Spm(SpmModels().First());
        string missing = Path.Combine(_tmp, "absent.model");
        AssertNames(() => TextTokenizer.SentencePiece(missing, 1, 3), missing, "not found");

        byte[] model = File.ReadAllBytes(v.File);
        string truncated = Temp("truncated.model", model[..(model.Length / 3)]);
        AssertNames(() => TextTokenizer.SentencePiece(truncated, 1, 3), truncated, "not a SentencePiece model");
        string text = Temp("text.model", "this is not a protobuf file\n");
        AssertNames(() => TextTokenizer.SentencePiece(text, 1, 3), text, "not a SentencePiece model");
        string empty = Temp("empty.model", []);
        AssertNames(() => TextTokenizer.SentencePiece(empty, 1, 3), empty, "not a SentencePiece model");

        // A second normalizer_spec (protobuf merges repeated message fields) renames the nmt_nfkc model's rule,
        // keeping its map, to one that is not supported.
        byte[] spec = [0x0A, 7, .. "nfkc_cf"u8];
        string caseFold = Temp("casefold.model", [.. model, 0x1A, (byte)spec.Length, .. spec]);
        AssertNames(() => TextTokenizer.SentencePiece(caseFold, 1, 3), caseFold, "'nfkc_cf' is not supported");

        AssertNames(() => TextTokenizer.SentencePiece(v.File, 1, 2), v.File, "1/3");
        AssertNames(() => TextTokenizer.SentencePiece(v.File, 0, 3), v.File, "config says 0/3");
    }

    [Test]
    public void ClipBpe_BadFiles_NameTheFile()
    {
        string vocabPath = Clip().File;
        string vocabText = File.ReadAllText(vocabPath);
        string mergesText = File.ReadAllText(MergesPath);

        string missing = Path.Combine(_tmp, "absent.json");
        AssertNames(() => TextTokenizer.ClipBpe(missing, MergesPath), missing, "not found");
        AssertNames(() => TextTokenizer.ClipBpe(vocabPath, missing), missing, "not found");

        string notJson = Temp("bad.json", vocabText[..(vocabText.Length / 2)]);
        AssertNames(() => TextTokenizer.ClipBpe(notJson, MergesPath), notJson, "not a vocabulary");
        string array = Temp("array.json", "[1, 2, 3]");
        AssertNames(() => TextTokenizer.ClipBpe(array, MergesPath), array, "not a vocabulary");

        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(vocabText)!;
        string NoEntry(string name, string token)
        {
            int id = vocab[token];
            var rest = vocab.Where(kv => kv.Key != token).ToDictionary(kv => kv.Key, kv => kv.Value > id ? kv.Value - 1 : kv.Value);
            return Temp(name, JsonSerializer.Serialize(rest));
        }
        string noByte = NoEntry("nobyte.json", "Ā</w>");
        AssertNames(() => TextTokenizer.ClipBpe(noByte, MergesPath), noByte, "byte 0x00");
        string noEnd = NoEntry("noend.json", "<|endoftext|>");
        AssertNames(() => TextTokenizer.ClipBpe(noEnd, MergesPath), noEnd, "<|endoftext|>");
        var gap = new Dictionary<string, int>(vocab) { ["<|endoftext|>"] = vocab.Count + 5 };
        string gapPath = Temp("gap.json", JsonSerializer.Serialize(gap));
        AssertNames(() => TextTokenizer.ClipBpe(gapPath, MergesPath), gapPath, "ids must be 0..");

        string badLine = Temp("badline.txt", mergesText.Replace("\nt h\n", "\nt h x\n"));
        AssertNames(() => TextTokenizer.ClipBpe(vocabPath, badLine), badLine + ":2", "two symbols");
        string unknown = Temp("unknown.txt", mergesText + "qq zz\n");
        AssertNames(() => TextTokenizer.ClipBpe(vocabPath, unknown), unknown, vocabPath);
        string notUtf8 = Temp("latin1.txt", [0x74, 0x20, 0xE9, 0x0A]);
        AssertNames(() => TextTokenizer.ClipBpe(vocabPath, notUtf8), notUtf8, "not UTF-8");
    }
}
