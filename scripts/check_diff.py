#!/usr/bin/python3
"""Checks `reslens diff` (docs/diff.md) end to end. Used by CTest; exit 0 only when every check holds.

  1. A model against itself: every level's B - A is exactly 0, no component is listed as changed.
  2. F16 against Q8_0 of the same model (both converted here from --model): each side is bit for bit
     `reslens explain` of that model for the same target, and every delta array is bit for bit the
     difference of the two explains' arrays.
  3. The weights/activation split: weights + activation = delta (to rounding); |w_B - w_A| and the
     weights part against the float64 reference (scripts/reslens_ref: its own Q8_0/F16 decoding,
     forward pass and frozen-norm projection), to --atol.
  4. Bad input: a model of another shape (--other) is refused with exit code 4 and a message naming
     both models' shapes.
  5. A copy of the F16 file with one token's piece rewritten is refused the same way, naming the token.

    check_diff.py --reslens BUILD/reslens --model MODEL.gguf --other OTHER --ids 1,2,3 --work DIR
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from check_helpers import Checks, embedded_json, f16_q8_pair, fresh_dir, npys  # noqa: E402
from check_helpers import stdout_of as run  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", required=True)
    ap.add_argument("--model", required=True, help="an F32 GGUF; converted here to F16 and Q8_0")
    ap.add_argument("--other", required=True, help="a model of another shape (refused)")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--position", type=int, help="explained position, given to diff and both explains")
    ap.add_argument("--foil", type=int, help="contrast token, given to diff and both explains")
    a = ap.parse_args()
    a.work = fresh_dir(a.work)
    check = Checks()
    f16, q8 = f16_q8_pair(a.model, a.work)
    extra = (["--position", str(a.position)] if a.position is not None else []) + \
        (["--foil", str(a.foil)] if a.foil is not None else [])
    base = [a.reslens, "diff", "--ids", a.ids, "--bos", "no", "--json"] + extra

    # 1. A model against itself.
    self_dir = os.path.join(a.work, "self")
    doc = self_doc = json.loads(run(base[:2] + [f16, f16] + base[2:] + ["--out", self_dir]))
    check(doc["max_abs_delta"] == 0, f"self: max |B - A| is exactly 0 (got {doc['max_abs_delta']})")
    deltas = npys(os.path.join(self_dir, "delta"))
    check(len(deltas) >= 8 and all(not np.any(v) for v in deltas.values()),
          f"self: all {len(deltas)} delta arrays are exactly 0")
    listed = sum(len(doc["changes"][k][o]) for k in doc["changes"] for o in ("by_delta", "by_rank"))
    check(listed == 0 and doc["splits"] == [], "self: no component listed as changed, no split")
    check(doc["model_a"]["target_log_prob"] == doc["model_b"]["target_log_prob"], "self: the same target log-prob")

    # 2. F16 against Q8_0, against two separate explains.
    fq = os.path.join(a.work, "f16-q8_0")
    page = os.path.join(a.work, "diff.html")
    doc = json.loads(run(base[:2] + [f16, q8] + base[2:] + ["--out", fq, "--split-top", "10", "--html", page]))
    target = doc["target"]["id"]
    import jsonschema
    schema = json.load(open(os.path.join(HERE, "..", "docs", "diff-schema.json")))
    for name, d in (("F16 vs Q8_0", doc), ("self", self_doc)):
        try:
            jsonschema.validate(d, schema)
            check(True, f"{name}: the document validates against docs/diff-schema.json")
        except jsonschema.ValidationError as e:
            check(False, f"{name}: the document validates against docs/diff-schema.json: {e.message}")
    check(doc["max_abs_delta"] > 0, f"F16 vs Q8_0: the models differ (max |B - A| {doc['max_abs_delta']:.3g})")
    ex = {}
    for side, model in (("a", f16), ("b", q8)):
        out = os.path.join(a.work, "explain-" + side)
        run([a.reslens, "explain", model, "--ids", a.ids, "--bos", "no", "--target", str(target), "--out", out,
             "--json"] + extra)
        ex[side] = npys(out)
        ex[side + "_json"] = json.load(open(os.path.join(out, "explanation.json")))
    got = {side: npys(os.path.join(fq, side)) for side in ("a", "b", "delta")}
    check(sorted(got["a"]) == sorted(ex["a"]) and sorted(got["b"]) == sorted(ex["b"]),
          f"F16 vs Q8_0: the same {len(ex['a'])} arrays as explain --out")
    for name in sorted(ex["a"]):
        for side in ("a", "b"):
            g, w = got[side].get(name), ex[side][name]
            check(g is not None and g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes(),
                  f"F16 vs Q8_0: {side}/{name} is bit for bit explain's")
        want = ex["b"][name] - ex["a"][name]
        g = got["delta"].get(name)
        check(g is not None and g.tobytes() == want.tobytes(), f"F16 vs Q8_0: delta/{name} is bit for bit B - A")
    for side in ("a", "b"):
        check(doc["model_" + side]["target_log_prob"] == ex[side + "_json"]["target"]["log_prob"],
              f"F16 vs Q8_0: model {side.upper()}'s target log-prob is explain's")

    one = json.loads(run(base[:2] + [f16, q8] + base[2:] + ["--split-top", "10", "-t", "1"]))
    check(one == doc, "F16 vs Q8_0: the same document with 1 thread")

    # The HTML page: both models, the top changes, and the JSON document embedded.
    text = open(page, encoding="utf-8").read()
    embedded = embedded_json(text, "reslens-diff")
    top_label = doc["changes"]["ffn_neurons"]["by_delta"][0]["label"]
    check(embedded == doc and f16 in text and q8 in text and f">{top_label}<" in text,
          "HTML page: both models, the top FFN change, the --json document embedded")

    # 3. The split: the parts add up, and agree with the float64 reference.
    splits = doc["splits"]
    check(len(splits) > 0 and any(s["kind"] == "attn" for s in splits) and any(s["kind"] == "ffn" for s in splits),
          f"split: {len(splits)} neurons, both kinds")
    check(any(s["weight_norm"] > 0 for s in splits), "split: some neuron's value vector changed (the weights part is tested)")
    worst_sum = max(abs(s["weights"] + s["activation"] - s["delta"]) for s in splits)
    check(worst_sum <= 1e-12, f"split: weights + activation = delta (worst {worst_sum:.3g})")
    from reslens_ref.attribution import Attribution, Context
    from reslens_ref.decomposition import Decomposition
    from reslens_ref.model import load_model
    ids = [int(t) for t in a.ids.split(",")][:doc["position"] + 1]  # the reference explains the last position
    dec_a = Decomposition(load_model(f16), ids)
    dec_b = Decomposition(load_model(q8), ids)
    attr = Attribution(dec_a, target=target, crosscheck=False)
    P, dh = dec_a.P, dec_a.dh
    worst_norm = worst_weights = 0.0
    for s in splits:
        if s["kind"] == "ffn":
            l, k = s["index"]
            wa, wb, x = dec_a.W_down(l)[:, k], dec_b.W_down(l)[:, k], dec_a.resid_mid[l, P]
        else:
            l, h, n, p = s["index"]
            wa, wb, x = dec_a.W_O(l)[:, h * dh + n], dec_b.W_O(l)[:, h * dh + n], dec_a.resid_pre[l, P]
        ctx = Context(attr.fn, x, target)
        c = s["coef_a"]
        want_weights = float(ctx.imp(attr.fn.bs(c * wb)) - ctx.imp(attr.fn.bs(c * wa)))
        worst_norm = max(worst_norm, abs(s["weight_norm"] - float(np.linalg.norm(wb - wa))))
        worst_weights = max(worst_weights, abs(s["weights"] - want_weights))
    check(worst_norm <= 1e-6, f"split: |w_B - w_A| against the reference (worst {worst_norm:.3g})")
    check(worst_weights <= a.atol, f"split: the weights part against the reference (worst {worst_weights:.3g})")

    # 4. Models of different shapes.
    r = subprocess.run([a.reslens, "diff", f16, a.other, "--ids", "1,2", "--bos", "no"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    msg = r.stderr.strip()
    check(r.returncode == 4 and msg.count("L=") == 2 and f16 in msg and os.path.basename(a.other) in msg,
          f"different shapes: exit 4 naming both shapes (exit {r.returncode}: {msg})")

    # 5. The same shape, another vocabulary: one token's piece changed in a copy of the F16 file (the
    # piece "<unk>" or "<|endoftext|>" rewritten in place, same length, so every offset stays valid).
    data = open(f16, "rb").read()
    for old, new in ((b"<unk>", b"<UNK>"), (b"<|endoftext|>", b"<|ENDOFTEXT|>")):
        if data.count(old) == 1:
            break
    else:
        old = new = None
    check(old is not None, "vocabulary: a token piece to rewrite")
    if old is not None:
        other_vocab = os.path.join(a.work, "model-f16-other-vocab.gguf")
        open(other_vocab, "wb").write(data.replace(old, new))
        r = subprocess.run([a.reslens, "diff", f16, other_vocab, "--ids", "1,2", "--bos", "no"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        msg = r.stderr.strip()
        check(r.returncode == 4 and "different vocabularies" in msg and msg.count("L=") == 2
              and old.decode() in msg and new.decode() in msg,
              f"different vocabularies: exit 4 naming the token and both shapes (exit {r.returncode}: {msg})")

    return check.finish("all diff checks passed")


if __name__ == "__main__":
    sys.exit(main())
