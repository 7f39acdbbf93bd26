"""A batch dimension (issue 21): lists of prompts and 2-D id arrays run as [batch, pos, ...], every
row bit-identical to the prompt alone and NaN on padding; unbatched results refuse TL's batch index;
explain and ablate take lists."""

from __future__ import annotations

import numpy as np
import pytest

import reslens
from conftest import get_model
from tl_reference import ref_forward

PROMPTS = ["Once upon a time", "The cat sat on the mat and", "Lily"]


@pytest.mark.parametrize("side", ["right", "left"])
def test_rows_are_bit_identical_to_single_runs(side):
    model = get_model("stories260K.gguf")
    logits, cache = model.run_with_cache(PROMPTS, padding_side=side)
    lengths = [len(model.to_tokens(p)) for p in PROMPTS]
    T = max(lengths)
    assert logits.shape == (3, T, model.cfg.d_vocab) and isinstance(cache, reslens.BatchedActivationCache)
    assert cache.has_batch_dim and cache.lengths == lengths
    mask = cache.attention_mask
    for i, p in enumerate(PROMPTS):
        one_logits, one = model.run_with_cache(p)
        n = lengths[i]
        real = slice(0, n) if side == "right" else slice(T - n, T)
        pad = slice(n, T) if side == "right" else slice(0, T - n)
        assert mask[i, real].all() and not mask[i, pad].any()
        assert np.array_equal(logits[i, real], one_logits)  # the same bits
        assert np.isnan(logits[i, pad]).all()
        for name in ("blocks.2.hook_resid_post", "blocks.1.mlp.hook_post", "ln_final.hook_scale", "blocks.0.attn.hook_z"):
            assert np.array_equal(cache[name][i, real], one[name]), name
        pat = cache["pattern", 1]  # [batch, n_heads, q, k]
        assert pat.shape == (3, model.cfg.n_heads, T, T)
        assert np.array_equal(pat[i][:, real, real], one["pattern", 1])
        assert np.isnan(pat[i][:, pad]).all() and np.isnan(pat[i][:, :, pad]).all()
    if side == "left":  # position -1 is every row's last token: TL's logits[:, -1] is right as written
        assert np.array_equal(logits[:, -1], np.stack([model(p)[-1] for p in PROMPTS]))


def test_a_batch_row_matches_the_float64_reference():
    model = get_model("random-gpt2.gguf")
    prompts = ["The capital of France is", "Hello"]
    logits, cache = model.run_with_cache(prompts)
    for i, p in enumerate(prompts):
        ids = model.to_tokens(p)
        ref = ref_forward("random-gpt2.gguf", ids)
        np.testing.assert_allclose(logits[i, :len(ids)], ref["logits"], atol=1e-4)
        np.testing.assert_allclose(cache["resid_post", 1][i, :len(ids)], ref["blocks.1.hook_resid_post"], atol=1e-4)


def test_batch_forms_and_single_shapes():
    model = get_model("stories260K.gguf")
    text = PROMPTS[0]
    single = model(text)
    assert single.shape == (len(model.to_tokens(text)), model.cfg.d_vocab)  # today's shape
    rl, rc = model.run_with_cache([text], remove_batch_dim=True)  # TL's argument: a batch of one, unbatched
    assert np.array_equal(rl, single) and not rc.has_batch_dim
    with pytest.raises(ValueError, match="batch of 1"):
        model.run_with_cache(PROMPTS, remove_batch_dim=True)
    one = model(text, batch=True)
    assert one.shape == (1,) + single.shape and np.array_equal(one[0], single)
    toks = model.to_tokens(PROMPTS)  # [batch, pos], -1 padding
    assert toks.ndim == 2 and (toks[2, len(model.to_tokens(PROMPTS[2])):] == -1).all()
    assert np.array_equal(model(toks), model(PROMPTS), equal_nan=True)
    left = model.to_tokens(PROMPTS, padding_side="left")
    assert np.array_equal(model(left, padding_side="left"), model(PROMPTS, padding_side="left"), equal_nan=True)
    ids = [model.to_tokens(p).tolist() for p in PROMPTS]
    assert np.array_equal(model(ids), model(PROMPTS), equal_nan=True)
    assert model.to_string(toks) == [model.to_string(model.to_tokens(p)) for p in PROMPTS]
    assert model.to_str_tokens(PROMPTS) == model.to_str_tokens(toks) == [model.to_str_tokens(p) for p in PROMPTS]
    # the loss of a batch: the mean over every row's real next-token predictions
    nll = []
    for p in PROMPTS:
        ids1 = model.to_tokens(p)
        n = len(ids1) - 1
        nll.append(model(p, return_type="loss") * n)
    total = sum(len(model.to_tokens(p)) - 1 for p in PROMPTS)
    assert model(PROMPTS, return_type="loss") == pytest.approx(sum(nll) / total, rel=1e-12)
    with pytest.raises(ValueError, match="batch=False"):
        model(PROMPTS, batch=False)
    with pytest.raises(ValueError, match="between tokens"):
        model(np.array([[1, -1, 5]]), batch=True)
    with pytest.raises(TypeError, match="mixes"):
        model(["a", 3])


def test_unbatched_results_refuse_tl_batch_indexing():
    model = get_model("stories260K.gguf")
    logits, cache = model.run_with_cache(PROMPTS[0])
    with pytest.raises(IndexError, match="batch=True"):
        logits[0, -1]  # TL: batch 0, last position; here it would be position 0, vocabulary id -1
    with pytest.raises(IndexError, match="no batch dimension"):
        cache["resid_post", 0][0, -1]
    with pytest.raises(IndexError):
        cache["z", 0][0, -1]  # [pos, n_heads, d_head]
    assert np.array_equal(logits[-1], np.asarray(logits)[-1])  # positions still index as always
    assert logits[2, 5] == np.asarray(logits)[2, 5]
    assert type(logits[-1]) is np.ndarray and type(np.exp(logits)) is np.ndarray
    assert type(logits.sum()) is type(np.asarray(logits).sum()) and f"{logits.max():.2f}"  # scalars stay scalars
    assert np.exp(logits)[0, -1] == np.exp(np.asarray(logits)[0, -1])  # derived arrays are plain numpy
    assert not logits.flags.writeable and np.shares_memory(logits, cache.run.logits)
    batched, bcache = model.run_with_cache(PROMPTS[0], batch=True)
    assert np.array_equal(batched[0, -1], np.asarray(logits)[-1])  # the TL code, with batch=True
    # TL's has_batch_dim: False on an unbatched cache is its own layout; True with a batch of one.
    stack = cache.accumulated_resid(pos_slice=-1)
    plain = cache.apply_ln_to_stack(stack, pos_slice=-1)
    assert np.array_equal(cache.apply_ln_to_stack(stack, pos_slice=-1, has_batch_dim=False), plain)
    assert np.array_equal(cache.apply_ln_to_stack(stack[:, None], pos_slice=-1, has_batch_dim=True)[:, 0], plain)
    assert np.array_equal(bcache.apply_ln_to_stack(stack, pos_slice=-1, has_batch_dim=False), plain)
    assert np.array_equal(bcache.apply_ln_to_stack(bcache.accumulated_resid(pos_slice=-1), pos_slice=-1)[:, 0], plain)
    with pytest.raises(ValueError, match="no batch dimension"):
        cache.apply_ln_to_stack(stack, pos_slice=-1, batch_slice=0)


def test_tl_helpers_on_a_batched_cache():
    model = get_model("stories260K.gguf")
    logits, cache = model.run_with_cache(PROMPTS, padding_side="left")
    b, T, d = len(PROMPTS), logits.shape[1], model.cfg.d_model
    acc, labels = cache.accumulated_resid(apply_ln=True, pos_slice=-1, return_labels=True)
    assert acc.shape == (len(labels), b, d)
    dec = cache.decompose_resid(pos_slice=-1)
    np.testing.assert_allclose(dec.sum(0), cache["resid_post", -1][:, -1], atol=1e-4)
    heads = cache.stack_head_results(pos_slice=-1)
    assert heads.shape == (model.cfg.n_layers * model.cfg.n_heads, b, d)
    neurons = cache.stack_neuron_results(layer=1, neuron_slice=slice(0, 4))
    assert neurons.shape == (4, b, T, d)
    targets = [int(np.argmax(logits[i, -1])) for i in range(b)]
    attrs = cache.logit_attrs(cache.decompose_resid(pos_slice=-1), tokens=targets, pos_slice=-1)
    for i, p in enumerate(PROMPTS):
        row = cache.rows[i]
        np.testing.assert_allclose(heads[:, i], row.stack_head_results(pos_slice=-1), atol=1e-6)
        np.testing.assert_allclose(attrs[:, i], row.logit_attrs(row.decompose_resid(pos_slice=-1), tokens=targets[i],
                                                                pos_slice=-1), atol=1e-5)
        np.testing.assert_allclose(acc[:, i], row.accumulated_resid(apply_ln=True, pos_slice=-1), atol=0)
    with pytest.raises(ValueError, match="batch of 3"):
        cache.apply_ln_to_stack(dec[:, 0], pos_slice=-1, has_batch_dim=False)
    with pytest.raises(ValueError, match="has 3 rows"):
        cache.remove_batch_dim()
    assert model.run_with_cache(PROMPTS[0], batch=True)[1].remove_batch_dim()["resid_pre", 0].shape == (5, d)


def test_explain_and_ablate_take_lists():
    model = get_model("stories260K.gguf")
    exs = reslens.explain(model, PROMPTS[:2], top=5)
    assert [e.to_json() for e in exs] == [reslens.explain(model, p, top=5).to_json() for p in PROMPTS[:2]]
    exs = reslens.explain(model, PROMPTS[:2], target=[" there", " the"], top=3)
    assert [e.target.text for e in exs] == [" there", " the"]
    res = reslens.ablate(model, PROMPTS[:2], ffn=[(4, 10)], random=False)
    assert [r.to_dict() for r in res] == [reslens.ablate(model, p, ffn=[(4, 10)], random=False).to_dict()
                                          for p in PROMPTS[:2]]
    with pytest.raises(ValueError, match="ambiguous"):
        reslens.explain(model, PROMPTS[:2], target=[1, 2])
