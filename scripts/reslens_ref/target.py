"""`explain-target`: a target of several tokens by teacher forcing, in float64 (docs/explain.md,
"Targets of several tokens").

Step t (0-based) explains target token w_t with the prompt and w_<t as its ids: `explain` of that
prefix, a forward pass of its own (reslens instead runs one pass over the prompt and the target and
reads every step from it). The summed scores add the steps' arrays; arrays over source positions
are padded with 0 up to the last step's P + m positions.

With a foil sequence f_1..f_k, the contrast of the sequences is computed here the direct way:
every foil token is explained as a target on its own prefix, and the contrast is the target's
summed scores minus the foil's (padded to P + max(m, k)). reslens takes the terms apart instead
(the shared steps cancel, the step where the sequences part is its one-position contrast), so the
two agree only if both are right.
"""

import numpy as np

from .decomposition import Decomposition
from .explain import explain
from .logprob import log_softmax
from .query import top_flat

# Per-step arrays that are summed, under the reference's keys; True: the last axis is source positions.
ARRAYS = {"head_imp": False, "head_pos_imp": True, "ffn_neuron_imp": False, "attn_neuron_imp": True,
          "expert_imp": False}


def _padded(a, n):
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return a
    out = np.zeros(a.shape[:-1] + (n,))
    out[..., :a.shape[-1]] = a
    return out


def _sum_steps(steps, n):
    """The steps' scores summed (every array padded to n source positions)."""
    s = {"n_positions": n,
         "logprob_target": float(sum(st["real"]["logprob_target"] for st in steps)),
         "bs_final": float(sum(st["bs"]["logprob_target_final"] for st in steps)),
         "bs_embedding": float(sum(st["bs"]["logprob_target_embedding"] for st in steps)),
         "attn_layer": np.sum([st["layer_imp"]["attn"] for st in steps], axis=0),
         "ffn_layer": np.sum([st["layer_imp"]["ffn"] for st in steps], axis=0)}
    for key, positional in ARRAYS.items():
        arrs = [np.asarray(st[key], dtype=np.float64) for st in steps]
        s[key] = sum(_padded(a, n) if positional else a for a in arrs) if arrs[0].size else np.zeros(0)
    s["q3"] = np.sum([st["q3"]["scores"] for st in steps], axis=0)
    s["q1"] = {key: np.sum([st["q1"]["variants"][key]["slots"] for st in steps], axis=0)
               for key in steps[0]["q1"]["variants"]}
    s["q2"] = np.sum([st["q2"]["slots"] for st in steps], axis=0)
    return s


def _q5(ffn, q3, k):
    """Spec Q5's counts for summed scores (query.q5's rule)."""
    L = ffn.shape[0]
    k = min(k, ffn.size)
    value = set(top_flat(ffn, k))
    q_only, q_value = np.zeros(L, dtype=int), np.zeros(L, dtype=int)
    for l, n in top_flat(q3, k):
        (q_value if (l, n) in value else q_only)[l] += 1
    return q_only, q_value


def _log_prob(model, ids, token, ggml_gelu):
    """log p(token | ids) of the real model: one forward pass of its own."""
    return float(log_softmax(Decomposition(model, ids, ggml_gelu=ggml_gelu).logits)[token])


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v


def explain_target(model, prompt, target, foil=None, top=30, include_final_bias=False, compat=None, q5_k=300,
                   ggml_gelu=False, model_path=""):
    prompt, target = [int(t) for t in prompt], [int(t) for t in target]
    foil = [int(t) for t in foil] if foil else []
    if not prompt or not target:
        raise ValueError("need a prompt and a target of at least one token each")
    if foil == target:
        raise ValueError("the foil is the target itself")
    P = len(prompt) - 1

    def steps_of(seq):
        return [explain(model, prompt + seq[:t], target=w, top=top, include_final_bias=include_final_bias,
                        compat=compat, q5_k=q5_k, k=1, crosscheck=False, ggml_gelu=ggml_gelu, model_path=model_path)
                for t, w in enumerate(seq)]

    steps = steps_of(target)
    summed = _sum_steps(steps, P + len(target))
    summed["query_only_per_layer"], summed["query_value_per_layer"] = _q5(summed["ffn_neuron_imp"], summed["q3"], q5_k)
    out = {"prompt": prompt, "position": P, "target": target, "foil": foil or None,
           "steps": [_step_summary(st) for st in steps]}
    if foil:
        foil_steps = steps_of(foil)
        n_c = P + max(len(target), len(foil))
        t_sum, f_sum = _sum_steps(steps, n_c), _sum_steps(foil_steps, n_c)
        contrast = {key: t_sum[key] - f_sum[key] for key in ("attn_layer", "ffn_layer", *ARRAYS)}
        contrast["foil_logprob"] = f_sum["logprob_target"]
        # log p(foil) once more from forward passes alone, and the contrast's telescoping sum.
        contrast["foil_logprob_direct"] = sum(_log_prob(model, prompt + foil[:t], f, ggml_gelu)
                                              for t, f in enumerate(foil))
        contrast["bs_increase"] = (t_sum["bs_final"] - t_sum["bs_embedding"]) - (f_sum["bs_final"] - f_sum["bs_embedding"])
        summed["contrast"] = contrast
        out["foil_steps"] = [_step_summary(st) for st in foil_steps]
    out["summed"] = _jsonable(summed)
    return out


def _step_summary(st):
    """The keys of one step the comparison reads."""
    return {"ids": st["ids"], "position": st["position"], "target": st["target"], "real": {
        "logprob_target": st["real"]["logprob_target"], "top10_ids": st["real"]["top10_ids"],
        "top10_logits": st["real"]["top10_logits"]}, "bs": st["bs"], "layer_imp": st["layer_imp"],
        **{key: st[key] for key in ARRAYS}, "q3": st["q3"]["scores"], "invariants": st["invariants"]}
