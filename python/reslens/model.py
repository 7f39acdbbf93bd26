"""``reslens.Model``: a loaded transformer with TransformerLens's names (HookedTransformer's API where
the concept is the same): ``cfg``, ``to_tokens``, ``run_with_cache``, ``W_E``, ``W_Q[l]``, ...

Weights are read-only numpy views over reslens's memory (memory-mapped F32 files are used in place),
shaped as TransformerLens shapes them. reslens stores matrices ``[out, in]``; the TL-shaped arrays are
zero-copy strided views of them, except where the docstring of a property says it is a copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Callable, Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _core
from . import generation as _generation
from . import hooks as _hooks
from .batch import batch_rows, check_side, pad_tokens, run_batch
from .cache import ActivationCache
from .embedding import embed as _embed, pos_embed as _pos_embed, unembed as _unembed
from .intervention import resolve as _resolve_intervention
from .norm import Norm
from .unbatched import guard
from .utils import readonly, reshape_view
from .weights import FactoredMatrix, StackedMixin, state_dict as _state_dict

TokensLike = Union[str, Sequence[int], np.ndarray]
NamesFilter = Union[None, str, Sequence[str], Callable[[str], bool]]


@dataclass(frozen=True)
class Config:
    """The model's hyperparameters with TransformerLens's names (``HookedTransformerConfig``).

    Differences from TransformerLens: ``n_key_value_heads`` is always an int (== ``n_heads`` without
    grouped-query attention; TL uses None there); ``dtype`` is the storage type of the file ("F32",
    "F16", "BF16", "Q8_0", "Q4_K", ..., "mixed") while reslens always computes in float32.
    """

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    act_fn: str  # "gelu_new" (tanh form) | "gelu" (exact, GPT-NeoX from HF) | "silu"
    normalization_type: str  # "LN" | "RMS"
    positional_embedding_type: str  # "standard" | "rotary"
    n_key_value_heads: int
    eps: float
    gated_mlp: bool
    rotary_base: float
    rotary_dim: int
    rope_layout: str  # "half" (Hugging Face, GGUF qwen2) | "interleaved" (GGUF llama, llama2.c): how W_Q/W_K rows pair
    rope_scaling: dict  # {"type": "none"|"linear"|"llama3"|"rope_freqs"|"yarn"|"longrope", "linear_factor",
    #                     "freq_factors", "attn_factor", "factor", "original_context", "factor_set"}
    tied_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    n_experts: int  # mixture of experts (0: dense); d_mlp = n_experts * d_expert, neuron e*d_expert+k = expert e's k
    n_experts_used: int
    d_expert: int
    d_shared_expert: int  # Qwen2-MoE's shared expert: its neurons follow the routed ones
    parallel_residual: bool  # GPT-NeoX: the MLP reads the block input (hook_resid_mid is still x + attn)
    embedding_scale: float  # Gemma: sqrt(d_model); hook_embed / resid_pre 0 hold W_E rows times it
    qk_norm_full: bool  # OLMo 2: q/k RMSNorm over the whole projections
    pre_norm: bool  # False for OLMo 2 (no ln1/ln2: the sublayers read the stream)
    post_norm: bool  # OLMo 2: sublayer outputs RMS-normalised; W_O / W_out hold the norm weights folded in
    qk_norm: bool  # Qwen3: per-head RMSNorm of queries and keys before RoPE (hook_q / hook_k are after it)
    sliding_window: int  # 0: none; applied on the windowed layers when window_applied, else longer sequences are refused
    window_applied: bool  # Gemma 2 and 3: the pass masks keys outside the window (local layers)
    attn_softcap: float  # Gemma 2: attention scores c * tanh(score / c) before the mask; 0: none
    final_softcap: float  # Gemma 2: logits c * tanh(logit / c), also in every attribution score; 0: none
    architecture: str  # "llama" | "gpt2" | "gpt_neox"
    original_architecture: str
    model_name: str
    dtype: str
    format: str
    path: str
    n_params: int
    default_prepend_bos: bool
    tokenizer_kind: str

    @property
    def d_vocab_out(self) -> int:
        return self.d_vocab

    @property
    def tokenizer_prepends_bos(self) -> bool:
        return self.default_prepend_bos

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class LayerParams(StackedMixin, Sequence[np.ndarray]):
    """One parameter of every layer: ``model.W_Q[l]`` is layer l's array (a view where possible).

    TransformerLens stacks layers into one tensor; reslens's layers sit wherever the file put them, so
    stacking copies. ``np.asarray(model.W_Q)`` (or ``.stack()``) gives the stacked
    ``[n_layers, ...]`` array as a copy. Indexing with a tuple or a slice (``W_O[1, 2]``,
    ``W_Q[:, 0]``, ``W_Q[1:3]``), operators (``W_Q * 2``) and numpy functions act on that stacked
    array as on TL's tensor (reslens/weights.py).
    """

    def __init__(self, get: Callable[[int], Optional[np.ndarray]], n_layers: int, name: str):
        self._get = get
        self._n = n_layers
        self._cache: dict[int, Optional[np.ndarray]] = {}
        self.name = name

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, layer):  # type: ignore[override]
        if isinstance(layer, (slice, tuple, list, np.ndarray)) or layer is Ellipsis:
            return self.stacked()[layer]
        layer = int(layer)
        if layer < -self._n or layer >= self._n:
            raise IndexError(f"layer {layer} is out of range (the model has {self._n} layers)")
        layer %= self._n
        if layer not in self._cache:
            self._cache[layer] = self._get(layer)
        return self._cache[layer]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(self._n))

    def stack(self) -> np.ndarray:
        """All layers as one ``[n_layers, ...]`` array (a copy)."""
        return readonly(np.stack(list(self)))

    def __array__(self, dtype=None):
        a = np.stack(list(self))
        return a if dtype is None else a.astype(dtype)

    @property
    def shape(self) -> tuple:
        first = self[0]
        return (self._n,) + tuple(first.shape)

    def __repr__(self) -> str:
        return f"<reslens.LayerParams {self.name} {list(self.shape)}>"


class _Namespace:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self) -> str:
        return "<" + ", ".join(f"{k}" for k in self.__dict__) + ">"


class Model:
    """A loaded transformer (``reslens.load(path)``), named and shaped as TransformerLens's
    ``HookedTransformer`` where the concept is the same. One prompt has no batch dimension (logits
    are ``[pos, d_vocab]``, cache entries ``[pos, ...]``); a list of prompts or ``batch=True`` gives
    TL's ``[batch, pos, ...]`` (reslens/batch.py).

    >>> model = reslens.load("../shared/models/stories260K/stories260K.gguf")
    >>> model.cfg.n_layers, model.cfg.d_model
    (5, 64)
    >>> logits, cache = model.run_with_cache("Once upon a time")
    >>> cache["resid_pre", 3].shape
    (5, 64)
    """

    def __init__(self, core: _core.Model, threads: Optional[int] = None):
        self._core = core
        self.threads = 0 if threads is None else int(threads)
        self.cfg = Config(**core.config())
        self._hook_names: Optional[List[str]] = None
        self._tl: dict = {}

    # ---- loading -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Union[str, os.PathLike], threads: Optional[int] = None,
             tokenizer: Union[None, str, os.PathLike] = None) -> "Model":
        """Loads a model as ``reslens.load`` does."""
        return cls(_core.Model.load(os.fspath(path), os.fspath(tokenizer) if tokenizer else ""), threads)

    def __repr__(self) -> str:
        c = self.cfg
        return (f"<reslens.Model {c.model_name!r} {c.architecture}: {c.n_layers} layers, d_model {c.d_model}, "
                f"{c.n_heads} heads, d_mlp {c.d_mlp}, vocab {c.d_vocab}; {c.format}, {c.dtype}>")

    @property
    def core(self) -> _core.Model:
        """The compiled model (``reslens._core.Model``)."""
        return self._core

    # ---- tokens ----------------------------------------------------------------------------------

    def _bos(self, prepend_bos: Optional[bool]) -> bool:
        return self.cfg.default_prepend_bos if prepend_bos is None else bool(prepend_bos)

    def to_tokens(self, input: Union[str, Sequence[str]], prepend_bos: Optional[bool] = None,
                  padding_side: str = "right") -> np.ndarray:
        """Token ids of a string as a 1-D int64 array (TL returns ``[1, pos]``; reslens has no batch).
        ``prepend_bos`` None uses the model's own setting. A list of strings gives ``[batch, pos]``
        padded with -1 on ``padding_side`` (reslens/batch.py).

        >>> model.to_tokens("Once upon a time")
        array([  1, 403, 407, 261, 378])
        """
        if isinstance(input, (list, tuple)) and input and all(isinstance(x, str) for x in input):
            # TL pads a list of strings into [batch, pos]; reslens pads with -1 (no token), which
            # run_with_cache and forward read as padding, so padding is never run as a token.
            return pad_tokens([self.tokens(x, prepend_bos) for x in input], padding_side)
        if not isinstance(input, str):
            raise TypeError(f"to_tokens takes a string or a list of strings, not {type(input).__name__}")
        bos = self._bos(prepend_bos)
        if bos and self._core.bos_id < 0:
            raise ValueError("prepend_bos=True: this model's tokenizer has no BOS token")
        return np.asarray(self._core.encode(input, bos), dtype=np.int64)

    def tokens(self, input: TokensLike, prepend_bos: Optional[bool] = None) -> List[int]:
        """Token ids for any input the model's methods accept: a string (tokenized, BOS per
        ``prepend_bos``) or token ids (a list or a 1-D array; ``[1, pos]`` is accepted too)."""
        if isinstance(input, str):
            ids = self.to_tokens(input, prepend_bos).tolist()
            if not ids:
                raise ValueError("the prompt is empty and no BOS token is added: nothing to run "
                                 "(pass text, or prepend_bos=True)")
            return ids
        if isinstance(input, (list, tuple)) and any(isinstance(x, str) for x in input):
            raise TypeError("token ids must be ints, but this list holds strings: pass one text as a string, "
                            "or a list of texts to run_with_cache/forward/explain/ablate as a batch")
        a = np.asarray(input)
        if a.ndim == 2 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 1:
            raise ValueError(f"token ids must be one sequence (1-D), got shape {a.shape}: a batch is run by "
                             "run_with_cache/forward (a list of prompts or a 2-D array), one row per run")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"token ids must be integers, got {a.dtype}")
        if a.size == 0:
            raise ValueError("no tokens: nothing to run")
        return a.astype(np.int64).tolist()

    def to_str_tokens(self, input: TokensLike, prepend_bos: Optional[bool] = None) -> List[str]:
        """What each token reads as on its own: ``['<s>', ' Once', ' upon', ' a', ' time']``. A list of
        strings (or a 2-D id array, -1 padding dropped) gives one list per row, as TL's."""
        if isinstance(input, (list, tuple)) and input and all(isinstance(x, str) for x in input):
            return [self.to_str_tokens(x, prepend_bos) for x in input]  # type: ignore[misc]
        if isinstance(input, np.ndarray) and input.ndim == 2 and input.shape[0] != 1:
            return [self.to_str_tokens(r[r >= 0]) for r in input]  # type: ignore[misc]
        ids = self.to_tokens(input, prepend_bos) if isinstance(input, str) else self.tokens(input)
        return self._core.token_texts(list(map(int, ids)))

    def to_string(self, tokens: Union[int, Sequence[int], np.ndarray]) -> str:
        """The text token ids stand for (control tokens such as BOS render as nothing)."""
        a = np.asarray(tokens)
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"to_string takes token ids (ints), not {a.dtype} values")
        if a.ndim == 2:  # TL: a batch of sequences -> one string per row (-1 padding dropped)
            return [self.to_string(r[r >= 0]) for r in a]  # type: ignore[return-value]
        ids = [int(tokens)] if np.ndim(tokens) == 0 else a.reshape(-1).tolist()
        return self._core.decode(ids).decode("utf-8", errors="replace")

    def format_chat(self, user: str, system: Optional[str] = None, template: Optional[str] = None) -> str:
        """``user`` (and ``system``) laid out as an instruction-tuned model expects, ending where the
        assistant's reply begins (what ``reslens ... --chat`` does): with the model's own chat
        template, or ``template``, a built-in layout name ("chatml", "llama3", "llama2",
        "mistral-v7", "gemma", ...). Special tokens are written as text; ``to_tokens`` reads them.

        >>> model.format_chat("Hi", template="chatml")
        '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
        """
        source = self._core.chat_template if template is None else template
        return _core.Model.format_chat(source, user, system or "")

    def to_single_token(self, string: str) -> int:
        """The id of a string that is exactly one token (without BOS); ValueError otherwise."""
        ids = self._core.encode(string, False)
        if len(ids) != 1:
            raise ValueError(f"{string!r} is {len(ids)} tokens, not one: {self._core.token_texts(ids)}")
        return int(ids[0])

    def to_single_str_token(self, token: int) -> str:
        return self._core.token_texts([int(token)])[0]

    # ---- running ---------------------------------------------------------------------------------

    def hook_names(self) -> List[str]:
        """Every hook name a run of this model can record (TL names), in the cache's order."""
        if self._hook_names is None:
            self._hook_names = list(self._core.hook_names())
        return list(self._hook_names)

    def _patterns(self, names_filter: NamesFilter) -> Optional[List[str]]:
        if names_filter is None:
            return None
        if callable(names_filter):
            return [n for n in self.hook_names() if names_filter(n)]
        patterns = [names_filter] if isinstance(names_filter, str) else list(names_filter)
        if not all(isinstance(p, str) for p in patterns):
            raise TypeError("names_filter must be None, a hook name or pattern, a list of them, or a callable")
        for p in patterns:
            if "hook_result" in p:
                raise ValueError(f"{p!r}: reslens records no attn.hook_result (each head's output); "
                                 "cache.stack_head_results() computes it from attn.hook_z and W_O")
        return patterns

    def run_with_cache(self, input: TokensLike, names_filter: NamesFilter = None, *,
                       prepend_bos: Optional[bool] = None, threads: Optional[int] = None,
                       intervention=None, batch: Optional[bool] = None, padding_side: str = "right",
                       remove_batch_dim: bool = False):
        """Runs the model and records activations: ``logits, cache = model.run_with_cache(text)``.

        ``names_filter``: None records every hook; a string or a list of hook names or ``*`` patterns
        (``"blocks.*.hook_resid_post"``); or a callable ``name -> bool`` (evaluated on
        ``model.hook_names()`` before the run, since reslens fixes what to record before it starts).
        Returns logits ``[pos, d_vocab]`` and an :class:`ActivationCache` whose arrays are read-only
        zero-copy views over the run's memory. The GIL is released during the run.

        A batch (a list of prompts, a list of id lists, a 2-D id array padded with -1, or any input
        with ``batch=True``) gives TL's shapes: logits ``[batch, pos, d_vocab]`` and a
        ``BatchedActivationCache`` (``[batch, pos, ...]``), one run per row, padded with NaN on
        ``padding_side`` (reslens/batch.py). Unbatched logits and entries refuse TL's batch index
        (``logits[0, -1]`` raises IndexError; reslens/unbatched.py). ``remove_batch_dim=True`` (TL's
        argument) runs a batch of one row as that one prompt: logits ``[pos, d_vocab]`` and a plain cache.

        >>> logits, cache = model.run_with_cache("Once upon a time", names_filter="blocks.*.hook_resid_post")
        >>> list(cache.keys())[:2]
        ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']
        """
        check_side(padding_side)
        rows = batch_rows(self, input, prepend_bos, batch)
        n_threads = self.threads if threads is None else threads
        if rows is not None and remove_batch_dim:
            if len(rows) != 1:
                raise ValueError(f"remove_batch_dim=True needs a batch of 1, this one has {len(rows)} rows")
            input, rows = rows[0], None
        if rows is not None:
            return run_batch(self, rows, self._patterns(names_filter), n_threads, intervention, padding_side, True)
        ids = self.tokens(input, prepend_bos)
        run = _hooks.run(self, ids, self._patterns(names_filter), True, n_threads,
                         _resolve_intervention(intervention, len(ids)))
        return guard(run.logits, "d_vocab"), ActivationCache(run, self)

    def forward(self, input: TokensLike, return_type: str = "logits", *, prepend_bos: Optional[bool] = None,
                threads: Optional[int] = None, intervention=None, batch: Optional[bool] = None,
                padding_side: str = "right"):
        """Logits ``[pos, d_vocab]`` (``return_type="logits"``), the mean next-token cross-entropy
        (``"loss"``), or both (``"both"``), recording nothing. A batch (as ``run_with_cache``) gives
        ``[batch, pos, d_vocab]`` and the loss averaged over every row's real next-token predictions."""
        check_side(padding_side)
        if return_type not in ("logits", "loss", "both"):
            raise ValueError(f"return_type must be 'logits', 'loss' or 'both', not {return_type!r}")
        rows = batch_rows(self, input, prepend_bos, batch)
        n_threads = self.threads if threads is None else threads
        if rows is not None:
            logits, cache = run_batch(self, rows, [], n_threads, intervention, padding_side, False)
            if return_type == "logits":
                return logits
            if min(len(r) for r in rows) < 2:
                raise ValueError("the loss needs at least 2 tokens in every row")
            nll = [-_log_probs(r.run.logits[:-1])[np.arange(len(ids) - 1), ids[1:]] for r, ids in zip(cache.rows, rows)]
            loss = float(np.concatenate(nll).mean())
            return loss if return_type == "loss" else (logits, loss)
        ids = self.tokens(input, prepend_bos)
        run = _hooks.run(self, ids, [], True, n_threads, _resolve_intervention(intervention, len(ids)))
        logits = guard(run.logits, "d_vocab")
        if return_type == "logits":
            return logits
        if return_type not in ("loss", "both"):
            raise ValueError(f"return_type must be 'logits', 'loss' or 'both', not {return_type!r}")
        if len(ids) < 2:
            raise ValueError("the loss needs at least 2 tokens")
        lp = _log_probs(logits[:-1])
        loss = float(-lp[np.arange(len(ids) - 1), ids[1:]].mean())
        return loss if return_type == "loss" else (logits, loss)

    __call__ = forward

    # ---- hooks and generation (reslens/hooks.py, reslens/generation.py) ----------------------------

    def run_with_hooks(self, input: TokensLike, fwd_hooks: Sequence = (), bwd_hooks: Sequence = (),
                       reset_hooks_end: bool = True, clear_contexts: bool = False,
                       return_type: Optional[str] = "logits", **kwargs):
        """``forward`` with forward hooks ``fwd_hooks = [(name or filter, fn(act, hook) -> act | None)]``
        (TransformerLens's ``run_with_hooks``; see ``reslens.hooks``).

        >>> def zero(z, hook):
        ...     z[:, 0] = 0.0
        >>> logits = model.run_with_hooks("Once upon a time", fwd_hooks=[("blocks.1.attn.hook_z", zero)])
        """
        return _hooks.run_with_hooks(self, input, fwd_hooks, bwd_hooks, reset_hooks_end, clear_contexts,
                                     return_type, **kwargs)

    def hooks(self, fwd_hooks: Sequence = (), bwd_hooks: Sequence = (), reset_hooks_end: bool = True,
              clear_contexts: bool = False):
        """Context manager: ``with model.hooks(fwd_hooks=[(name, fn)]): logits, cache =
        model.run_with_cache(text)`` runs every pass of the block through the hooks."""
        return _hooks.hooks(self, fwd_hooks, bwd_hooks, reset_hooks_end, clear_contexts)

    def add_hook(self, name, hook, dir: str = "fwd", is_permanent: bool = False, prepend: bool = False) -> None:
        """Attaches ``hook(act, hook_point)`` at ``name`` (a hook name, a ``*`` pattern or a filter
        ``name -> bool``) until ``reset_hooks()`` (``is_permanent``: until
        ``reset_hooks(including_permanent=True)``). Only forward hooks (``dir="fwd"``)."""
        if dir != "fwd":
            raise NotImplementedError(f"dir={dir!r}: reslens has forward hooks only (no autograd)")
        _hooks.hook_state(self).add(name, hook, permanent=is_permanent, prepend=prepend)

    def reset_hooks(self, clear_contexts: bool = True, direction: str = "both",
                    including_permanent: bool = False) -> None:
        """Removes the hooks ``add_hook`` attached (permanent ones too with ``including_permanent``)."""
        _hooks.hook_state(self).reset(clear_contexts, including_permanent)

    def generate(self, input: TokensLike, max_new_tokens: int = 10, **kwargs):
        """Continues ``input`` as ``reslens generate`` does: greedy by default, or sampled with
        ``temperature`` and ``seed`` (see ``reslens.generation.generate`` for every keyword).

        >>> model.generate("Once upon a time", max_new_tokens=5)
        'Once upon a time, there was a little'
        """
        return _generation.generate(self, input, max_new_tokens, **kwargs)

    # ---- weights ---------------------------------------------------------------------------------

    def weight(self, name: str, layer: int = -1) -> Optional[np.ndarray]:
        """A weight exactly as reslens stores it, ``[out, in]`` (``W_U`` is ``[d_vocab, d_model]``,
        ``W_Q`` is ``[n_heads * d_head, d_model]`` with rows in the file's RoPE layout): always a
        read-only zero-copy view; None when the model has no such parameter. Names as in
        docs/naming.md: W_E, W_pos, W_U, b_U, ln_final_w, ln_final_b, and per layer ln1_w, ln1_b,
        W_Q, W_K, W_V, b_Q, b_K, b_V, W_O, b_O, ln2_w, ln2_b, W_in, W_gate, b_in, W_out, b_out."""
        return self._core.weight(name, layer)

    def _zeros(self, *shape: int) -> np.ndarray:
        return readonly(np.zeros(shape, dtype=np.float32))

    def _rope_perm(self) -> Optional[np.ndarray]:
        """Row order taking the file's interleaved RoPE rows of one head to Hugging Face's rotate_half
        order (the order of ``hook_q``/``hook_k``), or None when no reordering is needed."""
        c = self.cfg
        if c.positional_embedding_type != "rotary" or c.rope_layout != "interleaved":
            return None
        half = c.rotary_dim // 2
        return np.concatenate([np.arange(0, 2 * half, 2), np.arange(1, 2 * half, 2), np.arange(2 * half, c.d_head)])

    def _heads_in(self, name: str, layer: int, n_heads: int) -> np.ndarray:
        """W_Q/W_K/W_V of a layer as TL's ``[n_heads, d_model, d_head]``."""
        c = self.cfg
        raw = self.weight(name, layer)  # [n_heads * d_head, d_model], row stride ld
        v = reshape_view(raw, (n_heads, c.d_head, c.d_model)).transpose(0, 2, 1)
        perm = self._rope_perm() if name in ("W_Q", "W_K") else None
        if perm is not None:
            v = readonly(np.ascontiguousarray(v[:, :, perm]))
        return v

    def _heads_bias(self, name: str, layer: int, n_heads: int) -> np.ndarray:
        c = self.cfg
        raw = self.weight(name, layer)
        if raw is None:
            return self._zeros(n_heads, c.d_head)
        v = reshape_view(raw, (n_heads, c.d_head))
        perm = self._rope_perm() if name in ("b_Q", "b_K") else None
        if perm is not None:
            v = readonly(np.ascontiguousarray(v[:, perm]))
        return v

    def _repeat_kv(self, a: np.ndarray) -> np.ndarray:
        g = self.cfg.n_heads // self.cfg.n_key_value_heads
        return a if g == 1 else readonly(np.repeat(a, g, axis=0))

    def _layers(self, key: str, get: Callable[[int], Optional[np.ndarray]]) -> LayerParams:
        if key not in self._tl:
            self._tl[key] = LayerParams(get, self.cfg.n_layers, key)
        return self._tl[key]

    @property
    def W_E(self) -> np.ndarray:
        """[d_vocab, d_model] token embeddings (zero-copy)."""
        return self.weight("W_E")

    @property
    def W_pos(self) -> Optional[np.ndarray]:
        """[n_ctx, d_model] learned positions (GPT-2; None for rotary models) (zero-copy)."""
        return self.weight("W_pos")

    @property
    def W_U(self) -> np.ndarray:
        """[d_model, d_vocab] unembedding, TL's layout: the transpose of reslens's [d_vocab, d_model]
        (a zero-copy strided view)."""
        return self.weight("W_U").T

    @property
    def b_U(self) -> np.ndarray:
        """[d_vocab]; zeros (a copy) for every supported model, which have no unembedding bias."""
        b = self.weight("b_U")
        return self._zeros(self.cfg.d_vocab) if b is None else b

    @property
    def ln_final(self) -> Norm:
        """The final norm, callable as TL's: ``model.ln_final(x)`` ([..., d_model]); ``ln_final.w``
        and ``ln_final.b`` ([d_model]; ``b`` zeros (a copy) for RMSNorm models). Not folded into W_U
        unless the model was loaded with ``fold_ln=True`` (reslens/norm.py, fold.py)."""
        return self._norm("ln_final")  # type: ignore[return-value]

    def _norm(self, which: str, layer: int = -1) -> Optional[Norm]:
        w, b = self.weight(f"{which}_w", layer), self.weight(f"{which}_b", layer)
        if w is None:
            return None
        return Norm(w, self._zeros(self.cfg.d_model) if b is None else b, self.cfg.normalization_type == "LN",
                    self.cfg.eps, name=which if layer < 0 else f"blocks.{layer}.{which}")

    @property
    def W_Q(self) -> LayerParams:
        """``W_Q[l]``: [n_heads, d_model, d_head]. Zero-copy for Hugging Face checkpoints and GPT-2;
        a copy for GGUF and llama2.c Llama models, whose rows are stored in llama.cpp's interleaved
        RoPE order and are reordered to TL's (rotate_half) order, the order of ``hook_q``."""
        return self._layers("W_Q", lambda l: self._heads_in("W_Q", l, self.cfg.n_heads))

    @property
    def _W_K(self) -> LayerParams:
        """[n_key_value_heads, d_model, d_head] (TL's ``_W_K``); copied as W_Q is for interleaved RoPE."""
        return self._layers("_W_K", lambda l: self._heads_in("W_K", l, self.cfg.n_key_value_heads))

    @property
    def _W_V(self) -> LayerParams:
        """[n_key_value_heads, d_model, d_head] (TL's ``_W_V``; zero-copy)."""
        return self._layers("_W_V", lambda l: self._heads_in("W_V", l, self.cfg.n_key_value_heads))

    @property
    def W_K(self) -> LayerParams:
        """[n_heads, d_model, d_head]: with grouped-query attention each key head repeated for the
        query heads that share it (a copy, as TL's ``W_K``); otherwise as ``_W_K``."""
        return self._layers("W_K", lambda l: self._repeat_kv(self._W_K[l]))

    @property
    def W_V(self) -> LayerParams:
        """[n_heads, d_model, d_head]: as ``W_K`` (zero-copy unless grouped-query attention)."""
        return self._layers("W_V", lambda l: self._repeat_kv(self._W_V[l]))

    @property
    def W_O(self) -> LayerParams:
        """``W_O[l]``: [n_heads, d_head, d_model] (a zero-copy strided view of reslens's
        [d_model, n_heads * d_head]). ``W_O[l][h, n]`` is attention neuron (h, n)'s value vector."""
        c = self.cfg
        return self._layers("W_O", lambda l: reshape_view(self.weight("W_O", l), (c.d_model, c.n_heads, c.d_head))
                            .transpose(1, 2, 0))

    @property
    def b_Q(self) -> LayerParams:
        """[n_heads, d_head]; zeros (a copy) for models without Q/K/V biases."""
        return self._layers("b_Q", lambda l: self._heads_bias("b_Q", l, self.cfg.n_heads))

    @property
    def _b_K(self) -> LayerParams:
        return self._layers("_b_K", lambda l: self._heads_bias("b_K", l, self.cfg.n_key_value_heads))

    @property
    def _b_V(self) -> LayerParams:
        return self._layers("_b_V", lambda l: self._heads_bias("b_V", l, self.cfg.n_key_value_heads))

    @property
    def b_K(self) -> LayerParams:
        """[n_heads, d_head] (repeated under grouped-query attention, zeros without biases)."""
        return self._layers("b_K", lambda l: self._repeat_kv(self._b_K[l]))

    @property
    def b_V(self) -> LayerParams:
        """[n_heads, d_head] (repeated under grouped-query attention, zeros without biases)."""
        return self._layers("b_V", lambda l: self._repeat_kv(self._b_V[l]))

    def _vec(self, name: str, size: int) -> LayerParams:
        return self._layers(name, lambda l: self._zeros(size) if self.weight(name, l) is None else self.weight(name, l))

    @property
    def b_O(self) -> LayerParams:
        """[d_model] (zero-copy; zeros (a copy) for Llama-family models)."""
        return self._vec("b_O", self.cfg.d_model)

    @property
    def W_in(self) -> LayerParams:
        """``W_in[l]``: [d_model, d_mlp] (GPT-2 c_fc, Llama up_proj; a zero-copy transpose)."""
        return self._layers("W_in", lambda l: self.weight("W_in", l).T)

    @property
    def W_gate(self) -> Optional[LayerParams]:
        """``W_gate[l]``: [d_model, d_mlp] (Llama gate_proj, a zero-copy transpose). None for models
        without a gated MLP (GPT-2, GPT-NeoX; ``cfg.gated_mlp`` False), as the whole parameter."""
        if not self.cfg.gated_mlp:
            return None
        return self._layers("W_gate", lambda l: self.weight("W_gate", l).T)

    @property
    def W_out(self) -> LayerParams:
        """``W_out[l]``: [d_mlp, d_model] (a zero-copy transpose). ``W_out[l][k]`` is FFN neuron k's
        value vector fc2_k."""
        return self._layers("W_out", lambda l: self.weight("W_out", l).T)

    @property
    def b_in(self) -> LayerParams:
        """[d_mlp] (zeros (a copy) for Llama-family models)."""
        return self._vec("b_in", self.cfg.d_mlp)

    @property
    def b_out(self) -> LayerParams:
        """[d_model] (zeros (a copy) for Llama-family models)."""
        return self._vec("b_out", self.cfg.d_model)

    @property
    def blocks(self) -> List[_Namespace]:
        """TL-style per-block access: ``model.blocks[l].attn.W_Q``, ``.mlp.W_out``, ``.ln1.w``."""
        if "blocks" not in self._tl:
            out = []
            for l in range(self.cfg.n_layers):
                def ln(which: str, l: int = l) -> Optional[Norm]:
                    return self._norm(which, l)
                attn = _Namespace(W_Q=self.W_Q[l], W_K=self.W_K[l], W_V=self.W_V[l], W_O=self.W_O[l],
                                  b_Q=self.b_Q[l], b_K=self.b_K[l], b_V=self.b_V[l], b_O=self.b_O[l])
                mlp = _Namespace(W_in=self.W_in[l], W_gate=None if self.W_gate is None else self.W_gate[l], W_out=self.W_out[l],
                                 b_in=self.b_in[l], b_out=self.b_out[l])
                out.append(_Namespace(attn=attn, mlp=mlp, ln1=ln("ln1"), ln2=ln("ln2")))
            self._tl["blocks"] = out
        return self._tl["blocks"]

    def tokens_to_residual_directions(self, tokens: Union[int, str, Sequence[int], np.ndarray]) -> np.ndarray:
        """The unembedding direction(s) of token(s): ``W_U[:, token]`` ([d_model], or [..., d_model])."""
        if isinstance(tokens, str):
            tokens = self.to_single_token(tokens)
        return self.weight("W_U")[np.asarray(tokens)]

    # ---- TransformerLens's helpers (reslens/embedding.py, weights.py, fold.py) -----------------------

    def embed(self, tokens) -> np.ndarray:
        """[..., pos, d_model]: the token embeddings of ``tokens`` (``hook_embed``)."""
        return _embed(self, tokens)

    def pos_embed(self, tokens) -> np.ndarray:
        """[..., pos, d_model]: the learned positional embeddings (``hook_pos_embed``; zeros for rotary)."""
        return _pos_embed(self, tokens)

    def unembed(self, x) -> np.ndarray:
        """[..., d_vocab]: ``x @ W_U + b_U`` (and Gemma 2's final softcap): ``unembed(ln_final(x))`` are logits."""
        return _unembed(self, x)

    @property
    def OV(self) -> FactoredMatrix:
        """``W_V @ W_O`` per layer and head, factored: [n_layers, n_heads, d_model, d_model]."""
        return FactoredMatrix(self.W_V, self.W_O)

    @property
    def QK(self) -> FactoredMatrix:
        """``W_Q @ W_K^T`` per layer and head, factored: [n_layers, n_heads, d_model, d_model] (query
        side left; RoPE's position dependence is not in it)."""
        return FactoredMatrix(self.W_Q, np.swapaxes(self.W_K.stacked(), -1, -2))

    def state_dict(self) -> dict:
        """Every weight under TransformerLens's state_dict name (reslens/weights.py)."""
        return _state_dict(self)

    def folded(self) -> "Model":
        """This model with TransformerLens's ``fold_ln=True`` weights (reslens/fold.py); the same
        compiled model underneath, so runs and explanations are unchanged."""
        from .fold import FoldedModel
        return FoldedModel(self._core, self.threads)

    fold_ln_applied = False


def _log_probs(logits: np.ndarray) -> np.ndarray:
    lp = np.asarray(logits, dtype=np.float64)
    lp = lp - lp.max(-1, keepdims=True)
    return lp - np.log(np.exp(lp).sum(-1, keepdims=True))


def load(path: Union[str, os.PathLike], threads: Optional[int] = None,
         tokenizer: Union[None, str, os.PathLike] = None, fold_ln: bool = False) -> Model:
    """Loads a model: a ``.gguf`` file, a llama2.c ``.bin`` checkpoint (with ``tokenizer.bin`` or
    ``tok<vocab>.bin`` beside it, or ``tokenizer=``), or a Hugging Face directory: every format the
    CLI loads. ``threads``: worker threads of every call on this model (None = all cores). The GIL
    is released while loading.

    Raises FileNotFoundError (``reslens.NotFoundError``) for a missing path, ``reslens.FormatError``
    (a ValueError) for a malformed file, ``reslens.UnsupportedError`` (a NotImplementedError) for
    an architecture or type reslens does not implement.

    ``fold_ln=True`` gives TransformerLens's folded-norm weights (``model.folded()``, reslens/fold.py).

    >>> model = reslens.load("../shared/models/TinyStories-656K")
    >>> model.cfg.act_fn, model.cfg.normalization_type
    ('silu', 'RMS')
    """
    model = Model.load(path, threads, tokenizer)
    return model.folded() if fold_ln else model
