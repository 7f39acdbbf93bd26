"""TransformerLens's ``model.embed``, ``model.pos_embed`` and ``model.unembed`` as functions of the
model's weights, so TL formulas such as ``model.unembed(model.ln_final(resid))`` run unchanged.

``embed(tokens)`` is what ``hook_embed`` records (``W_E`` rows times Gemma's ``sqrt(d_model)``);
``pos_embed(tokens)`` is ``W_pos[:pos]`` (GPT-2; zeros ``[..., pos, d_model]`` for rotary models,
whose positions enter in attention); ``unembed(x)`` is ``x @ W_U + b_U`` followed by Gemma 2's final
softcap when the model has one, so ``unembed(ln_final(resid_post[-1]))`` equals the logits. Tokens
are a string (tokenized as the model's methods do), ids, or a 2-D batch; the result keeps their
leading shape (``[pos, d_model]`` or ``[batch, pos, d_model]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .model import Model


def _ids(model: "Model", tokens) -> np.ndarray:
    if isinstance(tokens, str):
        return np.asarray(model.tokens(tokens), dtype=np.int64)
    a = np.asarray(tokens)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got {a.dtype} (pass text as one string)")
    if a.size and (a.min() < 0 or a.max() >= model.cfg.d_vocab):
        raise IndexError(f"token id out of range 0..{model.cfg.d_vocab - 1} (-1 padding cannot be embedded)")
    return a.astype(np.int64)


def embed(model: "Model", tokens) -> np.ndarray:
    """[..., d_model] float32: the token embeddings ``hook_embed`` records."""
    ids = _ids(model, tokens)
    rows = model.weight("W_E")[ids]
    s = model.cfg.embedding_scale
    return rows * np.float32(s) if s not in (0.0, 1.0) else rows.copy()


def pos_embed(model: "Model", tokens) -> np.ndarray:
    """[..., pos, d_model] float32: the learned positions added to each token (``hook_pos_embed``)."""
    ids = _ids(model, tokens)
    n = ids.shape[-1] if ids.ndim else 1
    W_pos = model.weight("W_pos")
    if W_pos is None:
        return np.zeros(ids.shape + (model.cfg.d_model,), dtype=np.float32)
    if n > W_pos.shape[0]:
        raise IndexError(f"{n} positions exceed the model's {W_pos.shape[0]} learned positions")
    return np.broadcast_to(W_pos[:n], ids.shape + (model.cfg.d_model,)).copy()


def unembed(model: "Model", x) -> np.ndarray:
    """[..., d_vocab] float32: ``x @ W_U + b_U`` (float64 inside), then the final softcap if any."""
    a = np.asarray(x, dtype=np.float64)
    W_U = model.W_U  # [d_model, d_vocab]; the folded one on a folded model
    if a.shape[-1:] != (W_U.shape[0],):
        raise ValueError(f"unembed takes [..., d_model={W_U.shape[0]}], got shape {a.shape}")
    out = a @ W_U.astype(np.float64) + model.b_U.astype(np.float64)
    c = model.cfg.final_softcap
    if c:
        out = c * np.tanh(out / c)
    return out.astype(np.float32)


__all__ = ["embed", "pos_embed", "unembed"]
