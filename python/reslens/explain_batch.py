"""``reslens.explain_batch``: many explanations, one per prompt, as ``reslens explain --batch``
(docs/distributed.md) does on the command line, but yielded one at a time."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional, Union


if TYPE_CHECKING:
    from .explain import Explanation
    from .model import Model
    from .target import TargetExplanation

_KEYS = {"prompt", "target", "foil", "position", "id"}


@dataclass(frozen=True)
class BatchResult:
    """One prompt of a batch: ``line`` is its 1-based line in the file (its 1-based place in a list),
    ``id`` the item's "id" (None without one). Exactly one of ``explanation`` and ``error`` is set:
    ``error`` when the item is malformed or cannot be explained (a position past its end, an unknown
    token), with the message ``reslens explain`` would print."""

    line: int
    id: Any
    explanation: Optional[Union["Explanation", "TargetExplanation"]]
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        """The line ``reslens explain --batch`` writes for this prompt: the ``--json`` document with
        ``"batch": {"line", "id", "notes"?}`` added, or ``{"batch": ..., "error": ...}``."""
        tag = {"line": self.line, "id": self.id}
        if self.explanation is None:
            return json.dumps({"batch": tag, "error": self.error}, ensure_ascii=False, separators=(",", ":"))
        doc = json.loads(self.explanation.to_json())
        notes = list(getattr(self.explanation, "notes", []))
        if notes:  # how a target or foil was resolved, as the CLI prints them
            tag["notes"] = notes
        doc["batch"] = tag
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _items(prompts: Union[str, os.PathLike, Iterable[Union[str, Mapping[str, Any]]]], strict: bool):
    """(line, item or error message) for a JSONL path or an iterable of texts and dicts."""
    if isinstance(prompts, (str, os.PathLike)) and os.path.exists(prompts):
        with open(prompts, encoding="utf-8") as f:
            for n, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    item = json.loads(text)
                except json.JSONDecodeError:
                    item = None
                if not isinstance(item, dict):
                    if strict:
                        raise ValueError(f"{prompts}:{n}: not a JSON object")
                    yield n, "not a JSON object"
                    continue
                yield n, item
        return
    if isinstance(prompts, (str, bytes, os.PathLike)):
        raise FileNotFoundError(f"{prompts}: no such batch file (pass a list to explain several texts)")
    for n, item in enumerate(prompts, 1):
        yield n, {"prompt": item} if isinstance(item, str) else item


def _item_problem(item: Any) -> Optional[str]:
    """Why a batch item cannot be run (the message its error result carries), or None."""
    if not isinstance(item, Mapping) or not isinstance(item.get("prompt"), str):
        return 'no "prompt" text'
    if set(item) - _KEYS:
        return "unknown key(s) " + ", ".join(sorted(set(item) - _KEYS))
    if item.get("position") is not None and not isinstance(item.get("position"), int):
        return '"position" must be a whole number (0-based; -1 for the last token)'
    return None


def explain_batch(model: "Model", prompts: Union[str, os.PathLike, Iterable[Union[str, Mapping[str, Any]]]],
                  top: int = 50, *, strict: bool = False, **options: Any) -> Iterator[BatchResult]:
    """Explains every prompt of ``prompts`` in order and yields a ``BatchResult`` for each, as soon as
    it is done.

    ``prompts``: the path of a JSONL file in ``reslens explain --batch``'s format (a line
    ``{"prompt", "target"?, "foil"?, "position"?, "id"?}``; target and foil a text, an id or a list of
    ids), or an iterable of such dicts or of plain prompt texts. ``options`` are ``reslens.explain``'s
    keyword arguments shared by every prompt (``include_final_bias``, ``compat``, ``baselines``,
    ``query_top``, ``prepend_bos``, ``threads``, ...). A malformed item, or one that cannot be
    explained, gives a result with ``error`` set and the others go on; with ``strict`` it raises
    (ValueError). ``result.to_json()`` is then the line ``reslens explain --batch`` writes.

    >>> for r in reslens.explain_batch(model, [{"prompt": "Once upon a", "target": " time", "id": 1}], top=5):
    ...     print(r.id, r.explanation.target.text)
    1  time
    """
    from .explain import check_bound_tol, explain

    if "bound_tol" in options:  # a bad one is the call's problem, not every prompt's
        check_bound_tol(options["bound_tol"])
    for line, item in _items(prompts, strict):
        if isinstance(item, str):  # a malformed file line
            yield BatchResult(line, None, None, item)
            continue
        ident = item.get("id") if isinstance(item, Mapping) else None
        problem = _item_problem(item)
        if problem is not None:
            if strict:
                raise ValueError(f"item {line}: {problem}")
            yield BatchResult(line, ident, None, problem)
            continue
        try:
            ex = explain(model, item["prompt"], target=item.get("target"), foil=item.get("foil"),
                         position=-1 if item.get("position") is None else item["position"], top=top, **options)
        except (ValueError, IndexError, NotImplementedError) as e:  # the prompt's own problem (InvalidArgument, OutOfRange, ...)
            if strict:
                raise
            yield BatchResult(line, ident, None, str(e))
            continue
        yield BatchResult(line, ident, ex)
