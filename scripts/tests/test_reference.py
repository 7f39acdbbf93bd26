#!/usr/bin/python3
"""Checks the float64 reference against llama.cpp's goldens and the attribution goldens.

    /usr/bin/python3 scripts/tests/test_reference.py [--shared PATH]

Plain asserts; prints one line per check and a summary; exits 1 on any failure. ~15 s.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)

from harness import check, finish  # noqa: E402
from reslens_ref import forward, load_model  # noqa: E402

DEFAULT_SHARED = os.path.normpath(os.path.join(SCRIPTS, "..", "..", "shared"))

# Tolerances, about 2-3x the worst differences observed (noted in scripts/README.md):
# llama.cpp computes in float32, so differences scale with each tensor's magnitude.
LOGIT_ATOL = {"stories260K": 2e-5, "TinyStories-656K": 2e-5, "random-gpt2": 2e-5}
# Per-tensor dumps: |ours - llama.cpp| <= atol + rtol * max|llama.cpp|.
DUMP_TOL = {"stories260K": (5e-6, 2e-6), "TinyStories-656K": (5e-6, 2e-6),
            "random-gpt2": (6e-5, 1e-5)}  # GPT-2: fp16 GELU table rounding boundaries



def to_gguf_order(x):
    """Reorder the last (head_dim) axis from rotate_half order to GGUF's interleaved pairs:
    GGUF feature 2j+s is rotate_half feature s*d_head/2 + j."""
    dh = x.shape[-1]
    return x.reshape(*x.shape[:-1], 2, dh // 2).swapaxes(-1, -2).reshape(x.shape)


def golden_hooks(kind, layer, hooks, model):
    """The reference value for one llama.cpp tensor dump (kind, layer) from our hooks."""
    p = f"blocks.{layer}." if layer is not None else ""
    T = hooks["hook_embed"].shape[0]
    simple = {
        "embd": "hook_embed", "pos_embd": "hook_pos_embed",
        "attn_norm": p + "ln1.hook_normalized", "Vcur": p + "attn.hook_v",
        "kq_soft_max": p + "attn.hook_pattern", "attn_out": p + "hook_attn_out",
        "ffn_inp": p + "hook_resid_mid", "ffn_norm": p + "ln2.hook_normalized",
        "ffn_gate": p + "mlp.hook_pre", "ffn_swiglu": p + "mlp.hook_post",
        "ffn_up_b": p + "mlp.hook_pre", "ffn_gelu": p + "mlp.hook_post",
        "ffn_out": p + "hook_mlp_out", "l_out": p + "hook_resid_post",
        "result_norm": "ln_final.hook_normalized",
    }
    gpt2 = model.config.is_gpt2
    if kind in simple:
        return hooks[simple[kind]]
    if kind == "inpL":
        return hooks["blocks.0.hook_resid_pre"]
    if kind == "kqv_out":
        return hooks[p + "attn.hook_z"].reshape(T, -1)
    if kind == "ffn_up":  # Llama: up projection; GPT-2: c_fc without its bias
        if gpt2:
            return hooks[p + "mlp.hook_pre"] - model.f64(p + "mlp.up.b")
        return hooks[p + "mlp.hook_pre_linear"]
    if gpt2 and kind in ("Qcur", "Kcur"):
        return hooks[p + f"attn.hook_{kind[0].lower()}"]
    # Llama Q/K dumps are in GGUF row order.
    which = {"Qcur_pre_rope": "hook_q", "Kcur_pre_rope": "hook_k",
             "Qcur": "hook_rot_q", "Kcur": "hook_rot_k"}[kind]
    return to_gguf_order(hooks[p + "attn." + which])


def check_logits(shared, golden, model_paths, ggml_gelu=False):
    gdir = os.path.join(shared, "goldens", golden)
    with open(os.path.join(gdir, "goldens.json")) as f:
        g = json.load(f)
    models = [load_model(os.path.join(shared, m)) for m in model_paths]
    all_logits = {}
    for i, m in enumerate(models):
        worst = worst_last = 0.0
        for pr in g["prompts"]:
            ids = pr["token_ids"]
            hooks = forward(m, ids, ggml_gelu=ggml_gelu)
            ours = hooks["logits"]
            la = np.fromfile(os.path.join(gdir, pr["logits_all"]["file"]), dtype="<f4")
            la = la.reshape(pr["logits_all"]["shape"])
            last = np.fromfile(os.path.join(gdir, pr["last_logits"]["file"]), dtype="<f4")
            worst = max(worst, float(np.abs(ours - la).max()))
            worst_last = max(worst_last, float(np.abs(ours[-1] - last).max()))
            check(f"{golden} {pr['id']} argmax ({model_paths[i]})",
                  int(np.argmax(ours[-1])) == pr["last_logits"]["argmax"])
            all_logits.setdefault(pr["id"], []).append(ours)
        tol = LOGIT_ATOL[golden]
        check(f"{golden} logits, all positions, all prompts ({model_paths[i]})", worst <= tol,
              f"max diff {worst:.2e} (tol {tol:.0e}); last-position file {worst_last:.2e}")
    if len(models) > 1:
        d = max(float(np.abs(a - b).max()) for v in all_logits.values() for a in v for b in v)
        check(f"{golden}: {' and '.join(model_paths)} give the same logits", d <= 1e-9, f"max diff {d:.1e}")


def check_dumps(shared, golden, model_path, ggml_gelu=False):
    gdir = os.path.join(shared, "goldens", golden)
    with open(os.path.join(gdir, "goldens.json")) as f:
        g = json.load(f)
    model = load_model(os.path.join(shared, model_path))
    atol, rtol = DUMP_TOL[golden]
    worst = {}
    for pid in g["prompts_with_tensor_dumps"]:
        tdir = os.path.join(gdir, pid, "tensors")
        with open(os.path.join(tdir, "index.json")) as f:
            index = json.load(f)
        hooks = forward(model, index["token_ids"], ggml_gelu=ggml_gelu)
        for t in index["tensors"]:
            ref = np.fromfile(os.path.join(tdir, t["file"]), dtype="<f4").reshape(t["shape"])
            ours = golden_hooks(t["kind"], t["layer"], hooks, model)
            assert ours.shape == ref.shape, (t["name"], ours.shape, ref.shape)
            diff = float(np.abs(ours - ref).max())
            scale = float(np.abs(ref).max())
            k = t["kind"]
            prev = worst.get(k, (0.0, 0.0, True))
            worst[k] = (max(prev[0], diff), max(prev[1], scale), prev[2] and diff <= atol + rtol * scale)
    for k, (diff, scale, ok) in worst.items():
        check(f"{golden} dumps {k}", ok, f"max diff {diff:.1e} at scale {scale:.1e}")


def check_attribution(shared):
    adir = os.path.join(shared, "goldens", "attribution")
    for fname in sorted(os.listdir(adir)):
        if not fname.endswith(".json"):
            continue
        with open(os.path.join(adir, fname)) as f:
            a = json.load(f)
        model = load_model(os.path.join(shared, a["model"]["path"]))
        logits = forward(model, a["ids"])["logits"][-1]
        ref = np.asarray(a["real"]["last_logits"])
        d = float(np.abs(logits - ref).max())
        # Both sides are float64; the residue comes from eps stored as float32 on their side.
        check(f"attribution {fname} real.last_logits", d <= 1e-8 and int(np.argmax(logits)) == a["target"]["id"],
              f"max diff {d:.1e}")


def check_bin_equals_gguf(shared):
    a = load_model(os.path.join(shared, "models/stories260K/stories260K.bin"))
    b = load_model(os.path.join(shared, "models/stories260K/stories260K.gguf"))
    # The .bin shares its classifier; the .gguf stores a copy as output.weight.
    same = all(np.array_equal(a.get(n), b.get(n)) for n in a.names())
    same = same and np.array_equal(a.unembed(), b.unembed())
    check("stories260K .bin and .gguf tensors bit-identical after un-permuting Q/K", same)


def check_cli(shared):
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(shared, "models/stories260K/stories260K.gguf")
        ids = "1,403,407,261,378"
        run = [sys.executable, "-m", "reslens_ref", "trace", model, "--ids", ids]
        r1 = subprocess.run(run + ["--out", f"{tmp}/a"], cwd=SCRIPTS, capture_output=True, text=True)
        r2 = subprocess.run([sys.executable, os.path.join(SCRIPTS, "reslens_ref_trace.py"), model,
                             "--ids", ids, "--out", f"{tmp}/b", "--float32"], capture_output=True, text=True)
        check("trace CLI and wrapper run", r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr)
        with open(f"{tmp}/a/index.json") as f:
            index = json.load(f)
        names = [h["name"] for h in index["hooks"]]
        want = 1 + 5 * 20 + 3  # embed, 20 per Llama layer, ln_final (2), logits
        check("trace writes every hook", len(names) == want and names[-1] == "logits"
              and index["tokens"] == [1, 403, 407, 261, 378], f"{len(names)} hooks")
        cmp = [sys.executable, os.path.join(SCRIPTS, "compare_trace.py"), f"{tmp}/a", f"{tmp}/b", "--quiet"]
        ok = subprocess.run(cmp, capture_output=True, text=True).returncode == 0
        # Corrupt one hook in b, then drop another: both must fail.
        z = np.load(f"{tmp}/b/blocks.3.attn.hook_z.npy")
        z[2, 1, 3] += 1e-3
        np.save(f"{tmp}/b/blocks.3.attn.hook_z.npy", z)
        bad = subprocess.run(cmp, capture_output=True, text=True)
        with open(f"{tmp}/b/index.json") as f:
            bi = json.load(f)
        bi["hooks"] = [h for h in bi["hooks"] if h["name"] != "logits"]
        with open(f"{tmp}/b/index.json", "w") as f:
            json.dump(bi, f)
        only = [cmp[0], cmp[1], f"{tmp}/a", f"{tmp}/b", "--only", "blocks.0.*"]
        ok_subset = subprocess.run(only, capture_output=True, text=True).returncode == 0
        missing = subprocess.run(cmp[:-1] + ["--only", "logits"], capture_output=True, text=True)
        check("compare_trace passes float32 vs float64, fails a 1e-3 change and a missing hook",
              ok and ok_subset and bad.returncode == 1 and "blocks.3.attn.hook_z" in bad.stdout
              and missing.returncode == 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=DEFAULT_SHARED)
    shared = ap.parse_args().shared
    t0 = time.time()
    check_logits(shared, "stories260K",
                 ["models/stories260K/stories260K.gguf", "models/stories260K/stories260K.bin"])
    check_logits(shared, "TinyStories-656K",
                 ["models/TinyStories-656K/TinyStories-656K-f32.gguf", "models/TinyStories-656K"])
    check_logits(shared, "random-gpt2", ["models/random-gpt2/random-gpt2-test.gguf"], ggml_gelu=True)
    check_dumps(shared, "stories260K", "models/stories260K/stories260K.gguf")
    check_dumps(shared, "TinyStories-656K", "models/TinyStories-656K")
    check_dumps(shared, "random-gpt2", "models/random-gpt2/random-gpt2-test.gguf", ggml_gelu=True)
    check_attribution(shared)
    check_bin_equals_gguf(shared)
    check_cli(shared)
    return finish(t0)


if __name__ == "__main__":
    sys.exit(main())
