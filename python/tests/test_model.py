"""Loading every shared model, the configuration, tokens and TransformerLens-shaped weights."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import reslens
from conftest import MODELS, PROMPTS, cli_json, get_model, model_path


def test_every_model_loads_with_the_cli_configuration(any_model):
    name, model = any_model
    c = model.cfg
    info = cli_json(["inspect", model_path(name), "--json"])
    cfg = info.get("config", info)
    for key in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx"):
        assert getattr(c, key) == cfg[key], key
    assert c.n_key_value_heads == cfg.get("n_key_value_heads", cfg.get("n_kv_heads"))
    assert c.act_fn in ("gelu_new", "silu")
    assert c.normalization_type in ("LN", "RMS")
    assert c.positional_embedding_type in ("standard", "rotary")
    assert c.d_vocab_out == c.d_vocab
    assert c.path == model_path(name)
    assert "n_layers" in c.to_dict()
    assert repr(model).startswith("<reslens.Model")


def test_architectures():
    gpt2 = get_model("random-gpt2.gguf").cfg
    assert (gpt2.architecture, gpt2.act_fn, gpt2.normalization_type, gpt2.positional_embedding_type) == (
        "gpt2", "gelu_new", "LN", "standard")
    llama = get_model("stories260K.gguf").cfg
    assert (llama.architecture, llama.act_fn, llama.normalization_type, llama.positional_embedding_type) == (
        "llama", "silu", "RMS", "rotary")
    assert llama.n_key_value_heads == 4 and llama.n_heads == 8  # grouped-query attention


def test_tokens_match_the_cli(any_model):
    name, model = any_model
    text = PROMPTS[name]
    cli = cli_json(["tokenize", model_path(name), text, "--json"])
    ids = model.to_tokens(text)
    assert ids.ndim == 1 and ids.dtype == np.int64
    assert ids.tolist() == cli["ids"]
    assert model.to_str_tokens(text) == model.to_str_tokens(ids)
    assert len(model.to_str_tokens(text)) == len(ids)
    no_bos = model.to_tokens(text, prepend_bos=False).tolist()
    assert no_bos == cli_json(["tokenize", model_path(name), text, "--bos", "no", "--json"])["ids"]
    assert text in model.to_string(ids) or model.to_string(ids).strip() == text.strip()
    assert model.to_string(ids[None, :][0]) == model.to_string(ids.tolist())


def test_special_tokens_in_text_match_the_cli():
    # "<|endoftext|>" written in the text is that token (as HF and TransformerLens read it), unless
    # the core encoder is asked to read it as characters, as `--no-parse-special` does.
    model = get_model("random-gpt2.gguf")
    text = "Hello<|endoftext|> world"
    ids = model.to_tokens(text, prepend_bos=False).tolist()
    assert 50256 in ids
    assert ids == cli_json(["tokenize", model_path("random-gpt2.gguf"), text, "--bos", "no", "--json"])["ids"]
    plain = model.core.encode(text, False, parse_special=False)
    assert 50256 not in plain
    assert plain == cli_json(["tokenize", model_path("random-gpt2.gguf"), text, "--bos", "no",
                              "--no-parse-special", "--json"])["ids"]


def test_format_chat_matches_the_cli():
    model = get_model("stories260K.gguf")
    text = model.format_chat("Hi", system="Be brief", template="llama3")
    assert text == ("<|start_header_id|>system<|end_header_id|>\n\nBe brief<|eot_id|><|start_header_id|>user"
                    "<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    cli = cli_json(["tokenize", model_path("stories260K.gguf"), "Hi", "--chat-template", "llama3", "--system",
                    "Be brief", "--json"])
    assert model.to_tokens(text).tolist() == cli["ids"]
    assert model.core.chat_template == ""
    with pytest.raises(ValueError, match="no chat template"):
        model.format_chat("Hi")
    with pytest.raises(ValueError, match="chatml"):
        model.format_chat("Hi", template="chatgpt")


def test_single_tokens():
    model = get_model("random-gpt2.gguf")
    t = model.to_single_token(" Paris")
    assert model.to_single_str_token(t) == " Paris"
    with pytest.raises(ValueError):
        model.to_single_token(" Parisian capital")


def tl_shapes(model):
    c = model.cfg
    H, Hkv, d, dh, N, V = c.n_heads, c.n_key_value_heads, c.d_model, c.d_head, c.d_mlp, c.d_vocab
    return {
        "W_E": (V, d), "W_U": (d, V), "b_U": (V,),
        "W_Q": (H, d, dh), "W_K": (H, d, dh), "W_V": (H, d, dh), "_W_K": (Hkv, d, dh), "_W_V": (Hkv, d, dh),
        "W_O": (H, dh, d), "b_Q": (H, dh), "b_K": (H, dh), "b_V": (H, dh), "b_O": (d,),
        "W_in": (d, N), "W_out": (N, d), "b_in": (N,), "b_out": (d,),
    }


def test_weight_shapes_are_transformerlens(any_model):
    _, model = any_model
    for name, shape in tl_shapes(model).items():
        w = getattr(model, name)
        arr = w if isinstance(w, np.ndarray) else w[0]
        assert arr.shape == shape, name
        assert arr.dtype == np.float32
        assert not arr.flags.writeable, name
        if not isinstance(w, np.ndarray):
            assert len(w) == model.cfg.n_layers
            assert w[-1].shape == shape
            assert np.asarray(w).shape == (model.cfg.n_layers,) + shape
    c = model.cfg
    gate = None if model.W_gate is None else model.W_gate[0]  # W_gate itself is None without a gated MLP
    assert (gate is None) == (not c.gated_mlp)
    if gate is not None:
        assert gate.shape == (c.d_model, c.d_mlp)
    assert model.ln_final.w.shape == (c.d_model,) and model.ln_final.b.shape == (c.d_model,)
    assert (model.W_pos is None) == (c.positional_embedding_type == "rotary")
    b = model.blocks[0]
    assert b.attn.W_O.shape == (c.n_heads, c.d_head, c.d_model) and b.ln1.w.shape == (c.d_model,)


def test_weights_are_zero_copy_where_documented(any_model):
    _, model = any_model
    c = model.cfg
    assert np.shares_memory(model.W_U, model.weight("W_U"))
    assert np.shares_memory(model.W_O[0], model.weight("W_O", 0))
    assert np.shares_memory(model.W_in[0], model.weight("W_in", 0))
    assert np.shares_memory(model.W_out[0], model.weight("W_out", 0))
    assert np.shares_memory(model._W_V[0], model.weight("W_V", 0))
    interleaved = c.positional_embedding_type == "rotary" and c.rope_layout == "interleaved"
    assert np.shares_memory(model.W_Q[0], model.weight("W_Q", 0)) == (not interleaved)
    assert np.shares_memory(model.W_K[0], model.weight("W_K", 0)) == (not interleaved and c.n_key_value_heads == c.n_heads)
    # W_O[l][h, n] is column h*d_head+n of reslens's [d_model, n_heads*d_head].
    raw = model.weight("W_O", 1)
    assert np.array_equal(model.W_O[1][1, 2], raw[:, 1 * c.d_head + 2])
    assert np.array_equal(model.W_out[1][3], model.weight("W_out", 1)[:, 3])
    with pytest.raises(ValueError, match="read-only"):
        model.W_U[0, 0] = 1.0


def test_weights_outlive_the_model():
    model = reslens.load(model_path("stories260K.gguf"))
    w, wq = model.W_E, model.W_Q[2]
    w_copy, wq_copy = w.copy(), wq.copy()
    del model
    gc.collect()
    assert np.array_equal(w, w_copy) and np.array_equal(wq, wq_copy)


def test_gguf_and_hf_give_the_same_tl_weights():
    """TinyStories-656K as GGUF (interleaved RoPE rows, W_Q/W_K reordered copies) and as the Hugging
    Face checkpoint (rotate_half rows, zero-copy views): TL's W_Q/W_K are identical."""
    hf, gg = get_model("TinyStories-656K"), get_model("TinyStories-656K.gguf")
    for l in range(hf.cfg.n_layers):
        for name in ("W_Q", "W_K", "_W_K", "W_V", "W_O", "W_in", "W_gate", "W_out"):
            assert np.array_equal(getattr(hf, name)[l], getattr(gg, name)[l]), (name, l)
    assert np.array_equal(hf.W_U, gg.W_U) and np.array_equal(hf.W_E, gg.W_E)


@pytest.mark.parametrize("name", list(MODELS))
def test_weights_reproduce_the_hooks(name):
    """TL's meaning of each weight: hooks recomputed from the cache's inputs and the TL-shaped weights."""
    model = get_model(name)
    c = model.cfg
    logits, cache = model.run_with_cache(PROMPTS[name])
    tol = dict(rtol=1e-4, atol=1e-4)
    for l in range(c.n_layers):
        x = cache["normalized", l, "ln1"].astype(np.float64)
        q = np.einsum("pm,hmd->phd", x, model.W_Q[l]) + model.b_Q[l]
        k = np.einsum("pm,hmd->phd", x, model._W_K[l]) + model._b_K[l]
        v = np.einsum("pm,hmd->phd", x, model._W_V[l]) + model._b_V[l]
        np.testing.assert_allclose(q, cache["q", l], **tol)
        np.testing.assert_allclose(k, cache["k", l], **tol)
        np.testing.assert_allclose(v, cache["v", l], **tol)
        attn = np.einsum("phd,hdm->pm", cache["z", l].astype(np.float64), model.W_O[l]) + model.b_O[l]
        np.testing.assert_allclose(attn, cache["attn_out", l], **tol)
        x2 = cache["normalized", l, "ln2"].astype(np.float64)
        if c.gated_mlp:
            np.testing.assert_allclose(x2 @ model.W_gate[l], cache["pre", l], **tol)
            np.testing.assert_allclose(x2 @ model.W_in[l], cache["pre_linear", l], **tol)
        else:
            np.testing.assert_allclose(x2 @ model.W_in[l] + model.b_in[l], cache["pre", l], **tol)
        out = cache["post", l].astype(np.float64) @ model.W_out[l] + model.b_out[l]
        np.testing.assert_allclose(out, cache["mlp_out", l], **tol)
    final = cache["ln_final.hook_normalized"].astype(np.float64)
    np.testing.assert_allclose(final @ model.W_U + model.b_U, logits, **tol)


def test_forward_and_loss():
    model = get_model("stories260K.gguf")
    text = PROMPTS["stories260K.gguf"]
    logits = model(text)
    logits2, _ = model.run_with_cache(text, names_filter=[])
    assert np.array_equal(logits, logits2)
    loss = model(text, return_type="loss")
    ids = model.to_tokens(text)
    lp = logits[:-1].astype(np.float64)
    lp = lp - np.log(np.exp(lp - lp.max(-1, keepdims=True)).sum(-1, keepdims=True)) - lp.max(-1, keepdims=True)
    assert loss == pytest.approx(-lp[np.arange(len(ids) - 1), ids[1:]].mean())
    assert 0 < loss < 10
