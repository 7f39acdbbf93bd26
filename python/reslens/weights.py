"""Stacked weights as arrays, TransformerLens's factored ``OV``/``QK`` circuits and ``state_dict()``.

``model.W_Q`` (and every per-layer parameter) indexes like TL's stacked ``[n_layers, ...]`` tensor:
``model.W_Q[l]`` is layer l (a view where possible, as before), ``model.W_O[1, 2]`` and
``model.W_Q[:, 0]`` index the stacked array, ``model.W_Q * 2``, ``model.W_V @ model.W_O`` and every
numpy function work on it. The stacked array is built once per parameter (a read-only copy:
reslens's layers sit wherever the file put them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Tuple

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .utils import readonly

if TYPE_CHECKING:
    from .model import Model


class StackedMixin(NDArrayOperatorsMixin):
    """Array behaviour for a per-layer parameter: operators and ufuncs act on the stacked array."""

    _stacked_cache: Optional[np.ndarray] = None

    def stacked(self) -> np.ndarray:
        """All layers as one read-only ``[n_layers, ...]`` array (built on first use)."""
        if self._stacked_cache is None:
            self._stacked_cache = readonly(np.stack([self[i] for i in range(len(self))]))  # type: ignore[index]
        return self._stacked_cache

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = [x.stacked() if isinstance(x, StackedMixin) else x for x in inputs]
        return getattr(ufunc, method)(*args, **kwargs)

    @property
    def ndim(self) -> int:
        return self.stacked().ndim

    @property
    def dtype(self):
        return self.stacked().dtype

    @property
    def T(self) -> np.ndarray:
        return self.stacked().T

    def transpose(self, *axes) -> np.ndarray:
        return self.stacked().transpose(*axes)

    def sum(self, *args, **kwargs):
        return self.stacked().sum(*args, **kwargs)

    def mean(self, *args, **kwargs):
        return self.stacked().mean(*args, **kwargs)

    def reshape(self, *args, **kwargs):
        return self.stacked().reshape(*args, **kwargs)


def _as_array(x) -> np.ndarray:
    return x.stacked() if isinstance(x, StackedMixin) else np.asarray(x)


class FactoredMatrix:
    """A product ``A @ B`` kept as its two factors (TL's ``FactoredMatrix``): ``A`` is
    ``[..., ldim, mdim]``, ``B`` ``[..., mdim, rdim]``. ``model.OV`` is ``W_V @ W_O``
    (``[n_layers, n_heads, d_model, d_model]``), ``model.QK`` is ``W_Q @ W_K^T``. Index the leading
    axes (``model.OV[1, 2]``), multiply (``x @ OV``), or materialize ``AB``."""

    def __init__(self, A, B):
        self.A = _as_array(A)
        self.B = _as_array(B)
        if self.A.shape[-1] != self.B.shape[-2]:
            raise ValueError(f"FactoredMatrix: A {self.A.shape} and B {self.B.shape} do not chain")

    @property
    def ldim(self) -> int:
        return self.A.shape[-2]

    @property
    def mdim(self) -> int:
        return self.A.shape[-1]

    @property
    def rdim(self) -> int:
        return self.B.shape[-1]

    @property
    def shape(self) -> Tuple[int, ...]:
        return np.broadcast_shapes(self.A.shape[:-2], self.B.shape[:-2]) + (self.ldim, self.rdim)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def AB(self) -> np.ndarray:
        """The product, materialized ([..., ldim, rdim], float32)."""
        return self.A @ self.B

    @property
    def BA(self) -> np.ndarray:
        """The factors the other way round ([..., mdim, mdim]): the same nonzero eigenvalues."""
        return self.B @ self.A

    @property
    def T(self) -> "FactoredMatrix":
        return FactoredMatrix(np.swapaxes(self.B, -1, -2), np.swapaxes(self.A, -1, -2))

    def __getitem__(self, index) -> "FactoredMatrix":
        if not isinstance(index, tuple):
            index = (index,)
        lead = len(self.shape) - 2
        if len(index) > lead:
            raise IndexError(f"index the leading {lead} axes of a FactoredMatrix ({self.shape}); use .AB for entries")
        A = np.broadcast_to(self.A, self.shape[:-2] + self.A.shape[-2:])
        B = np.broadcast_to(self.B, self.shape[:-2] + self.B.shape[-2:])
        return FactoredMatrix(A[index], B[index])

    def __matmul__(self, other):
        if isinstance(other, FactoredMatrix):
            return FactoredMatrix(self.A, (self.B @ other.A) @ other.B)
        return self.A @ (self.B @ np.asarray(other))

    def __rmatmul__(self, other):
        return (np.asarray(other) @ self.A) @ self.B

    def eigenvalues(self) -> np.ndarray:
        """The eigenvalues of ``BA`` ([..., mdim], complex): AB's nonzero ones."""
        return np.linalg.eigvals(self.BA.astype(np.float64))

    def svd(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``U [..., ldim, mdim]``, ``S [..., mdim]``, ``Vh [..., mdim, rdim]`` with ``AB = U diag(S) Vh``,
        computed from the factors (float64, no ``[ldim, rdim]`` product)."""
        Qa, Ra = np.linalg.qr(self.A.astype(np.float64))
        Qb, Rb = np.linalg.qr(np.swapaxes(self.B.astype(np.float64), -1, -2))
        U, S, Vh = np.linalg.svd(Ra @ np.swapaxes(Rb, -1, -2))
        return Qa @ U, S, Vh @ np.swapaxes(Qb, -1, -2)

    def norm(self) -> np.ndarray:
        """Frobenius norm of each matrix ([...])."""
        return np.sqrt((self.svd()[1] ** 2).sum(-1))

    def __array__(self, dtype=None):
        a = self.AB
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        return f"<reslens.FactoredMatrix {list(self.shape)} = A {list(self.A.shape)} @ B {list(self.B.shape)}>"


def state_dict(model: "Model") -> Dict[str, np.ndarray]:
    """Every weight under TransformerLens's ``state_dict`` name and shape (``embed.W_E``,
    ``blocks.0.attn.W_Q``, ``blocks.0.mlp.W_in``, ``unembed.W_U``, ...), as the model's properties
    give them (views where those are; the folded weights on a ``fold_ln`` model). Parameters the
    model does not have are left out (``pos_embed.W_pos`` on rotary models, ``mlp.W_gate`` without a
    gated MLP); grouped-query models give ``attn._W_K``/``attn._W_V`` as TL does."""
    c = model.cfg
    out: Dict[str, np.ndarray] = {"embed.W_E": model.W_E}
    if model.W_pos is not None:
        out["pos_embed.W_pos"] = model.W_pos
    gqa = c.n_key_value_heads != c.n_heads
    for l in range(c.n_layers):
        p = f"blocks.{l}"
        b = model.blocks[l]
        for ln in ("ln1", "ln2"):
            norm = getattr(b, ln)
            if norm is not None:
                out[f"{p}.{ln}.w"], out[f"{p}.{ln}.b"] = norm.w, norm.b
        out[f"{p}.attn.W_Q"] = model.W_Q[l]
        out[f"{p}.attn.{'_W_K' if gqa else 'W_K'}"] = (model._W_K if gqa else model.W_K)[l]
        out[f"{p}.attn.{'_W_V' if gqa else 'W_V'}"] = (model._W_V if gqa else model.W_V)[l]
        out[f"{p}.attn.W_O"] = model.W_O[l]
        out[f"{p}.attn.b_Q"] = model.b_Q[l]
        out[f"{p}.attn.{'_b_K' if gqa else 'b_K'}"] = (model._b_K if gqa else model.b_K)[l]
        out[f"{p}.attn.{'_b_V' if gqa else 'b_V'}"] = (model._b_V if gqa else model.b_V)[l]
        out[f"{p}.attn.b_O"] = model.b_O[l]
        out[f"{p}.mlp.W_in"] = model.W_in[l]
        if model.W_gate is not None:
            out[f"{p}.mlp.W_gate"] = model.W_gate[l]
        out[f"{p}.mlp.b_in"] = model.b_in[l]
        out[f"{p}.mlp.W_out"] = model.W_out[l]
        out[f"{p}.mlp.b_out"] = model.b_out[l]
    out["ln_final.w"], out["ln_final.b"] = model.ln_final.w, model.ln_final.b
    out["unembed.W_U"], out["unembed.b_U"] = model.W_U, model.b_U
    return out


__all__ = ["StackedMixin", "FactoredMatrix", "state_dict"]
