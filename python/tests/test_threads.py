"""A thread pool of Python callers: heavy calls release the GIL, and results equal the single-threaded
ones bit for bit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import reslens
from conftest import PROMPTS, get_model


def work(name: str, text: str):
    model = get_model(name)
    logits, cache = model.run_with_cache(text)
    out = [logits, cache["resid_post", -1], cache["pattern", 0]]
    if model.cfg.d_vocab < 10_000:  # explain projects onto the vocabulary: GPT-2's 50257 tokens are slow
        ex = reslens.explain(model, text, top=5)
        out += [ex.ffn_neuron, ex.attn_neuron, ex.to_json()]
    return out


def test_thread_pool_results_equal_single_threaded():
    jobs = []
    for name in ("stories260K.gguf", "random-gpt2.gguf", "TinyStories-656K"):
        get_model(name)  # load before the threads start
        text = PROMPTS[name]
        jobs += [(name, text), (name, text[: len(text) // 2])]
    expected = [work(*j) for j in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda j: work(*j), jobs * 2))
    for i, result in enumerate(got):
        for a, b in zip(result, expected[i % len(jobs)]):
            if isinstance(a, str):
                assert a == b
            else:
                assert np.array_equal(a, b)


def test_model_threads_setting_gives_the_same_bits():
    name = "random-gpt2-hf"
    text = PROMPTS[name]
    one = reslens.load(get_model(name).cfg.path, threads=1)
    assert one.threads == 1
    a, ca = one.run_with_cache(text)
    b, cb = get_model(name).run_with_cache(text, threads=3)
    assert np.array_equal(a, b) and np.array_equal(ca["resid_post", 1], cb["resid_post", 1])


def _main_thread_share(fn) -> tuple:
    """Runs `fn` in another thread while the main thread keeps running Python. Returns fn's duration
    and how far into it the main thread still ran (1.0: until the end). A call that held the GIL
    would stop the main thread at its start (within the 5 ms switch interval)."""
    state: dict = {}

    def worker():
        state["t0"] = time.perf_counter()
        fn()
        state["t1"] = time.perf_counter()

    t = threading.Thread(target=worker)
    t.start()
    last = None
    while t.is_alive():
        if "t0" in state and "t1" not in state:
            last = time.perf_counter()
    t.join()
    duration = state["t1"] - state["t0"]
    return duration, 0.0 if last is None else (last - state["t0"]) / duration


def test_heavy_calls_release_the_gil():
    model = get_model("stories260K.gguf")
    ids = model.to_tokens(PROMPTS["stories260K.gguf"]).tolist()
    # Timed loops that run entirely in C++ (the GIL released around them): the main thread keeps running.
    # (Each long enough, > 50 ms, to measure: explain on this small model takes a few ms.)
    for fn in (lambda: reslens._core._time_run(model.core, ids, None, True, 1, 1000),
               lambda: reslens._core._time_explain(model.core, ids, 1, 16),
               lambda: [reslens.explain(model, ids, top=3) for _ in range(10)]):
        duration, share = _main_thread_share(fn)
        assert duration > 0.05 and share > 0.5, (duration, share)
