"""Command line: `/usr/bin/python3 -m reslens_ref {trace,info,explain,explain-target} ...` (run from scripts/)."""

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


def add_explain_parser(sub):
    e = sub.add_parser("explain", help="every attribution score of spec.md for one prompt, as JSON")
    e.add_argument("model", help="GGUF file, llama2.c .bin or Hugging Face directory")
    e.add_argument("--ids", required=True, type=parse_ids, help="token ids, e.g. 1,403,407")
    e.add_argument("--out", required=True, help="output JSON file")
    e.add_argument("--target", type=int, help="target token id (default: argmax of the real logits at P)")
    e.add_argument("--foil", type=int, help="contrast token id: also score log p(target) - log p(foil)")
    e.add_argument("--position", type=int, help="explained position P (default: the last); uses ids[:P+1]")
    e.add_argument("--top", type=int, default=30, help="N of the top lists and of Q1-Q4 (default 30)")
    e.add_argument("--include-final-bias", action="store_true",
                   help="GPT-2: add W_U ln_f.bias to every state's logits (spec A1)")
    e.add_argument("--compat", choices=["notebook"],
                   help="the notebooks' choices: Llama Q1 down_proj key (A3), Q4 stale multiplier (A5)")
    e.add_argument("--q1-key", help="Q1 variant reported as `key` (up, gate, notebook, exact; GPT-2 c_fc, exact)")
    e.add_argument("--head", help="head L_H of the cell-7 view and the hidden view (default: top head)")
    e.add_argument("--q4-neuron", help="attention neuron L_H_N_P for Q4 (default: top attention neuron)")
    e.add_argument("--hidden-neuron", help="FFN neuron L_K for the hidden view (default: top of Q3)")
    e.add_argument("--q5-k", type=int, default=300, help="size of the Q5 value/query sets (default 300)")
    e.add_argument("--k", type=int, default=10, help="units per intervention (default 10)")
    e.add_argument("--seed", type=int, default=0, help="seed of the random intervention baselines")
    e.add_argument("--activation-level", action="store_true",
                   help="interventions remove contributions at P only (default: zero parameters)")
    e.add_argument("--zero", action="append", default=[], metavar="KIND:UNITS",
                   help="extra intervention, e.g. ffn:1_101,2_122 attn:2_6_6_3 head:2_5 (repeatable)")
    e.add_argument("--no-crosscheck", action="store_true", help="skip the direct-form cross-check")
    e.add_argument("--ggml-gelu", action="store_true", help="emulate ggml-cpu's fp16 GELU table (GPT-2)")


def add_explain_target_parser(sub):
    e = sub.add_parser("explain-target", help="a target of several tokens by teacher forcing: every step and the sums")
    e.add_argument("model", help="GGUF file, llama2.c .bin or Hugging Face directory")
    e.add_argument("--ids", required=True, type=parse_ids, help="the prompt's token ids")
    e.add_argument("--target", required=True, type=parse_ids, help="the target's token ids, e.g. 262,3576")
    e.add_argument("--foil", type=parse_ids, help="a foil sequence's token ids: the contrast of the sequences")
    e.add_argument("--out", required=True, help="output JSON file")
    e.add_argument("--top", type=int, default=30, help="N of Q1-Q3 (default 30)")
    e.add_argument("--q5-k", type=int, default=300, help="size of the Q5 sets (default 300)")
    e.add_argument("--include-final-bias", action="store_true", help="GPT-2: W_U ln_f.bias in every state (A1)")
    e.add_argument("--compat", choices=["notebook"], help="the notebooks' choices (A3, A5)")
    e.add_argument("--ggml-gelu", action="store_true", help="emulate ggml-cpu's fp16 GELU table (GPT-2)")


def run_explain_target(args):
    from .model import load_model
    from .target import explain_target
    result = explain_target(load_model(args.model), args.ids, args.target, args.foil, top=args.top,
                            include_final_bias=args.include_final_bias, compat=args.compat, q5_k=args.q5_k,
                            ggml_gelu=args.ggml_gelu, model_path=args.model)
    with open(args.out, "w") as f:
        json.dump(result, f, allow_nan=False)
    print(f"{len(result['steps'])} target steps at positions {result['position']}..: wrote {args.out}")
    return 0


def run_explain(args):
    from .explain import explain
    from .intervention import parse_spec
    from .model import load_model
    zero = [u for spec in args.zero for u in parse_spec(spec)]
    result = explain(load_model(args.model), args.ids, target=args.target, foil=args.foil,
                     position=args.position, top=args.top, include_final_bias=args.include_final_bias,
                     compat=args.compat, q1_key=args.q1_key, head=args.head, q4_neuron=args.q4_neuron,
                     hidden_neuron=args.hidden_neuron, q5_k=args.q5_k, k=args.k, seed=args.seed,
                     level="activation" if args.activation_level else "parameter", zero=zero,
                     crosscheck=not args.no_crosscheck, ggml_gelu=args.ggml_gelu, model_path=args.model)
    with open(args.out, "w") as f:
        json.dump(result, f, allow_nan=False)
    print(f"target {result['target']['id']} at position {result['position']}: wrote {args.out}")
    return 0


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
    add_explain_parser(sub)
    add_explain_target_parser(sub)
    args = ap.parse_args(argv)

    if args.cmd == "trace":
        from .trace import trace
        index = trace(args.model, args.ids, args.out, ggml_gelu=args.ggml_gelu,
                      dtype=np.float32 if args.float32 else np.float64)
        print(f"wrote {len(index['hooks'])} hooks for {len(args.ids)} tokens to {args.out}")
    elif args.cmd == "explain":
        try:
            return run_explain(args)
        except ValueError as e:  # bad ids, units, positions or options: a message, not a traceback
            print(f"reslens_ref explain: error: {e}", file=sys.stderr)
            return 2
    elif args.cmd == "explain-target":
        try:
            return run_explain_target(args)
        except ValueError as e:
            print(f"reslens_ref explain-target: error: {e}", file=sys.stderr)
            return 2
    elif args.cmd == "info":
        from .model import load_model
        m = load_model(args.model)
        json.dump({"format": m.format, **dataclasses.asdict(m.config)}, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
