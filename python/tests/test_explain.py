"""reslens.explain: every score equals the CLI's (`reslens explain --json --out DIR`): the same JSON
document byte for byte, the same .npy arrays bit for bit, and records that agree with the JSON."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import reslens
from conftest import PROMPTS, get_model, model_path, run_cli

# (model, CLI flags, the same as Python keyword arguments)
CASES = [
    ("stories260K.gguf", ["--top", "10"], dict(top=10)),
    ("stories260K.bin", ["--top", "7", "-p", "5"], dict(top=7, position=5)),
    ("TinyStories-656K", ["--top", "12", "--baselines", "--query-top", "5"], dict(top=12, baselines=True, query_top=5)),
    ("TinyStories-656K.gguf", ["--top", "5", "--compat", "notebook", "-p", "-3"],
     dict(top=5, compat="notebook", position=-3)),
    ("random-gpt2.gguf", ["--top", "15", "--target", "Paris", "--foil", " London"],
     dict(top=15, target="Paris", foil=" London")),
    ("random-gpt2-hf", ["--top", "20", "--include-final-bias", "--target", "262", "--foil", "11"],
     dict(top=20, include_final_bias=True, target=262, foil=11)),
    ("knowledge-gpt2", ["--top", "25", "--target", "Paris", "--foil", "Berlin"],
     dict(top=25, target="Paris", foil="Berlin")),
    ("knowledge-gpt2.gguf", ["--top", "30", "--baselines"], dict(top=30, baselines=True)),
]


@pytest.mark.parametrize("name,flags,kwargs", CASES, ids=[c[0] + "-" + "".join(c[1][2:3]) for c in CASES])
def test_explain_matches_the_cli(name, flags, kwargs, tmp_path: pathlib.Path):
    model = get_model(name)
    text = PROMPTS[name]
    out = tmp_path / "out"
    stdout = run_cli(["explain", model_path(name), text, "--json", "--out", str(out), *flags])
    ex = reslens.explain(model, text, **kwargs)

    # The same JSON document, byte for byte (explain_json on both sides, same inputs, same bits).
    assert ex.to_json() + "\n" == stdout
    assert (out / "explanation.json").read_text() == stdout

    # Every array of --out, bit for bit.
    arrays = ex.arrays()
    assert {p.stem for p in out.glob("*.npy")} == set(arrays)
    for key, a in arrays.items():
        ref = np.load(out / f"{key}.npy")
        assert ref.shape == a.shape and np.array_equal(ref, a), key
        assert a.dtype == np.float64

    # The records agree with the JSON's lists.
    j = json.loads(stdout)
    assert (ex.position, ex.target.id, ex.target.text) == (j["position"], j["target"]["id"], j["target"]["text"])
    assert (ex.prob, ex.log_prob, ex.rank, ex.logit) == (j["target"]["prob"], j["target"]["log_prob"],
                                                         j["target"]["rank"], j["target"]["logit"])
    assert ex.bs_log_prob == j["target"]["bs_log_prob"]
    assert ex.frozen_scale == j["frozen_norm"]["scale"]
    assert (ex.foil.id if ex.foil else None) == (j["foil"]["id"] if j["foil"] else None)
    assert [(r.layer, r.attn, r.ffn) for r in ex.layers] == [(x["layer"], x["attn"], x["ffn"]) for x in j["layers"]]
    if j["foil"]:  # with a foil the records rank by the contrast: the JSON's "contrast" lists (issue 21)
        c = j["contrast"]
        heads = np.array(c["heads"])
        order = reslens.top_indices(heads, ex.top)
        H = heads.shape[1]
        assert [(r.layer, r.head, r.score) for r in ex.top_heads] == [(int(i // H), int(i % H), heads.ravel()[i])
                                                                        for i in order]
        assert [(r.label, r.score) for r in ex.top_ffn_neurons] == [(x["label"], x["score"]) for x in c["ffn_neurons"]]
        assert [(r.label, r.score) for r in ex.top_attn_neurons] == [(x["label"], x["score"]) for x in c["attn_neurons"]]
    else:
        assert [(r.label, r.score) for r in ex.top_heads] == [(x["label"], x["score"]) for x in j["top_heads"]]
        assert [(r.label, r.score, r.coef) for r in ex.top_ffn_neurons] == [
            (x["label"], x["score"], x["coef"]) for x in j["ffn_neurons"]]
        assert [(r.layer, r.head, r.dim, r.pos, r.label, r.score, r.coef) for r in ex.top_attn_neurons] == [
            (x["layer"], x["head"], x["dim"], x["pos"], x["label"], x["score"], x["coef"]) for x in j["attn_neurons"]]
    assert [(r.label, r.score) for r in ex.top_query_ffn_neurons] == [
        (x["label"], x["score"]) for x in j["query_ffn_neurons"]]
    assert [(p.label, p.rank, p.prob, p.log_prob, list(p.top_tokens)) for p in ex.lens] == [
        (x["label"], x["rank"], x["prob"], x["log_prob"], [t["text"] for t in x["top"]]) for x in j["lens"]]
    assert ex.head.tolist() == j["heads"]
    assert ex.checks == j["checks"]
    assert sorted(ex.q1) == sorted(j["query_layers"]["ffn_value_neurons"]["variants"])
    assert list(ex.q1)[0] == j["query_layers"]["ffn_value_neurons"]["key"]
    for key, slots in j["query_layers"]["ffn_value_neurons"]["variants"].items():
        assert ex.q1[key].tolist() == [s["score"] for s in slots]
    assert ex.q2.tolist() == [s["score"] for s in j["query_layers"]["attn_value_neurons"]["slots"]]
    assert ex.q5_query_only.tolist() == j["histograms"]["query_only"]
    assert ex.q5_query_value.tolist() == j["histograms"]["query_value"]
    if ex.has_contrast:
        assert ex.contrast_head.tolist() == j["contrast"]["heads"]
        assert [(l, a, f) for l, (a, f) in enumerate(zip(ex.contrast_attn_layer, ex.contrast_ffn_layer))] == [
            (x["layer"], x["attn"], x["ffn"]) for x in j["contrast"]["layers"]]
    # The first ranked FFN neuron's vocabulary view is the JSON's.
    if ex.top_ffn_neurons and "promoted" in j["ffn_neurons"][0]:
        r = j["ffn_neurons"][0]
        assert ex.ffn_neuron_view(r["layer"], r["neuron"])["promoted"] == r["promoted"]
    hp = j["head_positions"][0]
    views = ex.head_position_views(hp["layer"], hp["head"])
    assert [(v["pos"], v["score"], v["value"]) for v in views] == [(p["pos"], p["score"], p["value"])
                                                                   for p in hp["positions"]]


def test_text_report_and_save_match_the_cli(tmp_path: pathlib.Path):
    name = "stories260K.gguf"
    text = PROMPTS[name]
    ex = reslens.explain(get_model(name), text, top=20)
    assert ex.to_text() == run_cli(["explain", model_path(name), text])
    ex.save(tmp_path)
    assert (tmp_path / "explanation.json").read_text() == ex.to_json() + "\n"
    assert np.array_equal(np.load(tmp_path / "ffn_neuron_scores.npy"), ex.ffn_neuron)
    page = ex.to_html()
    if page is not None:  # the library has reslens::explain_html: the same page as `--html FILE`
        run_cli(["explain", model_path(name), text, "--html", str(tmp_path / "report.html")])
        assert (tmp_path / "report.html").read_text(encoding="utf-8") == page


def test_arrays_are_read_only_views_that_outlive_the_explanation():
    import gc

    ex = reslens.explain(get_model("stories260K.gguf"), PROMPTS["stories260K.gguf"])
    a, b = ex.ffn_neuron, ex.ffn_neuron
    assert np.shares_memory(a, b)
    with pytest.raises(ValueError, match="read-only"):
        a[0, 0] = 0
    keep = a.copy()
    del ex, b
    gc.collect()
    assert np.array_equal(a, keep)


def test_shapes_and_cache():
    model = get_model("stories260K.bin")
    c = model.cfg
    text = PROMPTS["stories260K.bin"]
    ex = reslens.explain(model, text, position=3)
    P1 = 4
    assert ex.n_positions == P1
    assert ex.head.shape == (c.n_layers, c.n_heads)
    assert ex.head_pos.shape == ex.attn_weight.shape == (c.n_layers, c.n_heads, P1)
    assert ex.ffn_neuron.shape == ex.ffn_coef.shape == ex.q3.shape == (c.n_layers, c.d_mlp)
    assert ex.attn_neuron.shape == ex.attn_coef.shape == (c.n_layers, c.n_heads, c.d_head, P1)
    assert ex.contrast_head is None and ex.foil is None and ex.baselines == {}
    assert len(ex.lens) == 2 * c.n_layers + 1
    logits, cache = model.run_with_cache(text)
    assert np.array_equal(ex.logits, logits)
    assert np.array_equal(ex.cache["resid_post", -1], cache["resid_post", -1])
    # The attribution is exact: layer scores sum to the change of bs log-prob from the embedding.
    total = ex.attn_layer.sum() + ex.ffn_layer.sum()
    assert total == pytest.approx(ex.bs_log_prob - ex.bs_log_prob_embedding, abs=1e-9)
    proj = ex.project_tokens(cache["resid_post", -1][3])
    assert len(proj["top"]) == 10


def test_dataframe_and_html():
    pd = pytest.importorskip("pandas")
    ex = reslens.explain(get_model("TinyStories-656K"), PROMPTS["TinyStories-656K"], foil=" play", top=8)
    layers = ex.to_dataframe("layers")
    assert list(layers.columns) == ["layer", "attn", "ffn", "contrast_attn", "contrast_ffn"]
    assert np.array_equal(layers["attn"].to_numpy(), ex.attn_layer)
    comps = ex.to_dataframe()
    assert len(comps) == 3 * 8 and comps["score"].is_monotonic_decreasing
    ffn = ex.to_dataframe("ffn_neurons")
    assert len(ffn) == ex.ffn_neuron.size
    assert (ffn.iloc[0]["layer"], ffn.iloc[0]["neuron"]) == (ex.top_ffn_neurons[0].layer, ex.top_ffn_neurons[0].neuron)
    attn = ex.to_dataframe("attn_neurons", top=5)
    assert list(attn.columns) == ["layer", "head", "dim", "pos", "score", "target_score", "coef"] and len(attn) == 5
    assert attn["score"].iloc[0] == ex.contrast_attn_neuron.max()  # the foil's contrast ranks (issue 21)
    assert len(ex.to_dataframe("lens")) == len(ex.lens)
    with pytest.raises(ValueError):
        ex.to_dataframe("nope")
    assert isinstance(layers, pd.DataFrame)
    h = ex._repr_html_()  # small tables in every build; the full page only through show()/save_html()
    assert h.startswith('<div class="reslens-explain">') and "Top FFN neurons" in h and len(h) < 32_000
    h = ex._html_tables()
    assert ex.top_ffn_neurons[0].label in h
    assert "&lt;" in reslens.explain(get_model("stories260K.gguf"), "a <b> tag", top=3)._html_tables()  # escaped


def test_target_resolution_and_notes():
    gpt2 = get_model("random-gpt2.gguf")
    assert gpt2.core.resolve_token(" Paris", "target") == ([gpt2.to_single_token(" Paris")], "")
    paris = gpt2.core.resolve_token("Paris", "target")[0]  # 'Paris' and ' Paris': the likelier wins
    assert gpt2.to_single_token(" Paris") in paris and len(paris) == 2
    assert gpt2.core.resolve_token("262", "target") == ([262], "")
    model = get_model("stories260K.gguf")
    text = PROMPTS["stories260K.gguf"]
    multi = reslens.explain(model, text, target=" Parisianization", top=3)  # several tokens: every step
    assert isinstance(multi, reslens.TargetExplanation)
    assert any("tokens" in n for n in multi.notes)
    # The library's rule for every front door (reslens/token_names.h): the text's tokens from the
    # first that is not a lone space piece, as `reslens explain --target` and the server split it.
    pieces = [int(t) for t in model.to_tokens(" Parisianization", prepend_bos=False)]
    first = next(i for i, t in enumerate(pieces) if model.to_single_str_token(t).strip(" \u2581") != "")
    assert [t.id for t in multi.target] == pieces[first:]
    by_id = reslens.explain(model, text, target=int(multi.target[0].id), top=3)
    assert np.array_equal(multi.steps[0].ffn_neuron, by_id.ffn_neuron) and by_id.notes == []


def test_names_before_0_2_are_aliases_of_the_new_ones():
    # docs/naming.md: one name per quantity; the old names answer until 0.2, equal to the new.
    from reslens.explain import BASELINE_SCORES, RENAMED_ATTRIBUTES, RENAMED_BASELINES
    model = get_model("stories260K.gguf")
    ex = reslens.explain(model, PROMPTS["stories260K.gguf"], top=3, baselines=True)
    assert RENAMED_ATTRIBUTES == {"head_pos": "head_position", "q1": "ffn_value_query_layers",
                                  "q2": "attn_value_query_layers", "q2_avg_layer": "attn_value_query_avg_layer",
                                  "q3": "query_ffn_neuron", "q5_query_only": "query_only_per_layer",
                                  "q5_query_value": "query_value_per_layer"}
    for old, new in RENAMED_ATTRIBUTES.items():
        a, b = getattr(ex, old), getattr(ex, new)
        if isinstance(b, dict):
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in b), old
        else:
            assert np.array_equal(a, b), old
    assert tuple(sorted(ex.baselines)) == tuple(sorted(BASELINE_SCORES))
    assert RENAMED_BASELINES == {"logprob_increase": "log_prob_increase", "logprob": "log_prob"}
    for old, new in RENAMED_BASELINES.items():
        assert np.array_equal(ex.baselines[old], ex.baselines[new])
        doc = json.loads(ex.to_json())["baselines"]
        assert doc[old] == doc[new]
    assert "head_position_scores" in ex.arrays() and "query_ffn_neuron_scores" in ex.arrays()
