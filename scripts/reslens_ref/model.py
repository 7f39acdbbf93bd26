"""The canonical model representation every reader produces and every writer consumes.

Canonical tensor names and layouts (NumPy shapes; matrices are PyTorch Linear [out, in], y = x W^T):

  tok_embed            [vocab, d_model]
  pos_embed            [n_ctx, d_model]             GPT-2 only
  blocks.L.ln1.w / .b  [d_model]                    .b: GPT-2 only
  blocks.L.attn.q.w    [n_heads*d_head, d_model]    Q/K rows in Hugging Face rotate_half order
  blocks.L.attn.k.w    [n_kv_heads*d_head, d_model]
  blocks.L.attn.v.w    [n_kv_heads*d_head, d_model]
  blocks.L.attn.{q,k,v}.b                           GPT-2, Qwen2 (and Llama with attention_bias)
  blocks.L.attn.o.w    [d_model, n_heads*d_head]    .b: GPT-2 (and Llama with attention_bias)
  blocks.L.ln2.w / .b  [d_model]
  blocks.L.mlp.gate.w  [d_mlp, d_model]             Llama only
  blocks.L.mlp.up.w    [d_mlp, d_model]             GPT-2: c_fc (with .b)
  blocks.L.mlp.down.w  [d_model, d_mlp]             GPT-2: c_proj (with .b)
  ln_final.w / .b      [d_model]
  unembed.w            [vocab, d_model]             absent when the head is tied to tok_embed

Tensors are produced lazily as float32 (which represents every supported storage type exactly),
so a 1B-parameter model can be read, converted or run one tensor at a time.
"""

import dataclasses
import os

import numpy as np

LLAMA_FAMILY = ("llama", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "phi3", "gemma", "gemma2", "gemma3", "olmo2")
GEMMA_FAMILY = ("gemma", "gemma2", "gemma3")  # GeGLU, embeddings times sqrt(d_model), 1 + w norms
LAYERNORM_FAMILY = ("gpt2", "gptneox")  # LayerNorms with biases, biases everywhere, ungated GELU MLP


@dataclasses.dataclass
class Config:
    arch: str  # "llama", "qwen2" (q/k/v biases), "qwen3" (per-head q/k RMSNorm), "phi3" (fused
    #            projections in files, partial rotation), "gemma" (GeGLU, embeddings times
    #            sqrt(d_model), tied) - all the Llama graph - or "gpt2", or "gptneox" (GPT-2's
    #            block with partial rotate_half RoPE and a parallel residual)
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_mlp: int
    vocab: int
    n_ctx: int
    norm_eps: float
    rope_base: float = 10000.0
    # RoPE scaling, None or one of
    #   {"type": "linear", "factor": f}: positions divided by f (HF "linear"; GGUF rope.scaling.type linear)
    #   {"type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
    #    "original_max_position_embeddings"}: per-pair frequency divisors (HF "llama3")
    #   {"type": "freq_factors", "factors": [d_head/2 divisors]} (GGUF rope_freqs.weight)
    #   {"type": "yarn", "factor", "original_max_position_embeddings", optional "beta_fast" (32),
    #    "beta_slow" (1), "attention_factor" (1 + 0.1 ln factor)}: HF "yarn"; GGUF rope.scaling.type yarn
    #   {"type": "longrope", "long_factor", "short_factor": [rot/2 divisors each],
    #    "original_max_position_embeddings", optional "attention_factor"}: HF "longrope" (Phi-3);
    #    GGUF phi3 rope_factors_long/short.weight. The long set applies when n_ctx exceeds the
    #    original context (reslens' rule, llama.cpp's at its default context).
    rope_scaling: dict = None
    rot_dim: int = None  # dims of each head that rotate (None: all, d_head); Phi-3/4 partial rotation
    parallel_residual: bool = False  # GPT-NeoX: x + attn(ln1(x)) + mlp(ln2(x))
    act: str = None  # MLP activation when not the architecture's own: "gelu" (exact, erf) for HF GPT-NeoX
    # Mixture of experts (Mixtral = "llama" with experts, "qwen3moe"): d_mlp is n_experts * d_expert,
    # the experts' neurons concatenated (neuron e * d_expert + k = expert e's neuron k), plus a router
    # blocks.L.mlp.router.w [n_experts, d_model]; softmax routing to n_experts_used experts, their
    # weights renormalised when norm_topk.
    # Gemma 3: every sliding_period-th layer is global (rope_base, rope_scaling), the others local
    # (rope_base_local, no scaling; a sliding window this reference does not need for sequences no
    # longer than it); attn_scalar: scores times attn_scalar^-1/2 instead of d_head^-1/2.
    sliding_period: int = 0
    sliding_window: int = 0
    rope_base_local: float = 10000.0
    attn_scalar: float = None
    # Gemma 2: attention scores c * tanh(score / c) before the mask (attn_softcap) and logits
    # c * tanh(logit / c) (final_softcap); 0: none. Its local layers (sliding_period 2: the even ones)
    # attend within sliding_window: query i sees keys i - window < j <= i (Gemma 3's local layers too).
    attn_softcap: float = 0.0
    final_softcap: float = 0.0
    n_experts: int = 0
    n_experts_used: int = 0
    norm_topk: bool = True
    # Qwen2-MoE: a shared expert of d_shared neurons after the routed ones (d_mlp = n_experts *
    # d_expert + d_shared), its output gated by sigmoid(x . blocks.L.mlp.shared_gate.w).
    d_shared: int = 0
    tied: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    name: str = ""

    @property
    def is_gpt2(self):
        return self.arch == "gpt2"

    @property
    def layer_norm(self):
        """LayerNorms with biases, biased projections and an ungated GELU MLP (GPT-2, GPT-NeoX)."""
        return self.arch in LAYERNORM_FAMILY

    @property
    def rotary(self):
        return self.arch != "gpt2"

    @property
    def qk_norm(self):
        return self.arch in ("qwen3", "qwen3moe", "gemma3")

    @property
    def pre_norm(self):
        """Sublayers read a normalised stream (ln1, ln2); OLMo 2's read the stream itself."""
        return self.arch != "olmo2"

    @property
    def post_norm(self):
        """OLMo 2: each sublayer's output passes an RMSNorm (post_attn_norm, post_ffn_norm)."""
        return self.arch in ("olmo2", "gemma2", "gemma3")

    @property
    def qk_norm_full(self):
        """OLMo 2: q and k RMS-normalised over the whole projection, weights [n_heads * d_head]."""
        return self.arch == "olmo2"

    @property
    def d_expert(self):
        return (self.d_mlp - self.d_shared) // self.n_experts if self.n_experts else self.d_mlp

    @property
    def embedding_scale(self):
        """Gemma multiplies embeddings by sqrt(d_model) as a float32 constant (HF's normalizer,
        llama.cpp's sqrtf(n_embd)); 1 elsewhere."""
        return float(np.float32(np.sqrt(self.d_model))) if self.arch in GEMMA_FAMILY else 1.0

    def window(self, layer):
        """The sliding window of a layer (0: full causal attention): Gemma 2/3's local layers."""
        return self.sliding_window if self.sliding_window and self.is_local(layer) else 0

    def is_local(self, layer):
        """Gemma 3: layers attend locally unless (layer + 1) is a multiple of sliding_period."""
        return bool(self.sliding_period) and (layer + 1) % self.sliding_period != 0

    @property
    def rotary_dims(self):
        return self.d_head if self.rot_dim is None else self.rot_dim

    def validate(self):
        if self.arch not in LLAMA_FAMILY + LAYERNORM_FAMILY:
            raise ValueError(f"unsupported architecture {self.arch!r}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        if self.rotary and (self.rotary_dims % 2 or not 0 < self.rotary_dims <= self.d_head):
            raise ValueError(f"RoPE needs an even rotary size up to d_head, got {self.rotary_dims}")
        if self.arch in ("gemma", "gemma2") and not self.tied:
            raise ValueError("Gemma ties its unembedding to the embedding")
        if (self.attn_softcap or self.final_softcap) and self.arch != "gemma2":
            raise ValueError("only Gemma 2 has softcaps")
        if self.layer_norm and (self.n_kv_heads != self.n_heads or not (self.qkv_bias and self.o_bias)):
            raise ValueError("GPT-2 and GPT-NeoX have one KV head per head and all biases")
        if self.n_experts and (self.layer_norm or (self.d_mlp - self.d_shared) % self.n_experts
                               or not 0 < self.n_experts_used <= self.n_experts):
            raise ValueError("experts need a gated MLP of n_experts * d_expert neurons and 1..n_experts used")
        if self.arch in ("qwen3moe", "qwen2moe") and not self.n_experts:
            raise ValueError(f"{self.arch} has experts")
        if self.d_shared and self.arch != "qwen2moe":
            raise ValueError("only qwen2moe has a shared expert")
        if self.parallel_residual and self.arch != "gptneox":
            raise ValueError("only GPT-NeoX has a parallel residual")
        return self


def llama3_freq_factors(base, rot_dim, factor, low_freq_factor, high_freq_factor, original_ctx):
    """Per-pair frequency divisors of HF's "llama3" rope_scaling, written as transformers'
    _compute_llama3_parameters defines the new frequencies (inv_freq / divisor): low frequencies
    (wavelength > original_ctx / low_freq_factor) divided by factor, high ones kept, and a linear
    blend in 1/divisor between."""
    inv_freq = base ** (-np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim)
    wavelen = 2 * np.pi / inv_freq
    low_wavelen, high_wavelen = original_ctx / low_freq_factor, original_ctx / high_freq_factor
    smooth = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    new_inv = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    new_inv = np.where(medium, (1 - smooth) * inv_freq / factor + smooth * inv_freq, new_inv)
    return inv_freq / new_inv


def yarn_inv_freq(base, rot, factor, original, beta_fast=32.0, beta_slow=1.0):
    """YaRN's per-pair frequencies (Peng et al. 2023, as transformers' _compute_yarn_parameters
    defines them): pairs that turn more than beta_fast times over the original context keep their
    frequency, pairs that turn less than beta_slow times are divided by factor, and a linear ramp
    over the pair index blends the two between (bounds rounded outward, clipped to [0, rot - 1])."""
    exponent = np.arange(0, rot, 2, dtype=np.float64) / rot
    extrapolated = base ** -exponent
    interpolated = extrapolated / factor

    def pair_of(turns):  # the (fractional) pair index whose wavelength fits `turns` times
        return rot * np.log(original / (turns * 2 * np.pi)) / (2 * np.log(base))
    lo = max(np.floor(pair_of(beta_fast)), 0.0)
    hi = min(np.ceil(pair_of(beta_slow)), rot - 1.0)
    if hi < lo:
        raise ValueError("YaRN correction range is empty")
    if hi == lo:
        hi += 0.001
    keep = 1.0 - np.clip((np.arange(rot // 2, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
    return interpolated * (1.0 - keep) + extrapolated * keep


def rope_attention_factor(cfg):
    """The factor YaRN and LongRoPE multiply cos and sin by (1 for the other scalings)."""
    rs = cfg.rope_scaling or {"type": "none"}
    if rs.get("attention_factor") is not None:
        return float(rs["attention_factor"])
    if rs["type"] == "yarn":
        f = float(rs["factor"])
        return 1.0 + 0.1 * np.log(f) if f > 1 else 1.0
    if rs["type"] == "longrope":
        orig = float(rs["original_max_position_embeddings"])
        f = cfg.n_ctx / orig
        return float(np.sqrt(1.0 + np.log(f) / np.log(orig))) if f > 1 else 1.0
    return 1.0


def rope_frequencies(cfg):
    """(inv_freq [d_head/2] float64, position divisor, attention factor): pair i at position p
    turns by (p / divisor) * inv_freq[i], and its cos and sin are multiplied by the factor."""
    inv_freq, divisor = _rope_angles(cfg)
    return inv_freq, divisor, rope_attention_factor(cfg)


def _rope_angles(cfg):
    rot = cfg.rotary_dims
    inv_freq = cfg.rope_base ** (-np.arange(0, rot, 2, dtype=np.float64) / rot)
    rs = cfg.rope_scaling or {"type": "none"}
    if rs["type"] == "yarn":
        return yarn_inv_freq(cfg.rope_base, rot, float(rs["factor"]), float(rs["original_max_position_embeddings"]),
                             float(rs.get("beta_fast", 32.0)), float(rs.get("beta_slow", 1.0))), 1.0
    if rs["type"] == "longrope":
        use_long = cfg.n_ctx > rs["original_max_position_embeddings"]
        ext = np.asarray(rs["long_factor" if use_long else "short_factor"], dtype=np.float64)
        if len(ext) != rot // 2:
            raise ValueError(f"LongRoPE factors: {len(ext)} for {rot} rotary dims")
        return inv_freq / ext, 1.0
    if rs["type"] == "none":
        return inv_freq, 1.0
    if rs["type"] == "linear":
        return inv_freq, float(rs["factor"])
    if rs["type"] == "llama3":
        return inv_freq / llama3_freq_factors(
            cfg.rope_base, rot, rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"],
            rs["original_max_position_embeddings"]), 1.0
    if rs["type"] == "freq_factors":
        return inv_freq / np.asarray(rs["factors"], dtype=np.float64), 1.0
    raise ValueError(f"RoPE scaling {rs!r} not supported")


def tensor_shapes(cfg):
    """Every canonical tensor of a model with this config, in a fixed order, with its shape."""
    d, hd = cfg.d_model, cfg.d_head
    q_out, kv_out = cfg.n_heads * hd, cfg.n_kv_heads * hd
    gpt2, ln = cfg.is_gpt2, cfg.layer_norm
    out = {"tok_embed": (cfg.vocab, d)}
    if gpt2:
        out["pos_embed"] = (cfg.n_ctx, d)
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        if cfg.pre_norm:
            out[p + "ln1.w"] = (d,)
        if ln:
            out[p + "ln1.b"] = (d,)
        for part, n_out in (("q", q_out), ("k", kv_out), ("v", kv_out)):
            out[p + f"attn.{part}.w"] = (n_out, d)
            if cfg.qkv_bias:
                out[p + f"attn.{part}.b"] = (n_out,)
        if cfg.qk_norm:
            out[p + "attn.q_norm.w"] = (hd,)
            out[p + "attn.k_norm.w"] = (hd,)
        if cfg.qk_norm_full:
            out[p + "attn.q_norm.w"] = (q_out,)
            out[p + "attn.k_norm.w"] = (kv_out,)
        out[p + "attn.o.w"] = (d, q_out)
        if cfg.o_bias:
            out[p + "attn.o.b"] = (d,)
        if cfg.post_norm:
            out[p + "post_attn_norm.w"] = (d,)
        if cfg.pre_norm:
            out[p + "ln2.w"] = (d,)
        if ln:
            out[p + "ln2.b"] = (d,)
        else:
            if cfg.n_experts:
                out[p + "mlp.router.w"] = (cfg.n_experts, d)
            if cfg.d_shared:
                out[p + "mlp.shared_gate.w"] = (d,)
            out[p + "mlp.gate.w"] = (cfg.d_mlp, d)
        out[p + "mlp.up.w"] = (cfg.d_mlp, d)
        if ln:
            out[p + "mlp.up.b"] = (cfg.d_mlp,)
        out[p + "mlp.down.w"] = (d, cfg.d_mlp)
        if ln:
            out[p + "mlp.down.b"] = (d,)
        if cfg.post_norm:
            out[p + "post_ffn_norm.w"] = (d,)
    out["ln_final.w"] = (d,)
    if ln:
        out["ln_final.b"] = (d,)
    if not cfg.tied:
        out["unembed.w"] = (cfg.vocab, d)
    return out


def is_norm_weight(name):
    return name.endswith((".ln1.w", ".ln2.w", ".q_norm.w", ".k_norm.w", ".post_attn_norm.w",
                          ".post_ffn_norm.w")) or name == "ln_final.w"


class Model:
    """A config plus lazy canonical tensors.

    `loaders` maps canonical name -> zero-argument callable returning the tensor (float32 or an
    exact float type). `extra` carries format-specific information a converter may want to keep
    (e.g. the GGUF metadata or the llama2.c tokenizer path).
    """

    def __init__(self, config, loaders, path="", fmt="", extra=None):
        self.config = config.validate()
        self.path, self.format = str(path), fmt
        self.extra = extra or {}
        self._loaders = dict(loaders)
        expected = tensor_shapes(config)
        missing = [n for n in expected if n not in self._loaders]
        unexpected = [n for n in self._loaders if n not in expected]
        if missing or unexpected:
            raise ValueError(f"{path}: tensors do not match the config: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        self.shapes = expected

    def names(self):
        return list(self.shapes)

    def get(self, name):
        """Tensor `name` in canonical layout and its stored precision (float32 or float16)."""
        t = np.asarray(self._loaders[name]())
        if t.shape != self.shapes[name]:
            raise ValueError(f"{self.path}: {name} has shape {t.shape}, expected {self.shapes[name]}")
        return t

    def f64(self, name):
        return self.get(name).astype(np.float64)

    def unembed(self):
        return self.f64("tok_embed" if self.config.tied else "unembed.w")


# -- Q/K row order --------------------------------------------------------------------------------
# Hugging Face checkpoints rotate (i, i + d_head/2) pairs ("rotate_half"); GGUF Llama files and
# llama2.c checkpoints store each head's rows reordered so that llama.cpp can rotate adjacent pairs
# (2i, 2i+1) instead. Both rotate the same features by the same angles; only the row order differs.

def permute_hf_to_gguf(w, n_head):
    """HF rotate_half row order -> GGUF interleaved order (convert_hf_to_gguf's permute)."""
    w = np.asarray(w)
    rows = w.shape[0]
    tail = w.shape[1:]
    return w.reshape(n_head, 2, rows // n_head // 2, *tail).swapaxes(1, 2).reshape(w.shape)


def permute_gguf_to_hf(w, n_head):
    """Inverse of permute_hf_to_gguf."""
    w = np.asarray(w)
    rows = w.shape[0]
    tail = w.shape[1:]
    return w.reshape(n_head, rows // n_head // 2, 2, *tail).swapaxes(1, 2).reshape(w.shape)


# -- loading -------------------------------------------------------------------------------------

def load_model(path, tokenizer=None):
    """Open a GGUF file, a llama2.c checkpoint or a Hugging Face directory.
    tokenizer: a llama2.c checkpoint's tokenizer file, if not beside it (recorded, not parsed)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        from . import hf
        return hf.load(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        from . import gguf_model
        return gguf_model.load(path)
    from . import llama2c
    return llama2c.load(path, tokenizer=tokenizer)
