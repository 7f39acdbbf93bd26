"""The folded-norm view of a model: ``reslens.load(path, fold_ln=True)`` or ``model.fold_ln()``.

TransformerLens loads models with ``fold_ln=True``: each norm's weight ``w`` (and bias ``b``) is
multiplied into the matrices that read the norm's output, and the norm itself keeps only its
centring and scaling. TL formulas written for that layout (``scaled @ model.W_U`` for the logit
lens, ``normalized @ W_Q``) are then right as written. reslens computes with the checkpoint's own
weights either way; this view only changes what the weight properties give:

- ``W_U = w_f[:, None] * W_U``, ``b_U = b_U + b_f @ W_U`` (the final norm ``ln_final``);
- ``W_Q, W_K, W_V = w_1[:, None] * W`` per head, ``b_Q, b_K, b_V = b + b_1 @ W`` (``ln1``);
- ``W_in, W_gate = w_2[:, None] * W``, ``b_in = b_in + b_2 @ W_in`` (``ln2``);
- LayerNorm models: each folded matrix is then centred over ``d_model`` (TL's ``center_weights``;
  the norm's output is centred, so this changes no result);
- ``ln_final``, ``blocks[l].ln1``/``ln2`` become TL's ``LNPre``/``RMSNormPre``: callable, centring
  and scaling only, with ``w`` ones and ``b`` zeros;
- cache entries ``*.hook_normalized`` are TL's folded ones: ``(normalized - b) / w``.

Not folded, as in TL's defaults: nothing else (``center_unembed`` and ``center_writing_weights``
are not applied; ``W_E``, ``W_O``, ``W_out`` are the checkpoint's). Gemma 2's final softcap is not
linear and stays in ``model.unembed``. Folded weights are float32 copies computed in float64.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .model import LayerParams, Model
from .norm import Norm
from .utils import readonly


def _f32(a: np.ndarray) -> np.ndarray:
    return readonly(np.ascontiguousarray(a, dtype=np.float32))


class FoldedModel(Model):
    """A :class:`Model` whose weight properties are TransformerLens's ``fold_ln=True`` weights
    (module docstring). Runs, explanations and caches are those of the same model."""

    fold_ln_applied = True

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + ", fold_ln>"

    def _norm_wb(self, which: str, layer: int = -1):
        w = self.weight(f"{which}_w", layer)
        if w is None:
            return None, None
        b = self.weight(f"{which}_b", layer)
        return w.astype(np.float64), (np.zeros(w.shape) if b is None else b.astype(np.float64))

    def _fold_in(self, W: np.ndarray, which: str, layer: int, axis_d: int) -> np.ndarray:
        """W reading the norm's output along ``axis_d`` (its d_model axis), with w multiplied in."""
        w, _ = self._norm_wb(which, layer)
        if w is None:
            return W
        shape = [1] * W.ndim
        shape[axis_d] = -1
        out = W.astype(np.float64) * w.reshape(shape)
        if self.cfg.normalization_type == "LN":
            out = out - out.mean(axis=axis_d, keepdims=True)
        return _f32(out)

    def _fold_bias(self, W: np.ndarray, bias: np.ndarray, which: str, layer: int, axis_d: int) -> np.ndarray:
        """bias + b_norm @ W (contracting W's d_model axis ``axis_d``)."""
        _, b = self._norm_wb(which, layer)
        if b is None or not b.any():
            return bias
        return _f32(bias.astype(np.float64) + np.tensordot(b, W.astype(np.float64), axes=([0], [axis_d])))

    def _folded(self, key: str, base: LayerParams, which: str, axis_d: int) -> LayerParams:
        return self._layers("folded_" + key, lambda l: self._fold_in(base[l], which, l, axis_d))

    def _folded_bias(self, key: str, W: LayerParams, bias: LayerParams, which: str, axis_d: int) -> LayerParams:
        return self._layers("folded_" + key, lambda l: self._fold_bias(W[l], bias[l], which, l, axis_d))

    # Attention: [n_heads, d_model, d_head], d_model on axis 1. ---------------------------------------
    W_Q = property(lambda self: self._folded("W_Q", Model.W_Q.fget(self), "ln1", 1))  # type: ignore[attr-defined]
    _W_K = property(lambda self: self._folded("_W_K", Model._W_K.fget(self), "ln1", 1))  # type: ignore[attr-defined]
    _W_V = property(lambda self: self._folded("_W_V", Model._W_V.fget(self), "ln1", 1))  # type: ignore[attr-defined]
    b_Q = property(lambda self: self._folded_bias("b_Q", Model.W_Q.fget(self), Model.b_Q.fget(self), "ln1", 1))  # type: ignore[attr-defined]
    _b_K = property(lambda self: self._folded_bias("_b_K", Model._W_K.fget(self), Model._b_K.fget(self), "ln1", 1))  # type: ignore[attr-defined]
    _b_V = property(lambda self: self._folded_bias("_b_V", Model._W_V.fget(self), Model._b_V.fget(self), "ln1", 1))  # type: ignore[attr-defined]

    # MLP: [d_model, d_mlp], d_model on axis 0. ---------------------------------------------------------
    W_in = property(lambda self: self._folded("W_in", Model.W_in.fget(self), "ln2", 0))  # type: ignore[attr-defined]
    b_in = property(lambda self: self._folded_bias("b_in", Model.W_in.fget(self), Model.b_in.fget(self), "ln2", 0))  # type: ignore[attr-defined]

    @property
    def W_gate(self) -> Optional[LayerParams]:
        base = Model.W_gate.fget(self)  # type: ignore[attr-defined]
        if base is None:
            return None
        if self.cfg.normalization_type == "LN":  # a bias b_2 @ W_gate would have nowhere to go
            raise NotImplementedError("fold_ln: a gated MLP after a LayerNorm has no gate bias to fold b into")
        return self._folded("W_gate", base, "ln2", 0)

    # Unembedding: [d_model, d_vocab]. ------------------------------------------------------------------
    @property
    def W_U(self) -> np.ndarray:
        if "folded_W_U" not in self._tl:
            self._tl["folded_W_U"] = self._fold_in(self.weight("W_U").T, "ln_final", -1, 0)
        return self._tl["folded_W_U"]

    @property
    def b_U(self) -> np.ndarray:
        if "folded_b_U" not in self._tl:
            self._tl["folded_b_U"] = self._fold_bias(self.weight("W_U").T, Model.b_U.fget(self),  # type: ignore[attr-defined]
                                                     "ln_final", -1, 0)
        return self._tl["folded_b_U"]

    def tokens_to_residual_directions(self, tokens) -> np.ndarray:
        """The folded unembedding direction(s) ``W_U[:, token]`` ([d_model] or [..., d_model])."""
        if isinstance(tokens, str):
            tokens = self.to_single_token(tokens)
        return self.W_U.T[np.asarray(tokens)]

    # Norms: centring and scaling only. ------------------------------------------------------------------
    def _norm(self, which: str, layer: int = -1) -> Optional[Norm]:
        w = self.weight(f"{which}_w", layer)
        if w is None:
            return None
        ones = readonly(np.ones(self.cfg.d_model, dtype=np.float32))
        return Norm(ones, readonly(np.zeros(self.cfg.d_model, dtype=np.float32)),
                    self.cfg.normalization_type == "LN", self.cfg.eps, folded=True,
                    name=which if layer < 0 else f"blocks.{layer}.{which}")


def folded_normalized(model: Model, name: str, value: np.ndarray) -> np.ndarray:
    """TL's folded ``hook_normalized`` from reslens's: ``(value - b) / w`` of the norm it belongs to."""
    if name == "ln_final.hook_normalized":
        which, layer = "ln_final", -1
    else:
        parts = name.split(".")  # blocks.L.ln1.hook_normalized
        which, layer = parts[2], int(parts[1])
    w = model.weight(f"{which}_w", layer)
    b = model.weight(f"{which}_b", layer)
    if w is None:
        return value
    out = value.astype(np.float64) - (0.0 if b is None else b)
    return readonly((out / w.astype(np.float64)).astype(np.float32))


__all__ = ["FoldedModel", "folded_normalized"]
