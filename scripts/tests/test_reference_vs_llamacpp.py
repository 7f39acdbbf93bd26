#!/usr/bin/python3
"""The float64 reference (scripts/reslens_ref) itself against llama.cpp goldens of
scripts/llamacpp/make_family_goldens.py, independently of reslens: logits at every position within
the golden's atol (with ggml's fp16 GELU table emulated where the golden says so) and the greedy
continuation's first token. Used by CTest for the models whose features the reference gained with
them (Gemma 2's softcaps, sliding windows).

    test_reference_vs_llamacpp.py --models DIR NAME [NAME ...]     (NAME: tiny-gemma2, ...)
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from check_llamacpp_golden import sha256  # noqa: E402
from reslens_ref.forward import forward  # noqa: E402
from reslens_ref.model import load_model  # noqa: E402

GOLDENS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "data", "llamacpp-families")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="the generated tiny models' folder")
    ap.add_argument("names", nargs="+")
    a = ap.parse_args()
    ok = True
    for name in a.names:
        with open(os.path.join(GOLDENS, name + ".json")) as f:
            g = json.load(f)
        path = os.path.join(a.models, g["model"])
        if sha256(path) != g["model_sha256"]:
            print(f"{name}: {path} is not the model the golden was recorded on (re-record it)")
            ok = False
            continue
        want = np.load(os.path.join(GOLDENS, g["logits"])).astype(np.float64)
        ids = g["token_ids"]
        got = forward(load_model(path), ids, ggml_gelu=g["ggml_gelu"])["logits"]
        diff = np.abs(got - want).max(axis=1)
        # the greedy continuation's first token is the argmax at the last position
        first = int(np.argmax(got[-1]))
        good = diff.max() <= g["atol"] and first == g["greedy_ids"][0]
        print(f"{name}: max |reference - llama.cpp| {diff.max():.3g} over {len(ids)} positions "
              f"(atol {g['atol']}), next token {first} vs {g['greedy_ids'][0]}: {'ok' if good else 'FAIL'}")
        ok = ok and good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
