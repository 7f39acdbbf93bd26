"""reslens.diff_batch: each result is reslens.diff's for that item, and its to_json() is the line
`reslens diff A B --batch` writes (byte for byte); malformed and uncomparable items are errors that do
not stop the others, or raise with strict=True; models of different shapes raise at once."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

import reslens
from conftest import get_model, model_path, run_cli

ITEMS = [
    {"prompt": "Once upon a time, there was a little girl named Lily.", "target": " She", "id": "a"},
    {"prompt": "One day, Lily and her mom went to the", "id": 7},
    {"prompt": "Once upon a", "target": " time", "position": 2},
    {"prompt": "Once upon a", "position": 40, "id": "too far"},
]


def test_results_equal_diff_and_the_cli(tmp_path: pathlib.Path):
    # F16 against Q8_0 of one model, converted here (as scripts/check_diff_batch.py does).
    paths = {}
    for t in ("f16", "q8_0"):
        paths[t] = str(tmp_path / f"model-{t}.gguf")
        subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve().parents[2] / "scripts" / "convert_model.py"),
                        model_path("stories260K.gguf"), "--type", t, "--out", paths[t]], check=True,
                       stdout=subprocess.DEVNULL)
    a, b = reslens.load(paths["f16"]), reslens.load(paths["q8_0"])
    batch = tmp_path / "prompts.jsonl"
    batch.write_text("".join(json.dumps(x) + "\n" for x in ITEMS[:2]) + "not json\n" +
                     "".join(json.dumps(x) + "\n" for x in ITEMS[2:]))
    results = list(reslens.diff_batch(a, b, str(batch), top=10, split_top=5))
    assert [r.line for r in results] == [1, 2, 3, 4, 5]
    assert [r.ok for r in results] == [True, True, False, True, False]
    assert results[2].error == "not a JSON object"
    assert "position 40 is out of range" in results[4].error and results[4].id == "too far"
    one = reslens.diff(a, b, ITEMS[0]["prompt"], target=" She", top=10, split_top=5)
    assert results[0].diff.to_json() == one.to_json()
    out = tmp_path / "out"
    assert results[0].diff.max_abs_delta > 0
    run_cli(["diff", paths["f16"], paths["q8_0"], "--batch", str(batch), "-o", str(out),
             "--top", "10", "--split-top", "5", "-q"])
    cli_lines = (out / "diffs.jsonl").read_text(encoding="utf-8").splitlines()
    py_lines = [r.to_json() for r in results if r.error != "not a JSON object"]
    assert cli_lines == py_lines


def test_self_is_zero_strict_and_shapes():
    model = get_model("stories260K.gguf")
    results = list(reslens.diff_batch(model, model, ["Once upon a", {"prompt": "One day"}], top=3))
    assert [r.line for r in results] == [1, 2] and all(r.ok and r.diff.max_abs_delta == 0 for r in results)
    with pytest.raises(IndexError):
        list(reslens.diff_batch(model, model, [{"prompt": "Once upon a", "position": 40}], strict=True))
    with pytest.raises(reslens.UnsupportedError, match="cannot diff models"):
        list(reslens.diff_batch(model, get_model("TinyStories-656K.gguf"), ["Once upon a", "One day"]))
