"""Hugging Face model directories <-> canonical model.

Supported: LlamaForCausalLM (also MistralForCausalLM without sliding windows), Qwen2ForCausalLM
(Llama plus q/k/v biases) and GPT2LMHeadModel. Weights come from `model.safetensors` or from
shards listed in `model.safetensors.index.json`, in F32, F16 or BF16.

Llama-family checkpoints already use the rotate_half Q/K layout, so their matrices are used as
stored. GPT-2 uses Conv1D modules whose weights are [in, out] (y = x W + b); they are transposed
to the canonical [out, in], and the fused c_attn is split into Q, K and V.
"""

import json
import os

import numpy as np

from . import safetensors
from .model import Config, Model, is_norm_weight, tensor_shapes

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"

# Buffers some checkpoints carry that are not parameters (causal masks, RoPE frequencies).
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")

_LLAMA_BLOCK = {
    "ln1.w": "input_layernorm.weight",
    "attn.q.w": "self_attn.q_proj.weight", "attn.q.b": "self_attn.q_proj.bias",
    "attn.k.w": "self_attn.k_proj.weight", "attn.k.b": "self_attn.k_proj.bias",
    "attn.v.w": "self_attn.v_proj.weight", "attn.v.b": "self_attn.v_proj.bias",
    "attn.o.w": "self_attn.o_proj.weight", "attn.o.b": "self_attn.o_proj.bias",
    "attn.q_norm.w": "self_attn.q_norm.weight", "attn.k_norm.w": "self_attn.k_norm.weight",
    "post_attn_norm.w": "post_attention_layernorm.weight", "post_ffn_norm.w": "post_feedforward_layernorm.weight",
    "ln2.w": "post_attention_layernorm.weight",
    "mlp.gate.w": "mlp.gate_proj.weight", "mlp.up.w": "mlp.up_proj.weight",
    "mlp.down.w": "mlp.down_proj.weight",
}
def _llama_block_name(cfg, rest):
    """HF suffix of a canonical block tensor (Gemma 3 calls its MLP-input norm pre_feedforward_layernorm,
    its post_attention_layernorm being the attention output's norm)."""
    if cfg.arch in ("gemma2", "gemma3") and rest == "ln2.w":
        return "pre_feedforward_layernorm.weight"
    return _LLAMA_BLOCK[rest]


_LLAMA_GLOBAL = {"tok_embed": "model.embed_tokens.weight", "ln_final.w": "model.norm.weight",
                 "unembed.w": "lm_head.weight"}
# GPT-2: (HF suffix, transpose?) for the one-to-one tensors; c_attn is handled apart.
_GPT2_BLOCK = {
    "ln1.w": ("ln_1.weight", False), "ln1.b": ("ln_1.bias", False),
    "attn.o.w": ("attn.c_proj.weight", True), "attn.o.b": ("attn.c_proj.bias", False),
    "ln2.w": ("ln_2.weight", False), "ln2.b": ("ln_2.bias", False),
    "mlp.up.w": ("mlp.c_fc.weight", True), "mlp.up.b": ("mlp.c_fc.bias", False),
    "mlp.down.w": ("mlp.c_proj.weight", True), "mlp.down.b": ("mlp.c_proj.bias", False),
}
_GPT2_GLOBAL = {"tok_embed": "wte.weight", "pos_embed": "wpe.weight",
                "ln_final.w": "ln_f.weight", "ln_final.b": "ln_f.bias"}

ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama",
         "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3", "Phi3ForCausalLM": "phi3",
         "GemmaForCausalLM": "gemma", "GPTNeoXForCausalLM": "gptneox", "MixtralForCausalLM": "llama",
         "Qwen3MoeForCausalLM": "qwen3moe", "Olmo2ForCausalLM": "olmo2", "Gemma3ForCausalLM": "gemma3",
         "Qwen2MoeForCausalLM": "qwen2moe", "Gemma2ForCausalLM": "gemma2",
         "GPT2LMHeadModel": "gpt2"}
# Phi-3 fuses q/k/v into qkv_proj ([q; k; v] rows) and gate/up into gate_up_proj ([gate; up]).
_PHI3_FUSED = {"attn.q.w": ("self_attn.qkv_proj.weight", 0), "attn.k.w": ("self_attn.qkv_proj.weight", 1),
               "attn.v.w": ("self_attn.qkv_proj.weight", 2), "mlp.gate.w": ("mlp.gate_up_proj.weight", 0),
               "mlp.up.w": ("mlp.gate_up_proj.weight", 1)}


def _phi3_slice(cfg, rest):
    """(first row, row count) of a canonical tensor inside its Phi-3 fused tensor."""
    q, kv = cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head
    return {"attn.q.w": (0, q), "attn.k.w": (q, kv), "attn.v.w": (q + kv, kv),
            "mlp.gate.w": (0, cfg.d_mlp), "mlp.up.w": (cfg.d_mlp, cfg.d_mlp)}[rest]


def config_from_hf(c):
    archs = c.get("architectures") or []
    if len(archs) != 1 or archs[0] not in ARCHS:
        raise ValueError(f"unsupported architectures {archs}")
    arch = ARCHS[archs[0]]
    if arch == "gpt2":
        if c.get("activation_function", "gelu_new") != "gelu_new":
            raise ValueError(f"GPT-2 activation {c['activation_function']!r} not supported")
        d = c["n_embd"]
        return Config(arch="gpt2", n_layers=c["n_layer"], d_model=d, n_heads=c["n_head"],
                      n_kv_heads=c["n_head"], d_head=d // c["n_head"],
                      d_mlp=c.get("n_inner") or 4 * d, vocab=c["vocab_size"],
                      n_ctx=c.get("n_positions", c.get("n_ctx", 1024)),
                      norm_eps=float(c.get("layer_norm_epsilon", 1e-5)),
                      tied=c.get("tie_word_embeddings", True), qkv_bias=True, o_bias=True,
                      name=c.get("_name_or_path", ""))
    if arch == "gptneox":
        return _neox_config(c)
    rope_scaling = None
    if c.get("rope_scaling"):
        rs = dict(c["rope_scaling"])
        kind = rs.pop("rope_type", rs.pop("type", None))
        if kind == "linear":
            rope_scaling = {"type": "linear", "factor": float(rs.pop("factor"))}
        elif kind == "llama3":
            rope_scaling = {"type": "llama3"}
            for k in ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
                rope_scaling[k] = float(rs.pop(k))
        elif kind == "yarn":
            rope_scaling = {"type": "yarn", "factor": float(rs.pop("factor")),
                            "original_max_position_embeddings":
                                float(rs.pop("original_max_position_embeddings", c.get("max_position_embeddings", 2048)))}
            for k in ("beta_fast", "beta_slow", "attention_factor"):
                if k in rs:
                    rope_scaling[k] = float(rs.pop(k))
        elif kind in ("longrope", "su"):
            # Phi-3: the original context at the top level; the factor is then the ratio of the two.
            orig = c.get("original_max_position_embeddings", c.get("max_position_embeddings", 2048))
            rope_scaling = {"type": "longrope", "long_factor": [float(x) for x in rs.pop("long_factor")],
                            "short_factor": [float(x) for x in rs.pop("short_factor")],
                            "original_max_position_embeddings": int(orig)}
            if "attention_factor" in rs:
                rope_scaling["attention_factor"] = float(rs.pop("attention_factor"))
            if "original_max_position_embeddings" not in c:
                rope_scaling["factor"] = float(rs.pop("factor"))
            rs.pop("factor", None)
        elif kind != "default":
            raise ValueError(f"rope_scaling {c['rope_scaling']} not supported")
        if rs:
            raise ValueError(f"rope_scaling fields {sorted(rs)} not understood")
    if c.get("use_sliding_window"):
        raise ValueError("sliding-window attention not supported")
    if archs[0] in ("GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM"):
        if (c.get("hidden_activation") or c.get("hidden_act")) not in ("gelu_pytorch_tanh", "gelu_new"):
            raise ValueError("Gemma activations other than gelu_pytorch_tanh not supported")
    elif c.get("hidden_act", "silu") != "silu":
        raise ValueError(f"activation {c['hidden_act']!r} not supported")
    if c.get("mlp_bias"):
        raise ValueError("MLP biases not supported")
    d, h = c["hidden_size"], c["num_attention_heads"]
    attn_bias = bool(c.get("attention_bias", False))
    head_dim = c.get("head_dim") or d // h
    rot = int(head_dim * float(c.get("partial_rotary_factor", 1.0)))
    experts = {"MixtralForCausalLM": ("num_local_experts", "intermediate_size"),
               "Qwen3MoeForCausalLM": ("num_experts", "moe_intermediate_size"),
               "Qwen2MoeForCausalLM": ("num_experts", "moe_intermediate_size")}.get(archs[0])
    n_experts = int(c[experts[0]]) if experts else 0
    d_shared = int(c["shared_expert_intermediate_size"]) if archs[0] == "Qwen2MoeForCausalLM" else 0
    d_mlp = n_experts * int(c[experts[1]]) + d_shared if experts else c["intermediate_size"]
    if arch == "gemma2":
        return _gemma2_config(c, d, h, head_dim, rope_scaling)
    return Config(arch=arch, n_layers=c["num_hidden_layers"], d_model=d, n_heads=h,
                  n_kv_heads=c.get("num_key_value_heads") or h,
                  d_head=head_dim, d_mlp=d_mlp, n_experts=n_experts,
                  n_experts_used=int(c["num_experts_per_tok"]) if experts else 0,
                  norm_topk=archs[0] not in ("Qwen3MoeForCausalLM", "Qwen2MoeForCausalLM")
                  or bool(c.get("norm_topk_prob", False)), d_shared=d_shared,
                  rot_dim=None if rot == head_dim else rot,
                  vocab=c["vocab_size"], n_ctx=c.get("max_position_embeddings", 2048),
                  norm_eps=float(c.get("rms_norm_eps", 1e-6)),
                  rope_base=float(c.get("rope_theta", 10000.0)), rope_scaling=rope_scaling,
                  tied=bool(c.get("tie_word_embeddings", arch in ("gemma", "gemma3"))),
                  sliding_window=int(c.get("sliding_window") or 0) if arch == "gemma3" else 0,
                  sliding_period=int(c.get("sliding_window_pattern", 6)) if arch == "gemma3" else 0,
                  rope_base_local=float(c.get("rope_local_base_freq", 10000.0)),
                  attn_scalar=float(c["query_pre_attn_scalar"])
                  if arch == "gemma3" and c.get("query_pre_attn_scalar", head_dim) != head_dim else None,
                  qkv_bias=arch in ("qwen2", "qwen2moe") or attn_bias, o_bias=attn_bias,
                  name=c.get("_name_or_path", ""))


def _gemma2_config(c, d, h, head_dim, rope_scaling):
    """Gemma2Config: softcaps (null: none), query_pre_attn_scalar, sliding_window on the layers
    layer_types calls sliding (without it: the even ones, transformers' is_sliding)."""
    n_layers = c["num_hidden_layers"]
    if rope_scaling is not None:
        raise ValueError("rope_scaling on Gemma 2 not supported")
    caps = [float(c.get(k) or 0.0) for k in ("attn_logit_softcapping", "final_logit_softcapping")]
    if any(x < 0 for x in caps) or any(k in c and c[k] is not None and float(c[k]) <= 0
                                      for k in ("attn_logit_softcapping", "final_logit_softcapping")):
        raise ValueError(f"softcaps must be positive or null, got {caps}")
    sliding = [i % 2 == 0 for i in range(n_layers)]
    if c.get("layer_types"):
        sliding = [t == "sliding_attention" for t in c["layer_types"]]
    if sliding != [i % 2 == 0 for i in range(n_layers)]:
        raise ValueError("this reference takes Gemma 2's alternating local layers only")
    scalar = c.get("query_pre_attn_scalar", head_dim)
    return Config(arch="gemma2", n_layers=n_layers, d_model=d, n_heads=h,
                  n_kv_heads=c.get("num_key_value_heads") or h, d_head=head_dim, d_mlp=c["intermediate_size"],
                  vocab=c["vocab_size"], n_ctx=c.get("max_position_embeddings", 8192),
                  norm_eps=float(c.get("rms_norm_eps", 1e-6)), rope_base=float(c.get("rope_theta", 10000.0)),
                  rope_base_local=float(c.get("rope_theta", 10000.0)),
                  sliding_window=int(c.get("sliding_window") or 0), sliding_period=2,
                  attn_scalar=float(scalar) if scalar != head_dim else None,
                  attn_softcap=caps[0], final_softcap=caps[1], tied=bool(c.get("tie_word_embeddings", True)),
                  qkv_bias=bool(c.get("attention_bias", False)), o_bias=bool(c.get("attention_bias", False)),
                  name=c.get("_name_or_path", ""))


# Mixture of experts: the router, and each expert's gate/up/down ("{e}": the expert's index).
_EXPERTS = {"llama": {"mlp.router.w": "block_sparse_moe.gate.weight",
                      "mlp.gate.w": "block_sparse_moe.experts.{e}.w1.weight",
                      "mlp.up.w": "block_sparse_moe.experts.{e}.w3.weight",
                      "mlp.down.w": "block_sparse_moe.experts.{e}.w2.weight"},
            "qwen3moe": {"mlp.router.w": "mlp.gate.weight", "mlp.gate.w": "mlp.experts.{e}.gate_proj.weight",
                         "mlp.up.w": "mlp.experts.{e}.up_proj.weight",
                         "mlp.down.w": "mlp.experts.{e}.down_proj.weight"}}
_EXPERTS["qwen2moe"] = _EXPERTS["qwen3moe"]
# Qwen2-MoE's shared expert (after the routed neurons) and its sigmoid gate ([1, d] in the file).
_SHARED = {"mlp.gate.w": "mlp.shared_expert.gate_proj.weight", "mlp.up.w": "mlp.shared_expert.up_proj.weight",
           "mlp.down.w": "mlp.shared_expert.down_proj.weight"}


# GPT-NeoX: canonical suffix -> HF suffix (after "gpt_neox.layers.L."); query_key_value is apart.
_NEOX_BLOCK = {
    "ln1.w": "input_layernorm.weight", "ln1.b": "input_layernorm.bias",
    "ln2.w": "post_attention_layernorm.weight", "ln2.b": "post_attention_layernorm.bias",
    "attn.o.w": "attention.dense.weight", "attn.o.b": "attention.dense.bias",
    "mlp.up.w": "mlp.dense_h_to_4h.weight", "mlp.up.b": "mlp.dense_h_to_4h.bias",
    "mlp.down.w": "mlp.dense_4h_to_h.weight", "mlp.down.b": "mlp.dense_4h_to_h.bias",
}
_NEOX_GLOBAL = {"tok_embed": "gpt_neox.embed_in.weight", "ln_final.w": "gpt_neox.final_layer_norm.weight",
                "ln_final.b": "gpt_neox.final_layer_norm.bias", "unembed.w": "embed_out.weight"}


def _neox_config(c):
    if c.get("rope_scaling"):
        raise ValueError("GPT-NeoX rope_scaling not supported")
    act = c.get("hidden_act", "gelu")
    if act not in ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh"):
        raise ValueError(f"GPT-NeoX activation {act!r} not supported")
    d, h = c["hidden_size"], c["num_attention_heads"]
    rot = int(d // h * float(c.get("rotary_pct", 1.0)))
    return Config(arch="gptneox", n_layers=c["num_hidden_layers"], d_model=d, n_heads=h, n_kv_heads=h,
                  d_head=d // h, d_mlp=c["intermediate_size"], vocab=c["vocab_size"],
                  n_ctx=c.get("max_position_embeddings", 2048), norm_eps=float(c.get("layer_norm_eps", 1e-5)),
                  rope_base=float(c.get("rotary_emb_base", 10000.0)), rot_dim=None if rot == d // h else rot,
                  parallel_residual=bool(c.get("use_parallel_residual", True)),
                  act="gelu" if act == "gelu" else None, tied=False, qkv_bias=True, o_bias=True,
                  name=c.get("_name_or_path", ""))


def _neox_qkv_index(cfg, part):
    """Rows (or bias entries) of query_key_value, stored per head as [q_h; k_h; v_h], that make up
    canonical Q, K or V (part 0, 1, 2)."""
    dh = cfg.d_head
    return np.concatenate([np.arange((h * 3 + part) * dh, (h * 3 + part + 1) * dh) for h in range(cfg.n_heads)])


def _open_weights(path):
    """{tensor name: SafetensorsFile holding it}."""
    index = os.path.join(path, INDEX_FILE)
    files = {}
    where = {}
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        for name, fname in weight_map.items():
            if fname not in files:
                files[fname] = safetensors.SafetensorsFile(os.path.join(path, fname))
            if name not in files[fname].tensors:
                raise ValueError(f"{path}: index puts {name} in {fname}, which lacks it")
            where[name] = files[fname]
    elif os.path.exists(os.path.join(path, SINGLE_FILE)):
        st = safetensors.SafetensorsFile(os.path.join(path, SINGLE_FILE))
        where = {name: st for name in st.tensors}
    else:
        raise ValueError(f"{path}: no {SINGLE_FILE} or {INDEX_FILE}")
    return where


def load(path):
    with open(os.path.join(path, "config.json")) as f:
        cfg = config_from_hf(json.load(f))
    where = _open_weights(path)
    loaders, used = {}, set()

    def src(name, transform=None):
        if name not in where:
            raise ValueError(f"{path}: missing tensor {name}")
        used.add(name)
        st = where[name]
        return (lambda: st.tensor(name)) if transform is None else (lambda: transform(st.tensor(name)))

    if cfg.arch == "gptneox":
        for canonical in tensor_shapes(cfg):
            if canonical in _NEOX_GLOBAL:
                loaders[canonical] = src(_NEOX_GLOBAL[canonical])
                continue
            _, layer, rest = canonical.split(".", 2)
            block = f"gpt_neox.layers.{layer}."
            if rest.startswith(("attn.q.", "attn.k.", "attn.v.")):
                idx = _neox_qkv_index(cfg, "qkv".index(rest.split(".")[1]))
                wb = "weight" if rest.endswith(".w") else "bias"
                loaders[canonical] = src(block + f"attention.query_key_value.{wb}", lambda t, i=idx: t[i])
            else:
                loaders[canonical] = src(block + _NEOX_BLOCK[rest])
    elif cfg.is_gpt2:
        prefix = "transformer." if "transformer.wte.weight" in where else ""
        for canonical in tensor_shapes(cfg):
            if canonical == "unembed.w":
                loaders[canonical] = src("lm_head.weight")
            elif canonical in _GPT2_GLOBAL:
                loaders[canonical] = src(prefix + _GPT2_GLOBAL[canonical])
            else:
                _, layer, rest = canonical.split(".", 2)
                block = f"{prefix}h.{layer}."
                if rest.startswith(("attn.q.", "attn.k.", "attn.v.")):
                    i, d = "qkv".index(rest.split(".")[1]), cfg.d_model
                    if rest.endswith(".w"):  # c_attn.weight is [d, 3d]: take columns, then transpose
                        loaders[canonical] = src(block + "attn.c_attn.weight",
                                                 lambda t, i=i, d=d: t[:, i * d:(i + 1) * d].T)
                    else:
                        loaders[canonical] = src(block + "attn.c_attn.bias",
                                                 lambda t, i=i, d=d: t[i * d:(i + 1) * d])
                else:
                    name, transpose = _GPT2_BLOCK[rest]
                    loaders[canonical] = src(block + name, (lambda t: t.T) if transpose else None)
        if cfg.tied and "lm_head.weight" in where:
            used.add("lm_head.weight")  # a tied copy; HF ties it to wte when loading
    else:
        for canonical in tensor_shapes(cfg):
            if canonical in _LLAMA_GLOBAL:
                name = _LLAMA_GLOBAL[canonical]
                # Tied checkpoints may keep the shared matrix under either name
                # (TinyStories-656K stores only lm_head.weight).
                if canonical == "tok_embed" and cfg.tied and name not in where:
                    name = "lm_head.weight"
                loaders[canonical] = src(name)
            else:
                _, layer, rest = canonical.split(".", 2)
                if rest == "mlp.shared_gate.w":
                    loaders[canonical] = src(f"model.layers.{layer}.mlp.shared_expert_gate.weight", lambda t: t[0])
                    continue
                if cfg.n_experts and rest in _EXPERTS[cfg.arch]:
                    name = f"model.layers.{layer}.{_EXPERTS[cfg.arch][rest]}"
                    if rest == "mlp.router.w":
                        loaders[canonical] = src(name)
                        continue
                    parts = [name.replace("{e}", str(e)) for e in range(cfg.n_experts)]
                    if cfg.d_shared:
                        parts.append(f"model.layers.{layer}.{_SHARED[rest]}")
                    getters = [src(n_) for n_ in parts]
                    axis = 1 if rest == "mlp.down.w" else 0  # down: columns; gate/up: rows
                    loaders[canonical] = (lambda g=getters, a=axis: np.concatenate([x() for x in g], axis=a))
                    continue
                if cfg.arch == "phi3" and rest in _PHI3_FUSED:
                    a, n = _phi3_slice(cfg, rest)
                    loaders[canonical] = src(f"model.layers.{layer}.{_PHI3_FUSED[rest][0]}",
                                             lambda t, a=a, n=n: t[a:a + n])
                    continue
                loaders[canonical] = src(f"model.layers.{layer}.{_llama_block_name(cfg, rest)}")
        if cfg.arch in ("gemma", "gemma2", "gemma3"):  # GemmaRMSNorm scales by 1 + w: canonical norm weights are the sums
            for canonical in loaders:
                if is_norm_weight(canonical):
                    loaders[canonical] = (lambda f=loaders[canonical]: f() + np.float32(1))
        if cfg.tied and "lm_head.weight" in where:
            used.add("lm_head.weight")

    unknown = sorted(n for n in set(where) - used if not n.endswith(_IGNORED_SUFFIXES))
    if unknown:
        raise ValueError(f"{path}: tensors not understood: {unknown[:5]}")
    return Model(cfg, loaders, path, "hf")


# -- writing --------------------------------------------------------------------------------------

def _hf_rope_scaling(cfg):
    rs = cfg.rope_scaling
    if not rs:
        return None
    if rs["type"] == "freq_factors":
        raise ValueError("explicit RoPE frequency factors have no Hugging Face config form")
    out = {"rope_type": rs["type"]}
    # LongRoPE's original context lives at the top level of Phi-3's configs (hf_config)
    out.update({k: v for k, v in rs.items()
                if k != "type" and not (rs["type"] == "longrope" and k == "original_max_position_embeddings")})
    if "original_max_position_embeddings" in out:
        out["original_max_position_embeddings"] = int(out["original_max_position_embeddings"])
    return out


def hf_config(cfg, dtype="F32", extra=None):
    torch_dtype = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
    if cfg.arch == "gptneox":
        c = {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
             "hidden_act": "gelu" if cfg.act == "gelu" else "gelu_new", "hidden_size": cfg.d_model,
             "intermediate_size": cfg.d_mlp, "num_hidden_layers": cfg.n_layers,
             "num_attention_heads": cfg.n_heads, "max_position_embeddings": cfg.n_ctx,
             "layer_norm_eps": cfg.norm_eps, "rotary_pct": cfg.rotary_dims / cfg.d_head,
             "rotary_emb_base": cfg.rope_base, "use_parallel_residual": cfg.parallel_residual,
             "tie_word_embeddings": False, "vocab_size": cfg.vocab, "bos_token_id": 0, "eos_token_id": 0}
    elif cfg.is_gpt2:
        c = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
             "activation_function": "gelu_new", "n_layer": cfg.n_layers, "n_head": cfg.n_heads,
             "n_embd": cfg.d_model, "n_inner": cfg.d_mlp, "n_positions": cfg.n_ctx,
             "n_ctx": cfg.n_ctx, "vocab_size": cfg.vocab, "layer_norm_epsilon": cfg.norm_eps,
             "tie_word_embeddings": cfg.tied, "bos_token_id": 50256, "eos_token_id": 50256}
    else:
        if cfg.arch == "qwen2" and cfg.o_bias:
            raise ValueError("Qwen2 has no o_proj bias")
        arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
                "qwen3moe": "Qwen3MoeForCausalLM", "qwen2moe": "Qwen2MoeForCausalLM", "phi3": "Phi3ForCausalLM",
                "gemma": "GemmaForCausalLM",
                "olmo2": "Olmo2ForCausalLM", "gemma3": "Gemma3ForCausalLM", "gemma2": "Gemma2ForCausalLM"}[cfg.arch]
        if cfg.n_experts and cfg.arch == "llama":
            arch = "MixtralForCausalLM"
        c = {"architectures": [arch], "model_type": cfg.arch, "hidden_act": "silu",
             "hidden_size": cfg.d_model, "intermediate_size": cfg.d_mlp,
             "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
             "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.d_head,
             "max_position_embeddings": cfg.n_ctx, "rms_norm_eps": cfg.norm_eps,
             "rope_theta": cfg.rope_base, "rope_scaling": _hf_rope_scaling(cfg),
             "tie_word_embeddings": cfg.tied, "vocab_size": cfg.vocab,
             "bos_token_id": 1, "eos_token_id": 2}
        if cfg.rope_scaling and cfg.rope_scaling["type"] == "longrope":
            c["original_max_position_embeddings"] = int(cfg.rope_scaling["original_max_position_embeddings"])
        if cfg.n_experts:
            c["intermediate_size"] = cfg.d_expert
            c["num_experts_per_tok"] = cfg.n_experts_used
            if cfg.arch == "llama":
                c.update(num_local_experts=cfg.n_experts)
                if not cfg.norm_topk:
                    raise ValueError("Mixtral always renormalises its experts' weights")
            else:
                c.update(num_experts=cfg.n_experts, moe_intermediate_size=cfg.d_expert,
                         norm_topk_prob=cfg.norm_topk)
                if cfg.d_shared:
                    c.update(shared_expert_intermediate_size=cfg.d_shared)
        if cfg.arch in ("llama", "qwen3", "qwen3moe", "olmo2") and not (cfg.n_experts and cfg.arch == "llama"):
            c.update(attention_bias=cfg.qkv_bias, mlp_bias=False)
            if cfg.qkv_bias != cfg.o_bias:
                raise ValueError("attention_bias covers q, k, v and o together")
        if cfg.arch in ("qwen2", "qwen2moe", "qwen3", "qwen3moe"):
            c.update(use_sliding_window=False)
        if cfg.arch in ("gemma", "gemma2", "gemma3"):
            c.update(hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh",
                     attention_bias=cfg.qkv_bias)
            if cfg.arch == "gemma2":
                if cfg.sliding_period != 2 or cfg.rope_base_local != cfg.rope_base:
                    raise ValueError("Gemma 2 directories alternate local and global layers with one RoPE base")
                c.update(sliding_window=cfg.sliding_window or None, query_pre_attn_scalar=cfg.attn_scalar or cfg.d_head,
                         attn_logit_softcapping=cfg.attn_softcap or None,
                         final_logit_softcapping=cfg.final_softcap or None, cache_implementation="hybrid")
            if cfg.arch == "gemma3":
                c.update(model_type="gemma3_text", sliding_window=cfg.sliding_window,
                         sliding_window_pattern=cfg.sliding_period, rope_local_base_freq=cfg.rope_base_local,
                         query_pre_attn_scalar=cfg.attn_scalar or cfg.d_head,
                         attn_logit_softcapping=None, final_logit_softcapping=None)
            if cfg.qkv_bias != cfg.o_bias:
                raise ValueError("attention_bias covers q, k, v and o together")
        if cfg.arch == "phi3":
            if cfg.qkv_bias or cfg.o_bias:
                raise ValueError("Phi-3 has no attention biases")
            c.update(partial_rotary_factor=cfg.rotary_dims / cfg.d_head)
    c["torch_dtype"] = torch_dtype
    c.update(extra or {})
    return c


def hf_tensors(model, gpt2_prefix="transformer."):
    """[(HF name, shape, producer)] for a canonical model."""
    cfg = model.config
    out = []
    if cfg.arch == "gptneox":
        return _neox_tensors(model)
    for canonical, shape in model.shapes.items():
        get = (lambda c=canonical: model.get(c))
        if cfg.arch in ("gemma", "gemma2", "gemma3") and is_norm_weight(canonical):  # stored as w - 1 (exact for w in [1/2, 2])
            get = (lambda c=canonical: model.get(c) - np.float32(1))
        if not cfg.is_gpt2:
            if canonical in _LLAMA_GLOBAL:
                out.append((_LLAMA_GLOBAL[canonical], shape, get))
            else:
                _, layer, rest = canonical.split(".", 2)
                if rest == "mlp.shared_gate.w":
                    out.append((f"model.layers.{layer}.mlp.shared_expert_gate.weight", (1, shape[0]),
                                lambda c=canonical: model.get(c)[None, :]))
                    continue
                if cfg.n_experts and rest in _EXPERTS[cfg.arch]:
                    name = f"model.layers.{layer}.{_EXPERTS[cfg.arch][rest]}"
                    if rest == "mlp.router.w":
                        out.append((name, shape, get))
                        continue
                    F = cfg.d_expert
                    if cfg.d_shared:  # the shared expert's part, after the routed neurons
                        EF, S = cfg.n_experts * F, cfg.d_shared
                        if rest == "mlp.down.w":
                            out.append((f"model.layers.{layer}.{_SHARED[rest]}", (shape[0], S),
                                        lambda c=canonical: np.ascontiguousarray(model.get(c)[:, EF:])))
                        else:
                            out.append((f"model.layers.{layer}.{_SHARED[rest]}", (S, shape[1]),
                                        lambda c=canonical: model.get(c)[EF:]))
                    for e in range(cfg.n_experts):
                        if rest == "mlp.down.w":  # [d, E*F]: expert e's columns
                            out.append((name.replace("{e}", str(e)), (shape[0], F),
                                        lambda c=canonical, e=e: np.ascontiguousarray(model.get(c)[:, e * F:(e + 1) * F])))
                        else:
                            out.append((name.replace("{e}", str(e)), (F, shape[1]),
                                        lambda c=canonical, e=e: model.get(c)[e * F:(e + 1) * F]))
                    continue
                if cfg.arch == "phi3" and rest in _PHI3_FUSED:
                    if rest in ("attn.q.w", "mlp.gate.w"):  # written once, with its partners
                        parts = ([f"blocks.{layer}.attn.{p}.w" for p in "qkv"] if rest == "attn.q.w"
                                 else [f"blocks.{layer}.mlp.gate.w", f"blocks.{layer}.mlp.up.w"])
                        rows = sum(model.shapes[p][0] for p in parts)
                        out.append((f"model.layers.{layer}.{_PHI3_FUSED[rest][0]}", (rows, shape[1]),
                                    lambda parts=parts: np.concatenate([model.get(p) for p in parts])))
                    continue
                out.append((f"model.layers.{layer}.{_llama_block_name(cfg, rest)}", shape, get))
            continue
        if canonical == "unembed.w":
            out.append(("lm_head.weight", shape, get))
        elif canonical in _GPT2_GLOBAL:
            out.append((gpt2_prefix + _GPT2_GLOBAL[canonical], shape, get))
        else:
            _, layer, rest = canonical.split(".", 2)
            block = f"{gpt2_prefix}h.{layer}."
            if rest in ("attn.q.w", "attn.q.b"):
                parts = [canonical.replace(".q.", f".{p}.") for p in "qkv"]
                if rest.endswith(".w"):
                    out.append((block + "attn.c_attn.weight", (shape[1], 3 * shape[0]),
                                lambda parts=parts: np.concatenate([model.get(p) for p in parts]).T))
                else:
                    out.append((block + "attn.c_attn.bias", (3 * shape[0],),
                                lambda parts=parts: np.concatenate([model.get(p) for p in parts])))
            elif rest.startswith(("attn.k.", "attn.v.")):
                continue  # part of c_attn
            else:
                name, transpose = _GPT2_BLOCK[rest]
                if transpose:
                    out.append((block + name, shape[::-1], lambda c=canonical: model.get(c).T))
                else:
                    out.append((block + name, shape, get))
    return out


def _neox_tensors(model):
    cfg = model.config
    out = []
    for canonical, shape in model.shapes.items():
        if canonical in _NEOX_GLOBAL:
            out.append((_NEOX_GLOBAL[canonical], shape, lambda c=canonical: model.get(c)))
            continue
        _, layer, rest = canonical.split(".", 2)
        block = f"gpt_neox.layers.{layer}."
        if rest in ("attn.q.w", "attn.q.b"):  # query_key_value: per head [q_h; k_h; v_h]
            parts = [canonical.replace(".q.", f".{p}.") for p in "qkv"]
            fused = (3 * shape[0],) + shape[1:]

            def interleave(parts=parts):
                q, k, v = (model.get(p) for p in parts)
                dh = cfg.d_head
                chunks = [t[h * dh:(h + 1) * dh] for h in range(cfg.n_heads) for t in (q, k, v)]
                return np.concatenate(chunks)
            out.append((block + f"attention.query_key_value.{'weight' if rest.endswith('.w') else 'bias'}",
                        fused, interleave))
        elif rest.startswith(("attn.k.", "attn.v.")):
            continue
        else:
            out.append((block + _NEOX_BLOCK[rest], shape, lambda c=canonical: model.get(c)))
    return out


def write(model, path, dtype="F32", shards=1, gpt2_prefix="transformer.", extra_config=None):
    """Write a Hugging Face directory: config.json and one or `shards` safetensors files.
    dtype is "F32", "F16" or "BF16" (all tensors, as `save_pretrained` does)."""
    os.makedirs(path, exist_ok=True)
    tensors = hf_tensors(model, gpt2_prefix)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf_config(model.config, dtype, extra_config), f, indent=2)
        f.write("\n")
    meta = {"format": "pt"}
    if shards <= 1:
        safetensors.write(os.path.join(path, SINGLE_FILE), tensors, dtype, meta)
        return
    # Split into contiguous groups of roughly equal size, as save_pretrained's max_shard_size does.
    sizes = [int(np.prod(s, dtype=np.int64)) for _, s, _ in tensors]
    total, groups, acc = sum(sizes), [[] for _ in range(shards)], 0
    for t, n in zip(tensors, sizes):
        groups[min(shards - 1, acc * shards // total)].append(t)
        acc += n
    groups = [g for g in groups if g]
    weight_map = {}
    for i, group in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        safetensors.write(os.path.join(path, fname), group, dtype, meta)
        weight_map.update({name: fname for name, _, _ in group})
    itemsize = 4 if dtype == "F32" else 2
    with open(os.path.join(path, INDEX_FILE), "w") as f:
        json.dump({"metadata": {"total_size": total * itemsize}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")
