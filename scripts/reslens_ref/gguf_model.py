"""GGUF <-> canonical model: tensor names, Q/K row order, hyper-parameter keys.

Llama GGUF files store Q/K rows in llama.cpp's interleaved-pair order (see model.py) and are
brought back to rotate_half order here; Qwen2, Qwen3 and Phi-3 GGUF files are not permuted
(llama.cpp runs them with NeoX-style RoPE, i.e. rotate_half already). Phi-3 files fuse Q/K/V into
attn_qkv and gate/up into ffn_up. GPT-2 GGUF files fuse Q, K, V into attn_qkv,
stored as [3*d, d] (the transpose of the Hugging Face Conv1D weight).
"""

import numpy as np

from . import ggml_types
from .gguf import BOOL, FLOAT32, GGUFFile, STRING, UINT32
from .gguf_writer import GGUFWriter
from .model import (Config, Model, llama3_freq_factors, permute_gguf_to_hf, permute_hf_to_gguf, rope_attention_factor,
                    tensor_shapes)

# canonical suffix (after "blocks.L.") -> GGUF suffix (after "blk.L."), for tensors that are
# one-to-one in every architecture.
_BLOCK_NAMES = {
    "ln1.w": "attn_norm.weight", "ln1.b": "attn_norm.bias",
    "attn.q.w": "attn_q.weight", "attn.q.b": "attn_q.bias",
    "attn.k.w": "attn_k.weight", "attn.k.b": "attn_k.bias",
    "attn.v.w": "attn_v.weight", "attn.v.b": "attn_v.bias",
    "attn.o.w": "attn_output.weight", "attn.o.b": "attn_output.bias",
    "attn.q_norm.w": "attn_q_norm.weight", "attn.k_norm.w": "attn_k_norm.weight",
    "post_attn_norm.w": "post_attention_norm.weight", "post_ffn_norm.w": "post_ffw_norm.weight",
    "ln2.w": "ffn_norm.weight", "ln2.b": "ffn_norm.bias",
    "mlp.gate.w": "ffn_gate.weight",
    "mlp.up.w": "ffn_up.weight", "mlp.up.b": "ffn_up.bias",
    "mlp.down.w": "ffn_down.weight", "mlp.down.b": "ffn_down.bias",
}
_GLOBAL_NAMES = {
    "tok_embed": "token_embd.weight", "pos_embed": "position_embd.weight",
    "ln_final.w": "output_norm.weight", "ln_final.b": "output_norm.bias",
    "unembed.w": "output.weight",
}
_QKV = ("q", "k", "v")


# Phi-3 GGUF files fuse Q, K, V into attn_qkv and gate, up into ffn_up (llama.cpp's layout):
# canonical suffix -> (fused GGUF suffix, first row, row count) via _phi3_rows.
_PHI3_FUSED = ("attn.q.w", "attn.k.w", "attn.v.w", "mlp.gate.w", "mlp.up.w")


def _phi3_rows(cfg, rest):
    q, kv = cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head
    return {"attn.q.w": ("attn_qkv.weight", 0, q), "attn.k.w": ("attn_qkv.weight", q, kv),
            "attn.v.w": ("attn_qkv.weight", q + kv, kv), "mlp.gate.w": ("ffn_up.weight", 0, cfg.d_mlp),
            "mlp.up.w": ("ffn_up.weight", cfg.d_mlp, cfg.d_mlp)}[rest]


# Mixture-of-experts GGUF tensors (stacked over experts) for the canonical concatenated ones.
_EXPERT_NAMES = {"mlp.router.w": "ffn_gate_inp.weight", "mlp.gate.w": "ffn_gate_exps.weight",
                 "mlp.up.w": "ffn_up_exps.weight", "mlp.down.w": "ffn_down_exps.weight"}


_SHARED_NAMES = {"mlp.gate.w": "ffn_gate_shexp.weight", "mlp.up.w": "ffn_up_shexp.weight",
                 "mlp.down.w": "ffn_down_shexp.weight"}


def _experts_to_canonical(cfg, rest, t):
    """Stacked [E, d_expert, d] (gate, up) or [E, d, d_expert] (down) -> canonical concatenation."""
    if rest == "mlp.router.w":
        return t
    routed = cfg.d_mlp - cfg.d_shared
    if rest == "mlp.down.w":
        return np.ascontiguousarray(t.transpose(1, 0, 2).reshape(cfg.d_model, routed))
    return t.reshape(routed, cfg.d_model)


def _experts_from_canonical(cfg, rest, t):
    E, F, d = cfg.n_experts, cfg.d_expert, cfg.d_model
    if rest == "mlp.router.w":
        return t
    if rest == "mlp.down.w":
        return np.ascontiguousarray(t[:, :E * F].reshape(d, E, F).transpose(1, 0, 2))
    return t[:E * F].reshape(E, F, d)


def _gguf_name(canonical):
    if canonical.startswith("blocks."):
        _, layer, rest = canonical.split(".", 2)
        return f"blk.{layer}.{_BLOCK_NAMES[rest]}"
    return _GLOBAL_NAMES[canonical]


def _needs_permute(cfg):
    # Only the plain Llama arch is stored in llama.cpp's interleaved ("NORM") RoPE layout.
    return cfg.arch == "llama"


def _qk_heads(cfg, canonical):
    """Number of heads whose rows are permuted, for a Q or K tensor (None for anything else)."""
    if ".attn.q." in canonical:
        return cfg.n_heads
    if ".attn.k." in canonical:
        return cfg.n_kv_heads
    return None


def config_from_gguf(gf):
    arch = gf.get("general.architecture")
    if arch not in ("llama", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "phi3", "gemma", "gemma2", "gemma3", "olmo2",
                    "gpt2", "gptneox"):
        raise ValueError(f"{gf.path}: GGUF architecture {arch!r} not supported")

    def key(k, default=None):
        v = gf.get(f"{arch}.{k}", default)
        if v is None:
            raise ValueError(f"{gf.path}: missing {arch}.{k}")
        if hasattr(v, "__len__") and not isinstance(v, str):
            raise ValueError(f"{gf.path}: per-layer {arch}.{k} not supported")
        return v

    d, n_heads = int(key("embedding_length")), int(key("attention.head_count"))
    d_head = int(key("attention.key_length", d // n_heads))
    if int(key("attention.value_length", d_head)) != d_head:
        raise ValueError(f"{gf.path}: key and value head sizes differ")
    # llama.cpp: the scaling type defaults to "linear", whose factor (0 = none) divides positions.
    scaling = gf.get(f"{arch}.rope.scaling.type", "linear")
    factor = float(gf.get(f"{arch}.rope.scaling.factor", gf.get(f"{arch}.rope.scale_linear", 0.0)))
    if scaling not in ("none", "linear", "yarn"):
        raise ValueError(f"{gf.path}: RoPE scaling {scaling!r} not supported")
    attn_factor = float(gf.get(f"{arch}.rope.scaling.attn_factor", 1.0))
    if attn_factor != 1.0 and arch != "phi3":
        raise ValueError(f"{gf.path}: rope.scaling.attn_factor not supported")
    rope_scaling = None
    if scaling == "linear" and factor not in (0.0, 1.0):
        rope_scaling = {"type": "linear", "factor": factor}
    # llama.cpp measures YaRN's correction range and picks LongRoPE's factors in the original
    # context (default: the context length)
    original = int(gf.get(f"{arch}.rope.scaling.original_context_length", key("context_length")))
    if scaling == "yarn":
        defaults = {"yarn_ext_factor": 1.0, "yarn_attn_factor": 1.0, "yarn_beta_fast": 32.0, "yarn_beta_slow": 1.0,
                    "yarn_log_multiplier": 0.0}
        for k, v in defaults.items():
            if float(gf.get(f"{arch}.rope.scaling.{k}", v)) != v:
                raise ValueError(f"{gf.path}: rope.scaling.{k} other than llama.cpp's {v} not supported")
        rope_scaling = {"type": "yarn", "factor": factor, "original_max_position_embeddings": original}
    if "rope_factors_long.weight" in gf.tensors:
        if arch != "phi3" or rope_scaling is not None:
            raise ValueError(f"{gf.path}: LongRoPE factors only on phi3 without other scaling")
        rope_scaling = {"type": "longrope", "original_max_position_embeddings": original,
                        "attention_factor": attn_factor,
                        "long_factor": [float(x) for x in gf.tensor("rope_factors_long.weight")],
                        "short_factor": [float(x) for x in gf.tensor("rope_factors_short.weight")]}
    elif attn_factor != 1.0:
        raise ValueError(f"{gf.path}: rope.scaling.attn_factor without LongRoPE factors not supported")
    if "rope_freqs.weight" in gf.tensors:
        if arch != "llama" or rope_scaling is not None:
            raise ValueError(f"{gf.path}: rope_freqs.weight only with llama and no linear scaling")
        rope_scaling = {"type": "freq_factors",
                        "factors": [float(x) for x in gf.tensor("rope_freqs.weight")]}
    rot_dim = int(key("rope.dimension_count", d_head)) if arch != "gpt2" else d_head
    if arch == "llama" and rot_dim != d_head:
        raise ValueError(f"{gf.path}: llama.cpp requires full rotation for llama")
    names = set(gf.tensors)
    ln = arch in ("gpt2", "gptneox")
    n_experts = int(gf.get(f"{arch}.expert_count", 0))
    d_expert = int(key("expert_feed_forward_length")) if arch in ("qwen3moe", "qwen2moe") else \
        int(key("feed_forward_length"))
    d_shared = int(key("expert_shared_feed_forward_length")) if arch == "qwen2moe" else 0
    if arch == "gemma2":  # llama.cpp's defaults (llama_model_gemma2::load_arch_hparams, llama_hparams)
        return _gemma2_config(gf, key, d, n_heads, d_head, rope_scaling, names)
    cfg = Config(
        arch=arch,
        n_layers=int(key("block_count")),
        d_model=d,
        n_heads=n_heads,
        n_kv_heads=int(key("attention.head_count_kv", n_heads)),
        d_head=d_head,
        d_mlp=n_experts * d_expert + d_shared if n_experts else int(key("feed_forward_length")),
        d_shared=d_shared, norm_topk=arch != "qwen2moe",
        n_experts=n_experts,
        n_experts_used=int(key("expert_used_count")) if n_experts else 0,
        vocab=gf.tensors["token_embd.weight"].shape[0],
        n_ctx=int(key("context_length")),
        norm_eps=float(key("attention.layer_norm_epsilon" if ln else
                           "attention.layer_norm_rms_epsilon")),
        parallel_residual=arch == "gptneox" and bool(key("use_parallel_residual")),
        rope_base=float(key("rope.freq_base", 10000.0)),
        rope_scaling=rope_scaling,
        rot_dim=None if rot_dim == d_head else rot_dim,
        sliding_window=int(gf.get(f"{arch}.attention.sliding_window", 0)),
        sliding_period=int(gf.get(f"{arch}.attention.sliding_window_pattern", 6))
        if arch == "gemma3" and gf.get(f"{arch}.attention.sliding_window", 0) else 0,
        rope_base_local=float(gf.get(f"{arch}.rope.freq_base_swa", 10000.0)),
        tied=arch == "gemma" or "output.weight" not in names,
        qkv_bias=ln or "blk.0.attn_q.bias" in names or "blk.0.attn_qkv.bias" in names,
        o_bias=ln or "blk.0.attn_output.bias" in names,
        name=gf.get("general.name", ""),
    )
    return cfg


def _gemma2_config(gf, key, d, n_heads, d_head, rope_scaling, names):
    """Gemma 2: softcaps (default 50 and 30), a window (default 4096) on all but the last layer of
    each sliding_window_pattern (default 2), local RoPE base rope.freq_base_swa (default the global
    one), scores scaled by d_head^-1/2 (d_model / n_heads for the 46-layer 27B model)."""
    if rope_scaling is not None:
        raise ValueError(f"{gf.path}: RoPE scaling on gemma2 not supported")
    n_layers = int(key("block_count"))
    base = float(key("rope.freq_base", 10000.0))
    caps = [float(key(k, v)) for k, v in (("attn_logit_softcapping", 50.0), ("final_logit_softcapping", 30.0))]
    if not all(c > 0 for c in caps):
        raise ValueError(f"{gf.path}: softcaps must be positive, got {caps}")
    if "output.weight" in names:
        raise ValueError(f"{gf.path}: gemma2 ties its unembedding (output.weight is not used by llama.cpp)")
    return Config(
        arch="gemma2", n_layers=n_layers, d_model=d, n_heads=n_heads,
        n_kv_heads=int(key("attention.head_count_kv", n_heads)), d_head=d_head,
        d_mlp=int(key("feed_forward_length")), vocab=gf.tensors["token_embd.weight"].shape[0],
        n_ctx=int(key("context_length")), norm_eps=float(key("attention.layer_norm_rms_epsilon")),
        rope_base=base, rot_dim=None if int(key("rope.dimension_count", d_head)) == d_head
        else int(key("rope.dimension_count")),
        sliding_window=int(key("attention.sliding_window", 4096)),
        sliding_period=int(key("attention.sliding_window_pattern", 2)),
        rope_base_local=float(key("rope.freq_base_swa", base)),
        attn_scalar=float(d // n_heads) if n_layers == 46 and d // n_heads != d_head else None,
        attn_softcap=caps[0], final_softcap=caps[1], tied=True,
        qkv_bias="blk.0.attn_q.bias" in names, o_bias=False, name=gf.get("general.name", ""))


def load(path):
    gf = GGUFFile(path)
    cfg = config_from_gguf(gf)
    loaders = {}
    used = set()

    def direct(gname, transform=None):
        used.add(gname)
        if transform is None:
            return lambda: gf.tensor(gname)
        return lambda: transform(gf.tensor(gname))

    for canonical in tensor_shapes(cfg):
        if cfg.layer_norm and any(f".attn.{p}." in canonical for p in _QKV):
            # Slice Q, K or V out of the fused attn_qkv tensor.
            layer, part, wb = canonical.split(".")[1], canonical.split(".")[3], canonical[-1]
            gname = f"blk.{layer}.attn_qkv.{'weight' if wb == 'w' else 'bias'}"
            i, d = _QKV.index(part), cfg.d_model
            loaders[canonical] = direct(gname, lambda t, i=i, d=d: t[i * d:(i + 1) * d])
            continue
        if cfg.arch == "phi3" and canonical.split(".", 2)[-1] in _PHI3_FUSED:
            # Rows of the fused attn_qkv ([q; k; v]) or ffn_up ([gate; up]) tensor.
            layer, rest = canonical.split(".")[1], canonical.split(".", 2)[-1]
            fused, start, count = _phi3_rows(cfg, rest)
            gname = f"blk.{layer}.{fused}"
            if fused == "attn_qkv.weight" and gname not in gf.tensors:
                gname = _gguf_name(canonical)  # llama.cpp also takes separate q/k/v
                loaders[canonical] = direct(gname)
                continue
            loaders[canonical] = direct(gname, lambda t, a=start, n=count: t[a:a + n])
            continue
        if cfg.n_experts and canonical.split(".", 2)[-1] in _EXPERT_NAMES:
            layer, rest = canonical.split(".")[1], canonical.split(".", 2)[-1]
            gname = f"blk.{layer}.{_EXPERT_NAMES[rest]}"
            if cfg.d_shared and rest != "mlp.router.w":  # the shared expert's tensor follows the routed ones
                sname = f"blk.{layer}.{_SHARED_NAMES[rest]}"
                used.add(sname)
                routed = direct(gname, lambda t, r=rest: _experts_to_canonical(cfg, r, t))
                loaders[canonical] = (lambda a=routed, s=sname, r=rest: np.concatenate(
                    [a(), gf.tensor(s)], axis=1 if r == "mlp.down.w" else 0))
                continue
            loaders[canonical] = direct(gname, lambda t, r=rest: _experts_to_canonical(cfg, r, t))
            continue
        if canonical.endswith(".mlp.shared_gate.w"):
            loaders[canonical] = direct(f"blk.{canonical.split('.')[1]}.ffn_gate_inp_shexp.weight")
            continue
        gname = _gguf_name(canonical)
        if gname not in gf.tensors:
            raise ValueError(f"{path}: missing tensor {gname}")
        heads = _qk_heads(cfg, canonical)
        if heads and _needs_permute(cfg):
            loaders[canonical] = direct(gname, lambda t, h=heads: permute_gguf_to_hf(t, h))
        else:
            loaders[canonical] = direct(gname)
    if cfg.rope_scaling and cfg.rope_scaling["type"] == "freq_factors":
        used.add("rope_freqs.weight")
    if cfg.rope_scaling and cfg.rope_scaling["type"] == "longrope":
        used.update(("rope_factors_long.weight", "rope_factors_short.weight"))
    unknown = sorted(set(gf.tensors) - used)
    if unknown:
        raise ValueError(f"{path}: tensors not understood: {unknown[:5]}")
    return Model(cfg, loaders, path, "gguf", extra={"gguf": gf})


# -- writing --------------------------------------------------------------------------------------

def tensor_type(gguf_name, shape, wanted):
    """Storage type for one tensor when the file's type is `wanted`: 1-D tensors (norms, biases)
    and position embeddings stay F32, as llama.cpp's converters keep them; rows that do not fill
    whole blocks fall back (ggml_types.storage_type: K types to Q8_0, IQ4_XS to IQ4_NL, else F16)."""
    if len(shape) < 2 or gguf_name == "position_embd.weight":
        return ggml_types.F32
    return ggml_types.storage_type(wanted, shape[-1])


def gguf_tensors(model):
    """[(gguf name, shape, producer)] for a canonical model, in llama.cpp's usual order."""
    cfg = model.config
    out = []
    shapes = model.shapes
    permute = _needs_permute(cfg)
    for canonical, shape in shapes.items():
        if cfg.layer_norm and (".attn.k." in canonical or ".attn.v." in canonical):
            continue  # written with Q as one fused tensor
        if cfg.layer_norm and ".attn.q." in canonical:
            layer, wb = canonical.split(".")[1], canonical[-1]
            parts = [canonical.replace(".q.", f".{p}.") for p in _QKV]
            gname = f"blk.{layer}.attn_qkv.{'weight' if wb == 'w' else 'bias'}"
            fused = (3 * shape[0],) + shape[1:]
            out.append((gname, fused, lambda parts=parts: np.concatenate([model.get(p) for p in parts])))
            continue
        if cfg.arch == "phi3" and canonical.split(".", 2)[-1] in _PHI3_FUSED:
            layer, rest = canonical.split(".")[1], canonical.split(".", 2)[-1]
            if rest in ("attn.q.w", "mlp.gate.w"):  # written once, with its partners
                parts = ([f"blocks.{layer}.attn.{p}.w" for p in _QKV] if rest == "attn.q.w"
                         else [f"blocks.{layer}.mlp.gate.w", f"blocks.{layer}.mlp.up.w"])
                rows = sum(model.shapes[p][0] for p in parts)
                out.append((f"blk.{layer}.{_phi3_rows(cfg, rest)[0]}", (rows, shape[1]),
                            lambda parts=parts: np.concatenate([model.get(p) for p in parts])))
            continue
        if cfg.n_experts and canonical.split(".", 2)[-1] in _EXPERT_NAMES:
            layer, rest = canonical.split(".")[1], canonical.split(".", 2)[-1]
            E, F, d = cfg.n_experts, cfg.d_expert, cfg.d_model
            stacked = {"mlp.router.w": (E, d), "mlp.gate.w": (E, F, d), "mlp.up.w": (E, F, d),
                       "mlp.down.w": (E, d, F)}[rest]
            out.append((f"blk.{layer}.{_EXPERT_NAMES[rest]}", stacked,
                        lambda c=canonical, r=rest: _experts_from_canonical(cfg, r, model.get(c))))
            if cfg.d_shared and rest != "mlp.router.w":
                S, EF = cfg.d_shared, E * F
                shape = (d, S) if rest == "mlp.down.w" else (S, d)
                out.append((f"blk.{layer}.{_SHARED_NAMES[rest]}", shape, lambda c=canonical, r=rest: np.ascontiguousarray(
                    model.get(c)[:, EF:] if r == "mlp.down.w" else model.get(c)[EF:])))
            continue
        if canonical.endswith(".mlp.shared_gate.w"):
            out.append((f"blk.{canonical.split('.')[1]}.ffn_gate_inp_shexp.weight", shape,
                        lambda c=canonical: model.get(c)))
            continue
        heads = _qk_heads(cfg, canonical)
        if heads and permute:
            out.append((_gguf_name(canonical), shape,
                        lambda c=canonical, h=heads: permute_hf_to_gguf(model.get(c), h)))
        else:
            out.append((_gguf_name(canonical), shape, lambda c=canonical: model.get(c)))
    factors = rope_freq_factors(cfg)
    if factors is not None:
        out.append(("rope_freqs.weight", (len(factors),), lambda f=factors: f))
    rs = cfg.rope_scaling
    if rs and rs["type"] == "longrope":  # llama.cpp's converter: Phi-3's two factor sets as tensors
        for which in ("long", "short"):
            f = np.asarray(rs[f"{which}_factor"], dtype=np.float32)
            out.append((f"rope_factors_{which}.weight", (len(f),), lambda f=f: f))
    return out


def rope_freq_factors(cfg):
    """The rope_freqs.weight tensor (float32) a config's RoPE scaling is written as, or None:
    llama.cpp's converter writes HF "llama3" scaling as these per-pair frequency divisors."""
    rs = cfg.rope_scaling
    if not rs or rs["type"] not in ("llama3", "freq_factors"):
        return None
    if cfg.arch != "llama":
        raise ValueError("llama.cpp applies rope_freqs.weight to the llama architecture only")
    if rs["type"] == "freq_factors":
        return np.asarray(rs["factors"], dtype=np.float32)
    return llama3_freq_factors(cfg.rope_base, cfg.d_head, rs["factor"], rs["low_freq_factor"],
                               rs["high_freq_factor"],
                               rs["original_max_position_embeddings"]).astype(np.float32)


def hparam_fields(cfg, file_type, name=None):
    """The general.* and architecture keys llama.cpp needs for this config, in writing order."""
    a = cfg.arch
    f = [("general.architecture", STRING, a),
         ("general.name", STRING, name if name is not None else (cfg.name or a)),
         ("general.file_type", UINT32, ggml_types.FILE_TYPE[file_type]),
         (f"{a}.context_length", UINT32, cfg.n_ctx),
         (f"{a}.embedding_length", UINT32, cfg.d_model),
         (f"{a}.block_count", UINT32, cfg.n_layers),
         (f"{a}.feed_forward_length", UINT32, cfg.d_expert),
         (f"{a}.attention.head_count", UINT32, cfg.n_heads)]
    if cfg.is_gpt2:
        f.append((f"{a}.attention.layer_norm_epsilon", FLOAT32, cfg.norm_eps))
    elif cfg.arch == "gptneox":
        f += [(f"{a}.attention.layer_norm_epsilon", FLOAT32, cfg.norm_eps),
              (f"{a}.rope.freq_base", FLOAT32, cfg.rope_base),
              (f"{a}.rope.dimension_count", UINT32, cfg.rotary_dims),
              (f"{a}.use_parallel_residual", BOOL, bool(cfg.parallel_residual))]
    else:
        f += [(f"{a}.attention.head_count_kv", UINT32, cfg.n_kv_heads),
              (f"{a}.attention.layer_norm_rms_epsilon", FLOAT32, cfg.norm_eps),
              (f"{a}.rope.freq_base", FLOAT32, cfg.rope_base),
              (f"{a}.rope.dimension_count", UINT32, cfg.rotary_dims)]
    if cfg.n_experts:
        f += [(f"{a}.expert_count", UINT32, cfg.n_experts), (f"{a}.expert_used_count", UINT32, cfg.n_experts_used)]
        if a in ("qwen3moe", "qwen2moe"):
            f.append((f"{a}.expert_feed_forward_length", UINT32, cfg.d_expert))
        if cfg.d_shared:
            f.append((f"{a}.expert_shared_feed_forward_length", UINT32, cfg.d_shared))
    if a == "gemma2":  # as llama.cpp's converter writes them (the layer pattern and local base: defaults)
        f += [(f"{a}.attention.sliding_window", UINT32, cfg.sliding_window),
              (f"{a}.attn_logit_softcapping", FLOAT32, cfg.attn_softcap),
              (f"{a}.final_logit_softcapping", FLOAT32, cfg.final_softcap)]
    elif cfg.sliding_period:
        f += [(f"{a}.attention.sliding_window", UINT32, cfg.sliding_window),
              (f"{a}.attention.sliding_window_pattern", UINT32, cfg.sliding_period),
              (f"{a}.rope.freq_base_swa", FLOAT32, cfg.rope_base_local)]
    rs = cfg.rope_scaling
    if rs and rs["type"] == "linear":
        f += [(f"{a}.rope.scaling.type", STRING, "linear"),
              (f"{a}.rope.scaling.factor", FLOAT32, float(rs["factor"]))]
    if rs and rs["type"] == "yarn":  # as llama.cpp's converter writes HF yarn
        if any(k in rs for k in ("beta_fast", "beta_slow", "attention_factor")):
            raise ValueError("llama.cpp reads no YaRN beta or attention factor for these architectures")
        f += [(f"{a}.rope.scaling.type", STRING, "yarn"),
              (f"{a}.rope.scaling.factor", FLOAT32, float(rs["factor"])),
              (f"{a}.rope.scaling.original_context_length", UINT32, int(rs["original_max_position_embeddings"]))]
    if rs and rs["type"] == "longrope":  # as llama.cpp's Phi-3 converter writes it (no type key)
        if a != "phi3":
            raise ValueError("llama.cpp reads LongRoPE factors for phi3 only")
        f += [(f"{a}.rope.scaling.original_context_length", UINT32, int(rs["original_max_position_embeddings"])),
              (f"{a}.rope.scaling.attn_factor", FLOAT32, rope_attention_factor(cfg))]
    if cfg.d_head * cfg.n_heads != cfg.d_model:
        f += [(f"{a}.attention.key_length", UINT32, cfg.d_head),
              (f"{a}.attention.value_length", UINT32, cfg.d_head)]
    f.append((f"{a}.vocab_size", UINT32, cfg.vocab))
    return f


def tokenizer_fields(src):
    """All tokenizer.* metadata of a GGUF file (path or GGUFFile), as {key: Value}."""
    gf = src if isinstance(src, GGUFFile) else GGUFFile(src)
    return {k: v for k, v in gf.fields.items() if k.startswith("tokenizer.")}


def write(model, path, ftype=ggml_types.F32, tokenizer=None, name=None):
    """Write a canonical model as GGUF of file type `ftype` (a ggml type for the 2-D weights).

    tokenizer: {key: Value} of tokenizer.* metadata to include (see tokenizer_fields)."""
    cfg = model.config
    w = GGUFWriter(path)
    for key, t, v in hparam_fields(cfg, ftype, name):
        w.add(key, t, v)
    for key, v in (tokenizer or {}).items():
        w.add_value(key, v)
    for gname, shape, producer in gguf_tensors(model):
        w.add_tensor(gname, shape, tensor_type(gname, shape, ftype), producer)
    w.write()
