"""``reslens.experiment``: the paper's dataset-level evaluation (spec §5.2, §3.3), the library call
behind ``reslens experiment``. Results are the library's own documents (the CLI's ``summary.json``,
``summary.csv``, ``summary.md`` and ``sentences.jsonl``, byte for byte), parsed into dicts, with
pandas tables on top.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import _core
from .utils import progress_callback

if TYPE_CHECKING:
    from .model import Model

DatasetLike = Union[str, "os.PathLike[str]", Iterable[Mapping[str, Any]]]
ProgressFn = Callable[[int, int, int, float], None]


@dataclass(frozen=True)
class ExperimentResult:
    """What ``reslens experiment`` writes, in memory.

    - ``summary``: ``summary.json`` as a dict (``settings``; ``types``: "all" first, then each
      knowledge type with ``before``, ``interventions``, ``importance``, ``shared_neuron_rate``)
    - ``sentences``: one dict per dataset sentence (the lines of ``sentences.jsonl``), index order
    - ``skipped``: ``(line, problem)`` for each malformed dataset line that was left out
    """

    summary: Dict[str, Any]
    sentences: List[Dict[str, Any]]
    skipped: List[Tuple[int, str]] = field(default_factory=list)
    _json: str = field(default="", repr=False)
    _csv: str = field(default="", repr=False)
    _markdown: str = field(default="", repr=False)

    def __repr__(self) -> str:
        kept = sum(1 for s in self.sentences if s["status"] == "kept")
        return f"ExperimentResult({len(self.sentences)} sentences, {kept} kept, {len(self.summary['types']) - 1} types)"

    # -- the CLI's files ------------------------------------------------------------------------
    def to_json(self) -> str:
        """``summary.json`` (the same bytes the CLI writes)."""
        return self._json

    def to_csv(self) -> str:
        """``summary.csv``: a tidy table (table, type, row, column, value)."""
        return self._csv

    def to_markdown(self) -> str:
        """``summary.md``: the paper's tables per knowledge type."""
        return self._markdown

    def _repr_markdown_(self) -> str:
        return self._markdown

    def save(self, out: Union[str, "os.PathLike[str]"]) -> pathlib.Path:
        """Writes ``summary.json``, ``summary.csv``, ``summary.md`` and ``sentences.jsonl`` into ``out``
        (created if needed), as ``reslens experiment -o OUT`` does. Returns the folder."""
        d = pathlib.Path(out)
        d.mkdir(parents=True, exist_ok=True)
        (d / "summary.json").write_text(self._json)
        (d / "summary.csv").write_text(self._csv)
        (d / "summary.md").write_text(self._markdown)
        with open(d / "sentences.jsonl", "w") as f:
            for s in self.sentences:
                f.write(json.dumps(s) + "\n")
        return d

    # -- tables ---------------------------------------------------------------------------------
    def type_summary(self, type: str = "all") -> Dict[str, Any]:
        """The summary of one knowledge type (``"all"``: every kept sentence)."""
        for t in self.summary["types"]:
            if t["type"] == type:
                return t
        names = ", ".join(t["type"] for t in self.summary["types"])
        raise KeyError(f"no knowledge type {type!r} in this experiment (types: {names})")

    def to_dataframe(self, kind: str = "interventions"):
        """A pandas DataFrame (needs python3-pandas). ``kind``:

        - ``"interventions"``: one row per knowledge type and intervention: neurons zeroed, MRR,
          probability and log-probability after, and their % decrease (the paper's Table 2 layout)
        - ``"before"``: one row per type: sentence counts, MRR / probability / log-probability before
        - ``"layers"``: one row per type and layer: mean attention and FFN layer importance
        - ``"sentences"``: one row per sentence: status, target, before stats
        """
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise ImportError("to_dataframe needs pandas (Debian: apt-get install python3-pandas)") from e
        types = self.summary["types"]
        if kind == "interventions":
            rows = []
            for t in types:
                for iv in t["interventions"]:
                    rows.append({"type": t["type"], "name": iv["name"], "label": iv["label"],
                                 "mean_ffn_zeroed": iv["mean_ffn_zeroed"], "mean_attn_zeroed": iv["mean_attn_zeroed"],
                                 **{f"{k}_after": v for k, v in iv["after"].items()},
                                 **{f"{k}_decrease_pct": v for k, v in iv["decrease_pct"].items()}})
            return pd.DataFrame(rows)
        if kind == "before":
            return pd.DataFrame([{"type": t["type"], **t["sentences"], **t["before"],
                                  "value_shared_rate": t["shared_neuron_rate"]["value"],
                                  "query_shared_rate": t["shared_neuron_rate"]["query"]} for t in types])
        if kind == "layers":
            rows = []
            for t in types:
                imp = t["importance"]
                for layer, (a, f) in enumerate(zip(imp["attn_layer"], imp["ffn_layer"])):
                    rows.append({"type": t["type"], "layer": layer, "attn": a, "ffn": f})
            return pd.DataFrame(rows)
        if kind == "sentences":
            rows = []
            for s in self.sentences:
                row = {k: s[k] for k in ("index", "line", "type", "prompt", "target", "target_token", "status",
                                         "detail")}
                row.update({f"{k}_before": v for k, v in (s.get("before") or {}).items()})
                rows.append(row)
            return pd.DataFrame(rows)
        raise ValueError(f"kind must be one of interventions, before, layers, sentences; not {kind!r}")


def _bar(out) -> ProgressFn:
    """A one-line progress bar with rate and ETA (what the CLI shows on a terminal)."""

    def show(done: int, total: int, kept: int, elapsed: float) -> None:
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        width = 30
        filled = width * done // max(total, 1)
        out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} kept {kept}  "
                  f"{rate:.1f}/s  ETA {eta:.0f}s")
        if done == total:
            out.write("\n")
        out.flush()

    return show


def experiment(model: "Model", dataset: DatasetLike, *, filter_top_k: int = 10, ffn_top: int = 10,
               attn_top: int = 200, attn_ffn_top: int = 100, query_top: int = 1000, shared_set: int = 300,
               max_fraction: float = 0.05, query_value_neurons: int = 30, baselines: bool = True,
               random: bool = True, seed: int = 0, prepend_bos: Optional[bool] = None, strict: bool = False,
               shard: str = "1/1", threads: Optional[int] = None,
               progress: Union[bool, ProgressFn, None] = None) -> ExperimentResult:
    """The paper's evaluation over a dataset: ``reslens experiment MODEL DATASET``.

    ``dataset``: a JSONL file path, or an iterable of dicts with ``prompt``, ``target``, ``type`` and
    optional ``competitors``. Sentences are kept when the target is in the top ``filter_top_k`` and
    above its same-type competitors; each kept sentence is attributed, its top neurons (and random
    ones of the same size, seeded) are zeroed, and the eight scores of spec §3.3 are compared. The
    neuron counts are the paper's, capped at ``max_fraction`` of a model's neurons (the rule is in
    ``summary["settings"]["counts"]["rule"]``). ``threads``: sentences evaluated at once (default:
    the model's thread setting); results do not depend on it. ``progress``: True for a bar on
    stderr, or a callable ``(done, total, kept, elapsed_s)``.

    >>> data = [{"prompt": "Once upon a time, there was a little", "target": " girl", "type": "noun"}]
    >>> res = reslens.experiment(model, data, seed=1)
    >>> res.sentences[0]["status"] in ("kept", "not_in_top_k", "below_competitor")
    True
    >>> res.type_summary("all")["sentences"]["total"]
    1
    """
    args = _core.ExperimentArgs()
    args.filter_top_k, args.ffn_top, args.attn_top = int(filter_top_k), int(ffn_top), int(attn_top)
    args.attn_ffn_top, args.query_top, args.shared_set = int(attn_ffn_top), int(query_top), int(shared_set)
    args.max_fraction, args.query_value_neurons = float(max_fraction), int(query_value_neurons)
    args.baselines, args.random, args.strict = bool(baselines), bool(random), bool(strict)
    if seed < 0 or seed >= 1 << 64:
        raise ValueError(f"seed must be in 0..2**64-1, not {seed}")
    args.seed = int(seed)
    args.add_bos = prepend_bos
    args.threads = model.threads if threads is None else int(threads)
    args.shard = str(shard)

    path: Optional[str] = None
    text: Optional[str] = None
    name = "<data>"
    if isinstance(dataset, (str, os.PathLike)):
        path = os.fspath(dataset)
    elif isinstance(dataset, (bytes, Mapping)):
        raise TypeError("dataset must be a JSONL path or an iterable of dicts (prompt, target, type)")
    else:
        lines = []
        for i, row in enumerate(dataset):
            if not isinstance(row, Mapping):
                raise TypeError(f"dataset row {i}: expected a dict with prompt, target and type, not "
                                f"{type(row).__name__}")
            lines.append(json.dumps(dict(row)))
        text = "\n".join(lines) + "\n"

    progress_fn = progress_callback(progress, lambda: _bar(sys.stderr), "(done, total, kept, elapsed_s)")

    summary, sentences, skipped, csv, md = _core.experiment(model.core, path, text, name, args, progress_fn)
    return ExperimentResult(json.loads(summary), [json.loads(s) for s in sentences],
                            [(int(line), msg) for line, msg in skipped], summary, csv, md)


__all__ = ["experiment", "ExperimentResult"]
