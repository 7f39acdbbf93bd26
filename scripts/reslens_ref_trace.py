#!/usr/bin/python3
"""Wrapper: `/usr/bin/python3 scripts/reslens_ref_trace.py MODEL --ids 1,2,3 --out DIR [--ggml-gelu]`
is `python3 -m reslens_ref trace ...` runnable from any directory."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reslens_ref.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["trace"] + sys.argv[1:]))
