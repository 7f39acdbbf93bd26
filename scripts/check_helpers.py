"""What the end-to-end check scripts of `reslens diff`, `diff --batch` and `graph` share
(check_diff.py, check_diff_batch.py, check_graph.py): the list of checks with its ok/FAIL lines,
running the CLI, loading a folder of .npy arrays, the F16/Q8_0 pair of a model, and the JSON
document a report page embeds."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


class Checks:
    """Prints "ok    WHAT" or "FAIL  WHAT" per check and remembers the failures."""

    def __init__(self):
        self.failures = []

    def __call__(self, ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            self.failures.append(what)

    def finish(self, passed, failed_stream=sys.stdout):
        """The exit code: 0 (printing `passed`) when every check held, else 1."""
        if self.failures:
            print(f"{len(self.failures)} check(s) failed", file=failed_stream)
            return 1
        print(passed)
        return 0


def fresh_dir(path):
    """An empty folder at `path` (its earlier contents removed); the absolute path."""
    path = os.path.abspath(path)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def stdout_of(cmd, **kw):
    """The stdout of a command that must succeed (CalledProcessError otherwise)."""
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def run_cli(*args, ok=True, env=None):
    """Runs a command with stdout and stderr captured; with ok=True a failure ends the script with its output."""
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if ok and p.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def npys(folder):
    """{name: array} of every NAME.npy in a folder."""
    return {f[:-4]: np.load(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".npy")}


def f16_q8_pair(model, work):
    """WORK/model-f16.gguf and WORK/model-q8_0.gguf, converted from an F32 GGUF by convert_model.py."""
    paths = []
    for t in ("f16", "q8_0"):
        out = os.path.join(work, f"model-{t}.gguf")
        subprocess.run([sys.executable, os.path.join(HERE, "convert_model.py"), model, "--type", t, "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
        paths.append(out)
    return tuple(paths)


def embedded_json(page_text, script_id):
    """The document in <script type="application/json" id=SCRIPT_ID> of a page, or None."""
    start = page_text.find(f'<script type="application/json" id="{script_id}">')
    if start < 0:
        return None
    return json.loads(page_text[page_text.index(">", start) + 1:page_text.index("</script>", start)])
