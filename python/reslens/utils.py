"""Small helpers shared by the package: TransformerLens's short hook names, position slices, inputs."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

# TransformerLens's aliases (utils.get_act_name).
_ALIASES = {
    "attn": "pattern",
    "attn_logits": "attn_scores",
    "key": "k",
    "query": "q",
    "value": "v",
    "mlp_pre": "pre",
    "mlp_post": "post",
}
_ATTN = {"q", "k", "v", "z", "rot_q", "rot_k", "pattern", "attn_scores", "result"}
_MLP = {"pre", "post", "pre_linear"}
_LAYER_TYPES = {"a": "attn", "m": "mlp", "b": "", "block": "", "blocks": "", "attention": "attn"}

PosSlice = Union[None, int, slice, Sequence[int], np.ndarray]


def get_act_name(name: str, layer: Optional[int] = None, layer_type: Optional[str] = None) -> str:
    """The full hook name for TransformerLens's short form, as ``transformer_lens.utils.get_act_name``.

    >>> get_act_name("resid_pre", 3)
    'blocks.3.hook_resid_pre'
    >>> get_act_name("pattern", 0)
    'blocks.0.attn.hook_pattern'
    >>> get_act_name("scale", 2, "ln1")
    'blocks.2.ln1.hook_scale'
    >>> get_act_name("scale")
    'ln_final.hook_scale'
    """
    if ("." in name or name.startswith("hook_")) and layer is None and layer_type is None:
        return name  # already a full name
    name = _ALIASES.get(name, name)
    if layer_type is not None:
        layer_type = _LAYER_TYPES.get(layer_type, layer_type)
    if name in _ATTN:
        layer_type = "attn"
    elif name in _MLP:
        layer_type = "mlp"
    full = f"blocks.{layer}." if layer is not None else ""
    if layer_type:
        full += f"{layer_type}."
    full += f"hook_{name}"
    if name in ("scale", "normalized") and layer is None:
        full = f"ln_final.{full}"
    return full


def apply_pos_slice(array: np.ndarray, pos_slice: PosSlice, axis: int = -2) -> np.ndarray:
    """``array`` sliced along its position axis as TransformerLens's ``Slice`` does: None keeps every
    position, an int selects one (dropping the axis), a slice or a list of indices keeps several."""
    if pos_slice is None:
        return array
    index: list[Any] = [slice(None)] * array.ndim
    index[axis] = pos_slice if isinstance(pos_slice, (int, np.integer, slice)) else np.asarray(pos_slice)
    return array[tuple(index)]


def readonly(a: np.ndarray) -> np.ndarray:
    """Marks an array this package computed (a copy) read-only, like the zero-copy views."""
    a.setflags(write=False)
    return a


def reshape_view(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A reshaped *view* of ``a``; raises instead of silently copying when the strides do not allow it."""
    v = a.view()
    v.shape = tuple(shape)
    return v


def progress_callback(progress: Any, bar: Callable[[], Callable[..., None]], signature: str) -> Optional[Callable[..., None]]:
    """The callback a ``progress=`` argument asks for: True -> ``bar()`` (a line on stderr), False or
    None -> no callback, a callable -> itself; anything else is a TypeError naming ``signature``."""
    if progress is True:
        return bar()
    if progress is False or progress is None:
        return None
    if callable(progress):
        return progress
    raise TypeError(f"progress must be True, False, None or a callable {signature}")
