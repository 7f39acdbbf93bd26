"""run_with_cache: keys, shapes, names filters, TL short names, zero-copy views, lifetimes, parity
with `reslens trace`, and the decomposition helpers' identities."""

from __future__ import annotations

import gc
import pathlib

import numpy as np
import pytest

import reslens
from conftest import MODELS, PROMPTS, get_model, model_path, run_cli


def expected_shape(name: str, cfg, T: int) -> tuple:
    d, H, Hkv, dh, N = cfg.d_model, cfg.n_heads, cfg.n_key_value_heads, cfg.d_head, cfg.d_mlp
    suffix = name.split(".", 2)[-1] if name.startswith("blocks.") else name
    table = {
        "hook_embed": (T, d), "hook_pos_embed": (T, d), "hook_resid_pre": (T, d), "ln1.hook_scale": (T, 1),
        "ln1.hook_normalized": (T, d), "attn.hook_q": (T, H, dh), "attn.hook_k": (T, Hkv, dh),
        "attn.hook_v": (T, Hkv, dh), "attn.hook_rot_q": (T, H, dh), "attn.hook_rot_k": (T, Hkv, dh),
        "attn.hook_attn_scores": (H, T, T), "attn.hook_pattern": (H, T, T), "attn.hook_z": (T, H, dh),
        "hook_attn_out": (T, d), "hook_resid_mid": (T, d), "ln2.hook_scale": (T, 1), "ln2.hook_normalized": (T, d),
        "mlp.hook_pre": (T, N), "mlp.hook_pre_linear": (T, N), "mlp.hook_post": (T, N), "hook_mlp_out": (T, d),
        "hook_resid_post": (T, d), "ln_final.hook_scale": (T, 1), "ln_final.hook_normalized": (T, d),
    }
    return table[suffix]


def test_keys_and_shapes(any_model):
    name, model = any_model
    ids = model.to_tokens(PROMPTS[name])
    T = len(ids)
    logits, cache = model.run_with_cache(ids)
    assert logits.shape == (T, model.cfg.d_vocab) and logits.dtype == np.float32
    assert list(cache.keys()) == model.hook_names()
    assert len(cache) == len(model.hook_names())
    for key in cache:
        a = cache[key]
        assert a.shape == expected_shape(key, model.cfg, T), key
        assert a.dtype == np.float32 and not a.flags.writeable
        assert a.flags.c_contiguous
    rotary = model.cfg.positional_embedding_type == "rotary"
    assert ("blocks.0.attn.hook_rot_q" in cache) == rotary
    assert ("hook_pos_embed" in cache) == (not rotary)
    assert ("blocks.0.mlp.hook_pre_linear" in cache) == model.cfg.gated_mlp


def test_names_filter_forms():
    model = get_model("stories260K.gguf")
    text = PROMPTS["stories260K.gguf"]
    _, c1 = model.run_with_cache(text, names_filter="blocks.*.hook_resid_post")
    assert list(c1.keys()) == [f"blocks.{l}.hook_resid_post" for l in range(model.cfg.n_layers)]
    _, c2 = model.run_with_cache(text, names_filter=["hook_embed", "blocks.1.attn.hook_pattern"])
    assert list(c2.keys()) == ["hook_embed", "blocks.1.attn.hook_pattern"]
    _, c3 = model.run_with_cache(text, names_filter=lambda n: n.endswith("hook_z"))
    assert list(c3.keys()) == [f"blocks.{l}.attn.hook_z" for l in range(model.cfg.n_layers)]
    _, c4 = model.run_with_cache(text, names_filter=[])
    assert len(c4) == 0
    _, full = model.run_with_cache(text)
    for key in c1:
        assert np.array_equal(c1[key], full[key])
    with pytest.raises(ValueError, match="did you mean"):
        model.run_with_cache(text, names_filter="blocks.0.hook_resid_prе")  # Cyrillic e
    with pytest.raises(ValueError, match="matches no hook"):
        model.run_with_cache(text, names_filter="blocks.*.hook_nothing*")
    with pytest.raises(TypeError):
        model.run_with_cache(text, names_filter=[1, 2])


def test_short_names():
    model = get_model("random-gpt2.gguf")
    _, cache = model.run_with_cache(PROMPTS["random-gpt2.gguf"])
    L = model.cfg.n_layers
    pairs = {
        ("resid_pre", 1): "blocks.1.hook_resid_pre",
        ("resid_post", -1): f"blocks.{L - 1}.hook_resid_post",
        ("pattern", 0): "blocks.0.attn.hook_pattern",
        ("attn", 0): "blocks.0.attn.hook_pattern",
        ("attn_scores", 1): "blocks.1.attn.hook_attn_scores",
        ("z", 1): "blocks.1.attn.hook_z",
        ("q", 0): "blocks.0.attn.hook_q",
        ("post", 1): "blocks.1.mlp.hook_post",
        ("mlp_out", 0): "blocks.0.hook_mlp_out",
        ("scale", 0, "ln1"): "blocks.0.ln1.hook_scale",
        ("normalized", 1, "ln2"): "blocks.1.ln2.hook_normalized",
        ("embed",): "hook_embed",
        "scale": "ln_final.hook_scale",
        "pos_embed": "hook_pos_embed",
    }
    for short, full in pairs.items():
        assert np.shares_memory(cache[short], cache[full]), short
    assert reslens.get_act_name("resid_pre", 3) == "blocks.3.hook_resid_pre"
    assert reslens.get_act_name("mlp_post", 2) == "blocks.2.mlp.hook_post"
    assert reslens.get_act_name("scale", 2, "ln1") == "blocks.2.ln1.hook_scale"
    assert reslens.get_act_name("normalized") == "ln_final.hook_normalized"
    assert ("resid_pre", 0) in cache and "blocks.9.hook_resid_pre" not in cache
    with pytest.raises(KeyError, match="no such hook"):
        cache["blocks.9.hook_resid_pre"]
    _, small = model.run_with_cache(PROMPTS["random-gpt2.gguf"], names_filter="hook_embed")
    with pytest.raises(KeyError, match="not recorded"):
        small["resid_pre", 0]


def test_zero_copy_read_only_and_lifetime():
    model = reslens.load(model_path("stories260K.gguf"))
    logits, cache = model.run_with_cache(PROMPTS["stories260K.gguf"])
    a, b = cache["blocks.2.hook_resid_pre"], cache["resid_pre", 2]
    assert a is not b and np.shares_memory(a, b)
    assert a.ctypes.data == b.ctypes.data
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        a[0, 0] = 1.0
    with pytest.raises(ValueError):
        a.setflags(write=True)
    pattern = cache["pattern", 1]
    kept = {"resid": a.copy(), "pattern": pattern.copy(), "logits": logits.copy()}
    del cache, model, b
    gc.collect()
    # The arrays keep the run alive on their own.
    assert np.array_equal(a, kept["resid"])
    assert np.array_equal(pattern, kept["pattern"])
    assert np.array_equal(logits, kept["logits"])
    m = a.copy()
    m[0, 0] = 1.0  # copies are ordinary arrays


@pytest.mark.parametrize("name", ["stories260K.gguf", "random-gpt2-hf"])
def test_cache_equals_the_cli_trace(name, tmp_path: pathlib.Path):
    model = get_model(name)
    text = PROMPTS[name]
    run_cli(["trace", model_path(name), text, "--out", str(tmp_path)])
    logits, cache = model.run_with_cache(text)
    files = sorted(p.stem for p in tmp_path.glob("*.npy"))
    assert set(files) == set(cache.keys()) | {"logits"}
    for key in cache:
        assert np.array_equal(np.load(tmp_path / f"{key}.npy"), cache[key]), key
    assert np.array_equal(np.load(tmp_path / "logits.npy"), logits)


@pytest.mark.parametrize("name", list(MODELS))
def test_decomposition_identities(name):
    model = get_model(name)
    c = model.cfg
    logits, cache = model.run_with_cache(PROMPTS[name])
    L = c.n_layers
    tol = dict(rtol=1e-5, atol=1e-5)

    parts, labels = cache.decompose_resid(return_labels=True)
    n_embed = 2 if c.positional_embedding_type == "standard" else 1
    assert labels[:n_embed] == (["embed", "pos_embed"] if n_embed == 2 else ["embed"])
    assert labels[n_embed:n_embed + 2] == ["0_attn_out", "0_mlp_out"]
    assert parts.shape == (n_embed + 2 * L,) + cache["resid_post", -1].shape
    np.testing.assert_allclose(parts.sum(0), cache["resid_post", L - 1], **tol)
    mid, mlabels = cache.decompose_resid(layer=1, mlp_input=True, return_labels=True)
    assert mlabels[-1] == "1_attn_out"
    np.testing.assert_allclose(mid.sum(0), cache["resid_mid", 1], **tol)
    attn_only = cache.decompose_resid(mode="attn", incl_embeds=False)
    assert attn_only.shape[0] == L
    last = cache.decompose_resid(pos_slice=-1)
    assert last.shape == (n_embed + 2 * L, c.d_model)

    acc, alabels = cache.accumulated_resid(return_labels=True)
    assert alabels == [f"{l}_pre" for l in range(L)] + ["final_post"]
    assert np.array_equal(acc[-1], cache["resid_post", -1]) and np.array_equal(acc[0], cache["resid_pre", 0])
    acc_mid, mid_labels = cache.accumulated_resid(layer=2, incl_mid=True, return_labels=True)
    assert mid_labels == ["0_pre", "0_mid", "1_pre", "1_mid"] + (["2_pre"] if L > 2 else ["final_post"])
    # apply_ln on the final stack is the final norm without its weight and bias.
    normed = cache.accumulated_resid(apply_ln=True)[-1]
    np.testing.assert_allclose(normed * model.ln_final.w + model.ln_final.b, cache["ln_final.hook_normalized"],
                               rtol=1e-4, atol=1e-4)

    heads, hlabels = cache.stack_head_results(return_labels=True)
    assert heads.shape == (L * c.n_heads,) + cache["resid_pre", 0].shape
    assert hlabels[:2] == ["L0H0", "L0H1"] and hlabels[-1] == f"L{L - 1}H{c.n_heads - 1}"
    for l in range(L):
        per_layer = heads[l * c.n_heads:(l + 1) * c.n_heads]
        np.testing.assert_allclose(per_layer.sum(0) + model.b_O[l], cache["attn_out", l], **tol)
    with_rest = cache.stack_head_results(layer=1, incl_remainder=True)
    np.testing.assert_allclose(with_rest.sum(0), cache["resid_post", 0], **tol)
    one_pos = cache.stack_head_results(pos_slice=-1)
    np.testing.assert_allclose(one_pos, heads[:, -1], rtol=1e-5, atol=1e-6)

    neurons = cache.stack_neuron_results(layer=1)
    np.testing.assert_allclose(neurons.sum(0) + model.b_out[0], cache["mlp_out", 0], rtol=1e-4, atol=1e-4)

    # logit_attrs over the full decomposition give the real logit (minus the constant ln_f bias term).
    t = int(logits[-1].argmax())
    stack = cache.decompose_resid(pos_slice=-1)
    attrs = cache.logit_attrs(stack, tokens=t, pos_slice=-1)
    assert attrs.shape == (stack.shape[0],)
    const = float(model.ln_final.b @ model.W_U[:, t]) + float(model.b_U[t])
    assert attrs.sum() + const == pytest.approx(float(logits[-1, t]), rel=1e-4, abs=1e-4)
    other = int(np.argsort(logits[-1])[-2])
    diff = cache.logit_attrs(stack, tokens=t, incorrect_tokens=other, pos_slice=-1)
    expected = logits[-1, t] - logits[-1, other] - float(model.ln_final.b @ (model.W_U[:, t] - model.W_U[:, other]))
    assert diff.sum() == pytest.approx(float(expected), rel=1e-4, abs=1e-4)
    per_pos = cache.logit_attrs(cache.decompose_resid(), tokens=t)
    assert per_pos.shape == (stack.shape[0], logits.shape[0])
