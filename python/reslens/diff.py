"""``reslens.diff``: one prompt explained under two models of the same shape (``reslens diff``),
every level side by side with B - A, the components that changed most and each top neuron's change
split into weights and activation (docs/diff.md).
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np

from . import _core
from .explain import TokenSpec, check_score_knobs, extended_head_int

if TYPE_CHECKING:
    from .model import Model, TokensLike


class ModelDiff:
    """The result of ``reslens.diff``: ``to_json()`` is ``reslens diff A B TEXT --json``'s document,
    ``arrays()`` every level as ``(a, b, delta)`` numpy arrays (explain's ``--out`` names)."""

    def __init__(self, core: _core.ModelDiff, top: int = 20):
        self._core = core
        self._top = top
        self._doc: Optional[Dict[str, Any]] = None

    @property
    def core(self) -> _core.ModelDiff:
        return self._core

    @property
    def json(self) -> Dict[str, Any]:
        """The JSON document as a dict."""
        if self._doc is None:
            self._doc = json.loads(self._core.to_json(self._top))
        return self._doc

    def to_json(self) -> str:
        return self._core.to_json(self._top)

    def text(self) -> str:
        """The terminal report of ``reslens diff``."""
        return self._core.text(self._top)

    def arrays(self) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return self._core.arrays()

    @property
    def max_abs_delta(self) -> float:
        """Largest |B - A| over every level: exactly 0 for a model and itself."""
        return self._core.max_abs_delta

    @property
    def splits(self) -> List[Dict[str, Any]]:
        """Per top neuron: delta, weights, activation (weights + activation = delta), weight_norm, ..."""
        return self.json["splits"]

    @property
    def changes(self) -> Dict[str, Any]:
        """layers / heads / ffn_neurons / attn_neurons, each ``by_delta`` and ``by_rank``."""
        return self.json["changes"]

    def __repr__(self) -> str:
        d = self.json
        return (f"<reslens.ModelDiff target {d['target']['text']!r}: log p {d['model_a']['target_log_prob']:.4f} -> "
                f"{d['model_b']['target_log_prob']:.4f}, max |B - A| {d['max_abs_delta']:.3g}>")

    def _repr_html_(self) -> str:
        d = self.json
        e = html.escape
        rows = "".join(
            f"<tr><th>{side.upper()}</th><td>{e(d['model_' + side]['path'])}</td>"
            f"<td>{e(d['model_' + side]['prediction']['text'])!s}</td>"
            f"<td>{d['model_' + side]['target_log_prob']:.5f}</td><td>{d['model_' + side]['target_rank']}</td></tr>"
            for side in ("a", "b"))
        out = [f"<div><b>reslens diff</b>: target {e(repr(d['target']['text']))}, position {d['position']}, "
               f"max |B - A| {d['max_abs_delta']:.3g}<table><tr><th></th><th>model</th><th>prediction</th>"
               f"<th>log p(target)</th><th>rank</th></tr>{rows}</table>"]
        for key, title in (("layers", "layers"), ("heads", "heads"), ("ffn_neurons", "FFN neurons"),
                           ("attn_neurons", "attention neurons")):
            items = d["changes"][key]["by_delta"][:10]
            if not items:
                continue
            body = "".join(f"<tr><td>{e(c['label'])}</td><td>{c['a']:+.5f}</td><td>{c['b']:+.5f}</td>"
                           f"<td>{c['delta']:+.5f}</td><td>{c['rank_a']} &rarr; {c['rank_b']}</td></tr>" for c in items)
            out.append(f"<details><summary>{title} that changed most</summary><table><tr><th></th><th>A</th><th>B</th>"
                       f"<th>B - A</th><th>rank</th></tr>{body}</table></details>")
        if d["splits"]:
            body = "".join(f"<tr><td>{e(s['label'])}</td><td>{s['delta']:+.5f}</td><td>{s['weights']:+.5f}</td>"
                           f"<td>{s['activation']:+.5f}</td><td>{s['weight_norm']:.5f}</td></tr>" for s in d["splits"])
            out.append("<details><summary>weights vs activation</summary><table><tr><th></th><th>B - A</th>"
                       f"<th>weights</th><th>activation</th><th>|w_B - w_A|</th></tr>{body}</table></details>")
        out.append("</div>")
        return "".join(out)


def diff(model_a: "Model", model_b: "Model", text: "TokensLike", target: TokenSpec = None, foil: TokenSpec = None,
         position: int = -1, top: int = 20, split_top: int = 20, *, prepend_bos: Optional[bool] = None,
         include_final_bias: bool = False, threads: Optional[int] = None, method: str = "auto",
         bound_tol: float = 8e-6, projection_cache: bool = True, projection_sketch: bool = True,
         extended_head: int = -1) -> ModelDiff:
    """``reslens diff MODEL_A MODEL_B TEXT`` as a Python object. The text is tokenized by model A;
    the default target is A's top prediction, and B explains A's ids, position and target. Models of
    different shapes or vocabularies raise ``reslens.UnsupportedError`` naming both shapes.
    ``method``, ``bound_tol``, ``projection_cache``, ``projection_sketch``, ``extended_head``: how both
    sides' scores are computed, as ``reslens.explain``'s (``reslens diff --method --bound-tol
    --no-projection-cache --no-sketch --extended-head``; a bad value raises ``ValueError``, a wrong type
    ``TypeError``); the document records them under ``options``.

    >>> d = reslens.diff(model, model, "Once upon a time")
    >>> d.max_abs_delta
    0.0
    """
    check_score_knobs(method, bound_tol)
    ids = model_a.tokens(text, prepend_bos)
    core = _core.diff(model_a.core, model_b.core, ids, target, foil, int(position), int(top), int(split_top),
                      bool(include_final_bias), int(threads or 0), method, float(bound_tol), bool(projection_cache),
                      bool(projection_sketch), extended_head_int(extended_head))
    return ModelDiff(core, top)
