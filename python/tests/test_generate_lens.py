"""``model.generate`` and ``reslens.lens`` give what ``reslens generate`` and ``reslens lens`` print
(the same library calls; the CLI is the reference users already have)."""

from __future__ import annotations

import numpy as np
import pytest

import reslens
from conftest import PROMPTS, cli_json, get_model, model_path

MODELS = ["stories260K.gguf", "random-gpt2.gguf", "knowledge-gpt2"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("temp,seed", [(0.0, 0), (0.9, 7), (1.3, 12345)])
def test_generate_matches_the_cli(name, temp, seed):
    m = get_model(name)
    prompt = PROMPTS[name]
    want = cli_json(["generate", model_path(name), prompt, "-n", "12", "--temp", str(temp), "--seed", str(seed),
                     "--json"])
    got = m.generate(prompt, max_new_tokens=12, temperature=temp, seed=seed)
    ids = m.generate(prompt, max_new_tokens=12, temperature=temp, seed=seed, return_type="tokens")
    assert ids.tolist() == want["prompt_ids"] + want["ids"]
    assert got.startswith(prompt)
    if "\ufffd" not in want["text"]:  # bytes that are not UTF-8: the CLI and Python replace them differently
        assert got == prompt + want["text"]
    if temp == 0.0:
        assert m.generate(prompt, max_new_tokens=12, do_sample=False, temperature=1.0) == got
    # token ids in, token ids out (prompt then continuation), as TL's return_type="input"
    again = m.generate(want["prompt_ids"], max_new_tokens=12, temperature=temp, seed=seed)
    assert isinstance(again, np.ndarray) and again.tolist() == ids.tolist()


def test_greedy_generation_is_the_argmax_of_each_forward_pass():
    m = get_model("stories260K.gguf")
    ids = m.generate("Once upon a time", max_new_tokens=6, return_type="tokens").tolist()
    n = len(m.to_tokens("Once upon a time"))
    for i in range(n, len(ids)):
        assert int(np.argmax(m.forward(ids[:i])[-1])) == ids[i]


def test_seeds_differ_and_unsupported_options_are_refused():
    m = get_model("stories260K.gguf")
    runs = {m.generate("Once upon a time", max_new_tokens=16, temperature=1.5, seed=s) for s in range(4)}
    assert len(runs) > 1
    with pytest.raises(NotImplementedError):
        m.generate("Once upon a time", top_k=5)
    with pytest.raises(NotImplementedError):
        m.generate("Once upon a time", stop_at_eos=False)
    with pytest.raises(ValueError, match="temperature"):
        m.generate("Once upon a time", do_sample=True)
    with pytest.raises(ValueError):
        m.generate("Once upon a time", temperature=-1.0)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("target,position", [(None, -1), (" the", 3)])
def test_lens_matches_the_cli(name, target, position):
    m = get_model(name)
    prompt = PROMPTS[name]
    args = ["lens", model_path(name), prompt, "-k", "4", "-p", str(position), "--json"]
    if target is not None:
        args += ["--target", target]
    want = cli_json(args)
    got = reslens.lens(m, prompt, target=target, position=position, k=4)
    d = got.to_dict()
    assert d["position"] == want["position"] and d["target"]["id"] == want["target"]["id"]
    assert len(got) == len(want["points"]) == 2 * m.cfg.n_layers + 1
    for p, w in zip(d["points"], want["points"]):
        assert p["label"] == w["label"] and p["rank"] == w["rank"]
        assert p["prob"] == pytest.approx(w["prob"], rel=1e-9, abs=1e-12)
        assert p["log_prob"] == pytest.approx(w["log_prob"], rel=1e-9, abs=1e-12)
        assert [t["id"] for t in p["top"]] == [t["id"] for t in w["top"]]
    assert got.labels[0] == "emb" and got.ranks.shape == got.probs.shape == (len(got),)


def test_lens_of_a_list_is_one_result_per_prompt():
    m = get_model("stories260K.gguf")
    prompts = ["Once upon a time", "The cat sat on the"]
    got = reslens.lens(m, prompts, k=3)
    assert isinstance(got, list) and len(got) == 2
    for p, g in zip(prompts, got):
        alone = reslens.lens(m, p, k=3)
        assert g.to_dict() == alone.to_dict()
