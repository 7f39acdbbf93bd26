"""ggml tensor element types: sizes, dequantisation and quantisation (NumPy only).

Only the types reslens supports are implemented: F32, F16, BF16 and Q8_0. Everything decodes to
float32, which represents all four exactly (a Q8_0 value d*q has an 11-bit d times an 8-bit q).
"""

import numpy as np

F32, F16, Q8_0, BF16 = 0, 1, 8, 30
TYPE_NAMES = {F32: "F32", F16: "F16", Q8_0: "Q8_0", BF16: "BF16"}
NAME_TO_TYPE = {v.lower(): k for k, v in TYPE_NAMES.items()}

# llama.cpp's `general.file_type` (enum llama_ftype) for a file whose 2-D weights have this type.
FILE_TYPE = {F32: 0, F16: 1, Q8_0: 7, BF16: 32}

QK8_0 = 32  # values per Q8_0 block
Q8_0_BLOCK_BYTES = 2 + QK8_0  # fp16 scale, then 32 int8

_Q8_0_DTYPE = np.dtype([("d", "<f2"), ("qs", "i1", (QK8_0,))])


def nbytes(ggml_type, n_elements):
    """Bytes taken by n_elements of this type (n_elements must fill whole blocks)."""
    if ggml_type == F32:
        return 4 * n_elements
    if ggml_type in (F16, BF16):
        return 2 * n_elements
    if ggml_type == Q8_0:
        if n_elements % QK8_0:
            raise ValueError(f"Q8_0 needs a multiple of {QK8_0} elements, got {n_elements}")
        return n_elements // QK8_0 * Q8_0_BLOCK_BYTES
    raise ValueError(f"unsupported ggml type {ggml_type}")


def row_ok(ggml_type, ne0):
    """Whether a row of ne0 elements can be stored in this type (quant blocks do not span rows)."""
    return ggml_type != Q8_0 or ne0 % QK8_0 == 0


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """Round float32 to bfloat16 bits, nearest-even, NaN kept quiet (as ggml's GGML_FP32_TO_BF16)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    quiet = ((u >> 16) | 64).astype(np.uint16)
    return np.where(nan, quiet, rounded)


def decode(ggml_type, raw, shape):
    """Decode a little-endian byte buffer (anything np.frombuffer accepts) to float32 of `shape`."""
    n = int(np.prod(shape, dtype=np.int64))
    if ggml_type == F32:
        out = np.frombuffer(raw, dtype="<f4", count=n)
    elif ggml_type == F16:
        out = np.frombuffer(raw, dtype="<f2", count=n).astype(np.float32)
    elif ggml_type == BF16:
        out = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2", count=n))
    elif ggml_type == Q8_0:
        blocks = np.frombuffer(raw, dtype=_Q8_0_DTYPE, count=n // QK8_0)
        out = blocks["d"].astype(np.float32)[:, None] * blocks["qs"].astype(np.float32)
    else:
        raise ValueError(f"unsupported ggml type {ggml_type}")
    return out.reshape(shape)


def quantize_q8_0(x):
    """Q8_0 blocks of float values, following ggml's reference quantizer bit for bit.

    Per block of 32: d = max|x| / 127 in float32, stored as fp16; q = roundf(x * (1/d)), where
    both the reciprocal and the product are float32 and roundf rounds halves away from zero.
    """
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.max(np.abs(x), axis=1)
    d = amax / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (x * inv[:, None]).astype(np.float64)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)
    blocks = np.empty(x.shape[0], dtype=_Q8_0_DTYPE)
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q.astype(np.int8)
    return blocks


def encode(ggml_type, x):
    """Encode a float array (C order, ne0 = last axis) as the bytes of a ggml tensor."""
    x = np.asarray(x)
    if ggml_type == F32:
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    # Round from float32 as ggml does; a float64 input is first rounded to float32.
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    if ggml_type == F16:
        return x32.astype("<f2").tobytes()
    if ggml_type == BF16:
        return f32_to_bf16_bits(x32).astype("<u2").tobytes()
    if ggml_type == Q8_0:
        if x.shape[-1] % QK8_0:
            raise ValueError(f"Q8_0 rows must be a multiple of {QK8_0}, got {x.shape[-1]}")
        return quantize_q8_0(x32).tobytes()
    raise ValueError(f"unsupported ggml type {ggml_type}")
