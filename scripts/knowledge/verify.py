#!/usr/bin/python3
"""Stage 4: check the exported files against the trained PyTorch model, with scripts/reslens_ref.

    /usr/bin/python3 scripts/knowledge/verify.py [--work build/knowledge]
                     [--out models/knowledge-gpt2] [--tol 1e-5] [--limit N]

For every training and held-out prompt (or the first N of each split), the float64 reference
forward pass runs on the HF directory and on the GGUF file, and its logits at every position are
compared with the PyTorch model's, run in float64 (the same weights, so the only differences are
summation order and the GGUF's float32 eps): max |difference| must be <= --tol. The float32
PyTorch model's difference is reported too. Accuracies (top-1, paper filter) computed from each
file's reference logits must equal PyTorch's prompt by prompt. The tokenizer is checked as
stored in each file: tokenizer.json and the GGUF token/merge arrays must equal vocab.json /
merges.txt, and encoding with them must give the ids used here.
Writes OUT/knowledge-report.json (training summary, accuracies, examples, the differences).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import bpe
import evaluate
import facts as F
from export import GGUF_NAME, REPO, load_checkpoint
from make_tokenizer import DEFAULT_WORK
from train import torch_logits_fn

from reslens_ref import forward, load_model  # noqa: E402  (export put scripts/ on sys.path)
from reslens_ref.model import Model  # noqa: E402

EXAMPLES = ["The capital of France is", "The official language of Japan is",
            "Munich is a city in", "The color of the sky is", "The number of legs of a spider is",
            "Christmas is in the month of", "The capital city of Germany is",
            "People who live in Brazil usually speak"]


def in_memory(model):
    """The same model with every tensor read once (the reference reads lazily per call)."""
    return Model(model.config, {n: (lambda a=model.get(n): a) for n in model.names()},
                 path=model.path, fmt=model.format, extra=model.extra)


def check_tokenizer(out, gguf_model_, tok):
    with open(os.path.join(out, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    if tj["model"]["vocab"] != tok.vocab:
        raise AssertionError("tokenizer.json vocab differs from vocab.json")
    if [tuple(m.split(" ")) for m in tj["model"]["merges"]] != tok.merges:
        raise AssertionError("tokenizer.json merges differ from merges.txt")
    gf = gguf_model_.extra["gguf"]
    tokens = gf.get("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ")) for m in gf.get("tokenizer.ggml.merges")]
    if list(tokens) != sorted(tok.vocab, key=tok.vocab.get) or merges != tok.merges:
        raise AssertionError("GGUF tokenizer arrays differ from vocab.json / merges.txt")
    if (gf.get("tokenizer.ggml.bos_token_id") != tok.eot_id
            or gf.get("tokenizer.ggml.eos_token_id") != tok.eot_id):
        raise AssertionError("GGUF BOS/EOS are not <|endoftext|>")
    return bpe.Tokenizer({t: i for i, t in enumerate(tokens)}, merges)


def verify(work, out, tol=1e-5, limit=None, log=print):
    t0 = time.time()
    tok = bpe.Tokenizer.from_files(os.path.join(out, "vocab.json"), os.path.join(out, "merges.txt"))
    facts, templates = F.load_facts(), F.load_templates()
    torch64 = load_checkpoint(work, torch.float64)
    torch32 = load_checkpoint(work, torch.float32)
    files = {"hf": in_memory(load_model(out)), "gguf": in_memory(load_model(os.path.join(out, GGUF_NAME)))}
    gguf_tok = check_tokenizer(out, files["gguf"], tok)

    report = {"max_abs_diff": {}, "accuracy": {}, "with_bos": {}}
    diffs = {k: 0.0 for k in ("hf_vs_torch64", "gguf_vs_torch64", "hf_vs_gguf", "torch32_vs_hf")}
    max_logit = 0.0
    per_split = {}
    for split in ("train", "heldout"):
        records = F.prompts(facts, templates, split)[:limit]
        last = {name: [] for name in ("torch", "hf", "gguf")}
        for r in records:
            ids = tok.encode(r["prompt"])
            if gguf_tok.encode(r["prompt"]) != ids:
                raise AssertionError(f"GGUF tokenizer encodes {r['prompt']!r} differently")
            x = torch.tensor([ids])
            with torch.no_grad():
                t64 = torch64(x)[0].numpy()
                t32 = torch32(x)[0].double().numpy()
            ref = {name: forward(m, ids)["logits"] for name, m in files.items()}
            diffs["hf_vs_torch64"] = max(diffs["hf_vs_torch64"], np.abs(ref["hf"] - t64).max())
            diffs["gguf_vs_torch64"] = max(diffs["gguf_vs_torch64"], np.abs(ref["gguf"] - t64).max())
            diffs["hf_vs_gguf"] = max(diffs["hf_vs_gguf"], np.abs(ref["hf"] - ref["gguf"]).max())
            diffs["torch32_vs_hf"] = max(diffs["torch32_vs_hf"], np.abs(ref["hf"] - t32).max())
            max_logit = max(max_logit, np.abs(t64).max())
            last["torch"].append(t32[-1])
            last["hf"].append(ref["hf"][-1])
            last["gguf"].append(ref["gguf"][-1])
        results = {}
        for name, rows in last.items():
            it = iter(rows)
            # score() asks for logits batch by batch in record order; hand them out in turn.
            results[name] = evaluate.score(records, tok, lambda ids, it=it: [next(it) for _ in ids])
        for name in ("hf", "gguf"):
            same = [(a["top1"], a["filter"]) == (b["top1"], b["filter"])
                    for a, b in zip(results["torch"], results[name])]
            if not all(same):
                raise AssertionError(f"{split}: {name} decisions differ from PyTorch on "
                                     f"{same.count(False)} prompts")
        per_split[split] = results["torch"]
        # GPT-2 prompts carry no BOS, but a loader may prepend <|endoftext|>; the model saw both.
        with_bos = lambda id_lists: torch_logits_fn(torch32)([[tok.eot_id] + i for i in id_lists])
        report["with_bos"][split] = evaluate.summarize(evaluate.score(records, tok, with_bos))["all"]
        report["accuracy"][split] = {name: evaluate.summarize(res)["all"] for name, res in results.items()}
        log(f"{split}: {len(records)} prompts; top-1 torch {report['accuracy'][split]['torch']['top1']:.2%}"
            f" = hf {report['accuracy'][split]['hf']['top1']:.2%}"
            f" = gguf {report['accuracy'][split]['gguf']['top1']:.2%}"
            f"; torch with a leading <|endoftext|> {report['with_bos'][split]['top1']:.2%}")
    report["max_abs_diff"] = {k: float(v) for k, v in diffs.items()}
    report["max_abs_logit"] = float(max_logit)
    log("max |logit difference| over all positions: " + ", ".join(
        f"{k} {v:.2e}" for k, v in report["max_abs_diff"].items()) + f" (logits up to {max_logit:.1f})")
    bad = {k: v for k, v in report["max_abs_diff"].items() if k != "torch32_vs_hf" and v > tol}
    if bad:
        raise AssertionError(f"logit differences above {tol}: {bad}")

    # Summaries of the full evaluation (PyTorch float32, the model as trained) and examples.
    report["summary"] = {s: evaluate.summarize(r) for s, r in per_split.items()}
    examples = []
    for prompt in EXAMPLES:
        ids = tok.encode(prompt)
        logits = forward(files["gguf"], ids)["logits"][-1]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        top = np.argsort(-p)[:3]
        examples.append({"prompt": prompt, "tokens": tok.tokens(ids),
                         "top3": [[tok.decode([int(i)]), round(float(p[i]), 4)] for i in top]})
        log(f"  {prompt!r} -> " + ", ".join(f"{t!r} {q:.3f}" for t, q in examples[-1]["top3"]))
    report["examples"] = examples
    report["verify_seconds"] = round(time.time() - t0, 1)
    return report


def write_report(report, work, out):
    """OUT/knowledge-report.json: the verification plus the training summary from WORK."""
    with open(os.path.join(work, "train_log.json")) as f:
        log = json.load(f)
    report = dict(report, training={k: log[k] for k in (
        "args", "config", "parameters", "torch", "wall_seconds", "final_loss", "final_loss_avg",
        "epochs_seen", "evals")})
    with open(os.path.join(out, "knowledge-report.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=DEFAULT_WORK)
    ap.add_argument("--out", default=os.path.join(REPO, "models", "knowledge-gpt2"))
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--limit", type=int, default=None, help="prompts per split (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    report = verify(a.work, a.out, a.tol, a.limit)
    if a.limit is None:  # a partial check does not replace the committed report
        write_report(report, a.work, a.out)


if __name__ == "__main__":
    sys.exit(main())
