#!/usr/bin/python3
"""What a prompt costs in memory, measured against the formula docs/benchmarks.md states (issue 15).

    /usr/bin/python3 bench/prompt_memory.py [--dir /tmp/promptmem] [--lengths 16,256,1024,2048,4096]
                                            [--threads 2] [--json OUT.json]

Writes two random-weight Llama models with a 4096-token context into --dir (once; seeded):
  - mem-tinyllama-4k.gguf: TinyLlama-1.1B shapes in F16 (2.2 GB), where the captures dominate;
    measured: one forward pass with explain's captures (the run an explanation reads),
  - mem-tiny-llama-4k.gguf: the 2-layer test Llama (d_model 64, vocab 512), where the per-thread
    attention scores (T^2) dominate and a whole explanation at 4096 tokens takes seconds;
    measured: a whole `explain` of the last position (every level and the queries).
Each measurement is its own process: it loads the model, runs one token first (so the weights'
pages are resident), then the T-token job; the figure is the growth of the peak RSS (ru_maxrss)
over the warm-up's, beside the formula's prediction. Prints a Markdown table.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

MODELS = {
    "mem-tinyllama-4k.gguf": dict(base="BENCH_LLAMA", ftype="F16", job="run"),
    "mem-tiny-llama-4k.gguf": dict(base="TINY_LLAMA", ftype="F32", job="explain"),
}

# One measurement, in a fresh process: prints {"warm": bytes, "peak": bytes, ...} as JSON.
CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import reslens
from reslens import _core
path, job, T, threads = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
model = reslens.load(path, threads=threads)
V = model.cfg.d_vocab
ids = [(1 + i * 7919) % V for i in range(T)]
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
_core.run(model._core, ids[:1], [], False, threads)  # the weights' pages
warm = rss()
out = {}
if job == "run":
    r = _core.run(model._core, ids, _core.explain_capture(), False, threads, None, False, [T - 1])
    out["capture_bytes"] = r.nbytes
else:
    ex = reslens.explain(model, ids, threads=threads)
    out["target"] = str(ex.target)
out.update(warm=warm, peak=rss())
print(json.dumps(out))
"""


def write_models(d):
    from make_random_models import BENCH_LLAMA, TINY_LLAMA  # noqa: F401 (looked up by name)
    import dataclasses
    from reslens_ref import ggml_types, gguf_model
    from reslens_ref.random_model import random_model
    shared = os.path.normpath(os.path.join(ROOT, "..", "shared"))
    vocab = os.path.join(shared, "tokenizers", "ggml-vocab", "ggml-vocab-llama-spm.gguf")
    stories = os.path.join(shared, "models", "stories260K", "stories260K.gguf")  # the 512-token vocabulary
    os.makedirs(d, exist_ok=True)
    for name, spec in MODELS.items():
        path = os.path.join(d, name)
        if os.path.exists(path):
            continue
        base = {"BENCH_LLAMA": BENCH_LLAMA, "TINY_LLAMA": TINY_LLAMA}[spec["base"]]
        cfg = dataclasses.replace(base, n_ctx=4096, name=name.split(".")[0])
        tok = gguf_model.tokenizer_fields(vocab if cfg.vocab == 32000 else stories)
        print(f"writing {path}", file=sys.stderr, flush=True)
        gguf_model.write(random_model(cfg, 0, "small"), path + ".tmp", getattr(ggml_types, spec["ftype"]),
                         tokenizer=tok)
        os.replace(path + ".tmp", path)


def shapes(path):
    """The model's sizes, read through reslens itself."""
    sys.path.insert(0, os.path.join(ROOT, "build", "python"))
    import reslens
    c = reslens.load(path).cfg
    return dict(L=c.n_layers, d=c.d_model, N=c.d_mlp, H=c.n_heads, dh=c.d_head, kv=c.n_key_value_heads * c.d_head,
                V=c.d_vocab)


def predicted(s, T, threads, job):
    """Bytes the formula of docs/benchmarks.md ("Memory per prompt") gives for a T-token prompt."""
    L, d, N, H, dh, kv, V = (s[k] for k in ("L", "d", "N", "H", "dh", "kv", "V"))
    parts = {
        # explain_capture(): resid_pre, attn_out, resid_mid, mlp_out, resid_post; mlp.hook_post;
        # attn.hook_v; the explained row of hook_pattern.
        "captures": 4 * L * T * (5 * d + N + kv + H),
        # the forward pass's buffers, reused layer to layer: the residual stream, a sublayer's input,
        # q, k, v, z, the two sublayer outputs, gate/up/coefficients; one head's [T, T] scores per thread.
        "forward": 4 * T * (d + d + H * dh + 2 * kv + H * dh + 2 * d + 3 * N) + 4 * threads * T * T,
    }
    if job == "explain":
        # explain()'s per-position arrays (float64): head_position, attn_weight [L, H, T];
        # attn_neuron, attn_coef [L, H, d_head, T].
        parts["explain arrays"] = 8 * L * T * (2 * H + 2 * H * dh)
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/promptmem")
    ap.add_argument("--lengths", default="16,256,1024,2048,4096")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=sorted(MODELS), action="append", default=[])
    ap.add_argument("--json")
    args = ap.parse_args()
    write_models(args.dir)
    lengths = [int(x) for x in args.lengths.split(",") if x]
    rows = []
    for name, spec in MODELS.items():
        if args.only and name not in args.only:
            continue
        path = os.path.join(args.dir, name)
        s = shapes(path)
        for T in lengths:
            out = subprocess.run([sys.executable, "-c", CHILD, os.path.join(ROOT, "build", "python"), path, spec["job"],
                                  str(T), str(args.threads)], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{name} T={T}: failed\n{out.stderr}", file=sys.stderr)
                continue
            m = json.loads(out.stdout.strip().splitlines()[-1])
            parts = predicted(s, T, args.threads, spec["job"])
            row = dict(model=name, job=spec["job"], T=T, measured=m["peak"] - m["warm"], parts=parts,
                       predicted=sum(parts.values()), capture_bytes=m.get("capture_bytes"))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "rows": rows}, f, indent=1)
    print("| model | job | tokens | predicted MB | measured MB | measured / predicted | of which captures MB "
          "(formula / recorded) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        cap = r["parts"]["captures"] / 1e6
        rec = "" if r["capture_bytes"] is None else f" / {r['capture_bytes'] / 1e6:.1f}"
        print(f"| {r['model']} | {r['job']} | {r['T']} | {r['predicted'] / 1e6:.1f} | {r['measured'] / 1e6:.1f} | "
              f"{r['measured'] / r['predicted']:.2f} | {cap:.1f}{rec} |")


if __name__ == "__main__":
    main()
