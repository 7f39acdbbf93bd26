#!/usr/bin/python3
"""Bad YaRN / LongRoPE input and Gemma 2 softcaps through the reslens CLI: each is refused with a one-line error that
names the file and the field, and the good models load (issue 14).

    /usr/bin/python3 scripts/tests/test_rope_scaling_inputs.py --reslens build/reslens [--shared PATH]

Writes small variants of make_random_models.py's tiny-qwen2-yarn and tiny-phi3-longrope models
(GGUF and HF) with the reference writers into a temporary folder and runs `reslens inspect` on each.
The C++ unit tests cover the loaders case by case; this checks the same through the files the
converters write (Phi-3's factor tensors, which the unit tests' builder cannot make) and the CLI's
exit status and message.
"""

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_random_models  # noqa: E402
from harness import check, finish  # noqa: E402
from reslens_ref import gguf_model, hf  # noqa: E402
from reslens_ref.random_model import random_model  # noqa: E402


def inspect(reslens, path):
    r = subprocess.run([reslens, "inspect", path], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reslens", required=True)
    ap.add_argument("--shared", default=make_random_models.DEFAULT_SHARED)
    a = ap.parse_args()
    t0 = time.time()
    configs = {name: cfg for name, _, cfg, _ in make_random_models.plan("tiny", a.shared)}
    yarn, longrope = configs["tiny-qwen2-yarn.gguf"], configs["tiny-phi3-longrope.gguf"]
    lr = longrope.rope_scaling
    tok = gguf_model.tokenizer_fields(os.path.join(a.shared, "models", "stories260K", "stories260K.gguf"))
    with tempfile.TemporaryDirectory() as work:
        def gguf(cfg, name):
            path = os.path.join(work, name)
            gguf_model.write(random_model(cfg, 0, "fan_in"), path, tokenizer=tok)
            return path

        def hf_dir(cfg, name, **extra):
            path = os.path.join(work, name)
            hf.write(random_model(dataclasses.replace(cfg, vocab=2048), 0, "fan_in"), path, extra_config=extra or None)
            return path

        def refused(path, fragments, what):
            rc, _, err = inspect(a.reslens, path)
            ok = rc != 0 and "\n" not in err and all(f in err for f in [os.path.basename(path)] + fragments)
            check(what, ok, err)

        def loads(path, fragment, what):
            rc, out, err = inspect(a.reslens, path)
            ok = rc == 0 and fragment in out
            check(what, ok, "" if ok else err or out)

        loads(gguf(yarn, "yarn.gguf"), "scaling yarn (factor 4, original context 64)", "the YaRN GGUF loads")
        loads(gguf(longrope, "lr.gguf"), "scaling longrope (factor 16, original context 32, long factors)",
              "the LongRoPE GGUF loads with the long set")
        # The short set when the context window is not past the original context.
        loads(gguf(dataclasses.replace(longrope, n_ctx=32), "lr-short.gguf"), "short factors",
              "LongRoPE with n_ctx = original picks the short set")
        bad = dict(lr, long_factor=[1.0, 2.0, 3.0])
        refused(gguf(dataclasses.replace(longrope, rope_scaling=bad), "lr-len.gguf"),
                ["rope_factors_long.weight", "[3]"], "GGUF LongRoPE factors of the wrong length")
        bad = dict(lr, short_factor=[1.0, 0.0, 1.0, 1.0])
        refused(gguf(dataclasses.replace(longrope, rope_scaling=bad), "lr-zero.gguf"),
                ["rope_factors_short.weight[1] = 0", "not a positive number"], "GGUF LongRoPE factor 0")
        refused(gguf(dataclasses.replace(yarn, rope_scaling=dict(yarn.rope_scaling, factor=0.0)), "yarn-0.gguf"),
                ["qwen2.rope.scaling.factor", "not a positive number"], "GGUF YaRN factor 0")
        refused(gguf(dataclasses.replace(yarn, rope_scaling=dict(yarn.rope_scaling, factor=float("nan"))),
                     "yarn-nan.gguf"), ["qwen2.rope.scaling.factor = nan"], "GGUF YaRN factor NaN")
        refused(hf_dir(longrope, "lr-len-hf", rope_scaling={"rope_type": "longrope", "long_factor": [1.0, 2.0],
                                                            "short_factor": lr["short_factor"]}),
                ["config.json", "rope_scaling.long_factor has 2 factors, expected 4"], "HF LongRoPE factors of the wrong length")
        refused(hf_dir(yarn, "yarn-neg-hf", rope_scaling={"rope_type": "yarn", "factor": -4.0}),
                ["config.json", "rope_scaling.factor = -4.0 is not a positive number"], "HF YaRN factor -4")
        refused(hf_dir(yarn, "dyn-hf", rope_scaling={"rope_type": "dynamic", "factor": 2.0}),
                ["config.json", "rope_scaling type 'dynamic' is not supported"], "HF dynamic NTK refused by name")
        refused(hf_dir(yarn, "unk-hf", rope_scaling={"type": "made-up", "factor": 2.0}),
                ["config.json", "rope_scaling type 'made-up' is not supported"], "HF unknown type refused by name")

        # Gemma 2's softcaps: 0, NaN or negative is a one-line error naming the file and the key,
        # with the CLI's exit status for a bad file (3) or an unsupported one (4).
        gemma2 = configs["tiny-gemma2.gguf"]
        loads(gguf(gemma2, "g2.gguf"), "logits capped as c * tanh(x / c), c = 3", "the Gemma 2 GGUF loads with its caps")
        for key, field, value in (("attn_softcap", "gemma2.attn_logit_softcapping", 0.0),
                                  ("final_softcap", "gemma2.final_logit_softcapping", float("nan"))):
            path = gguf(dataclasses.replace(gemma2, **{key: value}), f"g2-{key}.gguf")
            rc, _, err = inspect(a.reslens, path)
            check(f"GGUF {field} = {value} refused", rc in (3, 4) and "\n" not in err and field in err
                  and os.path.basename(path) in err, f"exit {rc}: {err}")
        path = hf_dir(gemma2, "g2-neg-hf", final_logit_softcapping=-5.0)
        rc, _, err = inspect(a.reslens, path)
        check("HF final_logit_softcapping = -5 refused", rc in (3, 4) and "\n" not in err
              and "config.json" in err and "final_logit_softcapping" in err, f"exit {rc}: {err}")
    return finish(t0)


if __name__ == "__main__":
    sys.exit(main())
