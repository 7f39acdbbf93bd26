"""``reslens.graph``: the prediction's circuit (``reslens graph``) as Neuronpedia's attribution-graph
JSON, with a small layered drawing for notebooks (docs/graph.md).
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from . import _core
from .explain import TokenSpec, check_score_knobs, extended_head_int

if TYPE_CHECKING:
    from .model import Model, TokensLike


class Graph:
    """The result of ``reslens.graph``: ``to_json()`` is ``reslens graph``'s document; ``nodes``,
    ``links`` and ``metadata`` its parts as dicts."""

    def __init__(self, core: _core.CircuitGraph):
        self._core = core
        self._doc: Dict[str, Any] = json.loads(core.to_json())

    @property
    def core(self) -> _core.CircuitGraph:
        return self._core

    def to_json(self) -> str:
        return self._core.to_json()

    @property
    def json(self) -> Dict[str, Any]:
        return self._doc

    nodes = property(lambda self: self._doc["nodes"], doc="node dicts (node_id, feature_type, layer, ctx_idx, clerp, ...)")
    links = property(lambda self: self._doc["links"], doc="edge dicts (source, target, weight)")
    metadata = property(lambda self: self._doc["metadata"])

    def __repr__(self) -> str:
        return (f"<reslens.Graph {len(self.nodes)} nodes, {len(self.links)} links (of {self._core.nodes_before} "
                f"and {self._core.edges_before} before pruning)>")

    def _repr_html_(self) -> str:
        """An SVG: one column per layer (tokens left, the logit right); edge width ~ |weight|, blue
        positive, red negative; hover a node or an edge for its label and weight."""
        def column(n):
            return -1 if n["layer"] == "E" else int(n["layer"])
        cols = sorted({column(n) for n in self.nodes})
        by_col: Dict[int, List[Dict[str, Any]]] = {c: [] for c in cols}
        for n in self.nodes:
            by_col[column(n)].append(n)
        w, h = 140 * len(cols) + 40, 40 + 28 * max(len(v) for v in by_col.values())
        pos = {}
        for i, c in enumerate(cols):
            for j, n in enumerate(by_col[c]):
                pos[n["node_id"]] = (40 + 140 * i, 30 + 28 * j)
        big = max((abs(l["weight"]) for l in self.links), default=1.0) or 1.0
        e = html.escape
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="10">']
        for l in self.links:
            (x1, y1), (x2, y2) = pos[l["source"]], pos[l["target"]]
            colour = "#2b6cb0" if l["weight"] >= 0 else "#c53030"
            parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-opacity="0.6" '
                         f'stroke-width="{0.5 + 4 * abs(l["weight"]) / big:.2f}"><title>{e(l["source"])} &rarr; '
                         f'{e(l["target"])}: {l["weight"]:+.5f}</title></line>')
        for n in self.nodes:
            x, y = pos[n["node_id"]]
            parts.append(f'<g><circle cx="{x}" cy="{y}" r="5" fill="#444"/><text x="{x + 7}" y="{y + 3}">'
                         f'{e(n["clerp"])}</text><title>{e(n["feature_type"])} {e(n["node_id"])}</title></g>')
        parts.append("</svg>")
        return "".join(parts)


def graph(model: "Model", text: "TokensLike", target: TokenSpec = None, position: int = -1, *,
          top_values: int = 10, top_heads: int = 5, top_queries: int = 20, node_threshold: float = 0.8,
          edge_threshold: float = 0.98, prepend_bos: Optional[bool] = None, include_final_bias: bool = False,
          threads: Optional[int] = None, method: str = "auto", bound_tol: float = 8e-6,
          projection_cache: bool = True, projection_sketch: bool = True, extended_head: int = -1) -> Graph:
    """``reslens graph MODEL TEXT`` as a Python object. Thresholds outside [0, 1], or a pruning that
    leaves no edge, raise ``ValueError``. ``method``, ``bound_tol``, ``projection_cache``,
    ``projection_sketch``, ``extended_head``: how the explanation's scores are computed, as
    ``reslens.explain``'s (``reslens graph --method ...``; a bad value raises ``ValueError``, a wrong
    type ``TypeError``); ``metadata["generation_settings"]`` records them.

    >>> g = reslens.graph(model, "Once upon a time", node_threshold=1, edge_threshold=1)
    >>> len(g.links) > 0, g.nodes[0]["feature_type"]
    (True, 'logit')
    """
    check_score_knobs(method, bound_tol)
    ids = model.tokens(text, prepend_bos)
    return Graph(_core.graph(model.core, ids, target, int(position), int(top_values), int(top_heads),
                             int(top_queries), float(node_threshold), float(edge_threshold),
                             bool(include_final_bias), int(threads or 0), method, float(bound_tol),
                             bool(projection_cache), bool(projection_sketch), extended_head_int(extended_head)))
