#!/usr/bin/python3
"""Round-trip tests of the model writers, the converter and the type codecs.

    /usr/bin/python3 scripts/tests/test_writers.py [--shared PATH] [--bench DIR] [--keep DIR]

Writes the tiny random models into a temporary folder (or --keep DIR), reads each back with the
reslens_ref readers and checks config, every tensor and the float64 logits against the in-memory
random model; converts models to F16/BF16/Q8_0 and bounds the logit changes. --bench DIR also
checks bench models already written there by make_random_models.py --which bench (slow: minutes).
Plain asserts; exits 1 on any failure. ~20 s without --bench.
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)

import make_random_models  # noqa: E402
from harness import check, finish  # noqa: E402
from reslens_ref import forward, ggml_types, load_model, safetensors  # noqa: E402
from reslens_ref.convert import convert  # noqa: E402
from reslens_ref.gguf import GGUFFile  # noqa: E402
from reslens_ref import gguf_model  # noqa: E402
from reslens_ref.model import rope_attention_factor  # noqa: E402
from reslens_ref.random_model import random_model  # noqa: E402
from reslens_ref.safetensors import SafetensorsFile  # noqa: E402

DEFAULT_SHARED = os.path.normpath(os.path.join(SCRIPTS, "..", "..", "shared"))
SEED = 7
IDS_LLAMA = [1, 403, 407, 261, 378, 300, 20, 40, 7, 511]
IDS_GPT2 = [464, 3139, 286, 4881, 318, 50256, 0, 11]

# Max |logits - F32 logits| / max |F32 logits| allowed after conversion: about 2-4x what was
# observed on these models (README lists the observed values). Random tiny models have small
# logits, so the bound is relative.
CONVERT_RTOL = {"f16": 2e-3, "bf16": 2e-2, "q8_0": 4e-2}

# Same weights in F32 should give the same logits; GGUF stores eps as float32 (1e-5 becomes
# 9.99999975e-6), which moves logits by ~1e-10 relative to the float64 value used elsewhere.
F32_RTOL = 1e-9


def same_config(a, b):
    """Configs equal up to the name, to eps rounded to float32 (GGUF stores it so), and to how RoPE
    scaling is spelled: GGUF stores llama3 scaling as its float32 frequency factors."""
    def canonical(c):
        rs = c.rope_scaling
        factors = gguf_model.rope_freq_factors(c) if rs and rs["type"] == "llama3" else None
        if factors is not None:
            rs = {"type": "freq_factors", "factors": [float(x) for x in factors]}
        if rs and rs["type"] == "longrope":  # GGUF: float32 factor tensors and attention factor
            rs = dict(rs, attention_factor=float(np.float32(rope_attention_factor(c))),
                      long_factor=[float(np.float32(x)) for x in rs["long_factor"]],
                      short_factor=[float(np.float32(x)) for x in rs["short_factor"]])
        return dataclasses.replace(c, name="", norm_eps=float(np.float32(c.norm_eps)), rope_scaling=rs)
    return canonical(a) == canonical(b)


def rounded(x, dtype):
    """What storing float32 x as dtype gives back."""
    if dtype == "F16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "BF16":
        return ggml_types.bf16_bits_to_f32(ggml_types.f32_to_bf16_bits(x))
    return x


def ids_for(cfg):
    ids = IDS_GPT2 if cfg.is_gpt2 else IDS_LLAMA
    return [i % cfg.vocab for i in ids]


def check_codecs():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(4096).astype(np.float32) * 3,
                        np.array([0, -0.0, 1e-30, 65504, 7e4, -1e-8, np.inf, -np.inf], np.float32)])
    try:
        import torch
        tb = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        th = torch.from_numpy(x.copy()).to(torch.float16).view(torch.int16).numpy().view(np.uint16)
        check("BF16 rounding equals torch's", np.array_equal(ggml_types.f32_to_bf16_bits(x), tb))
        with np.errstate(over="ignore"):  # 7e4 overflows to inf on both sides
            h = x.astype(np.float16).view(np.uint16)
        check("F16 rounding equals torch's", np.array_equal(h, th))
    except ImportError:
        print("(torch not available: BF16/F16 cross-check skipped)")
    # Q8_0 against a hand-worked block: max |x| = 2.54 gives d = 0.02, q = round(x / d).
    block = np.zeros(32, np.float32)
    block[:5] = [2.54, -1.27, 0.01, 0.03, -0.05]
    raw = ggml_types.encode(ggml_types.Q8_0, block)
    d = np.frombuffer(raw[:2], "<f2")[0]
    q = np.frombuffer(raw[2:], np.int8)
    check("Q8_0 block: d = max|x|/127 in fp16, q rounds half away from zero",
          d == np.float16(np.float32(2.54) / np.float32(127)) and list(q[:5]) == [127, -64, 1, 2, -3]
          and not q[5:].any(), f"d={d}, q={list(q[:5])}")
    y = rng.standard_normal((8, 64)).astype(np.float32)
    back = ggml_types.decode(ggml_types.Q8_0, ggml_types.encode(ggml_types.Q8_0, y), y.shape)
    # q is rounded against the float32 scale but decoded with its fp16 rounding (rel. error
    # <= 2^-11, times |q| <= 127), hence slightly more than d/2.
    bound = np.abs(y).reshape(-1, 32).max(1) / 127 * (0.5 + 127 * 2.0 ** -11)
    check("Q8_0 round trip error <= d * (1/2 + 127 * 2^-11) per block",
          bool((np.abs(back - y).reshape(-1, 32).max(1) <= bound).all()))
    check("Q8_0 of zeros decodes to zeros",
          not ggml_types.decode(ggml_types.Q8_0, ggml_types.encode(ggml_types.Q8_0, np.zeros(32)), (32,)).any())
    # llama.cpp's 4/5-bit, k-quant and IQ4 types: sizes, and round trips within the codes'
    # resolution (a block's range over its levels; 2.5 steps for the k-quants, whose 4/6-bit
    # sub-scales are coarse), on normal rows with outliers; zeros stay zeros; fallbacks for rows
    # that do not fit.
    y = rng.standard_normal((64, 512)).astype(np.float32) * 0.02
    y[rng.random(y.shape) < 0.01] *= 30
    bits = {ggml_types.Q4_0: 4, ggml_types.Q4_1: 4, ggml_types.Q5_0: 5, ggml_types.Q5_1: 5, ggml_types.Q2_K: 2,
            ggml_types.Q3_K: 3, ggml_types.Q4_K: 4, ggml_types.Q5_K: 5, ggml_types.Q6_K: 6,
            ggml_types.IQ4_NL: 4, ggml_types.IQ4_XS: 4}
    # IQ4_NL / IQ4_XS levels are scale * kvalues_iq4nl (-127..113, non-uniform): the block's
    # (IQ4_XS: sub-block's) largest |x| maps to -127, so the wanted scale is S = max|x| / 127; the
    # encoder rounds scales up (fp16 d, IQ4_XS's 6-bit sub-scale codes), so the grid reaches the
    # largest |x|. The side opposite it stops at 113 of 127: up to 14 S to the nearest level; inside
    # the grid the widest gap is 24 (89..113): 12 times the actual scale, which is at most S plus one
    # fp16 step (IQ4_XS: plus one code step, S_max / 31; fp16 subnormals: 2^-24). Bound: 14/127 of
    # the block's max|x| (IQ4_XS: of the 256-value super-block's), 0.5% slack, + 12 * 2^-24; in the
    # usual steps that is up to 15 * 14/127 = 1.65 (step >= max|x| / 15).
    iq4_bound = 14 / 127 * 1.005
    for t, b in bits.items():
        name = ggml_types.TYPE_NAMES[t]
        raw = ggml_types.encode(t, y)
        back = ggml_types.decode(t, raw, y.shape)
        blk = ggml_types.BLOCK_SIZE[t]
        rows = y.reshape(-1, blk)
        step = (rows.max(1) - np.minimum(rows.min(1), 0)) / (2 ** b - 1)
        err = np.abs(back - y).reshape(-1, blk).max(1)
        worst = f"worst {float((err / np.maximum(step, 1e-30)).max()):.2f} steps"
        if t in ggml_types.IQ4_TYPES:
            amax = np.abs(rows).max(1)
            check(f"{name}: {len(raw)} bytes for {y.size} values, round trip within {iq4_bound:.4f} max|x|",
                  len(raw) == ggml_types.nbytes(t, y.size) and bool((err <= iq4_bound * amax + 12 * 2.0 ** -24).all()),
                  f"worst {float((err / np.maximum(amax, 1e-30)).max()):.4f} max|x|, {worst}")
        else:
            slack = 2.5 if t in ggml_types.K_TYPES else 1.0
            check(f"{name}: {len(raw)} bytes for {y.size} values, round trip within {slack} step(s)",
                  len(raw) == ggml_types.nbytes(t, y.size) and bool((err <= slack * step + 1e-12).all()),
                  worst)
        check(f"{name} of zeros decodes to zeros",
              not ggml_types.decode(t, ggml_types.encode(t, np.zeros(256)), (256,)).any())
    # The writers encode big tensors in row groups (a 7B model's 500 MB embedding would otherwise
    # need several GB of encoder temporaries): the bytes must be those of the whole tensor.
    same = [t for t in [ggml_types.F32, ggml_types.F16, ggml_types.BF16, ggml_types.Q8_0] + list(bits)
            if b"".join(ggml_types.encode_chunks(t, y, max_elements=3 * 512 + 7)) != ggml_types.encode(t, y)]
    check("encode_chunks (row groups) gives encode's bytes for every type", not same,
          ", ".join(ggml_types.TYPE_NAMES[t] for t in same))
    big = rng.standard_normal((4100, 1025)).astype(np.float32)  # over the 4M-value row-group size
    with tempfile.TemporaryDirectory() as tmp:
        ok = True
        for dt in ("F32", "F16", "BF16"):
            p = os.path.join(tmp, f"{dt}.safetensors")
            safetensors.write(p, [("w", big.shape, big)], dt)
            ok = ok and np.array_equal(SafetensorsFile(p).tensor("w"), rounded(big, dt))
        check("safetensors.write of a tensor over 4M values (row groups): F32/F16/BF16 round trips", ok)
    check("k-quant rows of 64 fall back to Q8_0, of 172 to F16; Q4_0 rows of 172 to F16; IQ4_XS rows "
          "of 64 to IQ4_NL, of 172 to F16; IQ4_NL rows of 172 to F16",
          ggml_types.storage_type(ggml_types.Q4_K, 64) == ggml_types.Q8_0
          and ggml_types.storage_type(ggml_types.Q4_K, 172) == ggml_types.F16
          and ggml_types.storage_type(ggml_types.Q4_0, 172) == ggml_types.F16
          and ggml_types.storage_type(ggml_types.Q6_K, 512) == ggml_types.Q6_K
          and ggml_types.storage_type(ggml_types.IQ4_XS, 64) == ggml_types.IQ4_NL
          and ggml_types.storage_type(ggml_types.IQ4_XS, 172) == ggml_types.F16
          and ggml_types.storage_type(ggml_types.IQ4_XS, 512) == ggml_types.IQ4_XS
          and ggml_types.storage_type(ggml_types.IQ4_NL, 172) == ggml_types.F16
          and ggml_types.storage_type(ggml_types.IQ4_NL, 64) == ggml_types.IQ4_NL)


def check_tiny(shared, out):
    t0 = time.time()
    rc = make_random_models.main(["--out", out, "--which", "tiny", "--seed", str(SEED), "--shared", shared])
    check("make_random_models --which tiny", rc == 0, f"{time.time() - t0:.1f} s")
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    logits = {}
    for name, kind, cfg, _ in make_random_models.plan("tiny", shared):
        path = os.path.join(out, name)
        size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)) \
            if os.path.isdir(path) else os.path.getsize(path)
        m = load_model(path)
        dtype = next((d for d in ("BF16", "F16") if d in kind), "F32")
        check(f"{name}: config read back", same_config(m.config, cfg) and name in manifest["models"],
              f"{size} bytes")
        ref = random_model(cfg, SEED, "fan_in" if name in make_random_models.FAN_IN else "small")
        bad = [n for n in ref.names() if not np.array_equal(m.get(n), rounded(ref.get(n), dtype))]
        check(f"{name}: every tensor equals the seeded {dtype} value", not bad, ", ".join(bad[:3]))
        ids = ids_for(cfg)
        ours = forward(m, ids)["logits"]
        expect = forward(ref, ids)["logits"]
        diff = float(np.abs(ours - expect).max()) / float(np.abs(expect).max())
        tol = {"F32": F32_RTOL, "F16": 2e-3, "BF16": 2e-2}[dtype]
        if name.endswith(".gguf") and cfg.rope_scaling and cfg.rope_scaling["type"] == "longrope":
            tol = max(tol, 1e-6)  # GGUF holds LongRoPE's attention factor in float32
        check(f"{name}: logits vs in-memory model", diff <= tol, f"rel diff {diff:.1e} (tol {tol:.0e})")
        logits[name] = ours
    # Formats that hold the same model give the same numbers.
    same = [("tiny-llama.gguf", "tiny-llama.bin"), ("tiny-llama.gguf", "tiny-llama-v1.bin"),
            ("tiny-llama-hf", "tiny-llama-hf-sharded"), ("tiny-gpt2-hf", "tiny-gpt2.gguf")]
    for a, b in same:
        d = float(np.abs(logits[a] - logits[b]).max())
        check(f"{a} and {b} give the same logits", d <= F32_RTOL, f"max diff {d:.1e}")
    g = GGUFFile(os.path.join(out, "tiny-llama-tied.gguf"))
    check("tiny-llama-tied.gguf has no output.weight", "output.weight" not in g.tensors)
    g = GGUFFile(os.path.join(out, "tiny-llama.gguf"))
    s = GGUFFile(os.path.join(shared, "models/stories260K/stories260K.gguf"))
    check("tiny-llama.gguf carries stories260K's tokenizer",
          all(k in g.fields for k in s.fields if k.startswith("tokenizer."))
          and list(g.get("tokenizer.ggml.tokens")) == list(s.get("tokenizer.ggml.tokens")))
    with open(os.path.join(out, "tiny-gpt2-hf", "config.json")) as f:
        c = json.load(f)
    st = SafetensorsFile(os.path.join(out, "tiny-gpt2-hf", "model.safetensors"))
    check("tiny-gpt2-hf: transformer. prefix, Conv1D c_attn stored [d, 3d], n_positions 128",
          st.tensors.get("transformer.h.0.attn.c_attn.weight", (None, None))[1] == (64, 192)
          and c["n_positions"] == 128)


def check_conversions(shared, out):
    sources = [
        ("tiny-llama.gguf", os.path.join(out, "tiny-llama.gguf"), IDS_LLAMA),
        ("tiny-llama.bin", os.path.join(out, "tiny-llama.bin"), IDS_LLAMA),
        ("tiny-gpt2.gguf", os.path.join(out, "tiny-gpt2.gguf"), IDS_GPT2),
        ("stories260K.bin", os.path.join(shared, "models/stories260K/stories260K.bin"), IDS_LLAMA),
        ("TinyStories-656K gguf", os.path.join(shared, "models/TinyStories-656K/TinyStories-656K-f32.gguf"),
         [1, 80, 147, 201, 282, 57]),
        ("random-gpt2-hf", os.path.join(shared, "models/random-gpt2-hf"), IDS_GPT2),
    ]
    for label, src, ids in sources:
        base_model = load_model(src)
        base = forward(base_model, ids)["logits"]
        scale = float(np.abs(base).max())
        for t in ("f32", "f16", "bf16", "q8_0"):
            dst = os.path.join(out, f"conv-{label.replace(' ', '_')}-{t}.gguf")
            tok = os.path.join(shared, "models/random-gpt2/random-gpt2-test.gguf") if "hf" in label else None
            convert(src, dst, ggml_types.NAME_TO_TYPE[t], tokenizer_from=tok)
            m = load_model(dst)
            g = GGUFFile(dst)
            d = float(np.abs(forward(m, ids)["logits"] - base).max())
            want = ggml_types.NAME_TO_TYPE[t]
            types_ok = all(
                ti.type == (ggml_types.F32 if len(ti.shape) == 1 or n == "position_embd.weight" else
                            want if ggml_types.row_ok(want, ti.shape[-1]) else ggml_types.F16)
                for n, ti in g.tensors.items())
            types_ok = types_ok and g.get("general.file_type") == ggml_types.FILE_TYPE[want]
            if t == "f32":
                check(f"convert {label} -> f32: same logits, types", d <= F32_RTOL * scale and types_ok,
                      f"max diff {d:.1e}")
            else:
                rel = d / scale
                check(f"convert {label} -> {t}: logits close to F32, types", rel <= CONVERT_RTOL[t] and types_ok,
                      f"max diff {d:.2e} at logit scale {scale:.2e} (rel {rel:.1e})")
        if src.endswith(".gguf"):
            a, b = GGUFFile(src), GGUFFile(os.path.join(out, f"conv-{label.replace(' ', '_')}-q8_0.gguf"))
            same_meta = [k for k in a.fields if k != "general.file_type"] == \
                        [k for k in b.fields if k != "general.file_type"] and all(
                np.array_equal(np.asarray(a.fields[k].value), np.asarray(b.fields[k].value))
                for k in a.fields if k != "general.file_type")
            check(f"convert {label}: metadata and tensor order kept", same_meta and list(a.tensors) == list(b.tensors))

    # GGUF -> F32 GGUF reproduces llama.cpp-written files byte for byte.
    for rel in ("models/random-gpt2/random-gpt2-test.gguf", "models/TinyStories-656K/TinyStories-656K-f32.gguf"):
        dst = os.path.join(out, "copy.gguf")
        convert(os.path.join(shared, rel), dst, ggml_types.F32)
        with open(dst, "rb") as f1, open(os.path.join(shared, rel), "rb") as f2:
            check(f"convert {os.path.basename(rel)} -> f32 is byte-identical", f1.read() == f2.read())

    # llama2.c -> GGUF builds the tokenizer arrays llama.cpp's stories260K.gguf has.
    a = GGUFFile(os.path.join(out, "conv-stories260K.bin-f32.gguf"))
    b = GGUFFile(os.path.join(shared, "models/stories260K/stories260K.gguf"))
    same_tok = all(np.array_equal(np.asarray(a.get(k)), np.asarray(b.get(k))) for k in
                   ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.model"))
    same_w = all(np.array_equal(a.tensor(n), b.tensor(n)) for n in a.tensors)
    check("stories260K.bin -> GGUF: tokenizer arrays and tensors equal stories260K.gguf's", same_tok and same_w)
    # Q8_0 fallback: stories260K's ffn_down rows have 172 values, not a multiple of 32.
    q = GGUFFile(os.path.join(out, "conv-stories260K.bin-q8_0.gguf"))
    check("Q8_0 falls back to F16 for 172-wide rows", q.tensors["blk.0.ffn_down.weight"].type == ggml_types.F16
          and q.tensors["blk.0.ffn_gate.weight"].type == ggml_types.Q8_0)
    # The CLI wrapper works too.
    r = subprocess.run([sys.executable, os.path.join(SCRIPTS, "convert_model.py"),
                        os.path.join(out, "tiny-llama-v1.bin"), "--type", "q8_0", "--out",
                        os.path.join(out, "cli.gguf")], capture_output=True, text=True)
    check("convert_model.py CLI", r.returncode == 0 and load_model(os.path.join(out, "cli.gguf")).config.n_layers == 2,
          r.stderr.strip()[-200:])


def check_bad_inputs(out):
    good = os.path.join(out, "tiny-llama.gguf")
    with open(good, "rb") as f:
        data = f.read()
    cases = {"truncated": data[:len(data) // 2], "bad magic": b"GGUX" + data[4:],
             "version 1": data[:4] + (1).to_bytes(4, "little") + data[8:]}
    for label, blob in cases.items():
        p = os.path.join(out, "bad.gguf")
        with open(p, "wb") as f:
            f.write(blob)
        try:
            GGUFFile(p)
            ok = False
        except ValueError:
            ok = True
        check(f"GGUF reader rejects a {label} file", ok)


def check_bench(shared, bench_dir):
    """Bench models: config, a few regenerated tensors, and logits agreeing across formats."""
    groups = {}
    for name, kind, cfg, _ in make_random_models.plan("bench", shared):
        path = os.path.join(bench_dir, name)
        if not os.path.exists(path):
            check(f"bench {name} exists", False)
            continue
        with open(os.path.join(bench_dir, "manifest.json")) as f:
            seed = json.load(f)["seed"]
        t0 = time.time()
        m = load_model(path)
        ref = random_model(cfg, seed)
        dtype = "F16" if "f16" in kind else "F32"
        probe = ["blocks.0.attn.q.w", "blocks.0.attn.k.w", f"blocks.{cfg.n_layers - 1}.mlp.down.w", "ln_final.w"]
        ok = same_config(m.config, cfg) and all(
            np.array_equal(m.get(n), rounded(ref.get(n), dtype) if m.get(n).ndim > 1 else ref.get(n))
            for n in probe)
        ids = ids_for(cfg)[:6]
        lg = forward(m, ids)["logits"]
        groups.setdefault(cfg.name, []).append((name, dtype, lg))
        check(f"bench {name}: config and sample tensors", ok, f"forward of {len(ids)} tokens in {time.time() - t0:.0f} s")
    for gname, items in groups.items():
        (n0, _, l0), *rest = items
        for n1, dtype, l1 in rest:
            rel = float(np.abs(l1 - l0).max()) / float(np.abs(l0).max())
            tol = F32_RTOL if dtype == "F32" else 5e-3
            check(f"bench {n1} vs {n0}: logits", rel <= tol, f"rel diff {rel:.1e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=DEFAULT_SHARED)
    ap.add_argument("--bench", help="check bench models in this folder")
    ap.add_argument("--keep", help="write the tiny models here instead of a temporary folder")
    args = ap.parse_args()
    t0 = time.time()
    check_codecs()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or tmp
        check_tiny(args.shared, out)
        check_conversions(args.shared, out)
        check_bad_inputs(out)
    if args.bench:
        check_bench(args.shared, args.bench)
    return finish(t0)


if __name__ == "__main__":
    sys.exit(main())
