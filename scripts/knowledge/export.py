#!/usr/bin/python3
"""Stage 3: export the trained model as a Hugging Face directory and a GGUF file, and write the
prompt datasets.

    /usr/bin/python3 scripts/knowledge/export.py [--work build/knowledge]
                     [--out models/knowledge-gpt2] [--data data]

OUT/ gets config.json, model.safetensors (F32, HF Conv1D layout, `transformer.` names),
generation_config.json, the tokenizer files of WORK/tokenizer/, and knowledge-gpt2.gguf (F32,
arch gpt2, tokenizer.ggml.model gpt2 / pre gpt-2). Both are written by scripts/reslens_ref's
writers from the canonical weights, so the layouts are the ones the reference (and reslens)
reads. DATA/ gets knowledge.jsonl (held-out templates) and knowledge-train.jsonl (training
templates): {"prompt", "target", "type", "competitors", "subject"} per line.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

import facts as F
from make_tokenizer import DEFAULT_WORK
from model import GPT2, GPTConfig

REPO = os.path.normpath(os.path.join(F.HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "scripts"))

from reslens_ref import ggml_types, gguf_model, hf  # noqa: E402
from reslens_ref.gguf import ARRAY, BOOL, INT32, STRING, UINT32, Value  # noqa: E402
from reslens_ref.model import Config, Model  # noqa: E402

NAME = "knowledge-gpt2"
GGUF_NAME = NAME + ".gguf"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")
# llama.cpp token types
TOKEN_NORMAL, TOKEN_CONTROL = 1, 3


def load_checkpoint(work, dtype=torch.float32):
    ck = torch.load(os.path.join(work, "checkpoint.pt"))
    model = GPT2(GPTConfig(**ck["config"]))
    model.load_state_dict(ck["state_dict"])
    return model.to(dtype).eval()


def canonical_model(model):
    """The trained weights as a reslens_ref Model (tied GPT-2, all biases)."""
    c = model.cfg
    cfg = Config(arch="gpt2", n_layers=c.n_layer, d_model=c.d_model, n_heads=c.n_head,
                 n_kv_heads=c.n_head, d_head=c.d_model // c.n_head, d_mlp=c.d_mlp, vocab=c.vocab,
                 n_ctx=c.n_ctx, norm_eps=c.eps, tied=True, qkv_bias=True, o_bias=True, name=NAME)
    tensors = model.canonical()
    return Model(cfg, {n: (lambda a=a: a) for n, a in tensors.items()}, path=NAME, fmt="torch")


def gguf_tokenizer_fields(tok_dir):
    """tokenizer.* keys as llama.cpp's GPT-2 converter writes them: tokens in id order, merges
    as 'a b' strings, <|endoftext|> a CONTROL token and BOS = EOS. add_bos_token is stated
    (false) so no loader has to guess: GPT-2 prompts start without a BOS token."""
    with open(os.path.join(tok_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    tokens = sorted(vocab, key=vocab.get)
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
        raise ValueError("vocab.json ids are not 0..n-1")
    with open(os.path.join(tok_dir, "merges.txt"), encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#version")]
    eot = vocab["<|endoftext|>"]
    types = np.full(len(tokens), TOKEN_NORMAL, dtype=np.int32)
    types[eot] = TOKEN_CONTROL
    return {
        "tokenizer.ggml.model": Value(STRING, "gpt2"),
        "tokenizer.ggml.pre": Value(STRING, "gpt-2"),
        "tokenizer.ggml.tokens": Value(ARRAY, tokens, STRING),
        "tokenizer.ggml.token_type": Value(ARRAY, types, INT32),
        "tokenizer.ggml.merges": Value(ARRAY, merges, STRING),
        "tokenizer.ggml.bos_token_id": Value(UINT32, eot),
        "tokenizer.ggml.eos_token_id": Value(UINT32, eot),
        "tokenizer.ggml.add_bos_token": Value(BOOL, False),
    }


def export_model(work, out, log=print):
    model = load_checkpoint(work)
    m = canonical_model(model)
    tok_dir = os.path.join(work, "tokenizer")
    os.makedirs(out, exist_ok=True)
    eot = m.config.vocab - 1
    hf.write(m, out, dtype="F32", extra_config={
        "bos_token_id": eot, "eos_token_id": eot, "n_ctx": m.config.n_ctx,
        # Trained without dropout; HF's defaults (0.1) would only matter in training mode.
        "attn_pdrop": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0,
        "_name_or_path": NAME})
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": eot, "eos_token_id": eot}, f, indent=2)
        f.write("\n")
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(tok_dir, name), os.path.join(out, name))
    gguf_model.write(m, os.path.join(out, GGUF_NAME), ggml_types.F32,
                     tokenizer=gguf_tokenizer_fields(tok_dir), name=NAME)
    sizes = {n: os.path.getsize(os.path.join(out, n)) for n in sorted(os.listdir(out))}
    log(f"exported to {out}: " + ", ".join(f"{n} {s / 1e6:.2f} MB" for n, s in sizes.items()
                                          if s > 1e5))
    return sizes


def write_datasets(data_dir, log=print):
    facts, templates = F.load_facts(), F.load_templates()
    os.makedirs(data_dir, exist_ok=True)
    counts = {}
    for split, fname in (("heldout", "knowledge.jsonl"), ("train", "knowledge-train.jsonl")):
        rows = F.prompts(facts, templates, split)
        with open(os.path.join(data_dir, fname), "w", encoding="utf-8") as f:
            for r in rows:
                keep = {k: r[k] for k in ("prompt", "target", "type", "competitors", "subject")}
                f.write(json.dumps(keep, ensure_ascii=False) + "\n")
        counts[fname] = len(rows)
    log("datasets: " + ", ".join(f"{data_dir}/{k} {v} prompts" for k, v in counts.items()))
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=DEFAULT_WORK)
    ap.add_argument("--out", default=os.path.join(REPO, "models", NAME))
    ap.add_argument("--data", default=os.path.join(REPO, "data"))
    a = ap.parse_args(argv)
    export_model(a.work, a.out)
    write_datasets(a.data)


if __name__ == "__main__":
    sys.exit(main())
