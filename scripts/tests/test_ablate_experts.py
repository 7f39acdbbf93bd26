#!/usr/bin/python3
"""`reslens ablate --experts L:E` on a mixture-of-experts model: zeroing an expert is zeroing its
d_expert neurons (the same numbers as --ffn with them), an expert the router did not pick at the
position changes nothing there (activation level), and a dense model refuses the option. Each case
is also checked against the float64 reference's own intervention (reslens_ref explain --zero).

    test_ablate_experts.py --reslens BUILD/reslens --model tiny-mixtral.gguf --dense tiny-llama.gguf
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from harness import check, finish  # noqa: E402
from reslens_ref import load_model  # noqa: E402
from reslens_ref.forward import expert_weights, forward  # noqa: E402

IDS = "1,7,300,45,2,99,12,88,41,250,17,3"


def ablate(a, model, *extra):
    out = subprocess.run([a.reslens, "ablate", model, "--ids", IDS, "--bos", "no", "--json", "--no-random", *extra],
                         capture_output=True, text=True)
    return out.returncode, (json.loads(out.stdout) if out.returncode == 0 else out.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dense", required=True)
    a = ap.parse_args()
    t0 = time.time()
    m = load_model(a.model)
    cfg = m.config
    ids = [int(x) for x in IDS.split(",")]
    hooks = forward(m, ids)
    P, F = len(ids) - 1, cfg.d_expert
    # Which experts layer 0's router picked at P, from the reference's own routing.
    b = hooks["blocks.0.ln2.hook_normalized"]
    weights = expert_weights(b @ m.f64("blocks.0.mlp.router.w").T, cfg)[P]
    picked = [e for e in range(cfg.n_experts) if weights[e] > 0]
    idle = [e for e in range(cfg.n_experts) if weights[e] == 0]
    check("the router picks n_experts_used experts at P", len(picked) == cfg.n_experts_used, str(picked))

    e = picked[0]
    rc1, whole = ablate(a, a.model, "--experts", f"0:{e}")
    rc2, neurons = ablate(a, a.model, "--ffn", ",".join(f"0:{e * F + k}" for k in range(F)))
    check("--experts 0:E runs", rc1 == 0 and rc2 == 0, f"{whole if rc1 else ''}{neurons if rc2 else ''}")
    if rc1 == 0 and rc2 == 0:
        check("--experts 0:E equals --ffn with its neurons", whole["after"] == neurons["after"],
              f"{whole['after']['log_prob']} vs {neurons['after']['log_prob']}")
        check("zeroing a picked expert changes the target's log p",
              abs(whole["after"]["log_prob"] - whole["before"]["log_prob"]) > 1e-6)
        # The reference: zero the expert's neurons' coefficients at every position.
        zero = np.zeros(cfg.d_mlp, dtype=bool)
        zero[e * F:(e + 1) * F] = True

        def edit(name, value, _hooks):
            if name == "blocks.0.mlp.hook_post":
                value = value.copy()
                value[:, zero] = 0.0
                return value
            return None
        logits = forward(m, ids, edit=edit)["logits"][P]
        ref_lp = float(logits[whole["target"]["id"]] - np.log(np.exp(logits - logits.max()).sum()) - logits.max())
        check("--experts matches the float64 reference", abs(ref_lp - whole["after"]["log_prob"]) < 1e-5,
              f"{whole['after']['log_prob']} vs {ref_lp}")
    if idle:
        rc, res = ablate(a, a.model, "--experts", f"0:{idle[0]}", "--activation")
        check("an expert not picked at P changes nothing there (activation level)",
              rc == 0 and res["after"]["log_prob"] == res["before"]["log_prob"], str(res)[:200])
    # The Python API gives the CLI's numbers (reslens.ablate(..., experts=[(layer, expert)])).
    try:
        import reslens
    except ImportError as e:
        check("the Python module is importable (PYTHONPATH=build/python)", False, str(e))
    else:
        pm = reslens.load(a.model)
        res = reslens.ablate(pm, [int(x) for x in IDS.split(",")], experts=[(0, e)], random=False, prepend_bos=False)
        check("Python ablate(experts=...) = the CLI's --experts", rc1 == 0 and abs(res.after.log_prob -
              whole["after"]["log_prob"]) == 0.0, f"{res.after.log_prob} vs {whole['after']['log_prob'] if rc1 == 0 else ''}")
    rc, err = ablate(a, a.dense, "--experts", "0:0")
    check("a dense model refuses --experts", rc == 2 and "has no experts" in err, err.strip())
    rc, err = ablate(a, a.model, "--experts", f"0:{cfg.n_experts}")
    check("an expert out of range is refused", rc == 2 and "expert 0.." in err, err.strip())
    return finish(t0)


if __name__ == "__main__":
    sys.exit(main())
