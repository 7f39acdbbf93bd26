"""The bounded method's knobs of reslens.explain / explain_target (bound_tol, projection_cache,
projection_sketch, extended_head) reach the library, as `reslens explain --bound-tol/--no-projection-cache/--no-sketch`
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


def test_extended_head_reaches_the_library(model):
    # 0 (no extended split) against 2048: the same scores within 2 x bound_tol, recorded as asked; on
    # this GPT-2-vocabulary model the 2048-token split certifies some vectors the first bound leaves.
    wide = reslens.explain(model, PROMPT, extended_head=2048)
    none = reslens.explain(model, PROMPT, extended_head=0)
    assert wide.options["extended_head"] == 2048 and none.options["extended_head"] == 0
    assert reslens.explain(model, PROMPT).options["extended_head"] == -1
    for name in ("ffn_neuron", "attn_neuron", "head", "head_position"):
        np.testing.assert_allclose(getattr(none, name), getattr(wide, name), atol=2 * 8e-6, rtol=0)
    if sketched(wide.method_counts) > 0:  # the split is tried before the sketch, so it certifies some
        assert wide.method_counts["ffn_bounded"] + wide.method_counts["attention_bounded"] > \
            none.method_counts["ffn_bounded"] + none.method_counts["attention_bounded"]
    steps = reslens.explain_target(model, PROMPT, target=" New Delhi", extended_head=0).steps
    assert all(s.options["extended_head"] == 0 for s in steps)
    for bad in (-2, 1 << 21):
        with pytest.raises(ValueError, match="extended_head must be -1"):
            reslens.explain(model, PROMPT, extended_head=bad)
    for bad in ("2048", True, 1.5):
        with pytest.raises(TypeError, match="extended_head"):
            reslens.explain(model, PROMPT, extended_head=bad)


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


# reslens.diff and reslens.graph take the same knobs (reslens diff / graph --method ...): both sides
# of a diff, and the graph's explanation, are computed as reslens.explain computes them with those
# knobs (the same bits), and the documents record them.
def test_diff_takes_the_knobs(model):
    default = reslens.explain(model, PROMPT)
    for knobs in ({}, {"method": "full"}, {"projection_sketch": False}, {"bound_tol": 1e-3}, {"extended_head": 0},
                  {"extended_head": 2048}):
        d = reslens.diff(model, model, PROMPT, **knobs)
        ex = reslens.explain(model, PROMPT, **knobs)
        a, b, delta = d.arrays()["ffn_neuron_scores"]
        assert np.array_equal(a, ex.ffn_neuron) and np.array_equal(b, ex.ffn_neuron), knobs
        assert d.max_abs_delta == 0.0
        assert d.json["options"] == {"method": knobs.get("method", "auto"), "bound_tol": knobs.get("bound_tol", 8e-6),
                                     "projection_cache": True, "projection_sketch": knobs.get("projection_sketch", True),
                                     "extended_head": knobs.get("extended_head", -1)}
        if knobs.get("method") == "full" or knobs.get("bound_tol"):  # these change the scores' bits here
            assert not np.array_equal(a, default.ffn_neuron), knobs


def test_graph_takes_the_knobs(model):
    def scores(g):
        return {n["node_id"]: n["score"] for n in g.nodes if "score" in n}
    default = reslens.graph(model, PROMPT, node_threshold=1, edge_threshold=1)
    full = reslens.graph(model, PROMPT, node_threshold=1, edge_threshold=1, method="full")
    assert default.metadata["generation_settings"]["method"] == "auto"
    settings = full.metadata["generation_settings"]
    assert (settings["method"], settings["bound_tol"], settings["projection_cache"], settings["projection_sketch"]) == \
        ("full", 8e-6, True, True)
    assert scores(full) != scores(default)
    loose = reslens.graph(model, PROMPT, node_threshold=1, edge_threshold=1, bound_tol=1e-3, projection_sketch=False)
    assert loose.metadata["generation_settings"]["bound_tol"] == 1e-3
    assert loose.metadata["generation_settings"]["projection_sketch"] is False
    assert default.metadata["generation_settings"]["extended_head"] == -1
    # extended_head reaches the graph's explanation: generation_settings reads it from the options the
    # explanation was computed with
    for extend in (0, 2048):
        g = reslens.graph(model, PROMPT, node_threshold=1, edge_threshold=1, extended_head=extend)
        assert g.metadata["generation_settings"]["extended_head"] == extend


@pytest.mark.parametrize("call", ["diff", "graph"])
def test_diff_and_graph_refuse_bad_knobs(model, call):
    def run(**knobs):
        if call == "diff":
            return reslens.diff(model, model, PROMPT, **knobs)
        return reslens.graph(model, PROMPT, **knobs)
    for knobs, error, match in (({"method": "exact"}, ValueError, "method must be 'auto', 'full' or 'bounded'"),
                                ({"method": 3}, TypeError, "method is"),
                                ({"bound_tol": 0}, ValueError, "bound_tol must be a positive finite number"),
                                ({"bound_tol": -1e-5}, ValueError, "bound_tol must be a positive finite number"),
                                ({"bound_tol": float("nan")}, ValueError, "not nan"),
                                ({"bound_tol": float("inf")}, ValueError, "not inf"),
                                ({"bound_tol": "1e-5"}, TypeError, "bound_tol is a number"),
                                ({"bound_tol": True}, TypeError, "bound_tol is a number"),
                                ({"extended_head": -2}, ValueError, "extended_head must be -1"),
                                ({"extended_head": 1 << 21}, ValueError, "extended_head must be -1"),
                                ({"extended_head": "2048"}, TypeError, "extended_head"),
                                ({"extended_head": 1.5}, TypeError, "extended_head")):
        with pytest.raises(error, match=match) as e:
            run(**knobs)
        assert "\n" not in str(e.value), knobs


def test_diff_batch_passes_the_knobs_and_refuses_bad_ones(model):
    results = list(reslens.diff_batch(model, model, [PROMPT], method="full"))
    assert results[0].diff.json["options"]["method"] == "full"
    full = reslens.explain(model, PROMPT, method="full").ffn_neuron
    assert np.array_equal(results[0].diff.arrays()["ffn_neuron_scores"][0], full)
    # A bad knob is the call's error, not every prompt's.
    with pytest.raises(ValueError, match="bound_tol"):
        list(reslens.diff_batch(model, model, [PROMPT], bound_tol=-1.0))
    with pytest.raises(ValueError, match="method must be"):
        list(reslens.diff_batch(model, model, [PROMPT], method="exact"))
