"""GPT-2 in PyTorch with the semantics of Hugging Face's GPT2LMHeadModel (inference path).

    x = wte[t] + wpe[p]
    per block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
        attn: [q|k|v] = c_attn(a) (one fused projection, biases), per-head causal softmax
              of q.k / sqrt(d_head), concatenated heads through c_proj (bias)
        mlp:  c_proj(gelu_new(c_fc(b)))
    logits = ln_f(x) @ wte^T   (tied, no bias)
LayerNorm eps 1e-5 with bias. No dropout anywhere: the trained weights are exactly what the
exported files hold. Linear layers keep PyTorch's [out, in] layout, which is also the canonical
layout of scripts/reslens_ref; the exporter transposes to HF Conv1D [in, out] where needed.
"""

import dataclasses
import math

import torch
import torch.nn as nn


@dataclasses.dataclass
class GPTConfig:
    vocab: int = 2048
    n_ctx: int = 64
    n_layer: int = 4
    n_head: int = 6
    d_model: int = 192
    d_mlp: int = 768
    eps: float = 1e-5


def gelu_new(x):
    """The tanh approximation of GELU that GPT-2 uses (HF `gelu_new`)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_model // cfg.n_head
        self.c_attn = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.c_proj = nn.Linear(cfg.d_model, cfg.d_model)
        mask = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, a):
        B, T, D = a.shape
        q, k, v = self.c_attn(a).split(D, dim=-1)
        # [B, T, D] -> [B, heads, T, d_head]
        q, k, v = (t.view(B, T, self.n_head, self.d_head).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        scores = scores.masked_fill(~self.mask[:T, :T], float("-inf"))
        z = scores.softmax(dim=-1) @ v
        return self.c_proj(z.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.eps)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.eps)
        self.c_fc = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.c_proj = nn.Linear(cfg.d_mlp, cfg.d_model)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(gelu_new(self.c_fc(self.ln_2(x))))


class GPT2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.eps)

    def init_weights(self):
        """GPT-2's initialisation: N(0, 0.02) for matrices and embeddings, zero biases, unit
        LayerNorm gains; the two projections that write into the residual stream get
        std 0.02 / sqrt(2 * n_layer) so the stream's variance does not grow with depth."""
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            elif name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * self.cfg.n_layer))
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):
        """ids [B, T] -> logits [B, T, vocab]."""
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(T, device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T

    def canonical(self):
        """Weights as {reslens_ref canonical name: float32 numpy array} (see reslens_ref/model.py):
        matrices [out, in], c_attn split into q, k, v, tied head (no unembed.w)."""
        d = self.cfg.d_model
        sd = {k: v.detach().to(torch.float32).cpu().numpy() for k, v in self.state_dict().items()}
        out = {"tok_embed": sd["wte.weight"], "pos_embed": sd["wpe.weight"]}
        for L in range(self.cfg.n_layer):
            p, c = f"blocks.{L}.", f"blocks.{L}."
            out[c + "ln1.w"], out[c + "ln1.b"] = sd[p + "ln_1.weight"], sd[p + "ln_1.bias"]
            for i, part in enumerate("qkv"):
                out[c + f"attn.{part}.w"] = sd[p + "attn.c_attn.weight"][i * d:(i + 1) * d]
                out[c + f"attn.{part}.b"] = sd[p + "attn.c_attn.bias"][i * d:(i + 1) * d]
            out[c + "attn.o.w"], out[c + "attn.o.b"] = sd[p + "attn.c_proj.weight"], sd[p + "attn.c_proj.bias"]
            out[c + "ln2.w"], out[c + "ln2.b"] = sd[p + "ln_2.weight"], sd[p + "ln_2.bias"]
            out[c + "mlp.up.w"], out[c + "mlp.up.b"] = sd[p + "c_fc.weight"], sd[p + "c_fc.bias"]
            out[c + "mlp.down.w"], out[c + "mlp.down.b"] = sd[p + "c_proj.weight"], sd[p + "c_proj.bias"]
        out["ln_final.w"], out["ln_final.b"] = sd["ln_f.weight"], sd["ln_f.bias"]
        return out
