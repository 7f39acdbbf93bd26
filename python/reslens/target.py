"""A target of several tokens (``reslens.explain(model, prompt, target=" New Delhi")``): every
target token explained at its position by teacher forcing, and every score summed over the steps
(``reslens explain --target " New Delhi"``; docs/explain.md, "Targets of several tokens").
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _core
from .explain import Explanation, LayerScore, TokenInfo, top_indices
from .utils import readonly

if TYPE_CHECKING:
    from .model import Model


@dataclass(frozen=True)
class SummedHeadScore:
    layer: int
    head: int
    label: str
    score: float  # summed over the steps
    steps: Tuple[float, ...]  # the score at each step


@dataclass(frozen=True)
class SummedFfnNeuronScore:
    layer: int
    neuron: int
    label: str
    score: float
    steps: Tuple[float, ...]


@dataclass(frozen=True)
class SummedAttnNeuronScore:
    layer: int
    head: int
    dim: int
    pos: int  # source position in the pass: the prompt, then the target's own tokens
    label: str
    score: float
    steps: Tuple[float, ...]


def _step_value(step: np.ndarray, summed_shape: Tuple[int, ...], flat: int) -> float:
    """A step's value at a flat index of a summed array; a step whose last (source-position) axis is
    shorter has no such source: 0."""
    idx = np.unravel_index(flat, summed_shape)
    if idx[-1] >= step.shape[-1]:
        return 0.0
    return float(step[idx])


def _stack(arrays: List[np.ndarray]) -> np.ndarray:
    """Arrays with a leading step axis; a shorter last axis is padded with 0 (the --out layout)."""
    n = max(a.shape[-1] for a in arrays)
    out = np.zeros((len(arrays),) + arrays[0].shape[:-1] + (n,))
    for i, a in enumerate(arrays):
        out[i, ..., :a.shape[-1]] = a
    return readonly(out)


class TargetExplanation:
    """A target of several tokens, explained by teacher forcing. ``steps``: one ``Explanation`` per
    target token (step t at position P + t, reading the prompt and the target's tokens before it);
    ``foil_steps``: the foil's own steps once it parts from the target. The summed scores are
    read-only float64 views:

    ==========================  ======================  =================================================
    attribute                   shape                   meaning
    ==========================  ======================  =================================================
    ``attn_layer``/``ffn_layer``  [L]                   layer scores summed over the steps
    ``head``                    [L, H]
    ``head_position``           [L, H, n]               n = P + m: every position of the pass
    ``ffn_neuron``              [L, N]
    ``attn_neuron``             [L, H, d_head, n]
    ``query_ffn_neuron``        [L, N]                  Q3 summed
    ``ffn_value_query_layers``  {key: [2L+1]}           Q1 slots summed; ``attn_value_query_layers`` Q2
    ``query_only_per_layer``,   [L]                     Q5 counts of the summed rankings
    ``query_value_per_layer``
    ``contrast_*``              as above                with a foil: log p(target) - log p(foil)
    ==========================  ======================  =================================================

    Ranked records of the summed scores, each with its per-step scores: ``top_heads``,
    ``top_ffn_neurons``, ``top_attn_neurons``, ``top_query_ffn_neurons``; ``layers``.
    ``stacked(name)`` gives a per-step array with a leading step axis, as ``--out`` writes it.
    """

    def __init__(self, core: _core.ExplainedTarget, model: "Model", top: int = 50):
        self._core = core
        self.model = model
        self.top = int(top)
        self.notes: List[str] = list(core.notes)
        self.steps: List[Explanation] = [Explanation(s, model, top) for s in core.steps]
        self.foil_steps: List[Explanation] = [Explanation(s, model, top) for s in core.foil_steps]

    @property
    def core(self) -> _core.ExplainedTarget:
        return self._core

    def _texts(self, ids) -> List[str]:
        return self.model.core.token_texts([int(i) for i in ids])

    # ---- the sequences ---------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """P: the prompt's last position, the first step's."""
        return self._core.position

    @property
    def prompt(self) -> np.ndarray:
        return self._core.prompt

    @property
    def target(self) -> List[TokenInfo]:
        ids = self._core.target_ids.tolist()
        return [TokenInfo(i, t) for i, t in zip(ids, self._texts(ids))]

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.target)

    @property
    def foil(self) -> Optional[List[TokenInfo]]:
        ids = self._core.foil_ids.tolist()
        return [TokenInfo(i, t) for i, t in zip(ids, self._texts(ids))] if ids else None

    @property
    def contrast_step(self) -> Optional[int]:
        """The step where target and foil part in one context (its explanation has the contrast)."""
        return None if self._core.contrast_step < 0 else self._core.contrast_step

    @property
    def log_prob(self) -> float:
        """log p(target) = sum_t log p(w_t | prompt, w_<t) under the real model."""
        return self._core.log_prob

    @property
    def prob(self) -> float:
        return float(np.exp(self.log_prob))

    @property
    def foil_log_prob(self) -> Optional[float]:
        return self._core.foil_log_prob if self.has_contrast else None

    bs_log_prob = property(lambda self: self._core.bs_log_prob_final,
                           doc="the steps' log p(w | bs(final)) summed")
    bs_log_prob_embedding = property(lambda self: self._core.bs_log_prob_embedding)
    n_positions = property(lambda self: self._core.n_positions, doc="n = P + m: the summed source axis")
    checks = property(lambda self: dict(self._core.checks), doc="identities measured (max |error|)")
    generated = property(lambda self: self._core.generated,
                         doc="None, or how a generated answer (explain(..., generate=N)) was made and why it stopped")

    # ---- summed arrays ---------------------------------------------------------------------------

    attn_layer = property(lambda self: self._core.attn_layer, doc="[L] attention layers summed")
    ffn_layer = property(lambda self: self._core.ffn_layer, doc="[L] FFN layers summed")
    head = property(lambda self: self._core.head, doc="[L, H]")
    head_position = property(lambda self: self._core.head_position, doc="[L, H, n]")
    ffn_neuron = property(lambda self: self._core.ffn_neuron, doc="[L, N]")
    expert = property(lambda self: self._core.expert, doc="[L, n_experts] (mixture-of-experts models) or None")
    attn_neuron = property(lambda self: self._core.attn_neuron, doc="[L, H, d_head, n]")
    query_ffn_neuron = property(lambda self: self._core.query_ffn_neuron, doc="[L, N] Q3 summed")
    ffn_value_query_layers = property(lambda self: self._core.ffn_value_query_layers)
    attn_value_query_layers = property(lambda self: self._core.attn_value_query_layers)
    query_only_per_layer = property(lambda self: self._core.query_only_per_layer)
    query_value_per_layer = property(lambda self: self._core.query_value_per_layer)
    has_contrast = property(lambda self: self._core.has_contrast)
    contrast_attn_layer = property(lambda self: self._core.contrast_attn_layer)
    contrast_ffn_layer = property(lambda self: self._core.contrast_ffn_layer)
    contrast_head = property(lambda self: self._core.contrast_head)
    contrast_ffn_neuron = property(lambda self: self._core.contrast_ffn_neuron)
    contrast_attn_neuron = property(lambda self: self._core.contrast_attn_neuron)
    contrast_expert = property(lambda self: self._core.contrast_expert)

    @property
    def layer_scores(self) -> np.ndarray:
        """[L, 2]: (attn, ffn) summed (``summed_layer_scores.npy``)."""
        return readonly(np.stack([self.attn_layer, self.ffn_layer], axis=1))

    def stacked(self, name: str) -> np.ndarray:
        """A per-step array under its ``--out`` name (``"ffn_neuron_scores"``, ``"layer_scores"``, ...)
        with a leading step axis; source-position axes padded with 0 to n = P + m."""
        return _stack([step.arrays()[name] for step in self.steps])

    def arrays(self) -> Dict[str, np.ndarray]:
        """What ``reslens explain --target ... --out DIR`` writes (without .npy): the per-step arrays
        every step has, stacked, and the summed ones as ``summed_<name>``."""
        per_step = [s.arrays() for s in self.steps]
        names = [n for n in per_step[0] if all(n in a for a in per_step)]
        out = {n: _stack([a[n] for a in per_step]) for n in names}
        summed = {"layer_scores": self.layer_scores, "head_scores": self.head, "head_position_scores": self.head_position,
                  "ffn_neuron_scores": self.ffn_neuron, "attn_neuron_scores": self.attn_neuron,
                  "query_ffn_neuron_scores": self.query_ffn_neuron, "expert_scores": self.expert}
        if self.has_contrast:
            summed.update({"contrast_layer_scores": readonly(np.stack([self.contrast_attn_layer, self.contrast_ffn_layer], 1)),
                           "contrast_head_scores": self.contrast_head,
                           "contrast_ffn_neuron_scores": self.contrast_ffn_neuron,
                           "contrast_attn_neuron_scores": self.contrast_attn_neuron,
                           "contrast_expert_scores": self.contrast_expert})
        out.update({"summed_" + k: v for k, v in summed.items() if v is not None and v.size})
        return out

    # ---- ranked records of the summed scores ------------------------------------------------------

    def _steps_of(self, attr: str, summed: np.ndarray, flat: int) -> Tuple[float, ...]:
        return tuple(_step_value(getattr(s, attr), summed.shape, flat) for s in self.steps)

    @property
    def layers(self) -> List[LayerScore]:
        return [LayerScore(l, float(a), float(f)) for l, (a, f) in enumerate(zip(self.attn_layer, self.ffn_layer))]

    @property
    def top_heads(self) -> List[SummedHeadScore]:
        H = self.head.shape[1]
        return [SummedHeadScore(int(i // H), int(i % H), _core.label_head(int(i // H), int(i % H)),
                                float(self.head.ravel()[i]), self._steps_of("head", self.head, i))
                for i in top_indices(self.head, self.top)]

    @property
    def top_ffn_neurons(self) -> List[SummedFfnNeuronScore]:
        N = self.ffn_neuron.shape[1]
        return [SummedFfnNeuronScore(int(i // N), int(i % N), _core.label_ffn_neuron(int(i // N), int(i % N)),
                                     float(self.ffn_neuron.ravel()[i]), self._steps_of("ffn_neuron", self.ffn_neuron, i))
                for i in top_indices(self.ffn_neuron, self.top)]

    @property
    def top_attn_neurons(self) -> List[SummedAttnNeuronScore]:
        a = self.attn_neuron
        out = []
        for i in top_indices(a, self.top):
            l, h, n, p = (int(x) for x in np.unravel_index(i, a.shape))
            out.append(SummedAttnNeuronScore(l, h, n, p, _core.label_attn_neuron(l, h, n, p), float(a.ravel()[i]),
                                             self._steps_of("attn_neuron", a, i)))
        return out

    @property
    def top_query_ffn_neurons(self) -> List[SummedFfnNeuronScore]:
        q = self.query_ffn_neuron
        N = q.shape[1]
        return [SummedFfnNeuronScore(int(i // N), int(i % N), _core.label_ffn_neuron(int(i // N), int(i % N)),
                                     float(q.ravel()[i]), self._steps_of("query_ffn_neuron", q, i))
                for i in top_indices(q, self.top)]

    # ---- reports ---------------------------------------------------------------------------------

    def to_json(self, top: Optional[int] = None) -> str:
        """The document of ``reslens explain --target ... --json --top N`` (docs/explain-target-schema.json)."""
        return self._core.to_json(top or self.top)

    def to_dict(self, top: Optional[int] = None) -> dict:
        return json.loads(self.to_json(top))

    def to_text(self, top: Optional[int] = None) -> str:
        return self._core.to_text(top or self.top)

    def to_jsonl(self, top: Optional[int] = None) -> str:
        """The JSON lines of ``reslens explain ... --jsonl``: one line per step, then the summary."""
        return self._core.to_jsonl(top or self.top)

    def save(self, directory: Union[str, os.PathLike], top: Optional[int] = None) -> None:
        """What ``reslens explain --target ... --out DIR`` writes: the arrays and explanation.json."""
        directory = os.fspath(directory)
        self._core.write_arrays(directory)
        with open(os.path.join(directory, "explanation.json"), "w", encoding="utf-8") as f:
            f.write(self.to_json(top) + "\n")

    def to_html(self, top: Optional[int] = None) -> Optional[str]:
        """The HTML page (the target as a token strip, each token opening its step), or None when this
        build has no web page."""
        try:
            return self._core.to_html(top or self.top)
        except _core.UnsupportedError:
            return None

    def _repr_html_(self) -> str:
        page = self.to_html()
        if page is not None:
            return (f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:720px;border:0">'
                    "</iframe>")
        rows = "".join(f"<tr><td>{t}</td><td>{html.escape(repr(s.target.text))}</td><td>{s.prob:.4f}</td></tr>"
                       for t, s in enumerate(self.steps))
        return (f"<p><b>reslens explain</b> &mdash; target {html.escape(repr(self.text))}: log p = {self.log_prob:.4f}</p>"
                f"<table><tr><th>step</th><th>token</th><th>p</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        return (f"<reslens.TargetExplanation {self.text!r} ({len(self.steps)} tokens, log p={self.log_prob:.4f})>")
