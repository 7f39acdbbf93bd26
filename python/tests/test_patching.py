"""Activation patching across two prompts (cache the clean one, patch into the corrupted one) with
reslens's forward hooks, checked against the float64 reference's own patched forward
(scripts/reslens_ref/patching.py: its own clean run, its own edit points, no reslens code).

Tolerance as the trace checks (scripts/compare_trace.py): max |reslens - reference| <= 1e-4 +
1e-5 * max |reference| over the logits, and the same for the patch's effect on the logit
difference (patched minus corrupted), which is what a patching experiment reports."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

from conftest import REPO, get_model, model_path

sys.path.insert(0, str(REPO / "scripts"))
from reslens_ref import load_model  # noqa: E402
from reslens_ref.patching import patched_forward  # noqa: E402

# (model, clean prompt, corrupted prompt): the same number of tokens.
CASES = [
    ("stories260K.gguf", "Once upon a time, there was a little girl", "Once upon a time, there was a little boy"),
    ("random-gpt2.gguf", "The capital of France is", "The capital of Spain is"),
    ("knowledge-gpt2", "The capital of France is", "The capital of Japan is"),
]

_refs: dict = {}


def reference(name):
    if name not in _refs:
        _refs[name] = load_model(pathlib.Path(model_path(name)))
    return _refs[name]


def close(got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    tol = 1e-4 + 1e-5 * np.abs(want).max()
    err = np.abs(got - want).max()
    assert err <= tol, f"{what}: max |reslens - reference| = {err:.3g} > {tol:.3g}"
    return err


def reslens_patch(m, clean, corrupted, patches):
    """Patching as a user writes it: the clean cache, then hooks copying its values in."""
    _, cache = m.run_with_cache(clean)

    def hook_for(index):
        def patch(act, hook):
            act[index] = cache[hook.name][index]
        return patch

    return m.run_with_hooks(corrupted, fwd_hooks=[(name, hook_for(index)) for name, index in patches])


@pytest.mark.parametrize("name,clean,corrupted", CASES, ids=[c[0] for c in CASES])
def test_patching_matches_the_float64_reference(name, clean, corrupted):
    m = get_model(name)
    ref = reference(name)
    clean_ids, corr_ids = m.tokens(clean), m.tokens(corrupted)
    assert len(clean_ids) == len(corr_ids)
    n = len(clean_ids)
    diff_pos = [i for i in range(n) if clean_ids[i] != corr_ids[i]]
    L = m.cfg.n_layers
    # Head patching (one head's z at the last position), stream patching (one position of
    # resid_pre / resid_mid), sublayer patching, several at once.
    patch_sets = [
        [(f"blocks.{L - 1}.attn.hook_z", (-1, 1))],
        [(f"blocks.0.attn.hook_z", (slice(None), 0))],
        [(f"blocks.{L // 2}.hook_resid_pre", (diff_pos[0],))],
        [(f"blocks.0.hook_resid_mid", (diff_pos[-1],))],
        [(f"blocks.{L - 1}.hook_mlp_out", (-1,)), (f"blocks.1.hook_attn_out", (slice(None),))],
        [(f"blocks.{L - 1}.hook_resid_post", (slice(None),))],
    ]
    base = reference_logits = None
    worst = 0.0
    for patches in patch_sets:
        ref_clean, ref_patched = patched_forward(ref, clean_ids, corr_ids, patches)
        got = reslens_patch(m, clean, corrupted, patches)
        want = ref_patched["logits"]
        worst = max(worst, close(got, want, f"{name} {patches}"))
        if base is None:
            base = m.forward(corrupted)
            reference_logits = patched_forward(ref, clean_ids, corr_ids, [])[1]["logits"]
        # The effect of the patch on the top clean token's logit against the corrupted run's top.
        a, b = int(np.argmax(ref_clean["logits"][-1])), int(np.argmax(reference_logits[-1]))
        effect = (got[-1, a] - got[-1, b]) - (base[-1, a] - base[-1, b])
        want_effect = (want[-1, a] - want[-1, b]) - (reference_logits[-1, a] - reference_logits[-1, b])
        close([effect], [want_effect], f"{name} effect of {patches}")
    # Patching the last layer's whole output stream gives the clean logits (a sanity check that
    # the patch reached the logits at all).
    close(got, ref_clean["logits"], f"{name} resid_post patch vs clean")
    print(f"{name}: worst max |diff| {worst:.3g}")


def test_patching_every_position_and_layer_of_resid_pre_recovers_the_clean_answer():
    """The classic experiment (TL's patching of resid_pre over layers x positions), scored by the
    logit difference between the clean and the corrupted prompt's answers: every cell as the
    reference computes it, and patching the one position where the prompts differ at layer 0 is
    the clean run itself."""
    name, clean, corrupted = CASES[2]
    m, ref = get_model(name), reference(name)
    clean_ids, corr_ids = m.tokens(clean), m.tokens(corrupted)
    n, L = len(clean_ids), m.cfg.n_layers
    [country] = [i for i in range(n) if clean_ids[i] != corr_ids[i]]
    a, b = int(np.argmax(m.forward(clean)[-1])), int(np.argmax(m.forward(corrupted)[-1]))
    assert a != b
    results = np.zeros((L, n))
    want = np.zeros((L, n))
    for layer in range(L):
        for pos in range(n):
            patches = [(f"blocks.{layer}.hook_resid_pre", (pos,))]
            logits = reslens_patch(m, clean, corrupted, patches)
            results[layer, pos] = logits[-1, a] - logits[-1, b]
            r = patched_forward(ref, clean_ids, corr_ids, patches)[1]["logits"]
            want[layer, pos] = r[-1, a] - r[-1, b]
    close(results, want, "resid_pre patching grid")
    clean_logits = m.forward(clean)
    assert results[0, country] == clean_logits[-1, a] - clean_logits[-1, b]
    assert results[0, country] > 0 > results[0, (country + 1) % n]
