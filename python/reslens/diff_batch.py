"""``reslens.diff_batch``: ``reslens.diff`` of every prompt of a dataset, as ``reslens diff A B --batch``
(docs/diff.md, "Over a dataset") does on the command line, but yielded one at a time."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional, Union

from .explain_batch import _item_problem, _items

if TYPE_CHECKING:
    from .diff import ModelDiff
    from .model import Model


def _compact(text: str) -> str:
    """A JSON text without the whitespace outside its strings: the CLI's one-line form of a document."""
    out, in_str, esc = [], False, False
    for ch in text:
        if in_str:
            out.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            out.append(ch)
        elif ch not in " \n\t\r":
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class DiffBatchResult:
    """One prompt of a batch diff: ``line`` is its 1-based line in the file (its 1-based place in a
    list), ``id`` the item's "id". Exactly one of ``diff`` and ``error`` is set: ``error`` when the
    item is malformed or cannot be compared, with the message ``reslens diff`` would print."""

    line: int
    id: Any
    diff: Optional["ModelDiff"]
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        """The line ``reslens diff A B --batch`` writes for this prompt: the ``--json`` document on one
        line with ``"batch": {"line", "id"}`` appended, or ``{"batch": ..., "error": ...}``."""
        tag = json.dumps({"line": self.line, "id": self.id}, ensure_ascii=False, separators=(",", ":"))
        if self.diff is None:
            return '{"batch":' + tag + ',"error":' + json.dumps(self.error, ensure_ascii=False) + "}"
        return _compact(self.diff.to_json())[:-1] + ',"batch":' + tag + "}"


def diff_batch(model_a: "Model", model_b: "Model",
               prompts: Union[str, os.PathLike, Iterable[Union[str, Mapping[str, Any]]]], top: int = 20,
               split_top: int = 20, *, strict: bool = False, **options: Any) -> Iterator[DiffBatchResult]:
    """Compares every prompt of ``prompts`` under the two models, in order, and yields a
    ``DiffBatchResult`` for each as soon as it is done.

    ``prompts``: the path of a JSONL file in ``reslens explain --batch``'s format (a line
    ``{"prompt", "target"?, "foil"?, "position"?, "id"?}``; target and foil a text or one id), or an
    iterable of such dicts or of plain prompt texts. ``options`` are ``reslens.diff``'s keyword
    arguments shared by every prompt (``prepend_bos``, ``include_final_bias``, ``threads``, ``method``,
    ``bound_tol``, ``projection_cache``, ``projection_sketch``). A
    malformed item, or one that cannot be compared, gives a result with ``error`` set and the others
    go on; with ``strict`` it raises. Models of different shapes raise ``reslens.UnsupportedError``
    at the first prompt. The summary over the prompts is the CLI's (``OUT/summary.json``).

    >>> for r in reslens.diff_batch(f16, q8, ["Once upon a", {"prompt": "One day", "id": 2}]):  # doctest: +SKIP
    ...     print(r.line, r.diff.max_abs_delta > 0)
    """
    from ._core import UnsupportedError
    from .diff import diff
    from .explain import check_score_knobs

    # A bad knob is the call's problem, not every prompt's (raised before the first result).
    check_score_knobs(options.get("method", "auto"), options.get("bound_tol", 8e-6))
    for line, item in _items(prompts, strict):
        if isinstance(item, str):  # a malformed file line
            yield DiffBatchResult(line, None, None, item)
            continue
        ident = item.get("id") if isinstance(item, Mapping) else None
        problem = _item_problem(item)
        if problem is not None:
            if strict:
                raise ValueError(f"item {line}: {problem}")
            yield DiffBatchResult(line, ident, None, problem)
            continue
        try:
            if isinstance(item.get("target"), list) or isinstance(item.get("foil"), list):
                raise NotImplementedError("diff compares one target token: a target or foil of several tokens is "
                                          "not supported")
            d = diff(model_a, model_b, item["prompt"], target=item.get("target"), foil=item.get("foil"),
                     position=-1 if item.get("position") is None else item["position"], top=top,
                     split_top=split_top, **options)
        except UnsupportedError as e:
            if "cannot diff models" in str(e):  # the models, not the prompt: every prompt would fail
                raise
            if strict:
                raise
            yield DiffBatchResult(line, ident, None, str(e))
            continue
        except (ValueError, IndexError, NotImplementedError) as e:  # the prompt's own problem
            if strict:
                raise
            yield DiffBatchResult(line, ident, None, str(e))
            continue
        yield DiffBatchResult(line, ident, d)
