"""reslens.precompute_projections: builds the cache explain then uses, with the same scores."""
import os

import numpy as np
import pytest

import reslens

from conftest import model_path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RESLENS_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_precompute_then_explain_uses_the_cache(cache_dir):
    model = reslens.load(model_path("random-gpt2-hf"))
    info = reslens.projection_cache_info(model)
    assert not info["present"] and info["path"].startswith(str(cache_dir))
    before = reslens.explain(model, "The cat sat on the mat because", method="bounded")
    calls = []
    info = reslens.precompute_projections(model, progress=lambda done, total: calls.append((done, total)))
    assert info["present"] and os.path.getsize(info["path"]) == info["bytes"]
    assert calls[-1][0] == calls[-1][1] and len(calls) > 1
    after = reslens.explain(model, "The cat sat on the mat because", method="bounded")
    np.testing.assert_allclose(after.ffn_neuron, before.ffn_neuron, atol=1e-5, rtol=0)
    np.testing.assert_allclose(after.attn_neuron, before.attn_neuron, atol=1e-5, rtol=0)
    np.testing.assert_allclose(after.head, before.head, atol=1e-5, rtol=0)
    # Without the cache the leftovers of the cheap bounds go to the int8 sketch (CPUs with AVX2 or better)
    # or the exact pass.
    assert before.method_counts["ffn_cached"] == 0
    assert before.method_counts["ffn_full"] + before.method_counts.get("ffn_sketched", 0) > 0
    assert after.method_counts["ffn_cached"] > 0 and after.method_counts["ffn_full"] == 0


def test_progress_errors_stop_the_build(cache_dir):
    model = reslens.load(model_path("random-gpt2-hf"))

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reslens.precompute_projections(model, progress=stop)
    assert not reslens.projection_cache_info(model)["present"]
    assert list(cache_dir.iterdir()) == []  # no temporary file left behind
    with pytest.raises(TypeError):
        reslens.precompute_projections(model, progress="yes")
