#!/usr/bin/python3
"""Record llama.cpp's logits on the feature models of make_random_models.py (qwen2 NEOX RoPE,
llama3 rope_freqs, linear RoPE scaling, Llama attention biases) as test goldens.

    /usr/bin/python3 scripts/llamacpp/make_family_goldens.py --llama-cpp /tmp/llama.cpp \
        [--out tests/data/llamacpp-families] [--shared ../shared]

--llama-cpp is a llama.cpp checkout with libllama built in build/ (see README.md here); this
script compiles dump_logits.cpp against it, writes the models with make_random_models.py (seed
0, the same files CTest generates), and for each records
  NAME.json        the token ids, llama.cpp's 16-token greedy continuation, the model file's SHA-256
                   (so a test can tell a changed generator from a changed reslens) and the commit
  NAME-logits.npy  float32 [n_tokens, n_vocab]: llama.cpp's logits at every position
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from check_llamacpp_golden import sha256  # noqa: E402  (the check verifies the same digest)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = ["tiny-qwen2.gguf", "tiny-llama3.gguf", "tiny-llama-linear.gguf", "tiny-llama-bias.gguf", "tiny-qwen3.gguf",
          "tiny-phi3.gguf", "tiny-gemma.gguf", "tiny-neox.gguf", "tiny-mixtral.gguf", "tiny-qwen3moe.gguf",
          "tiny-olmo2.gguf", "tiny-gemma3.gguf", "tiny-qwen2moe.gguf"]
MODELS += ["tiny-qwen2-yarn.gguf", "tiny-llama-yarn.gguf", "tiny-phi3-longrope.gguf"]  # YaRN, Phi-3's LongRoPE (issue 14)
MODELS += ["tiny-gemma2.gguf", "tiny-gemma3-swa.gguf"]  # softcaps and sliding windows (issue 14)
# Models whose MLP goes through ggml's GELU, which rounds through an fp16 table on the CPU: the
# check runs reslens with --ggml-gelu for them (as the shared GPT-2 goldens do).
GGML_GELU = {"tiny-gemma.gguf", "tiny-neox.gguf", "tiny-gemma3.gguf", "tiny-gemma2.gguf", "tiny-gemma3-swa.gguf"}
# Tolerance on the logits: 1e-4, except where the fp16 GELU table makes an input that sits on an fp16
# rounding boundary round the other way in one of the two programs (a step of one fp16 ulp of the
# activation; the shared GPT-2 goldens see the same: 4.8e-5 there, 1.7e-4 at 3 of 48 positions for
# gemma, 3.1e-4 at 4 of 48 for gemma3 (all other positions within 2e-5),
# 1.2e-3 without the emulation).
# gemma2: 5.3e-4 at 1 of 48 positions, above 1e-4 at 11 (the post-FFN norms, scales down to 0.38, amplify
# the same fp16 flips; the float64 reference with the emulation: 2.3e-4). Each Gemma 2 feature left out
# moves the logits by 0.2 (attention softcap) to 3.3 (window), so the check still catches one.
ATOL = {"tiny-gemma.gguf": 3e-4, "tiny-gemma3.gguf": 5e-4, "tiny-gemma2.gguf": 1e-3}
N_TOKENS, N_GREEDY = 48, 16


def prompt_ids():
    """48 fixed ids: BOS then a seeded draw from the 512-token vocabulary."""
    rng = np.random.default_rng(2026)
    return [1] + [int(x) for x in rng.integers(3, 500, N_TOKENS - 1)]


def build_dumper(llama, work):
    exe = os.path.join(work, "dump_logits")
    subprocess.run(["g++", "-std=c++17", "-O2", os.path.join(HERE, "dump_logits.cpp"), "-o", exe,
                    "-I", os.path.join(llama, "include"), "-I", os.path.join(llama, "ggml", "include"),
                    "-L", os.path.join(llama, "build", "bin"), "-lllama", "-lggml", "-lggml-base",
                    "-Wl,-rpath," + os.path.join(llama, "build", "bin")], check=True)
    return exe


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", required=True, help="llama.cpp checkout with build/bin/libllama.so")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "llamacpp-families"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="record this model's golden only (repeatable; e.g. tiny-qwen2-yarn.gguf), leaving the others")
    a = ap.parse_args()
    models_to_record = a.only or MODELS
    unknown = set(models_to_record) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}")
    commit = subprocess.run(["git", "-C", a.llama_cpp, "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    os.makedirs(a.out, exist_ok=True)
    ids = prompt_ids()
    with tempfile.TemporaryDirectory() as work:
        exe = build_dumper(a.llama_cpp, work)
        models = os.path.join(work, "models")
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "make_random_models.py"), "--out", models,
               "--shared", a.shared]
        for m in models_to_record:
            cmd += ["--only", m]
        subprocess.run(cmd, check=True)
        for m in models_to_record:
            path = os.path.join(models, m)
            out = subprocess.run([exe, path, ",".join(map(str, ids)), str(N_GREEDY)], capture_output=True,
                                 text=True, check=True).stdout
            d = json.loads(out)
            logits = np.asarray(d["logits"], dtype=np.float32)
            name = m[:-len(".gguf")]
            np.save(os.path.join(a.out, name + "-logits.npy"), logits)
            meta = {"model": m, "model_sha256": sha256(path), "llama_cpp_commit": commit,
                    "settings": "f32 KV cache, no flash attention, 2 threads, one batch of all tokens",
                    "ggml_gelu": m in GGML_GELU, "atol": ATOL.get(m, 1e-4),
                    "token_ids": d["token_ids"], "greedy_ids": d["greedy_ids"],
                    "logits": name + "-logits.npy"}
            with open(os.path.join(a.out, name + ".json"), "w") as f:
                json.dump(meta, f, indent=1)
                f.write("\n")
            print(f"{name}: top-1 at the last position {int(logits[-1].argmax())}, greedy {d['greedy_ids'][:6]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
