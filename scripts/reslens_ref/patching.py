"""Activation patching in the float64 reference: run a "clean" prompt, then run a "corrupted" prompt
of the same length with some activations replaced by the clean run's, and read the logits. Written
from TransformerLens's definition of patching (the hooked value is what the rest of the pass reads),
on forward()'s own edit points, independently of reslens's C++ hooks, so the two can check each
other (python/tests/test_patching.py).

A patch is (hook name, index): the clean value replaces the corrupted one at `index` of the
activation, a numpy index into its shape ([pos, d_model] for hook_resid_*, [pos, n_heads, d_head]
for attn.hook_z), e.g. ("blocks.1.attn.hook_z", (-1, 2)) = head 2 at the last position,
("blocks.0.hook_resid_pre", (3,)) = position 3 of the stream entering layer 0.
"""

import numpy as np

from .forward import forward

PATCHABLE = ("hook_resid_pre", "attn.hook_z", "hook_resid_mid", "hook_attn_out", "mlp.hook_post",
             "hook_mlp_out", "hook_resid_post")


def patched_forward(model, clean_ids, corrupted_ids, patches):
    """(clean hooks, patched hooks): forward() over clean_ids, then over corrupted_ids with every
    (name, index) of `patches` taken from the clean run."""
    if len(clean_ids) != len(corrupted_ids):
        raise ValueError("patching needs two prompts of the same length")
    for name, _ in patches:
        if not name.startswith("blocks.") or name.split(".", 2)[2] not in PATCHABLE:
            raise ValueError(f"{name}: the reference patches {', '.join(PATCHABLE)} of a block")
    clean = forward(model, clean_ids)

    def edit(name, value, hooks):
        mine = [index for n, index in patches if n == name]
        if not mine:
            return None
        value = np.array(value, dtype=np.float64)
        for index in mine:
            value[index] = clean[name][index]
        return value

    return clean, forward(model, corrupted_ids, edit=edit)
