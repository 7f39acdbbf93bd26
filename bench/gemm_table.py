#!/usr/bin/env python3
"""Runs bench_gemm shape by shape and prints the markdown table of docs/benchmarks.md ("GEMM kernel").

Every (library, shape, M) runs in its own short process with --benchmark_repetitions, and the table
shows medians. On a shared machine another process's CPU use ruins a run (two cores leave no slack,
and a thread that loses its core stalls the other at the next barrier), so the script waits for the
machine to go idle, measures the CPU time everything else used during the run (from /proc/stat,
minus our own) and repeats the run when that exceeds --max-other cores on average. The worst
figure accepted is printed under the table.

usage: bench/gemm_table.py build/bench/bench_gemm [--threads 2] [--reps 5] [--min-time 0.1]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

SHAPES = [  # name, N, K (must match bench_gemm.cpp)
    ("gpt2_qkv", 2304, 768), ("gpt2_attn_out", 768, 768), ("gpt2_mlp_up", 3072, 768),
    ("gpt2_mlp_down", 768, 3072), ("gpt2_lm_head", 50257, 768), ("llama_q_o", 2048, 2048),
    ("llama_k_v", 256, 2048), ("llama_gate_up", 5632, 2048), ("llama_down", 2048, 5632),
    ("llama_lm_head", 32000, 2048),
]
TOKENS = [1, 8, 32, 128]
LIBS = ["openblas", "reslens", "reslens_avx2"]


def busy_seconds():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:9]))
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def wait_idle(max_busy, timeout=600.0):
    """Waits until the CPUs were at most max_busy cores busy over one second."""
    end = time.time() + timeout
    while time.time() < end:
        b0, w0 = busy_seconds(), time.time()
        time.sleep(1.0)
        if (busy_seconds() - b0) / (time.time() - w0) <= max_busy:
            return


worst_other = 0.0


def run_clean(cmd, env, max_other, retries):
    """Runs cmd until the rest of the machine stayed (nearly) idle meanwhile; returns its JSON."""
    global worst_other
    for attempt in range(retries):
        wait_idle(max_other)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b0, w0 = busy_seconds(), time.time()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b1, w1 = busy_seconds(), time.time()
        mine = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        other = max(0.0, (b1 - b0) - mine) / (w1 - w0)
        print(f"  {cmd[1]}: other processes used {other:.2f} cores", file=sys.stderr)
        if other <= max_other:
            worst_other = max(worst_other, other)
            return json.loads(out)
    sys.exit(f"machine never quiet enough for: {' '.join(cmd)}")


def medians(report):
    """{benchmark name without suffixes: counters of its median aggregate}"""
    out = {}
    for b in report["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"].replace("/real_time", "")] = b
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", default="0.1")
    ap.add_argument("--max-other", type=float, default=0.05)
    ap.add_argument("--retries", type=int, default=100)
    args = ap.parse_args()
    env = dict(os.environ, RESLENS_BENCH_THREADS=str(args.threads))
    common = [f"--benchmark_repetitions={args.reps}", "--benchmark_report_aggregates_only=true",
              f"--benchmark_min_time={args.min_time}", "--benchmark_format=json"]

    rep = run_clean([args.bench, "--benchmark_filter=^memory_read"] + common, env, args.max_other,
                    args.retries)
    mem = medians(rep)
    print(f"Memory read bandwidth (median of {args.reps}):\n")
    print("| threads | streams | GB/s |\n|---:|---:|---:|")
    for name, b in mem.items():
        parts = dict(p.split(":") for p in name.split("/")[1:])
        print(f"| {parts['threads']} | {parts['streams']} | {b['GB/s']:.1f} |")
    print()

    print(f"GEMM, {args.threads} threads, GFLOP/s (median of {args.reps}); B GB/s = bytes of the "
          "weight matrix read per second.\n")
    print("| shape | N | K | M | OpenBLAS | reslens (AVX-512) | ratio | reslens B GB/s "
          "| reslens AVX2 path |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, k in SHAPES:
        for m in TOKENS:
            key = f"/{name}/M:{m}/N:{n}/K:{k}"
            got = {}
            for lib in LIBS:
                rep = run_clean([args.bench, f"--benchmark_filter=^{lib}{key}/"] + common, env,
                                args.max_other, args.retries)
                got[lib] = medians(rep)[lib + key]
            ob = got["openblas"]["GFLOP/s"]
            rl = got["reslens"]
            avx2 = got["reslens_avx2"]["GFLOP/s"]
            print(f"| {name} | {n} | {k} | {m} | {ob:.1f} | {rl['GFLOP/s']:.1f} | "
                  f"{rl['GFLOP/s'] / ob:.2f} | {rl['B_GB/s']:.1f} | {avx2:.1f} |", flush=True)
    print(f"\nOther processes used at most {worst_other:.2f} cores during an accepted run.")


if __name__ == "__main__":
    main()
