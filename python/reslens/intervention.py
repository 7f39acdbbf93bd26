"""``reslens.Intervention``: components to zero during a run, with Python's positions.

``position=None`` (the default) zeroes the components at every position (parameter level);
an int is one query position counted as Python counts (``-1`` the last token, ``-2`` the one
before), as everywhere else in the package (``explain``, ``ablate``, ``pos_slice``). The compiled
``_core.Intervention`` uses -1 for "every position"; this class resolves a position against the
prompt's length only when a run knows it, so one Intervention serves prompts of any length (and
each row of a batch).
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

from . import _core


def _tuples(items: Optional[Iterable[Sequence[int]]], n: int, what: str) -> List[Tuple[int, ...]]:
    out = []
    for item in items or ():
        t = tuple(int(x) for x in item)
        if len(t) != n:
            raise ValueError(f"{what} {tuple(item)} should have {n} numbers")
        out.append(t)
    return out


class Intervention:
    """FFN neurons ``(layer, neuron)``, heads ``(layer, head)`` and attention neurons
    ``(layer, head, dim, source_pos)`` (source_pos -1: every source) to zero, at ``position``
    (None: every position; an int: that query position, negative from the end).

    >>> iv = reslens.Intervention(ffn=[(4, 10)], position=-1)   # the last token only
    >>> logits = model("Once upon a time", intervention=iv)
    """

    def __init__(self, ffn: Optional[Iterable[Sequence[int]]] = None,
                 heads: Optional[Iterable[Sequence[int]]] = None,
                 attn: Optional[Iterable[Sequence[int]]] = None, position: Optional[int] = None):
        self.ffn = _tuples(ffn, 2, "FFN neuron")
        self.heads = _tuples(heads, 2, "head")
        self.attn = _tuples(attn, 4, "attention neuron (layer, head, dim, source_pos)")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
            raise TypeError(f"position is None (every position) or an int, not {type(position).__name__}")
        self.position = position

    @property
    def empty(self) -> bool:
        return not (self.ffn or self.heads or self.attn)

    def resolve(self, n_tokens: int) -> _core.Intervention:
        """The compiled intervention for a prompt of ``n_tokens`` tokens (IndexError when the
        position is outside it)."""
        p = self.position
        if p is None:
            core_position = -1
        else:
            if not -n_tokens <= p < n_tokens:
                raise IndexError(f"intervention position {p} is out of range: the prompt has {n_tokens} tokens "
                                 f"(0..{n_tokens - 1}, or -{n_tokens}..-1 from the end; None for every position)")
            core_position = p % n_tokens
        return _core.Intervention(self.ffn, self.heads, [tuple(a) for a in self.attn], core_position)

    def __repr__(self) -> str:
        where = "every position" if self.position is None else f"position {self.position}"
        return f"<reslens.Intervention ffn={self.ffn} heads={self.heads} attn={self.attn} at {where}>"


def resolve(intervention, n_tokens: int):
    """What ``_core.run`` takes: None, a compiled intervention as given, or this class resolved."""
    if intervention is None or isinstance(intervention, _core.Intervention):
        return intervention
    if isinstance(intervention, Intervention):
        return intervention.resolve(n_tokens)
    raise TypeError(f"intervention must be a reslens.Intervention, not {type(intervention).__name__}")


__all__ = ["Intervention", "resolve"]
