"""The model's norms as TransformerLens's callable modules: ``model.ln_final(x)``,
``model.blocks[l].ln1(x)``, ``model.blocks[l].ln2(x)``, with the weights as ``.w`` and ``.b``.

A call applies the norm as the forward pass does, to any ``[..., d_model]`` array: LayerNorm
``(x - mean) / sqrt(var + eps) * w + b`` or RMSNorm ``x / sqrt(mean(x^2) + eps) * w`` (Gemma's
``1 + w`` is already in ``w``). It computes in float64 and returns float32. On a folded model
(``reslens.load(..., fold_ln=True)``) the weight and bias live in the next layer's matrices, so the
norm only centres (LayerNorm) and divides by the scale, as TL's ``LNPre``/``RMSNormPre``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


class Norm:
    """One norm: callable, with ``w`` and ``b`` ([d_model]; ``b`` zeros for RMSNorm)."""

    def __init__(self, w: np.ndarray, b: Optional[np.ndarray], layer_norm: bool, eps: float, folded: bool = False,
                 name: str = "ln_final"):
        self.w = w
        self.b = np.zeros_like(w) if b is None else b
        self.layer_norm = bool(layer_norm)
        self.eps = float(eps)
        self.folded = bool(folded)
        self.name = name

    def scale(self, x) -> np.ndarray:
        """The norm's scale of ``x`` ([..., 1], float64): what ``hook_scale`` records."""
        x = np.asarray(x, dtype=np.float64)
        if self.layer_norm:
            x = x - x.mean(axis=-1, keepdims=True)
        return np.sqrt((x * x).mean(axis=-1, keepdims=True) + self.eps)

    def __call__(self, x) -> np.ndarray:
        """The norm of ``x`` ([..., d_model]) as float32: with the weight and bias, or only centred
        and scaled on a folded model."""
        a = np.asarray(x, dtype=np.float64)
        if a.shape[-1:] != self.w.shape:
            raise ValueError(f"{self.name} takes [..., d_model={self.w.shape[0]}], got shape {a.shape}")
        if self.layer_norm:
            a = a - a.mean(axis=-1, keepdims=True)
        out = a / self.scale(x)
        if not self.folded:
            out = out * self.w.astype(np.float64) + self.b.astype(np.float64)
        return out.astype(np.float32)

    def __repr__(self) -> str:
        kind = "LayerNorm" if self.layer_norm else "RMSNorm"
        return f"<reslens.Norm {self.name}: {kind}{' (folded: no weight)' if self.folded else ''}, eps {self.eps}>"


__all__ = ["Norm"]
