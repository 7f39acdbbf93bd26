"""One forward pass taken apart into the residual-stream pieces the attribution scores need.

Spec 1.1 / 1.4, 0-based layers l, heads h, head dims n, FFN neurons k, positions p <= P:

  h^{-1}_p = embedding (GPT-2: token + position)       r^l = h^{l-1} + A^l      h^l = r^l + F^l
  head-position subvalue  s^{l,h}_p   = alpha^h_{P,p} v^{kv(h)}_p W_O^h          (v incl. b_V)
  head output             o^{l,h}     = sum_p s^{l,h}_p                          (no b_O)
  attention neuron        s^{l,h}_{p,n} = alpha^h_{P,p} v^{kv(h)}_{p,n} W_O[:, h*d_head + n]
  FFN neuron              s^l_k       = m^l_{P,k} fc2^l_k,  fc2_k = W_down[:, k]  (no b_out)

kv(h) = h // (n_heads / n_kv_heads): under grouped-query attention a query head reads the value of
its KV head, so an attention neuron's value is that KV head's value. Attention subvalues are those
of the explained (last) query position P only, as in the authors' modified model files (spec 6.1).

The explained position P is the last of the ids given: explaining position P of a longer prompt
uses ids[:P+1] (the model is causal, so nothing at positions <= P depends on later tokens).
"""

import collections

import numpy as np

from .forward import forward

# Weights are read through a small LRU cache: enough to keep a tiny model whole, bounded so that a
# 7B checkpoint (a 4096 x 11008 float64 matrix is 360 MB) does not pile up in memory.
CACHE_BYTES = 2 << 30


class Decomposition:
    def __init__(self, model, ids, ggml_gelu=False):
        self.model = model
        cfg = self.cfg = model.config
        self.ids = [int(t) for t in ids]
        self.hooks = h = forward(model, self.ids, ggml_gelu=ggml_gelu)
        self.T = len(self.ids)
        self.P = self.T - 1
        L = cfg.n_layers
        self.L, self.H, self.Hkv, self.dh = L, cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        self.N, self.d, self.V = cfg.d_mlp, cfg.d_model, cfg.vocab
        self.group = self.H // self.Hkv

        def stack(fmt):
            return np.stack([h[fmt.format(l)] for l in range(L)])

        self.emb = h["blocks.0.hook_resid_pre"]                 # h^{-1}   [T, d]
        self.resid_pre = stack("blocks.{}.hook_resid_pre")       # h^{l-1}  [L, T, d]
        self.attn_out = stack("blocks.{}.hook_attn_out")         # A^l      [L, T, d]
        self.resid_mid = stack("blocks.{}.hook_resid_mid")       # r^l      [L, T, d]
        self.mlp_out = stack("blocks.{}.hook_mlp_out")           # F^l      [L, T, d]
        self.resid_post = stack("blocks.{}.hook_resid_post")     # h^l      [L, T, d]
        self.pattern = stack("blocks.{}.attn.hook_pattern")      # alpha    [L, H, T, T]
        self.value = stack("blocks.{}.attn.hook_v")              # v        [L, T, Hkv, dh]
        self.z = stack("blocks.{}.attn.hook_z")                  # [L, T, H, dh]
        self.coef = stack("blocks.{}.mlp.hook_post")             # m        [L, T, N]
        # Post-norm models (OLMo 2): the sublayer outputs' RMSNorm scales are frozen at their real
        # values, so a head's or neuron's vector is its raw one times the norm weight over the scale:
        # the weight goes into W_O / W_down (value vectors), 1/scale into the coefficients.
        self.attn_post_scale = stack("blocks.{}.ln1_post.hook_scale") if cfg.post_norm else None  # [L, T, 1]
        if cfg.post_norm:
            self.coef = self.coef / stack("blocks.{}.ln2_post.hook_scale")
            self.z = self.z / self.attn_post_scale[:, :, :, None]
        self.final = self.resid_post[L - 1, self.P]              # h_P^{L-1}
        self.final_scale = h["ln_final.hook_scale"][self.P]
        self.logits = h["logits"][self.P]                        # real logits at P
        self._w = collections.OrderedDict()
        self._w_bytes = 0

    # -- weights (float64, canonical layout, LRU-cached) ---------------------------------------
    def w(self, name):
        if name in self._w:
            self._w.move_to_end(name)
            return self._w[name]
        t = self.model.f64(name)
        self._w[name] = t
        self._w_bytes += t.nbytes
        while self._w_bytes > CACHE_BYTES and len(self._w) > 1:
            self._w_bytes -= self._w.popitem(last=False)[1].nbytes
        return t

    def W_O(self, l):
        W = self.w(f"blocks.{l}.attn.o.w")                        # [d, H*dh]
        return W * self.w(f"blocks.{l}.post_attn_norm.w")[:, None] if self.cfg.post_norm else W

    def b_O(self, l):
        return self.w(f"blocks.{l}.attn.o.b") if self.cfg.o_bias else np.zeros(self.d)

    def W_down(self, l):
        W = self.w(f"blocks.{l}.mlp.down.w")                      # [d, N]; column k = fc2_k
        return W * self.w(f"blocks.{l}.post_ffn_norm.w")[:, None] if self.cfg.post_norm else W

    def b_down(self, l):
        return self.w(f"blocks.{l}.mlp.down.b") if self.cfg.layer_norm else np.zeros(self.d)

    def kv(self, h):
        return h // self.group

    # -- attention at the explained position -------------------------------------------------
    def alpha(self, l):
        """alpha^h_{P,p} for every head and source position: [H, T] (over the frozen post-norm
        scale at P for post-norm models)."""
        a = self.pattern[l, :, self.P, :]
        return a / self.attn_post_scale[l, self.P, 0] if self.cfg.post_norm else a

    def value_by_head(self, l):
        """Each query head's value vectors (its KV head's): [H, T, dh]."""
        return np.repeat(self.value[l], self.group, axis=1).transpose(1, 0, 2)

    def attn_neuron_coef(self, l):
        """alpha^h_{P,p} v_{p,n}: the scalar coefficient of attention neuron (h, n, p): [H, dh, T]."""
        return (self.alpha(l)[:, :, None] * self.value_by_head(l)).transpose(0, 2, 1)

    def head_pos_vectors(self, l):
        """s^{l,h}_p for every head and position: [H, T, d]."""
        W = self.W_O(l).reshape(self.d, self.H, self.dh)
        sub = self.alpha(l)[:, :, None] * self.value_by_head(l)             # [H, T, dh]
        return np.einsum("htn,dhn->htd", sub, W)

    def head_vectors(self, l):
        """o^{l,h} = sum_p s^{l,h}_p: [H, d] (no b_O)."""
        return self.head_pos_vectors(l).sum(axis=1)

    def head_vectors_from_z(self, l):
        """o^{l,h} computed the forward's way, z_P^h W_O^h (for the identity check): [H, d]."""
        W = self.W_O(l).reshape(self.d, self.H, self.dh)
        return np.einsum("hn,dhn->hd", self.z[l, self.P], W)

    # -- residual components -----------------------------------------------------------------
    def components(self, p, upto):
        """The first `upto` residual components at position p, in slot order
        [h^{-1}, A^0, F^0, A^1, F^1, ...]: [upto, d]."""
        comps = [self.emb[p]]
        for l in range(self.L):
            comps += [self.attn_out[l, p], self.mlp_out[l, p]]
        return np.stack(comps[:upto])

    def slot_labels(self):
        """Slot names: 'emb', then 'a<l>' (attention layer l) and 'f<l>' (FFN layer l)."""
        labels = ["emb"]
        for l in range(self.L):
            labels += [f"a{l}", f"f{l}"]
        return labels

    def residual_points(self):
        """The 2L+1 residual states at P (spec A10): h^{-1}, then r^l and h^l per layer, with the
        labels of the component each state ends with ('emb', 'a<l>', 'f<l>')."""
        points = [self.emb[self.P]]
        for l in range(self.L):
            points += [self.resid_mid[l, self.P], self.resid_post[l, self.P]]
        return self.slot_labels(), np.stack(points)
