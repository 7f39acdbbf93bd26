"""``reslens.ablate``: zero neurons or heads, re-run, and measure the target before and after, with a
seeded random baseline of the same size (the ``reslens ablate`` command; spec A7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Tuple, Union

from . import _core
from .explain import TokenInfo, TokenSpec, _token_name
from .hooks import refuse_hooks

if TYPE_CHECKING:
    from .model import Model, TokensLike


@dataclass(frozen=True)
class TargetStats:
    prob: float
    log_prob: float
    rank: int  # 1 = top
    rr: float  # reciprocal rank
    top1: int  # the most likely token


@dataclass(frozen=True)
class RandomBaseline:
    seed: int
    after: TargetStats
    ffn: List[Tuple[int, int]] = field(default_factory=list)
    heads: List[Tuple[int, int]] = field(default_factory=list)
    attn: List[Tuple[int, int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class AblationResult:
    target: TokenInfo
    position: int
    level: str  # "parameter" or "activation"
    before: TargetStats
    after: TargetStats
    random: Optional[RandomBaseline]
    notes: List[str] = field(default_factory=list)

    @property
    def prob_change(self) -> float:
        """Relative change of the target's probability: (after - before) / before."""
        return (self.after.prob - self.before.prob) / self.before.prob

    def to_dict(self) -> dict:
        """The JSON object of ``reslens ablate --json`` (as a dict)."""
        def stats(s: TargetStats) -> dict:
            return {"prob": s.prob, "log_prob": s.log_prob, "rank": s.rank, "rr": s.rr, "top1": s.top1}

        d = {"target": {"id": self.target.id, "text": self.target.text}, "position": self.position,
             "level": self.level, "before": stats(self.before), "after": stats(self.after)}
        if self.random is not None:
            r = self.random
            d["random"] = {"seed": r.seed, "after": stats(r.after), "ffn": [list(x) for x in r.ffn],
                           "heads": [list(x) for x in r.heads], "attn": [list(x) for x in r.attn]}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


Items = Union[None, str, Iterable[Union[str, Sequence[int]]]]


def _parse(items: Items, want: int, what: str, allow_at: bool) -> List[Tuple[int, ...]]:
    """'1:2,3:4' or ['1:2', (3, 4)] -> [(1, 2), (3, 4)]; with ``allow_at``, 'l:h:d@p' -> (l, h, d, p)."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [s for s in items.split(",")]
    out = []
    for item in items:
        at = -1
        if isinstance(item, str):
            body = item.strip()
            if "@" in body:
                if not allow_at:
                    raise ValueError(f"'{item}': only attention neurons take a source position")
                body, pos = body.split("@", 1)
                at = int(pos)
            try:
                nums = [int(x) for x in body.split(":")]
            except ValueError:
                raise ValueError(f"'{item}' should be {want} numbers separated by ':'") from None
        else:
            nums = [int(x) for x in item]
            if allow_at and len(nums) == want + 1:
                nums, at = nums[:want], nums[want]
        if len(nums) != want:
            raise ValueError(f"{what} '{item}' should have {want} numbers")
        out.append(tuple(nums) + ((at,) if allow_at else ()))
    return out


def _stats(d: dict) -> TargetStats:
    return TargetStats(d["prob"], d["log_prob"], d["rank"], d["rr"], d["top1"])


def ablate(model: "Model", text: "TokensLike", ffn: Items = None, heads: Items = None, attn: Items = None, *,
           experts: Items = None, target: TokenSpec = None, position: int = -1, activation: bool = False, seed: int = 0,
           random: bool = True, prepend_bos: Optional[bool] = None, threads: Optional[int] = None) -> AblationResult:
    """Zeroes components and reports the target's probability, log-probability, rank and reciprocal
    rank before and after: ``reslens ablate MODEL TEXT --ffn L:N,... --heads L:H,... --attn L:H:D[@P]``.

    ``ffn``: FFN neurons (layer, neuron); ``heads``: (layer, head); ``attn``: attention neurons
    (layer, head, dim) or (layer, head, dim, source_pos) -- as tuples or the CLI's strings
    (``"3:17,4:2"``). Parameter level by default (the components are removed everywhere);
    ``activation=True`` removes them only at ``position`` (and a source position only with it).
    ``random`` adds the CLI's seeded random baseline of the same size (the same draws as ``--seed``).
    ``experts``: mixture-of-experts models only, whole experts (layer, expert) or ``"L:E,..."``
    (``--experts``): all of the expert's neurons, appended to ``ffn``.

    >>> ex = reslens.explain(model, "Once upon a time")
    >>> res = reslens.ablate(model, "Once upon a time", ffn=[(n.layer, n.neuron) for n in ex.top_ffn_neurons[:5]])
    >>> res.after.prob < res.before.prob
    True
    >>> reslens.ablate(model, "Once upon a time", ffn="4:10,4:11", heads="3:1").level  # the CLI's spelling
    'parameter'

    A batch of prompts (a list, or a 2-D id array padded with -1) gives a list of results, one per
    prompt, each what that prompt alone gives; ``target`` is one value or one per row.
    """
    refuse_hooks(model, "reslens.ablate")
    from .batch import batch_items, per_row
    items = batch_items(model, text, prepend_bos)
    if items is not None:
        return [ablate(model, t, ffn, heads, attn, experts=experts, target=tg, position=position,  # type: ignore[misc]
                       activation=activation, seed=seed, random=random, prepend_bos=prepend_bos, threads=threads)
                for t, tg in zip(items, per_row(target, len(items), "target"))]
    c = model.cfg
    if position is None or isinstance(position, bool) or not hasattr(position, "__index__"):
        raise TypeError(f"position is the explained token position (an int; -1 the last), not {position!r}; "
                        "components are zeroed at every position unless activation=True")
    ids = model.tokens(text, prepend_bos)
    n = len(ids)
    if not -n <= position < n:
        raise IndexError(f"position {position} is out of range: the prompt has {n} tokens (0..{n - 1}, or -1 for the last)")
    ffn_l = _parse(ffn, 2, "FFN neuron", False)
    for layer, e in _parse(experts, 2, "expert", False):  # an expert is its d_expert neurons
        if not c.n_experts:
            raise ValueError(f"experts ({layer}, {e}): the model has no experts")
        if not (0 <= layer < c.n_layers and 0 <= e < c.n_experts):
            raise IndexError(f"expert ({layer}, {e}) is out of range: layer 0..{c.n_layers - 1}, expert 0..{c.n_experts - 1}")
        ffn_l += [(layer, e * c.d_expert + k) for k in range(c.d_expert)]
    heads_l = _parse(heads, 2, "head", False)
    attn_l = _parse(attn, 3, "attention neuron", True)
    for a in attn_l:
        if a[3] >= 0 and not activation:
            raise ValueError(f"attention neuron {a[:3]}@{a[3]}: a source position needs activation=True")
    if not (ffn_l or heads_l or attn_l):
        raise ValueError("nothing to ablate: give ffn, experts, heads or attn")
    iv = _core.Intervention(ffn_l, heads_l, attn_l, -1)
    # The library's one ablation request (reslens ablate): the target resolved at the position, the
    # components zeroed, and the random baseline of the same size drawn as `--seed` draws it.
    r = _core.ablate_request(model.core, ids, _token_name(target, "target"), iv, int(position), bool(activation),
                             int(seed) if random else None, model.threads if threads is None else int(threads))
    rnd = None
    if r["random"] is not None:
        q = r["random"]
        rnd = RandomBaseline(q["seed"], _stats(q["after"]), list(q["ffn"]), list(q["heads"]), list(q["attn"]))
    w = r["target"]
    return AblationResult(TokenInfo(w, model.to_single_str_token(w)), r["position"], "activation" if activation else "parameter",
                          _stats(r["before"]), _stats(r["after"]), rnd, list(r["notes"]))


__all__ = ["ablate", "AblationResult", "TargetStats", "RandomBaseline"]
