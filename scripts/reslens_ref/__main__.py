"""Command line: `/usr/bin/python3 -m reslens_ref {trace,info} ...` (run from scripts/)."""

import argparse
import dataclasses
import json
import sys

import numpy as np


def parse_ids(text):
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ids wants comma-separated integers, got {text!r}")
    if not ids:
        raise argparse.ArgumentTypeError("--ids is empty")
    return ids


def main(argv=None):
    ap = argparse.ArgumentParser(prog="reslens_ref", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("trace", help="run the float64 forward pass and write every hook as .npy")
    t.add_argument("model", help="GGUF file, llama2.c .bin or Hugging Face directory")
    t.add_argument("--ids", required=True, type=parse_ids, help="token ids, e.g. 1,403,407")
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument("--ggml-gelu", action="store_true",
                   help="emulate ggml-cpu's fp16 GELU table (GPT-2) to match llama.cpp to ~1e-5")
    t.add_argument("--float32", action="store_true", help="store float32 instead of float64")
    i = sub.add_parser("info", help="print the model's config as JSON")
    i.add_argument("model")
    args = ap.parse_args(argv)

    if args.cmd == "trace":
        from .trace import trace
        index = trace(args.model, args.ids, args.out, ggml_gelu=args.ggml_gelu,
                      dtype=np.float32 if args.float32 else np.float64)
        print(f"wrote {len(index['hooks'])} hooks for {len(args.ids)} tokens to {args.out}")
    elif args.cmd == "info":
        from .model import load_model
        m = load_model(args.model)
        json.dump({"format": m.format, **dataclasses.asdict(m.config)}, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
