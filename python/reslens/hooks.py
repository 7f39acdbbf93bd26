"""Forward hooks, as TransformerLens has them: a function ``fn(act, hook) -> act | None`` runs at a hook
point while the model runs, reads the activation and may replace it; the rest of the pass reads what
it leaves. Activation patching, mean or resample ablation and steering are hooks.

>>> def zero_head_2(z, hook):           # z: [pos, n_heads, d_head], a writable float32 copy
...     z[:, 2] = 0.0                    # changed in place (return None), or return a new array
>>> logits = model.run_with_hooks("Once upon a time", fwd_hooks=[("blocks.1.attn.hook_z", zero_head_2)])
>>> with model.hooks(fwd_hooks=[(lambda name: name.endswith("hook_z"), zero_head_2)]):
...     logits, cache = model.run_with_cache("Once upon a time")   # the cache holds the hooked values
>>> float(abs(cache["z", 3][:, 2]).max())
0.0

How reslens's hooks differ from TransformerLens's:

- Activations have no batch dimension (``[pos, d_model]``, ``[pos, n_heads, d_head]``,
  ``[n_heads, query_pos, key_pos]``: the shapes of ``run_with_cache``), and they are numpy float32
  arrays. ``act`` is a copy: keeping it, or changing it after the hook returned, does not touch the run.
- A returned array must have the activation's shape (it is cast to float32).
- The norm scales (``*.hook_scale``) are read-only: a hook that changes one is a
  ``reslens.UnsupportedError`` (hook ``hook_normalized`` or the sublayer output instead). The causal
  mask stays: masked scores must stay -inf and masked pattern weights 0.
- Hooks run in forward passes (``model(...)``, ``forward``, ``run_with_cache``, ``run_with_hooks``).
  ``reslens.explain``, ``ablate``, ``lens`` and ``model.generate`` refuse to run while hooks are
  attached (they would ignore them): run them outside ``model.hooks(...)`` or after ``reset_hooks()``.
- There are no backward hooks (reslens has no autograd): ``bwd_hooks`` must be empty.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core

if TYPE_CHECKING:
    from .model import Model

HookFn = Callable[[np.ndarray, "HookPoint"], Optional[np.ndarray]]
NameOrFilter = Union[str, Callable[[str], bool]]


class HookPoint:
    """Where a hook runs (TransformerLens's ``HookPoint``): ``name`` (``"blocks.1.attn.hook_z"``),
    ``layer()``, and ``ctx``, a dict that lives as long as the point's context (``reset_hooks``
    with ``clear_contexts=True`` empties it), for hooks that keep state between calls."""

    def __init__(self, name: str, ctx: Dict[str, Any]):
        self.name = name
        self.ctx = ctx

    def layer(self) -> int:
        """The block index of a ``blocks.L....`` name (ValueError for ``hook_embed``, ``ln_final.*``)."""
        parts = self.name.split(".")
        if len(parts) < 3 or parts[0] != "blocks":
            raise ValueError(f"{self.name} is not in a block, so it has no layer")
        return int(parts[1])

    def __repr__(self) -> str:
        return f"<reslens.HookPoint {self.name}>"


class _Hook:
    __slots__ = ("name", "fn", "permanent", "owner")

    def __init__(self, name: str, fn: HookFn, permanent: bool, owner: object):
        self.name, self.fn, self.permanent, self.owner = name, fn, permanent, owner


class HookState:
    """The hooks attached to one model, in the order they run, and their points' contexts."""

    def __init__(self, model: "Model"):
        self._model = model
        self._hooks: List[_Hook] = []
        self._ctx: Dict[str, Dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def names(self, name_or_filter: NameOrFilter) -> List[str]:
        """The hook names a name, a ``*`` pattern or a filter ``name -> bool`` stands for (a pattern
        stays a pattern: the library matches it)."""
        if isinstance(name_or_filter, str):
            _core.validate_patterns([name_or_filter])  # ValueError naming the nearest hook
            return [name_or_filter]
        if callable(name_or_filter):
            return [n for n in self._model.hook_names() if name_or_filter(n)]
        raise TypeError(f"a hook is (name or filter, fn): a hook name, a '*' pattern or a callable "
                        f"name -> bool, not {type(name_or_filter).__name__}")

    def add(self, name_or_filter: NameOrFilter, fn: HookFn, permanent: bool = False, prepend: bool = False,
            owner: object = None) -> None:
        if not callable(fn):
            raise TypeError(f"a hook function must be callable, not {type(fn).__name__}")
        new = [_Hook(n, fn, permanent, owner) for n in self.names(name_or_filter)]
        self._hooks = new + self._hooks if prepend else self._hooks + new

    def remove_owned(self, owner: object) -> None:
        self._hooks = [h for h in self._hooks if h.owner is not owner]

    def reset(self, clear_contexts: bool = True, including_permanent: bool = False) -> None:
        self._hooks = [h for h in self._hooks if h.permanent and not including_permanent]
        if clear_contexts:
            for ctx in self._ctx.values():
                ctx.clear()

    def point(self, name: str) -> HookPoint:
        return HookPoint(name, self._ctx.setdefault(name, {}))

    def for_run(self) -> List[Tuple[str, Callable[[np.ndarray, str], Optional[np.ndarray]]]]:
        """(pattern, fn(act, name)) pairs for ``_core.run_with_hooks``."""
        def wrap(fn: HookFn):
            return lambda act, name: fn(act, self.point(name))
        return [(h.name, wrap(h.fn)) for h in self._hooks]


def hook_state(model: "Model") -> HookState:
    """The model's hooks (created on first use)."""
    state = model.__dict__.get("_hook_state")
    if state is None:
        state = model.__dict__["_hook_state"] = HookState(model)
    return state


def refuse_hooks(model: "Model", what: str) -> None:
    """Raises RuntimeError when hooks are attached to ``model``: ``what`` would not apply them."""
    state = model.__dict__.get("_hook_state")
    if state:
        raise RuntimeError(f"{what} does not run forward hooks, and this model has {len(state._hooks)} attached: "
                           "call it outside `with model.hooks(...)`, or after model.reset_hooks()")


def run(model: "Model", ids: List[int], patterns: Optional[List[str]], all_logits: bool = True, threads: int = 0,
        intervention: Optional[_core.Intervention] = None) -> _core.RunResult:
    """``_core.run(model.core, ids, patterns, all_logits, threads, intervention)`` (the same
    arguments), through the attached hooks when there are any: every forward pass of ``Model``
    goes through here so that attached hooks apply to all of them."""
    state = model.__dict__.get("_hook_state")
    if state:
        return _core.run_with_hooks(model.core, ids, patterns, state.for_run(), all_logits, threads, intervention)
    return _core.run(model.core, ids, patterns, all_logits, threads, intervention)


def _check_bwd(bwd_hooks: Sequence) -> None:
    if bwd_hooks:
        raise NotImplementedError("backward hooks: reslens has no autograd (bwd_hooks must be empty)")


@contextlib.contextmanager
def hooks(model: "Model", fwd_hooks: Sequence[Tuple[NameOrFilter, HookFn]] = (), bwd_hooks: Sequence = (),
          reset_hooks_end: bool = True, clear_contexts: bool = False) -> Iterator["Model"]:
    """``with model.hooks(fwd_hooks=[(name, fn)]):`` attaches the hooks for the block, then removes
    them (unless ``reset_hooks_end`` is False); ``clear_contexts`` also empties the points' ctx."""
    _check_bwd(bwd_hooks)
    state = hook_state(model)
    owner = object()
    try:
        for name_or_filter, fn in fwd_hooks:
            state.add(name_or_filter, fn, owner=owner)
        yield model
    finally:
        if reset_hooks_end:
            state.remove_owned(owner)
        if clear_contexts:
            for ctx in state._ctx.values():
                ctx.clear()


def run_with_hooks(model: "Model", input, fwd_hooks: Sequence[Tuple[NameOrFilter, HookFn]] = (),
                   bwd_hooks: Sequence = (), reset_hooks_end: bool = True, clear_contexts: bool = False,
                   return_type: Optional[str] = "logits", **kwargs):
    """``model.forward(input, return_type, **kwargs)`` with ``fwd_hooks`` (and any hooks already
    attached) applied; ``return_type`` None runs and returns None."""
    with hooks(model, fwd_hooks, bwd_hooks, reset_hooks_end, clear_contexts):
        out = model.forward(input, return_type=return_type or "logits", **kwargs)
    return None if return_type is None else out


__all__ = ["HookPoint", "HookFn", "hooks", "run_with_hooks", "hook_state", "refuse_hooks"]
