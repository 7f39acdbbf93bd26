#!/usr/bin/python3
"""Checks `reslens graph` (docs/graph.md) against the float64 reference and Neuronpedia's schema.
Used by CTest; exit 0 only when every check holds.

  1. The unpruned graph (--node-threshold 1 --edge-threshold 1) validates against the published
     attribution-graph schema (tests/data/graph/neuronpedia-graph-schema.json), and so does the
     default pruned one, which keeps fewer links.
  2. Every edge against scripts/reslens_ref (its own forward pass and scores), to --atol:
       value -> logit / head -> logit / attn neuron -> head: the reference's Imp
       query -> value: (m_{p,k} fc2_k . K / D) Imp_v with the reference's activations and keys
       token -> neuron: (h_p^{-1} . K / D) times the neuron's Imp (a value) or the sum of its edges
  3. Bad input: a threshold outside [0, 1] (exit 2, one line naming the flag), and a graph pruned
     to nothing (exit 2, "the graph is empty after pruning").

    check_graph.py --reslens BUILD/reslens --model MODEL --ids 1,2,3 --schema SCHEMA --work DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from check_helpers import Checks, embedded_json  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--atol", type=float, default=1e-5)
    a = ap.parse_args()
    a.model = os.path.abspath(a.model)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    check = Checks()

    import jsonschema
    schema = json.load(open(a.schema))
    base = [a.reslens, "graph", a.model, "--ids", a.ids, "--bos", "no"]
    full_path = os.path.join(a.work, "full.json")
    subprocess.run(base + ["--node-threshold", "1", "--edge-threshold", "1", "--out", full_path], check=True)
    full = json.load(open(full_path))
    page = os.path.join(a.work, "graph.html")
    pruned = json.loads(subprocess.run(base + ["--html", page], check=True, stdout=subprocess.PIPE, text=True).stdout)
    text = open(page, encoding="utf-8").read()
    embedded = embedded_json(text, "reslens-graph")
    # The page draws in the browser with web/src/graph.js (tests/web/report_e2e.mjs counts the drawn
    # nodes and links in chromium); here: the document and the drawing are both inline.
    check(embedded == pruned and "export function drawGraph(" in text and "<script src" not in text,
          "the HTML page embeds the JSON document and the drawing script")
    for name, doc in (("unpruned", full), ("pruned", pruned)):
        try:
            jsonschema.validate(doc, schema)
            check(True, f"{name} graph validates against the schema")
        except jsonschema.ValidationError as e:
            check(False, f"{name} graph validates against the schema: {e.message}")
    check(0 < len(pruned["links"]) < len(full["links"]),
          f"pruning keeps fewer links ({len(pruned['links'])} of {len(full['links'])})")
    # Results must not depend on the thread count.
    one = subprocess.run(base + ["--node-threshold", "1", "--edge-threshold", "1", "-t", "1"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    three = subprocess.run(base + ["--node-threshold", "1", "--edge-threshold", "1", "-t", "3"], check=True,
                           stdout=subprocess.PIPE, text=True).stdout
    check(one == three and json.loads(one) == full, "the same graph, byte for byte, with 1 and 3 threads")
    ids_full = {n["node_id"] for n in full["nodes"]}
    check(all(l["source"] in ids_full and l["target"] in ids_full for l in full["links"]), "every link joins two nodes")

    # 2. Every edge against the reference.
    from reslens_ref import query
    from reslens_ref.attribution import Attribution
    from reslens_ref.decomposition import Decomposition
    from reslens_ref.model import load_model
    ids = [int(t) for t in a.ids.split(",")]
    nodes = {n["node_id"]: n for n in full["nodes"]}
    logit = [n for n in full["nodes"] if n["feature_type"] == "logit"][0]
    d = Decomposition(load_model(a.model), ids)
    attr = Attribution(d, target=logit["feature"], crosscheck=False)
    L, N, H, dh, P = d.L, d.N, d.H, d.dh, d.P
    key_name = query.default_q1_key(d.cfg)

    def reader(n):
        """(K, D, position) of a neuron node, as spec 4.3 defines them."""
        l, f, p = int(n["layer"]), n["feature"], n["ctx_idx"]
        if n["feature_type"].startswith("mlp neuron"):
            K = query._ffn_key(d, l, f, key_name)
            inner = d.components(p, 2 * l + 2) @ K
            if d.cfg.parallel_residual:
                inner[2 * l + 1] = 0.0
            return K, inner.sum(), p
        h, nn = divmod(f - N, dh)
        K = query._attn_key(d, l, h, nn)
        return K, d.resid_pre[l, p] @ K, p

    def score(n):
        l, f, p = int(n["layer"]), n["feature"], n["ctx_idx"]
        t = n["feature_type"]
        if t == "attention head":
            return attr.head[l, f - N - H * dh]
        if t == "attention neuron":
            h, nn = divmod(f - N, dh)
            return attr.attn_neuron[l, h, nn, p]
        return attr.ffn_neuron[l, f]

    out_sum = defaultdict(float)
    for e in full["links"]:
        out_sum[e["source"]] += e["weight"]
    worst = defaultdict(float)
    count = defaultdict(int)
    for e in full["links"]:
        s, t = nodes[e["source"]], nodes[e["target"]]
        st, tt = s["feature_type"], t["feature_type"]
        if tt == "logit" or tt == "attention head":
            kind, want = "value -> " + tt, score(s)
        elif st == "embedding":
            K, D, p = reader(t)
            mult = score(t) if "score" in t else out_sum[t["node_id"]]
            kind, want = "token -> neuron", d.emb[p] @ K / D * mult
        else:
            K, D, p = reader(t)
            lq, k = int(s["layer"]), s["feature"]
            kind = "query -> value"
            want = d.coef[lq, p, k] * (d.W_down(lq)[:, k] @ K) / D * score(t)
        worst[kind] = max(worst[kind], abs(e["weight"] - want))
        count[kind] += 1
    for kind in ("value -> logit", "value -> attention head", "query -> value", "token -> neuron"):
        check(count[kind] > 0 and worst[kind] <= a.atol,
              f"{count[kind]} edges {kind} against the reference (worst {worst[kind]:.3g})")

    # 3. Bad input.
    for flag, value in (("--node-threshold", "1.5"), ("--edge-threshold", "-0.1")):
        r = subprocess.run(base + [flag, value], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and flag in lines[0] and "[0, 1]" in lines[0],
              f"{flag} {value} refused (exit {r.returncode}: {r.stderr.strip()})")
    r = subprocess.run(base + ["--node-threshold", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(r.returncode == 2 and "the graph is empty after pruning" in r.stderr and r.stdout == "",
          f"an empty graph says so (exit {r.returncode}: {r.stderr.strip()})")

    return check.finish("all graph checks passed")


if __name__ == "__main__":
    sys.exit(main())
