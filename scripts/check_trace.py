#!/usr/bin/python3
"""Runs `reslens trace` and the float64 reference on the same model and token ids, then compares
every hook with compare_trace.py. Used by CTest; exit status 0 only when every hook agrees.

    check_trace.py --reslens BUILD/reslens --model MODEL --ids 1,2,3 --work DIR [--ggml-gelu]
                   [--atol 1e-4] [--rtol-scale 1e-5]
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--work", required=True, help="scratch folder (replaced)")
    ap.add_argument("--ggml-gelu", action="store_true")
    ap.add_argument("--tokenizer", help="tokenizer file for llama2.c checkpoints")
    ap.add_argument("--atol", default="1e-4")
    ap.add_argument("--rtol-scale", default="1e-5")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    ref, ours = os.path.join(a.work, "reference"), os.path.join(a.work, "reslens")
    gelu = ["--ggml-gelu"] if a.ggml_gelu else []
    tok = ["--tokenizer", a.tokenizer] if a.tokenizer else []
    subprocess.run([sys.executable, os.path.join(HERE, "reslens_ref_trace.py"), a.model, "--ids", a.ids, "--out", ref]
                   + gelu, check=True)
    subprocess.run([a.reslens, "trace", a.model, "--ids", a.ids, "--bos", "no", "--out", ours] + gelu + tok, check=True)
    return subprocess.run([sys.executable, os.path.join(HERE, "compare_trace.py"), ref, ours, "--atol", a.atol,
                           "--rtol-scale", a.rtol_scale, "--quiet"]).returncode


if __name__ == "__main__":
    sys.exit(main())
