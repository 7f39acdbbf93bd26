"""``model.generate`` and ``reslens.lens``: the ``reslens generate`` and ``reslens lens`` commands from
Python, with the same numbers (both call the library functions the commands call).

>>> model.generate("Once upon a time", max_new_tokens=5)                      # greedy
'Once upon a time, there was a little'
>>> model.generate("Once upon a time", max_new_tokens=5, temperature=0.8, seed=1)   # sampled, seeded
'Once upon a time, there was a little'
>>> res = reslens.lens(model, "Once upon a time", target=" there")
>>> [(p.label, p.rank) for p in res][:3]
[('emb', 360), ('a0', 107), ('f0', 23)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, List, Optional, Union

import numpy as np

from . import _core
from .hooks import refuse_hooks

if TYPE_CHECKING:
    from .explain import LensPoint, TokenInfo, TokenSpec
    from .model import Model, TokensLike


def generate(model: "Model", input: "TokensLike", max_new_tokens: int = 10, *, temperature: float = 0.0,
             seed: int = 0, do_sample: Optional[bool] = None, stop_at_eos: bool = True,
             return_type: str = "input", prepend_bos: Optional[bool] = None, threads: Optional[int] = None,
             top_k: Optional[int] = None, top_p: Optional[float] = None, verbose: bool = False
             ) -> Union[str, np.ndarray]:
    """Up to ``max_new_tokens`` tokens after ``input``, chosen as ``reslens generate -n N --temp T
    --seed S`` chooses them (``reslens::generate``, through the KV cache): the argmax (lowest id on
    ties) when ``temperature`` is 0, the default; otherwise drawn from ``softmax(logits /
    temperature)`` with the generator seeded by ``seed``, so a seed gives the CLI's tokens. Stops
    early at the end of the model's turn (its EOS or a chat template's turn end; not included).

    ``do_sample``: TransformerLens's switch; False forces greedy, True needs ``temperature > 0``.
    ``return_type``: "input" (a string for a string input, else token ids), "str" (prompt and
    continuation as text) or "tokens" (1-D ids of prompt and continuation; TL adds a batch
    dimension). Not supported (NotImplementedError rather than ignored): ``top_k``, ``top_p``,
    ``stop_at_eos=False``; and forward hooks (the KV-cached loop does not run them).
    """
    refuse_hooks(model, "model.generate")
    if top_k is not None or top_p is not None:
        raise NotImplementedError("top_k / top_p sampling: reslens samples from the whole softmax (reslens generate)")
    if not stop_at_eos:
        raise NotImplementedError("stop_at_eos=False: reslens generate always stops at the end of the model's turn")
    if return_type not in ("input", "str", "tokens"):
        raise ValueError(f"return_type must be 'input', 'str' or 'tokens', not {return_type!r}")
    if do_sample is False:
        temperature = 0.0
    elif do_sample and not temperature > 0:
        raise ValueError("do_sample=True needs a temperature > 0 (temperature 0 is greedy)")
    ids = model.tokens(input, prepend_bos)
    out = _core.generate(model.core, ids, int(max_new_tokens), float(temperature), int(seed),
                         model.threads if threads is None else int(threads))
    new = [int(t) for t in out["tokens"]]
    if verbose:
        print(model.to_string(new))
    if return_type == "tokens" or (return_type == "input" and not isinstance(input, str)):
        return np.asarray(ids + new, dtype=np.int64)
    prompt = input if isinstance(input, str) else model.to_string(ids)
    # The continuation as `reslens generate` prints it: each token's bytes in turn.
    return prompt + out["bytes"].decode("utf-8", errors="replace")


@dataclass(frozen=True)
class LensResult:
    """The logit lens at one position (``reslens lens``): the target's rank and probability, and the
    top tokens, at every residual point (``"emb"``, ``"a{l}"`` after layer l's attention, ``"f{l}"``
    after its FFN), read through the frozen final norm (spec 2.3). Iterates over ``points``."""

    position: int
    target: "TokenInfo"
    points: List["LensPoint"]

    def __iter__(self) -> Iterator["LensPoint"]:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i):
        return self.points[i]

    @property
    def labels(self) -> List[str]:
        return [p.label for p in self.points]

    @property
    def ranks(self) -> np.ndarray:
        return np.array([p.rank for p in self.points], dtype=np.int64)

    @property
    def probs(self) -> np.ndarray:
        return np.array([p.prob for p in self.points], dtype=np.float64)

    def to_dict(self) -> dict:
        """The document of ``reslens lens --json``."""
        return {"position": self.position, "target": {"id": self.target.id, "text": self.target.text},
                "points": [{"label": p.label, "rank": p.rank, "prob": p.prob, "log_prob": p.log_prob,
                            "top": [{"id": i, "text": t, "prob": q}
                                    for i, t, q in zip(p.top_ids, p.top_tokens, p.top_probs)]}
                           for p in self.points]}


def lens(model: "Model", text: "TokensLike", target: "TokenSpec" = None, position: int = -1, k: int = 5, *,
         prepend_bos: Optional[bool] = None, threads: Optional[int] = None) -> LensResult:
    """``reslens lens MODEL TEXT --target T -p P -k K``: the target (default: the top prediction;
    an id or a text, resolved as ``--target``) at every residual point of ``position``, with the
    ``k`` likeliest tokens at each. The same computation as the command (``reslens.explain``'s lens).

    A list of prompts gives a list of results, one per prompt.

    >>> res = reslens.lens(model, "Once upon a time", k=3)
    >>> res.labels[:3], res.points[-1].rank
    (['emb', 'a0', 'f0'], 1)
    """
    from .explain import explain
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    ex = explain(model, text, target=target, position=position, top=1, lens_top_k=k, prepend_bos=prepend_bos,
                 threads=threads)

    def result(e) -> LensResult:
        if not hasattr(e, "lens"):
            raise ValueError(f"the lens reads one target token; {target!r} is {len(e.steps)} tokens")
        return LensResult(e.position, e.target, list(e.lens))

    # A list of prompts (explain's batch): one result per prompt, in order.
    return [result(e) for e in ex] if isinstance(ex, list) else result(ex)  # type: ignore[return-value]


__all__ = ["generate", "lens", "LensResult"]
