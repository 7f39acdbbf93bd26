#!/usr/bin/python3
"""Write seeded random-weight models for tests (tiny) and benchmarks (bench).

    /usr/bin/python3 scripts/make_random_models.py --out DIR [--which tiny|bench|big] [--seed S]
                                                   [--shared PATH] [--only NAME ...]

Weights N(0, 0.02), norm weights 1 + N(0, 0.1), biases N(0, 0.02); every tensor is seeded from
(S, its canonical name), so models of the same shapes share their weights across formats (e.g.
tiny-llama.gguf, tiny-llama.bin and tiny-llama-v1.bin are one model). Writes DIR/manifest.json
describing each model. Tokenizer data is read from the shared folder (../shared). Big tensors are
generated and written one at a time, and encoded in row groups, so even the `big` set (Llama-2-7B
shapes, 13.5 GB per file) is written in about 1 GB of memory. See scripts/README.md for the list
of models.
"""

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from reslens_ref import ggml_types, gguf_model, hf, llama2c  # noqa: E402
from reslens_ref.model import Config  # noqa: E402
from reslens_ref.random_model import random_model  # noqa: E402

DEFAULT_SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))

TINY_LLAMA = Config(arch="llama", n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, d_head=16,
                    d_mlp=96, vocab=512, n_ctx=512, norm_eps=1e-5, rope_base=10000.0, tied=False,
                    name="tiny-llama")
TINY_GPT2 = Config(arch="gpt2", n_layers=2, d_model=64, n_heads=4, n_kv_heads=4, d_head=16,
                   d_mlp=256, vocab=50257, n_ctx=128, norm_eps=1e-5, tied=True, qkv_bias=True,
                   o_bias=True, name="tiny-gpt2")
BENCH_GPT2 = Config(arch="gpt2", n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_head=64,
                    d_mlp=3072, vocab=50257, n_ctx=1024, norm_eps=1e-5, tied=True, qkv_bias=True,
                    o_bias=True, name="bench-gpt2-124M")
BENCH_LLAMA = Config(arch="llama", n_layers=22, d_model=2048, n_heads=32, n_kv_heads=4, d_head=64,
                     d_mlp=5632, vocab=32000, n_ctx=2048, norm_eps=1e-5, rope_base=10000.0,
                     tied=False, name="bench-tinyllama-1.1B")

# Llama-2-7B's shapes (Meta's config.json for Llama-2-7b-hf); the `big` set, for speed and memory.
LLAMA2_7B = Config(arch="llama", n_layers=32, d_model=4096, n_heads=32, n_kv_heads=32, d_head=128,
                   d_mlp=11008, vocab=32000, n_ctx=4096, norm_eps=1e-5, rope_base=10000.0, tied=False,
                   name="llama2-7b-random")

FAN_IN = set()  # models whose weights are N(0, 1/sqrt(fan_in)) (random_model's init="fan_in")
HF_LLAMA_TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
HF_GPT2_TOKENIZER = ("vocab.json", "merges.txt")


def copy_files(src_dir, names, dst_dir):
    for n in names:
        shutil.copyfile(os.path.join(src_dir, n), os.path.join(dst_dir, n))


def plan(which, shared):
    """[(name, kind, config, writer)]; writer(model, path) writes one model."""
    stories = os.path.join(shared, "models", "stories260K")
    tiny_hf_tok = os.path.join(shared, "models", "TinyStories-656K")
    gpt2_hf_tok = os.path.join(shared, "models", "random-gpt2-hf")
    gpt2_gguf = os.path.join(shared, "models", "random-gpt2", "random-gpt2-test.gguf")
    llama_vocab = os.path.join(shared, "tokenizers", "ggml-vocab", "ggml-vocab-llama-spm.gguf")

    def gguf(ftype=ggml_types.F32, tok=None):
        def w(model, path):
            fields = gguf_model.tokenizer_fields(tok) if tok else None
            gguf_model.write(model, path, ftype, tokenizer=fields)
        return w

    def bin_(version):
        def w(model, path):
            llama2c.write(model, path, version)
            # llama2.c (and reslens) look for tok{vocab}.bin beside the checkpoint.
            tok = os.path.join(os.path.dirname(path), "tok512.bin")
            if not os.path.exists(tok):
                shutil.copyfile(os.path.join(stories, "tok512.bin"), tok)
        return w

    def hf_dir(dtype="F32", shards=1, tok_dir=None, tok_files=()):
        def w(model, path):
            hf.write(model, path, dtype=dtype, shards=shards)
            if tok_dir:
                copy_files(tok_dir, tok_files, path)
        return w

    # Models with each feature llama.cpp applies beyond the plain Llama graph, with weights of
    # N(0, 1/sqrt(fan_in)) so that a skipped feature moves the logits far past any tolerance
    # (FAN_IN); compared with llama.cpp's goldens (tests/data/llamacpp-families) and the reference.
    fan = TINY_LLAMA
    stories_gguf = os.path.join(stories, "stories260K.gguf")
    llama3 = {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 64}
    neox = dataclasses.replace(fan, arch="gptneox", n_kv_heads=fan.n_heads, rot_dim=4, parallel_residual=True,
                               qkv_bias=True, o_bias=True, name="tiny-neox")
    mixtral = dataclasses.replace(fan, d_mlp=4 * 32, n_experts=4, n_experts_used=2, name="tiny-mixtral")
    qwen3moe = dataclasses.replace(fan, arch="qwen3moe", d_mlp=4 * 24, n_experts=4, n_experts_used=2,
                                   name="tiny-qwen3moe")
    # Layer 0 local (base 1000), layer 1 global (base 10000 with linear scaling x2); the window (64) is
    # longer than any test sequence.
    gemma3 = dataclasses.replace(fan, arch="gemma3", tied=True, sliding_period=2, sliding_window=64,
                                 rope_base_local=1000.0, rope_scaling={"type": "linear", "factor": 2.0},
                                 name="tiny-g3")
    # Gemma 2: softcaps small enough to bite on these weights (attention 5, logits 3) and a window of
    # 8 on the even layers, much shorter than the goldens' 48 tokens.
    gemma2 = dataclasses.replace(fan, arch="gemma2", tied=True, sliding_period=2, sliding_window=8,
                                 rope_base_local=fan.rope_base, attn_softcap=5.0, final_softcap=3.0, name="tiny-g2")
    qwen2moe = dataclasses.replace(fan, arch="qwen2moe", d_mlp=4 * 16 + 40, n_experts=4, n_experts_used=2,
                                   d_shared=40, norm_topk=False, qkv_bias=True, name="tiny-qwen2moe")
    families = [
        ("tiny-qwen2.gguf", "gguf f32 qwen2 (NEOX RoPE, q/k/v biases)",
         dataclasses.replace(fan, arch="qwen2", qkv_bias=True, name="tiny-qwen2"), gguf(tok=stories_gguf)),
        ("tiny-llama3.gguf", "gguf f32 llama, rope_freqs.weight (llama3 scaling)",
         dataclasses.replace(fan, rope_scaling=llama3, name="tiny-llama3"), gguf(tok=stories_gguf)),
        ("tiny-llama-linear.gguf", "gguf f32 llama, linear RoPE scaling x4",
         dataclasses.replace(fan, rope_scaling={"type": "linear", "factor": 4.0}, name="tiny-llama-linear"),
         gguf(tok=stories_gguf)),
        ("tiny-llama-bias.gguf", "gguf f32 llama, q/k/v/o biases",
         dataclasses.replace(fan, qkv_bias=True, o_bias=True, name="tiny-llama-bias"), gguf(tok=stories_gguf)),
        ("tiny-qwen3.gguf", "gguf f32 qwen3 (per-head q/k RMSNorm, NEOX RoPE)",
         dataclasses.replace(fan, arch="qwen3", name="tiny-qwen3"), gguf(tok=stories_gguf)),
        ("tiny-phi3.gguf", "gguf f32 phi3 (fused qkv and gate/up, NEOX RoPE on 8 of 16 dims)",
         # (named so that llama.cpp does not look up Phi-3's special tokens, which a name containing
         # "phi3" makes it do; the stories vocabulary has none)
         dataclasses.replace(fan, arch="phi3", rot_dim=8, name="tiny-phi-three"), gguf(tok=stories_gguf)),
        ("tiny-gemma.gguf", "gguf f32 gemma (GeGLU, embeddings x sqrt(d_model), tied, NEOX RoPE)",
         dataclasses.replace(fan, arch="gemma", tied=True, name="tiny-g"), gguf(tok=stories_gguf)),
        ("tiny-gemma-hf", "hf F32 GemmaForCausalLM (norm weights stored as w - 1)",
         dataclasses.replace(fan, arch="gemma", tied=True, vocab=2048, name="tiny-gemma-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-neox.gguf", "gguf f32 gptneox (parallel residual, NEOX RoPE on 4 of 16 dims, tanh GELU)",
         neox, gguf(tok=stories_gguf)),
        ("tiny-neox-hf", "hf F32 GPTNeoXForCausalLM (parallel residual, rotary_pct 0.25, exact GELU)",
         dataclasses.replace(neox, vocab=2048, act="gelu", name="tiny-neox-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-neox-seq-hf", "hf F32 GPTNeoXForCausalLM, use_parallel_residual false",
         dataclasses.replace(neox, vocab=2048, act="gelu", parallel_residual=False, name="tiny-neox-seq-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-mixtral.gguf", "gguf f32 llama with 4 experts, 2 used (Mixtral)", mixtral, gguf(tok=stories_gguf)),
        ("tiny-qwen3moe.gguf", "gguf f32 qwen3moe: 4 experts of 24 neurons, 2 used", qwen3moe,
         gguf(tok=stories_gguf)),
        ("tiny-mixtral-hf", "hf F32 MixtralForCausalLM",
         dataclasses.replace(mixtral, vocab=2048, name="tiny-mixtral-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-qwen3moe-hf", "hf F32 Qwen3MoeForCausalLM, norm_topk_prob false",
         dataclasses.replace(qwen3moe, vocab=2048, norm_topk=False, name="tiny-qwen3moe-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-olmo2.gguf", "gguf f32 olmo2 (post-norms, whole-projection q/k norms, no pre-norms)",
         dataclasses.replace(fan, arch="olmo2", n_kv_heads=fan.n_heads, name="tiny-olmo2"), gguf(tok=stories_gguf)),
        ("tiny-olmo2-hf", "hf F32 Olmo2ForCausalLM",
         dataclasses.replace(fan, arch="olmo2", vocab=2048, name="tiny-olmo2-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-gemma3.gguf", "gguf f32 gemma3 (pre and post norms, q/k norms, local layers with their own RoPE base)",
         gemma3, gguf(tok=stories_gguf)),
        ("tiny-gemma3-hf", "hf F32 Gemma3ForCausalLM (text)", dataclasses.replace(gemma3, vocab=2048, name="tiny-gemma3-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-gemma2.gguf", "gguf f32 gemma2 (pre and post norms, softcaps 5 and 3, window 8 on even layers)",
         gemma2, gguf(tok=stories_gguf)),
        ("tiny-gemma2-hf", "hf F32 Gemma2ForCausalLM, query_pre_attn_scalar 24",
         dataclasses.replace(gemma2, vocab=2048, attn_scalar=24.0, name="tiny-gemma2-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        # Gemma 3 with a window (8) shorter than the test sequences: its local layer masks keys.
        ("tiny-gemma3-swa.gguf", "gguf f32 gemma3, window 8 on the local layer",
         dataclasses.replace(gemma3, sliding_window=8, name="tiny-g3-swa"), gguf(tok=stories_gguf)),
        ("tiny-gemma3-swa-hf", "hf F32 Gemma3ForCausalLM, window 8 on the local layer",
         dataclasses.replace(gemma3, sliding_window=8, vocab=2048, name="tiny-gemma3-swa-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-qwen2moe.gguf", "gguf f32 qwen2moe: 4 experts of 16, 2 used, a shared expert of 40", qwen2moe,
         gguf(tok=stories_gguf)),
        ("tiny-qwen2moe-hf", "hf F32 Qwen2MoeForCausalLM", dataclasses.replace(qwen2moe, vocab=2048, name="tiny-qwen2moe-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-qwen3-hf", "hf F32 Qwen3ForCausalLM",
         dataclasses.replace(fan, arch="qwen3", vocab=2048, name="tiny-qwen3-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-phi3-hf", "hf F32 Phi3ForCausalLM, partial_rotary_factor 0.5",
         dataclasses.replace(fan, arch="phi3", rot_dim=8, vocab=2048, name="tiny-phi3-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-llama3-hf", "hf F32, rope_scaling llama3, attention_bias",
         dataclasses.replace(fan, vocab=2048, rope_scaling=llama3, qkv_bias=True, o_bias=True,
                             name="tiny-llama3-hf"), hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-llama-linear-hf", "hf F32, rope_scaling linear x4",
         dataclasses.replace(fan, vocab=2048, rope_scaling={"type": "linear", "factor": 4.0},
                             name="tiny-llama-linear-hf"), hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
    ]
    # Long-context RoPE scaling (issue 14): YaRN x4 measured in an original context of 64 (pair 0
    # keeps its frequency, pairs 1-2 blend, the rest are divided by 4; cos/sin x 1.139), and Phi-3's
    # LongRoPE with non-uniform factors and an original context of 32 < n_ctx 512, so the long set and
    # the attention factor sqrt(1 + ln 16 / ln 32) apply (llama.cpp's goldens run with a 72-token context,
    # also past 32).
    yarn = dataclasses.replace(fan, arch="qwen2", qkv_bias=True, name="tiny-qwen2-yarn",
                               rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64})
    longrope = dataclasses.replace(fan, arch="phi3", rot_dim=8, name="tiny-phi-three-longrope",
                                   rope_scaling={"type": "longrope", "original_max_position_embeddings": 32,
                                                 "long_factor": [1.0, 1.5, 3.0, 7.0],
                                                 "short_factor": [1.0, 1.1, 1.3, 2.0]})
    families += [
        ("tiny-qwen2-yarn.gguf", "gguf f32 qwen2, yarn RoPE scaling x4 from an original context of 64",
         yarn, gguf(tok=stories_gguf)),
        ("tiny-qwen2-yarn-hf", "hf F32 Qwen2ForCausalLM, rope_scaling yarn x4",
         dataclasses.replace(yarn, vocab=2048, name="tiny-qwen2-yarn-hf"), hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
        ("tiny-llama-yarn.gguf", "gguf f32 llama (interleaved pairs), yarn RoPE scaling x4 from an original context of 64",
         dataclasses.replace(yarn, arch="llama", qkv_bias=False, name="tiny-llama-yarn"), gguf(tok=stories_gguf)),
        ("tiny-phi3-longrope.gguf", "gguf f32 phi3, LongRoPE factors (long set) and attention factor",
         longrope, gguf(tok=stories_gguf)),
        ("tiny-phi3-longrope-hf", "hf F32 Phi3ForCausalLM, rope_scaling longrope",
         dataclasses.replace(longrope, vocab=2048, name="tiny-phi3-longrope-hf"),
         hf_dir("F32", 1, tiny_hf_tok, HF_LLAMA_TOKENIZER)),
    ]
    FAN_IN.update(name for name, *_ in families)

    if which == "tiny":
        llama, hf_llama = TINY_LLAMA, dataclasses.replace(TINY_LLAMA, vocab=2048)
        tied = dataclasses.replace(TINY_LLAMA, tied=True, name="tiny-llama-tied")
        qwen2 = dataclasses.replace(hf_llama, arch="qwen2", qkv_bias=True, tied=True, name="tiny-qwen2")
        # Rows that are whole k-quant super-blocks (256 values), so convert_model.py's q4_k ... keep
        # every matrix in the type asked for (the other tiny models' 64-wide rows fall back).
        wide = dataclasses.replace(TINY_LLAMA, d_model=256, d_head=64, d_mlp=512, name="tiny-llama-256")
        tok = (tiny_hf_tok, HF_LLAMA_TOKENIZER)
        return [
            ("tiny-llama.gguf", "gguf f32", llama, gguf(tok=stories_gguf)),
            ("tiny-llama-tied.gguf", "gguf f32", tied, gguf(tok=stories_gguf)),
            ("tiny-llama-256.gguf", "gguf f32, 256-wide rows", wide, gguf(tok=stories_gguf)),
            ("tiny-llama.bin", "llama2.c legacy", llama, bin_(0)),
            ("tiny-llama-v1.bin", "llama2.c version 1", llama, bin_(1)),
            ("tiny-llama-hf", "hf F32", hf_llama, hf_dir("F32", 1, *tok)),
            ("tiny-llama-hf-sharded", "hf F32, 2 shards", hf_llama, hf_dir("F32", 2, *tok)),
            ("tiny-llama-hf-f16", "hf F16", hf_llama, hf_dir("F16", 1, *tok)),
            ("tiny-llama-hf-bf16", "hf BF16", hf_llama, hf_dir("BF16", 1, *tok)),
            ("tiny-gpt2-hf", "hf F32", TINY_GPT2, hf_dir("F32", 1, gpt2_hf_tok, HF_GPT2_TOKENIZER)),
            ("tiny-gpt2.gguf", "gguf f32", TINY_GPT2, gguf(tok=gpt2_gguf)),
            ("tiny-qwen2-hf", "hf F32", qwen2, hf_dir("F32", 1, *tok)),
        ] + families
    if which == "bench":
        return [
            ("bench-gpt2-124M.gguf", "gguf f32", BENCH_GPT2, gguf(tok=gpt2_gguf)),
            ("bench-gpt2-124M-hf", "hf F32", BENCH_GPT2,
             hf_dir("F32", 1, gpt2_hf_tok, HF_GPT2_TOKENIZER)),
            ("bench-tinyllama-1.1B-f32.gguf", "gguf f32", BENCH_LLAMA, gguf(tok=llama_vocab)),
            ("bench-tinyllama-1.1B-f16.gguf", "gguf f16", BENCH_LLAMA,
             gguf(ggml_types.F16, tok=llama_vocab)),
            ("bench-tinyllama-1.1B-hf", "hf F32, 2 shards, Llama 2 tokenizer.model", BENCH_LLAMA,
             hf_dir("F32", 2, os.path.join(shared, "tokenizers", "llama2"), ("tokenizer.model",))),
        ]
    if which == "big":
        # One tensor at a time (the largest, the 500 MB float32 embedding, is the generator's peak;
        # the writers encode it in row groups): ~1 GB peak RSS for a 13.5 GB file. Quantize the
        # F16 files with llama.cpp's llama-quantize for Q4_K_M / Q8_0 (see scripts/README.md).
        llama2_tok = os.path.join(shared, "tokenizers", "llama2")

        def llama2_hf(model, path):
            hf.write(model, path, dtype="BF16", shards=3)  # ~4.5 GB shards and the index
            copy_files(llama2_tok, ("tokenizer.model",), path)
            write_llama2_tokenizer_config(path)
        return [
            ("llama2-7b-f16.gguf", "gguf f16, Llama-2-7B shapes, Llama 2 vocabulary", LLAMA2_7B,
             gguf(ggml_types.F16, tok=llama_vocab)),
            ("llama2-7b-bf16-hf", "hf BF16, 3 shards, Llama 2 tokenizer.model", LLAMA2_7B, llama2_hf),
            ("tinyllama-1.1b-f16.gguf", "gguf f16 (the weights of bench-tinyllama-1.1B-f16.gguf)",
             BENCH_LLAMA, gguf(ggml_types.F16, tok=llama_vocab)),
        ]
    raise ValueError(f"unknown set {which!r}")


def write_llama2_tokenizer_config(path):
    """tokenizer_config.json, special_tokens_map.json and generation_config.json as in Meta's
    Llama-2-7b-hf (tokenizer.model is the tokenizer; these carry BOS/EOS and the limits)."""
    def tok(s):
        return {"__type": "AddedToken", "content": s, "lstrip": False, "normalized": False,
                "rstrip": False, "single_word": False}
    files = {
        "tokenizer_config.json": {
            "add_bos_token": True, "add_eos_token": False, "bos_token": tok("<s>"),
            "clean_up_tokenization_spaces": False, "eos_token": tok("</s>"), "legacy": False,
            "model_max_length": 1000000000000000019884624838656, "pad_token": None,
            "padding_side": "right", "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer",
            "unk_token": tok("<unk>")},
        "special_tokens_map.json": {
            "bos_token": {k: v for k, v in tok("<s>").items() if k != "__type"},
            "eos_token": {k: v for k, v in tok("</s>").items() if k != "__type"},
            "unk_token": {k: v for k, v in tok("<unk>").items() if k != "__type"}},
        "generation_config.json": {"bos_token_id": 1, "do_sample": True, "eos_token_id": 2, "pad_token_id": 0,
                                   "temperature": 0.6, "max_length": 4096, "top_p": 0.9,
                                   "transformers_version": "4.31.0.dev0"},
    }
    for name, content in files.items():
        with open(os.path.join(path, name), "w") as f:
            json.dump(content, f, indent=2)
            f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--which", choices=("tiny", "bench", "big"), default="tiny",
                    help="tiny: the test set; bench: GPT-2 124M and TinyLlama shapes; big: Llama-2-7B "
                         "shapes as F16 GGUF and BF16 HF (13.5 GB each) and a TinyLlama F16 GGUF")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", default=DEFAULT_SHARED, help="the shared data folder")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="write only this model (repeatable)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    manifest_path = os.path.join(args.out, "manifest.json")
    manifest = {"which": args.which, "seed": args.seed, "models": {}}
    if os.path.exists(manifest_path):  # keep entries of earlier --only runs
        with open(manifest_path) as f:
            old = json.load(f)
        if old.get("seed") == args.seed and old.get("which") == args.which:
            manifest = old
    todo = plan(args.which, args.shared)
    unknown = set(args.only) - {name for name, *_ in todo}
    if unknown:
        ap.error(f"unknown model(s) {sorted(unknown)}")
    for name, kind, cfg, writer in todo:
        if args.only and name not in args.only:
            continue
        path = os.path.join(args.out, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        t0 = time.time()
        init = "fan_in" if name in FAN_IN else "small"
        writer(random_model(cfg, args.seed, init), path)
        print(f"wrote {path} ({kind}) in {time.time() - t0:.1f} s", flush=True)
        manifest["models"][name] = {"kind": kind, "init": init, "config": dataclasses.asdict(cfg)}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
