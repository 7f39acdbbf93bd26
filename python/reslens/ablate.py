"""``reslens.ablate``: zero neurons or heads, re-run, and measure the target before and after, with a
seeded random baseline of the same size (the ``reslens ablate`` command; spec A7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Tuple, Union

from . import _core
from .explain import TokenInfo, TokenSpec, _candidates

if TYPE_CHECKING:
    from .model import Model, TokensLike

_MASK = (1 << 64) - 1


class _SplitMix64:
    """The CLI's portable generator (tools/reslens/cmd_ablate.cpp): same seed, same neurons."""

    def __init__(self, seed: int):
        self.s = seed & _MASK

    def next(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & _MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        limit = _MASK - _MASK % n
        x = self.next()
        while x >= limit:
            x = self.next()
        return x % n


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
    """
    c = model.cfg
    ids = model.tokens(text, prepend_bos)
    n = len(ids)
    P = position + n if position < 0 else position
    if P < 0 or P >= n:
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
    level_pos = P if activation else -1
    iv = _core.Intervention(ffn_l, heads_l, attn_l, level_pos)
    threads = model.threads if threads is None else int(threads)

    # The target: the top prediction at P, or the named token the model finds likelier there.
    plain = _core.run(model.core, ids[: P + 1], [], False, threads)
    logits_p = plain.logits[0]
    cands, note = _candidates(model, target, "target")
    notes = [note] if note else []
    if not cands:
        w = int(_core.target_stats(logits_p.tolist(), 0)["top1"])
    else:
        for t in cands:
            if t < 0 or t >= c.d_vocab:
                raise IndexError(f"target token id {t} is outside the vocabulary (0..{c.d_vocab - 1})")
        w = max(cands, key=lambda t: (logits_p[t], -cands.index(t)))
    before, after = _core.ablate(model.core, ids, w, iv, P, threads)

    rnd = None
    if random:
        rng = _SplitMix64(seed)
        r_ffn: List[Tuple[int, int]] = []
        r_heads: List[Tuple[int, int]] = []
        r_attn: List[Tuple[int, int, int]] = []
        while len(r_ffn) < len(ffn_l):
            i = rng.below(c.n_layers * c.d_mlp)
            key = (i // c.d_mlp, i % c.d_mlp)
            if key not in r_ffn:
                r_ffn.append(key)
        while len(r_heads) < len(heads_l):
            i = rng.below(c.n_layers * c.n_heads)
            key = (i // c.n_heads, i % c.n_heads)
            if key not in r_heads:
                r_heads.append(key)
        per_layer = c.n_heads * c.d_head
        while len(r_attn) < len(attn_l):
            i = rng.below(c.n_layers * per_layer)
            key = (i // per_layer, i % per_layer // c.d_head, i % c.d_head)
            if key not in r_attn:
                r_attn.append(key)
        riv = _core.Intervention(r_ffn, r_heads, [k + (-1,) for k in r_attn], level_pos)
        _, r_after = _core.ablate(model.core, ids, w, riv, P, threads)
        rnd = RandomBaseline(seed, _stats(r_after), r_ffn, r_heads, r_attn)
    return AblationResult(TokenInfo(w, model.to_single_str_token(w)), P, "activation" if activation else "parameter",
                          _stats(before), _stats(after), rnd, notes)


__all__ = ["ablate", "AblationResult", "TargetStats", "RandomBaseline"]
