#!/usr/bin/python3
"""reslens against llama.cpp on the same big model files (issue 15): speed and peak memory.

For each model (a GGUF file or a Hugging Face directory) this runs, on the same threads:

  * llama.cpp: `llama-bench -m FILE -p 8,128 -n 16 -t T -r R -o json` under `/usr/bin/time -v`:
    prompt processing (pp8, pp128) and decode (tg16) tokens/s, and the peak RSS of that run
    (its context holds 128 + 16 tokens; the weights are mapped, so the RSS counts the pages
    read). Skipped for a Hugging Face directory (llama.cpp reads GGUF only).
  * reslens: `reslens bench MODEL -p 8,128 -r R -t T --json`: tokens/s without capture, the GFLOP/s
    it reports (2 x parameters x tokens / s), and the float32 FMA rate it measures in the same run
    (an FMA-peak key of the JSON if it has one, else OpenBLAS sgemm's `sgemm_gflops`; the table
    says which);
  * the peak RSS (`/usr/bin/time -v`) of `reslens predict MODEL --ids 1,2,3` and of
    `reslens explain MODEL TEXT` on a 16-token prompt (Llama 2 tokenizer, BOS included), against
    issue 15's budget of 1.25 x the file size + 1 GB.

A command that fails (e.g. a reslens that cannot load the file yet) or runs past --timeout is
reported in the table with the first line of its error; the script goes on. Sizes are decimal
(GB = 1e9 bytes; a 7B F16 file is 13.5 GB).

The machine is shared: before each command the script waits up to --wait-idle seconds for the CPUs
to go quiet, and for each command it records the CPU time other processes used while it ran
(`other load`, in cores: 0.0 is a quiet machine, 1.0 means one of the two cores was busy with
something else, which roughly halves a 2-thread figure). Read any figure with other load > 0.2 as
noisy.

The model files are not in the repo. Write them with

    /usr/bin/python3 scripts/make_random_models.py --which big --out /tmp/big
    llama-quantize /tmp/big/llama2-7b-f16.gguf /tmp/big/llama2-7b-q4_k_m.gguf Q4_K_M
    llama-quantize /tmp/big/llama2-7b-f16.gguf /tmp/big/llama2-7b-q8_0.gguf Q8_0

(llama-quantize and llama-bench: build llama.cpp's targets of those names; see scripts/README.md).

usage:
    /usr/bin/python3 bench/quantized_7b.py [MODEL ...] [--dir /tmp/big] [--reslens build/reslens]
        [--llama-bench PATH] [--tokens 8,128] [--tg 16] [--reps 3] [--threads 2]
        [--timeout 3600] [--wait-idle 60] [--skip llama,bench,predict,explain] [--json OUT.json]
        [--set 7b|tinyllama]

Without MODEL the --set's files under --dir are used (7b: llama2-7b-q4_k_m.gguf,
llama2-7b-q8_0.gguf, llama2-7b-f16.gguf, llama2-7b-bf16-hf; tinyllama: tinyllama-1.1b-q4_k_m.gguf,
tinyllama-1.1b-q8_0.gguf, tinyllama-1.1b-f16.gguf); missing ones are listed and skipped.
Prints a markdown table on stdout (progress on stderr); --json also writes every measurement.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

SETS = {
    "7b": ["llama2-7b-q4_k_m.gguf", "llama2-7b-q8_0.gguf", "llama2-7b-f16.gguf", "llama2-7b-bf16-hf"],
    "tinyllama": ["tinyllama-1.1b-q4_k_m.gguf", "tinyllama-1.1b-q8_0.gguf", "tinyllama-1.1b-f16.gguf"],
}
# 16 tokens with the Llama 2 tokenizer, BOS included.
EXPLAIN_TEXT = "The capital of France is Paris, and the capital of Italy is the city"
# Keys of `reslens bench --json` that may hold a float32 FMA peak (GFLOP/s), most specific first.
FMA_KEYS = ("fma_peak_gflops", "f32_fma_gflops", "fma_gflops", "float32_fma_gflops", "peak_gflops")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# -- machine load ---------------------------------------------------------------------------------

def busy_seconds():
    """CPU seconds spent busy by the whole machine since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:9]))
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def children_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_idle(max_busy=0.15, timeout=60.0):
    """Wait until one second passes with at most max_busy CPU-seconds used; False on timeout."""
    end = time.time() + timeout
    while time.time() < end:
        b0 = busy_seconds()
        time.sleep(1.0)
        if busy_seconds() - b0 <= max_busy:
            return True
    return False


class Run:
    """One command: return code, output, wall seconds, peak RSS (with time -v), other load."""

    def __init__(self, cmd, timeout, time_v=False, wait=60.0):
        self.cmd = cmd
        self.idle_before = wait_idle(timeout=wait) if wait > 0 else None
        self.loadavg = os.getloadavg()[0]
        full = ["/usr/bin/time", "-v"] + cmd if time_v else cmd
        b0, c0, t0 = busy_seconds(), children_seconds(), time.time()
        try:
            p = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
            self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            self.rc, self.out = None, e.stdout or ""
            self.err = f"timed out after {timeout} s"
            if isinstance(self.out, bytes):
                self.out = self.out.decode("utf-8", "replace")
        self.wall = time.time() - t0
        own = children_seconds() - c0
        # CPU time the rest of the machine used meanwhile, as an average number of busy cores.
        self.other_load = max(0.0, (busy_seconds() - b0 - own) / max(self.wall, 1e-9))
        self.peak_rss = None
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", self.err or "")
        if m:
            self.peak_rss = int(m.group(1)) * 1024
        es = re.search(r"Exit status: (\d+)", self.err or "")
        if time_v and es and self.rc is not None:
            self.rc = int(es.group(1))
        # time -v reports "Exit status: 0" for a command killed by a signal (llama-bench's SIGILL in
        # ggml's AMX kernels on the Intel host read as a success whose output was not JSON).
        sig = re.search(r"Command terminated by signal (\d+)", self.err or "")
        if time_v and sig and self.rc is not None:
            self.rc = 128 + int(sig.group(1))

    @property
    def ok(self):
        return self.rc == 0

    def error_line(self):
        """The command's error in one line: the first line saying "error", else the last line of
        its error output (time -v's report removed)."""
        if self.rc is None:
            return self.err
        sig = re.search(r"Command terminated by signal (\d+)", self.err or "")
        if sig:
            return f"killed by signal {sig.group(1)}"
        lines = []
        for ln in (self.err or "").splitlines():
            if ln.startswith("Command exited with non-zero status") or ln.startswith("Command terminated by signal"):
                break
            if ln.startswith("\tCommand being timed:"):
                break
            if ln.strip():
                lines.append(ln.strip())
        for ln in lines:
            if "error" in ln.lower():
                return ln[:240]
        return lines[-1][:240] if lines else f"exit status {self.rc}"

    def summary(self):
        return {"cmd": self.cmd, "rc": self.rc, "wall_s": round(self.wall, 1), "peak_rss_bytes": self.peak_rss,
                "other_load_cores": round(self.other_load, 2), "loadavg_1min_before": round(self.loadavg, 2),
                "idle_before": self.idle_before, "error": None if self.ok else self.error_line()}


# -- figures --------------------------------------------------------------------------------------

def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))
    return os.path.getsize(path)


def llama_bench(args, path):
    if os.path.isdir(path):
        return {"skipped": "not a GGUF file"}
    cmd = [args.llama_bench, "-m", path, "-p", args.tokens, "-n", str(args.tg), "-t", str(args.threads),
           "-r", str(args.reps), "-o", "json"]
    r = Run(cmd, args.timeout, time_v=True, wait=args.wait_idle)
    res = {"run": r.summary()}
    if not r.ok:
        return res
    try:
        rows = json.loads(r.out)
    except json.JSONDecodeError as e:
        res["run"]["error"] = f"llama-bench output is not JSON: {e}"
        return res
    for row in rows:
        key = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
        res[key] = row["avg_ts"]
        res[key + "_stddev"] = row.get("stddev_ts")
        res["n_params"] = row.get("model_n_params")
        res["model_type"] = row.get("model_type")
        res["model_size"] = row.get("model_size")
    return res


def reslens_bench(args, path):
    cmd = [args.reslens, "bench", path, "-p", args.tokens, "-r", str(args.reps), "-t", str(args.threads), "--json"]
    r = Run(cmd, args.timeout, time_v=True, wait=args.wait_idle)
    res = {"run": r.summary()}
    if not r.ok:
        return res
    try:
        j = json.loads(r.out)
    except json.JSONDecodeError as e:
        res["run"]["error"] = f"reslens bench output is not JSON: {e}"
        return res
    res["n_params"] = j.get("n_params")
    res["sgemm_gflops"] = j.get("sgemm_gflops")
    fma_key = next((k for k in FMA_KEYS if isinstance(j.get(k), (int, float))), None)
    if fma_key is None:  # any other numeric key that names an FMA rate
        fma_key = next((k for k, v in j.items() if "fma" in k.lower() and isinstance(v, (int, float))), None)
    res["peak_key"] = fma_key or "sgemm_gflops"
    res["peak_gflops"] = j.get(res["peak_key"])
    for row in j.get("results", []):
        if not row.get("capture"):
            res[f"pp{row['tokens']}"] = row["tokens_per_s"]
            res[f"pp{row['tokens']}_gflops"] = row["gflops"]
    res["raw"] = j
    return res


def reslens_rss(args, path, what):
    if what == "predict":
        cmd = [args.reslens, "predict", path, "--ids", "1,2,3", "-t", str(args.threads), "--json"]
    else:
        cmd = [args.reslens, "explain", path, args.explain_text, "-t", str(args.threads), "--json"]
    r = Run(cmd, args.timeout, time_v=True, wait=args.wait_idle)
    return {"run": r.summary(), "peak_rss": r.peak_rss if r.ok else None}


# -- table ----------------------------------------------------------------------------------------

def gb(n):
    return "" if n is None else f"{n / 1e9:.2f}"


def tps(d, key):
    v = d.get(key) if d else None
    return "" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def failure(d):
    """'fails: ...' for a failed run, '' otherwise."""
    if not d or "run" not in d or not d["run"].get("error"):
        return ""
    return f"fails: {d['run']['error']}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="GGUF files or HF directories (default: the --set under --dir)")
    ap.add_argument("--dir", default="/tmp/big")
    ap.add_argument("--set", choices=sorted(SETS), default="7b")
    ap.add_argument("--reslens", default="build/reslens")
    ap.add_argument("--llama-bench", default="/tmp/llama.cpp/build/bin/llama-bench")
    ap.add_argument("--tokens", default="8,128", help="prompt lengths for both benchmarks")
    ap.add_argument("--tg", type=int, default=16, help="llama-bench decode test length (0: none)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    ap.add_argument("--wait-idle", type=float, default=60, help="seconds to wait for a quiet machine (0: no wait)")
    ap.add_argument("--skip", default="", help="comma-separated: llama, bench, predict, explain")
    ap.add_argument("--explain-text", default=EXPLAIN_TEXT)
    ap.add_argument("--json", help="also write every measurement here")
    args = ap.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    unknown = skip - {"llama", "bench", "predict", "explain"}
    if unknown:
        ap.error(f"unknown --skip {sorted(unknown)}")
    if "llama" not in skip and not os.access(args.llama_bench, os.X_OK):
        ap.error(f"{args.llama_bench}: no llama-bench there (--llama-bench PATH, or --skip llama)")
    if not skip >= {"bench", "predict", "explain"} and not os.access(args.reslens, os.X_OK):
        ap.error(f"{args.reslens}: no reslens there (--reslens PATH)")
    models = args.models or [os.path.join(args.dir, m) for m in SETS[args.set]]
    missing = [m for m in models if not os.path.exists(m)]
    for m in missing:
        log(f"missing, skipped: {m}")
    models = [m for m in models if os.path.exists(m)]
    if not models:
        sys.exit("no model files (see the docstring for how to write them)")
    lengths = [int(x) for x in args.tokens.split(",") if x]

    results = []
    for path in models:
        size = size_of(path)
        r = {"model": path, "file_bytes": size, "budget_bytes": 1.25 * size + 1e9}
        log(f"== {path} ({gb(size)} GB)")
        if "llama" not in skip:
            r["llama"] = llama_bench(args, path)
            log(f"   llama-bench: {json.dumps({k: v for k, v in r['llama'].items() if k != 'raw'})}")
        if "bench" not in skip:
            r["reslens"] = reslens_bench(args, path)
            log(f"   reslens bench: {json.dumps({k: v for k, v in r['reslens'].items() if k != 'raw'})}")
        for what in ("predict", "explain"):
            if what not in skip:
                r[what] = reslens_rss(args, path, what)
                log(f"   reslens {what}: {json.dumps(r[what])}")
        results.append(r)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "reps": args.reps, "tokens": lengths, "tg": args.tg,
                       "explain_text": args.explain_text, "results": results}, f, indent=1)
            f.write("\n")

    # -- the table --
    pp = [f"pp{n}" for n in lengths]
    tg = f"tg{args.tg}" if args.tg else None
    head = ["model", "file GB"] + [f"llama.cpp {k} tok/s" for k in pp] + ([f"llama.cpp {tg} tok/s"] if tg else [])
    head += [f"reslens {k} tok/s" for k in pp] + [f"ratio {k}" for k in pp]
    head += [f"reslens GFLOP/s {pp[-1]}", "float32 FMA GFLOP/s", "of FMA", "predict RSS GB", "explain RSS GB",
             "budget GB", "other load"]
    print(f"{args.threads} threads, {args.reps} repetitions; ratio = reslens / llama.cpp tokens/s; GFLOP/s = 2 x "
          f"parameters x tokens / s; budget = 1.25 x file + 1 GB; other load = CPU cores busy with other "
          f"processes during the runs (max over them; > 0.2: noisy)\n")
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    notes = []
    for r in results:
        name = os.path.basename(r["model"].rstrip("/"))
        ll, rb = r.get("llama") or {}, r.get("reslens") or {}
        row = [name, gb(r["file_bytes"])]
        if "skipped" in ll:
            row += ["n/a"] * (len(pp) + (1 if tg else 0))
        else:
            row += [tps(ll, k) for k in pp] + ([tps(ll, tg)] if tg else [])
        row += [tps(rb, k) for k in pp]
        for k in pp:
            a, b = ll.get(k), rb.get(k)
            row.append(f"{b / a:.2f}x" if a and b else "")
        g, peak = rb.get(f"{pp[-1]}_gflops"), rb.get("peak_gflops")
        row += ["" if g is None else f"{g:.0f}",
                "" if peak is None else f"{peak:.0f}" + ("" if rb.get("peak_key") in FMA_KEYS or
                                                          "fma" in (rb.get("peak_key") or "") else " (sgemm)"),
                f"{g / peak * 100:.0f}%" if g and peak else ""]
        for what in ("predict", "explain"):
            rss = (r.get(what) or {}).get("peak_rss")
            mark = "" if rss is None else (" ok" if rss <= r["budget_bytes"] else " over")
            row.append("" if rss is None else gb(rss) + mark)
        row.append(gb(r["budget_bytes"]))
        loads = [d["run"]["other_load_cores"] for d in (ll, rb, r.get("predict"), r.get("explain"))
                 if d and "run" in d]
        row.append(f"{max(loads):.2f}" if loads else "")
        print("| " + " | ".join(row) + " |")
        for label, d in (("llama-bench", ll), ("reslens bench", rb), ("reslens predict", r.get("predict")),
                         ("reslens explain", r.get("explain"))):
            if failure(d):
                notes.append(f"- {name}: {label} {failure(d)}")
    # llama.cpp's own peak RSS (its llama-bench run, context of max prompt + tg tokens)
    print("\n| model | llama-bench peak RSS GB | budget GB |\n|---|---:|---:|")
    for r in results:
        ll = r.get("llama") or {}
        rss = ll.get("run", {}).get("peak_rss_bytes")
        print(f"| {os.path.basename(r['model'].rstrip('/'))} | "
              f"{'n/a' if 'skipped' in ll else gb(rss)} | {gb(r['budget_bytes'])} |")
    if notes:
        print("\nFailures:\n" + "\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
