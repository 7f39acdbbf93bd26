"""Prompt accuracy of a model, whatever runs it (PyTorch while training, reslens_ref on the
exported files).

For each prompt the last position's logits are scored:
  top1     the target token is the argmax (what "accuracy" means everywhere in this project)
  filter   the paper's dataset filter (spec section 5.2): the target is in the top 10 and its
           logit is above every other answer of the same type
  p        the target's softmax probability
"""

import collections

import numpy as np

from facts import TYPES


def score(records, tok, logits_fn, batch=256):
    """records: dicts from facts.prompts(); logits_fn(list of id lists) -> [N, vocab] array of
    the last position's logits. Returns one result dict per record (prompt, target, type,
    template, top1, filter, p, rank, prediction)."""
    out = []
    for start in range(0, len(records), batch):
        chunk = records[start:start + batch]
        ids = [tok.encode(r["prompt"]) for r in chunk]
        logits = np.asarray(logits_fn(ids), dtype=np.float64)
        for r, row in zip(chunk, logits):
            target = tok.single_token(r["target"])
            comp = [tok.single_token(c) for c in r["competitors"]]
            if target is None or None in comp:
                raise ValueError(f"answers of {r['prompt']!r} are not single tokens")
            rank = int((row > row[target]).sum())
            e = np.exp(row - row.max())
            p = float(e[target] / e.sum())
            best = int(row.argmax())
            out.append({"prompt": r["prompt"], "target": r["target"], "type": r["type"],
                        "template": r["template"], "top1": best == target, "rank": rank, "p": p,
                        "filter": rank < 10 and bool(row[target] > max(row[c] for c in comp)),
                        "prediction": tok.decode([best])})
    return out


def summarize(results):
    """{"all": {...}, "by_type": {type: {...}}, "by_template": {template: {...}}} with n, top1
    (fraction), filter (fraction) and mean target probability."""
    def agg(rs):
        n = len(rs)
        return {"n": n, "top1": sum(r["top1"] for r in rs) / n,
                "filter": sum(r["filter"] for r in rs) / n, "mean_p": sum(r["p"] for r in rs) / n}
    by_type = collections.defaultdict(list)
    by_template = collections.defaultdict(list)
    for r in results:
        by_type[r["type"]].append(r)
        by_template[r["type"] + ": " + r["template"]].append(r)
    return {"all": agg(results),
            "by_type": {t: agg(by_type[t]) for t in TYPES if by_type[t]},
            "by_template": {k: agg(v) for k, v in by_template.items()}}


def format_summary(name, s):
    a = s["all"]
    lines = [f"{name}: top-1 {a['top1']:.1%} (n={a['n']}), paper filter {a['filter']:.1%}, "
             f"mean p(target) {a['mean_p']:.3f}"]
    lines.append("  " + "  ".join(f"{t} {v['top1']:.1%}" for t, v in s["by_type"].items()))
    return "\n".join(lines)
