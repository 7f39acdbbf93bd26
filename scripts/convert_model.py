#!/usr/bin/python3
"""Convert a model (GGUF, llama2.c .bin, Hugging Face directory) to a GGUF of one type.

    /usr/bin/python3 scripts/convert_model.py SRC --type TYPE --out DST.gguf
        [--tokenizer TOK.bin] [--tokenizer-from OTHER.gguf] [--name NAME]

    TYPE: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs

GGUF sources keep every metadata key (tokenizer arrays included), tensor names and order; only
general.file_type and the tensor types change (file_type is llama_ftype, the _M value for
q3_k/q4_k/q5_k). llama2.c sources get llama.cpp's hyper-parameter keys and the tokenizer found
beside the checkpoint (tok{vocab}.bin or tokenizer.bin) or given by --tokenizer. 1-D tensors and
position embeddings stay F32. Rows that do not fill whole blocks fall back: K types (256 values
per block) to Q8_0 if the row is a multiple of 32, else F16; q4_0..q5_1 and q8_0 (32 per block)
to F16. Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 follow ggml's reference quantizers bit for bit (Q8_0: per
32 values d = max|x|/127 stored fp16, q = round-half-away(x / d)); the K types use a simple
deterministic max/min quantizer (not llama-quantize's iterative search), see ggml_types.py.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reslens_ref import ggml_types  # noqa: E402
from reslens_ref.convert import convert  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="GGUF file, llama2.c checkpoint or Hugging Face directory")
    ap.add_argument("--type", required=True, choices=sorted(ggml_types.NAME_TO_TYPE))
    ap.add_argument("--out", required=True, help="output .gguf")
    ap.add_argument("--tokenizer", help="llama2.c tokenizer file (default: found beside SRC)")
    ap.add_argument("--tokenizer-from", help="copy the tokenizer.* keys of this GGUF")
    ap.add_argument("--name", help="general.name for non-GGUF sources")
    args = ap.parse_args(argv)
    if os.path.abspath(args.src) == os.path.abspath(args.out):
        ap.error("--out must differ from SRC")
    convert(args.src, args.out, ggml_types.NAME_TO_TYPE[args.type], tokenizer=args.tokenizer,
            tokenizer_from=args.tokenizer_from, name=args.name)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, {args.type})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
