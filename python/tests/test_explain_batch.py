"""reslens.explain_batch: each result is reslens.explain's for that item, and its to_json() is the line
`reslens explain --batch` writes (byte for byte); malformed and unexplainable items are errors that do
not stop the others, or raise with strict=True."""

from __future__ import annotations

import json
import pathlib

import pytest

import reslens
from conftest import get_model, model_path, run_cli

ITEMS = [
    {"prompt": "Once upon a time, there was a little girl named Lily.", "target": " She", "id": "a"},
    {"prompt": "One day, Lily and her mom went to the", "id": 7},
    {"prompt": "Once upon a", "target": " time", "position": 2},
    {"prompt": "Once upon a", "position": 40, "id": "too far"},
    {"prompt": "Lily was happy.", "target": " She was"},
]


def test_results_equal_explain_and_the_cli(tmp_path: pathlib.Path):
    name = "stories260K.gguf"
    model = get_model(name)
    batch = tmp_path / "prompts.jsonl"
    batch.write_text("".join(json.dumps(x) + "\n" for x in ITEMS[:3]) + "not json\n" +
                     "".join(json.dumps(x) + "\n" for x in ITEMS[3:]))
    results = list(reslens.explain_batch(model, str(batch), top=20))
    assert [r.line for r in results] == [1, 2, 3, 4, 5, 6]
    assert [r.ok for r in results] == [True, True, True, False, False, True]
    assert results[3].error == "not a JSON object"
    assert "position 40 is out of range" in results[4].error and results[4].id == "too far"
    one = reslens.explain(model, ITEMS[0]["prompt"], target=" She", top=20)
    assert results[0].explanation.to_json() == one.to_json()
    assert isinstance(results[5].explanation, reslens.TargetExplanation)
    # The CLI's batch writes the same lines (it skips the malformed line; Python reports it).
    out = tmp_path / "out"
    run_cli(["explain", model_path(name), "--batch", str(batch), "-o", str(out), "-q"])
    cli_lines = (out / "explanations.jsonl").read_text().splitlines()
    py_lines = [r.to_json() for r in results if r.error != "not a JSON object"]
    assert len(cli_lines) == len(py_lines) == 5
    for c, p in zip(cli_lines, py_lines):
        assert json.loads(c) == json.loads(p)


def test_lists_of_texts_and_strict():
    model = get_model("stories260K.gguf")
    results = list(reslens.explain_batch(model, ["Once upon a", {"prompt": "One day"}], top=3))
    assert [r.line for r in results] == [1, 2] and all(r.ok for r in results)
    assert results[0].explanation.to_json() == reslens.explain(model, "Once upon a", top=3).to_json()
    bad = [{"prompt": "Once upon a", "position": 40}]
    assert not next(reslens.explain_batch(model, bad)).ok
    with pytest.raises(IndexError):
        list(reslens.explain_batch(model, bad, strict=True))
    with pytest.raises(ValueError, match="no \"prompt\" text"):
        list(reslens.explain_batch(model, [{"target": " a"}], strict=True))
    with pytest.raises(FileNotFoundError):
        list(reslens.explain_batch(model, "no-such-file.jsonl"))
