"""Vocabulary views: the logit lens over the residual stream (spec 2.3, A10), the per-position
token views of one head (spec 6.2 cell 7) and the hidden-interpretable view of an FFN neuron
through a head (cell 19, spec 4.2). Token lists follow logprob.order_desc (ties: higher id first).
"""

import numpy as np

from .forward import layer_norm, rms_norm
from .logprob import bottom_ids, log_softmax, order_desc, rank_of, top_ids


def lens(attr, k=10):
    """Target rank (1 = top), probability and log-probability under p(.|u) = softmax(bs(u) + c)
    at the 2L+1 residual states h^{-1}, r^0, h^0, ..., r^{L-1}, h^{L-1} of position P, labelled
    'emb', 'a<l>' (after attention l) and 'f<l>' (after FFN l); top_ids: the k most likely."""
    labels, points = attr.dec.residual_points()
    logits = attr.fn.logits(points)
    lp = log_softmax(logits)
    w = attr.target
    ranks = rank_of(logits, w)
    return [{"label": lab, "rank": int(ranks[i]), "prob": float(np.exp(lp[i, w])),
             "logprob": float(lp[i, w]), "top_ids": top_ids(logits[i], k)}
            for i, lab in enumerate(labels)]


def cell7(attr, layer, head, k_input=20, k_key=20, k_value=10):
    """One head's source positions (cell 7): Imp of s^{l,h}_p, alpha_{P,p}, and three token views
    per position p (raw projections bs, no c):
      layer_input_top: top-k of bs(h_p^{l-1});
      key_top:         top-k of bs(sum_{l'<l} A_p^{l'}), the attention-written part of the stream
                       (the notebook's h_p^{l-1} - h_p^{-1} - sum_{l'<l} F_p^{l'}, summed directly);
                       empty for layer 0, where that vector is zero;
      value_top:       top-k of bs(s^{l,h}_p).
    Arrays are indexed by position; `order` lists positions by Imp, highest first (the notebook's
    print order)."""
    d, fn = attr.dec, attr.fn
    imp = attr.head_pos[layer, head]
    inputs = fn.bs(d.resid_pre[layer])                                      # [T, V]
    values = fn.bs(d.head_pos_vectors(layer)[head])                         # [T, V]
    if layer > 0:
        key_top = [top_ids(z, k_key) for z in fn.bs(d.attn_out[:layer].sum(axis=0))]
    else:
        key_top = [[] for _ in range(d.T)]
    return {
        "layer": layer, "head": head, "name": f"{layer}_{head}",
        "imp": imp.tolist(),
        "attn": d.alpha(layer)[head].tolist(),
        "layer_input_top": [top_ids(z, k_input) for z in inputs],
        "key_top": key_top,
        "value_top": [top_ids(z, k_value) for z in values],
        "order": [int(p) for p in order_desc(imp)],
    }


def head_transform(dec, vec, layer, head):
    """A vector passed through head (layer, head) as if it were the layer input at one position
    attending only to itself (cell 19): norm1 of the layer with the vector's own statistics
    (GPT-2: full LayerNorm incl. beta_1; Llama: RMSNorm), its KV head's value projection (incl.
    b_V when the model has one), then W_O^h without b_O."""
    cfg = dec.cfg
    p = f"blocks.{layer}"
    vec = np.asarray(vec, dtype=np.float64)[None, :]
    if not cfg.pre_norm:
        a = vec
    elif cfg.layer_norm:
        _, a = layer_norm(vec, dec.w(f"{p}.ln1.w"), dec.w(f"{p}.ln1.b"), cfg.norm_eps)
    else:
        _, a = rms_norm(vec, dec.w(f"{p}.ln1.w"), cfg.norm_eps)
    kv = dec.kv(head)
    rows = slice(kv * dec.dh, (kv + 1) * dec.dh)
    v = a[0] @ dec.w(f"{p}.attn.v.w")[rows].T
    if cfg.qkv_bias:
        v = v + dec.w(f"{p}.attn.v.b")[rows]
    return dec.W_O(layer)[:, head * dec.dh:(head + 1) * dec.dh] @ v


def hidden_view(attr, ffn_layer, neuron, layer, head, k=10):
    """Top and bottom tokens (bottom: lowest first) of bs(head_transform(fc2_k)) (cell 19)."""
    d = attr.dec
    vo = head_transform(d, d.W_down(ffn_layer)[:, neuron], layer, head)
    z = attr.fn.bs(vo)
    return {"ffn_neuron": f"{ffn_layer}_{neuron}", "head": f"{layer}_{head}",
            "top_ids": top_ids(z, k), "bottom_ids": bottom_ids(z, k)}
