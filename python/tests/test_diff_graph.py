"""reslens.diff and reslens.graph (docs/diff.md, docs/graph.md): the same documents as the CLI's,
a model against itself exactly zero, refusals as Python exceptions."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

import reslens
from conftest import get_model, model_path

IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376]


def test_diff_of_a_model_with_itself_is_exactly_zero():
    m = get_model("stories260K.gguf")
    d = reslens.diff(m, m, IDS)
    assert d.max_abs_delta == 0.0
    arrays = d.arrays()
    assert "ffn_neuron_scores" in arrays and "attn_neuron_scores" in arrays
    for name, (a, b, delta) in arrays.items():
        assert a.shape == b.shape == delta.shape, name
        assert np.array_equal(a, b) and not np.any(delta), name
    assert d.splits == [] and all(not v["by_delta"] for v in d.changes.values())
    assert "reslens diff" in d._repr_html_() and "max |B - A| 0" in repr(d)


def test_diff_document_is_the_cli_one():
    cli = os.environ.get("RESLENS_CLI")
    if not cli:
        pytest.skip("RESLENS_CLI names the reslens binary under CTest")
    m = get_model("stories260K.gguf")
    path = model_path("stories260K.gguf")
    d = reslens.diff(m, m, IDS, top=5)
    out = subprocess.run([cli, "diff", path, path, "--ids", ",".join(map(str, IDS)), "--bos", "no", "--json",
                          "--top", "5"], check=True, stdout=subprocess.PIPE, text=True).stdout
    assert json.loads(out) == d.json


def test_diff_refuses_other_shapes():
    with pytest.raises(reslens.UnsupportedError, match="different shapes.*L=5.*L="):
        reslens.diff(get_model("stories260K.gguf"), get_model("TinyStories-656K.gguf"), IDS[:3])


def test_graph_json_and_refusals():
    m = get_model("stories260K.gguf")
    g = reslens.graph(m, IDS, node_threshold=1, edge_threshold=1)
    doc = json.loads(g.to_json())
    assert set(doc) >= {"metadata", "qParams", "nodes", "links"}
    assert doc["nodes"][0]["feature_type"] == "logit" and len(doc["links"]) <= g.core.edges_before
    assert len(g.links) > 0 and "<svg" in g._repr_html_()
    pruned = reslens.graph(m, IDS)
    assert 0 < len(pruned.links) < len(g.links)
    with pytest.raises(ValueError, match=r"--node-threshold must be a share of the total in \[0, 1\]"):
        reslens.graph(m, IDS, node_threshold=1.5)
    with pytest.raises(ValueError, match="the graph is empty after pruning"):
        reslens.graph(m, IDS, node_threshold=0)
