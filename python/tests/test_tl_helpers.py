"""TransformerLens's helpers (issue 21): callable norms, embed/unembed, the fold_ln view, stacked
weights with OV/QK and state_dict, Python positions in interventions, foil-aware rankings and the
errors a TL user meets. Every new number is checked against the float64 reference
(scripts/reslens_ref)."""

from __future__ import annotations

import numpy as np
import pytest

import reslens
from conftest import PROMPTS, get_model
from tl_reference import ref_forward, ref_model

NAMES = ["stories260K.gguf", "random-gpt2.gguf"]  # RMSNorm + RoPE + gated MLP; LayerNorm + biases + W_pos


@pytest.mark.parametrize("name", NAMES)
def test_norm_embed_unembed_against_the_reference(name):
    model = get_model(name)
    ids = model.to_tokens(PROMPTS[name])
    ref = ref_forward(name, ids)
    logits, cache = model.run_with_cache(ids)
    L = model.cfg.n_layers
    final = cache["resid_post", L - 1]
    np.testing.assert_allclose(model.ln_final(final), ref["ln_final.hook_normalized"], atol=2e-5)
    np.testing.assert_allclose(model.unembed(model.ln_final(final)), ref["logits"], atol=1e-4)
    np.testing.assert_allclose(model.blocks[1].ln1(cache["resid_pre", 1]), ref["blocks.1.ln1.hook_normalized"], atol=2e-5)
    np.testing.assert_allclose(model.ln_final.scale(final), ref["ln_final.hook_scale"], rtol=1e-5)
    assert np.array_equal(model.embed(ids), cache["hook_embed"])
    np.testing.assert_allclose(model.embed(ids), ref["hook_embed"], atol=1e-7)
    if model.cfg.positional_embedding_type == "standard":
        np.testing.assert_allclose(model.pos_embed(ids), ref["hook_pos_embed"], atol=1e-7)
    assert model.embed([ids, ids]).shape == (2, len(ids), model.cfg.d_model)
    with pytest.raises(ValueError, match="d_model"):
        model.ln_final(np.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_fold_ln_makes_tl_formulas_right_as_written(name):
    model = get_model(name)
    folded = model.folded()
    assert folded.fold_ln_applied and not model.fold_ln_applied and "fold_ln" in repr(folded)
    ids = model.to_tokens(PROMPTS[name])
    ref = ref_forward(name, ids)
    rm = ref_model(name)
    _, cache = folded.run_with_cache(ids)
    # TL's logit lens: scaled = apply_ln_to_stack(accumulated_resid); scaled @ W_U + b_U. As in TL,
    # every point is divided by the final norm's scale (frozen at the last residual's).
    accum, labels = cache.accumulated_resid(apply_ln=True, pos_slice=-1, return_labels=True)
    lens = accum @ folded.W_U + folded.b_U  # [n, d_vocab]
    W_U = rm.unembed()  # [d_vocab, d_model]
    w, b = rm.f64("ln_final.w"), (rm.f64("ln_final.b") if model.cfg.normalization_type == "LN" else 0.0)
    frozen = ref["ln_final.hook_scale"][-1]
    for i, label in enumerate(labels):
        x = ref["blocks.%d.hook_resid_pre" % i][-1] if label != "final_post" else ref[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"][-1]
        xc = x - x.mean() if model.cfg.normalization_type == "LN" else x
        want = (xc / frozen * w + b) @ W_U.T  # the frozen final norm, then the unembedding
        np.testing.assert_allclose(lens[i], want, atol=2e-4, err_msg=label)
    np.testing.assert_allclose(lens[-1], ref["logits"][-1], atol=2e-4)
    # Without the fold the same line is off (the point of fold_ln).
    unfolded = accum @ model.W_U + model.b_U
    assert np.abs(unfolded[-1] - ref["logits"][-1]).max() > 1e-2
    # Folded hook_normalized @ folded W_Q + b_Q is the model's hook_q; the same for the MLP input.
    norm1 = cache["normalized", 1, "ln1"]
    np.testing.assert_allclose(np.einsum("pd,hdk->phk", norm1, folded.W_Q[1]) + folded.b_Q[1], ref["blocks.1.attn.hook_q"], atol=1e-4)
    np.testing.assert_allclose(np.einsum("pd,hdk->phk", norm1, folded._W_V[1]) + folded._b_V[1], ref["blocks.1.attn.hook_v"], atol=1e-4)
    norm2 = cache["normalized", 1, "ln2"]
    if model.cfg.gated_mlp:
        np.testing.assert_allclose(norm2 @ folded.W_gate[1], ref["blocks.1.mlp.hook_pre"], atol=1e-4)
        np.testing.assert_allclose(norm2 @ folded.W_in[1], ref["blocks.1.mlp.hook_pre_linear"], atol=1e-4)
    else:
        np.testing.assert_allclose(norm2 @ folded.W_in[1] + folded.b_in[1], ref["blocks.1.mlp.hook_pre"], atol=1e-4)
    # The callable folded norm only centres and scales; unembed(ln_final(x)) is still the logits.
    final = cache["resid_post", -1]
    np.testing.assert_allclose(folded.unembed(folded.ln_final(final)), ref["logits"], atol=2e-4)
    assert np.array_equal(folded.ln_final.w, np.ones(model.cfg.d_model, dtype=np.float32))
    # logit_attrs agree between the views (the directions carry ln_final.w either way).
    stack = cache.decompose_resid(pos_slice=-1)
    t = int(np.argmax(ref["logits"][-1]))
    _, plain_cache = model.run_with_cache(ids)
    np.testing.assert_allclose(cache.logit_attrs(stack, t, pos_slice=-1),
                               plain_cache.logit_attrs(plain_cache.decompose_resid(pos_slice=-1), t, pos_slice=-1), atol=1e-5)
    assert reslens.load(model.cfg.path, fold_ln=True).fold_ln_applied


def test_stacked_weights_ov_qk_and_state_dict():
    name = "random-gpt2.gguf"
    model = get_model(name)
    rm = ref_model(name)
    c = model.cfg
    L, H, d, dh = c.n_layers, c.n_heads, c.d_model, c.d_head
    assert np.array_equal(model.W_O[1, 2], model.W_O[1][2])
    assert model.W_Q[:, 0].shape == (L, d, dh) and np.array_equal(model.W_Q[:, 0], np.stack([model.W_Q[l][0] for l in range(L)]))
    assert np.array_equal(model.W_Q * 2, 2 * np.stack(list(model.W_Q)))
    assert model.W_Q[0:2].shape == (2, H, d, dh) and model.W_Q.ndim == 4
    assert np.array_equal(np.asarray(model.W_in).sum(0), model.W_in.sum(0))
    assert model.W_gate is None and model.state_dict().get("blocks.0.mlp.W_gate") is None
    # OV and QK against the reference's own [out, in] matrices.
    l, h = 1, 2
    v = rm.f64(f"blocks.{l}.attn.v.w")[h * dh:(h + 1) * dh]  # [d_head, d_model]
    o = rm.f64(f"blocks.{l}.attn.o.w")[:, h * dh:(h + 1) * dh]  # [d_model, d_head]
    q = rm.f64(f"blocks.{l}.attn.q.w")[h * dh:(h + 1) * dh]
    k = rm.f64(f"blocks.{l}.attn.k.w")[h * dh:(h + 1) * dh]
    OV, QK = model.OV, model.QK
    assert OV.shape == (L, H, d, d) and QK.shape == (L, H, d, d)
    np.testing.assert_allclose(OV[l, h].AB, v.T @ o.T, atol=1e-5)
    np.testing.assert_allclose(QK[l, h].AB, q.T @ k, atol=1e-5)
    U, S, Vh = OV[l, h].svd()
    np.testing.assert_allclose((U * S) @ Vh, v.T @ o.T, atol=1e-5)
    np.testing.assert_allclose(np.sort(np.abs(OV[l, h].eigenvalues())),
                               np.sort(np.abs(np.linalg.eigvals(v.T @ o.T)))[-dh:], atol=1e-4)
    x = np.ones(d, dtype=np.float32)
    np.testing.assert_allclose(x @ OV[l, h], x @ (v.T @ o.T), atol=1e-4)
    sd = model.state_dict()
    assert sd["blocks.1.attn.W_O"] is model.W_O[1] and sd["unembed.W_U"].shape == (d, c.d_vocab)
    assert sd["pos_embed.W_pos"].shape == (c.n_ctx, d) and sd["blocks.0.ln1.w"].shape == (d,)
    llama = get_model("stories260K.gguf")
    assert llama.W_gate is not None and "blocks.0.mlp.W_gate" in llama.state_dict()
    assert "pos_embed.W_pos" not in llama.state_dict()


def test_python_positions_in_interventions():
    name = "stories260K.gguf"
    model = get_model(name)
    ids = model.to_tokens(PROMPTS[name])
    n = len(ids)
    layer, k = 3, 5

    def ref_zeroed(pos):
        def edit(hook, value, hooks):
            if hook == f"blocks.{layer}.mlp.hook_post":
                value = value.copy()
                value[pos if pos is not None else slice(None), k] = 0
                return value
        return ref_forward(name, ids, edit=edit)["logits"]

    last = model(ids, intervention=reslens.Intervention(ffn=[(layer, k)], position=-1))
    np.testing.assert_allclose(last, ref_zeroed(n - 1), atol=1e-4)  # -1: the last token
    assert np.array_equal(last, model(ids, intervention=reslens.Intervention(ffn=[(layer, k)], position=n - 1)))
    second = model(ids, intervention=reslens.Intervention(ffn=[(layer, k)], position=-2))
    np.testing.assert_allclose(second, ref_zeroed(n - 2), atol=1e-4)
    every = model(ids, intervention=reslens.Intervention(ffn=[(layer, k)]))  # None: every position
    np.testing.assert_allclose(every, ref_zeroed(None), atol=1e-4)
    assert not np.array_equal(every, last)
    with pytest.raises(IndexError, match="out of range"):
        model(ids, intervention=reslens.Intervention(ffn=[(layer, k)], position=n))
    ex = reslens.explain(model, ids, position=-2, top=3)
    assert ex.position == n - 2
    assert reslens.ablate(model, ids, ffn=[(layer, k)], position=-2, activation=True, random=False).position == n - 2
    with pytest.raises(TypeError, match="one token position"):
        reslens.explain(model, ids, position=None)
    with pytest.raises(TypeError, match="every position"):
        reslens.ablate(model, ids, ffn=[(layer, k)], position=None)


def test_foil_aware_rankings_and_text():
    model = get_model("knowledge-gpt2")
    ex = reslens.explain(model, "The capital of France is", target=" Paris", foil=" London", top=10)
    assert ex.has_contrast and ex.ranking == "contrast"
    c = ex.contrast_head
    l, h = np.unravel_index(np.argmax(c), c.shape)
    assert (ex.top_heads[0].layer, ex.top_heads[0].head) == (l, h) and ex.top_heads[0].score == c.max()
    assert ex.top_ffn_neurons[0].score == ex.contrast_ffn_neuron.max()
    df = ex.to_dataframe("heads")
    assert (df.iloc[0]["layer"], df.iloc[0]["head"]) == (l, h) and df.iloc[0]["score"] == c.max()
    assert df.iloc[0]["target_score"] == ex.head[l, h]
    text = ex.to_text()
    section = text.split("Ranked by log p(target) - log p(foil)")[1]
    assert section.split()[1] == f"L{l}H{h}"  # 'heads:' then the best contrast head
    plain = reslens.explain(model, "The capital of France is", target=" Paris", top=10)
    assert plain.ranking == "target" and plain.top_heads[0].score == plain.head.max()
    assert "Ranked by log p(target) - log p(foil)" not in plain.to_text()


def test_errors_a_tl_user_meets():
    model = get_model("random-gpt2.gguf")  # 2 layers
    _, cache = model.run_with_cache("The capital of France is")
    n = model.cfg.n_layers
    with pytest.raises(IndexError, match="out of range"):
        cache["resid_post", n + 5]
    with pytest.raises(KeyError, match="out of range"):
        cache["resid_post", -n - 1]
    assert ("resid_post", 99) not in cache
    with pytest.raises(KeyError, match="stack_head_results"):
        cache["result", 0]
    with pytest.raises(ValueError, match="stack_head_results"):
        model.run_with_cache("Hi", names_filter="blocks.*.attn.hook_result")
    with pytest.raises(TypeError, match="strings"):
        model.tokens(["a", "b"])
    with pytest.raises(TypeError, match="ints"):
        model.to_string(["a", "b"])
    with pytest.raises(TypeError, match="token ids"):
        model.embed(["a"])


def test_notebook_html_is_small():
    model = get_model("stories260K.gguf")
    ex = reslens.explain(model, "Once upon a time", top=10)
    h = ex._repr_html_()
    assert len(h) < 32_000 and "<script" not in h and ex.top_heads[0].label in h
    page = ex.to_html()
    if page is not None:
        assert len(page) > 10 * len(h)  # the full report stays out of every output cell


def test_gemma2_embedding_scale_softcap_and_fold(tmp_path_factory):
    """Gemma 2 (random weights from scripts/make_random_models.py): embed() carries sqrt(d_model),
    unembed() the final softcap, and the folded W_Q/W_gate still give hook_q / hook_pre."""
    import subprocess
    import sys
    from conftest import REPO, shared_dir
    out = tmp_path_factory.mktemp("gemma2")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_random_models.py"), "--which", "tiny", "--out", str(out),
                    "--shared", str(shared_dir()), "--only", "tiny-gemma2.gguf"], check=True, capture_output=True)
    path = out / "tiny-gemma2.gguf"
    model = reslens.load(path)
    assert model.cfg.final_softcap and model.cfg.embedding_scale not in (0.0, 1.0)
    import tl_reference
    rm = tl_reference.reslens_ref.load_model(str(path))
    ids = [1, 5, 9, 200, 17, 3]
    ref = tl_reference.reslens_ref.forward(rm, ids)
    logits, cache = model.run_with_cache(ids)
    np.testing.assert_allclose(model.embed(ids), ref["hook_embed"], atol=1e-6)
    final = cache["resid_post", -1]
    np.testing.assert_allclose(model.unembed(model.ln_final(final)), ref["logits"], atol=1e-4)
    folded = model.folded()
    _, fc = folded.run_with_cache(ids)
    np.testing.assert_allclose(folded.unembed(folded.ln_final(final)), ref["logits"], atol=1e-4)
    np.testing.assert_allclose(np.einsum("pd,hdk->phk", fc["normalized", 1, "ln1"], folded.W_Q[1]),
                               ref["blocks.1.attn.hook_q"], atol=1e-4)
    np.testing.assert_allclose(fc["normalized", 0, "ln2"] @ folded.W_gate[0], ref["blocks.0.mlp.hook_pre"], atol=1e-4)


def test_logit_attrs_with_one_token_per_row_at_every_position():
    model = get_model("stories260K.gguf")
    prompts = ["Once upon a time", "Lily went"]
    logits, cache = model.run_with_cache(prompts)
    targets = [7, 11]
    attrs = cache.logit_attrs(cache.decompose_resid(), tokens=targets)  # [n, batch, pos]
    for i in range(2):
        row = cache.rows[i]
        n = cache.lengths[i]
        np.testing.assert_allclose(attrs[:, i, :n], row.logit_attrs(row.decompose_resid(), tokens=targets[i]), atol=1e-5)
