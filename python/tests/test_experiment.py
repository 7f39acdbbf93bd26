"""reslens.experiment: the same documents as `reslens experiment` (byte for byte), results that do
not depend on the thread count or on how the dataset is given, progress, and errors for bad input."""

from __future__ import annotations

import json
import pathlib
import threading

import pytest

import reslens
from conftest import REPO, get_model, run_cli

DATA = REPO / "data" / "knowledge.jsonl"


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> pathlib.Path:
    """Twelve held-out facts of the shipped model, spread over its knowledge types."""
    if not DATA.exists():
        pytest.fail(f"{DATA} is missing from the checkout")
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    by_type = {}
    for r in rows:
        by_type.setdefault(r["type"], []).append(r)
    picked = [r for t in sorted(by_type) for r in by_type[t][:2]]
    p = tmp_path_factory.mktemp("exp") / "small.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in picked))
    return p


@pytest.fixture(scope="module")
def result(small_dataset):
    return reslens.experiment(get_model("knowledge-gpt2"), small_dataset, seed=7, threads=2)


def test_same_documents_as_the_cli(small_dataset, result, tmp_path):
    out = tmp_path / "cli"
    run_cli(["experiment", str(REPO / "models" / "knowledge-gpt2"), str(small_dataset), "-o", str(out),
             "--seed", "7", "--threads", "1"])
    # summary.json names the model and dataset paths as given; the CLI got the same strings.
    assert result.to_json() == (out / "summary.json").read_text()
    assert result.to_csv() == (out / "summary.csv").read_text()
    assert result.to_markdown() == (out / "summary.md").read_text()
    cli_sentences = [json.loads(line) for line in (out / "sentences.jsonl").read_text().splitlines()]
    assert result.sentences == cli_sentences


def test_shape_of_the_result(result, small_dataset):
    n = len(small_dataset.read_text().splitlines())
    assert len(result.sentences) == n
    assert [s["index"] for s in result.sentences] == list(range(n))
    assert result.summary["types"][0]["type"] == "all"
    all_ = result.type_summary("all")
    assert all_["sentences"]["total"] == n
    kept = sum(1 for s in result.sentences if s["status"] == "kept")
    assert all_["sentences"]["kept"] == kept > 0
    names = [iv["name"] for iv in all_["interventions"]]
    assert "ffn_top" in names and "ffn_random" in names
    # Zeroing the top-10 FFN value neurons hurts more than zeroing 10 random ones (the paper's claim,
    # and what the shipped model shows on every type).
    by = {iv["name"]: iv for iv in all_["interventions"]}
    assert by["ffn_top"]["decrease_pct"]["prob"] > by["ffn_random"]["decrease_pct"]["prob"]
    with pytest.raises(KeyError, match="no knowledge type"):
        result.type_summary("weather")
    assert "sentences" in repr(result)


def test_thread_count_and_dataset_form_do_not_change_results(small_dataset, result):
    model = get_model("knowledge-gpt2")
    one = reslens.experiment(model, small_dataset, seed=7, threads=1)
    assert one.to_json() == result.to_json()
    rows = [json.loads(line) for line in small_dataset.read_text().splitlines()]
    from_rows = reslens.experiment(model, rows, seed=7, threads=2)
    assert from_rows.sentences == result.sentences
    # Only the dataset's name and fingerprint (its bytes) differ.
    a, b = json.loads(from_rows.to_json()), json.loads(result.to_json())
    for d in (a, b):
        del d["settings"]["dataset"], d["settings"]["dataset_fingerprint"]
    assert a == b


def test_dataframes(result):
    pd = pytest.importorskip("pandas")
    iv = result.to_dataframe("interventions")
    assert isinstance(iv, pd.DataFrame)
    assert {"type", "name", "prob_after", "prob_decrease_pct", "mean_ffn_zeroed"} <= set(iv.columns)
    assert len(iv) == sum(len(t["interventions"]) for t in result.summary["types"])
    layers = result.to_dataframe("layers")
    L = get_model("knowledge-gpt2").cfg.n_layers
    assert len(layers) == L * len(result.summary["types"])
    assert len(result.to_dataframe("sentences")) == len(result.sentences)
    assert list(result.to_dataframe("before")["type"])[0] == "all"
    with pytest.raises(ValueError, match="kind must be"):
        result.to_dataframe("neurons")


def test_save_writes_the_cli_files(result, tmp_path):
    d = result.save(tmp_path / "out")
    assert (d / "summary.json").read_text() == result.to_json()
    lines = (d / "sentences.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == result.sentences


def test_progress_callback_and_its_errors(small_dataset):
    model = get_model("knowledge-gpt2")
    calls = []
    reslens.experiment(model, small_dataset, baselines=False, random=False, threads=2,
                       progress=lambda done, total, kept, elapsed: calls.append((done, total, kept)))
    n = len(small_dataset.read_text().splitlines())
    assert [c[0] for c in calls] == list(range(1, n + 1))
    assert all(c[1] == n for c in calls)

    def boom(*_):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        reslens.experiment(model, small_dataset, baselines=False, random=False, progress=boom)
    with pytest.raises(TypeError, match="progress"):
        reslens.experiment(model, small_dataset, progress="yes")


def test_bad_input(tmp_path):
    model = get_model("knowledge-gpt2")
    with pytest.raises(FileNotFoundError):
        reslens.experiment(model, tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "The capital of France is", "target": " Paris", "type": "capital"}\nnot json\n')
    lenient = reslens.experiment(model, bad, baselines=False, random=False)
    assert len(lenient.sentences) == 1 and lenient.skipped and lenient.skipped[0][0] == 2
    with pytest.raises(reslens.FormatError, match=r"bad\.jsonl:2: not valid JSON"):
        reslens.experiment(model, bad, strict=True)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(reslens.FormatError, match="empty"):
        reslens.experiment(model, empty)
    with pytest.raises(ValueError, match="shard"):
        reslens.experiment(model, bad, shard="3/2")
    with pytest.raises(TypeError, match="dict"):
        reslens.experiment(model, ["The capital of France is"])
    with pytest.raises(ValueError, match="seed"):
        reslens.experiment(model, bad, seed=-1)


def test_runs_from_several_python_threads(small_dataset, result):
    model = get_model("knowledge-gpt2")
    outs, errs = [None] * 3, []

    def work(i):
        try:
            outs[i] = reslens.experiment(model, small_dataset, seed=7, threads=1).to_json()
        except Exception as e:  # pragma: no cover - reported below
            errs.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs
    assert all(o == result.to_json() for o in outs)
