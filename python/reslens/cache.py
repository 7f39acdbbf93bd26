"""``reslens.ActivationCache``: the activations a run recorded, indexed as TransformerLens indexes them
(``cache["blocks.3.hook_resid_pre"]``, ``cache["resid_pre", 3]``), with TL's analysis helpers
(``accumulated_resid``, ``decompose_resid``, ``stack_head_results``, ``logit_attrs``, ...)
implemented in numpy over the cache's arrays and the model's weights.

Differences from TransformerLens, all following from reslens running one sequence at a time over
unmodified checkpoints:

- No batch dimension for one prompt: an entry is ``[pos, d_model]`` where TL has
  ``[batch, pos, d_model]``; stacks are ``[component, pos, d_model]``. A batch of prompts gives a
  ``BatchedActivationCache`` (reslens/batch.py) with TL's shapes.
- Entries are read-only zero-copy numpy views over the run's memory (``.copy()`` to modify).
- reslens does not fold layer norms into the weights (TL's ``fold_ln=True`` default). As in TL,
  ``apply_ln=True`` centres (LayerNorm) and divides by the recorded scale, without the norm's weight
  and bias; ``logit_attrs`` multiplies the unembedding directions by ``ln_final.w`` so its numbers
  are the contributions to the logits (what TL gives on a folded model); the norm's bias and
  ``b_U`` are constants that no component carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .unbatched import guard_hook
from .utils import PosSlice, apply_pos_slice, get_act_name

if TYPE_CHECKING:
    from . import _core
    from .model import Model


class LayerOutOfRange(KeyError, IndexError):
    """``cache[short_name, layer]`` with a layer the model does not have (a KeyError, as any missing
    cache key, and an IndexError)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ActivationCache(Mapping):
    """Hook name -> read-only numpy array. Keys are full TL names; ``cache[short, layer]`` and
    ``cache[short, layer, layer_type]`` resolve TL's short names (negative layers count from the end).

    >>> logits, cache = model.run_with_cache("Once upon a time")
    >>> cache["blocks.0.attn.hook_pattern"].shape      # [n_heads, query_pos, key_pos]
    (8, 5, 5)
    >>> np.shares_memory(cache["resid_post", -1], cache["blocks.4.hook_resid_post"])
    True
    """

    has_batch_dim = False

    def __init__(self, run: _core.RunResult, model: "Model"):
        self._run = run
        self.model = model
        self._names: Optional[List[str]] = None

    # ---- mapping ---------------------------------------------------------------------------------

    def _key(self, key) -> str:
        if isinstance(key, str):
            return get_act_name(key)
        if isinstance(key, tuple) and key and isinstance(key[0], str):
            name, rest = key[0], list(key[1:])
            if rest and rest[0] is not None:
                layer, n = int(rest[0]), self.model.cfg.n_layers
                if not -n <= layer < n:
                    raise LayerOutOfRange(f"layer {layer} is out of range for {name!r}: the model has {n} layers "
                                          f"(0..{n - 1}, or -{n}..-1 from the end)")
                rest[0] = layer % n
            return get_act_name(name, *rest)
        raise KeyError(f"cache keys are hook names or (short name, layer[, layer type]) tuples, not {key!r}")

    def __getitem__(self, key) -> np.ndarray:
        name = self._key(key)
        if not self._run.contains(name):
            if name.endswith("attn.hook_result"):
                raise KeyError(f"'{name}': reslens records no hook_result (each head's output); "
                               "cache.stack_head_results() computes it from attn.hook_z and W_O")
            hint = "" if name in self.model.hook_names() else " (this model has no such hook)"
            raise KeyError(f"'{name}' was not recorded{hint}; pass names_filter=None or a pattern that names it "
                           "to run_with_cache")
        value = self._run.get(name)
        if name.endswith("hook_normalized") and self.model.fold_ln_applied:
            from .fold import folded_normalized
            value = folded_normalized(self.model, name, value)
        return guard_hook(name, value)

    def __contains__(self, key) -> bool:
        try:
            return self._run.contains(self._key(key))
        except KeyError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def names(self) -> List[str]:
        if self._names is None:
            self._names = list(self._run.names())
        return self._names

    def __repr__(self) -> str:
        return f"<reslens.ActivationCache {len(self)} hooks, {self._run.nbytes / 2**20:.1f} MiB>"

    @property
    def run(self) -> _core.RunResult:
        """The compiled run result (its ``logits`` and ``get(name)``)."""
        return self._run

    def remove_batch_dim(self) -> "ActivationCache":
        """A no-op kept for TransformerLens notebooks: reslens caches have no batch dimension."""
        return self

    def to(self, *args, **kwargs) -> "ActivationCache":
        """A no-op kept for TransformerLens notebooks (arrays live in host memory)."""
        return self

    # ---- TL's analysis helpers ---------------------------------------------------------------------

    def _final(self, layer: Optional[int]) -> int:
        n = self.model.cfg.n_layers
        return n if layer is None or layer == -1 else int(layer)

    def apply_ln_to_stack(self, residual_stack: np.ndarray, layer: Optional[int] = None, mlp_input: bool = False,
                          pos_slice: PosSlice = None, batch_slice: PosSlice = None,
                          has_batch_dim: Optional[bool] = None) -> np.ndarray:
        """Divides a stack of residual components ``[..., pos, d_model]`` by the norm scale that the
        layer's input (``layer`` None or -1 or n_layers: the final norm; else ``ln1``, or ``ln2`` with
        ``mlp_input``) had in this run, after centring each component for LayerNorm models. As TL's
        ``apply_ln_to_stack``: the norm's weight and bias are not applied. Needs the scale hook.

        ``has_batch_dim`` (TL's argument) says whether ``residual_stack`` has a batch axis before the
        position axis; None means this cache's own (False here, True for a batch). A batch axis of
        size 1 on an unbatched cache is accepted (the scale broadcasts); a stack without one on a
        batched cache is refused unless the batch has one row. ``batch_slice`` selects rows of a
        batched cache's scale, as TL's."""
        x = np.asarray(residual_stack, dtype=np.float32)
        stack_batched = self.has_batch_dim if has_batch_dim is None else bool(has_batch_dim)
        if self.model.cfg.normalization_type == "LN":
            x = x - x.mean(axis=-1, keepdims=True)
        layer = self._final(layer)
        if layer == self.model.cfg.n_layers:
            scale = self["ln_final.hook_scale"]
        else:
            scale = self[f"blocks.{layer}.ln{2 if mlp_input else 1}.hook_scale"]
        scale = apply_pos_slice(scale, pos_slice)  # [(batch,) pos, 1] or [(batch,) 1]
        if self.has_batch_dim:
            if batch_slice is not None:
                scale = scale[batch_slice if isinstance(batch_slice, (int, np.integer, slice)) else np.asarray(batch_slice)]
            if not stack_batched:
                if scale.shape[0] != 1:
                    raise ValueError(f"has_batch_dim=False, but this cache is a batch of {scale.shape[0]} rows: "
                                     "pass the stack with its batch axis, or use cache.rows[i]")
                scale = scale[0]
        elif batch_slice is not None:
            raise ValueError("batch_slice: this cache has no batch dimension (run a list of prompts for one)")
        return x / scale

    def accumulated_resid(self, layer: Optional[int] = None, incl_mid: bool = False, apply_ln: bool = False,
                          pos_slice: PosSlice = None, mlp_input: bool = False, return_labels: bool = False
                          ) -> Union[np.ndarray, Tuple[np.ndarray, List[str]]]:
        """The residual stream before each layer up to ``layer`` (None/-1: all, then the final
        ``resid_post``), stacked ``[n, pos, d_model]``, with labels ``"0_pre"``, ``"0_mid"`` (with
        ``incl_mid``), ..., ``"final_post"``, as TL's ``accumulated_resid``. A copy (stacked).

        >>> resid, labels = cache.accumulated_resid(return_labels=True)
        >>> labels[0], labels[-1]
        ('0_pre', 'final_post')
        """
        n_layers = self.model.cfg.n_layers
        layer = self._final(layer)
        parts, labels = [], []
        for l in range(layer + 1):
            if l == n_layers:
                parts.append(self["resid_post", n_layers - 1])
                labels.append("final_post")
                continue
            parts.append(self["resid_pre", l])
            labels.append(f"{l}_pre")
            if (incl_mid and l < layer) or (mlp_input and l == layer):
                parts.append(self["resid_mid", l])
                labels.append(f"{l}_mid")
        stack = np.stack([apply_pos_slice(p, pos_slice) for p in parts])
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, mlp_input=mlp_input, pos_slice=pos_slice)
        return (stack, labels) if return_labels else stack

    def decompose_resid(self, layer: Optional[int] = None, mlp_input: bool = False, mode: str = "all",
                        apply_ln: bool = False, pos_slice: PosSlice = None, incl_embeds: bool = True,
                        return_labels: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, List[str]]]:
        """The residual stream before ``layer`` (None/-1: the final one) as the sum of its parts:
        ``embed``, ``pos_embed`` (GPT-2), then ``{l}_attn_out`` and ``{l}_mlp_out`` per layer
        (``mode`` "attn" or "mlp" keeps one kind), stacked ``[n, pos, d_model]`` as TL's
        ``decompose_resid``. The parts sum to ``resid_post`` of the last layer (up to rounding).
        """
        if mode not in ("all", "attn", "mlp"):
            raise ValueError(f"mode must be 'all', 'attn' or 'mlp', not {mode!r}")
        layer = self._final(layer)
        parts, labels = [], []
        if incl_embeds:
            parts.append(self["hook_embed"])
            labels.append("embed")
            if self.model.cfg.positional_embedding_type == "standard":
                parts.append(self["hook_pos_embed"])
                labels.append("pos_embed")
        for l in range(layer):
            if mode != "mlp":
                parts.append(self["attn_out", l])
                labels.append(f"{l}_attn_out")
            if mode != "attn":
                parts.append(self["mlp_out", l])
                labels.append(f"{l}_mlp_out")
        if mlp_input and mode != "mlp":
            parts.append(self["attn_out", layer])
            labels.append(f"{layer}_attn_out")
        stack = np.stack([apply_pos_slice(p, pos_slice) for p in parts])
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, mlp_input=mlp_input, pos_slice=pos_slice)
        return (stack, labels) if return_labels else stack

    def stack_head_results(self, layer: Optional[int] = None, return_labels: bool = False,
                           incl_remainder: bool = False, pos_slice: PosSlice = None, apply_ln: bool = False
                           ) -> Union[np.ndarray, Tuple[np.ndarray, List[str]]]:
        """Each head's output ``z[:, h] @ W_O[h]`` for the layers before ``layer`` (None/-1: all),
        stacked ``[n_layers * n_heads, pos, d_model]`` with labels ``"L{l}H{h}"``, as TL's
        ``stack_head_results``. reslens records no ``hook_result``: heads are computed here from
        ``attn.hook_z`` and ``W_O``; their sum plus ``b_O`` is ``hook_attn_out``. ``incl_remainder``
        appends the rest of the residual stream (``resid_post`` of layer-1 minus the heads).
        """
        c = self.model.cfg
        layer = self._final(layer)
        parts, labels = [], []
        for l in range(layer):
            z = self["z", l]  # [pos, n_heads, d_head] ([batch, pos, ...] in a batched cache)
            W_O = self.model.W_O[l]  # [n_heads, d_head, d_model]
            if self.has_batch_dim:  # -> [n_heads, batch, (pos,) d_model]
                z = apply_pos_slice(z, pos_slice, axis=1)
                parts.append(np.einsum("...hd,hdm->h...m", z, W_O))
                labels.extend(f"L{l}H{h}" for h in range(c.n_heads))
                continue
            z = apply_pos_slice(z, pos_slice, axis=0)
            if z.ndim == 2:  # one position: [n_heads, d_head]
                parts.append(np.einsum("hd,hdm->hm", z, W_O))
            else:
                parts.append(np.matmul(z.transpose(1, 0, 2), W_O))  # [n_heads, pos, d_model]
            labels.extend(f"L{l}H{h}" for h in range(c.n_heads))
        if not parts:
            shape = (0,) + apply_pos_slice(self["hook_embed"], pos_slice).shape
            stack = np.zeros(shape, dtype=np.float32)
        else:
            stack = np.concatenate(parts, axis=0)
        if incl_remainder:
            resid = self["resid_post", layer - 1] if layer > 0 else self["resid_pre", 0]
            stack = np.concatenate([stack, (apply_pos_slice(resid, pos_slice) - stack.sum(0))[None]], axis=0)
            labels.append("remainder")
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, pos_slice=pos_slice)
        return (stack, labels) if return_labels else stack

    def stack_neuron_results(self, layer: Optional[int] = None, pos_slice: PosSlice = None,
                             neuron_slice: Union[None, slice, Sequence[int]] = None, return_labels: bool = False,
                             apply_ln: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, List[str]]]:
        """Each FFN neuron's output ``m_k * W_out[k]`` for the layers before ``layer``, stacked
        ``[n_layers * n_neurons, pos, d_model]`` with labels ``"L{l}N{k}"`` (TL's
        ``stack_neuron_results``). Large: select neurons with ``neuron_slice``."""
        layer = self._final(layer)
        idx = np.arange(self.model.cfg.d_mlp)
        if neuron_slice is not None:
            idx = idx[neuron_slice] if isinstance(neuron_slice, slice) else np.asarray(neuron_slice)
        parts, labels = [], []
        for l in range(layer):
            post = apply_pos_slice(self["post", l], pos_slice)[..., idx]  # [pos, n] or [n]
            W_out = self.model.W_out[l][idx]  # [n, d_model]
            W_out = W_out.reshape((len(idx),) + (1,) * (post.ndim - 1) + (W_out.shape[-1],))  # [n, (1,)* d_model]
            parts.append(np.moveaxis(post, -1, 0)[..., None] * W_out)
            labels.extend(f"L{l}N{k}" for k in idx)
        stack = np.concatenate(parts, axis=0)
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, pos_slice=pos_slice)
        return (stack, labels) if return_labels else stack

    def logit_attrs(self, residual_stack: np.ndarray, tokens: Union[int, str, Sequence[int], np.ndarray],
                    incorrect_tokens: Union[None, int, str, Sequence[int], np.ndarray] = None,
                    pos_slice: PosSlice = None, batch_slice: PosSlice = None,
                    has_batch_dim: Optional[bool] = None) -> np.ndarray:
        """How much each component of ``residual_stack`` (``[n, pos, d_model]`` or ``[n, d_model]``)
        adds to the logit of ``tokens`` (minus ``incorrect_tokens``'s) through the final norm, with
        the norm's scale frozen at this run's (TL's ``logit_attrs``). reslens's W_U is not folded
        with ``ln_final.w``, so the directions here are ``ln_final.w * W_U[:, token]``: summed over
        ``decompose_resid()`` the attributions give the real logit minus ``ln_final.b @ W_U[:, token]``.
        On a batched cache ``tokens`` may hold one token per row (``[batch]``), as TL's.

        >>> stack, labels = cache.decompose_resid(return_labels=True, pos_slice=-1)
        >>> attrs = cache.logit_attrs(stack, tokens=int(logits[-1].argmax()), pos_slice=-1)  # [n]
        """
        def directions(t) -> np.ndarray:
            d = self.model.tokens_to_residual_directions(t)  # [..., d_model]
            return d * self.model.ln_final.w

        dirs = directions(tokens)
        if incorrect_tokens is not None:
            dirs = dirs - directions(incorrect_tokens)
        scaled = self.apply_ln_to_stack(residual_stack, None, pos_slice=pos_slice, batch_slice=batch_slice,
                                        has_batch_dim=has_batch_dim)
        if dirs.ndim == 2 and scaled.ndim >= 4:  # one token per row, stack [n, batch, pos, d_model]
            dirs = dirs[:, None, :]
        return (scaled * dirs).sum(axis=-1)


__all__ = ["ActivationCache"]
