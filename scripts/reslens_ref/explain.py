"""`explain`: every attribution score of spec.md for one prompt, as one JSON-ready dict.

The keys extend those of shared/goldens/attribution/*.json (same names and nesting where the
golden has them); scripts/README.md documents the whole schema. Positions, layers, heads and
neurons are 0-based; names are 'l_h' (head), 'l_k' (FFN neuron), 'l_h_n_p' (attention neuron).
"""

import math

import numpy as np

from . import intervention, query, views
from .attribution import BASELINES, Attribution
from .decomposition import Decomposition
from .logprob import log_softmax, order_desc


def _names(idx):
    return "_".join(str(i) for i in idx)


def _top_list(scores, n, fields):
    return [{"name": _names(t), **dict(zip(fields, t)), "imp": float(scores[t])}
            for t in query.top_flat(scores, n)]


def _parse_unit(text, limits, what):
    """'21_19' -> (21, 19), checked against `limits` (one bound per index)."""
    try:
        parts = tuple(int(x) for x in str(text).split("_"))
    except ValueError:
        parts = ()
    if len(parts) != len(limits) or any(not 0 <= i < m for i, m in zip(parts, limits)):
        raise ValueError(f"{what} {text!r}: expected {len(limits)} underscore-separated indices "
                         f"below {'_'.join(map(str, limits))}")
    return parts


def explain(model, ids, target=None, foil=None, position=None, top=30, include_final_bias=False,
            compat=None, q1_key=None, head=None, q4_neuron=None, hidden_neuron=None, q5_k=300,
            k=10, seed=0, level="parameter", zero=(), crosscheck=True, ggml_gelu=False,
            model_path=""):
    ids = [int(t) for t in ids]
    if not ids:
        raise ValueError("need at least one token")
    P = len(ids) - 1 if position is None else int(position)
    if not 0 <= P < len(ids):
        raise ValueError(f"position {P} outside the {len(ids)} tokens")
    if compat not in (None, "notebook"):
        raise ValueError(f"unknown compat mode {compat!r}")
    cfg = model.config
    # Refuse bad options before any work.
    intervention.check_units(cfg, zero)
    L, H, T = cfg.n_layers, cfg.n_heads, P + 1
    head = None if head is None else _parse_unit(head, (L, H), "--head")
    q4_neuron = None if q4_neuron is None else _parse_unit(q4_neuron, (L, H, cfg.d_head, T), "--q4-neuron")
    hidden_neuron = None if hidden_neuron is None else _parse_unit(hidden_neuron, (L, cfg.d_mlp), "--hidden-neuron")
    key = q1_key or query.default_q1_key(cfg, compat)
    if key not in query.q1_keys(cfg):
        raise ValueError(f"Q1 key {key!r} is not one of {query.q1_keys(cfg)}")
    if top < 1 or k < 1 or q5_k < 1:
        raise ValueError("--top, --k and --q5-k must be at least 1")
    # Causal model: explaining position P needs only ids[:P+1]; P is then the last position.
    dec = Decomposition(model, ids[:P + 1], ggml_gelu=ggml_gelu)
    attr = Attribution(dec, target=target, foil=foil, include_final_bias=include_final_bias,
                       crosscheck=crosscheck)
    fn, w = attr.fn, attr.target

    out = {
        "ids": ids,
        "position": P,
        "model": {"path": str(model_path), "arch": cfg.arch},
        "arch": cfg.arch if cfg.layer_norm else "llama",
        "dtype": "float64",
        "config": {"L": L, "d": dec.d, "H": H, "H_kv": dec.Hkv, "dh": dec.dh, "N": dec.N,
                   "V": dec.V, "eps": cfg.norm_eps},
        "options": {"top": top, "include_final_bias": include_final_bias, "compat": compat,
                    "level": level, "k": k, "seed": seed, "q5_k": q5_k},
        "target": {"id": w, "source": "argmax of real logits" if target is None else "given"},
        "foil": None if attr.foil is None else {"id": attr.foil},
    }

    # -- the real model output at P and the frozen norm (spec 2.2) ---------------------------
    real = dec.logits
    lp_real = log_softmax(real)
    top10 = [int(i) for i in order_desc(real)[:10]]
    out["real"] = {"logprob_target": float(lp_real[w]), "prob_target": float(np.exp(lp_real[w])),
                   "top10_ids": top10, "top10_logits": [float(real[i]) for i in top10],
                   "last_logits": real.tolist()}
    out["frozen_norm"] = fn.summary()
    out["bs"] = {"logprob_target_final": attr.logprob_of(dec.final),
                 "logprob_target_embedding": attr.logprob_of(dec.emb[P])}
    out["lens"] = views.lens(attr)

    # -- importance (spec 3.1) -------------------------------------------------------------
    out["layer_imp"] = {"attn": attr.attn_layer.tolist(), "ffn": attr.ffn_layer.tolist(),
                        "attn_sum": float(attr.attn_layer.sum()), "ffn_sum": float(attr.ffn_layer.sum())}
    out["head_imp"] = attr.head.tolist()
    out["head_pos_imp"] = attr.head_pos.tolist()
    out["attn_weights_last"] = dec.pattern[:, :, P, :].tolist()
    out["ffn_neuron_imp"] = attr.ffn_neuron.tolist()
    out["expert_imp"] = attr.expert.tolist()
    out["ffn_coef_last"] = dec.coef[:, P].tolist()
    out["attn_neuron_imp"] = attr.attn_neuron.tolist()
    out["top_heads"] = _top_list(attr.head, top, ("layer", "head"))
    out["top_ffn_neurons"] = _top_list(attr.ffn_neuron, top, ("layer", "neuron"))
    out["top_attn_neurons"] = _top_list(attr.attn_neuron, top, ("layer", "head", "neuron", "pos"))
    out["baselines"] = {name: attr.baselines[name].tolist() for name in BASELINES}
    if attr.contrast is not None:
        c = attr.contrast
        out["contrast"] = {"foil": attr.foil,
                           "layer_imp": {"attn": c["attn_layer"].tolist(), "ffn": c["ffn_layer"].tolist()},
                           "head_imp": c["head"].tolist(), "head_pos_imp": c["head_pos"].tolist(),
                           "ffn_neuron_imp": c["ffn_neuron"].tolist(), "expert_imp": c.get("expert", attr.expert).tolist(),
                           "attn_neuron_imp": c["attn_neuron"].tolist()}

    # -- one head's positions (cell 7) ------------------------------------------------------------
    top_head = query.top_flat(attr.head, 1)[0] if head is None else head
    out["cell7"] = views.cell7(attr, *top_head)

    # -- query analysis (spec 4.3) ----------------------------------------------------------------
    out["q1"] = {"top_n": top, "key": key,
                 "variants": {v: query.q1(attr, top, v) for v in query.q1_keys(cfg)},
                 "doc": query.Q1_DOC}
    out["q2"] = query.q2(attr, top)
    out["q3"], Q = query.q3(attr, top)
    a4 = query.top_flat(attr.attn_neuron, 1)[0] if q4_neuron is None else q4_neuron
    out["q4"] = query.q4(attr, a4, top, compat=compat)
    out["q5"] = query.q5(attr, Q, q5_k)
    hv = query.top_flat(Q, 1)[0] if hidden_neuron is None else hidden_neuron
    out["hidden_view"] = views.hidden_view(attr, *hv, *top_head)

    out["invariants"] = invariants(attr)
    out["interventions"] = interventions(model, dec, attr, k, seed, level, zero, ggml_gelu)
    return out


def invariants(attr):
    """The identities of the decomposition, measured (all ~1e-15 in float64)."""
    d, fn = attr.dec, attr.fn
    P, L = d.P, d.L
    seq = d.emb[P].copy()
    regrouped = d.emb[P].copy()
    heads = ffn = neurons = positions = 0.0
    bs_parts = fn.bs(d.emb[P])
    for l in range(L):
        seq = seq + d.attn_out[l, P]
        seq = seq + d.mlp_out[l, P]
        o = d.head_vectors(l)
        attn_sum = o.sum(axis=0) + d.b_O(l)
        ffn_sum = (d.coef[l, P][:, None] * d.W_down(l).T).sum(axis=0) + d.b_down(l)
        regrouped = regrouped + attn_sum + ffn_sum
        heads = max(heads, float(np.abs(attn_sum - d.attn_out[l, P]).max()))
        ffn = max(ffn, float(np.abs(ffn_sum - d.mlp_out[l, P]).max()))
        cols = d.W_O(l).T.reshape(d.H, d.dh, d.d)
        per_neuron = np.einsum("hnt,hnd->hd", d.attn_neuron_coef(l), cols)
        neurons = max(neurons, float(np.abs(per_neuron - o).max()))
        positions = max(positions, float(np.abs(o - d.head_vectors_from_z(l)).max()))
        bs_parts = bs_parts + fn.bs(d.attn_out[l, P]) + fn.bs(d.mlp_out[l, P])
    layer_sum = float(attr.attn_layer.sum() + attr.ffn_layer.sum())
    tele = attr.logprob_of(d.final) - attr.logprob_of(d.emb[P])
    bs_final = fn.bs(d.final)
    inv = {
        "decomposition_maxabs": float(np.abs(seq - d.final).max()),
        "decomposition_regrouped_maxabs": float(np.abs(regrouped - d.final).max()),
        "telescoping": {"sum_layer_imp": layer_sum, "bs_final_minus_embedding": tele,
                        "diff": layer_sum - tele},
        "heads_sum_plus_bias_vs_attn_output_maxabs": heads,
        "ffn_neurons_sum_plus_bias_vs_ffn_output_maxabs": ffn,
        "attn_neurons_sum_over_n_p_vs_head_output_maxabs": neurons,
        "head_positions_sum_vs_head_output_maxabs": positions,
        "bs_additivity_maxabs": float(np.abs(bs_final - bs_parts).max()),
    }
    key = "bs_final_plus_W_lnf_bias_vs_real_logits_maxabs" if d.cfg.layer_norm else "bs_final_vs_real_logits_maxabs"
    inv[key] = float(np.abs(fn.cap(bs_final + fn.final_bias_logits) - d.logits).max())
    names = {"layers": "crosscheck_layer_imp_direct_maxabs", "heads": "crosscheck_head_imp_direct_maxabs",
             "ffn_neurons": "crosscheck_ffn_neuron_imp_factored_maxabs",
             "attn_neurons": "crosscheck_attn_neuron_imp_factored_maxabs"}
    for k, v in attr.check.items():
        inv[names[k]] = v
    return inv


def interventions(model, dec, attr, k, seed, level, zero, ggml_gelu):
    """The golden's block (top-k vs random-k FFN neurons) plus attention neurons, heads (top 1%
    of all heads, at least one) and any units given with `zero`, all at `level`."""
    cfg, w, ids = model.config, attr.target, dec.ids
    kh = max(1, math.ceil(0.01 * dec.L * dec.H))

    def res(units):
        r = {"neurons": [intervention.unit_name(u) for u in units]}
        if level == "parameter" and any(kind == "attn" and len(i) == 4 for kind, i in units):
            # An attention neuron is zeroed once, whatever its positions (A7).
            r["zeroed"] = list(dict.fromkeys(_names(i[:3]) if kind == "attn" else _names(i)
                                             for kind, i in units))
        return {**r, **intervention.run(model, ids, w, units, level, ggml_gelu)}

    top_attn = [("attn", t) for t in query.top_flat(attr.attn_neuron, k)]
    out = {
        "k": k, "seed": seed, "level": level,
        "what": "set fc2_k to zero (GPT-2 mlp.c_proj.weight[k,:], Llama down_proj.weight[:,k]) and re-run"
                if level == "parameter" else
                "remove the units' contributions at the explained position only and re-run",
        "before": intervention.metrics(dec.logits, w),
        "top_ffn": res([("ffn", t) for t in query.top_flat(attr.ffn_neuron, k)]),
        "random_ffn": res(intervention.random_units(cfg, "ffn", k, seed)),
        "top_attn": res(top_attn),
        "random_attn": res(intervention.random_units(cfg, "attn", k, seed)),
        "k_heads": kh,
        "top_heads": res([("head", t) for t in query.top_flat(attr.head, kh)]),
        "random_heads": res(intervention.random_units(cfg, "head", kh, seed)),
    }
    if zero:
        out["custom"] = res(list(zero))
    return out
