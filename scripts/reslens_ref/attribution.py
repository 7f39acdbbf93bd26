"""Importance scores at every level: the log-probability increase (spec 3.1), the alternative
scores of spec 3.3 for FFN neurons (definitions of A8), and the contrast against a foil token.

Each subvalue v is scored alone against the residual state x it is added to at the explained
position P (spec 3.1 table):

  attention layer l      v = A_P^l (incl. b_O)                 x = h_P^{l-1}
  FFN layer l            v = F_P^l (incl. b_out)               x = r_P^l
  head (l,h)             v = o^{l,h}                           x = h_P^{l-1}
  head-position (l,h,p)  v = s^{l,h}_p                         x = h_P^{l-1}
  attention neuron       v = s^{l,h}_{p,n}                     x = h_P^{l-1}
  FFN neuron (l,k)       v = m^l_{P,k} fc2^l_k                 x = r_P^l

Imp(v|x) = log p(w|x+v) - log p(w|x), p(.|u) = softmax(bs(u) + c) (frozen_norm.py). Neuron
scores use the factored form with B = coefficient * bs(fixed vector) (logprob.py); every score is
also computed directly from the projected state x + v, and the largest difference is reported
(`crosscheck_*` invariants).

Contrast (foil f): the increase of log p(w) - log p(f), which is exactly bs_w(v) - bs_f(v).

FFN-neuron baselines, [L][N] each (A8's recommended definitions, an interpretation):
  log_prob_increase  (a) Imp                        log_prob    (b) log softmax(bs(m fc2) + c)_w
  prob_increase      (c) p(w|x+v) - p(w|x)          norm        (d) ||m fc2||
  coef               (e) m                           rank        (f) 1 / rank_w(bs(m fc2))
  m_norm             (g) |m| ||fc2||                 m_rank      (h) |m| / rank_w(bs(fc2))
Ranks are of the raw projection bs(.) (without c), 1 = top, ties share the better rank (so a
neuron whose coefficient is exactly 0 has rank 1 in bs(m fc2) = 0).
"""

import numpy as np

from .frozen_norm import FrozenNorm
from .logprob import chunks, contrast_factored, imp_factored, log_softmax, rank_of

BASELINES = ("log_prob_increase", "log_prob", "prob_increase", "norm", "coef", "rank",
             "m_norm", "m_rank")


class Context:
    """A residual state x at P and its log-distribution; scores vectors added to it."""

    def __init__(self, fn, x, w):
        self.fn, self.x, self.w = fn, x, w
        self.logp = log_softmax(fn.logits(x))
        self.raw = fn.bs(x) + fn.const  # the state's logits before a softcap

    def imp(self, B):
        if self.fn.softcap:  # Gemma 2: not factored; the capped state x + v directly
            return log_softmax(self.fn.cap(self.raw + B))[..., self.w] - self.logp[self.w]
        return imp_factored(self.logp, B, self.w)

    def contrast(self, B, w, f):
        """The increase of log p(w) - log p(f) (normalisers cancel): bs_w(v) - bs_f(v), or with a
        softcap the change of the capped logit difference."""
        if self.fn.softcap:
            z0, z1 = self.fn.cap(self.raw), self.fn.cap(self.raw + B)
            return (z1[..., w] - z1[..., f]) - (z0[w] - z0[f])
        return contrast_factored(B, w, f)

    def imp_direct(self, vecs):
        """Direct form: project the states x + v and read log p(w) off them."""
        lp = log_softmax(self.fn.logits(self.x + vecs))
        return lp[..., self.w] - self.logp[self.w]


class Attribution:
    def __init__(self, dec, target=None, foil=None, include_final_bias=False, crosscheck=True):
        self.dec = dec
        self.fn = FrozenNorm(dec.model, dec.final, dec.final_scale, include_final_bias)
        self.target = int(np.argmax(dec.logits)) if target is None else int(target)
        self.foil = None if foil is None else int(foil)
        for t in (self.target, self.foil):
            if t is not None and not 0 <= t < dec.V:
                raise ValueError(f"token id {t} out of range [0, {dec.V})")
        self.crosscheck = crosscheck
        self.check = {}  # name -> max |direct - factored|
        self._compute()

    # -- helpers ---------------------------------------------------------------------------
    def _note(self, name, a, b):
        if self.crosscheck:
            d = float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if np.size(a) else 0.0
            self.check[name] = max(self.check.get(name, 0.0), d)

    def _contrast(self, B, ctx):
        return ctx.contrast(B, self.target, self.foil) if self.foil is not None else None

    def _score_vectors(self, ctx, vecs, check_name):
        """(imp, contrast) of explicit vectors [..., d] against ctx."""
        B = self.fn.bs(vecs)
        imp = ctx.imp(B)
        if self.crosscheck:
            self._note(check_name, imp, ctx.imp_direct(vecs))
        return imp, self._contrast(B, ctx)

    # -- all scores --------------------------------------------------------------------------
    def _compute(self):
        d, P, w = self.dec, self.dec.P, self.target
        L, H, dh, T, N = d.L, d.H, d.dh, d.T, d.N
        self.attn_layer = np.zeros(L)
        self.ffn_layer = np.zeros(L)
        self.head = np.zeros((L, H))
        self.head_pos = np.zeros((L, H, T))
        self.attn_neuron = np.zeros((L, H, dh, T))
        self.ffn_neuron = np.zeros((L, N))
        # Mixture of experts: each expert's output vector in r_P^l (Qwen2-MoE's shared expert last).
        E = d.cfg.n_experts + (1 if d.cfg.d_shared else 0)
        self.expert = np.zeros((L, E))
        self.baselines = {k: np.zeros((L, N)) for k in BASELINES}
        c_shape = {"attn_layer": (L,), "ffn_layer": (L,), "head": (L, H), "head_pos": (L, H, T),
                   "attn_neuron": (L, H, dh, T), "ffn_neuron": (L, N)}
        if E:
            c_shape["expert"] = (L, E)
        self.contrast = {k: np.zeros(s) for k, s in c_shape.items()} if self.foil is not None else None

        def put(name, index, imp, con):
            getattr(self, name)[index] = imp
            if con is not None:
                self.contrast[name][index] = con

        for l in range(L):
            pre = Context(self.fn, d.resid_pre[l, P], w)    # h_P^{l-1}
            mid = Context(self.fn, d.resid_mid[l, P], w)    # r_P^l
            put("attn_layer", l, *self._score_vectors(pre, d.attn_out[l, P], "layers"))
            put("ffn_layer", l, *self._score_vectors(mid, d.mlp_out[l, P], "layers"))
            put("head", l, *self._score_vectors(pre, d.head_vectors(l), "heads"))
            put("head_pos", l, *self._score_vectors(pre, d.head_pos_vectors(l), "heads"))
            self._attn_neurons(l, pre)
            self._ffn_neurons(l, mid)
            if E:  # expert e's vector: sum over its neurons k of m_k fc2_k (router weight in m)
                F, R = d.cfg.d_expert, d.cfg.n_experts
                m, fc2 = d.coef[l, P], d.W_down(l).T
                spans = [(e * F, (e + 1) * F) for e in range(R)] + ([(R * F, N)] if d.cfg.d_shared else [])
                experts = np.stack([m[a:b] @ fc2[a:b] for a, b in spans])
                put("expert", l, *self._score_vectors(mid, experts, "experts"))

    def _attn_neurons(self, l, ctx):
        """Attention neurons of layer l: B = coef * bs(W_O column), rows (h, n) chunked."""
        d = self.dec
        H, dh, T, V = d.H, d.dh, d.T, d.V
        cols = d.W_O(l).T                                      # [H*dh, d]; row h*dh+n
        coef = d.attn_neuron_coef(l).reshape(H * dh, T)       # [H*dh, T]
        imp = np.zeros((H * dh, T))
        con = np.zeros((H * dh, T)) if self.foil is not None else None
        for rows in chunks(H * dh, T * V):
            U = self.fn.bs(cols[rows])                         # [r, V]
            B = coef[rows, :, None] * U[:, None, :]            # [r, T, V]
            imp[rows] = ctx.imp(B)
            if con is not None:
                con[rows] = self._contrast(B, ctx)
            if self.crosscheck:
                vecs = coef[rows, :, None] * cols[rows][:, None, :]   # the neurons' vectors
                self._note("attn_neurons", imp[rows], ctx.imp_direct(vecs))
        self.attn_neuron[l] = imp.reshape(H, dh, T)
        if con is not None:
            self.contrast["attn_neuron"][l] = con.reshape(H, dh, T)

    def _ffn_neurons(self, l, ctx):
        """FFN neurons of layer l and their baseline scores: B = m * bs(fc2), rows chunked."""
        d, w, bl = self.dec, self.target, self.baselines
        fc2 = d.W_down(l).T                                    # [N, d]; row k = fc2_k
        m = d.coef[l, d.P]                                     # [N]
        fc2_norm = np.linalg.norm(fc2, axis=1)
        p_x = np.exp(ctx.logp[w])
        for rows in chunks(d.N, d.V):
            U = self.fn.bs(fc2[rows])                          # bs(fc2_k)   [r, V]
            B = m[rows, None] * U                              # bs(m fc2_k)
            imp = ctx.imp(B)
            self.ffn_neuron[l, rows] = imp
            if self.foil is not None:
                self.contrast["ffn_neuron"][l, rows] = self._contrast(B, ctx)
            if self.crosscheck:
                self._note("ffn_neurons", imp, ctx.imp_direct(m[rows, None] * fc2[rows]))
            bl["log_prob_increase"][l, rows] = imp
            bl["log_prob"][l, rows] = log_softmax(self.fn.cap(B + self.fn.const))[:, w]
            bl["prob_increase"][l, rows] = np.exp(ctx.logp[w] + imp) - p_x
            bl["rank"][l, rows] = 1.0 / rank_of(B, w)
            bl["m_rank"][l, rows] = np.abs(m[rows]) / rank_of(U, w)
        bl["norm"][l] = np.linalg.norm(m[:, None] * fc2, axis=1)
        bl["coef"][l] = m
        bl["m_norm"][l] = np.abs(m) * fc2_norm

    # -- derived -------------------------------------------------------------------------------
    def logprob_of(self, u):
        """log p(w | u) for a residual state u."""
        return float(log_softmax(self.fn.logits(u))[self.target])
