"""llama2.c checkpoints (legacy and version 1) and llama2.c tokenizers.

Legacy: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len); a negative
vocab_size means a separate classifier. Then float32 tensors: token_embedding, rms_att[L], wq[L],
wk[L], wv[L], wo[L], rms_ffn[L], w1[L] (gate), w2[L] (down), w3[L] (up), rms_final,
freq_cis_real and freq_cis_imag (seq_len * head_size/2 each; unused here), wcls if not shared.

Version 1: uint32 magic 0x616b3432, int32 version 1, the same 7 int32 (vocab_size positive),
uint8 shared_classifier, zero padding to 256 bytes; then attention_norm[L], ffn_norm[L], norm,
tok_embeddings, wq[L], wk[L], wv[L], wo[L], w1[L], w2[L], w3[L], output if not shared.

Matrices are [out, in]. Q/K rows are in llama.cpp's interleaved-pair order (llama2.c rotates
adjacent pairs), so they are un-permuted to rotate_half order when read. Neither format stores
eps or the RoPE base: llama2.c uses 1e-5 and 10000.

Tokenizer (tokenizer.bin, tok512.bin, ...): int32 max_token_length, then per token float32 score,
int32 byte length, bytes. Its size comes from the model's vocab_size.
"""

import os
import struct

import numpy as np

from .model import Config, Model, permute_gguf_to_hf, permute_hf_to_gguf

MAGIC_V1 = 0x616B3432
V1_HEADER_BYTES = 256
EPS = 1e-5
ROPE_BASE = 10000.0


def _layout(cfg, version):
    """[(canonical name or None for skipped data, shape, layer or None)] in file order."""
    d, hidden, n_layers, vocab = cfg.d_model, cfg.d_mlp, cfg.n_layers, cfg.vocab
    kv = cfg.n_kv_heads * cfg.d_head
    per_layer = {
        "ln1.w": (d,), "attn.q.w": (d, d), "attn.k.w": (kv, d), "attn.v.w": (kv, d),
        "attn.o.w": (d, d), "ln2.w": (d,), "mlp.gate.w": (hidden, d),
        "mlp.down.w": (d, hidden), "mlp.up.w": (hidden, d),
    }

    def stacked(rest):
        return [(f"blocks.{l}.{rest}", per_layer[rest]) for l in range(n_layers)]

    out = []
    if version == 0:
        out += [("tok_embed", (vocab, d))]
        for rest in ("ln1.w", "attn.q.w", "attn.k.w", "attn.v.w", "attn.o.w", "ln2.w",
                     "mlp.gate.w", "mlp.down.w", "mlp.up.w"):
            out += stacked(rest)
        out += [("ln_final.w", (d,))]
        half = cfg.n_ctx * cfg.d_head // 2
        out += [("freq_cis_real", (half,)), ("freq_cis_imag", (half,))]
    else:
        out += stacked("ln1.w") + stacked("ln2.w") + [("ln_final.w", (d,)), ("tok_embed", (vocab, d))]
        for rest in ("attn.q.w", "attn.k.w", "attn.v.w", "attn.o.w", "mlp.gate.w", "mlp.down.w",
                     "mlp.up.w"):
            out += stacked(rest)
    if not cfg.tied:
        out += [("unembed.w", (vocab, d))]
    return out


def read_header(path):
    """(Config, version, byte offset of the first tensor)."""
    with open(path, "rb") as f:
        head = f.read(V1_HEADER_BYTES)
    if len(head) < 28:
        raise ValueError(f"{path}: too short for a llama2.c checkpoint")
    (magic,) = struct.unpack_from("<I", head, 0)
    if magic == MAGIC_V1:
        (version,) = struct.unpack_from("<i", head, 4)
        if version != 1:
            raise ValueError(f"{path}: llama2.c version {version} not supported (only 0 and 1)")
        dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack_from("<7i", head, 8)
        (shared,) = struct.unpack_from("<B", head, 36)
        offset = V1_HEADER_BYTES
    else:
        version = 0
        dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack_from("<7i", head, 0)
        shared = vocab > 0
        vocab = abs(vocab)
        offset = 28
    if min(dim, hidden, n_layers, n_heads, n_kv, vocab, seq) <= 0 or dim % n_heads:
        raise ValueError(f"{path}: implausible llama2.c header {dim, hidden, n_layers, n_heads, n_kv, vocab, seq}")
    cfg = Config(arch="llama", n_layers=n_layers, d_model=dim, n_heads=n_heads, n_kv_heads=n_kv,
                 d_head=dim // n_heads, d_mlp=hidden, vocab=vocab, n_ctx=seq, norm_eps=EPS,
                 rope_base=ROPE_BASE, tied=bool(shared),
                 name=os.path.splitext(os.path.basename(path))[0])
    return cfg, version, offset


def load(path, tokenizer=None):
    cfg, version, offset = read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    loaders = {}
    for name, shape in _layout(cfg, version):
        n = int(np.prod(shape))
        end = offset + 4 * n
        if end > len(data):
            raise ValueError(f"{path}: file ends inside {name}")
        if not name.startswith("freq_cis"):
            view = data[offset:end].view("<f4").reshape(shape)
            if ".attn.q." in name or ".attn.k." in name:
                heads = cfg.n_heads if ".attn.q." in name else cfg.n_kv_heads
                loaders[name] = lambda v=view, h=heads: permute_gguf_to_hf(v, h)
            else:
                loaders[name] = lambda v=view: v
        offset = end
    if offset != len(data):
        raise ValueError(f"{path}: {len(data) - offset} bytes left after the last tensor")
    tok = tokenizer or find_tokenizer(path, cfg.vocab)
    return Model(cfg, loaders, path, "llama2c", extra={"version": version, "tokenizer": tok})


def _freq_cis(cfg):
    """llama2.c's RoPE tables: cos/sin of pos * base^(-2i/head_size), [seq_len, head_size/2]."""
    hs = cfg.d_head
    freqs = 1.0 / (ROPE_BASE ** (np.arange(0, hs, 2)[: hs // 2].astype(np.float32) / hs))
    angles = np.outer(np.arange(cfg.n_ctx, dtype=np.float32), freqs.astype(np.float32))
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def write(model, path, version=0):
    """Write a Llama-family canonical model (no biases, eps 1e-5, base 10000) as llama2.c."""
    cfg = model.config
    if cfg.arch != "llama" or cfg.qkv_bias or cfg.o_bias or cfg.d_head * cfg.n_heads != cfg.d_model:
        raise ValueError("llama2.c holds only bias-free Llama models with d_head = dim / n_heads")
    if abs(cfg.norm_eps - EPS) > 1e-12 or cfg.rope_base != ROPE_BASE:
        raise ValueError("llama2.c fixes eps = 1e-5 and rope base = 10000")
    params = (cfg.d_model, cfg.d_mlp, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab, cfg.n_ctx)
    with open(path, "wb") as f:
        if version == 0:
            vocab_field = cfg.vocab if cfg.tied else -cfg.vocab
            f.write(struct.pack("<7i", *params[:5], vocab_field, params[6]))
        elif version == 1:
            head = struct.pack("<Ii7iB", MAGIC_V1, 1, *params, int(cfg.tied))
            f.write(head + bytes(V1_HEADER_BYTES - len(head)))
        else:
            raise ValueError(f"llama2.c version {version} not supported")
        cos, sin = _freq_cis(cfg) if version == 0 else (None, None)
        for name, shape in _layout(cfg, version):
            if name == "freq_cis_real":
                t = cos
            elif name == "freq_cis_imag":
                t = sin
            else:
                t = model.get(name)
                if ".attn.q." in name or ".attn.k." in name:
                    t = permute_hf_to_gguf(t, cfg.n_heads if ".attn.q." in name else cfg.n_kv_heads)
            f.write(np.ascontiguousarray(t, dtype="<f4").reshape(-1).tobytes())


# -- tokenizer ------------------------------------------------------------------------------------

def find_tokenizer(model_path, vocab):
    """The tokenizer llama2.c would use beside a checkpoint: tok{vocab}.bin, else tokenizer.bin."""
    folder = os.path.dirname(os.path.abspath(model_path))
    for name in (f"tok{vocab}.bin", "tokenizer.bin"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    return None


def read_tokenizer(path, vocab):
    """(max_token_length, [(bytes, score)]) of a llama2.c tokenizer file."""
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    pos, tokens = 4, []
    for _ in range(vocab):
        score, n = struct.unpack_from("<fi", data, pos)
        pos += 8
        if n < 0 or pos + n > len(data):
            raise ValueError(f"{path}: bad token length {n}")
        tokens.append((data[pos:pos + n], score))
        pos += n
    return max_len, tokens


def write_tokenizer(path, tokens):
    """Write [(bytes, score)] as a llama2.c tokenizer."""
    max_len = max((len(b) for b, _ in tokens), default=0)
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max_len))
        for b, score in tokens:
            f.write(struct.pack("<fi", score, len(b)) + b)
