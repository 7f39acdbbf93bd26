"""A batch dimension for TransformerLens code: a list of prompts (or a 2-D id array) runs as a batch
and results are shaped ``[batch, pos, ...]`` as in TL.

reslens's forward pass runs one sequence, so a batch is one run per row; every row is therefore
bit-identical to running that prompt alone (same tokens, same positions, same thread-independent
arithmetic). Rows of different lengths are padded to the longest: on the right by default (TL's
``padding_side="right"``), or on the left with ``padding_side="left"`` so that position -1 is every
row's last token. Padded entries of float results are **NaN**, never numbers a model computed, so a
reduction over a pad position shows up instead of passing as an answer; ``cache.attention_mask``
(``[batch, pos]``, True on real tokens) and ``cache.lengths`` say where each row is.

Token ids in a 2-D array use **-1** as padding (``model.to_tokens(list_of_prompts)`` pads with it):
-1 is no token, so padding can never be run as one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence

import numpy as np

from . import _core
from .cache import ActivationCache
from .utils import readonly

if TYPE_CHECKING:
    from .model import Model

PAD_ID = -1
PADDING_SIDES = ("right", "left")


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _strip_padding(row: np.ndarray, index: int) -> List[int]:
    """A row of a 2-D id array without its -1 padding (leading or trailing, not inside)."""
    real = np.nonzero(row != PAD_ID)[0]
    if real.size == 0:
        raise ValueError(f"row {index} of the token array is all padding (-1): nothing to run")
    body = row[real[0]:real[-1] + 1]
    if (body == PAD_ID).any():
        raise ValueError(f"row {index} of the token array has padding (-1) between tokens: "
                         "padding goes at the start or the end of a row")
    return body.astype(np.int64).tolist()


def batch_rows(model: "Model", input, prepend_bos: Optional[bool], batch: Optional[bool]) -> Optional[List[List[int]]]:
    """The token ids of each row when ``input`` is a batch, else None (one sequence, today's shapes).

    A batch is: a list or tuple of strings, a list of id sequences, or a 2-D id array with more than
    one row. ``batch=True`` makes a single prompt a batch of one; ``batch=False`` refuses a batch.
    A ``[1, pos]`` array is one sequence unless ``batch=True`` (as before there was a batch)."""
    rows: Optional[List[List[int]]] = None
    if isinstance(input, str):
        rows = None
    elif isinstance(input, np.ndarray):
        if input.ndim == 2 and (input.shape[0] != 1 or batch):
            if input.size and not np.issubdtype(input.dtype, np.integer):
                raise TypeError(f"token ids must be integers, got a {input.dtype} array")
            rows = [_strip_padding(r, i) for i, r in enumerate(input)]
    elif isinstance(input, (list, tuple)):
        if not input:
            raise ValueError("an empty list: nothing to run")
        if all(isinstance(x, str) for x in input):
            rows = [model.tokens(x, prepend_bos) for x in input]
        elif all(_is_int(x) for x in input):
            rows = None  # one sequence of ids
        elif all(isinstance(x, (list, tuple, np.ndarray)) for x in input):
            rows = []
            for i, x in enumerate(input):
                a = np.asarray(x)
                if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
                    raise TypeError(f"row {i} of the batch is not a sequence of token ids (ints): "
                                    f"{type(x).__name__} of {a.dtype} with shape {a.shape}")
                rows.append(_strip_padding(a, i) if a.size else [])
                if not rows[-1]:
                    raise ValueError(f"row {i} of the batch has no tokens: nothing to run")
        else:
            kinds = sorted({type(x).__name__ for x in input})
            raise TypeError(f"a list of prompts must be all strings or all token-id sequences, and one sequence "
                            f"of ids all ints; this list mixes {', '.join(kinds)}")
    if rows is None and batch:
        rows = [model.tokens(input, prepend_bos)]
    if rows is not None and batch is False:
        raise ValueError(f"batch=False, but the input is a batch of {len(rows)} prompts")
    return rows


def batch_items(model: "Model", input, prepend_bos: Optional[bool]) -> Optional[list]:
    """The rows of a batch as ``explain``/``ablate`` take them one by one (the strings themselves, so
    text-only options such as ``continuation=`` still apply; ids without their -1 padding), or None
    for a single prompt."""
    rows = batch_rows(model, input, prepend_bos, None)
    if rows is None:
        return None
    if isinstance(input, (list, tuple)) and all(isinstance(x, str) for x in input):
        return list(input)
    return rows


def per_row(spec, n: int, what: str) -> list:
    """A per-prompt argument of a batch call: one value for every row, or a list of exactly ``n``
    values (one per row). A list of ints of another length is one multi-token ``what`` for every row;
    a list of ``n`` ints is ambiguous and refused (write ``[ids] * n`` or a list of per-row values)."""
    if isinstance(spec, (list, tuple)):
        if len(spec) == n and not all(_is_int(x) for x in spec):
            return list(spec)
        if len(spec) == n:
            raise ValueError(f"{what}={list(spec)!r} with a batch of {n} prompts is ambiguous (one id per row, or "
                             f"one {len(spec)}-token {what} for all?): pass [[id] for each row] or [ids] * {n}")
    return [spec] * n


def pad_tokens(rows: Sequence[Sequence[int]], padding_side: str = "right") -> np.ndarray:
    """``[batch, max_len]`` int64 ids, padded with -1 on ``padding_side``."""
    check_side(padding_side)
    n = max(len(r) for r in rows)
    out = np.full((len(rows), n), PAD_ID, dtype=np.int64)
    for i, r in enumerate(rows):
        if padding_side == "right":
            out[i, :len(r)] = r
        else:
            out[i, n - len(r):] = r
    return out


def check_side(padding_side: str) -> None:
    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be 'right' or 'left', not {padding_side!r}")


def pad_stack(arrays: Sequence[np.ndarray], axes: Sequence[int], padding_side: str) -> np.ndarray:
    """Arrays that differ only along ``axes`` (their position axes), padded to the longest with NaN
    (or -1 for integers) on ``padding_side`` and stacked on a new axis 0. A read-only copy."""
    shape = list(arrays[0].shape)
    for ax in axes:
        shape[ax] = max(a.shape[ax] for a in arrays)
    dtype = arrays[0].dtype
    fill = np.nan if np.issubdtype(dtype, np.floating) else PAD_ID
    out = np.full([len(arrays)] + shape, fill, dtype=dtype)
    for i, a in enumerate(arrays):
        index = [slice(None)] * a.ndim
        for ax in axes:
            n, m = a.shape[ax], shape[ax]
            index[ax] = slice(0, n) if padding_side == "right" else slice(m - n, m)
        out[i][tuple(index)] = a
    return readonly(out)


def position_axes(name: str) -> tuple:
    """The position axes of a hook's unbatched array: ``[n_heads, q, k]`` for attention patterns and
    scores, axis 0 for everything else (``docs/naming.md``)."""
    return (1, 2) if name.endswith(("hook_pattern", "hook_attn_scores")) else (0,)


class BatchedActivationCache(ActivationCache):
    """The caches of a batch's rows as one TransformerLens-shaped cache: ``cache[name]`` is
    ``[batch, pos, ...]`` (patterns ``[batch, n_heads, q, k]``), padded with NaN (a copy, stacked on
    first use). TL's helpers (``accumulated_resid``, ``decompose_resid``, ``stack_head_results``,
    ``apply_ln_to_stack``, ``logit_attrs``, ...) give TL's ``[component, batch, pos, d_model]``.
    ``cache.rows[i]`` is row i's own unbatched :class:`ActivationCache` (zero-copy views)."""

    has_batch_dim = True

    def __init__(self, rows: List[ActivationCache], model: "Model", lengths: List[int], padding_side: str):
        self.rows = rows
        self.model = model
        self.lengths = list(lengths)
        self.padding_side = padding_side
        self._names = rows[0].names()
        self._stacked: dict = {}

    @property
    def attention_mask(self) -> np.ndarray:
        """[batch, pos] bool: True on real tokens, False on padding."""
        n = max(self.lengths)
        m = np.zeros((len(self.lengths), n), dtype=bool)
        for i, k in enumerate(self.lengths):
            m[i, slice(0, k) if self.padding_side == "right" else slice(n - k, n)] = True
        return readonly(m)

    def __getitem__(self, key) -> np.ndarray:
        name = self._key(key)
        if name not in self._stacked:
            parts = [r[name] for r in self.rows]  # each raises the unbatched cache's KeyError
            self._stacked[name] = pad_stack(parts, position_axes(name), self.padding_side)
        return self._stacked[name]

    def __contains__(self, key) -> bool:
        return key in self.rows[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def names(self) -> List[str]:
        return list(self._names)

    def __repr__(self) -> str:
        mib = sum(r.run.nbytes for r in self.rows) / 2**20
        return (f"<reslens.BatchedActivationCache {len(self.rows)} rows, {len(self)} hooks, "
                f"{mib:.1f} MiB, padded on the {self.padding_side}>")

    @property
    def run(self):
        raise AttributeError("a batched cache has one run per row: cache.rows[i].run")

    def remove_batch_dim(self) -> ActivationCache:
        """The row's own cache when the batch has one row (as TL's); ValueError otherwise."""
        if len(self.rows) != 1:
            raise ValueError(f"remove_batch_dim needs a batch of 1, this one has {len(self.rows)} rows: "
                             "use cache.rows[i]")
        return self.rows[0]


def run_batch(model: "Model", rows: List[List[int]], patterns: Optional[List[str]], threads: int,
              intervention, padding_side: str, record: bool):
    """One run per row; the padded ``[batch, pos, d_vocab]`` logits and the batched cache."""
    check_side(padding_side)
    caches, logits = [], []
    for ids in rows:
        iv = intervention.resolve(len(ids)) if hasattr(intervention, "resolve") else intervention
        from . import hooks as _hooks  # attached hooks apply to every row (reslens/hooks.py)
        run = _hooks.run(model, ids, patterns if record else [], True, threads, iv)
        logits.append(run.logits)
        caches.append(ActivationCache(run, model))
    stacked = pad_stack(logits, (0,), padding_side)
    return stacked, BatchedActivationCache(caches, model, [len(r) for r in rows], padding_side)


__all__ = ["BatchedActivationCache", "batch_rows", "batch_items", "per_row", "pad_tokens", "pad_stack", "run_batch", "PAD_ID"]
