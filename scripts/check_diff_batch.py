#!/usr/bin/python3
"""Checks `reslens diff A B --batch FILE -o OUT` (docs/diff.md, "Over a dataset"). Used by CTest.

  1. F16 against Q8_0 (both converted here from --model): every line of OUT/diffs.jsonl is, byte for
     byte, the `reslens diff A B TEXT --json` document of that line's prompt, target, foil and
     position (its whitespace removed) with the "batch" key appended; a prompt that cannot be compared
     is an error line carrying diff's own message; the malformed line is reported by number, skipped.
  2. OUT/summary.json against numpy over the per-prompt documents' arrays: the counts, the mean
     target log-prob change, and per level the top components by mean |B - A| with their mean delta,
     mean rank change and how many documents list them in their top changes.
  3. A model against itself: a summary of zeros (no component listed, every mean 0).
  4. --resume after the results file was cut in the middle of a line gives the same bytes; --strict
     makes the malformed line fatal (exit 3, naming FILE:LINE); an existing OUT is refused; a model of
     another shape is refused before any prompt (exit 4, nothing written).
  5. With --mpirun: `mpirun -np 2` writes the same diffs.jsonl and summary.json, byte for byte.

    check_diff_batch.py --reslens BUILD/reslens --model MODEL.gguf --work DIR [--mpirun mpirun]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GROUPS = (("layers", "layer_scores"), ("heads", "head_scores"), ("ffn_neurons", "ffn_neuron_scores"),
          ("attn_neurons", "attn_neuron_scores"))

PROMPTS = [
    {"prompt": "Once upon a time, there was a", "id": "a"},
    {"prompt": "The little girl saw a big", "target": " dog", "id": 2},
    "this line is not JSON",
    {"prompt": "Tom and his mom went to the", "position": 3},
    {"prompt": "She was very happy and", "foil": " sad", "id": [4]},
    {"prompt": "One day", "position": 99, "id": "past the end"},
    {"prompt": "Lily liked to play with her", "target": 300},
]


def minify(text):
    """The JSON text without the whitespace outside strings: nlohmann's dump(2) -> dump(-1)."""
    out, in_str, esc = [], False, False
    for ch in text:
        if in_str:
            out.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            out.append(ch)
        elif ch not in " \n\t\r":
            out.append(ch)
    return "".join(out)


def ranks(v):
    """1 + how many scores are larger (ties share a rank). [n]"""
    return 1 + (v[None, :] > v[:, None]).sum(axis=1)


def numpy_summary(lines, top):
    docs = [d for d in lines if "error" not in d]
    want = {"done": len(docs), "failed": len(lines) - len(docs)}
    lp = np.array([d["target_log_prob_delta"] for d in docs])
    want["lp_mean"], want["lp_mean_abs"] = lp.mean(), np.abs(lp).mean()
    want["prediction_changed"] = sum(d["model_a"]["prediction"]["id"] != d["model_b"]["prediction"]["id"] for d in docs)
    for group, level in GROUPS:
        A, B, listed = [], [], []
        for d in docs:
            lv = next(x for x in d["levels"] if x["name"] == level)
            a, b = np.array(lv["a"]).reshape(lv["shape"]), np.array(lv["b"]).reshape(lv["shape"])
            if group == "attn_neurons":  # (layer, head, dim), summed over source positions
                a, b = a.sum(axis=-1), b.sum(axis=-1)
            grid = a.shape
            A.append(a.ravel())
            B.append(b.ravel())
            listed.append({int(np.ravel_multi_index(c["index"][:len(grid)], grid))
                           for c in d["changes"][group]["by_delta"]})
        A, B = np.array(A), np.array(B)
        D = B - A
        mean_abs, mean_delta = np.abs(D).mean(axis=0), D.mean(axis=0)
        rank_change = np.array([ranks(b) - ranks(a) for a, b in zip(A, B)]).mean(axis=0)
        in_top = np.array([sum(i in s for s in listed) for i in range(A.shape[1])])
        changed = [i for i in range(A.shape[1]) if mean_abs[i] != 0 or rank_change[i] != 0 or in_top[i] != 0]
        changed.sort(key=lambda i: -mean_abs[i])  # stable: ties keep the array order
        want[group] = [(i, mean_abs[i], mean_delta[i], int(in_top[i]), rank_change[i]) for i in changed[:top]], grid
    return want


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", required=True)
    ap.add_argument("--model", required=True, help="an F32 GGUF; converted here to F16 and Q8_0")
    ap.add_argument("--work", required=True)
    ap.add_argument("--mpirun")
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    failures = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    def rl(*args, ok=True, env=None):
        p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        if ok and p.returncode != 0:
            sys.exit(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    f16 = os.path.join(a.work, "model-f16.gguf")
    q8 = os.path.join(a.work, "model-q8_0.gguf")
    for t, out in (("f16", f16), ("q8_0", q8)):
        subprocess.run([sys.executable, os.path.join(HERE, "convert_model.py"), a.model, "--type", t, "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
    batch = os.path.join(a.work, "prompts.jsonl")
    with open(batch, "w") as f:
        for p in PROMPTS:
            f.write((p if isinstance(p, str) else json.dumps(p)) + "\n")
    opts = ["--top", str(a.top), "--split-top", "5", "-t", "2", "-q"]

    # 1. Every line against the single diff.
    out = os.path.join(a.work, "out")
    p = rl(a.reslens, "diff", f16, q8, "--batch", batch, "-o", out, *opts)
    check(f"{batch}:3: not a JSON object (line skipped)" in p.stderr, "malformed line 3 reported: " + p.stderr)
    check("1 prompt(s) could not be compared" in p.stderr, "the error line counted: " + p.stderr)
    raw = open(os.path.join(out, "diffs.jsonl"), encoding="utf-8").read().splitlines()
    valid = [(n + 1, q) for n, q in enumerate(PROMPTS) if not isinstance(q, str)]
    check(len(raw) == len(valid), f"one line per valid input line ({len(raw)} of {len(valid)})")
    lines = [json.loads(x) for x in raw]
    for text, d, (n, q) in zip(raw, lines, valid):
        check(d["batch"] == {"line": n, "id": q.get("id")}, f"line {n}: batch key {d['batch']}")
        cmd = [a.reslens, "diff", f16, q8, q["prompt"], "--json", "--top", str(a.top), "--split-top", "5", "-t", "1"]
        for k in ("target", "foil"):
            if k in q:
                cmd += ["--" + k, str(q[k])]
        if "position" in q:
            cmd += ["--position", str(q["position"])]
        single = rl(*cmd, ok=False)
        if "error" in d:
            check(single.returncode != 0 and d["error"] in single.stderr,
                  f"line {n}: the error is diff's own: {d['error']!r} / {single.stderr.strip()!r}")
            continue
        check(single.returncode == 0, f"line {n}: the single diff runs: {single.stderr}")
        tail = ',"batch":' + json.dumps(d["batch"], separators=(",", ":"), ensure_ascii=False) + "}"
        check(text.endswith(tail) and text[:-len(tail)] + "}" == minify(single.stdout.strip()),
              f"line {n}: byte for byte the single `diff --json` plus the batch key")
    check(sum("error" in d for d in lines) == 1, "one error line (position past the end)")

    # 2. The summary against numpy.
    s = json.load(open(os.path.join(out, "summary.json")))
    w = numpy_summary(lines, a.top)
    check(s["prompts"] == {"done": w["done"], "failed": w["failed"], "skipped_lines": 1}, f"counts {s['prompts']}")
    check(np.isclose(s["target_log_prob_delta"]["mean"], w["lp_mean"], rtol=1e-12, atol=0) and
          np.isclose(s["target_log_prob_delta"]["mean_abs"], w["lp_mean_abs"], rtol=1e-12, atol=0),
          "mean target log-prob change is numpy's")
    check(s["prediction_changed"] == w["prediction_changed"], "prediction changes counted")
    for group, _ in GROUPS:
        got, (want, grid) = s[group], w[group]
        check(got["prompts"] == w["done"] and tuple(got["shape"]) == grid, f"{group}: every prompt, grid {grid}")
        check(len(want) > 0, f"{group}: F16 vs Q8_0 changes something ({len(want)} listed)")
        same = len(got["top"]) == len(want)
        for e, (i, ma, md, it, rc) in zip(got["top"], want):
            same = same and tuple(e["index"]) == np.unravel_index(i, grid) and e["in_top"] == it and \
                np.isclose(e["mean_abs_delta"], ma, rtol=1e-12, atol=0) and \
                np.isclose(e["mean_delta"], md, rtol=1e-12, atol=1e-300) and \
                np.isclose(e["mean_rank_change"], rc, rtol=1e-12, atol=0)
        check(same, f"{group}: top {len(want)} by mean |delta| with mean delta, in_top and mean rank change equal numpy's")

    # 3. A model against itself.
    self_out = os.path.join(a.work, "self")
    rl(a.reslens, "diff", f16, f16, "--batch", batch, "-o", self_out, *opts)
    s = json.load(open(os.path.join(self_out, "summary.json")))
    check(all(s[g]["top"] == [] for g, _ in GROUPS) and s["target_log_prob_delta"] == {"mean": 0, "mean_abs": 0}
          and s["prediction_changed"] == 0 and s["prompts"]["done"] == w["done"],
          "self: an all-zero summary (nothing listed, mean changes 0)")

    # 4. Resume after a cut, --strict, an existing OUT.
    cut = os.path.join(a.work, "cut")
    shutil.copytree(out, cut)
    whole = open(os.path.join(out, "diffs.jsonl"), "rb").read()
    ends = [i for i, c in enumerate(whole) if c == ord("\n")]
    with open(os.path.join(cut, "diffs.jsonl"), "wb") as f:
        f.write(whole[:ends[1] + 1 + (ends[2] - ends[1]) // 2])
    os.remove(os.path.join(cut, "summary.json"))
    p = rl(a.reslens, "diff", f16, q8, "--batch", batch, "-o", cut, "--resume", *opts[:-1])
    check("resuming: 2 prompt(s) already done" in p.stderr, "resume count: " + p.stderr)
    for name in ("diffs.jsonl", "summary.json"):
        check(open(os.path.join(cut, name), "rb").read() == open(os.path.join(out, name), "rb").read(),
              f"resumed after a cut line: {name} byte-identical")
    p = rl(a.reslens, "diff", f16, q8, "--batch", batch, "-o", os.path.join(a.work, "strict"), "--strict", *opts, ok=False)
    check(p.returncode == 3 and f"{batch}:3: not a JSON object" in p.stderr, "--strict: " + p.stderr)
    p = rl(a.reslens, "diff", f16, q8, "--batch", batch, "-o", out, *opts, ok=False)
    check(p.returncode == 2 and "--resume" in p.stderr, "existing OUT refused: " + p.stderr)
    p = rl(a.reslens, "diff", f16, q8, "--batch", batch, "-o", os.path.join(a.work, "t"), "--target", "3", ok=False)
    check(p.returncode == 2 and "--target cannot be combined with --batch" in p.stderr, "--target refused: " + p.stderr)

    other = os.path.join(os.path.dirname(os.path.abspath(a.model)), "..", "TinyStories-656K", "TinyStories-656K-f32.gguf")
    if os.path.exists(other):
        shape_out = os.path.join(a.work, "shapes")
        p = rl(a.reslens, "diff", f16, other, "--batch", batch, "-o", shape_out, ok=False)
        check(p.returncode == 4 and "cannot diff models of different shapes" in p.stderr and not os.path.exists(shape_out),
              "another shape: refused once, exit 4, nothing written: " + p.stderr)

    # 5. mpirun -np 2.
    if a.mpirun:
        env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
        mpi = os.path.join(a.work, "mpi")
        p = rl(a.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2", a.reslens, "diff",
               f16, q8, "--batch", batch, "-o", mpi, "--top", str(a.top), "--split-top", "5", "-t", "1", env=env)
        check("on 2 rank(s)" in p.stderr, "ran on 2 ranks: " + p.stderr)
        for name in ("diffs.jsonl", "summary.json"):
            check(open(os.path.join(mpi, name), "rb").read() == open(os.path.join(out, name), "rb").read(),
                  f"mpirun -np 2: {name} byte-identical")
    else:
        print("skip  mpirun -np 2 (no --mpirun)")

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
