"""A small CLIP byte-level BPE: a trainer that writes CLIP-layout `vocab.json` + `merges.txt`, and a tokenizer
written from CLIP's definition (openai/CLIP clip/simple_tokenizer.py; HF CLIPTokenizer loads the same files):

- bytes -> printable unicode: the bytes '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves, every other byte b
  maps to chr(256 + k) for the k-th such byte in increasing order;
- vocab order: the 256 byte characters, the same 256 with "</w>", one entry per merge (its concatenation),
  then "<|startoftext|>" and "<|endoftext|>" (the two highest ids);
- merges.txt: a "#version: 0.2" line, then one "left right" pair per line, rank = line order;
- encode: html-unescape, collapse whitespace, strip, lower-case; split by CLIP's pattern; each piece's bytes
  mapped to characters, the last one suffixed "</w>"; repeatedly merge the lowest-ranked adjacent pair.
CLIP's pattern uses \\p{L} / \\p{N} (the `regex` module, absent here): the ASCII equivalent below is exact
for ASCII text, and the test texts are ASCII.
"""
import html
import json
import re

START, END = "<|startoftext|>", "<|endoftext|>"
_PATTERN = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")


def bytes_to_unicode():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def clean(text):
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


def _word(piece, byte_map):
    chars = [byte_map[b] for b in piece.encode("utf-8")]
    return chars[:-1] + [chars[-1] + "</w>"]


def train(texts, merges_wanted):
    """Greedy BPE over the words of `texts`: the most frequent adjacent pair is merged each step (ties: the
    lexicographically smallest pair); a pair whose concatenation is already a token is skipped so every vocab
    entry stays unique. Returns (vocab {token: id}, merges [(left, right)])."""
    byte_map = bytes_to_unicode()
    counts = {}
    for t in texts:
        for piece in _PATTERN.findall(clean(t)):
            key = tuple(_word(piece, byte_map))
            counts[key] = counts.get(key, 0) + 1
    base = list(byte_map.values())
    tokens = base + [c + "</w>" for c in base]
    known = set(tokens)
    merges, words = [], dict(counts)
    while len(merges) < merges_wanted:
        pairs = {}
        for w, n in words.items():
            for p in zip(w, w[1:]):
                pairs[p] = pairs.get(p, 0) + n
        ranked = sorted((p for p in pairs if "".join(p) not in known), key=lambda p: (-pairs[p], p))
        if not ranked:
            break
        best = ranked[0]
        merges.append(best)
        known.add("".join(best))
        tokens.append("".join(best))
        words = {tuple(merge_pair(list(w), best)): n for w, n in words.items()}
    tokens += [START, END]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def merge_pair(word, pair):
    """The word with every occurrence of the adjacent pair joined into one symbol."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def write(folder, vocab, merges):
    with open(f"{folder}/vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(f"{folder}/merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


class ClipTokenizer:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.byte_map = bytes_to_unicode()

    @classmethod
    def load(cls, folder):
        with open(f"{folder}/vocab.json", encoding="utf-8") as f:
            vocab = json.load(f)
        with open(f"{folder}/merges.txt", encoding="utf-8") as f:
            lines = f.read().split("\n")
        return cls(vocab, [tuple(line.split(" ")) for line in lines[1:] if line])

    def bpe(self, piece):
        word = _word(piece, self.byte_map)
        while len(word) > 1:
            ranked = [(self.ranks[p], p) for p in zip(word, word[1:]) if p in self.ranks]
            if not ranked:
                break
            word = merge_pair(word, min(ranked)[1])
        return word

    def encode(self, text, context):
        """[start] + ids + [end], the content truncated so the end token stays last within `context`."""
        ids = [self.vocab[t] for piece in _PATTERN.findall(clean(text)) for t in self.bpe(piece)]
        return [self.vocab[START]] + ids[: context - 2] + [self.vocab[END]]
