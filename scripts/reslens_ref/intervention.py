"""Interventions (spec 5.2, A7, A19, C16): remove neurons or heads, re-run the reference forward
pass, and read the target's probability, log-probability, rank and reciprocal rank off the REAL
logits at the explained position P (the last of the ids given).

Units (names as elsewhere, 0-based):
  ffn  'l_k'      FFN neuron k of layer l
  attn 'l_h_n'    attention neuron: dimension n of head h (its W_O column h*d_head + n);
       'l_h_n_p'  the same at source position p (the position only matters at activation level)
  head 'l_h'      a whole head (W_O columns h*d_head .. (h+1)*d_head - 1)

Levels:
  parameter (default; the papers' "setting parameters to zero"): zero fc2_k (canonical
      mlp.down.w[:, k] = GPT-2 c_proj.weight[k, :], Llama down_proj.weight[:, k]), the W_O column
      of (l,h,n), or the W_O block of head h. Acts at every position. An attention neuron given
      with a position is zeroed as (l,h,n), once even if it appears with several positions.
  activation: only at position P, in the re-run's own activations: an FFN neuron's coefficient
      m_{P,k} is set to 0; an attention neuron with a source position p has
      alpha_{P,p} v_{p,n} W_O[:, h*d_head+n] subtracted from A_P^l (without p: z_{P,h,n} W_O[...],
      i.e. all source positions); a head has z_{P,h} W_O^h subtracted. GPT-2 biases stay.

Random baselines (reproducible, documented for the C++ side): a fresh
`numpy.random.default_rng(seed)` per baseline, `rng.choice(count, size=k, replace=False)` over the
flat index of the unit, taken in the order drawn:
  ffn  flat = l * N + k                         (count L * N; the golden's `random_ffn`)
  attn flat = (l * H + h) * d_head + n          (count L * H * d_head; no position)
  head flat = l * H + h                         (count L * H)
"""

import numpy as np

from .forward import forward
from .logprob import log_softmax, rank_of
from .model import Model


def parse_unit(kind, name):
    parts = tuple(int(x) for x in str(name).split("_"))
    want = {"ffn": (2,), "attn": (3, 4), "head": (2,)}[kind]
    if len(parts) not in want:
        raise ValueError(f"{kind} unit {name!r}: expected {' or '.join(str(n) for n in want)} indices")
    return parts


def parse_spec(spec):
    """'ffn:1_101,2_122' -> [('ffn', (1, 101)), ('ffn', (2, 122))]."""
    kind, _, names = spec.partition(":")
    if kind not in ("ffn", "attn", "head") or not names:
        raise ValueError(f"intervention {spec!r}: expected ffn:L_K,... attn:L_H_N[_P],... or head:L_H,...")
    return [(kind, parse_unit(kind, n)) for n in names.split(",") if n]


def check_units(cfg, units):
    lim = {"ffn": (cfg.n_layers, cfg.d_mlp), "head": (cfg.n_layers, cfg.n_heads),
           "attn": (cfg.n_layers, cfg.n_heads, cfg.d_head, 1 << 30)}
    for kind, idx in units:
        if any(not 0 <= i < m for i, m in zip(idx, lim[kind])):
            raise ValueError(f"{kind} unit {'_'.join(map(str, idx))} out of range")


class EditedModel:
    """A view of a model whose tensors pass through edit(name, tensor) -> tensor when read.
    Provides what forward() uses: config, shapes, get, f64, unembed."""

    def __init__(self, model, edit):
        self._m, self._edit = model, edit
        self.config, self.shapes = model.config, model.shapes

    def get(self, name):
        return self._edit(name, self._m.get(name))

    def f64(self, name):
        return self.get(name).astype(np.float64)

    unembed = Model.unembed


def zeroed_model(model, columns):
    """The model with columns {tensor name: set of column indices} of [d_model, X] matrices zeroed."""
    def edit(name, t):
        if name in columns:
            t = np.array(t, copy=True)
            t[:, sorted(columns[name])] = 0
        return t
    return EditedModel(model, edit)


def zeroed_columns(cfg, units):
    cols = {}
    dh = cfg.d_head
    for kind, idx in units:
        if kind == "ffn":
            l, k = idx
            cols.setdefault(f"blocks.{l}.mlp.down.w", set()).add(k)
        elif kind == "attn":
            l, h, n = idx[:3]
            cols.setdefault(f"blocks.{l}.attn.o.w", set()).add(h * dh + n)
        else:
            l, h = idx
            cols.setdefault(f"blocks.{l}.attn.o.w", set()).update(range(h * dh, (h + 1) * dh))
    return cols


def activation_edit(model, units):
    """The forward() edit callback removing `units` at the last position."""
    cfg = model.config
    dh, group = cfg.d_head, cfg.n_heads // cfg.n_kv_heads
    ffn, attn = {}, {}
    for kind, idx in units:
        if kind == "ffn":
            ffn.setdefault(idx[0], set()).add(idx[1])
        else:
            attn.setdefault(idx[0], []).append((kind, idx[1:]))

    def edit(name, value, hooks):
        parts = name.split(".")
        l = int(parts[1])
        if name.endswith("mlp.hook_post") and l in ffn:
            value = value.copy()
            value[-1, sorted(ffn[l])] = 0.0
            return value
        if name.endswith("hook_attn_out") and l in attn:
            W = model.f64(f"blocks.{l}.attn.o.w")
            pattern = hooks[f"blocks.{l}.attn.hook_pattern"]
            v = hooks[f"blocks.{l}.attn.hook_v"]
            z = hooks[f"blocks.{l}.attn.hook_z"]
            value = value.copy()
            for kind, idx in attn[l]:
                h = idx[0]
                if kind == "head":
                    value[-1] -= W[:, h * dh:(h + 1) * dh] @ z[-1, h]
                elif len(idx) == 3:        # (h, n, p): one source position
                    n, p = idx[1], idx[2]
                    value[-1] -= pattern[h, -1, p] * v[p, h // group, n] * W[:, h * dh + n]
                else:                      # (h, n): every source position
                    value[-1] -= z[-1, h, idx[1]] * W[:, h * dh + idx[1]]
            return value
        return None

    return edit


def metrics(logits, target):
    lp = log_softmax(logits)
    rank = int(rank_of(logits, target))
    return {"prob": float(np.exp(lp[target])), "logprob": float(lp[target]), "rank": rank,
            "rr": 1.0 / rank, "top1": int(np.argmax(logits))}


def run(model, ids, target, units, level="parameter", ggml_gelu=False):
    """Metrics of the target at the last position after removing `units` [(kind, indices)]."""
    check_units(model.config, units)
    if level == "parameter":
        hooks = forward(zeroed_model(model, zeroed_columns(model.config, units)), ids, ggml_gelu=ggml_gelu)
    elif level == "activation":
        hooks = forward(model, ids, ggml_gelu=ggml_gelu, edit=activation_edit(model, units))
    else:
        raise ValueError(f"unknown intervention level {level!r}")
    return metrics(hooks["logits"][-1], target)


def random_units(cfg, kind, k, seed):
    """k distinct random units of one kind (see the module docstring)."""
    L, H, dh, N = cfg.n_layers, cfg.n_heads, cfg.d_head, cfg.d_mlp
    shape = {"ffn": (L, N), "attn": (L, H, dh), "head": (L, H)}[kind]
    count = int(np.prod(shape))
    flat = np.random.default_rng(seed).choice(count, size=min(k, count), replace=False)
    return [(kind, tuple(int(i) for i in np.unravel_index(f, shape))) for f in flat]


def unit_name(unit):
    return "_".join(str(i) for i in unit[1])
