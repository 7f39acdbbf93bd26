#!/usr/bin/env python3
"""Runs `reslens bench` on the random-weight benchmark models and prints the tables of
docs/benchmarks.md ("Forward pass" and "Memory").

The models are written by scripts/make_random_models.py --which bench (GPT-2 124M and a Llama with
TinyLlama-1.1B's shapes, as GGUF F32/F16 and as Hugging Face directories; ~11 GB). For each model:
`reslens bench MODEL -p 8,32,128 --json` (median of --reps runs, with and without capturing every
hook, next to OpenBLAS sgemm and the memory read bandwidth measured in the same process), then the
peak resident memory of `reslens predict` on it (/usr/bin/time -v) against the file size.

Benchmarks on a 2-core machine are only meaningful when nothing else runs: the script waits for the
machine to go idle before each model (see bench/gemm_table.py for why).

`--set shared` runs the same on the small real models in ../shared/models instead.

usage: bench/forward_table.py [--reslens build/reslens] [--models /tmp/bench-models] [--reps 5]
                              [--set bench|shared]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

SHARED_MODELS = [  # under ../shared/models
    ("stories260K/stories260K.bin", "stories260K, llama2.c"),
    ("stories260K/stories260K.gguf", "stories260K, GGUF F32"),
    ("TinyStories-656K", "TinyStories-656K, HF safetensors"),
    ("TinyStories-656K/TinyStories-656K-f32.gguf", "TinyStories-656K, GGUF F32"),
    ("random-gpt2/random-gpt2-test.gguf", "random GPT-2 (test size), GGUF F32"),
]
MODELS = [  # file or folder under --models, label
    ("bench-gpt2-124M.gguf", "GPT-2 124M, GGUF F32"),
    ("bench-gpt2-124M-hf", "GPT-2 124M, HF safetensors F32"),
    ("bench-tinyllama-1.1B-f32.gguf", "TinyLlama-1.1B shapes, GGUF F32"),
    ("bench-tinyllama-1.1B-f16.gguf", "TinyLlama-1.1B shapes, GGUF F16"),
    ("bench-tinyllama-1.1B-hf", "TinyLlama-1.1B shapes, HF safetensors F32 (2 shards)"),
]


def busy_seconds():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:9]))
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def wait_idle(max_busy=0.15, timeout=300.0):
    end = time.time() + timeout
    while time.time() < end:
        b0 = busy_seconds()
        time.sleep(1.0)
        if busy_seconds() - b0 <= max_busy:
            return
    print("warning: the machine did not go idle; numbers may be low", file=sys.stderr)


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
                   if f.endswith(".safetensors"))
    return os.path.getsize(path)


def mb(n):
    return f"{n / 1e6:.0f}" if n >= 10e6 else f"{n / 1e6:.2f}"


def peak_rss_kb(reslens, model):
    """Peak RSS of `reslens predict` on three token ids (no tokenizer needed)."""
    r = subprocess.run(["/usr/bin/time", "-v", reslens, "predict", model, "--ids", "1,2,3", "--json"],
                       capture_output=True, text=True, check=True)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", default="build/reslens")
    ap.add_argument("--models", default="/tmp/bench-models")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", default="8,32,128")
    ap.add_argument("--set", choices=("bench", "shared"), default="bench")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "models"))
    args = ap.parse_args()
    models = MODELS if args.set == "bench" else SHARED_MODELS
    if args.set == "shared":
        args.models = args.shared

    forward_rows, memory_rows, machine = [], [], []
    for name, label in models:
        path = os.path.join(args.models, name)
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run /usr/bin/python3 scripts/make_random_models.py --which bench "
                     f"--out {args.models}")
        wait_idle()
        t0 = time.time()
        out = subprocess.run([args.reslens, "bench", path, "-p", args.tokens, "-r", str(args.reps), "-t",
                              str(args.threads), "--json"], capture_output=True, text=True, check=True).stdout
        j = json.loads(out)
        print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
        sgemm, bw, bound = j["sgemm_gflops"], j["read_bandwidth_gbps"], j["weight_read_bound_ms"]
        machine.append((label, sgemm, bw))
        by = {(r["tokens"], r["capture"]): r for r in j["results"]}
        for n in sorted({r["tokens"] for r in j["results"]}):
            plain, cap = by[(n, False)], by[(n, True)]
            overhead = (cap["ms_per_run"] / plain["ms_per_run"] - 1) * 100
            vs_bound = f"{plain['ms_per_run'] / bound:.2f}x" if n <= 8 else ""
            forward_rows.append(
                f"| {label} | {n} | {plain['ms_per_run']:.1f} | {plain['tokens_per_s']:.0f} | {plain['gflops']:.1f} | "
                f"{plain['gflops'] / sgemm * 100:.0f}% | {cap['ms_per_run']:.1f} | {overhead:+.1f}% | {vs_bound} |")
        wait_idle()
        rss = peak_rss_kb(args.reslens, path)
        memory_rows.append(f"| {label} | {mb(size_of(path))} | {mb(4 * j['n_params'])} | {mb(rss * 1024)} |")

    print(f"reslens bench, {args.threads} threads, median of {args.reps} runs; FLOPs counted as 2 x parameters x "
          "tokens; `of sgemm` is against OpenBLAS sgemm (1536^3) measured in the same process; `x bound` is the "
          "time over reading every float32 weight once at the measured read bandwidth.\n")
    print("| model | tokens | ms | tokens/s | GFLOP/s | of sgemm | ms, every hook captured | capture cost | x bound |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(forward_rows))
    print("\n| model run | sgemm GFLOP/s | read bandwidth GB/s |\n|---|---:|---:|")
    for label, sgemm, bw in machine:
        print(f"| {label} | {sgemm:.1f} | {bw:.1f} |")
    print("\nPeak resident memory of `reslens predict MODEL --ids 1,2,3` (/usr/bin/time -v):\n")
    print("| model | file MB | float32 weights MB | peak RSS MB |\n|---|---:|---:|---:|")
    print("\n".join(memory_rows))


if __name__ == "__main__":
    main()
