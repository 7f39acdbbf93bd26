"""``reslens.explain``: the paper's residual-stream attribution for one next-token prediction (the
``reslens explain`` command), with every score as a numpy array and the ranked lists as small
dataclass records.
"""

from __future__ import annotations

import html
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from .hooks import refuse_hooks
from .utils import progress_callback, readonly

if TYPE_CHECKING:
    from .model import Model, TokensLike
    from .target import TargetExplanation

TokenSpec = Union[None, int, str, Sequence[int]]


@dataclass(frozen=True)
class TokenInfo:
    id: int
    text: str


@dataclass(frozen=True)
class LensPoint:
    """The target at one residual point (``"emb"``, ``"a{l}"`` after layer l's attention, ``"f{l}"``
    after its FFN) with the final norm frozen (spec 2.3)."""

    label: str
    rank: int
    prob: float
    log_prob: float
    top_ids: Tuple[int, ...]
    top_probs: Tuple[float, ...]
    top_tokens: Tuple[str, ...]


@dataclass(frozen=True)
class LayerScore:
    layer: int
    attn: float  # Imp(A^l | h^{l-1})
    ffn: float  # Imp(F^l | r^l)


@dataclass(frozen=True)
class HeadScore:
    layer: int
    head: int
    label: str
    score: float


@dataclass(frozen=True)
class FfnNeuronScore:
    layer: int
    neuron: int
    label: str
    score: float
    coef: float  # the coefficient m at the explained position


@dataclass(frozen=True)
class AttnNeuronScore:
    layer: int
    head: int
    dim: int
    pos: int  # source position
    label: str
    score: float
    coef: float  # alpha_{P,pos} * v_{pos,dim}


@dataclass(frozen=True)
class QueryNeuronScore:
    layer: int
    neuron: int
    label: str
    score: float


def top_indices(values: np.ndarray, n: int) -> np.ndarray:
    """Flat indices of the ``n`` largest values, largest first; exact ties put the later index first.
    The order of every ranked list in reslens's reports (``analysis::top_indices``)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    n = max(0, min(int(n), v.size))
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if n < v.size:
        kth = np.partition(v, v.size - n)[v.size - n]  # the n-th largest value
        cand = np.nonzero(v >= kth)[0]
    else:
        cand = np.arange(v.size)
    order = np.lexsort((-cand, -v[cand]))
    return cand[order[:n]]


class Explanation:
    """Every score of ``reslens explain`` for one position (see ``include/reslens/explain.h`` and
    docs/python.md). Arrays are read-only float64 views over the C++ result (zero-copy):

    ==========================  ======================  =================================================
    attribute                   shape                   meaning
    ==========================  ======================  =================================================
    ``attn_layer``              [L]                     Imp(A^l | h^{l-1}) per layer
    ``ffn_layer``               [L]                     Imp(F^l | r^l)
    ``head``                    [L, H]                  per head
    ``head_position``           [L, H, P+1]             one head's share from one source position
    ``attn_weight``             [L, H, P+1]             attention of P to each source
    ``ffn_neuron``/``ffn_coef``  [L, N]                 FFN neuron scores / coefficients at P
    ``attn_neuron``/``attn_coef`` [L, H, d_head, P+1]   attention neurons (layer, head, dim, source)
    ``query_ffn_neuron``        [L, N]                  query FFN neurons of the top attention neurons
    ``ffn_value_query_layers``  {key: [2L+1]}           query-layer slots (emb, a0, f0, a1, ...) of the
    ``attn_value_query_layers`` [2L+1]                  top FFN / attention value neurons
    ``query_only_per_layer``,   [L]                     histograms (int64)
    ``query_value_per_layer``
    ``baselines``               {name: [L, N]}          with ``baselines=True``
    ``contrast_*``              as above                with a foil: log p(target) - log p(foil)
    ==========================  ======================  =================================================

    Ranked records (``top`` of each, in the reports' order): ``layers``, ``top_heads``,
    ``top_ffn_neurons``, ``top_attn_neurons``, ``top_query_ffn_neurons``; the logit lens: ``lens``.
    """

    def __init__(self, core: _core.Explanation, model: "Model", top: int = 50):
        self._core = core
        self.model = model
        self.top = int(top)
        self._memo: Dict[str, Any] = {}
        self.options = core.options
        self.notes: List[str] = list(core.notes)

    # ---- scalars and tokens ----------------------------------------------------------------------

    def _text(self, token_id: int) -> str:
        return self.model.core.token_texts([int(token_id)])[0]

    @property
    def core(self) -> _core.Explanation:
        return self._core

    @property
    def position(self) -> int:
        return self._core.position

    @property
    def n_positions(self) -> int:
        return self._core.n_positions

    @property
    def tokens(self) -> np.ndarray:
        """[pos] int32 token ids of the whole prompt."""
        return self._core.tokens

    @property
    def str_tokens(self) -> List[str]:
        return self.model.core.token_texts(self._core.tokens.tolist())

    @property
    def target(self) -> TokenInfo:
        return TokenInfo(self._core.target, self._text(self._core.target))

    @property
    def foil(self) -> Optional[TokenInfo]:
        f = self._core.foil
        return None if f < 0 else TokenInfo(f, self._text(f))

    @property
    def prob(self) -> float:
        """The model's real probability of the target at the position."""
        return self._core.real_prob

    @property
    def log_prob(self) -> float:
        return self._core.real_log_prob

    @property
    def rank(self) -> int:
        return self._core.real_rank

    @property
    def logit(self) -> float:
        return self._core.real_logit

    @property
    def frozen_scale(self) -> float:
        return self._core.frozen_scale

    @property
    def bs_log_prob(self) -> float:
        """log p(target | bs(h_P^{L-1})): the final state through the frozen norm."""
        return self._core.bs_log_prob_final

    @property
    def bs_log_prob_embedding(self) -> float:
        return self._core.bs_log_prob_embedding

    @property
    def checks(self) -> Dict[str, float]:
        """Identities measured on this explanation (max |error|)."""
        return dict(self._core.checks)

    @property
    def method_counts(self) -> Dict[str, int]:
        """How many neuron, head and position scores were certified from bounds ("bounded"), from
        the projection cache ("cached") or computed over the whole vocabulary ("full")."""
        return dict(self._core.method_counts)

    @property
    def logits(self) -> np.ndarray:
        """[pos, d_vocab] logits of the run explain() read (a view; TL's batch index refused, as
        ``run_with_cache``'s)."""
        from .unbatched import guard
        return guard(self._core.run.logits, "d_vocab")

    @property
    def cache(self):
        """The activations explain() read (``reslens.ActivationCache``, the hooks of explain_capture)."""
        from .cache import ActivationCache

        return ActivationCache(self._core.run, self.model)

    # ---- arrays -----------------------------------------------------------------------------------

    attn_layer = property(lambda self: self._core.attn_layer, doc="[L] Imp(A^l | h^{l-1})")
    ffn_layer = property(lambda self: self._core.ffn_layer, doc="[L] Imp(F^l | r^l)")
    head = property(lambda self: self._core.head, doc="[L, H] head scores")
    head_position = property(lambda self: self._core.head_position, doc="[L, H, P+1] head x source position")
    attn_weight = property(lambda self: self._core.attn_weight, doc="[L, H, P+1] attention of P to each source")
    ffn_neuron = property(lambda self: self._core.ffn_neuron, doc="[L, N] FFN neuron scores")
    ffn_coef = property(lambda self: self._core.ffn_coef, doc="[L, N] FFN coefficients m at P")
    attn_neuron = property(lambda self: self._core.attn_neuron, doc="[L, H, d_head, P+1] attention neurons")
    attn_coef = property(lambda self: self._core.attn_coef, doc="[L, H, d_head, P+1] alpha_{P,p} v_{p,n}")
    ffn_value_query_layers = property(lambda self: self._core.ffn_value_query_layers,
                                      doc="{key: [2L+1]} query layers of the top FFN value neurons (spec Q1)")
    attn_value_query_layers = property(lambda self: self._core.attn_value_query_layers,
                                       doc="[2L+1] query layers of the top attention value neurons (spec Q2)")
    attn_value_query_avg_layer = property(lambda self: self._core.attn_value_query_avg_layer)
    query_ffn_neuron = property(lambda self: self._core.query_ffn_neuron,
                                doc="[L, N] query FFN neurons of the top attention neurons (spec Q3)")
    query_only_per_layer = property(lambda self: self._core.query_only_per_layer, doc="[L] counts (spec Q5)")
    query_value_per_layer = property(lambda self: self._core.query_value_per_layer, doc="[L] counts (spec Q5)")
    baselines = property(lambda self: _Baselines(self._core.baselines),
                         doc="{name: [L, N]} spec 3.3's alternative scores (names: reslens.BASELINE_SCORES)")
    has_contrast = property(lambda self: self._core.has_contrast)
    contrast_attn_layer = property(lambda self: self._core.contrast_attn_layer)
    contrast_ffn_layer = property(lambda self: self._core.contrast_ffn_layer)
    contrast_head = property(lambda self: self._core.contrast_head)
    contrast_ffn_neuron = property(lambda self: self._core.contrast_ffn_neuron)
    contrast_attn_neuron = property(lambda self: self._core.contrast_attn_neuron)

    @property
    def layer_scores(self) -> np.ndarray:
        """[L, 2]: (attn, ffn) per layer (a copy; ``layer_scores.npy`` of ``--out``)."""
        return readonly(np.stack([self.attn_layer, self.ffn_layer], axis=1))

    @property
    def lens_array(self) -> np.ndarray:
        """[2L+1, 3]: (rank, prob, log_prob) per lens point (``lens.npy`` of ``--out``)."""
        return readonly(np.array([[p.rank, p.prob, p.log_prob] for p in self.lens], dtype=np.float64).reshape(-1, 3))

    def arrays(self) -> Dict[str, np.ndarray]:
        """Every score array under the file name ``reslens explain --out DIR`` gives it (without .npy)."""
        out = {"layer_scores": self.layer_scores, "lens": self.lens_array, "head_scores": self.head,
               "head_position_scores": self.head_position, "attn_weights": self.attn_weight,
               "ffn_neuron_scores": self.ffn_neuron, "ffn_coef": self.ffn_coef,
               "attn_neuron_scores": self.attn_neuron, "attn_coef": self.attn_coef, "query_ffn_neuron_scores": self.query_ffn_neuron}
        for name, a in self.baselines.items():
            out["baseline_" + name] = a
        if self.has_contrast:
            out["contrast_head_scores"] = self.contrast_head
            out["contrast_ffn_neuron_scores"] = self.contrast_ffn_neuron
            out["contrast_attn_neuron_scores"] = self.contrast_attn_neuron
        return {k: v for k, v in out.items() if v is not None and v.size}

    # ---- records -----------------------------------------------------------------------------------

    def _memoize(self, key: str, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    @property
    def lens(self) -> List[LensPoint]:
        def make():
            out = []
            for label, rank, prob, logprob, ids, probs in self._core.lens:
                texts = self.model.core.token_texts(ids)
                out.append(LensPoint(label, rank, prob, logprob, tuple(ids), tuple(probs), tuple(texts)))
            return out
        return self._memoize("lens", make)

    @property
    def layers(self) -> List[LayerScore]:
        return [LayerScore(l, float(a), float(f)) for l, (a, f) in enumerate(zip(self.attn_layer, self.ffn_layer))]

    @property
    def ranking(self) -> str:
        """What the ranked records and tables order by: ``"contrast"`` (log p(target) - log p(foil))
        when a foil was given, else ``"target"`` (log p(target))."""
        return "contrast" if self.has_contrast else "target"

    def _ranked(self, name: str) -> np.ndarray:
        """The score array the rankings use: the contrast one with a foil."""
        return getattr(self, ("contrast_" if self.has_contrast else "") + name)

    @property
    def top_heads(self) -> List[HeadScore]:
        """The ``top`` heads, best first; by the contrast score (``score`` is then the contrast) when
        a foil was given."""
        H = self.model.cfg.n_heads

        def make():
            v = self._ranked("head").ravel()
            return [HeadScore(int(i // H), int(i % H), _core.label_head(int(i // H), int(i % H)), float(v[i]))
                    for i in top_indices(v, self.top)]
        return self._memoize("heads", make)

    @property
    def top_ffn_neurons(self) -> List[FfnNeuronScore]:
        N = self.model.cfg.d_mlp

        def make():
            v, c = self._ranked("ffn_neuron").ravel(), self.ffn_coef.ravel()
            return [FfnNeuronScore(int(i // N), int(i % N), _core.label_ffn_neuron(int(i // N), int(i % N)),
                                   float(v[i]), float(c[i])) for i in top_indices(v, self.top)]
        return self._memoize("ffn", make)

    @property
    def top_attn_neurons(self) -> List[AttnNeuronScore]:
        def make():
            shape = self.attn_neuron.shape
            v, c = self._ranked("attn_neuron").ravel(), self.attn_coef.ravel()
            out = []
            for i in top_indices(v, self.top):
                l, h, n, p = (int(x) for x in np.unravel_index(i, shape))
                out.append(AttnNeuronScore(l, h, n, p, _core.label_attn_neuron(l, h, n, p), float(v[i]), float(c[i])))
            return out
        return self._memoize("attn", make)

    @property
    def top_query_ffn_neurons(self) -> List[QueryNeuronScore]:
        N = self.model.cfg.d_mlp

        def make():
            v = self.query_ffn_neuron.ravel()
            return [QueryNeuronScore(int(i // N), int(i % N), _core.label_ffn_neuron(int(i // N), int(i % N)),
                                     float(v[i])) for i in top_indices(v, self.top)]
        return self._memoize("q3", make)

    # ---- vocabulary views ------------------------------------------------------------------------

    def _texts(self, d: dict) -> dict:
        tt = self.model.core.token_texts
        return {"top": tt(d["top"]), "top_values": d["top_values"], "bottom": tt(d["bottom"]),
                "bottom_values": d["bottom_values"], "top_ids": d["top"], "bottom_ids": d["bottom"]}

    def ffn_neuron_view(self, layer: int, neuron: int, k: int = 10) -> dict:
        """What FFN neuron (layer, neuron) writes, projected to the vocabulary: ``raw`` (its value
        vector fc2_k), ``promoted`` (times its coefficient at P: the subvalue's top tokens)."""
        raw, signed, coef = self._core.ffn_neuron_view(layer, neuron, k)
        return {"raw": self._texts(raw), "signed": self._texts(signed), "promoted": self.model.core.token_texts(signed["top"]),
                "coef": coef}

    def attn_neuron_view(self, layer: int, head: int, dim: int, pos: int, k: int = 10) -> dict:
        """As ``ffn_neuron_view`` for attention neuron (layer, head, dim) from source position ``pos``."""
        raw, signed, coef = self._core.attn_neuron_view(layer, head, dim, pos, k)
        return {"raw": self._texts(raw), "signed": self._texts(signed), "promoted": self.model.core.token_texts(signed["top"]),
                "coef": coef}

    def head_position_views(self, layer: int, head: int, k: int = 10) -> List[dict]:
        """Per source position of head (layer, head): score, attention, and the top tokens of the
        layer input, the key and the value (the report's head_positions)."""
        tt = self.model.core.token_texts
        out = []
        for d in self._core.head_position_views(layer, head, k):
            out.append({"pos": d["pos"], "token": self.str_tokens[d["pos"]], "score": d["score"], "attn": d["attn"],
                        "layer_input": tt(d["layer_input"]), "key": tt(d["key"]), "value": tt(d["value"])})
        return out

    def project_tokens(self, vector: np.ndarray, k: int = 10) -> dict:
        """Top and bottom tokens of bs(v) for any [d_model] vector, with this explanation's frozen norm."""
        return self._texts(self._core.project_tokens(np.asarray(vector, dtype=np.float32).tolist(), k))

    # ---- reports -----------------------------------------------------------------------------------

    def to_json(self, top: Optional[int] = None) -> str:
        """The JSON document of ``reslens explain --json --top N`` (``reslens::explain_json``; schema in
        docs/explain-schema.json), N = ``top`` or the ``top`` this explanation was made with."""
        return self._core.to_json(top or self.top)

    def to_dict(self, top: Optional[int] = None) -> dict:
        return json.loads(self.to_json(top))

    def to_text(self, top: Optional[int] = None) -> str:
        """The terminal report of ``reslens explain`` (``reslens::explain_text``)."""
        return self._core.to_text(top or self.top)

    def save(self, directory: Union[str, os.PathLike], top: Optional[int] = None) -> None:
        """What ``reslens explain --out DIR`` writes: every array as .npy and explanation.json."""
        directory = os.fspath(directory)
        self._core.write_arrays(directory)
        with open(os.path.join(directory, "explanation.json"), "w", encoding="utf-8") as f:
            f.write(self.to_json(top) + "\n")

    def to_dataframe(self, kind: str = "components", top: Optional[int] = None):
        """A pandas DataFrame (needs python3-pandas). ``kind``:

        - ``"components"``: the top heads, FFN neurons and attention neurons in one table, best first
        - ``"layers"``: one row per layer (attn, ffn, and the contrast scores with a foil)
        - ``"heads"``, ``"ffn_neurons"``, ``"attn_neurons"``, ``"query_ffn_neurons"``: every entry
          (or the ``top`` best), best first
        - ``"lens"``: one row per residual point

        With a foil, heads and neurons are ranked by the contrast (``score`` is log p(target) -
        log p(foil)'s share) and ``target_score`` holds the target-only score beside it.
        """
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise ImportError("to_dataframe needs pandas (Debian: apt-get install python3-pandas)") from e
        L, H, N = self.model.cfg.n_layers, self.model.cfg.n_heads, self.model.cfg.d_mlp
        if kind == "layers":
            d = {"layer": np.arange(L), "attn": self.attn_layer, "ffn": self.ffn_layer}
            if self.has_contrast:
                d["contrast_attn"] = self.contrast_attn_layer
                d["contrast_ffn"] = self.contrast_ffn_layer
            return pd.DataFrame(d)
        if kind == "lens":
            return pd.DataFrame([{"label": p.label, "rank": p.rank, "prob": p.prob, "log_prob": p.log_prob,
                                  "top_tokens": list(p.top_tokens)} for p in self.lens])
        if kind == "components":
            rows = [dict(kind="head", **vars(r)) for r in self.top_heads]
            rows += [dict(kind="ffn_neuron", **vars(r)) for r in self.top_ffn_neurons]
            rows += [dict(kind="attn_neuron", **vars(r)) for r in self.top_attn_neurons]
            return pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
        arrays = {"heads": self._ranked("head"), "ffn_neurons": self._ranked("ffn_neuron"),
                  "attn_neurons": self._ranked("attn_neuron"), "query_ffn_neurons": self.query_ffn_neuron}
        if kind not in arrays:
            raise ValueError("kind must be one of components, layers, lens, heads, ffn_neurons, attn_neurons, "
                             f"query_ffn_neurons; not {kind!r}")
        a = arrays[kind]
        idx = top_indices(a, a.size if top is None else top)
        cols = {"heads": ("layer", "head"), "ffn_neurons": ("layer", "neuron"),
                "attn_neurons": ("layer", "head", "dim", "pos"), "query_ffn_neurons": ("layer", "neuron")}[kind]
        d = dict(zip(cols, np.unravel_index(idx, a.shape)))
        d["score"] = a.ravel()[idx]
        if self.has_contrast and kind != "query_ffn_neurons":  # ranked by the contrast: both scores shown
            d["target_score"] = {"heads": self.head, "ffn_neurons": self.ffn_neuron,
                                 "attn_neurons": self.attn_neuron}[kind].ravel()[idx]
        if kind == "ffn_neurons":
            d["coef"] = self.ffn_coef.ravel()[idx]
        if kind == "attn_neurons":
            d["coef"] = self.attn_coef.ravel()[idx]
        return pd.DataFrame(d)

    def to_html(self, top: Optional[int] = None) -> Optional[str]:
        """The self-contained HTML report of ``reslens::explain_html`` (the web report), or None when
        this build of the library has none (or was built without the web page)."""
        try:
            return self._core.to_html(top or self.top)
        except _core.UnsupportedError:
            return None

    def _repr_html_(self) -> str:
        """The explanation in a notebook: small self-contained HTML tables of the main scores (a few
        KB, no script). The interactive report (``to_html()``, about 800 KB with its script) is not
        embedded in every output cell: ``ex.show()`` displays it once, or ``ex.save_html(path)``."""
        return self._html_tables()

    def save_html(self, path: Union[str, os.PathLike], top: Optional[int] = None) -> str:
        """Writes the interactive HTML report (``to_html()``, the page of ``reslens explain --html``)
        to ``path`` and returns the path; UnsupportedError in a build without the web page."""
        page = self.to_html(top)
        if page is None:
            raise _core.UnsupportedError("this build of reslens has no HTML report page (built without the web "
                                         "bundle): the notebook tables (_repr_html_) are what it can show")
        with open(os.fspath(path), "w", encoding="utf-8") as f:
            f.write(page)
        return os.fspath(path)

    def show(self, height: int = 720):
        """The interactive report in a notebook: an IPython HTML object with the page in an iframe
        (``to_html()``; the tables when the build has no page). Embeds the page once, where called."""
        from IPython.display import HTML
        page = self.to_html()
        if page is None:
            return HTML(self._html_tables())
        return HTML(f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{int(height)}px;'
                    'border:0"></iframe>')

    def _html_tables(self) -> str:
        e = html.escape
        n = min(10, self.top)
        toks = "".join(
            f'<span style="border:1px solid #bbb;padding:0 2px;margin:1px;{"background:#ffe08a;" if i == self.position else ""}">'
            f"{e(t)}</span>" for i, t in enumerate(self.str_tokens))
        head = (f"<p><b>reslens explain</b> &mdash; position {self.position} &rarr; target "
                f"<code>{e(repr(self.target.text))}</code> (id {self.target.id}): p = {100 * self.prob:.2f}%, "
                f"rank {self.rank}" + (f"; foil <code>{e(repr(self.foil.text))}</code>: heads and neurons ranked by "
                                       "log p(target) - log p(foil)" if self.foil else "") +
                f"</p><p>{toks}</p>")

        def table(title: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
            th = "".join(f"<th>{e(c)}</th>" for c in cols)
            body = "".join("<tr>" + "".join(
                f"<td>{e(f'{v:+.4f}' if isinstance(v, float) else str(v))}</td>" for v in r) + "</tr>" for r in rows)
            return (f'<div style="display:inline-block;vertical-align:top;margin-right:1.5em">'
                    f"<b>{e(title)}</b><table>{th and '<tr>' + th + '</tr>'}{body}</table></div>")

        parts = [head,
                 table("Layers (log-prob increase)", ["layer", "attn", "ffn"],
                       [(f"L{r.layer}", r.attn, r.ffn) for r in self.layers]),
                 table("Top heads", ["head", "score"], [(r.label, r.score) for r in self.top_heads[:n]]),
                 table("Top FFN neurons", ["neuron", "score", "coef"],
                       [(r.label, r.score, r.coef) for r in self.top_ffn_neurons[:n]]),
                 table("Top attention neurons", ["neuron", "score"],
                       [(r.label, r.score) for r in self.top_attn_neurons[:n]]),
                 table("Logit lens", ["point", "rank", "p"],
                       [(p.label, p.rank, f"{100 * p.prob:.2f}%") for p in self.lens])]
        return '<div class="reslens-explain">' + "".join(parts) + "</div>"

    def __repr__(self) -> str:
        return (f"<reslens.Explanation position {self.position} target {self.target.text!r} "
                f"(id {self.target.id}, p={self.prob:.4f}, rank {self.rank})>")


# The names these had until 0.2, kept as aliases for one release (docs/naming.md lists them; a test
# checks each still answers, equal to its new name).
RENAMED_ATTRIBUTES = {"head_pos": "head_position", "q1": "ffn_value_query_layers", "q2": "attn_value_query_layers",
                      "q2_avg_layer": "attn_value_query_avg_layer", "q3": "query_ffn_neuron",
                      "q5_query_only": "query_only_per_layer", "q5_query_value": "query_value_per_layer"}
RENAMED_BASELINES = {"logprob_increase": "log_prob_increase", "logprob": "log_prob"}
BASELINE_SCORES = ("log_prob_increase", "log_prob", "prob_increase", "norm", "coef", "rank", "m_norm", "m_rank")

for _old, _new in RENAMED_ATTRIBUTES.items():
    setattr(Explanation, _old, property(lambda self, _n=_new: getattr(self, _n), doc=f"Alias of ``{_new}`` (until 0.2)."))


class _Baselines(dict):
    """``ex.baselines``: the scores under their names; the old names still answer (until 0.2)."""

    def __missing__(self, key: str):
        if key in RENAMED_BASELINES:
            return self[RENAMED_BASELINES[key]]
        raise KeyError(key)


def _token_name(spec: TokenSpec, what: str) -> Union[int, str, List[int], None]:
    """A target or foil as the library takes it: None, an id (int), a text (str) or ids (a list)."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, (bool, np.bool_)):
        return int(spec)
    if isinstance(spec, (list, tuple, np.ndarray)) and all(
            isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in spec):
        return [int(i) for i in spec]
    raise TypeError(f"the {what} is a token id (int), a text (str) or token ids (a list of int), "
                    f"not {type(spec).__name__}")


def check_bound_tol(bound_tol: Any) -> None:
    """TypeError unless a number, ValueError unless positive and finite: the library's rule
    (``check_bound_tol``, as ``reslens explain --bound-tol`` and ``reslens serve`` check it), said
    here before any work, and before explain_batch would take it for one prompt's problem."""
    if isinstance(bound_tol, (bool, np.bool_)) or not isinstance(bound_tol, (int, float, np.integer, np.floating)):
        raise TypeError(f"bound_tol is a number (the bounded method's largest accepted error), not {bound_tol!r}")
    _core.check_score_knobs("auto", float(bound_tol))


def check_score_knobs(method: Any, bound_tol: Any) -> None:
    """The precision knobs of explain, diff and graph checked before any work: TypeError for a
    method that is not a str or a bound_tol that is not a number, ValueError (the library's rule, the
    CLI's and the server's) for a value it refuses."""
    if not isinstance(method, str):
        raise TypeError(f"method is 'auto', 'full' or 'bounded', not {method!r}")
    check_bound_tol(bound_tol)
    _core.check_score_knobs(method, float(bound_tol))


# progress=: called (phase, done, total) as each phase of an explain starts and as its units finish.
ProgressPhaseFn = Callable[[str, int, int], None]


class _PhaseLine:
    """progress=True: one line on stderr, rewritten in place ("\\r", padded over the previous text,
    which a notebook's output area honours too), naming the phase and how far it is; finish() ends
    it with a newline."""

    def __init__(self) -> None:
        self.width = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        text = f"explain: {phase}" + (f" {done}/{total}" if total > 1 else "")
        self.width = max(self.width, len(text))
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()

    def finish(self) -> None:
        if self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()


def check_should_stop(should_stop: Any) -> None:
    """TypeError unless None or a callable (asked between an answer's steps)."""
    if should_stop is not None and not callable(should_stop):
        raise TypeError(f"should_stop is a callable asked between steps (truthy: stop), or None, not {should_stop!r}")


def extended_head_int(v) -> int:
    """extended_head as an int: -1 (auto), 0 (none) or a head size (the library refuses others)."""
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise TypeError(f"extended_head is -1 (auto), 0 (none) or a number of tokens, not {v!r}")
    return int(v)


def _explain_target_core(model: "Model", text: "TokensLike", target, foil, position: int, prepend_bos, include_final_bias,
                         compat: str, baselines: bool, query_top: int, set_size: int, lens_top_k: int, method: str,
                         threads: Optional[int], top: int, continuation: Optional[str] = None,
                         generate: Optional[int] = None, temperature: float = 0.0,
                         seed: int = 0, bound_tol: float = 8e-6, projection_cache: bool = True,
                         projection_sketch: bool = True, extended_head: int = -1,
                         should_stop: Optional[Callable[[], Any]] = None,
                         progress: Union[bool, ProgressPhaseFn, None] = None) -> "_core.ExplainedTarget":
    refuse_hooks(model, "reslens.explain")
    if compat not in ("paper", "notebook"):
        raise ValueError(f"compat must be 'paper' or 'notebook', not {compat!r}")
    for name, v in (("top", top), ("query_top", query_top)):
        if int(v) <= 0:
            raise ValueError(f"{name} must be positive, not {v}")
    check_score_knobs(method, bound_tol)
    check_should_stop(should_stop)
    if position is None or isinstance(position, bool) or not hasattr(position, "__index__"):
        raise TypeError(f"position is one token position (an int; -1 the last, -2 the one before), not {position!r}: "
                        "an explanation is of one prediction (for several, call explain per position)")
    ids = model.tokens(text, prepend_bos)
    if generate is not None:
        # The model's own answer (`reslens explain --generate N`): the library generates and explains it.
        if target is not None or continuation is not None:
            raise ValueError("generate= explains the model's own answer: give no target or continuation with it")
        if isinstance(generate, bool) or int(generate) < 1:
            raise ValueError(f"generate must be a number of tokens >= 1, not {generate!r}")
    elif temperature != 0.0 or seed != 0:
        raise ValueError("temperature= and seed= sample a generated answer: they need generate=N")
    if continuation is not None:
        # A given answer, tokenized with the prompt's text as `reslens explain --continuation` does.
        if target is not None:
            raise ValueError("give a target or a continuation, not both")
        if not isinstance(text, str) or not isinstance(continuation, str):
            raise TypeError("continuation= is a text read after the prompt's text; with token ids, pass the "
                            "answer's ids as target=")
        joint = model.to_tokens(text + continuation, prepend_bos).tolist()
        target = _core.continuation_tokens(model.core, ids, joint, continuation)
    # The target and foil are resolved by the library's one request, as the CLI and the server do.
    progress_fn = progress_callback(progress, _PhaseLine, "(phase, done, total)")
    try:
        return _core.explain_target(model.core, ids, _token_name(target, "target"), _token_name(foil, "foil"),
                                    int(position), include_final_bias, compat == "notebook", baselines, int(query_top),
                                    int(set_size), int(lens_top_k), model.threads if threads is None else int(threads),
                                    method, 0 if generate is None else int(generate), float(temperature), int(seed),
                                    float(bound_tol), bool(projection_cache), bool(projection_sketch),
                                    extended_head_int(extended_head), should_stop, progress_fn)
    finally:
        if isinstance(progress_fn, _PhaseLine):
            progress_fn.finish()


def explain(model: "Model", text: "TokensLike", target: TokenSpec = None, foil: TokenSpec = None,
            position: int = -1, top: int = 50, *, prepend_bos: Optional[bool] = None,
            include_final_bias: bool = False, compat: str = "paper", baselines: bool = False,
            query_top: int = 30, set_size: int = 300, lens_top_k: int = 10, method: str = "auto",
            threads: Optional[int] = None, continuation: Optional[str] = None,
            generate: Optional[int] = None, temperature: float = 0.0, seed: int = 0,
            bound_tol: float = 8e-6, projection_cache: bool = True, projection_sketch: bool = True,
            extended_head: int = -1, should_stop: Optional[Callable[[], Any]] = None,
            progress: Union[bool, ProgressPhaseFn, None] = None) -> Union[Explanation, "TargetExplanation"]:
    """Attributes the model's prediction at ``position`` of ``text`` to layers, heads, source
    positions and neurons: ``reslens explain MODEL TEXT`` as a Python object.

    ``target``/``foil``: a token id or a text, resolved as the CLI's ``--target`` does (the token that
    reads as the text or as the text after a space, whichever the model finds likelier here); None =
    the model's top prediction / no contrast. A text of several tokens (``" New Delhi"``) or a list
    of ids is explained token by token by teacher forcing, and the result is then a
    ``reslens.TargetExplanation``: ``steps`` (one ``Explanation`` per token) and every score summed
    over them (``reslens.explain_target`` always returns one). ``continuation``: a given answer
    instead of a target, tokenized together with ``text`` (``reslens explain --continuation``; it must
    start at a token boundary and decode back to itself). ``generate``: the model's own answer instead
    of a target, ``reslens explain --generate N``: up to N tokens generated (greedy, or sampled at
    ``temperature`` with ``seed`` as ``reslens generate --temp --seed``), stopping at the end of its
    turn, then every token explained at its position; always a ``TargetExplanation`` (its
    ``generated`` says how the answer stopped). ``top``: entries in each ranked list (and in ``to_json()``). Options as
    the CLI's: ``include_final_bias``, ``compat`` ("paper" or "notebook"), ``baselines``,
    ``query_top`` (``--query-top``). ``method``: how neuron, head and position scores are computed,
    "auto" (the CLI's choice: certified bounds for large vocabularies), "full" or "bounded"; all
    are exact to 1e-5 (docs/explain.md). The bounded method's knobs (``reslens explain --bound-tol``,
    ``--no-projection-cache``, ``--no-sketch``; no effect with ``method="full"``): ``bound_tol``, the
    largest accepted error of a certified score (a positive finite number; larger is faster and less
    exact), ``projection_cache`` (use the model's projection cache when it exists) and
    ``projection_sketch`` (certify from int8 sketches first, on CPUs with AVX2 or better), and
    ``extended_head`` (``--extended-head``: the larger head tried before the sketch; -1 = auto, 0 =
    none, else its tokens; scores agree within ``bound_tol`` whatever it is). The GIL is released
    during the computation.

    A long answer (``generate``, ``continuation``, a target of several tokens) can be stopped: between
    its steps (each generated token, each explained step) the call checks for Ctrl-C, and a pending
    one raises ``KeyboardInterrupt`` at that step boundary; ``should_stop`` (a callable taking no
    arguments) is asked there too, and a truthy answer raises ``reslens.Cancelled``. Either way
    nothing after that boundary is computed and no result is returned.

    ``progress``: True for a line on stderr naming the running phase and its layers (a 7B model's
    explain takes 20-60 s, and its first also builds the model's bounds, once: docs/explain.md,
    "Progress"), or a callable ``(phase, done, total)`` called as each phase starts (done 0) and as its
    units finish, on the calling thread ("forward", "points", "bounds", "tails", "attention", "ffn",
    "checks", "queries", ...; include/reslens/explain.h lists them); an exception it raises ends the
    call with that exception.

    >>> ex = reslens.explain(model, "Once upon a time", top=10)
    >>> ex.head.shape == (model.cfg.n_layers, model.cfg.n_heads)
    True
    >>> len(ex.top_ffn_neurons), ex.top_heads[0].label.startswith("L")
    (10, True)

    ``ex.to_json()`` is then the document ``reslens explain MODEL "Once upon a time" --json --top 10``
    prints (without its final newline).

    A batch (a list of prompts, of id lists, or a 2-D id array padded with -1) gives a list with
    one result per prompt, each exactly what that prompt alone gives; ``target``/``foil`` are then one
    value for every row or a list with one per row (reslens/batch.py ``per_row``).
    """
    from .batch import batch_items, per_row
    items = batch_items(model, text, prepend_bos)
    if items is not None:
        n = len(items)
        return [explain(model, t, tg, fl, position, top, prepend_bos=prepend_bos, include_final_bias=include_final_bias,
                        compat=compat, baselines=baselines, query_top=query_top, set_size=set_size,
                        lens_top_k=lens_top_k, method=method, threads=threads, continuation=c, generate=generate,
                        temperature=temperature, seed=seed, bound_tol=bound_tol, projection_cache=projection_cache,
                        projection_sketch=projection_sketch, extended_head=extended_head, should_stop=should_stop,
                        progress=progress)  # type: ignore[misc]
                for t, tg, fl, c in zip(items, per_row(target, n, "target"), per_row(foil, n, "foil"),
                                        per_row(continuation, n, "continuation"))]
    core = _explain_target_core(model, text, target, foil, position, prepend_bos, include_final_bias, compat, baselines,
                                query_top, set_size, lens_top_k, method, threads, top, continuation, generate,
                                temperature, seed, bound_tol, projection_cache, projection_sketch, extended_head,
                                should_stop, progress)
    if core.single and generate is None:  # one token each: explain()'s own result, as before
        return Explanation(core.steps[0], model, top)
    from .target import TargetExplanation
    return TargetExplanation(core, model, top)


def explain_target(model: "Model", text: "TokensLike", target: TokenSpec = None, foil: TokenSpec = None,
                   position: int = -1, top: int = 50, *, prepend_bos: Optional[bool] = None,
                   include_final_bias: bool = False, compat: str = "paper", baselines: bool = False,
                   query_top: int = 30, set_size: int = 300, lens_top_k: int = 10, method: str = "auto",
                   threads: Optional[int] = None, continuation: Optional[str] = None,
                   generate: Optional[int] = None, temperature: float = 0.0, seed: int = 0,
                   bound_tol: float = 8e-6, projection_cache: bool = True,
                   projection_sketch: bool = True, extended_head: int = -1,
                   should_stop: Optional[Callable[[], Any]] = None,
                   progress: Union[bool, ProgressPhaseFn, None] = None) -> "TargetExplanation":
    """``explain`` for a target of any length, always as a ``reslens.TargetExplanation`` (a one-token
    target is one step, whose scores are ``explain``'s). Every option, ``method`` and the bounded
    method's knobs (``bound_tol``, ``projection_cache``, ``projection_sketch``, ``extended_head``), ``should_stop``
    (Ctrl-C and ``reslens.Cancelled`` between steps) and ``progress`` included, is ``explain``'s.

    >>> ex = reslens.explain_target(model, "Once upon a time", target=" there was a")
    >>> len(ex.steps), ex.ffn_neuron.shape == ex.steps[0].ffn_neuron.shape
    (3, True)
    """
    from .target import TargetExplanation
    core = _explain_target_core(model, text, target, foil, position, prepend_bos, include_final_bias, compat, baselines,
                                query_top, set_size, lens_top_k, method, threads, top, continuation, generate,
                                temperature, seed, bound_tol, projection_cache, projection_sketch, extended_head,
                                should_stop, progress)
    return TargetExplanation(core, model, top)


def precompute_projections(model: "Model", progress: Union[bool, Callable[[int, int], None], None] = None,
                           threads: Optional[int] = None) -> dict:
    """Builds the model's projection cache (``reslens precompute MODEL``): every FFN and attention
    neuron direction projected onto the vocabulary once and stored quantized, with certified error
    bounds, under ``$RESLENS_CACHE_DIR`` (default ``~/.cache/reslens``). Later ``explain`` calls on
    these weights (in any process) use it and are several times faster; scores are the same within
    1e-5 either way. Takes about as long as one straightforward explain at one position and
    ``n_layers * (d_mlp + 2 * n_heads * d_head) * d_vocab`` bytes of disk (GPT-2 124M: 2.8 GB).

    ``progress``: True for a line on stderr, or a callable ``(done, total)`` over directions.
    Returns ``{"path", "present", "bytes"}`` (``projection_cache_info``).
    """
    def line() -> Callable[[int, int], None]:
        def show(done: int, total: int) -> None:
            sys.stderr.write(f"\rprojecting directions: {done}/{total} ({100 * done // total}%)")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        return show

    progress_fn = progress_callback(progress, line, "(done, total)")
    return _core.precompute_projections(model.core, model.threads if threads is None else int(threads), progress_fn)


def projection_cache_info(model: "Model") -> dict:
    """``{"path", "present", "bytes"}``: where the model's projection cache is or would be."""
    return _core.projection_cache_info(model.core)
