#!/usr/bin/env python3
"""A multi-token target (one pass, every step explained from it) against the same steps explained as
m separate single-position explains (each the prompt and the target's tokens before it, with its
own forward pass), on the shared models and the shipped knowledge model.

    PYTHONPATH=build/python /usr/bin/python3 bench/target_timing.py [--shared ../shared] [-r 3]

Times are the library work of each call (``reslens._core._last_call_seconds()``, std::chrono around
the request in C++), best of ``-r`` repetitions. Prints a Markdown table (docs/explain.md, "Targets
of several tokens").

    PYTHONPATH=build/python /usr/bin/python3 bench/target_timing.py --generate MODEL [-n 32] [--prompt-tokens 16] [-r 3]

times a generated answer instead (issue 19, item 5: `explain --generate N` on GPT-2 124M shapes,
`scripts/make_random_models.py --which bench --only bench-gpt2-124M.gguf`): one call that generates
N tokens after a prompt of --prompt-tokens ids and explains them all, against the N single-position
explains of the same prefixes (the prompt and the answer's tokens before each), the two sides
alternating for -r rounds, each side's best round kept; it also
prints the process CPU seconds of each side and the load average, since a shared machine's wall
times move with the other jobs.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

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


def generated_answer(path: str, n: int, n_prompt: int, threads: int, repeats: int) -> None:
    model = reslens.load(path, threads=threads or None)
    # A fixed prompt of n_prompt ids (a sentence of GPT-2 ids repeated as needed).
    sentence = [464, 3139, 286, 4881, 318, 262, 1748, 1110, 13, 632, 318, 1900, 329, 663, 3968, 290]
    ids = (sentence * (n_prompt // len(sentence) + 1))[:n_prompt]
    load0 = os.getloadavg()
    # The two sides alternate, `repeats` rounds, and each keeps its best round: the host's speed
    # drifts by tens of per cent over minutes, and alternating exposes both sides to the same drift.
    multi = multi_cpu = singles = singles_cpu = float("inf")
    rounds = []
    for _ in range(repeats):
        cpu0 = time.process_time()
        ex = reslens.explain(model, ids, generate=n)
        m, m_cpu = _core._last_call_seconds(), time.process_time() - cpu0
        w = [t.id for t in ex.target]
        s = s_cpu = 0.0
        for t in range(len(w)):
            cpu0 = time.process_time()
            reslens.explain(model, ids + w[:t], target=w[t])
            s += _core._last_call_seconds()
            s_cpu += time.process_time() - cpu0
        rounds.append((m, s))
        multi, multi_cpu = min(multi, m), min(multi_cpu, m_cpu)
        singles, singles_cpu = min(singles, s), min(singles_cpu, s_cpu)
    load1 = os.getloadavg()
    print(f"model {path}, {len(ids)} prompt tokens, {len(w)} generated (stop: {ex.generated['stop']}), "
          f"threads {threads or 'all'}, load average before {load0[0]:.1f} after {load1[0]:.1f}, "
          f"best of {repeats} alternating rounds (wall answer / singles per round: "
          + ", ".join(f"{a:.1f} / {b:.1f}" for a, b in rounds) + ")")
    print("| | generated answer (1 call) | single explains (sum) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| wall | {multi:.1f} s | {singles:.1f} s | {multi / singles:.2f} |")
    print(f"| CPU | {multi_cpu:.1f} s | {singles_cpu:.1f} s | {multi_cpu / singles_cpu:.2f} |")
    counts = lambda e: {k: v for k, v in (e.method_counts if hasattr(e, "method_counts") else {}).items()}
    print("per-step method counts of the answer's first and last steps:", counts(ex.steps[0]), counts(ex.steps[-1]))
    print("the sums' error budget (step scores recomputed exactly):", dict(getattr(ex.core, "method_counts", {})))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("-r", "--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--generate", metavar="MODEL", help="time a generated answer on this model instead")
    ap.add_argument("-n", type=int, default=32, help="--generate: tokens to generate")
    ap.add_argument("--prompt-tokens", type=int, default=16)
    a = ap.parse_args()
    if a.generate:
        generated_answer(a.generate, a.n, a.prompt_tokens, a.threads, a.repeats)
        return
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
