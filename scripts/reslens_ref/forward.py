"""Float64 forward pass with TransformerLens-named hooks, written from the math.

GPT-2 (pre-LN):  x = W_te[t] + W_pe[p];  per layer
    a = LN1(x);  q,k,v = a W^T + b;  A = softmax(q k^T / sqrt(d_head) + causal) v W_O^T + b_O
    r = x + A;   m = gelu_new(LN2(r) W_fc^T + b_fc);  x = r + m W_proj^T + b_proj
  logits = LN_f(x) W_te^T (or a separate head)
Llama:  x = E[t] (Gemma: times sqrt(d_model));  per layer
    a = RMS1(x);  q,k,v = a W^T (+ b for Qwen2);  Qwen3: q, k = RMS(q), RMS(k) per head;
    RoPE(q), RoPE(k) with rotate_half pairs over the first rot dims (Phi-3/4: partial)
    (i, i + d_head/2) at angle pos * base^(-2i/d_head) (RoPE scaling: model.rope_frequencies);  query head h reads KV head
    h // (n_heads / n_kv_heads);  r = x + A;  m = silu(b W_gate^T) * (b W_up^T), b = RMS2(r)
    (Gemma: gelu_new(b W_gate^T) * (b W_up^T));  x = r + m W_down^T
  logits = RMS_f(x) W_head^T
"""

import collections
import dataclasses
import math

import numpy as np

from .model import GEMMA_FAMILY, rope_frequencies

GELU_C = np.sqrt(2.0 / np.pi)


def gelu_new(x):
    """Exact tanh-approximation GELU (Hugging Face `gelu_new`) in float64."""
    return 0.5 * x * (1.0 + np.tanh(GELU_C * (x + 0.044715 * x ** 3)))


def gelu_ggml(x):
    """ggml-cpu's GELU: input rounded to fp16, tanh-GELU in float32 (what fills its 65536-entry
    table), result rounded to fp16; inputs beyond +-10 bypass the table (0 below, x above)."""
    x32 = np.asarray(x, dtype=np.float32)
    h = x32.astype(np.float16).astype(np.float32)
    c, a = np.float32(0.79788456080286535587989211986876), np.float32(0.044715)
    with np.errstate(over="ignore", invalid="ignore"):
        g = np.float32(0.5) * h * (np.float32(1) + np.tanh(c * h * (np.float32(1) + a * h * h)))
    y = g.astype(np.float16).astype(np.float64)
    y = np.where(x32 <= -10, 0.0, y)
    return np.where(x32 >= 10, x32.astype(np.float64), y)


def gelu_erf(x):
    """The exact GELU, 0.5 x (1 + erf(x / sqrt(2))) (transformers' "gelu")."""
    erf = np.frompyfunc(math.erf, 1, 1)
    return 0.5 * x * (1.0 + erf(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64))


def expert_weights(router_logits, cfg):
    """[pos, n_experts] router weights: softmax over the experts, the n_experts_used most probable
    kept (ties to the lower index), renormalised to sum 1 when cfg.norm_topk; 0 elsewhere."""
    z = router_logits - router_logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    out = np.zeros_like(p)
    for t in range(p.shape[0]):
        top = np.argsort(-p[t], kind="stable")[:cfg.n_experts_used]
        out[t, top] = p[t, top] / (p[t, top].sum() if cfg.norm_topk else 1.0)
    return out


def silu(x):
    # x * sigmoid(x), written with tanh so that large |x| neither overflows nor warns.
    return 0.5 * x * (1.0 + np.tanh(0.5 * x))


def layer_norm(x, w, b, eps):
    """(scale [pos,1], normalized*w + b). scale = sqrt(biased variance + eps)."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    scale = np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)
    return scale, xc / scale * w + b


def rms_norm(x, w, eps):
    """(scale [pos,1], x/scale*w). scale = sqrt(mean(x^2) + eps)."""
    scale = np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    return scale, x / scale * w


def rope_rotate_half(x, inv_freq, pos_divisor=1.0, attention_factor=1.0):
    """Rotary embedding of x [pos, heads, d_head] in rotate_half layout over its first
    rot = 2 len(inv_freq) features (the rest pass unchanged: partial rotation): feature i pairs with
    i + rot/2 and both turn by (pos / pos_divisor) * inv_freq[i] (model.rope_frequencies:
    base^(-2i/rot) without scaling); cos and sin are multiplied by attention_factor (YaRN, LongRoPE)."""
    rot = 2 * len(inv_freq)
    if rot < x.shape[-1]:
        return np.concatenate([rope_rotate_half(x[..., :rot], inv_freq, pos_divisor, attention_factor),
                               x[..., rot:]], axis=-1)
    n_pos, _, dh = x.shape
    half = dh // 2
    ang = (np.arange(n_pos, dtype=np.float64) / pos_divisor)[:, None] * inv_freq[None, :]  # [pos, half]
    cos = np.concatenate([np.cos(ang), np.cos(ang)], axis=-1)[:, None, :] * attention_factor
    sin = np.concatenate([np.sin(ang), np.sin(ang)], axis=-1)[:, None, :] * attention_factor
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def forward(model, ids, ggml_gelu=False, edit=None):
    """Run `ids` through `model`; returns an ordered {hook name: float64 array} (see README).

    edit: optional callable edit(hook_name, value, hooks) -> array or None, called for the three
    hooks whose values the pass adds to the residual stream or multiplies into it:
    `blocks.L.hook_attn_out`, `blocks.L.mlp.hook_post` and `blocks.L.hook_mlp_out`, and for the
    points activation patching replaces (patching.py): `blocks.L.hook_resid_pre`,
    `blocks.L.attn.hook_z`, `blocks.L.hook_resid_mid` and `blocks.L.hook_resid_post`. A returned
    array replaces the value (and is what the rest of the pass uses); `hooks` holds everything
    recorded so far in this pass. Used for activation-level interventions (intervention.py)."""
    cfg = model.config
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    if n == 0:
        raise ValueError("need at least one token")
    if ids.min() < 0 or ids.max() >= cfg.vocab:
        raise ValueError(f"token id out of range [0, {cfg.vocab})")
    if cfg.is_gpt2 and n > cfg.n_ctx:
        raise ValueError(f"{n} tokens exceed the {cfg.n_ctx} learned positions")

    hooks = collections.OrderedDict()

    def edited(name, value):
        if edit is not None:
            new = edit(name, value, hooks)
            if new is not None:
                value = np.asarray(new, dtype=np.float64)
        return value

    f = model.f64
    gpt2, ln = cfg.is_gpt2, cfg.layer_norm
    eps = cfg.norm_eps

    def norm(x, prefix):
        w = f(prefix + ".w")
        scale, out = layer_norm(x, w, f(prefix + ".b"), eps) if ln else rms_norm(x, w, eps)
        return scale, out

    x = np.asarray(model.get("tok_embed")[ids], dtype=np.float64) * cfg.embedding_scale
    hooks["hook_embed"] = x
    if gpt2:
        pe = np.asarray(model.get("pos_embed")[:n], dtype=np.float64)
        hooks["hook_pos_embed"] = pe
        x = x + pe

    H, Hkv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    group = H // Hkv
    causal = np.triu(np.ones((n, n), dtype=bool), k=1)  # True where the key is in the future

    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}"
        x = edited(f"{p}.hook_resid_pre", x)
        hooks[f"{p}.hook_resid_pre"] = x

        if cfg.pre_norm:
            scale, a = norm(x, f"{p}.ln1")
            hooks[f"{p}.ln1.hook_scale"] = scale
            hooks[f"{p}.ln1.hook_normalized"] = a
        else:  # OLMo 2: the attention reads the stream itself
            a = x

        qkv = {}
        for part, heads in (("q", H), ("k", Hkv), ("v", Hkv)):
            t = a @ f(f"{p}.attn.{part}.w").T
            if cfg.qkv_bias:
                t = t + f(f"{p}.attn.{part}.b")
            if cfg.qk_norm_full and part in ("q", "k"):  # OLMo 2: over the whole projection
                t = rms_norm(t, f(f"{p}.attn.{part}_norm.w"), eps)[1]
            qkv[part] = t.reshape(n, heads, dh)
            if cfg.qk_norm and part in ("q", "k"):  # Qwen3: RMSNorm of each head over d_head
                qkv[part] = rms_norm(qkv[part], f(f"{p}.attn.{part}_norm.w"), eps)[1]
            hooks[f"{p}.attn.hook_{part}"] = qkv[part]
        q, k, v = qkv["q"], qkv["k"], qkv["v"]
        if cfg.rotary:
            # Gemma 3's local layers: their own base and no scaling.
            freqs = rope_frequencies(dataclasses.replace(cfg, rope_base=cfg.rope_base_local, rope_scaling=None)) \
                if cfg.is_local(layer) else rope_frequencies(cfg)
            q = rope_rotate_half(q, *freqs)
            k = rope_rotate_half(k, *freqs)
            hooks[f"{p}.attn.hook_rot_q"] = q
            hooks[f"{p}.attn.hook_rot_k"] = k

        # Query head h reads KV head h // group.
        k_full = np.repeat(k, group, axis=1)
        v_full = np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k_full) / np.sqrt(cfg.attn_scalar or dh)
        if cfg.attn_softcap:  # Gemma 2: capped before the mask
            scores = cfg.attn_softcap * np.tanh(scores / cfg.attn_softcap)
        masked = causal
        if cfg.window(layer):  # local layers: key j visible from query i iff i - window < j <= i
            qi, kj = np.arange(n)[:, None], np.arange(n)[None, :]
            masked = causal | (qi - kj >= cfg.window(layer))
        scores = np.where(masked[None], -np.inf, scores)
        hooks[f"{p}.attn.hook_attn_scores"] = scores
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        pattern = e / e.sum(axis=-1, keepdims=True)
        hooks[f"{p}.attn.hook_pattern"] = pattern
        z = np.einsum("hqk,khd->qhd", pattern, v_full)
        z = edited(f"{p}.attn.hook_z", z)
        hooks[f"{p}.attn.hook_z"] = z
        attn_out = z.reshape(n, H * dh) @ f(f"{p}.attn.o.w").T
        if cfg.o_bias:
            attn_out = attn_out + f(f"{p}.attn.o.b")
        if cfg.post_norm:  # OLMo 2: the output normalised before it joins the stream
            scale, attn_out = rms_norm(attn_out, f(f"{p}.post_attn_norm.w"), eps)
            hooks[f"{p}.ln1_post.hook_scale"] = scale
        attn_out = edited(f"{p}.hook_attn_out", attn_out)
        hooks[f"{p}.hook_attn_out"] = attn_out
        x = x + attn_out
        x = edited(f"{p}.hook_resid_mid", x)
        hooks[f"{p}.hook_resid_mid"] = x

        # GPT-NeoX's parallel residual: the MLP reads the block input, not x + attention.
        if cfg.pre_norm:
            scale, b = norm(hooks[f"{p}.hook_resid_pre"] if cfg.parallel_residual else x, f"{p}.ln2")
            hooks[f"{p}.ln2.hook_scale"] = scale
            hooks[f"{p}.ln2.hook_normalized"] = b
        else:
            b = x
        if ln:
            pre = b @ f(f"{p}.mlp.up.w").T + f(f"{p}.mlp.up.b")
            hooks[f"{p}.mlp.hook_pre"] = pre
            if cfg.act == "gelu":
                post = gelu_erf(pre)
            else:
                post = gelu_ggml(pre) if ggml_gelu else gelu_new(pre)
        else:
            pre = b @ f(f"{p}.mlp.gate.w").T
            lin = b @ f(f"{p}.mlp.up.w").T
            hooks[f"{p}.mlp.hook_pre"] = pre
            hooks[f"{p}.mlp.hook_pre_linear"] = lin
            act = silu if cfg.arch not in GEMMA_FAMILY else (gelu_ggml if ggml_gelu else gelu_new)  # GeGLU
            post = act(pre) * lin
            if cfg.n_experts:
                scales = [np.repeat(expert_weights(b @ f(f"{p}.mlp.router.w").T, cfg), cfg.d_expert, axis=1)]
                if cfg.d_shared:  # the shared expert, gated by sigmoid(x . g)
                    gate = 1.0 / (1.0 + np.exp(-(b @ f(f"{p}.mlp.shared_gate.w"))))
                    scales.append(np.repeat(gate[:, None], cfg.d_shared, axis=1))
                post = post * np.concatenate(scales, axis=1)
        post = edited(f"{p}.mlp.hook_post", post)
        hooks[f"{p}.mlp.hook_post"] = post
        mlp_out = post @ f(f"{p}.mlp.down.w").T
        if ln:
            mlp_out = mlp_out + f(f"{p}.mlp.down.b")
        if cfg.post_norm:
            scale, mlp_out = rms_norm(mlp_out, f(f"{p}.post_ffn_norm.w"), eps)
            hooks[f"{p}.ln2_post.hook_scale"] = scale
        mlp_out = edited(f"{p}.hook_mlp_out", mlp_out)
        hooks[f"{p}.hook_mlp_out"] = mlp_out
        x = x + mlp_out
        x = edited(f"{p}.hook_resid_post", x)
        hooks[f"{p}.hook_resid_post"] = x

    scale, xf = norm(x, "ln_final")
    hooks["ln_final.hook_scale"] = scale
    hooks["ln_final.hook_normalized"] = xf
    logits = xf @ model.unembed().T
    if cfg.final_softcap:  # Gemma 2
        logits = cfg.final_softcap * np.tanh(logits / cfg.final_softcap)
    hooks["logits"] = logits
    return hooks
