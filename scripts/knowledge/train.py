#!/usr/bin/python3
"""Stage 2: train the knowledge GPT-2 on the seeded corpus.

    /usr/bin/python3 scripts/knowledge/train.py [--work build/knowledge] [--steps 1500]
                     [--batch 32] [--lr 2e-3] [--seed 0] [--threads 1]

Reads WORK/tokenizer/, writes WORK/checkpoint.pt (state dict + config) and WORK/train_log.json
(arguments, loss curve, evaluations, wall time).

Data: epoch e is corpus.epoch_documents(seed, e), tokenized; documents are packed into rows of
n_ctx + 1 tokens separated by <|endoftext|>, each row starting at a document boundary, half of
them (by a seeded coin) with a leading <|endoftext|>. So a fact is seen at position 0 with and
without a BOS-like token and also after other text. Rows are taken in order, epochs follow one
another; the document that overflows a row is cut there and the next row starts with the next
document (no padding). Nothing depends on
time or on the machine except floating-point summation order, see below.

Optimisation: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices and embeddings, none on
biases and LayerNorm), linear warm-up then cosine decay to 10% of the peak, gradient clipping at
norm 1. Loss: mean next-token cross-entropy over every position of every row.

Reproducibility: torch.manual_seed(seed) fixes the initialisation; the data order depends only on
the seed. Bit-identical weights additionally need the same thread count (the sum order of a
multi-threaded matmul changes with it), the same PyTorch build (1.13.1 from Debian here) and the
same CPU kernel path, so --threads is recorded in the log; the default of 1 is the reference.
"""

import argparse
import json
import math
import os
import random
import sys
import time

import torch

import bpe
import corpus
import evaluate
import facts as F
from make_tokenizer import DEFAULT_WORK
from model import GPT2, GPTConfig


def epoch_rows(tok, facts, templates, seed, epoch, n_ctx):
    """Packed rows of n_ctx + 1 token ids (the last row may be shorter)."""
    docs = corpus.epoch_documents(facts, templates, seed, epoch)
    coin = random.Random(f"knowledge-rows/{seed}/{epoch}")
    eot, want = tok.eot_id, n_ctx + 1
    rows, row = [], None
    for d in docs:
        ids = tok.encode(d) + [eot]
        if row is None:
            row = [eot] if coin.random() < 0.5 else []
        row.extend(ids)
        if len(row) >= want:
            rows.append(row[:want])  # the document that overflows is cut; its rest is dropped
            row = None
    if row:
        rows.append(row)
    return rows


def batches(tok, facts, templates, seed, n_ctx, batch):
    """Endless (inputs [B, n_ctx], targets [B, n_ctx], epoch) with -100 marking padding."""
    epoch, pending = 0, []
    while True:
        for row in epoch_rows(tok, facts, templates, seed, epoch, n_ctx):
            pending.append(row)
            if len(pending) == batch:
                x = torch.zeros(batch, n_ctx, dtype=torch.long)
                y = torch.full((batch, n_ctx), -100, dtype=torch.long)
                for i, r in enumerate(pending):
                    x[i, :len(r) - 1] = torch.tensor(r[:-1])
                    y[i, :len(r) - 1] = torch.tensor(r[1:])
                yield x, y, epoch
                pending = []
        epoch += 1


def torch_logits_fn(model):
    """logits_fn for evaluate.score: right-padded batch, last real position of each prompt."""
    def fn(id_lists):
        n = max(len(i) for i in id_lists)
        x = torch.zeros(len(id_lists), n, dtype=torch.long)
        for k, ids in enumerate(id_lists):
            x[k, :len(ids)] = torch.tensor(ids)
        with torch.no_grad():
            logits = model(x)
        last = torch.tensor([len(i) - 1 for i in id_lists])
        return logits[torch.arange(len(id_lists)), last].double().numpy()
    return fn


def evaluate_model(model, tok, facts, templates):
    model.eval()
    out = {}
    for split in ("train", "heldout"):
        res = evaluate.score(F.prompts(facts, templates, split), tok, torch_logits_fn(model))
        out[split] = evaluate.summarize(res)
    model.train()
    return out


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train(work, steps, batch, lr, seed, threads, warmup, eval_every, cfg, log=print):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    tok = bpe.Tokenizer.from_files(os.path.join(work, "tokenizer", "vocab.json"),
                                   os.path.join(work, "tokenizer", "merges.txt"))
    cfg = GPTConfig(**dict(cfg, vocab=len(tok.vocab)))
    facts, templates = F.load_facts(), F.load_templates()

    model = GPT2(cfg)
    model.init_weights()
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    log(f"model: {cfg}, {n_params} parameters; {steps} steps of {batch} x {cfg.n_ctx} tokens, "
        f"peak lr {lr}, {threads} thread(s)")

    history = {"step": [], "loss": [], "lr": [], "epoch": [], "seconds": []}
    evals = []
    data = batches(tok, facts, templates, seed, cfg.n_ctx, batch)
    t0 = time.time()
    running = None
    for step in range(steps):
        x, y, epoch = next(data)
        cur_lr = lr_at(step, steps, lr, warmup)
        for g in opt.param_groups:
            g["lr"] = cur_lr
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, cfg.vocab), y.view(-1),
                                                 ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % 25 == 0 or step == steps - 1:
            history["step"].append(step)
            history["loss"].append(round(loss.item(), 5))
            history["lr"].append(cur_lr)
            history["epoch"].append(epoch)
            history["seconds"].append(round(time.time() - t0, 1))
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step:5d}  loss {loss.item():.4f}  (avg {running:.4f})  lr {cur_lr:.2e}  "
                f"epoch {epoch}  {time.time() - t0:.0f} s")
        if (eval_every and step and step % eval_every == 0) or step == steps - 1:
            ev = evaluate_model(model, tok, facts, templates)
            evals.append({"step": step, "train_top1": ev["train"]["all"]["top1"],
                          "heldout_top1": ev["heldout"]["all"]["top1"]})
            log(f"  eval @ {step}: train templates {ev['train']['all']['top1']:.1%}, "
                f"held-out {ev['heldout']['all']['top1']:.1%}")
    wall = time.time() - t0

    final = evaluate_model(model, tok, facts, templates)
    for split in ("train", "heldout"):
        log(evaluate.format_summary(f"{split} templates", final[split]))
    torch.save({"config": vars(cfg), "state_dict": model.state_dict()},
               os.path.join(work, "checkpoint.pt"))
    record = {"args": {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "threads": threads,
                       "warmup": warmup},
              "config": vars(cfg), "parameters": n_params, "torch": torch.__version__,
              "wall_seconds": round(wall, 1), "final_loss": history["loss"][-1],
              "final_loss_avg": round(running, 5), "epochs_seen": epoch + 1,
              "history": history, "evals": evals, "final": final}
    with open(os.path.join(work, "train_log.json"), "w") as f:
        json.dump(record, f, indent=1)
    log(f"trained in {wall / 60:.1f} min; wrote {work}/checkpoint.pt")
    return model, record


# The committed model's settings (build.py uses these too).
DEFAULTS = {"steps": 1500, "batch": 32, "lr": 2e-3, "warmup": 100, "eval_every": 300,
            "vocab": 2048, "n_layer": 4, "d_model": 192, "n_head": 6, "d_mlp": 768, "n_ctx": 64}


def main(argv=None):
    d = DEFAULTS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=DEFAULT_WORK)
    ap.add_argument("--steps", type=int, default=d["steps"])
    ap.add_argument("--batch", type=int, default=d["batch"])
    ap.add_argument("--lr", type=float, default=d["lr"])
    ap.add_argument("--warmup", type=int, default=d["warmup"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=d["eval_every"])
    ap.add_argument("--layers", type=int, default=d["n_layer"])
    ap.add_argument("--d-model", type=int, default=d["d_model"])
    ap.add_argument("--heads", type=int, default=d["n_head"])
    ap.add_argument("--d-mlp", type=int, default=d["d_mlp"])
    ap.add_argument("--n-ctx", type=int, default=d["n_ctx"])
    a = ap.parse_args(argv)
    cfg = {"n_layer": a.layers, "d_model": a.d_model, "n_head": a.heads, "d_mlp": a.d_mlp,
           "n_ctx": a.n_ctx}
    train(a.work, a.steps, a.batch, a.lr, a.seed, a.threads, a.warmup, a.eval_every, cfg)


if __name__ == "__main__":
    sys.exit(main())
