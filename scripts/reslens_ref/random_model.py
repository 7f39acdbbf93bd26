"""Seeded random-weight models in canonical form.

Each tensor has its own generator, seeded from (seed, CRC-32 of its canonical name), so a tensor's
values depend only on the seed, its name and its shape: files written in different formats from
the same config hold the same weights, and a test can regenerate any tensor without the others.
Weights N(0, 0.02); norm weights 1 + N(0, 0.1); biases N(0, 0.02). float32.
"""

import zlib

import numpy as np

from .model import Model, is_norm_weight, tensor_shapes


def random_tensor(seed, name, shape):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    x = rng.standard_normal(shape, dtype=np.float32)
    if is_norm_weight(name):
        return np.float32(1) + np.float32(0.1) * x
    return np.float32(0.02) * x


def random_model(cfg, seed):
    loaders = {name: (lambda n=name, s=shape: random_tensor(seed, n, s))
               for name, shape in tensor_shapes(cfg).items()}
    return Model(cfg, loaders, path=f"random(seed={seed})", fmt="random")
