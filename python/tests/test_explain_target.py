"""reslens.explain with a target of several tokens: the CLI's document and arrays (`reslens explain
--target " ..." --json --out DIR`) byte for byte and bit for bit, each step the explanation of its
own prefix, the sums the sums of the steps, and one-token targets unchanged."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import reslens
from conftest import PROMPTS, get_model, model_path, run_cli

# (model, prompt, target, foil)
CASES = [
    ("stories260K.gguf", "Once upon a time", " there was a", " there lived"),
    ("random-gpt2.gguf", "The capital of France is", " Paris, France", None),
    ("knowledge-gpt2", "The capital of India is", " New Delhi", " Mumbai"),
]


@pytest.mark.parametrize("name,text,target,foil", CASES, ids=[c[0] for c in CASES])
def test_a_target_of_several_tokens_matches_the_cli(name, text, target, foil, tmp_path: pathlib.Path):
    model = get_model(name)
    out = tmp_path / "out"
    flags = ["--target", target] + (["--foil", foil] if foil else [])
    stdout = run_cli(["explain", model_path(name), text, "--json", "--top", "8", "--out", str(out), *flags])
    ex = reslens.explain(model, text, target=target, foil=foil, top=8)
    assert isinstance(ex, reslens.TargetExplanation)
    assert ex.to_json() + "\n" == stdout
    arrays = ex.arrays()
    assert {p.stem for p in out.glob("*.npy")} == set(arrays)
    for key, a in arrays.items():
        ref = np.load(out / f"{key}.npy")
        assert ref.shape == a.shape and np.array_equal(ref, a), key
    j = json.loads(stdout)
    assert [t.id for t in ex.target] == [t["id"] for t in j["target"]["tokens"]]
    assert ex.text == j["target"]["text"] and ex.log_prob == j["target"]["log_prob"]
    assert [(r.label, r.score, list(r.steps)) for r in ex.top_heads] == [
        (x["label"], x["score"], x["steps"]) for x in j["summed"]["top_heads"]]
    assert [(r.label, r.score, list(r.steps)) for r in ex.top_ffn_neurons] == [
        (x["label"], x["score"], x["steps"]) for x in j["summed"]["ffn_neurons"]]
    assert [(r.label, r.score, list(r.steps)) for r in ex.top_attn_neurons] == [
        (x["label"], x["score"], x["steps"]) for x in j["summed"]["attn_neurons"]]
    assert [(r.label, r.score) for r in ex.top_query_ffn_neurons] == [
        (x["label"], x["score"]) for x in j["summed"]["query_ffn_neurons"]]
    assert ex.query_only_per_layer.tolist() == j["summed"]["histograms"]["query_only"]
    for t, step in enumerate(ex.steps):  # each step is the single-position document of its step
        assert json.loads(step.to_json(8)) == j["steps"][t]
    if foil:
        assert ex.has_contrast and ex.foil_log_prob == j["foil"]["log_prob"]
        assert ex.contrast_head.tolist() == j["summed"]["contrast"]["heads"]


def test_each_step_is_the_explanation_of_its_prefix_and_the_sums_add_them():
    model = get_model("stories260K.gguf")  # the full method: a step's bits do not depend on the tolerance
    ids = model.tokens("Once upon a time")
    ex = reslens.explain(model, ids, target=" there was a", top=5)
    assert len(ex.steps) == 3 and ex.n_positions == len(ids) + 2
    w = [t.id for t in ex.target]
    for t, step in enumerate(ex.steps):
        alone = reslens.explain(model, list(ids) + w[:t], target=w[t], top=5)
        assert step.position == len(ids) - 1 + t
        for attr in ("attn_layer", "ffn_layer", "head", "head_position", "ffn_neuron", "attn_neuron", "query_ffn_neuron"):
            assert np.array_equal(getattr(step, attr), getattr(alone, attr)), (t, attr)
    for name in ("ffn_neuron_scores", "head_scores", "attn_neuron_scores", "layer_scores"):
        assert np.allclose(ex.arrays()["summed_" + name], ex.stacked(name).sum(axis=0), rtol=0, atol=1e-12), name
    assert ex.log_prob == pytest.approx(sum(s.log_prob for s in ex.steps), abs=1e-12)
    # The summed layer scores telescope to the steps' bs log-probability increases.
    assert ex.layer_scores.sum() == pytest.approx(ex.bs_log_prob - ex.bs_log_prob_embedding, abs=1e-9)
    assert ex.checks["telescoping"] < 1e-9
    # By ids: the same steps.
    by_ids = reslens.explain(model, ids, target=w, top=5)
    assert np.array_equal(by_ids.ffn_neuron, ex.ffn_neuron)
    assert by_ids.notes == []


def test_one_token_targets_are_unchanged_and_explain_target_wraps_them():
    model = get_model("stories260K.gguf")
    text = PROMPTS["stories260K.gguf"]
    one = reslens.explain(model, text, target=" there", foil=432, top=5)
    assert isinstance(one, reslens.Explanation) and one.has_contrast
    t = reslens.explain_target(model, text, target=" there", foil=432, top=5)
    assert isinstance(t, reslens.TargetExplanation) and len(t.steps) == 1
    assert t.steps[0].to_json() == one.to_json()
    assert np.array_equal(t.ffn_neuron, one.ffn_neuron)
    assert np.array_equal(t.contrast_ffn_neuron, one.contrast_ffn_neuron)
    assert t.foil_log_prob == reslens.explain(model, text, target=432).log_prob


def test_bad_targets_are_python_errors():
    model = get_model("stories260K.gguf")
    with pytest.raises(ValueError, match="the target is empty"):
        reslens.explain(model, "Once upon a time", target="")
    with pytest.raises(ValueError, match="the target is empty"):
        reslens.explain(model, "Once upon a time", target=[])
    with pytest.raises(IndexError, match="outside the vocabulary"):
        reslens.explain(model, "Once upon a time", target=[383, 99999])
    with pytest.raises(ValueError, match="context window"):
        reslens.explain(get_model("random-gpt2.gguf"), "Once upon a time", target=" upon" * 200)
    with pytest.raises(ValueError, match="the foil is the target itself"):
        reslens.explain(model, "Once upon a time", target=" there was", foil=" there was")
    with pytest.raises(TypeError):
        reslens.explain(model, "Once upon a time", target=[1.5, 2])


def test_a_continuation_is_its_tokens_after_the_prompt():
    model = get_model("stories260K.gguf")
    ex = reslens.explain(model, "Once upon a time", continuation=" there was a", top=5)
    assert [t.id for t in ex.target] == [383, 286, 261]
    assert ex.to_json() == reslens.explain(model, "Once upon a time", target=[383, 286, 261], top=5).to_json()
    with pytest.raises(ValueError, match="does not start at a token boundary"):
        reslens.explain(model, "Once upon a ti", continuation="me there")
    with pytest.raises(ValueError, match="not both"):
        reslens.explain(model, "Once", target=" upon", continuation=" upon")


@pytest.mark.parametrize("sampling", [[], ["--temp", "0.8", "--seed", "5"]], ids=["greedy", "sampled"])
def test_a_generated_answer_matches_the_cli(sampling):
    # reslens.explain(model, prompt, generate=N) is `reslens explain --generate N`: the answer
    # `reslens generate` prints, every token explained, the same document and JSON lines.
    name, text = "stories260K.gguf", "Once upon a time"
    model = get_model(name)
    kw = {"temperature": 0.8, "seed": 5} if sampling else {}
    ex = reslens.explain(model, text, generate=5, top=8, **kw)
    assert isinstance(ex, reslens.TargetExplanation)
    gen = json.loads(run_cli(["generate", model_path(name), text, "-n", "5", "--json", *sampling]))
    assert [t.id for t in ex.target] == gen["ids"]
    assert ex.generated["max_tokens"] == 5 and ex.generated["stop"] == "max_tokens"
    assert ex.to_json() + "\n" == run_cli(["explain", model_path(name), text, "--generate", "5", "--json", "--top", "8",
                                           *sampling])
    assert ex.to_jsonl() == run_cli(["explain", model_path(name), text, "--generate", "5", "--jsonl", "--top", "8",
                                     *sampling])
    # The same tokens as a target: the same steps.
    forced = reslens.explain(model, text, target=gen["ids"], top=8)
    assert forced.generated is None
    assert np.array_equal(forced.ffn_neuron, ex.ffn_neuron) and np.array_equal(forced.head, ex.head)


def test_bad_generate_requests_are_python_errors():
    model = get_model("stories260K.gguf")
    with pytest.raises(ValueError, match="generate must be a number of tokens >= 1"):
        reslens.explain(model, "Once", generate=0)
    with pytest.raises(ValueError, match="give no target or continuation"):
        reslens.explain(model, "Once", generate=2, target=" upon")
    with pytest.raises(ValueError, match="need generate=N"):
        reslens.explain(model, "Once", temperature=0.5)
    with pytest.raises(ValueError, match="context window"):
        reslens.explain(model, "Once", generate=5000)
