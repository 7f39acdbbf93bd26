#!/usr/bin/python3
"""Stage 1: write the epoch-0 corpus and train the byte-level BPE tokenizer on it.

    /usr/bin/python3 scripts/knowledge/make_tokenizer.py [--work build/knowledge] [--seed 0]
                                                          [--vocab 2048]

Writes WORK/corpus.txt (the epoch-0 documents joined by <|endoftext|>, exactly the text the first
training epoch tokenizes) and WORK/tokenizer/ (vocab.json, merges.txt, tokenizer.json,
tokenizer_config.json, special_tokens_map.json). Every answer word, with its leading space, is
forced to be one token (see bpe.train). Checks that the corpus round-trips through encode/decode
and that every answer is a single token. About 2 seconds.
"""

import argparse
import collections
import os
import sys
import time

import bpe
import corpus
import facts as F

DEFAULT_WORK = os.path.normpath(os.path.join(F.HERE, "..", "..", "build", "knowledge"))


def answer_tokens(facts):
    """Every answer as the token it must be: ' ' + word."""
    return sorted({" " + a for pairs in facts.values() for _, a in pairs})


def make_tokenizer(work, seed, vocab_size, n_ctx, log=print):
    t0 = time.time()
    facts, templates = F.load_facts(), F.load_templates()
    docs = corpus.epoch_documents(facts, templates, seed, 0)
    text = bpe.EOT.join(docs)
    os.makedirs(os.path.join(work, "tokenizer"), exist_ok=True)
    with open(os.path.join(work, "corpus.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(text)

    counts = collections.Counter()
    for d in docs:
        counts.update(bpe.pretokenize(d))
    required = answer_tokens(facts)
    # 256 byte tokens + learned tokens + <|endoftext|> = vocab_size.
    merges = bpe.train(counts, vocab_size - 257, required=required)
    vocab = bpe.build_vocab(merges)
    if len(vocab) != vocab_size:
        raise RuntimeError(f"vocabulary has {len(vocab)} tokens, wanted {vocab_size}")
    bpe.write_files(os.path.join(work, "tokenizer"), vocab, merges, n_ctx)

    # Check what the rest of the pipeline relies on, from the files just written.
    tok = bpe.Tokenizer.from_files(os.path.join(work, "tokenizer", "vocab.json"),
                                   os.path.join(work, "tokenizer", "merges.txt"))
    ids = tok.encode(text)
    if tok.decode(ids) != text:
        raise RuntimeError("corpus does not round-trip through the tokenizer")
    split = [a for a in required if tok.single_token(a) is None]
    if split:
        raise RuntimeError(f"answers that are not one token: {split}")
    log(f"tokenizer: {len(vocab)} tokens ({len(merges)} merges) from {len(docs)} documents, "
        f"{len(counts)} distinct chunks; corpus {len(text)} chars = {len(ids)} tokens, round trip ok; "
        f"{len(required)} answers are single tokens ({time.time() - t0:.1f} s)")
    return tok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=DEFAULT_WORK)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--n-ctx", type=int, default=64, help="model_max_length in tokenizer_config")
    a = ap.parse_args(argv)
    make_tokenizer(a.work, a.seed, a.vocab, a.n_ctx)


if __name__ == "__main__":
    sys.exit(main())
