#!/usr/bin/env python3
"""`reslens explain MODEL --batch FILE -o OUT` end to end, one process.

Checks: every line of OUT/explanations.jsonl is, less its "batch" key, the very document `reslens
explain MODEL TEXT --json` prints for that line's prompt, target, foil and position (so the batch
inherits every check of explain --json against the float64 reference); lines come in input order
with their line number and id; a prompt that cannot be explained becomes an "error" line and the
others are kept; a malformed line is reported by number and skipped, or fatal with --strict;
--arrays writes the same .npy files as explain --out; an existing OUT is refused without --resume or
--force; a run cut short (a prefix of lines and half of the next) resumed with --resume gives the
same bytes as an uninterrupted run, and a resume with another batch file is refused.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--reslens", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--work", required=True)
args = ap.parse_args()

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(*a, ok=True):
    p = subprocess.run([args.reslens, *a], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit(f"reslens {' '.join(a)} failed ({p.returncode}): {p.stderr}")
    return p


shutil.rmtree(args.work, ignore_errors=True)
os.makedirs(args.work)
LINES = [
    {"prompt": "Once upon a time, there was a little girl named Lily.", "target": " She", "id": "a"},
    {"prompt": "One day, Lily and her mom went to the", "id": 7},
    {"prompt": "Tom had a red ball. He liked to play with his", "target": " friend", "foil": " ball", "position": -1},
    "not json",
    {"prompt": "Once upon a", "target": " time", "position": 2},
    {"prompt": "Once upon a", "position": 40, "id": "too far"},  # explained as an error line
    {"prompt": "The cat sat", "target": 300},
    {"target": "no prompt"},
    {"prompt": "Lily was happy.", "target": " She was"},  # several tokens: the target document
]
batch = os.path.join(args.work, "prompts.jsonl")
with open(batch, "w") as f:
    for x in LINES:
        f.write((x if isinstance(x, str) else json.dumps(x)) + "\n")

out = os.path.join(args.work, "out")
p = run("explain", args.model, "--batch", batch, "-o", out, "-t", "2")
check(f"{batch}:4: not a JSON object (line skipped)" in p.stderr, "malformed line 4 reported: " + p.stderr)
check(f"{batch}:8: no \"prompt\" text (line skipped)" in p.stderr, "line 8 reported: " + p.stderr)
check("1 prompt(s) could not be explained" in p.stderr, "error line counted: " + p.stderr)
text = open(os.path.join(out, "explanations.jsonl")).read()
got = [json.loads(l) for l in text.splitlines()]
valid = [(i + 1, x) for i, x in enumerate(LINES) if isinstance(x, dict) and "prompt" in x]
check([g["batch"]["line"] for g in got] == [n for n, _ in valid], "lines in input order")
check(json.load(open(os.path.join(out, "batch.json")))["complete"] is True, "batch.json complete")

for (n, x), g in zip(valid, got):
    check(g["batch"]["id"] == x.get("id"), f"line {n}: id")
    cmd = ["explain", args.model, x["prompt"], "--json", "-t", "1"]
    if "target" in x:
        cmd += ["--target", str(x["target"])]
    if "foil" in x:
        cmd += ["--foil", x["foil"]]
    if "position" in x:
        cmd += ["--position", str(x["position"])]
    p = run(*cmd, ok=False)
    if p.returncode != 0:
        check("error" in g and "schema_version" not in g, f"line {n}: an error line")
        check(g.get("error", "") in p.stderr, f"line {n}: the error is explain's: {g.get('error')} / {p.stderr}")
        continue
    want = json.loads(p.stdout, object_pairs_hook=lambda kv: kv)
    have = dict(g)
    have.pop("batch")
    check(json.loads(p.stdout) == have, f"line {n}: the document equals explain --json")
    check(list(have.keys()) == [k for k, _ in want], f"line {n}: the document's key order")

# Deliberate bug check of the comparison itself: a changed score must be noticed.
if got and "layers" in got[0]:
    check(json.dumps(got[0]) != json.dumps({**got[0], "layers": []}), "comparison can fail")

# An existing OUT: refused, replaced with --force.
p = run("explain", args.model, "--batch", batch, "-o", out, ok=False)
check(p.returncode == 2 and "--resume" in p.stderr, "existing OUT refused: " + p.stderr)
check(run("explain", args.model, "--batch", batch, "-o", out, "--force", "-q").returncode == 0, "--force")
check(open(os.path.join(out, "explanations.jsonl")).read() == text, "--force gives the same bytes")

# --strict: the first malformed line is fatal, with its number.
p = run("explain", args.model, "--batch", batch, "-o", os.path.join(args.work, "strict"), "--strict", ok=False)
check(p.returncode == 3 and f"{batch}:4: not a JSON object" in p.stderr, "--strict: " + p.stderr)

# Resume after a kill: two whole lines and half of the third are kept, the rest is computed again.
cut = os.path.join(args.work, "cut")
shutil.copytree(out, cut)
lines = text.splitlines(keepends=True)
with open(os.path.join(cut, "explanations.jsonl"), "w") as f:
    f.write(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2])
p = run("explain", args.model, "--batch", batch, "-o", cut, "--resume", "-t", "1")
check("resuming: 2 prompt(s) already done" in p.stderr, "resume count: " + p.stderr)
check(open(os.path.join(cut, "explanations.jsonl")).read() == text, "resumed = uninterrupted, byte for byte")
# A resume of a complete run does nothing more and changes nothing.
p = run("explain", args.model, "--batch", batch, "-o", cut, "--resume")
check("resuming: 7 prompt(s) already done" in p.stderr and open(os.path.join(cut, "explanations.jsonl")).read() == text,
      "resume of a complete run")
# Another batch file: refused.
other = os.path.join(args.work, "other.jsonl")
with open(other, "w") as f:
    f.write(json.dumps({"prompt": "Once upon a"}) + "\n")
p = run("explain", args.model, "--batch", other, "-o", cut, "--resume", ok=False)
check(p.returncode == 2 and "another batch file" in p.stderr, "mismatched resume refused: " + p.stderr)

# Per-line options from the command line are refused; so is a prompt TEXT.
p = run("explain", args.model, "--batch", batch, "-o", os.path.join(args.work, "x"), "--target", " a", ok=False)
check(p.returncode == 2 and "--target cannot be combined with --batch" in p.stderr, "--target refused: " + p.stderr)
p = run("explain", args.model, "--resume", "Once upon a", ok=False)
check(p.returncode == 2 and "--batch only" in p.stderr, "--resume without --batch refused: " + p.stderr)

# --arrays: each line's .npy files, the same bytes explain --out writes.
arr = os.path.join(args.work, "arrays")
run("explain", args.model, "--batch", batch, "-o", arr, "--arrays", "-q")
single = os.path.join(args.work, "single")
run("explain", args.model, LINES[0]["prompt"], "--target", LINES[0]["target"], "-o", single)
names = sorted(f for f in os.listdir(single) if f.endswith(".npy"))
check(len(names) > 5, "explain --out wrote arrays")
for name in names:
    a = open(os.path.join(arr, "arrays", "1", name), "rb").read()
    b = open(os.path.join(single, name), "rb").read()
    check(a == b, f"arrays/1/{name} equals explain --out's")
check(os.path.isdir(os.path.join(arr, "arrays", "9")), "the multi-token line's arrays")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("explain --batch: all checks passed")
