#!/usr/bin/python3
"""Checks `reslens diff A B --batch FILE -o OUT` (docs/diff.md, "Over a dataset"). Used by CTest.

  1. F16 against Q8_0 (both converted here from --model, or from a random-weight model written here
     with --random-d-mlp): every line of OUT/diffs.jsonl is, byte for byte, the `reslens diff A B
     TEXT --json` document of that line's prompt, target, foil and position (its whitespace removed)
     with the "batch" key appended; a prompt that cannot be compared is an error line carrying diff's
     own message; the malformed line is reported by number, skipped.
  2. OUT/arrays/ (every compared prompt's scores, whole): lines.npy names the compared input lines,
     and each <group>_{a,b}.npy is bit for bit the stack of the single diffs' `--out` arrays
     (a/<level>.npy, b/<level>.npy; attention neurons summed over their source positions), whatever
     the level's size; --expect-large GROUP: that group's level is too large for the documents
     (over 4096 elements, not inlined), so the summary can only come from the arrays.
  3. OUT/summary.json against numpy, over the arrays of the single diffs and over OUT/arrays/: the
     counts, the mean target log-prob change, and per level the top components by mean |B - A| with
     their mean delta, mean rank change and how many documents list them in their top changes.
  4. A model against itself: a summary of zeros (no component listed, every mean 0), A = B.
  5. --resume after the results file was cut in the middle of a line (every array file holding all
     the rows and half of one more) gives the same bytes (lines, arrays, summary); a short, corrupted, mismatched or missing array file is refused on resume
     (exit 3, one line naming the file); --strict makes the malformed line fatal (exit 3, naming
     FILE:LINE); an existing OUT is refused; a model of another shape is refused before any prompt
     (exit 4, nothing written).
  6. With --mpirun: `mpirun -np 2` writes the same diffs.jsonl, arrays and summary.json, byte for byte.

    check_diff_batch.py --reslens BUILD/reslens (--model MODEL.gguf | --random-d-mlp N --shared SHARED)
                        --work DIR [--expect-large GROUP] [--mpirun mpirun]
"""
import argparse
import dataclasses
import json
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from check_helpers import Checks, f16_q8_pair, fresh_dir, run_cli  # noqa: E402

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
    # Long enough that its attention neurons (L x H x d_head x positions) pass 4096 elements.
    {"prompt": "Once upon a time, there was a little girl named Lily. She loved to play outside in the big "
               "green park with her friends, her mom and her little dog Max.", "id": "long"},
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


def sum_positions(x):
    """An attention level [L, H, d_head, P+1] summed over its source positions, left to right (the
    order reslens adds them in, so the sums are bit for bit). [L, H, d_head]"""
    s = np.zeros(x.shape[:-1])
    for p in range(x.shape[-1]):
        s = s + x[..., p]
    return s


def numpy_summary(lines, top, arrays):
    """The summary of docs/diff.md from the documents (counts, top-change lists) and per group the
    scores of every compared prompt, arrays[group] = (A, B), each [prompts, *grid]."""
    docs = [d for d in lines if "error" not in d]
    want = {"done": len(docs), "failed": len(lines) - len(docs)}
    lp = np.array([d["target_log_prob_delta"] for d in docs])
    want["lp_mean"], want["lp_mean_abs"] = lp.mean(), np.abs(lp).mean()
    want["prediction_changed"] = sum(d["model_a"]["prediction"]["id"] != d["model_b"]["prediction"]["id"] for d in docs)
    for group, _ in GROUPS:
        A, B = arrays[group]
        grid = A.shape[1:]
        A, B = A.reshape(len(A), -1), B.reshape(len(B), -1)
        listed = [{int(np.ravel_multi_index(c["index"][:len(grid)], grid)) for c in d["changes"][group]["by_delta"]}
                  for d in docs]
        D = B - A
        mean_abs, mean_delta = np.abs(D).mean(axis=0), D.mean(axis=0)
        rank_change = np.array([ranks(b) - ranks(a) for a, b in zip(A, B)]).mean(axis=0)
        in_top = np.array([sum(i in s for s in listed) for i in range(A.shape[1])])
        changed = [i for i in range(A.shape[1]) if mean_abs[i] != 0 or rank_change[i] != 0 or in_top[i] != 0]
        changed.sort(key=lambda i: -mean_abs[i])  # stable: ties keep the array order
        want[group] = [(i, mean_abs[i], mean_delta[i], int(in_top[i]), rank_change[i]) for i in changed[:top]], grid
    return want


def compare_summary(check, s, w, what):
    check(s["prompts"] == {"done": w["done"], "failed": w["failed"], "skipped_lines": 1}, f"{what}: counts {s['prompts']}")
    check(np.isclose(s["target_log_prob_delta"]["mean"], w["lp_mean"], rtol=1e-12, atol=0) and
          np.isclose(s["target_log_prob_delta"]["mean_abs"], w["lp_mean_abs"], rtol=1e-12, atol=0),
          f"{what}: mean target log-prob change is numpy's")
    check(s["prediction_changed"] == w["prediction_changed"], f"{what}: prediction changes counted")
    for group, _ in GROUPS:
        got, (want, grid) = s[group], w[group]
        check(got["prompts"] == w["done"] and tuple(got["shape"]) == grid, f"{what}: {group}: every prompt, grid {grid}")
        check(len(want) > 0, f"{what}: {group}: F16 vs Q8_0 changes something ({len(want)} listed)")
        same = len(got["top"]) == len(want)
        for e, (i, ma, md, it, rc) in zip(got["top"], want):
            same = same and tuple(e["index"]) == np.unravel_index(i, grid) and e["in_top"] == it and \
                np.isclose(e["mean_abs_delta"], ma, rtol=1e-12, atol=0) and \
                np.isclose(e["mean_delta"], md, rtol=1e-12, atol=1e-300) and \
                np.isclose(e["mean_rank_change"], rc, rtol=1e-12, atol=0)
        check(same, f"{what}: {group}: top {len(want)} by mean |delta| with mean delta, in_top and mean rank change "
              "equal numpy's")


def sidecar(out):
    """OUT/arrays/: lines.npy, and per group (A, B) as numpy loads them."""
    d = os.path.join(out, "arrays")
    arrays = {g: (np.load(os.path.join(d, g + "_a.npy")), np.load(os.path.join(d, g + "_b.npy")))
              for g, _ in GROUPS if os.path.exists(os.path.join(d, g + "_a.npy"))}
    return np.load(os.path.join(d, "lines.npy")), arrays


def folder_bytes(out):
    """{relative path: bytes} of diffs.jsonl, summary.json and every file under arrays/."""
    names = ["diffs.jsonl", "summary.json"] + ["arrays/" + f for f in sorted(os.listdir(os.path.join(out, "arrays")))]
    return {n: open(os.path.join(out, n), "rb").read() for n in names}


def write_random_model(shared, d_mlp, work):
    """A random-weight tiny-llama (make_random_models.py's TINY_LLAMA, 2 layers) with d_mlp FFN
    neurons per layer and the stories260K vocabulary, as F32 GGUF."""
    from make_random_models import TINY_LLAMA
    from reslens_ref import ggml_types, gguf_model
    from reslens_ref.random_model import random_model
    cfg = dataclasses.replace(TINY_LLAMA, d_mlp=d_mlp, name=f"tiny-llama-ffn{d_mlp}")
    path = os.path.join(work, f"{cfg.name}.gguf")
    tok = gguf_model.tokenizer_fields(os.path.join(shared, "models", "stories260K", "stories260K.gguf"))
    gguf_model.write(random_model(cfg, 0, "fan_in"), path, ggml_types.F32, tokenizer=tok)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", required=True)
    ap.add_argument("--model", help="an F32 GGUF; converted here to F16 and Q8_0")
    ap.add_argument("--random-d-mlp", type=int, help="instead of --model: a random tiny-llama with this d_mlp")
    ap.add_argument("--shared", help="the shared data folder (the vocabulary of --random-d-mlp's model)")
    ap.add_argument("--expect-large", action="append", default=[], metavar="GROUP",
                    help="a group whose level must be too large for the documents (repeatable)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--mpirun")
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args()
    a.work = fresh_dir(a.work)
    check = Checks()
    rl = run_cli
    if a.random_d_mlp:
        a.model = write_random_model(a.shared, a.random_d_mlp, a.work)
    elif not a.model:
        ap.error("give --model or --random-d-mlp")

    f16, q8 = f16_q8_pair(a.model, a.work)
    batch = os.path.join(a.work, "prompts.jsonl")
    with open(batch, "w") as f:
        for p in PROMPTS:
            f.write((p if isinstance(p, str) else json.dumps(p)) + "\n")
    opts = ["--top", str(a.top), "--split-top", "5", "-t", "2", "-q"]

    # 1. Every line against the single diff, whose --out arrays are kept for 2 and 3.
    out = os.path.join(a.work, "out")
    p = rl(a.reslens, "diff", f16, q8, "--batch", batch, "-o", out, *opts)
    check(f"{batch}:3: not a JSON object (line skipped)" in p.stderr, "malformed line 3 reported: " + p.stderr)
    check("1 prompt(s) could not be compared" in p.stderr, "the error line counted: " + p.stderr)
    raw = open(os.path.join(out, "diffs.jsonl"), encoding="utf-8").read().splitlines()
    valid = [(n + 1, q) for n, q in enumerate(PROMPTS) if not isinstance(q, str)]
    check(len(raw) == len(valid), f"one line per valid input line ({len(raw)} of {len(valid)})")
    lines = [json.loads(x) for x in raw]
    singles = []  # the --out folder of each compared line's single diff
    for text, d, (n, q) in zip(raw, lines, valid):
        check(d["batch"] == {"line": n, "id": q.get("id")}, f"line {n}: batch key {d['batch']}")
        single_out = os.path.join(a.work, f"single-{n}")
        cmd = [a.reslens, "diff", f16, q8, q["prompt"], "--json", "--out", single_out, "--top", str(a.top),
               "--split-top", "5", "-t", "1"]
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
        singles.append(single_out)
        tail = ',"batch":' + json.dumps(d["batch"], separators=(",", ":"), ensure_ascii=False) + "}"
        check(text.endswith(tail) and text[:-len(tail)] + "}" == minify(single.stdout.strip()),
              f"line {n}: byte for byte the single `diff --json` plus the batch key")
    check(sum("error" in d for d in lines) == 1, "one error line (position past the end)")
    docs = [d for d in lines if "error" not in d]

    # 2. OUT/arrays/ against the single diffs' arrays.
    large = sorted({g for d in docs for g, level in GROUPS for lv in d["levels"] if lv["name"] == level and "a" not in lv})
    print(f"info  levels too large for the documents (not inlined): {large or 'none'}")
    for g in a.expect_large:
        check(g in large, f"{g}: its level is larger than 4096 elements in some prompt (not inlined)")
    single_arrays = {}
    for group, level in GROUPS:
        sides = []
        for side in ("a", "b"):
            x = [np.load(os.path.join(s, side, level + ".npy")) for s in singles]
            sides.append(np.stack([sum_positions(v) if group == "attn_neurons" else v for v in x]))
        single_arrays[group] = tuple(sides)
    got_lines, arrays = sidecar(out)
    check(got_lines.dtype == np.int64 and got_lines.tolist() == [d["batch"]["line"] for d in docs],
          f"arrays/lines.npy names the {len(docs)} compared lines: {got_lines.tolist()}")
    for group, _ in GROUPS:
        for k, side in enumerate("ab"):
            g, w = arrays.get(group, (None, None))[k], single_arrays[group][k]
            check(g is not None and g.dtype == np.float64 and g.shape == w.shape and g.tobytes() == w.tobytes(),
                  f"arrays/{group}_{side}.npy {None if g is None else g.shape}: bit for bit the single diffs' arrays")

    # 3. The summary against numpy, over the single diffs' arrays and over OUT/arrays/.
    s = json.load(open(os.path.join(out, "summary.json")))
    compare_summary(check, s, numpy_summary(lines, a.top, single_arrays), "summary vs the single diffs")
    compare_summary(check, s, numpy_summary(lines, a.top, arrays), "summary vs arrays/")

    # 4. A model against itself.
    self_out = os.path.join(a.work, "self")
    rl(a.reslens, "diff", f16, f16, "--batch", batch, "-o", self_out, *opts)
    s = json.load(open(os.path.join(self_out, "summary.json")))
    _, self_arrays = sidecar(self_out)
    check(all(s[g]["top"] == [] and s[g]["prompts"] == len(docs) for g, _ in GROUPS)
          and s["target_log_prob_delta"] == {"mean": 0, "mean_abs": 0}
          and s["prediction_changed"] == 0 and s["prompts"]["done"] == len(docs),
          "self: an all-zero summary (nothing listed, mean changes 0)")
    check(len(self_arrays) == 4 and all(np.array_equal(x, y) for x, y in self_arrays.values()), "self: arrays A = B")

    # 5. Resume after a cut, refused array files, --strict, an existing OUT.
    whole = open(os.path.join(out, "diffs.jsonl"), "rb").read()
    ends = [i for i, c in enumerate(whole) if c == ord("\n")]

    def cut_copy(name, keep_lines, half):
        """A copy of OUT whose diffs.jsonl keeps `keep_lines` lines (and half of the next with `half`)."""
        d = os.path.join(a.work, name)
        shutil.copytree(out, d)
        end = ends[keep_lines - 1] + 1
        with open(os.path.join(d, "diffs.jsonl"), "wb") as f:
            f.write(whole[:end + ((ends[keep_lines] - end) // 2 if half else 0)])
        os.remove(os.path.join(d, "summary.json"))
        return d

    cut = cut_copy("cut", 2, True)
    for f in os.listdir(os.path.join(cut, "arrays")):  # and a half-written row after the last whole one
        with open(os.path.join(cut, "arrays", f), "ab") as fh:
            fh.write(b"\xff" * 12)
    p = rl(a.reslens, "diff", f16, q8, "--batch", batch, "-o", cut, "--resume", *opts[:-1])
    check("resuming: 2 prompt(s) already done" in p.stderr, "resume count: " + p.stderr)
    want_bytes, got_bytes = folder_bytes(out), folder_bytes(cut)
    check(sorted(got_bytes) == sorted(want_bytes), f"resumed: the same files {sorted(got_bytes)}")
    for name in sorted(want_bytes):
        check(got_bytes.get(name) == want_bytes[name], f"resumed after a cut line: {name} byte-identical")

    def corrupt_short(path):  # one row and a half: fewer than the kept lines need
        rows, head = np.load(path).shape[0], header_len(path)
        row = (os.path.getsize(path) - head) // rows
        os.truncate(path, head + row + row // 2)

    def corrupt_header(path):  # another dtype in the header
        data = bytearray(open(path, "rb").read())
        i = data.index(b"<f8")
        data[i:i + 3] = b"<f4"
        open(path, "wb").write(bytes(data))

    def corrupt_lines(path):  # the first row names another input line
        data = bytearray(open(path, "rb").read())
        data[header_len(path)] ^= 0x40
        open(path, "wb").write(bytes(data))

    for k, (file, how, said) in enumerate((("ffn_neurons_a.npy", corrupt_short, "holds 1 prompt(s), the kept lines need 2"),
                                           ("heads_b.npy", corrupt_header, "not a .npy file of this batch"),
                                           ("lines.npy", corrupt_lines, "row 0 is input line"),
                                           ("layers_a.npy", os.remove, "missing"))):
        d = cut_copy(f"bad-{k}", 2, False)
        path = os.path.join(d, "arrays", file)
        how(path)
        p = rl(a.reslens, "diff", f16, q8, "--batch", batch, "-o", d, "--resume", *opts, ok=False)
        err = [x for x in p.stderr.strip().splitlines() if not x.startswith("warning: ")]  # line 3's warning
        check(p.returncode == 3 and len(err) == 1 and path in err[0] and said in err[0],
              f"resume refuses arrays/{file} ({how.__name__}): exit {p.returncode}: {p.stderr.strip()}")

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

    # 6. mpirun -np 2.
    if a.mpirun:
        env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
        mpi = os.path.join(a.work, "mpi")
        p = rl(a.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2", a.reslens, "diff",
               f16, q8, "--batch", batch, "-o", mpi, "--top", str(a.top), "--split-top", "5", "-t", "1", env=env)
        check("on 2 rank(s)" in p.stderr, "ran on 2 ranks: " + p.stderr)
        got_bytes = folder_bytes(mpi)
        check(sorted(got_bytes) == sorted(want_bytes), f"mpirun -np 2: the same files {sorted(got_bytes)}")
        for name in sorted(want_bytes):
            check(got_bytes.get(name) == want_bytes[name], f"mpirun -np 2: {name} byte-identical")
    else:
        print("skip  mpirun -np 2 (no --mpirun)")

    return check.finish("all checks passed", sys.stderr)


def header_len(path):
    """Bytes before a .npy file's data (version 1.0)."""
    head = open(path, "rb").read(10)
    return 10 + head[8] + 256 * head[9]


if __name__ == "__main__":
    sys.exit(main())
