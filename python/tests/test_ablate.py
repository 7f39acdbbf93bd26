"""reslens.ablate mirrors `reslens ablate --json` (the same target, stats and seeded random baseline)."""

from __future__ import annotations

import json

import pytest

import reslens
from conftest import PROMPTS, cli_json, get_model, model_path

CASES = [
    ("stories260K.gguf", ["--ffn", "4:10,4:11,3:5", "--heads", "2:1"], dict(ffn=[(4, 10), (4, 11), (3, 5)], heads="2:1")),
    ("random-gpt2.gguf", ["--attn", "1:2:3,0:1:5", "--target", "Paris", "--seed", "7"],
     dict(attn=["1:2:3", (0, 1, 5)], target="Paris", seed=7)),
    ("TinyStories-656K", ["--ffn", "1:3", "--attn", "1:0:2@4", "--activation", "-p", "6"],
     dict(ffn="1:3", attn=[(1, 0, 2, 4)], activation=True, position=6)),
    ("random-gpt2-hf", ["--heads", "0:0,1:3", "--no-random", "--target", "11"], dict(heads=[(0, 0), (1, 3)],
                                                                                        random=False, target=11)),
]


@pytest.mark.parametrize("name,flags,kwargs", CASES, ids=[c[0] for c in CASES])
def test_ablate_matches_the_cli(name, flags, kwargs):
    model = get_model(name)
    text = PROMPTS[name]
    cli = cli_json(["ablate", model_path(name), text, "--json", *flags])
    res = reslens.ablate(model, text, **kwargs)
    assert res.to_dict() == cli
    assert json.loads(res.to_json()) == cli
    assert res.level == ("activation" if kwargs.get("activation") else "parameter")
    assert res.before.rank >= 1 and 0 < res.before.prob <= 1
    assert isinstance(res.prob_change, float)


def test_ablating_top_neurons_lowers_the_target():
    model = get_model("stories260K.gguf")
    text = PROMPTS["stories260K.gguf"]
    ex = reslens.explain(model, text, top=10)
    res = reslens.ablate(model, text, ffn=[(r.layer, r.neuron) for r in ex.top_ffn_neurons], target=ex.target.id)
    assert res.target == ex.target
    assert res.after.prob < res.before.prob
    assert res.before.prob == pytest.approx(ex.prob)


def test_ablate_errors():
    model = get_model("stories260K.gguf")
    text = PROMPTS["stories260K.gguf"]
    with pytest.raises(ValueError, match="nothing to ablate"):
        reslens.ablate(model, text)
    with pytest.raises(ValueError, match="activation"):
        reslens.ablate(model, text, attn="1:2:3@2")
    with pytest.raises(ValueError):
        reslens.ablate(model, text, ffn="1-2")
    with pytest.raises(IndexError):
        reslens.ablate(model, text, ffn=[(99, 0)])
    with pytest.raises(IndexError):
        reslens.ablate(model, text, ffn=[(0, 1)], position=100)
