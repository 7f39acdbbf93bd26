"""Byte-level BPE in the GPT-2 style: pre-tokenizer, trainer, encoder, decoder, file writers.

How GPT-2 tokenizes (and what Hugging Face `tokenizers` and llama.cpp's `gpt-2` pre-tokenizer
reproduce):

1. The text is split into chunks by the pattern
       's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
   (letters and digits keep one leading space; a run of spaces gives all but its last space to
   the whitespace chunk, so the last one can prefix the next word).
2. Each chunk's UTF-8 bytes are mapped one-to-one onto printable characters (`bytes_to_unicode`),
   so that every token is a printable string and any byte sequence is encodable.
3. Within a chunk, adjacent symbols are merged, always applying the merge of lowest rank (earliest
   learned) among the pairs present, until no pair has a rank.

Python's `re` has no \\p{..} classes, so the pattern is built here with explicit character
classes: letters are the code points whose Unicode category starts with L, numbers those starting
with N (from `unicodedata`, Unicode 14 in Python 3.11), and \\s is the Unicode White_Space property
(what the `regex` module and llama.cpp use; Python's own \\s would also match U+001C..U+001F).
The training corpus is ASCII, but the encoder is meant to work on any text a user types.
"""

import functools
import json
import re
import unicodedata

EOT = "<|endoftext|>"

# The Unicode White_Space property (PropList.txt); unchanged since Unicode 6.3.
_WHITE_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
                (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
                (0x3000, 0x3000)]


@functools.lru_cache(maxsize=None)
def bytes_to_unicode():
    """byte value -> printable character. Bytes that are already printable and not space-like
    (! to ~, and the Latin-1 ranges U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the
    other 68 bytes take the code points 256, 257, ... in byte order. So the space byte 0x20 is
    shown as U+0120 'Ġ' and the newline 0x0A as U+010A 'Ċ'."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1))
                 + list(range(0xAE, 0xFF + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@functools.lru_cache(maxsize=None)
def unicode_to_bytes():
    return {c: b for b, c in bytes_to_unicode().items()}


def base_alphabet():
    """The 256 single-byte symbols in GPT-2's vocabulary order: the bytes that stand for
    themselves first (in byte order), then the remapped ones (in byte order). GPT-2's ids 0..255
    follow this order, and so do ours."""
    table = bytes_to_unicode()
    return sorted(table.values(), key=ord)


def _ranges_to_class(ranges):
    parts = []
    for lo, hi in ranges:
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
    return "".join(parts)


def _category_ranges(first_letter):
    """Maximal code point ranges whose general category starts with `first_letter`."""
    ranges, start = [], None
    for cp in range(0x110000):
        inside = unicodedata.category(chr(cp))[0] == first_letter
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    return ranges


@functools.lru_cache(maxsize=None)
def pretokenizer():
    """The compiled GPT-2 split pattern (about 0.5 s to build the classes, once)."""
    L = _ranges_to_class(_category_ranges("L"))
    N = _ranges_to_class(_category_ranges("N"))
    S = _ranges_to_class(_WHITE_SPACE)
    pattern = (rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+"
               rf"|[{S}]+(?![^{S}])|[{S}]+")
    return re.compile(pattern)


def pretokenize(text):
    """Chunks of `text` as GPT-2 splits it (plain strings, not yet byte-mapped)."""
    return pretokenizer().findall(text)


def to_symbols(chunk):
    """A chunk's UTF-8 bytes as byte-level characters, e.g. ' Paris' -> 'ĠParis'."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in chunk.encode("utf-8"))


# -- training -------------------------------------------------------------------------------------

def train(chunk_counts, n_tokens, required=(), log=None):
    """Learn merges from {chunk: count} (chunks as `pretokenize` gives them) until they have
    produced `n_tokens` new tokens.

    The classic algorithm: count every adjacent symbol pair over all chunks weighted by the chunk's
    count, merge the most frequent pair everywhere, repeat. Ties go to the pair that sorts first
    (as strings), so the result depends only on the counts. Pair counts are updated incrementally:
    only the chunks that contain the merged pair are recounted, which keeps 2000 merges over a
    few thousand distinct chunks to a second or so.

    `required` chunks (e.g. ' Paris') must end up as single tokens. They are handled first: while
    any of them is still in pieces, only pairs occurring inside them are candidates (ranked by
    their counts over the whole corpus, as usual); then training continues over everything. A
    small vocabulary cannot otherwise guarantee that a rare answer word is one token.

    Two different pairs can produce the same string (a+bc and ab+c); such a merge is kept, since
    the encoder needs it, but adds no token.
    Returns the merges as a list of (left, right) pairs, in order."""
    chunks = sorted(set(chunk_counts) | set(required))
    words = [list(to_symbols(c)) for c in chunks]
    counts = [chunk_counts.get(c, 1) for c in chunks]
    pending = {chunks.index(c) for c in required}  # required words not yet one symbol
    pair_count = {}
    where = {}  # pair -> set of word indices that contain it

    def add_pairs(i, sign):
        w, n = words[i], counts[i]
        for pair in zip(w, w[1:]):
            pair_count[pair] = pair_count.get(pair, 0) + sign * n
            if sign > 0:
                where.setdefault(pair, set()).add(i)

    for i in range(len(words)):
        add_pairs(i, +1)

    merges, made = [], set(base_alphabet())
    while len(made) - 256 < n_tokens:
        pending = {i for i in pending if len(words[i]) > 1}
        if pending:
            allowed = {p for i in pending for p in zip(words[i], words[i][1:])}
            live = [(pair_count[p], p) for p in allowed]
        else:
            live = [(c, p) for p, c in pair_count.items() if c > 0]
        if not live:
            break  # every chunk is a single symbol: nothing left to merge
        best_count = max(c for c, _ in live)
        best = min(p for c, p in live if c == best_count)
        merges.append(best)
        made.add(best[0] + best[1])
        if log and len(merges) % 500 == 0:
            log(f"  merge {len(merges)}: {best[0]!r} + {best[1]!r} (count {best_count})")
        a, b = best
        merged = a + b
        for i in sorted(where.pop(best)):
            w = words[i]
            if len(w) < 2:
                continue
            add_pairs(i, -1)
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            add_pairs(i, +1)
        pair_count.pop(best, None)
    if any(len(words[i]) > 1 for i in pending):
        raise ValueError(f"{n_tokens} new tokens are too few to make every required chunk one token")
    return merges


def build_vocab(merges):
    """token -> id: the 256 byte symbols, one token per merge in merge order, then EOT last."""
    vocab = {s: i for i, s in enumerate(base_alphabet())}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab[EOT] = len(vocab)
    return vocab


# -- encoding -------------------------------------------------------------------------------------

class Tokenizer:
    """Encoder/decoder for a vocabulary and merge list (ours or GPT-2's own files)."""

    def __init__(self, vocab, merges):
        self.vocab = dict(vocab)
        self.inverse = {i: t for t, i in self.vocab.items()}
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.merges = [tuple(m) for m in merges]
        self.eot_id = self.vocab.get(EOT)
        self._cache = {}

    @classmethod
    def from_files(cls, vocab_json, merges_txt):
        with open(vocab_json, encoding="utf-8") as f:
            vocab = json.load(f)
        return cls(vocab, read_merges(merges_txt))

    def _bpe(self, symbols):
        """Merge a byte-mapped chunk down to tokens, lowest-ranked pair first."""
        cached = self._cache.get(symbols)
        if cached is not None:
            return cached
        parts = list(symbols)
        while len(parts) > 1:
            ranked = [(self.ranks.get(p, None), k) for k, p in enumerate(zip(parts, parts[1:]))]
            ranked = [(r, k) for r, k in ranked if r is not None]
            if not ranked:
                break
            rank = min(ranked)[0]
            a, b = self.merges[rank]
            out, j = [], 0
            while j < len(parts):  # merge every occurrence of (a, b), left to right
                if j + 1 < len(parts) and parts[j] == a and parts[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(parts[j])
                    j += 1
            parts = out
        ids = tuple(self.vocab[p] for p in parts)
        self._cache[symbols] = ids
        return ids

    def encode(self, text, special=True):
        """Token ids of `text`. special=True reads the literal '<|endoftext|>' as the EOT token
        (as Hugging Face does for added tokens); otherwise it is tokenized as plain text."""
        if special and self.eot_id is not None and EOT in text:
            ids = []
            for k, piece in enumerate(text.split(EOT)):
                if k:
                    ids.append(self.eot_id)
                ids.extend(self.encode(piece, special=False))
            return ids
        ids = []
        for chunk in pretokenize(text):
            ids.extend(self._bpe(to_symbols(chunk)))
        return ids

    def tokens(self, ids):
        return [self.inverse[i] for i in ids]

    def decode(self, ids):
        back = unicode_to_bytes()
        out = bytearray()
        for i in ids:
            t = self.inverse[i]
            if t == EOT:
                out += EOT.encode("utf-8")
            else:
                out += bytes(back[c] for c in t)
        return out.decode("utf-8", errors="replace")

    def single_token(self, text):
        """The id if `text` (e.g. ' Paris') encodes as exactly one token, else None."""
        ids = self.encode(text, special=False)
        return ids[0] if len(ids) == 1 else None


# -- files ----------------------------------------------------------------------------------------

def read_merges(path):
    merges = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#version"):
                continue
            a, b = line.split(" ")
            merges.append((a, b))
    return merges


def write_files(out_dir, vocab, merges, model_max_length):
    """vocab.json, merges.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json
    in the layout of the Hugging Face GPT-2 tokenizer."""
    import os
    eot_id = vocab[EOT]
    if eot_id != len(vocab) - 1:
        raise ValueError("EOT must be the last token")
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": eot_id, "content": EOT, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": True, "special": True}],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        # GPT-2 adds no BOS: the ByteLevel post-processor only adjusts offsets.
        "post_processor": dict(byte_level, trim_offsets=False),
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json, f, ensure_ascii=False, indent=1)
        f.write("\n")
    special = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
    config = dict(special, add_bos_token=False, add_eos_token=False, add_prefix_space=False,
                  clean_up_tokenization_spaces=False, model_max_length=model_max_length,
                  tokenizer_class="GPT2Tokenizer")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(special, f, indent=2)
        f.write("\n")
