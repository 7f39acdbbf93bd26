"""Seeded random-weight models in canonical form.

Each tensor has its own generator, seeded from (seed, CRC-32 of its canonical name), so a tensor's
values depend only on the seed, its name and its shape: files written in different formats from
the same config hold the same weights, and a test can regenerate any tensor without the others.
init "small": weights N(0, 0.02); norm weights 1 + N(0, 0.1); biases N(0, 0.02). init "fan_in"
(weights large enough that a skipped feature shows): matrices N(0, 1/sqrt(fan_in)), embeddings
N(0, 1/sqrt(d_model)) (the unembedding's fan-in when tied), biases N(0, 0.5), norm weights as above.
float32.
"""

import zlib

import numpy as np

from .model import Model, is_norm_weight, tensor_shapes


def random_tensor(seed, name, shape, init="small"):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    x = rng.standard_normal(shape, dtype=np.float32)
    if is_norm_weight(name):
        return np.float32(1) + np.float32(0.1) * x
    # Scaled in place (the same float32 products as `scale * x`): a 7B model's 500 MB embedding
    # is then held once, not twice.
    if init == "small":
        x *= np.float32(0.02)
    elif init != "fan_in":
        raise ValueError(f"unknown init {init!r}")
    elif name == "tok_embed":  # also the unembedding when tied: N(0, 1/sqrt(d_model)) keeps logits O(1)
        x *= np.float32(1 / np.sqrt(shape[1]))
    elif len(shape) == 1:
        x *= np.float32(0.5)
    else:
        x *= np.float32(1 / np.sqrt(shape[-1]))
    return x


def random_model(cfg, seed, init="small"):
    loaders = {name: (lambda n=name, s=shape: random_tensor(seed, n, s, init))
               for name, shape in tensor_shapes(cfg).items()}
    return Model(cfg, loaders, path=f"random(seed={seed})", fmt="random")
