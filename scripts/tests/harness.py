"""The tiny check-and-report harness the test scripts share (plain asserts would stop at the
first failure; these collect every result, print one line each and a summary)."""

import time

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f"  {detail}" if detail else ""), flush=True)


def finish(t0):
    """Print the summary; return the exit status (1 if anything failed)."""
    failed = [n for n, ok in results if not ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} checks passed in {time.time() - t0:.1f} s")
    for n in failed:
        print(f"  FAILED: {n}")
    return 1 if failed else 0
