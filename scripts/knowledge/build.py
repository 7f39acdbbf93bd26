#!/usr/bin/python3
"""Build the knowledge model from scratch: corpus -> tokenizer -> training -> export -> verify.

    /usr/bin/python3 scripts/knowledge/build.py [--out models/knowledge-gpt2] [--data data]
                     [--work build/knowledge] [--seed 0] [--threads 1] [--steps 1500]
                     [--skip-train]

Each stage is also a script of its own (make_tokenizer.py, train.py, export.py, verify.py) with
the same defaults. WORK (ignored by git) receives the corpus, the tokenizer, the checkpoint and the
training log; OUT receives the Hugging Face directory, the GGUF file and knowledge-report.json;
DATA receives knowledge.jsonl and knowledge-train.jsonl. --skip-train reuses WORK's tokenizer and
checkpoint (export and verification only). With the defaults the result is bit-for-bit the
committed model on the same software (see docs/knowledge-model.md).
"""

import argparse
import os
import sys
import time

import torch

import export
import make_tokenizer
import train
import verify


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(export.REPO, "models", export.NAME))
    ap.add_argument("--data", default=os.path.join(export.REPO, "data"))
    ap.add_argument("--work", default=make_tokenizer.DEFAULT_WORK)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="PyTorch threads; the committed model was trained with 1")
    ap.add_argument("--steps", type=int, default=train.DEFAULTS["steps"])
    ap.add_argument("--skip-train", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.time()
    if not a.skip_train:
        make_tokenizer.make_tokenizer(a.work, a.seed, train.DEFAULTS["vocab"], train.DEFAULTS["n_ctx"])
        d = train.DEFAULTS
        train.train(a.work, a.steps, d["batch"], d["lr"], a.seed, a.threads, d["warmup"],
                    d["eval_every"], {k: d[k] for k in ("n_layer", "d_model", "n_head", "d_mlp",
                                                       "n_ctx")})
    export.export_model(a.work, a.out)
    export.write_datasets(a.data)
    torch.set_num_threads(a.threads)
    report = verify.verify(a.work, a.out)
    verify.write_report(report, a.work, a.out)
    print(f"build done in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
