"""reslens.explain(progress=...) (docs/explain.md, "Progress"): a callable hears every phase of each
explain, in order, from 0 to its total, on the calling thread; progress=True keeps one line on
stderr and ends it; the scores are the same with or without it; anything else is a TypeError, and
an exception the callable raises ends the call with it."""
import threading

import pytest

import reslens

from conftest import PROMPTS, get_model

PROMPT = PROMPTS["stories260K.gguf"]


@pytest.fixture(scope="module")
def model():
    return get_model("stories260K.gguf")


def record(calls, caller):
    def listen(phase, done, total):
        calls.append((phase, done, total, threading.get_ident() == caller))
    return listen


def phase_runs(calls):
    runs = []
    for phase, *_ in calls:
        if not runs or runs[-1] != phase:
            runs.append(phase)
    return runs


def test_a_callable_hears_every_phase_in_order(model):
    calls = []
    ex = reslens.explain(model, PROMPT, method="bounded", threads=2, progress=record(calls, threading.get_ident()))
    assert all(same for *_, same in calls), "called from another thread"
    runs = [p for p in phase_runs(calls) if p not in ("bounds", "sketch", "attention_exact", "ffn_exact")]
    assert runs == ["forward", "points", "tails", "attention", "ffn", "checks", "queries"]
    layers = model.cfg.n_layers
    ffn = [(d, t) for p, d, t, _ in calls if p == "ffn"]
    assert ffn == [(i, layers + 1) for i in range(layers + 2)]  # a unit per layer, then the leftovers
    assert all(0 <= d <= t for _, d, t, _ in calls)
    plain = reslens.explain(model, PROMPT, method="bounded", threads=2)
    assert (ex.ffn_neuron == plain.ffn_neuron).all() and (ex.head == plain.head).all()


def test_an_answer_repeats_them_per_step_and_ends_with_its_tightening(model):
    calls = []
    done = reslens.explain(model, PROMPT, generate=3, threads=1, progress=record(calls, threading.get_ident()))
    assert calls[0][:3] == ("generate", 0, 3)
    assert sum(1 for c in calls if c[0] == "queries") == 2 * len(done.steps)
    assert calls[-1][:3] == ("tightening", 1, 1)


def test_true_draws_one_line_on_stderr(model, capsys):
    ex = reslens.explain(model, PROMPT, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("\rexplain: forward") and err.endswith("\n") and err.count("\n") == 1, repr(err[:200])
    assert "\rexplain: ffn 0/" in err and "\rexplain: queries" in err
    assert (ex.ffn_neuron == reslens.explain(model, PROMPT).ffn_neuron).all()
    reslens.explain(model, PROMPT, progress=False)
    assert capsys.readouterr().err == ""


def test_bad_progress_and_a_raising_callable(model):
    with pytest.raises(TypeError, match=r"progress must be True, False, None or a callable \(phase, done, total\)"):
        reslens.explain(model, PROMPT, progress="yes")

    def fail(phase, done, total):
        if phase == "ffn":
            raise ValueError("stop at the FFN phase")
    with pytest.raises(ValueError, match="stop at the FFN phase"):
        reslens.explain(model, PROMPT, progress=fail)
    assert reslens.explain(model, PROMPT).target.id >= 0  # the model is still usable
