"""Unbatched results that refuse TransformerLens's batch index instead of answering it wrongly.

reslens runs one sequence by default: logits are ``[pos, d_vocab]`` where TransformerLens has
``[batch, pos, d_vocab]``. Ported TL code such as ``logits[0, -1]`` (batch 0, last position) would
silently read position 0, vocabulary id -1 here. A TL port gives itself away by a negative integer
on the axis after the position axis (the vocabulary, ``d_model``, ``d_mlp`` or the head axis), where
a negative index has no everyday use in reslens's layout; such an index raises ``IndexError``
pointing to ``logits[-1]`` and to ``batch=True``. Everything else is ordinary numpy: a result of
indexing, arithmetic or a reduction is a plain ``np.ndarray``, so the check applies only to the
array the library returned, in its own shape.

What it cannot catch: chained indexing (``logits[0][-1]``) and attention patterns
(``[n_heads, q, k]``, where ``pattern[0, -1]`` is head 0's last query, a legitimate reslens index).
Ported code should ask for ``batch=True`` (docs/transformerlens.md).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


class UnbatchedArray(np.ndarray):
    """A read-only view whose axis 0 is the position and axis 1 a feature axis (see module doc)."""

    _guard: Optional[tuple]  # (shape it was returned with, name of axis 1) or None once reshaped

    def __array_finalize__(self, obj: Any) -> None:
        self._guard = getattr(obj, "_guard", None)

    def __array_wrap__(self, out: np.ndarray, *args: Any, **kwargs: Any):
        # ufuncs and reductions give plain arrays: their axes are no longer the ones checked.
        # A full reduction of these (>= 2-D) arrays is a scalar, as numpy gives for plain arrays.
        if isinstance(out, np.ndarray):
            out = out.view(np.ndarray)
            return out[()] if out.ndim == 0 else out
        return out

    def __getitem__(self, key: Any):
        guard = self._guard
        if guard is not None and isinstance(key, tuple) and len(key) >= 2 and self.shape == guard[0]:
            second = key[1]
            first_ok = not (key[0] is Ellipsis or key[0] is None)
            if first_ok and isinstance(second, (int, np.integer)) and not isinstance(second, bool) and second < 0:
                raise IndexError(
                    f"index {key[0]!r}, {second!r}: this array is [pos, {guard[1]}, ...] with no batch dimension, so "
                    f"{second!r} would be {guard[1]} {second}, which is never what TransformerLens code means "
                    f"(batch {key[0]!r}, position {second!r}). Use [{second!r}] for a position, or run with "
                    "batch=True (or a list of prompts) for TL's [batch, pos, ...] shapes; docs/transformerlens.md")
        out = super().__getitem__(key)
        return out.view(np.ndarray) if isinstance(out, UnbatchedArray) else out

    def __reduce__(self):  # pickles as a plain array
        return self.view(np.ndarray).__reduce__()


def guard(a: Optional[np.ndarray], feature: str) -> Optional[np.ndarray]:
    """``a`` (``[pos, feature, ...]``) as an :class:`UnbatchedArray` view sharing its memory and flags;
    arrays of fewer than 2 axes are returned as they are."""
    if a is None or not isinstance(a, np.ndarray) or a.ndim < 2:
        return a
    v = a.view(UnbatchedArray)
    v._guard = (a.shape, feature)
    return v


# Hooks whose axis 0 is not the position (attention patterns and scores are [n_heads, q, k]).
_NOT_POSITION_FIRST = ("hook_pattern", "hook_attn_scores")


def guard_hook(name: str, a: np.ndarray) -> np.ndarray:
    """A cache entry guarded when its first axis is the position."""
    if name.endswith(_NOT_POSITION_FIRST):
        return a
    feature = "head" if a.ndim == 3 else "feature"
    return guard(a, feature)  # type: ignore[return-value]


__all__ = ["UnbatchedArray", "guard", "guard_hook"]
