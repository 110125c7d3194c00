#!/usr/bin/python3
"""Test vectors for OmniKernels.Text.TextTokenizer, from implementations independent of the C# one.

Run from anywhere with Debian's python3 and sentencepiece (`spm_train`, python3-sentencepiece):
    /usr/bin/python3 tools/make_tokenizer_vectors.py
Writes tests/OmniKernels.Tests/vectors/text/:
  spm_bpe300.model, spm_cases.json   a SentencePiece BPE model trained here by Debian's `spm_train`
                                     and held-out sentences encoded by python `sentencepiece`;
  clip_vocab.json, clip_merges.txt,  a small CLIP-style byte-level BPE (byte->unicode map, single
  clip_cases.json                    bytes and their `</w>` forms, merges learned below, then the two
                                     special tokens as the highest ids) and sentences encoded by the
                                     CLIP encoder written below from CLIP's definition.
Every case holds [bos] + tokens + [eos], cut to its context length with eos kept last.

The CLIP encoder follows openai/CLIP `simple_tokenizer.py` and Hugging Face's CLIPTokenizer(Fast)
without ftfy: NFC, whitespace collapsed and stripped, lower-cased (ftfy's mojibake repair and
openai's html.unescape are not applied: Hugging Face applies neither without ftfy), the special
tokens cut out first (Hugging Face's added-token split), then on the rest the pre-tokenization pattern
    <\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
(case-insensitive), UTF-8 bytes through CLIP's byte->unicode map, BPE by merge rank with `</w>` on
the last symbol of each word. Debian has no python `regex` module, and `re` has no \\p{..}, so the
pattern is matched by the scanner `clip_pieces`: \\p{L} / \\p{N} are the Unicode general categories
L* / N* from `unicodedata` (exactly what the pattern means), \\s is Unicode White_Space (the
separators Z* plus TAB..CR and NEL), alternatives tried in the pattern's order at each position.
"""
import collections
import json
import os
import random
import subprocess
import tempfile
import unicodedata

import sentencepiece

from clip_bpe import merge_pair

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors", "text")

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
CLIP_MERGES = 320

# ---------------------------------------------------------------- corpus

NOUNS = ["t-shirt", "ankle boot", "sneaker", "sandal", "trouser", "pullover", "dress", "coat", "shirt",
         "bag", "hat", "scarf", "jacket", "sweater", "skirt", "boot", "shoe", "glove", "sock", "belt"]
ADJECTIVES = ["red", "blue", "black", "white", "green", "grey", "striped", "leather", "woollen", "cotton",
              "small", "large", "new", "old", "cheap", "warm", "light", "dark", "soft", "classic"]
TEMPLATES = [
    "a photo of a {a} {n}.",
    "A {a} {n} on a white background",
    "this {n} costs {d} dollars!",
    "the {n} is {a}, isn't it?",
    "I'd like {d} {a} {n}s, please.",
    "they've sold {d} of the {a} {n}s today",
    "we're out of {a} {n}s; try again on {d} May.",
    "she'll wear the {n} (size {d}) tomorrow",
    "you'll love this {a} {n} -- it's {d}% off",
    "Item #{d}: {a} {n}",
    "\"{a} {n}\" returned: {d} times",
    "is the {n} {a}? yes, it is.",
]


def corpus(seed, count):
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        t = rng.choice(TEMPLATES)
        lines.append(t.format(a=rng.choice(ADJECTIVES), n=rng.choice(NOUNS), d=rng.randint(0, 2000)))
    return lines


def finish(ids, bos, eos, context):
    """[bos] + ids + [eos], cut to `context` with eos kept as the last id (CLIP's rule)."""
    full = [bos] + list(ids) + [eos]
    if len(full) > context:
        full = full[:context]
        full[-1] = eos
    return full


# ---------------------------------------------------------------- SentencePiece

SPM_HELD_OUT = [
    ("A photo of a red t-shirt.", 32),
    ("an ankle boot, size 42!", 32),
    ("the sneakers cost 1999 dollars; they're cheap", 32),
    ("   leading, trailing   and   repeated spaces   ", 32),
    ("Unseen letters: Quixotic ZEBRA jumps, naïve café €5", 48),
    ("Full-width ＴＥＸＴ, the ligature ﬁne, ① and a no-break\u00a0space", 48),
    ("tabs\tand\nnewlines\r\nand\u200bzero-width\u3000ideographic", 48),
    ("", 16),
    ("   ", 16),
    ("x", 16),
    ("a", 16),
    ("a very long caption about a striped woollen pullover that keeps going and going past the context", 12),
    ("exactly", 4),
]


def nmt_probe_texts(sp):
    """'ab' + c + 'ab' for every code point that SentencePiece's nmt_nfkc rule turns into a space or
    removes without NFKC doing so, and for every whitespace character: the rule's additions to NFKC."""
    space, removed = sp.encode("ab ab"), sp.encode("abab")
    texts = []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        nfkc = unicodedata.normalize("NFKC", c)
        ids = sp.encode("ab" + c + "ab")
        if c.isspace() or (ids == space and nfkc != " ") or (ids == removed and nfkc != ""):
            texts.append("ab" + c + "ab")
    return texts


def train_spm(lines, rule):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        # Relative paths: the model's trainer_spec records them, and the bytes should not depend on the temp dir.
        subprocess.run(["spm_train", "--input=corpus.txt", "--model_prefix=spm", "--model_type=bpe",
                        "--vocab_size=300", "--bos_id=1", "--eos_id=3", "--pad_id=0", "--unk_id=2",
                        f"--normalization_rule_name={rule}", "--num_threads=1", "--random_seed=17",
                        "--minloglevel=2"], check=True, cwd=tmp)
        with open(os.path.join(tmp, "spm.model"), "rb") as f:
            return f.read()


def make_sentencepiece():
    lines = corpus(17, 1500)
    models = []
    # nmt_nfkc is spm_train's default rule; identity checks that no normalization is added.
    for name, rule in [("spm_bpe300.model", "nmt_nfkc"), ("spm_bpe300_identity.model", "identity")]:
        model = train_spm(lines, rule)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(model)
        sp = sentencepiece.SentencePieceProcessor(model_proto=model)
        bos, eos = sp.bos_id(), sp.eos_id()
        assert (bos, eos, sp.unk_id(), sp.pad_id(), sp.get_piece_size()) == (1, 3, 2, 0, 300)
        held_out = SPM_HELD_OUT + ([(t, 16) for t in nmt_probe_texts(sp)] if rule == "nmt_nfkc" else [])
        cases = [{"text": t, "context_length": c, "ids": finish(sp.encode(t), bos, eos, c)} for t, c in held_out]
        assert any(2 in case["ids"] for case in cases), "no held-out sentence reaches the unknown token"
        assert any(len(sp.encode(case["text"])) + 2 > case["context_length"] for case in cases), "nothing truncated"
        models.append({"model": name, "normalization": rule, "bos_id": bos, "eos_id": eos,
                       "vocab_size": sp.get_piece_size(), "cases": cases})
    write_json("spm_cases.json", {"models": models})


# ---------------------------------------------------------------- CLIP byte-level BPE

def byte_to_unicode():
    """CLIP's (GPT-2's) map: printable Latin-1 bytes stand for themselves, the other bytes take
    the code points from 256 up, in byte order. Returned in CLIP's vocabulary order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping = [(b, chr(b)) for b in keep]
    extra = 0
    for b in range(256):
        if b not in keep:
            mapping.append((b, chr(256 + extra)))
            extra += 1
    return mapping


BYTE_ORDER = byte_to_unicode()
B2U = dict(BYTE_ORDER)


def is_space(c):
    return c in "\t\n\v\f\r\x85" or unicodedata.category(c)[0] == "Z"


def clip_clean(text):
    text = unicodedata.normalize("NFC", text)
    words, word = [], ""
    for c in text + " ":
        if is_space(c):
            if word:
                words.append(word)
            word = ""
        else:
            word += c
    return " ".join(words).lower()


def clip_split_special(text):
    """Hugging Face's added-token split: the special tokens are cut out before the pattern runs."""
    parts, i = [], 0
    while True:
        hits = [(text.find(t, i), t) for t in (SOT, EOT) if text.find(t, i) >= 0]
        if not hits:
            parts.append(text[i:])
            return parts
        at, token = min(hits)
        parts += [text[i:at], token]
        i = at + len(token)


def clip_pieces(text):
    """The pre-tokenization pattern's matches, in order (see the module docstring)."""
    def cat(c):
        return unicodedata.category(c)[0]

    pieces, i, n = [], 0, len(text)
    while i < n:
        for literal in CONTRACTIONS:
            if text[i:i + len(literal)].lower() == literal:
                pieces.append(text[i:i + len(literal)])
                i += len(literal)
                break
        else:
            c = text[i]
            if cat(c) == "L":
                j = i
                while j < n and cat(text[j]) == "L":
                    j += 1
                pieces.append(text[i:j])
                i = j
            elif cat(c) == "N":
                pieces.append(c)
                i += 1
            elif is_space(c):
                i += 1
            else:
                j = i
                while j < n and cat(text[j]) not in "LN" and not is_space(text[j]):
                    j += 1
                pieces.append(text[i:j])
                i = j
    return pieces


def symbols(piece):
    """A word as BPE symbols: its UTF-8 bytes mapped to unicode, `</w>` on the last one."""
    s = [B2U[b] for b in piece.encode("utf-8")]
    s[-1] += "</w>"
    return s


def train_bpe(lines, merges):
    """Plain BPE over word counts: merge the most frequent adjacent pair (ties: smallest pair)."""
    words = collections.Counter()
    for line in lines:
        for piece in clip_pieces(clip_clean(line)):
            words[tuple(symbols(piece))] += 1
    learned = []
    for _ in range(merges):
        pairs = collections.Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        learned.append(best)
        words = {tuple(merge_pair(list(w), best)): c for w, c in words.items()}
    return learned


def clip_bpe(piece, ranks):
    """CLIP's bpe(): repeatedly merge the lowest-ranked adjacent pair, every occurrence, left to right."""
    word = symbols(piece)
    while len(word) > 1:
        pair = min(zip(word, word[1:]), key=lambda p: ranks.get(p, float("inf")))
        if pair not in ranks:
            break
        word = merge_pair(word, pair)
    return word


def clip_encode(text, vocab, ranks):
    ids = []
    for part in clip_split_special(clip_clean(text)):
        if part in (SOT, EOT):
            ids.append(vocab[part])
            continue
        for piece in clip_pieces(part):
            ids.extend(vocab[s] for s in clip_bpe(piece, ranks))
    return ids


CLIP_CASES = [
    ("a photo of a t-shirt", 77),
    ("A Photo Of An ANKLE BOOT.", 77),
    ("It's the sneakers' price: $1,999.99 (tax incl.)", 77),
    ("they're here; we've got it, I'm sure you'll see, he'd say", 77),
    ("  repeated    spaces\tand\ttabs\n\nand newlines  ", 77),
    ("café, naïve, résumé", 77),
    ("cafe\u0301 decomposed", 77),
    ("中 and 中文 in a caption", 77),
    ("emoji 😀!! and ¿questions? «quotes» 10°C", 77),
    ("DON'T SHOUT'S", 77),
    ("a <|endoftext|> inside and <|startoftext|>", 77),
    ("UPPER <|ENDOFTEXT|> and glued!<|endoftext|>x", 77),
    ("controls\x1c\x01 and nbsp\u00a0and\u3000ideographic space", 77),
    ("", 77),
    ("   ", 77),
    ("x", 77),
    ("a striped woollen pullover, a leather jacket, two red hats and a pair of ankle boots on sale", 16),
    ("three words here", 5),
]


def make_clip():
    learned = train_bpe(corpus(23, 1200) + ["café naïve résumé 中文 emoji 😀 °C"] * 3, CLIP_MERGES)
    tokens = [u for _, u in BYTE_ORDER]
    tokens += [u + "</w>" for u in tokens]
    for a, b in learned:
        if a + b not in tokens:  # two merges may spell the same symbol; it keeps its first id
            tokens.append(a + b)
    tokens += [SOT, EOT]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens)
    ranks = {pair: r for r, pair in enumerate(learned)}

    write_json("clip_vocab.json", vocab)
    with open(os.path.join(OUT, "clip_merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in learned))

    bos, eos = vocab[SOT], vocab[EOT]
    cases = [{"text": t, "context_length": c, "ids": finish(clip_encode(t, vocab, ranks), bos, eos, c)}
             for t, c in CLIP_CASES]
    write_json("clip_cases.json", {"vocab": "clip_vocab.json", "merges": "clip_merges.txt", "bos_id": bos,
                                   "eos_id": eos, "vocab_size": len(vocab), "cases": cases})


def write_json(name, value):
    """Indented, with each case (and the vocabulary's entries) on one line of its own."""
    def dump(v, indent):
        pad = " " * indent
        if isinstance(v, dict) and any(isinstance(x, (dict, list)) for x in v.values()):
            items = [f"{pad} {json.dumps(k, ensure_ascii=False)}: {dump(x, indent + 1)}" for k, x in v.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(v, list) and any(isinstance(x, dict) for x in v):
            return "[\n" + ",\n".join(f"{pad} {dump(x, indent + 1)}" for x in v) + "\n" + pad + "]"
        if isinstance(v, dict) and len(v) > 8:
            return "{\n" + ",\n".join(f"{pad} {json.dumps(k, ensure_ascii=False)}: {json.dumps(x)}" for k, x in v.items()) + "\n" + pad + "}"
        return json.dumps(v, ensure_ascii=False)
    with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="\n") as f:
        f.write(dump(value, 0) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    make_sentencepiece()
    make_clip()


if __name__ == "__main__":
    main()
