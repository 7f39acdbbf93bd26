#!/usr/bin/python3
"""Runs `reslens explain --target IDS [--foil IDS]` (a target of several tokens, teacher forcing) and
the float64 reference (`reslens_ref explain-target`) on the same model and prompt, then compares:

- every step's scores (the stacked .npy arrays, step axis first) with the reference's steps, each a
  forward pass and explain of its own prefix;
- every summed array, and with a foil every summed contrast array (the reference: the target's
  sums minus the foil's, each foil token explained as a target) and log p(foil);
- the identities: the summed arrays are the sums of the stacked ones, the summed layer scores
  telescope to the summed bs log-probability increases (and the contrast's to the target's minus
  the foil's), each step's layer scores telescope.

    check_explain_target.py --reslens BUILD/reslens --model MODEL --ids 1,2,3 --target 4,5[,6]
                            [--foil 4,7] --work DIR [--include-final-bias] [--atol 1e-5]

With --generate N (instead of --target), reslens generates the answer (`explain --generate N`, greedy
unless --temp/--seed) and the reference explains the tokens it generated; greedy answers are also
checked token by token against the reference's float64 argmax (where the top two logits are more
than 1e-4 apart), so both the answer and its explanation are checked.

Exit 0 only when every comparison is within tolerance.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--target")
    ap.add_argument("--generate", type=int, help="explain the model's own answer of up to N tokens")
    ap.add_argument("--temp", default="0")
    ap.add_argument("--seed", default="0")
    ap.add_argument("--foil")
    ap.add_argument("--work", required=True)
    ap.add_argument("--include-final-bias", action="store_true")
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--expect-tightened", action="store_true",
                    help="require that the sums' error budget recomputed FFN and attention neuron step scores "
                         "(summed.method_counts: ffn_tightened, attention_tightened)")
    a = ap.parse_args()
    if (a.target is None) == (a.generate is None):
        ap.error("give --target or --generate")
    a.model = os.path.abspath(a.model)  # the reference runs from scripts/
    a.work = os.path.abspath(a.work)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    ref_json = os.path.join(a.work, "reference.json")
    ours_dir = os.path.join(a.work, "reslens")

    flags = ["--include-final-bias"] if a.include_final_bias else []
    if a.generate is not None:
        # reslens generates; the reference then explains exactly the tokens generated.
        subprocess.run([a.reslens, "explain", a.model, "--ids", a.ids, "--bos", "no", "--out", ours_dir, "--json",
                        "--generate", str(a.generate), "--temp", a.temp, "--seed", a.seed] + flags,
                       check=True, stdout=subprocess.DEVNULL)
        answer = [t["id"] for t in json.load(open(os.path.join(ours_dir, "explanation.json")))["target"]["tokens"]]
        a.target = ",".join(str(t) for t in answer)
        if len(answer) == 1:
            print("the answer is one token: nothing is stacked to compare")
            return 1
    common = ["--target", a.target] + (["--foil", a.foil] if a.foil else []) + flags
    subprocess.run([sys.executable, "-m", "reslens_ref", "explain-target", a.model, "--ids", a.ids, "--out", ref_json]
                   + common, check=True, cwd=HERE)
    if a.generate is None:
        subprocess.run([a.reslens, "explain", a.model, "--ids", a.ids, "--bos", "no", "--out", ours_dir, "--json"]
                       + common, check=True, stdout=subprocess.DEVNULL)

    ref = json.load(open(ref_json))
    ours = json.load(open(os.path.join(ours_dir, "explanation.json")))
    npy = lambda name: np.load(os.path.join(ours_dir, name + ".npy"))
    rs = ref["summed"]
    failures, rows = [], []

    def check(name, got, want, atol=a.atol):
        got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            failures.append(f"{name}: shape {got.shape} vs reference {want.shape}")
            rows.append((name, "shape", "", "FAIL"))
            return
        diff = float(np.max(np.abs(got - want))) if got.size else 0.0
        ok = diff <= atol
        rows.append((name, f"{diff:.2e}", f"{atol:.0e}", "ok" if ok else "FAIL"))
        if not ok:
            failures.append(f"{name}: max abs diff {diff:.3e} > {atol}")

    target = [int(t) for t in a.target.split(",")]
    if ours.get("kind") != "target":
        failures.append("reslens did not print a target document (kind 'target')")
    if [t["id"] for t in ours["target"]["tokens"]] != target:
        failures.append(f"target tokens {[t['id'] for t in ours['target']['tokens']]} vs {target}")
    m, n = len(target), rs["n_positions"]
    if a.generate is not None:
        gen = ours.get("generated") or {}
        if gen.get("max_tokens") != a.generate:
            failures.append(f"the document's 'generated' is {gen!r}, not of --generate {a.generate}")
        if m > a.generate or (m < a.generate and gen.get("stop") == "max_tokens"):
            failures.append(f"{m} tokens generated of {a.generate}, stop {gen.get('stop')!r}")
        if float(a.temp) == 0:  # greedy: each token the float64 argmax after the ones before it
            tied = 0
            for t, st in enumerate(ref["steps"]):
                top_ids, top_logits = st["real"]["top10_ids"], st["real"]["top10_logits"]
                if len(top_logits) > 1 and top_logits[0] - top_logits[1] <= 1e-4:
                    tied += 1
                    continue
                if top_ids[0] != target[t]:
                    failures.append(f"step {t}: generated {target[t]}, the reference's argmax is {top_ids[0]}")
            rows.append(("greedy tokens = reference argmax", f"{m - tied}/{m}", "", "ok"))

    def padded(arrays, n_last):
        out = []
        for x in arrays:
            x = np.asarray(x, dtype=np.float64)
            p = np.zeros(x.shape[:-1] + (n_last,))
            p[..., :x.shape[-1]] = x
            out.append(p)
        return np.stack(out)

    # -- each step against its own prefix's reference ---------------------------------------------
    steps = ref["steps"]
    check("steps: log p", [t["log_prob"] for t in ours["target"]["tokens"]], [s["real"]["logprob_target"] for s in steps])
    layers = npy("layer_scores")  # [m, L, 2]
    check("steps: attention layers", layers[:, :, 0], [s["layer_imp"]["attn"] for s in steps])
    check("steps: FFN layers", layers[:, :, 1], [s["layer_imp"]["ffn"] for s in steps])
    check("steps: heads", npy("head_scores"), [s["head_imp"] for s in steps])
    check("steps: head x position", npy("head_position_scores"), padded([s["head_pos_imp"] for s in steps], n))
    check("steps: FFN neurons", npy("ffn_neuron_scores"), [s["ffn_neuron_imp"] for s in steps])
    check("steps: attention neurons", npy("attn_neuron_scores"), padded([s["attn_neuron_imp"] for s in steps], n))
    check("steps: Q3 query FFN neurons", npy("query_ffn_neuron_scores"), [s["q3"] for s in steps])

    # -- the sums ---------------------------------------------------------------------------------
    summed = ours["summed"]
    check("summed log p(target)", ours["target"]["log_prob"], rs["logprob_target"])
    check("summed bs log p final", ours["target"]["bs_log_prob"], rs["bs_final"])
    check("summed bs log p embedding", ours["target"]["bs_log_prob_embedding"], rs["bs_embedding"])
    sl = npy("summed_layer_scores")
    check("summed attention layers", sl[:, 0], rs["attn_layer"])
    check("summed FFN layers", sl[:, 1], rs["ffn_layer"])
    check("summed heads", npy("summed_head_scores"), rs["head_imp"])
    check("summed head x position", npy("summed_head_position_scores"), rs["head_pos_imp"])
    check("summed FFN neurons", npy("summed_ffn_neuron_scores"), rs["ffn_neuron_imp"])
    check("summed attention neurons", npy("summed_attn_neuron_scores"), rs["attn_neuron_imp"])
    check("summed Q3 query FFN neurons", npy("summed_query_ffn_neuron_scores"), rs["q3"])
    if np.size(rs["expert_imp"]):
        check("summed experts", npy("summed_expert_scores"), rs["expert_imp"])
    for key, slots in summed["query_layers"]["ffn_value_neurons"]["variants"].items():
        if key in rs["q1"]:  # slots divide by a sum that can be small (spec A17): check_explain's 1e-4
            want = np.asarray(rs["q1"][key])
            check(f"summed Q1 slots ({key})", [s["score"] for s in slots], want, 1e-4 * max(1.0, np.abs(want).max()))
    want = np.asarray(rs["q2"])
    check("summed Q2 slots", [s["score"] for s in summed["query_layers"]["attn_value_neurons"]["slots"]], want,
          1e-4 * max(1.0, np.abs(want).max()))
    check("summed Q5 query-only", summed["histograms"]["query_only"], rs["query_only_per_layer"], 0)
    check("summed Q5 query-value", summed["histograms"]["query_value"], rs["query_value_per_layer"], 0)

    # -- identities -------------------------------------------------------------------------------
    # The bounded levels' sums (and Q3, which weights the top attention neurons' scores) take exact
    # or tighter scores for the steps their error budget tightened, while each step keeps its own
    # (within bound_tol), so they may differ from the sum of the steps' arrays: by at most what the
    # two checks above allow together, m steps and one sum each within atol of the reference. The
    # layer scores add the steps exactly.
    budget = (m + 1) * a.atol
    for name, tol in (("layer_scores", 1e-12), ("head_scores", budget), ("head_position_scores", budget),
                      ("ffn_neuron_scores", budget), ("attn_neuron_scores", budget), ("query_ffn_neuron_scores", budget)):
        check(f"identity: summed_{name} = sum of the steps", npy("summed_" + name), npy(name).sum(axis=0), tol)
    counts = summed.get("method_counts", {})
    if a.expect_tightened:
        for key in ("ffn_tightened", "attention_tightened"):
            n_tight = counts.get(key, 0)
            rows.append((f"error budget: {key}", str(n_tight), "> 0", "ok" if n_tight > 0 else "FAIL"))
            if n_tight <= 0:
                failures.append(f"summed.method_counts[{key!r}] is {n_tight}: no sum was tightened")
    check("identity: summed layers telescope", sl.sum(),
          ours["target"]["bs_log_prob"] - ours["target"]["bs_log_prob_embedding"], 1e-9)
    check("identity: each step's layers telescope", layers.sum(axis=(1, 2)),
          [d["layer_sums"]["final_minus_embedding"] for d in ours["steps"]], 1e-9)
    check("identity: summed log p = sum of the steps'", ours["target"]["log_prob"],
          sum(t["log_prob"] for t in ours["target"]["tokens"]), 1e-12)

    # -- the contrast of the sequences ------------------------------------------------------------
    if a.foil:
        rc = rs["contrast"]
        check("foil log p", ours["foil"]["log_prob"], rc["foil_logprob"])
        check("foil log p (forward passes only)", ours["foil"]["log_prob"], rc["foil_logprob_direct"])
        cl = npy("summed_contrast_layer_scores")
        check("contrast attention layers", cl[:, 0], rc["attn_layer"])
        check("contrast FFN layers", cl[:, 1], rc["ffn_layer"])
        check("contrast heads", npy("summed_contrast_head_scores"), rc["head_imp"])
        check("contrast FFN neurons", npy("summed_contrast_ffn_neuron_scores"), rc["ffn_neuron_imp"])
        check("contrast attention neurons", npy("summed_contrast_attn_neuron_scores"), rc["attn_neuron_imp"])
        if np.size(rc["expert_imp"]):
            check("contrast experts", npy("summed_contrast_expert_scores"), rc["expert_imp"])
        check("contrast log p(target) - log p(foil)", summed["contrast"]["log_prob"],
              rs["logprob_target"] - rc["foil_logprob"])
        check("identity: contrast layers telescope (reference's bs increases)", cl.sum(), rc["bs_increase"])

    width = max(len(r[0]) for r in rows)
    for name, diff, tol, ok in rows:
        print(f"{name:<{width}}  {diff:>9}  {tol:>6}  {ok}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"all {len(rows)} comparisons within tolerance ({m} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
