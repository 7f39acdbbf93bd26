#!/usr/bin/python3
"""Tests of the knowledge model's pipeline and of the committed files (~40 s, no training run
beyond a few steps of a tiny model).

    /usr/bin/python3 scripts/knowledge/test_knowledge.py [--shared PATH]

1. The GPT-2 encoder (bpe.py) with OpenAI's GPT-2 vocabulary reproduces llama.cpp's and ggml's
   GPT-2 tokenizer test vectors from ../shared (pre-tokenizer, Unicode classes, BPE ranks).
2. The corpus is deterministic, and no held-out prompt occurs in it.
3. Retraining the tokenizer gives exactly the committed vocab.json / merges.txt; the corpus
   round-trips; every answer is one token; tokenizer.json and the GGUF hold the same vocabulary.
4. The committed HF directory and GGUF have the expected config, keys and tensor layout, agree
   with each other through the float64 reference, and answer a few prompts correctly.
5. data/*.jsonl are exactly the prompts the facts and templates define.
6. Training is deterministic: two 3-step runs of a tiny model give bit-identical weights.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "scripts"))
sys.path.insert(0, os.path.join(REPO, "scripts", "tests"))

import bpe  # noqa: E402
import corpus  # noqa: E402
import facts as F  # noqa: E402
from harness import check, finish  # noqa: E402
from reslens_ref import forward, load_model  # noqa: E402
from reslens_ref.gguf import GGUFFile  # noqa: E402

MODEL_DIR = os.path.join(REPO, "models", "knowledge-gpt2")
GGUF = os.path.join(MODEL_DIR, "knowledge-gpt2.gguf")
DATA = os.path.join(REPO, "data")
DEFAULT_SHARED = os.path.normpath(os.path.join(REPO, "..", "shared"))


def test_gpt2_vectors(shared):
    gpt2 = bpe.Tokenizer.from_files(os.path.join(shared, "tokenizers", "gpt2", "encoder.json"),
                                    os.path.join(shared, "tokenizers", "gpt2", "vocab.bpe"))
    base = os.path.join(shared, "tokenizers", "ggml-vocab", "ggml-vocab-gpt-2.gguf")
    with open(base + ".inp", encoding="utf-8") as f:
        inputs = f.read().split("\n__ggml_vocab_test__\n")
    with open(base + ".out", encoding="utf-8") as f:
        outputs = f.read().split("\n")
    bad = [s for s, o in zip(inputs, outputs) if gpt2.encode(s, special=False) != [int(x) for x in o.split()]]
    check("llama.cpp GPT-2 vocab vectors", not bad and len(inputs) > 40,
          f"{len(inputs)} strings, mismatches: {bad[:3]}")
    n, bad = 0, []
    with open(os.path.join(shared, "tokenizers", "testvectors", "ggml-prompts-gpt-2.txt"), encoding="utf-8") as f:
        for line in f:
            if " => " not in line:
                continue
            text, ids = line.rstrip("\n").rsplit(" => ", 1)
            n += 1
            if gpt2.encode(text, special=False) != [int(x) for x in ids.split(",")]:
                bad.append(text)
    check("ggml GPT-2 prompt vectors", not bad and n > 50, f"{n} prompts, mismatches: {bad[:3]}")
    table = bpe.bytes_to_unicode()
    check("bytes_to_unicode is a bijection onto printable characters",
          len(set(table.values())) == 256 and table[32] == "\u0120" and table[10] == "\u010a"
          and all(c.isprintable() for c in table.values()))
    check("pre-tokenizer splits",
          bpe.pretokenize("I'm  here,   don't\n\n 42x Äpfel!") ==
          ["I", "'m", " ", " here", ",", "  ", " don", "'t", "\n\n", " 42", "x", " Äpfel", "!"],
          repr(bpe.pretokenize("I'm  here,   don't\n\n 42x Äpfel!")))


def test_corpus(facts, templates):
    a = corpus.epoch_documents(facts, templates, 0, 0)
    check("corpus is deterministic", a == corpus.epoch_documents(facts, templates, 0, 0))
    b = corpus.epoch_documents(facts, templates, 0, 1)
    check("epochs differ", a != b)
    text = "\n".join(a + b + corpus.epoch_documents(facts, templates, 0, 2))
    held = F.prompts(facts, templates, "heldout")
    leaked = [r["prompt"] for r in held if r["prompt"] in text]
    check("no held-out prompt occurs in the corpus", not leaked, f"{len(leaked)} leaked: {leaked[:3]}")
    n_facts = sum(len(v) for v in facts.values())
    check("at least 400 facts over six types", n_facts >= 400 and len(facts) == 6, f"{n_facts} facts")
    for t in F.TYPES:
        train_sentences = [corpus.fact_sentence(tpl, s, ans) for tpl in templates[t]["train"]
                           for s, ans in facts[t]]
        missing = [x for x in train_sentences if x not in text]
        check(f"every {t} training sentence is in the corpus", not missing, f"{missing[:2]}")


def test_tokenizer(facts, work):
    import make_tokenizer
    with open(os.path.join(MODEL_DIR, "tokenizer_config.json")) as f:
        n_ctx = json.load(f)["model_max_length"]
    make_tokenizer.make_tokenizer(work, 0, 2048, n_ctx, log=lambda *_: None)
    same = all(open(os.path.join(work, "tokenizer", n), "rb").read()
               == open(os.path.join(MODEL_DIR, n), "rb").read()
               for n in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"))
    check("retrained tokenizer == committed tokenizer files", same)
    committed = bpe.Tokenizer.from_files(os.path.join(MODEL_DIR, "vocab.json"),
                                         os.path.join(MODEL_DIR, "merges.txt"))
    with open(os.path.join(work, "corpus.txt"), encoding="utf-8") as f:
        text = f.read()
    ids = committed.encode(text)
    check("corpus round-trips through the committed tokenizer", committed.decode(ids) == text,
          f"{len(text)} chars -> {len(ids)} tokens")
    answers = make_tokenizer.answer_tokens(facts)
    split = [a for a in answers if committed.single_token(a) is None]
    check("every answer (with its space) is one token", not split, f"{len(answers)} answers, split: {split}")
    check("<|endoftext|> is the last token", committed.eot_id == len(committed.vocab) - 1 == 2047)
    with open(os.path.join(MODEL_DIR, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    check("tokenizer.json: BPE, ByteLevel without prefix space, EOT added token",
          tj["model"]["type"] == "BPE" and tj["pre_tokenizer"]["type"] == "ByteLevel"
          and tj["pre_tokenizer"]["add_prefix_space"] is False and tj["pre_tokenizer"]["use_regex"]
          and tj["decoder"]["type"] == "ByteLevel"
          and tj["added_tokens"][0]["content"] == bpe.EOT and tj["added_tokens"][0]["id"] == 2047
          and tj["model"]["vocab"] == committed.vocab)
    gf = GGUFFile(GGUF)
    check("GGUF tokenizer arrays == vocab.json / merges.txt",
          list(gf.get("tokenizer.ggml.tokens")) == sorted(committed.vocab, key=committed.vocab.get)
          and [tuple(m.split(" ")) for m in gf.get("tokenizer.ggml.merges")] == committed.merges
          and gf.get("tokenizer.ggml.model") == "gpt2" and gf.get("tokenizer.ggml.pre") == "gpt-2"
          and gf.get("tokenizer.ggml.bos_token_id") == gf.get("tokenizer.ggml.eos_token_id") == 2047
          and list(gf.get("tokenizer.ggml.token_type")).count(3) == 1)
    return committed


def test_model_files(tok):
    with open(os.path.join(MODEL_DIR, "config.json")) as f:
        cfg = json.load(f)
    check("config.json is a GPT2LMHeadModel with gelu_new, tied",
          cfg["architectures"] == ["GPT2LMHeadModel"] and cfg["activation_function"] == "gelu_new"
          and cfg["tie_word_embeddings"] and cfg["vocab_size"] == 2048)
    gf = GGUFFile(GGUF)
    keys = ["context_length", "embedding_length", "feed_forward_length", "block_count",
            "attention.head_count", "attention.layer_norm_epsilon"]
    vals = {k: gf.get("gpt2." + k) for k in keys}
    check("GGUF gpt2.* keys match config.json",
          gf.get("general.architecture") == "gpt2"
          and [vals[k] for k in keys[:5]] == [cfg["n_positions"], cfg["n_embd"], cfg["n_inner"],
                                               cfg["n_layer"], cfg["n_head"]]
          and abs(vals["attention.layer_norm_epsilon"] - 1e-5) < 1e-10, str(vals))
    d, dm = cfg["n_embd"], cfg["n_inner"]
    shapes = {n: t.shape for n, t in gf.tensors.items()}  # NumPy order: ne reversed
    check("GGUF tensor layout (attn_qkv [3d, d], ffn_up [d_mlp, d], ffn_down [d, d_mlp])",
          shapes["blk.0.attn_qkv.weight"] == (3 * d, d) and shapes["blk.0.attn_qkv.bias"] == (3 * d,)
          and shapes["blk.0.ffn_up.weight"] == (dm, d) and shapes["blk.0.ffn_down.weight"] == (d, dm)
          and shapes["token_embd.weight"] == (2048, d) and "output.weight" not in shapes
          and "position_embd.weight" in shapes and "output_norm.bias" in shapes)
    size = sum(os.path.getsize(os.path.join(MODEL_DIR, n)) for n in os.listdir(MODEL_DIR))
    check("model folder under 20 MB", size < 20e6, f"{size / 1e6:.1f} MB")

    hf, gg = load_model(MODEL_DIR), load_model(GGUF)
    for prompt, target in (("The capital of France is", " Paris"),
                           ("The official language of Japan is", " Japanese"),
                           ("Christmas is in the month of", " December")):
        ids = tok.encode(prompt)
        a, b = forward(hf, ids)["logits"], forward(gg, ids)["logits"]
        rel = np.abs(a - b).max() / np.abs(a).max()
        check(f"HF == GGUF logits and top-1 for {prompt!r}",
              rel < 1e-8 and tok.decode([int(b[-1].argmax())]) == target,
              f"rel diff {rel:.1e}, top-1 {tok.decode([int(b[-1].argmax())])!r}")


def test_data(facts, templates, tok):
    for split, name in (("heldout", "knowledge.jsonl"), ("train", "knowledge-train.jsonl")):
        with open(os.path.join(DATA, name), encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        want = F.prompts(facts, templates, split)
        ok = len(rows) == len(want) and all(
            r["prompt"] == w["prompt"] and r["target"] == w["target"] and r["type"] == w["type"]
            and r["competitors"] == w["competitors"] for r, w in zip(rows, want))
        singles = all(tok.single_token(r["target"]) is not None
                      and all(tok.single_token(c) is not None for c in r["competitors"])
                      and r["target"] not in r["competitors"] for r in rows)
        check(f"data/{name}: {len(rows)} prompts as defined, single-token targets and competitors",
              ok and singles)


def test_training_determinism(work):
    import torch
    import train
    cfg = {"n_layer": 2, "d_model": 32, "n_head": 2, "d_mlp": 64, "n_ctx": 64}
    states = []
    for _ in range(2):
        model, _ = train.train(work, 3, 4, 1e-3, 0, 1, 1, 0, cfg, log=lambda *_: None)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    check("two 3-step training runs give bit-identical weights",
          all(torch.equal(states[0][k], states[1][k]) for k in states[0]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=DEFAULT_SHARED)
    a = ap.parse_args(argv)
    t0 = time.time()
    facts, templates = F.load_facts(), F.load_templates()
    test_gpt2_vectors(a.shared)
    test_corpus(facts, templates)
    with tempfile.TemporaryDirectory() as work:
        tok = test_tokenizer(facts, work)
        test_model_files(tok)
        test_data(facts, templates, tok)
        test_training_determinism(work)
    return finish(t0)


if __name__ == "__main__":
    sys.exit(main())
