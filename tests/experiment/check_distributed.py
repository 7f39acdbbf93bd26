#!/usr/bin/env python3
"""`mpirun -np N reslens experiment` and `explain --batch` against the plain command (docs/distributed.md).

Checks: -np 1 and -np 3 write the same bytes as the plain command (sentences.jsonl, the summaries,
explanations.jsonl); a worker rank SIGKILLed mid-run ends the job (no hang) and keeps every line rank 0
had written, and `--resume` under -np 2 then finishes with the same bytes as an uninterrupted run;
a rank whose dataset or model is missing, a rank with other settings, and an unwritable OUT each end
the job with one "error:" line naming the rank, within the time limit.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--reslens", required=True)
ap.add_argument("--mpirun", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--work", required=True)
args = ap.parse_args()

MPI = [args.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]
ENV = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
LIMIT = 300  # seconds any one command may take: a hang fails the test instead of stalling CI
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=LIMIT)
    if ok and p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def mpi(n, *a, ok=True):
    return run(MPI + ["-np", str(n), args.reslens, *a], ok)


def read(p):
    with open(p, "rb") as f:
        return f.read()


EXPERIMENT_FILES = ["sentences.jsonl", "summary.json", "summary.csv", "summary.md"]


def same(a, b, files, what):
    for f in files:
        check(read(os.path.join(a, f)) == read(os.path.join(b, f)), f"{what}: {f} differs ({a} vs {b})")


shutil.rmtree(args.work, ignore_errors=True)
os.makedirs(args.work)
W = lambda *p: os.path.join(args.work, *p)

# A dataset of short and long prompts, so sentences take different times and finish out of order.
# Enough of them that a kill after the first results lands well before the end, however fast or
# loaded the machine (with 24, a full CI run once saw the job finish between the check and the kill).
names = ["Lily", "Tim", "Sue", "Ben", "Max", "Amy", "Tom", "Mia", "Sam", "Ann", "Bob", "Kim", "Joe", "Eve", "Dan",
         "Zoe"]
rows = []
for i, n in enumerate(names):
    rows.append({"prompt": f"Once upon a time, there was a little girl named {n}. One day, {n}", "target": " went",
                 "type": "verb"})
    rows.append({"prompt": "Once upon a" + " time," * (i % 3), "target": " time", "type": "word"})
    rows.append({"prompt": f"{n} had a red ball. {n} liked to play with the", "target": " ball", "type": "word"})
with open(W("data.jsonl"), "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
data = W("data.jsonl")

# 1. The same bytes for the plain command, -np 1 and -np 3.
run([args.reslens, "experiment", args.model, data, "-o", W("plain"), "-t", "1", "-q"])
mpi(1, "experiment", args.model, data, "-o", W("np1"), "-t", "1", "-q")
p = mpi(3, "experiment", args.model, data, "-o", W("np3"), "-t", "1")
same(W("plain"), W("np1"), EXPERIMENT_FILES, "-np 1")
same(W("plain"), W("np3"), EXPERIMENT_FILES, "-np 3")
check(p.stderr.count("progress: ") >= 1 and "on 3 rank(s) x 1 thread(s)" in p.stderr, "one progress display: " + p.stderr)
check(p.stderr.count("experiment: ") == 1, "rank 0 alone reports: " + p.stderr)
run_json = json.load(open(W("np3", "run.json")))
check(run_json["sessions"][-1]["ranks"] == 3 and run_json["complete"], "run.json records 3 ranks")

# 2. Batch explain: the same bytes for the plain command and -np 3.
with open(W("prompts.jsonl"), "w") as f:
    for r in rows[:9]:
        f.write(json.dumps({"prompt": r["prompt"], "target": r["target"], "id": r["type"]}) + "\n")
run([args.reslens, "explain", args.model, "--batch", W("prompts.jsonl"), "-o", W("batch-plain"), "-t", "1", "-q"])
mpi(3, "explain", args.model, "--batch", W("prompts.jsonl"), "-o", W("batch-np3"), "-t", "1", "-q")
same(W("batch-plain"), W("batch-np3"), ["explanations.jsonl"], "explain --batch -np 3")
# With --arrays every rank writes its own prompts' .npy files: the same files as one process.
run([args.reslens, "explain", args.model, "--batch", W("prompts.jsonl"), "-o", W("arrays-plain"), "--arrays", "-q"])
mpi(3, "explain", args.model, "--batch", W("prompts.jsonl"), "-o", W("arrays-np3"), "--arrays", "-t", "1", "-q")
plain_files = sorted(os.path.relpath(os.path.join(d, f), W("arrays-plain"))
                     for d, _, fs in os.walk(W("arrays-plain", "arrays")) for f in fs)
check(len(plain_files) > 9 * 5, f"arrays written: {len(plain_files)}")
same(W("arrays-plain"), W("arrays-np3"), plain_files, "explain --batch --arrays -np 3")


# 3. A worker killed mid-run: the job ends, rank 0's lines stay, --resume under -np 2 completes them.
def rank_pids(parent):
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = read(f"/proc/{pid}/environ").split(b"\0")
            stat = read(f"/proc/{pid}/stat").decode()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        for e in env:
            if e.startswith(b"OMPI_COMM_WORLD_RANK=") and ppid == parent:
                found[int(e.split(b"=")[1])] = int(pid)
    return found


def kill_mid_run(out, victim, extra):
    cmd = MPI + ["-np", "3", args.reslens, *extra, "-o", out, "-t", "1", "-q"]
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    results = os.path.join(out, "sentences.jsonl" if extra[0] == "experiment" else "explanations.jsonl")
    # The ranks are found first (scanning /proc takes a while on a loaded machine, and a tiny model's
    # job can finish in that time); once rank 0 has written two lines, every rank is stopped, so what
    # rank 0 wrote is read and the victim killed with no rank moving in between (two CI runs once saw
    # the job finish, and rank 0 rewrite the file in input order, between the check and the kill).
    start = time.time()
    pids = {}
    while time.time() - start < LIMIT and len(pids) < 3 and job.poll() is None:
        pids = rank_pids(job.pid)
        time.sleep(0.01)
    check(victim in pids and len(pids) == 3, f"found rank {victim} among {pids}")
    while time.time() - start < LIMIT:
        if os.path.exists(results) and read(results).count(b"\n") >= 2:
            break
        time.sleep(0.005)
    for pid in pids.values():
        os.kill(pid, signal.SIGSTOP)
    written = read(results)
    os.kill(pids[victim], signal.SIGKILL)
    for rank, pid in pids.items():
        if rank != victim:
            os.kill(pid, signal.SIGCONT)
    try:
        _, err = job.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        job.kill()
        check(False, "the job hung after a rank was killed")
        return written
    check(job.returncode != 0, f"a killed job fails (exit {job.returncode})")
    kept, final = written[: written.rfind(b"\n") + 1], read(results)
    if not final.startswith(kept):
        # The one other right outcome: the job finished anyway, because the victim was killed before it
        # asked for its first task (a worker that holds none is not missed; a CI run saw this), and
        # rank 0 rewrote the file in input order. Every line written before the kill is still there.
        finished = json.load(open(os.path.join(out, "run.json"))).get("complete", False) if extra[0] == "experiment" else False
        lines, n_kept, n_final = set(final.splitlines()), kept.count(b"\n"), final.count(b"\n")
        check(finished and all(l in lines for l in kept.splitlines()),
              f"rank 0's lines are kept ({n_kept} lines before the kill, {n_final} after)")
    return written


written = kill_mid_run(W("killed"), 1, ["experiment", args.model, data])
check(written.count(b"\n") < len(rows), "the kill came before the end")
p = mpi(2, "experiment", args.model, data, "-o", W("killed"), "-t", "1", "--resume")
check("resuming: " in p.stderr, "resumed: " + p.stderr)
same(W("plain"), W("killed"), EXPERIMENT_FILES, "killed at -np 3, resumed at -np 2")
# The same for batch explain, killing rank 2, resumed by the plain command.
kill_mid_run(W("batch-killed"), 2, ["explain", args.model, "--batch", W("prompts.jsonl")])
run([args.reslens, "explain", args.model, "--batch", W("prompts.jsonl"), "-o", W("batch-killed"), "--resume", "-q"])
same(W("batch-plain"), W("batch-killed"), ["explanations.jsonl"], "explain --batch killed and resumed")
# Rank 0 itself killed (the writer): what it wrote stays, and a resume at -np 3 completes it.
written = kill_mid_run(W("killed0"), 0, ["experiment", args.model, data])
check(written.count(b"\n") < len(rows), "rank 0's kill came before the end")
p = mpi(3, "experiment", args.model, data, "-o", W("killed0"), "-t", "1", "--resume")
same(W("plain"), W("killed0"), EXPERIMENT_FILES, "rank 0 killed at -np 3, resumed at -np 3")


# 4. Bad input on one rank: one error line naming the rank, a failing exit code, no hang.
def mpmd(rank0, others):
    cmd = MPI + ["-np", "1", args.reslens, *rank0, ":", "-np", "2", args.reslens, *others]
    return run(cmd, ok=False)


def one_error(p, needle, what):
    errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
    check(p.returncode != 0 and len(errors) == 1 and needle in errors[0], f"{what}: exit {p.returncode}, {p.stderr}")


base = ["experiment", args.model, data, "-t", "1", "-q"]
p = mpmd(base + ["-o", W("e1")], ["experiment", args.model, W("missing.jsonl"), "-t", "1", "-q", "-o", W("e1")])
one_error(p, W("missing.jsonl") + ": no such file", "a dataset missing on ranks 1-2")
check("error: rank 1: " in p.stderr or "error: rank 2: " in p.stderr, "the error names the rank: " + p.stderr)
p = mpmd(base + ["-o", W("e2")], ["experiment", W("no-model.gguf"), data, "-t", "1", "-q", "-o", W("e2")])
one_error(p, "no-model.gguf", "a model missing on ranks 1-2")
check("error: rank 1: " in p.stderr or "error: rank 2: " in p.stderr, "the error names the rank: " + p.stderr)
p = mpmd(base + ["-o", W("e3")], base + ["-o", W("e3"), "--seed", "5"])
one_error(p, "with another model, data or settings than rank 0", "other settings on ranks 1-2")
# Another build on ranks 1-2 (a copy with one byte more): refused before any work.
other_binary = W("reslens-other")
shutil.copy(args.reslens, other_binary)
with open(other_binary, "ab") as f:
    f.write(b"\0")
p = run(MPI + ["-np", "1", args.reslens, *base, "-o", W("e4"), ":", "-np", "2", other_binary, *base, "-o", W("e4")], ok=False)
one_error(p, "runs another reslens binary than rank 0", "another binary on ranks 1-2")
check(not os.path.exists(W("e4")), "nothing written when the ranks disagree")
os.makedirs(W("ro"))
with open(W("ro", "file"), "w") as f:
    f.write("x")
p = mpi(3, *base, "-o", W("ro", "file", "out"), ok=False)
one_error(p, "error: ", "an unwritable OUT on rank 0")

# A full disk on rank 0 mid-run (a 16 KB file size limit; SIGXFSZ ignored, so writes fail with
# EFBIG): rank 0's error line, exit 3, and no hang while the workers are still sending results.
limited = "trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\""
p = run(MPI + ["-np", "1", "bash", "-c", limited, args.reslens, *base, "-o", W("full"), ":",
               "-np", "2", args.reslens, *base, "-o", W("full")], ok=False)
one_error(p, "sentences.jsonl: cannot write (disk full?)", "a full disk on rank 0 mid-run")
check(os.path.getsize(W("full", "sentences.jsonl")) <= 16384, "the limit applied")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("distributed: all checks passed")
