"""The bounded method's knobs of reslens.explain / explain_target (bound_tol, projection_cache,
projection_sketch) reach the library, as `reslens explain --bound-tol/--no-projection-cache/--no-sketch`
do; bad values raise. On random-gpt2 (GPT-2's vocabulary, so the bounded method by default)."""
import numpy as np
import pytest

import reslens

from conftest import PROMPTS, get_model

PROMPT = PROMPTS["random-gpt2.gguf"]


@pytest.fixture
def model(tmp_path, monkeypatch):
    # An empty cache folder: a projection cache built by another test would replace the sketch.
    monkeypatch.setenv("RESLENS_CACHE_DIR", str(tmp_path))
    return get_model("random-gpt2.gguf")


def sketched(counts):
    return counts.get("ffn_sketched", 0) + counts.get("attention_sketched", 0)


def is_full(counts):  # the full method records no counts; the bounded one always has some > 0
    return not any(v > 0 for k, v in counts.items() if k.endswith(("_bounded", "_cached", "_sketched")))


def exact(counts):
    return sum(v for k, v in counts.items() if k.endswith("_full"))


def test_projection_sketch_false_sketches_nothing(model):
    default = reslens.explain(model, PROMPT)
    plain = reslens.explain(model, PROMPT, projection_sketch=False)
    assert sketched(plain.method_counts) == 0 and plain.method_counts["ffn_bounded"] > 0
    for name in ("ffn_neuron", "attn_neuron", "head", "head_position"):
        np.testing.assert_allclose(getattr(plain, name), getattr(default, name), atol=2 * 8e-6, rtol=0)
    if sketched(default.method_counts) == 0:
        pytest.skip("the default explain sketched nothing (no AVX2 on this CPU): projection_sketch=False "
                    "is not shown to change anything here")


def test_bound_tol_reaches_the_library(model):
    default = reslens.explain(model, PROMPT)
    loose = reslens.explain(model, PROMPT, bound_tol=1e-3)
    assert exact(loose.method_counts) < exact(default.method_counts)
    target = reslens.explain_target(model, PROMPT, target=" New Delhi", bound_tol=1e-3)
    single = reslens.explain_target(model, PROMPT, target=" New Delhi")
    assert sum(exact(s.method_counts) for s in target.steps) < sum(exact(s.method_counts) for s in single.steps)


def test_method_full_ignores_the_knobs(model):
    full = reslens.explain(model, PROMPT, method="full")
    knobs = reslens.explain(model, PROMPT, method="full", bound_tol=1e-3, projection_sketch=False,
                            projection_cache=False)
    assert full.method_counts == knobs.method_counts
    assert is_full(full.method_counts) and not is_full(reslens.explain(model, PROMPT).method_counts)


def test_projection_cache_false_leaves_the_cache_alone(model):
    before = reslens.explain(model, PROMPT)
    reslens.precompute_projections(model)
    cached = reslens.explain(model, PROMPT)
    ignored = reslens.explain_target(model, PROMPT, projection_cache=False)
    assert cached.method_counts["ffn_cached"] > 0
    assert ignored.steps[0].method_counts == before.method_counts


def test_batch_helper_passes_the_knobs(model):
    rows = reslens.explain(model, [PROMPT, "Once upon a time"], projection_sketch=False, bound_tol=1e-3)
    assert all(sketched(r.method_counts) == 0 for r in rows)
    # Each row is that prompt's own explain with both knobs (bound_tol changes the counts).
    alone = reslens.explain(model, PROMPT, projection_sketch=False, bound_tol=1e-3).method_counts
    assert rows[0].method_counts == alone
    assert alone != reslens.explain(model, PROMPT, projection_sketch=False).method_counts
    results = list(reslens.explain_batch(model, [PROMPT], method="full"))
    assert is_full(results[0].explanation.method_counts) and not is_full(rows[0].method_counts)


@pytest.mark.parametrize("bad", [0, -1e-5, float("nan"), float("inf"), np.float64("inf")])
def test_bad_bound_tol_raises(model, bad):
    with pytest.raises(ValueError, match="bound_tol must be a positive finite number"):
        reslens.explain(model, PROMPT, bound_tol=bad)
    with pytest.raises(ValueError, match="bound_tol must be a positive finite number"):
        reslens.explain_target(model, PROMPT, target=" New Delhi", bound_tol=bad)


def test_bad_bound_tol_type_and_method_raise(model):
    with pytest.raises(TypeError):
        reslens.explain(model, PROMPT, bound_tol="1e-5")
    with pytest.raises(ValueError, match="method must be"):
        reslens.explain(model, PROMPT, method="exact")


def test_core_explain_takes_the_knobs(model):
    # reslens._core.explain (reslens.explain goes through _core.explain_target) takes them as well,
    # and the binding itself (not only the Python wrapper) refuses a bad bound_tol.
    ids = model.tokens(PROMPT, None)
    default = reslens._core.explain(model.core, ids).method_counts
    assert sketched(reslens._core.explain(model.core, ids, projection_sketch=False).method_counts) == 0
    assert exact(reslens._core.explain(model.core, ids, bound_tol=1e-3).method_counts) < exact(default)
    reslens.precompute_projections(model)
    assert reslens._core.explain(model.core, ids).method_counts["ffn_cached"] > 0
    assert reslens._core.explain(model.core, ids, projection_cache=False).method_counts == default
    with pytest.raises(ValueError, match="bound_tol"):
        reslens._core.explain(model.core, ids, bound_tol=float("nan"))


def test_batch_helper_refuses_a_bad_bound_tol(model):
    with pytest.raises(ValueError, match="bound_tol"):
        list(reslens.explain_batch(model, [PROMPT], bound_tol=0.0))
