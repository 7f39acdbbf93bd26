#!/usr/bin/env python3
"""Compare every weight matrix reslens loads from a GGUF file with this reference's own decoding of
the file (reslens_ref.ggml_types), bit for bit: the check that each quantized type is dequantized
exactly as ggml's dequantize_row_* does (the two decoders were written separately from ggml's
definitions). Llama-layout GGUF files.

    PYTHONPATH=build/python /usr/bin/python3 scripts/check_weights.py MODEL.gguf [MODEL.gguf ...]

Exit status 0 when every matrix matches, 1 otherwise (the differing matrices are listed).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reslens_ref import ggml_types  # noqa: E402
from reslens_ref.gguf import GGUFFile  # noqa: E402

# GGUF tensor name -> reslens weight name (per layer for blk.N.*).
GLOBAL = {"token_embd.weight": "W_E", "output.weight": "W_U"}
PER_LAYER = {"attn_q.weight": "W_Q", "attn_k.weight": "W_K", "attn_v.weight": "W_V",
             "attn_output.weight": "W_O", "ffn_gate.weight": "W_gate", "ffn_up.weight": "W_in",
             "ffn_down.weight": "W_out"}


def reslens_name(gguf_name):
    if gguf_name in GLOBAL:
        return GLOBAL[gguf_name], -1
    parts = gguf_name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in PER_LAYER:
        return PER_LAYER[parts[2]], int(parts[1])
    return None, None


def check(path):
    import reslens  # the built module (PYTHONPATH)
    core = reslens.load(path).core
    gf = GGUFFile(path)
    bad, checked, types = [], 0, {}
    for name, info in gf.tensors.items():
        wname, layer = reslens_name(name)
        if wname is None:
            continue
        got = np.asarray(core.weight(wname, layer), dtype=np.float32)
        want = np.asarray(gf.tensor(name), dtype=np.float32)
        checked += 1
        tname = ggml_types.TYPE_NAMES.get(info.type, str(info.type))
        types[tname] = types.get(tname, 0) + 1
        if got.shape != want.shape or not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
            bad.append(f"{name} ({tname})")
    summary = ", ".join(f"{n} {t}" for t, n in sorted(types.items()))
    print(f"{os.path.basename(path)}: {checked} matrices ({summary}): "
          + ("identical" if not bad else "DIFFER: " + ", ".join(bad)))
    return checked > 0 and not bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    ok = all([check(p) for p in args.models])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
