#!/usr/bin/python3
"""Compare two trace folders (index.json + one .npy per hook) hook by hook.

    /usr/bin/python3 scripts/compare_trace.py A_DIR B_DIR [--atol 1e-4] [--rtol-scale 1e-5]
                                              [--only GLOB ...] [--quiet]

A is the reference (e.g. the float64 reslens_ref trace), B the candidate (e.g. `reslens trace`).
A hook passes when max |A - B| <= atol + rtol_scale * scale, where scale = max |A| over A's finite
entries: the relative part follows each tensor's magnitude (residual streams grow to hundreds,
attention patterns stay below 1). Infinities (the masked attention scores) must sit at the same
places with the same sign in both; NaN always fails.

Prints a table (hook, max abs diff, scale, tolerance, ok) and exits 1 if any hook fails, is
missing from either side, or has a different shape, or if the two traces saw different tokens.
"""

import argparse
import fnmatch
import json
import os
import sys

import numpy as np


def load_index(d):
    with open(os.path.join(d, "index.json")) as f:
        index = json.load(f)
    return index, {h["name"]: h for h in index["hooks"]}


def compare(a, b):
    """(max abs diff, scale) over two arrays of equal shape; inf diff when non-finite entries
    disagree."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    fa, fb = np.isfinite(a), np.isfinite(b)
    finite_a = a[fa]
    scale = float(np.max(np.abs(finite_a))) if finite_a.size else 0.0
    if np.isnan(a).any() or np.isnan(b).any() or not np.array_equal(fa, fb) \
            or not np.array_equal(a[~fa], b[~fb]):
        return float("inf"), scale
    both = fa & fb
    diff = float(np.max(np.abs(a[both] - b[both]))) if both.any() else 0.0
    return diff, scale


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a_dir", help="reference trace folder")
    ap.add_argument("b_dir", help="candidate trace folder")
    ap.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    ap.add_argument("--rtol-scale", type=float, default=1e-5,
                    help="tolerance per unit of the hook's max |value| (default 1e-5)")
    ap.add_argument("--only", action="append", default=[], metavar="GLOB",
                    help="compare only hooks matching this fnmatch pattern (repeatable)")
    ap.add_argument("--quiet", action="store_true", help="print only failing rows and the summary")
    args = ap.parse_args(argv)

    ia, ha = load_index(args.a_dir)
    ib, hb = load_index(args.b_dir)
    failures = []
    if [int(t) for t in ia.get("tokens", [])] != [int(t) for t in ib.get("tokens", [])]:
        failures.append("tokens")
        print(f"tokens differ: {ia.get('tokens')} vs {ib.get('tokens')}")

    def selected(name):
        return not args.only or any(fnmatch.fnmatchcase(name, p) for p in args.only)

    names = [n for n in ha if selected(n)] + [n for n in hb if selected(n) and n not in ha]
    rows = []
    for name in names:
        if name not in ha or name not in hb:
            rows.append((name, "missing in " + ("A" if name not in ha else "B"), "", "", False))
            continue
        a = np.load(os.path.join(args.a_dir, ha[name]["file"]), mmap_mode="r")
        b = np.load(os.path.join(args.b_dir, hb[name]["file"]), mmap_mode="r")
        if a.shape != b.shape:
            rows.append((name, f"shape {a.shape} vs {b.shape}", "", "", False))
            continue
        diff, scale = compare(a, b)
        tol = args.atol + args.rtol_scale * scale
        rows.append((name, f"{diff:.3e}", f"{scale:.3e}", f"{tol:.3e}", diff <= tol))

    width = max([len(r[0]) for r in rows] + [4])
    print(f"{'hook':<{width}}  {'max abs diff':>12}  {'scale':>10}  {'tol':>10}  ok")
    for name, diff, scale, tol, ok in rows:
        if not ok:
            failures.append(name)
        if ok and args.quiet:
            continue
        print(f"{name:<{width}}  {diff:>12}  {scale:>10}  {tol:>10}  {'ok' if ok else 'FAIL'}")
    print(f"{len(rows) - sum(1 for r in rows if not r[4])}/{len(rows)} hooks within tolerance"
          f" (atol {args.atol:g}, rtol-scale {args.rtol_scale:g})")
    if failures:
        print("FAILED: " + ", ".join(failures[:20]) + (" ..." if len(failures) > 20 else ""))
        return 1
    if not rows:
        print("FAILED: no hooks compared")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
