"""The frozen final norm `bs` (spec 2.2): the vocabulary projection every attribution score uses.

The final norm is linearised by freezing its scale at the value it has for the real final vector
h_P^{L-1} (last layer output at the explained position P) and applying that frozen map to any
vector v:

  GPT-2:  bs(v) = W_U (gamma_f * (v - mean(v)) / sigma_f),   sigma_f = sqrt(var_biased(h) + eps)
          (v's OWN mean: centering is linear; ln_f.bias beta_f is omitted, spec A1)
  Llama:  bs(v) = W_U (gamma_f * v / sqrt(ms_f + eps)),      ms_f = mean(h^2)

Both maps are linear, so bs(x + v) = bs(x) + bs(v). The distribution of a residual-stream state u
is p(.|u) = softmax(bs(u) + c) with c = 0 by default. With `include_final_bias` (GPT-2 only; the
canonical model has no unembedding bias b_U) c = W_U beta_f, the constant that makes bs(h) + c equal
the real logits; c is then part of every state's logits and cancels from every log-probability
*increase* (it is attributed once, to the context).

Gemma 2's final-logit softcap c: p(.|u) = softmax(c tanh((bs(u) + c0) / c)). bs stays linear; the
cap applies to a state's whole logits only (`logits`, `cap`), never to a vector's bs alone.
"""

import numpy as np


class FrozenNorm:
    def __init__(self, model, final_vec, final_scale, include_final_bias=False):
        """final_vec: h_P^{L-1} [d]; final_scale: the forward pass's ln_final scale at P, i.e.
        sqrt(var + eps) (GPT-2) or sqrt(mean square + eps) (Llama), so that bs(h) reproduces the
        forward's own arithmetic (x / scale * w) and equals the real logits bit for bit (Llama)."""
        cfg = model.config
        self.gpt2 = cfg.layer_norm  # LayerNorm final norm (GPT-2, GPT-NeoX)
        self.eps = cfg.norm_eps
        self.final_vec = np.asarray(final_vec, dtype=np.float64)
        self.scale = float(np.asarray(final_scale).reshape(()))
        self.gamma = model.f64("ln_final.w")
        self.W_U = model.unembed()  # [V, d]
        self.include_final_bias = bool(include_final_bias)
        self.softcap = float(cfg.final_softcap or 0.0)
        self.const = np.zeros(self.W_U.shape[0])
        if self.include_final_bias and self.gpt2:
            self.const = self.W_U @ model.f64("ln_final.b")
        # The W_U beta_f term the default bs leaves out (zero for Llama), for the identity check.
        self.final_bias_logits = self.W_U @ model.f64("ln_final.b") if self.gpt2 else np.zeros(self.W_U.shape[0])

    @property
    def vocab(self):
        return self.W_U.shape[0]

    def summary(self):
        """The golden's `frozen_norm` block."""
        h = self.final_vec
        if self.gpt2:
            return {"kind": "gpt2 layernorm: (v-mean(v))/sigma_f*ln_f.weight (no ln_f.bias)",
                    "sigma_f": self.scale, "eps": self.eps}
        return {"kind": "rmsnorm: v*rsqrt(ms_f+eps)*norm.weight",
                "ms_f": float(np.mean(h * h)), "eps": self.eps}

    def normed(self, v):
        """The frozen norm applied to v [..., d] (no final bias)."""
        v = np.asarray(v, dtype=np.float64)
        if self.gpt2:
            v = v - v.mean(axis=-1, keepdims=True)
        return v / self.scale * self.gamma

    def bs(self, v):
        """Before-softmax values bs(v) [..., V] of vectors v [..., d]: the raw vocabulary
        projection, without the constant c (use it for token rankings of a vector)."""
        return self.normed(v) @ self.W_U.T

    def cap(self, z):
        """The model's final-logit softcap applied to logits z (identity without one)."""
        return self.softcap * np.tanh(z / self.softcap) if self.softcap else z

    def logits(self, u):
        """The logits of residual-stream states u [..., d]: bs(u) + c (capped when the model caps)."""
        return self.cap(self.bs(u) + self.const)
