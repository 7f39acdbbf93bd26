"""Stopping a long reslens.explain (docs/python.md, "Stopping a long answer"): between the steps of
an answer (each generated token, each explained step) a pending Ctrl-C raises KeyboardInterrupt out
of the call, and a should_stop callable that answers truthy raises reslens.Cancelled; either way the
call ends at that step boundary, long before the answer would have finished, and the model stays
usable. On stories260K (a 512-token vocabulary: a step is a few milliseconds, so a long answer)."""
import os
import signal
import threading
import time

import pytest

import reslens

from conftest import PROMPTS, get_model

PROMPT = PROMPTS["stories260K.gguf"]
N = 64  # tokens to generate: the model's context (512) leaves room, and it does not end its turn early


@pytest.fixture(scope="module")
def model():
    return get_model("stories260K.gguf")


@pytest.fixture(scope="module")
def whole_answer(model):
    """The uninterrupted answer: its should_stop calls (one per generated token and per explained
    step) and how long it took."""
    calls = []
    t0 = time.monotonic()
    done = reslens.explain(model, PROMPT, generate=N, threads=1, should_stop=lambda: calls.append(1))
    return done, len(calls), time.monotonic() - t0


def test_should_stop_is_asked_at_every_step(whole_answer):
    done, calls, seconds = whole_answer
    n = len(done.steps)
    assert n == N and done.generated["stop"] == "max_tokens"
    assert calls == 2 * n, f"asked {calls} times for {n} generated and {n} explained tokens"
    print(f"{n}-token answer: {seconds:.2f} s")


def interrupt_after(seconds, call):
    """Runs call() with a SIGINT sent from another thread after `seconds`, as a terminal's Ctrl-C:
    Python only notes it (the main thread is inside the library with the GIL released) until the
    library's next step boundary asks. Returns how long call() took to raise KeyboardInterrupt."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
    finally:
        timer.cancel()
        timer.join()
    return time.monotonic() - t0


@pytest.fixture
def default_sigint():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler in this process")


def test_ctrl_c_raises_keyboard_interrupt_at_a_step_boundary(model, whole_answer, default_sigint):
    # No Python code runs during the call (no should_stop): only the binding's own check between
    # steps (PyErr_CheckSignals) can see the signal before the answer is finished.
    _, _, seconds = whole_answer
    elapsed = interrupt_after(seconds / 4, lambda: reslens.explain(model, PROMPT, generate=N, threads=1))
    print(f"interrupted after {elapsed:.2f} s (signal at {seconds / 4:.2f} s; the whole answer {seconds:.2f} s)")
    assert elapsed < 0.75 * seconds, "KeyboardInterrupt came only when the answer was finished"
    # The model still explains afterwards.
    assert len(reslens.explain(model, PROMPT, generate=3, threads=1).steps) == 3


def test_ctrl_c_with_should_stop_stops_before_the_end(model, whole_answer, default_sigint):
    _, calls_whole, seconds = whole_answer
    calls = []
    elapsed = interrupt_after(seconds / 4, lambda: reslens.explain(model, PROMPT, generate=N, threads=1,
                                                                   should_stop=lambda: calls.append(1)))
    print(f"interrupted after {elapsed:.2f} s ({len(calls)} of {calls_whole} step boundaries)")
    assert 0 < len(calls) < calls_whole and elapsed < 0.75 * seconds


@pytest.mark.parametrize("k", [1, 3, N + 2])
def test_should_stop_true_after_k_calls_raises_cancelled(model, k):
    calls = 0

    def stop():
        nonlocal calls
        calls += 1
        return calls >= k  # any truthy value stops it

    with pytest.raises(reslens.Cancelled, match="cancelled") as e:
        reslens.explain(model, PROMPT, generate=N, threads=1, should_stop=stop)
    assert calls == k, "nothing was asked after the call that said stop"
    assert isinstance(e.value, reslens.Error) and "\n" not in str(e.value)
    # k <= N: while generating; N + 2: after the second explained step.
    assert ("while generating" in str(e.value)) == (k <= N)
    if k == N + 2:
        assert "stopped after 2 of" in str(e.value)


def test_should_stop_on_a_given_answer_and_a_target(model):
    def after(k):
        seen = []
        return lambda: (seen.append(1), len(seen) >= k)[1]
    with pytest.raises(reslens.Cancelled, match=r"stopped after 2 of \d+ explained steps"):
        reslens.explain(model, "Once upon a time", continuation=" there was a little girl", should_stop=after(2))
    with pytest.raises(reslens.Cancelled, match="stopped after 1 of"):
        reslens.explain_target(model, "Once upon a time", target=" there was", should_stop=after(1))
    # Falsy answers (None, 0, "") let it finish.
    done = reslens.explain(model, "Once upon a time", continuation=" there was", should_stop=lambda: 0)
    assert len(done.steps) == 2


def test_should_stop_errors(model):
    class Mine(Exception):
        pass

    def boom():
        raise Mine("from should_stop")

    with pytest.raises(Mine, match="from should_stop"):
        reslens.explain(model, PROMPT, generate=4, should_stop=boom)
    with pytest.raises(TypeError, match="should_stop is a callable"):
        reslens.explain(model, PROMPT, generate=4, should_stop=True)
    with pytest.raises(TypeError, match="should_stop is a callable"):
        reslens._core.explain_target(model.core, model.tokens(PROMPT, None), generate=4, should_stop=5)
