#!/usr/bin/env python3
"""Python overhead of reslens's bindings: ``model.run_with_cache`` and ``reslens.explain`` against the
C++ work they wrap, on a GPT-2 124M-shaped model.

Two measurements per call:

- per call: the binding times the library work of each call (std::chrono around ``reslens::run``, or
  around ``run`` + target choice + ``explain``; ``reslens._core._last_call_seconds()``), and the Python
  wall time of the same call minus that is the Python layer's overhead (argument conversion,
  tokenisation of ids, GIL release/reacquire, wrapping the results). Immune to machine load, since
  both numbers come from the same call.
- side by side (``run_with_cache`` only, and explain with ``--explain-cpp-loop``): the median of calls
  timed entirely in C++ (``_core._time_run`` / ``_time_explain``, a loop in C++ with the GIL released)
  against the median wall time of the Python calls, alternating so that both see the same load.

    /usr/bin/python3 scripts/make_random_models.py --which bench --out /tmp/bench-models \\
        --only bench-gpt2-124M.gguf
    PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py /tmp/bench-models/bench-gpt2-124M.gguf

Prints Markdown tables (docs/benchmarks.md, "Python overhead").
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import reslens
from reslens import _core

TEXT = ("The quick brown fox jumps over the lazy dog while the capital of France is Paris and the river "
        "flows to the sea. ") * 40


def timed(call) -> tuple:
    """(Python wall seconds, seconds the binding spent in C++) of one call. The result is freed after
    the clock stops, as the C++ loop frees its RunResult after its clock stops."""
    t0 = time.perf_counter()
    result = call()
    wall = time.perf_counter() - t0
    del result
    return wall, _core._last_call_seconds()


def measure(py_call, cpp_loop, repeats: int, warm: bool) -> dict:
    if warm:
        py_call()
        if cpp_loop:
            cpp_loop()
    cpp, wall, inner = [], [], []
    for _ in range(repeats):
        if cpp_loop:
            cpp.append(cpp_loop())
        w, i = timed(py_call)
        wall.append(w)
        inner.append(i)
    over = [w - i for w, i in zip(wall, inner)]
    return {"n": repeats, "cpp": statistics.median(cpp) if cpp else None, "py": statistics.median(wall),
            "inner": statistics.median(inner), "over": statistics.median(over),
            "over_rel": statistics.median([o / i for o, i in zip(over, inner)])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="/tmp/bench-models/bench-gpt2-124M.gguf")
    ap.add_argument("--tokens", default="8,32,128", help="prompt lengths for run_with_cache")
    ap.add_argument("--explain-tokens", default="8,32,128", help="prompt lengths for explain ('' = none)")
    ap.add_argument("-r", "--repeats", type=int, default=7, help="timed run_with_cache calls per side (median)")
    ap.add_argument("--explain-repeats", type=int, default=3, help="timed explain calls (median)")
    ap.add_argument("--explain-cpp-loop", action="store_true",
                    help="also time explain in a C++ loop, alternating (doubles the time)")
    ap.add_argument("-t", "--threads", type=int, default=0, help="worker threads (0 = all cores)")
    a = ap.parse_args(argv)

    model = reslens.load(a.model, threads=a.threads)
    c = model.cfg
    ids_all = model.to_tokens(TEXT, prepend_bos=False).tolist()
    rows = []
    for n in (int(x) for x in a.tokens.split(",") if x):
        ids = ids_all[:n]
        assert len(ids) == n, "TEXT is too short"
        r = measure(lambda: model.run_with_cache(ids),
                    lambda: _core._time_run(model.core, ids, None, True, a.threads, 1)[0], a.repeats, True)
        rows.append(("run_with_cache (every hook)", n, r))
        print(f"run_with_cache {n} tokens: {r}", file=sys.stderr, flush=True)
    for n in (int(x) for x in a.explain_tokens.split(",") if x):
        ids = ids_all[:n]
        loop = (lambda: _core._time_explain(model.core, ids, a.threads, 1)[0]) if a.explain_cpp_loop else None
        r = measure(lambda: reslens.explain(model, ids, top=50), loop, a.explain_repeats, False)
        rows.append(("explain", n, r))
        print(f"explain {n} tokens: {r}", file=sys.stderr, flush=True)

    threads = a.threads or len(os.sched_getaffinity(0))
    print(f"Model `{os.path.basename(a.model)}` ({c.n_layers} layers, d_model {c.d_model}, {c.n_heads} heads, "
          f"d_mlp {c.d_mlp}, vocab {c.d_vocab}, {c.dtype}); {threads} threads "
          f"({platform.machine()}, load average {os.getloadavg()[0]:.1f} at the end).\n")
    print("| call | tokens | calls | C++ loop (ms) | Python (ms) | overhead, medians | in C++ per call (ms) "
          "| Python layer per call (ms) | its share |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, r in rows:
        loop = f"{1e3 * r['cpp']:.1f}" if r["cpp"] is not None else "–"
        med = f"{100 * (r['py'] - r['cpp']) / r['cpp']:+.2f}%" if r["cpp"] is not None else "–"
        print(f"| {name} | {n} | {r['n']} | {loop} | {1e3 * r['py']:.1f} | {med} | {1e3 * r['inner']:.1f} "
              f"| {1e3 * r['over']:.3f} | {100 * r['over_rel']:.4f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
