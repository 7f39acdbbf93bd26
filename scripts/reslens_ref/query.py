"""Query analysis (spec 4.1, 4.3): how lower residual components raise the activation of value
neurons, measured by inner products with the neuron's subkey K (norm weight folded in; the common
1/sigma or 1/rms cancels in the shares).

  Q1 query layers of the top-N FFN value neurons (l,k), components at P:
       C = [h^{-1}, A^0, F^0, ..., A^{l-1}, F^{l-1}, A^l],  slot[c] += (c.K / sum_c' c'.K) Imp_{l,k}
     key variants, K = row (x) gamma_2^l:
       Llama: 'up' = W_up[k] (default, A3), 'gate' = W_gate[k], 'notebook' = W_down[:, k] (the
              notebook's value-vector deviation, A3), 'exact' = 'up' (RMSNorm has no centering,
              so the code form is already exact);
       GPT-2: 'c_fc' = c_fc column k (default and notebook), 'exact' = c_fc with v1's centering
              term: (c - mean(c)).K, spec 4.1 "exact alternative".
  Q2 query layers of the top-N attention value neurons (l,h,n,p) at their SOURCE position p:
       C = [h_p^{-1}, A_p^0, F_p^0, ..., A_p^{l-1}, F_p^{l-1}], K = W_V[kv(h) d_head + n] (x) gamma_1^l.
  Q3 query FFN neurons of the top-N attention value neurons a:
       Q[l',k] += (m^{l'}_{p,k} fc2^{l'}_k . K) / (h_p^{l-1} . K) * Imp_a   for l' < l.
  Q4 the same for one attention neuron; multiplier = its own Imp, or (compat, A5) the Imp of the
       N-th attention neuron, the notebook's stale variable.
  Q5 top-k FFN value neurons vs top-k query FFN neurons (of Q3): per-layer counts of query-only
       (in Q, not in V) and query-value (in both) neurons.
No guard against a near-zero denominator and no clipping (A17), as in the notebooks.
Slots: index 0 = embedding, 2j+1 = attention layer j, 2j+2 = FFN layer j; labels 'emb', 'a<j>',
'f<j>'. `sorted`: [label, score] pairs by score, highest first (ties: later slot first).
"""

import numpy as np

from .logprob import order_desc

Q1_DOC = ("query layers of the top-N FFN value neurons; slot 0 = embedding, 2j+1 = attn j, 2j+2 = "
          "ffn j; components at the last position incl. the neuron layer's own attention")


def top_flat(scores, n):
    """Indices (as tuples) of the n highest entries of an array, highest first."""
    flat = order_desc(np.asarray(scores).ravel())[:n]
    return [tuple(int(i) for i in np.unravel_index(f, scores.shape)) for f in flat]


def q1_keys(cfg):
    return ["c_fc", "exact"] if cfg.layer_norm else ["up", "gate", "notebook", "exact"]


def default_q1_key(cfg, compat=None):
    if compat == "notebook":
        return "c_fc" if cfg.layer_norm else "notebook"
    return "c_fc" if cfg.layer_norm else "up"


def _ffn_key(dec, l, k, key):
    p = f"blocks.{l}"
    if key in ("up", "c_fc", "exact"):
        row = dec.w(f"{p}.mlp.up.w")[k]          # GPT-2 c_fc column k; Llama up_proj row k
    elif key == "gate":
        row = dec.w(f"{p}.mlp.gate.w")[k]
    elif key == "notebook":
        row = dec.W_down(l)[:, k]
    else:
        raise ValueError(f"unknown Q1 key {key!r}")
    return row * dec.w(f"{p}.ln2.w") if dec.cfg.pre_norm else row


def _attn_key(dec, l, h, n):
    row = dec.w(f"blocks.{l}.attn.v.w")[dec.kv(h) * dec.dh + n]
    return row * dec.w(f"blocks.{l}.ln1.w") if dec.cfg.pre_norm else row


def _slots_result(dec, slots, items, **extra):
    labels = dec.slot_labels()
    return {**extra, "slots": slots.tolist(), "labels": labels, "items": items,
            "sorted": [[labels[i], float(slots[i])] for i in order_desc(slots)]}


def q1(attr, n, key):
    d = attr.dec
    slots = np.zeros(2 * d.L + 1)
    items = []
    centre = key == "exact" and d.cfg.layer_norm
    for l, k in top_flat(attr.ffn_neuron, n):
        comps = d.components(d.P, 2 * l + 2)
        if centre:
            comps = comps - comps.mean(axis=1, keepdims=True)
        inner = comps @ _ffn_key(d, l, k, key)
        if d.cfg.parallel_residual:  # the MLP reads h^{l-1}: layer l's attention is no query of it
            inner[2 * l + 1] = 0.0
        total = inner.sum()
        imp = float(attr.ffn_neuron[l, k])
        slots[:2 * l + 2] += inner / total * imp
        items.append({"name": f"{l}_{k}", "imp": imp, "inner_sum": float(total)})
    return _slots_result(d, slots, items)


def q2(attr, n):
    d = attr.dec
    slots = np.zeros(2 * d.L + 1)
    items, layers = [], []
    for l, h, nn, p in top_flat(attr.attn_neuron, n):
        inner = d.components(p, 2 * l + 1) @ _attn_key(d, l, h, nn)
        total = inner.sum()
        imp = float(attr.attn_neuron[l, h, nn, p])
        slots[:2 * l + 1] += inner / total * imp
        items.append({"name": f"{l}_{h}_{nn}_{p}", "imp": imp, "inner_sum": float(total)})
        layers.append(l)
    return _slots_result(d, slots, items, top_n=n, avg_layer=float(np.mean(layers)) if layers else 0.0)


def query_ffn_scores(attr, neurons):
    """Q[l',k] over neurons [(l, h, n, p, multiplier)]; each layer's W_down is read once."""
    d = attr.dec
    Q = np.zeros((d.L, d.N))
    keys = []
    for l, h, nn, p, mult in neurons:
        K = _attn_key(d, l, h, nn)
        keys.append((l, p, K, d.resid_pre[l, p] @ K, mult))     # D = h_p^{l-1} . K
    for lo in range(d.L):
        users = [key for key in keys if key[0] > lo]
        if not users:
            continue
        inner = d.W_down(lo).T @ np.stack([K for _, _, K, _, _ in users], axis=1)   # fc2_k . K  [N, n]
        for j, (_, p, _, D, mult) in enumerate(users):
            Q[lo] += d.coef[lo, p] * inner[:, j] / D * mult
    return Q


def _top_ffn_list(Q, n):
    return [{"name": f"{l}_{k}", "layer": l, "neuron": k, "score": float(Q[l, k])}
            for l, k in top_flat(Q, n)]


def q3(attr, n):
    top = top_flat(attr.attn_neuron, n)
    Q = query_ffn_scores(attr, [(*a, attr.attn_neuron[a]) for a in top])
    return {"top_n": n, "scores": Q.tolist(),
            "layers_touched": max((a[0] for a in top), default=0),
            "top": _top_ffn_list(Q, n)}, Q


def q4(attr, neuron, n, compat=None):
    """neuron: (l, h, n, p). compat == 'notebook': the multiplier is the Imp of the n-th attention
    neuron (A5); otherwise the neuron's own Imp."""
    own = float(attr.attn_neuron[neuron])
    if compat == "notebook":
        ranked = top_flat(attr.attn_neuron, n)
        stale = ranked[-1]
        mult = float(attr.attn_neuron[stale])
        source = f"compat: Imp of attention neuron #{len(ranked)} ({'_'.join(map(str, stale))})"
    else:
        mult, source = own, "own Imp"
    Q = query_ffn_scores(attr, [(*neuron, mult)])
    return {"neuron": "_".join(map(str, neuron)), "imp": own, "multiplier": mult,
            "multiplier_source": source, "scores": Q.tolist(), "top": _top_ffn_list(Q, n)}


def q5(attr, Q, k=300):
    d = attr.dec
    k = min(k, d.L * d.N)
    value = set(top_flat(attr.ffn_neuron, k))
    query = set(top_flat(Q, k))
    q_only = np.zeros(d.L, dtype=int)
    q_value = np.zeros(d.L, dtype=int)
    for l, kk in query:
        (q_value if (l, kk) in value else q_only)[l] += 1
    return {"k": k, "query_only_per_layer": q_only.tolist(), "query_value_per_layer": q_value.tolist(),
            "query_only": int(q_only.sum()), "query_value": int(q_value.sum())}
