#!/usr/bin/env python3
"""A multi-token target (one pass, every step explained from it) against the same steps explained as
m separate single-position explains (each the prompt and the target's tokens before it, with its
own forward pass), on the shared models and the shipped knowledge model.

    PYTHONPATH=build/python /usr/bin/python3 bench/target_timing.py [--shared ../shared] [-r 3]

Times are the library work of each call (``reslens._core._last_call_seconds()``, std::chrono around
the request in C++), best of ``-r`` repetitions. Prints a Markdown table (docs/explain.md, "Targets
of several tokens").
"""

from __future__ import annotations

import argparse
import os
import pathlib

import reslens
from reslens import _core

REPO = pathlib.Path(__file__).resolve().parents[1]

# (label, model path under shared/ or repo:, prompt, target, method)
CASES = [
    ("stories260K (Llama, V 512)", "models/stories260K/stories260K.gguf", "Once upon a time",
     " there was a little girl named Lily", "auto"),
    ("TinyStories-656K (Llama HF, V 2048)", "models/TinyStories-656K", "Once upon a time",
     " there was a little girl named Lily", "auto"),
    ("random-gpt2 (GPT-2, V 50257, bounded)", "models/random-gpt2/random-gpt2-test.gguf", "The capital of France is",
     " Paris, the city of light", "auto"),
    ("random-gpt2, method full", "models/random-gpt2/random-gpt2-test.gguf", "The capital of France is",
     " Paris, the city of light", "full"),
    ("knowledge-gpt2 (GPT-2, shipped)", "repo:models/knowledge-gpt2", "The capital of France is", " Paris. It is", "auto"),
]


def best(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        call()
        times.append(_core._last_call_seconds())
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("-r", "--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    print("| model | prompt tokens | target tokens m | multi-token explain | m single explains | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, rel, prompt, target, method in CASES:
        path = str(REPO / rel[5:]) if rel.startswith("repo:") else os.path.join(a.shared, rel)
        model = reslens.load(path, threads=a.threads or None)
        ids = [int(t) for t in model.tokens(prompt)]
        ex = reslens.explain_target(model, ids, target=target)
        w = [t.id for t in ex.target]
        multi = best(lambda: reslens.explain_target(model, ids, target=w, method=method), a.repeats)
        singles = sum(best(lambda t=t: reslens.explain(model, ids + w[:t], target=w[t], method=method), a.repeats)
                      for t in range(len(w)))
        print(f"| {label} | {len(ids)} | {len(w)} | {1000 * multi:.0f} ms | {1000 * singles:.0f} ms | "
              f"{multi / singles:.2f} |")


if __name__ == "__main__":
    main()
