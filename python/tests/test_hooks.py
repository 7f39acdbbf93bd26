"""Forward hooks from Python (reslens/hooks.py, python/src/bind_hooks.cpp): TransformerLens's
``fn(act, hook) -> act | None``, ``run_with_hooks``, ``model.hooks(...)``, ``add_hook`` /
``reset_hooks``, and run_with_cache under hooks. Zeroing through a hook is checked bit for bit
against the library's own interventions (a separate code path: Intervention zeroes inside the pass)."""

from __future__ import annotations

import numpy as np
import pytest

import reslens
from conftest import PROMPTS, get_model

MODELS = ["stories260K.gguf", "random-gpt2.gguf"]


@pytest.fixture(params=MODELS)
def named(request):
    return request.param, get_model(request.param)


def test_a_no_op_hook_on_every_point_changes_nothing(named):
    name, m = named
    prompt = PROMPTS[name]
    logits, cache = m.run_with_cache(prompt)
    seen = {}

    def look(act, hook):
        seen[hook.name] = act.copy()
        assert act.flags.writeable and act.dtype == np.float32

    with m.hooks(fwd_hooks=[(lambda n: True, look)]):
        hooked_logits, hooked_cache = m.run_with_cache(prompt)
    assert np.array_equal(logits, hooked_logits)
    assert sorted(seen) == sorted(cache.keys()) == sorted(m.hook_names())
    for k in cache:
        assert np.array_equal(seen[k], cache[k]), k            # the hook saw what the run records
        assert np.array_equal(hooked_cache[k], cache[k]), k


def test_hook_point_name_layer_and_ctx(named):
    _, m = named
    points = []

    def fn(act, hook):
        points.append((hook.name, hook.layer() if hook.name.startswith("blocks.") else None))
        hook.ctx["calls"] = hook.ctx.get("calls", 0) + 1

    m.run_with_hooks("abc", fwd_hooks=[("blocks.*.hook_resid_post", fn), ("hook_embed", fn)])
    n = m.cfg.n_layers
    assert points[0] == ("hook_embed", None)
    assert points[1:] == [(f"blocks.{l}.hook_resid_post", l) for l in range(n)]
    with pytest.raises(ValueError, match="no layer"):
        reslens.HookPoint("hook_embed", {}).layer()


@pytest.mark.parametrize("style", ["in_place", "return_new", "return_float64"])
def test_zeroing_a_head_through_hook_z_is_the_interventions_result(named, style):
    name, m = named
    prompt = PROMPTS[name]
    layer, head = m.cfg.n_layers - 1, 1

    def zero_head(z, hook):
        assert z.shape[1:] == (m.cfg.n_heads, m.cfg.d_head)
        if style == "in_place":
            z[:, head] = 0.0
            return None
        out = z.astype(np.float64) if style == "return_float64" else z.copy()
        out[:, head] = 0.0
        return out

    got = m.run_with_hooks(prompt, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", zero_head)])
    want = m.forward(prompt, intervention=reslens.Intervention(heads=[(layer, head)]))
    plain = m.forward(prompt)
    assert not np.array_equal(want, plain)
    assert np.array_equal(got, want)


def test_zeroing_a_neuron_at_one_position_through_hook_post_is_the_interventions_result(named):
    name, m = named
    prompt = PROMPTS[name]
    n_pos = len(m.tokens(prompt))

    def zero(post, hook):
        post[n_pos - 1, 7] = 0.0

    got = m.run_with_hooks(prompt, fwd_hooks=[("blocks.0.mlp.hook_post", zero)])
    want = m.forward(prompt, intervention=reslens.Intervention(ffn=[(0, 7)], position=n_pos - 1))
    assert np.array_equal(got, want)
    assert not np.array_equal(got, m.forward(prompt))


def test_run_with_cache_under_hooks_records_the_hooked_values(named):
    name, m = named
    prompt = PROMPTS[name]

    def add_one(x, hook):
        return x + 1.0

    with m.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", add_one)]):
        _, c = m.run_with_cache(prompt, names_filter=["hook_embed", "blocks.0.hook_resid_pre"])
    base = c["hook_embed"] + (c.model.run_with_cache(prompt, names_filter="hook_pos_embed")[1]["hook_pos_embed"]
                              if m.cfg.positional_embedding_type == "standard" else 0.0)
    assert np.array_equal(c["blocks.0.hook_resid_pre"], base + 1.0)
    assert not c["blocks.0.hook_resid_pre"].flags.writeable      # the cache stays read-only


def test_context_manager_add_hook_and_reset_hooks():
    m = get_model("stories260K.gguf")
    plain = m.forward("Once upon")
    calls = []

    def count(x, hook):
        calls.append(hook.name)

    def scale(x, hook):
        return x * 0.5

    with m.hooks(fwd_hooks=[("blocks.1.hook_resid_pre", scale)]):
        inside = m.forward("Once upon")
        assert not np.array_equal(inside, plain)
    assert np.array_equal(m.forward("Once upon"), plain)          # removed on exit

    m.add_hook("blocks.1.hook_resid_pre", scale)
    m.add_hook("hook_embed", count, is_permanent=True)
    try:
        assert np.array_equal(m("Once upon"), inside)              # model(...) runs the hooks too
        m.reset_hooks()                                           # the permanent one stays
        assert np.array_equal(m("Once upon"), plain) and len(calls) == 2
        m.reset_hooks(including_permanent=True)
        m("Once upon")
        assert len(calls) == 2
        with pytest.raises(RuntimeError):  # the context manager removes its hooks after an error too
            with m.hooks(fwd_hooks=[("hook_embed", count)]):
                raise RuntimeError("inside")
        m("Once upon")
        assert len(calls) == 2
        # reset_hooks_end=False keeps run_with_hooks's hooks attached, as TL.
        m.run_with_hooks("Once upon", fwd_hooks=[("hook_embed", count)], reset_hooks_end=False)
        m("Once upon")
        assert len(calls) == 4
    finally:
        m.reset_hooks(including_permanent=True)


def test_return_types_and_loss():
    m = get_model("stories260K.gguf")

    def scale(x, hook):
        return x * 0.9

    hooks = [("blocks.0.hook_mlp_out", scale)]
    logits, loss = m.run_with_hooks("Once upon a time", fwd_hooks=hooks, return_type="both")
    assert loss == m.run_with_hooks("Once upon a time", fwd_hooks=hooks, return_type="loss")
    assert loss != m.forward("Once upon a time", return_type="loss")
    assert m.run_with_hooks("Once upon a time", fwd_hooks=hooks, return_type=None) is None


def test_refusals():
    m = get_model("stories260K.gguf")
    with pytest.raises(ValueError, match="did you mean"):
        m.run_with_hooks("abc", fwd_hooks=[("blocks.0.hook_resid_pr", lambda x, h: None)])
    with pytest.raises(IndexError, match="layer"):
        m.run_with_hooks("abc", fwd_hooks=[(f"blocks.{m.cfg.n_layers}.hook_resid_pre", lambda x, h: None)])
    with pytest.raises(ValueError, match="does not compute"):
        m.run_with_hooks("abc", fwd_hooks=[("hook_pos_embed", lambda x, h: None)])
    with pytest.raises(ValueError, match=r"returned shape \[2\]"):
        m.run_with_hooks("abc", fwd_hooks=[("hook_embed", lambda x, h: np.zeros(2))])
    with pytest.raises(TypeError, match="returned a str"):
        m.run_with_hooks("abc", fwd_hooks=[("hook_embed", lambda x, h: "no")])
    with pytest.raises(reslens.UnsupportedError, match="ln1.hook_scale"):
        m.run_with_hooks("abc", fwd_hooks=[("blocks.0.ln1.hook_scale", lambda x, h: x * 2)])
    with pytest.raises(reslens.UnsupportedError, match="causal mask"):
        m.run_with_hooks("abc", fwd_hooks=[("blocks.0.attn.hook_pattern", lambda x, h: np.full_like(x, 0.25))])
    with pytest.raises(NotImplementedError):
        m.run_with_hooks("abc", bwd_hooks=[("hook_embed", lambda x, h: None)])
    with pytest.raises(NotImplementedError):
        m.add_hook("hook_embed", lambda x, h: None, dir="bwd")

    class Boom(Exception):
        pass

    def boom(x, h):
        raise Boom("from the hook")

    with pytest.raises(Boom, match="from the hook"):          # the hook's own exception comes through
        m.run_with_hooks("abc", fwd_hooks=[("blocks.1.attn.hook_z", boom)])
    assert np.array_equal(m.forward("abc"), m.forward("abc"))  # and the model still runs


def test_explain_ablate_and_generate_refuse_to_ignore_attached_hooks():
    m = get_model("stories260K.gguf")
    with m.hooks(fwd_hooks=[("hook_embed", lambda x, h: None)]):
        with pytest.raises(RuntimeError, match="does not run forward hooks"):
            reslens.explain(m, "Once upon a time")
        with pytest.raises(RuntimeError, match="does not run forward hooks"):
            reslens.ablate(m, "Once upon a time", ffn=[(0, 1)])
        with pytest.raises(RuntimeError, match="does not run forward hooks"):
            m.generate("Once upon a time", max_new_tokens=2)
        with pytest.raises(RuntimeError, match="does not run forward hooks"):
            reslens.lens(m, "Once upon a time")
    reslens.lens(m, "Once upon a time")  # fine again once they are gone


def test_hooks_give_the_same_bits_with_any_thread_count():
    m = get_model("stories260K.gguf")

    def steer(x, hook):
        x[-1] += 0.5

    a = m.run_with_hooks("Once upon a time", fwd_hooks=[("blocks.2.hook_resid_mid", steer)], threads=1)
    b = m.run_with_hooks("Once upon a time", fwd_hooks=[("blocks.2.hook_resid_mid", steer)], threads=3)
    assert np.array_equal(a, b)
