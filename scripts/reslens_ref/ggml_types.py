"""ggml tensor element types: sizes, dequantisation and quantisation (NumPy only).

Types: F32, F16, BF16, Q8_0 and llama.cpp's quantizations Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32),
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (super-blocks of QK_K = 256) and the non-linear 4-bit IQ4_NL (blocks
of 32) and IQ4_XS (super-blocks of 256), whose 4-bit codes index the int8 table `kvalues_iq4nl`.
Block layouts follow the structs of ggml-common.h; `decode` gives, bit for bit, the float32 values
of ggml-quants.c's `dequantize_row_*` (same float32 operations in the same order). In every format
the products (fp16 scale x small integers) are exact in float32, so the only rounding is the final
`+ m` / `- m` of the types with a minimum (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K), a single float32
rounding that a fused multiply-add would not change either. F32/F16/BF16/Q8_0 and Q4_0, Q5_0,
Q3_K, Q6_K, IQ4_NL, IQ4_XS decode to their exact values.

Encoders: Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 reproduce ggml's reference quantizers
(`quantize_row_*_ref`) bit for bit. The K types use our own deterministic quantizer (not ggml's
iterative scale search): per sub-block scale (and min) from the max/min, sub-scales quantized
against the fp16 super-block scale(s) rounding up so that the range stays covered, then values
quantized with the final, quantized scales and clamped to the code range. IQ4_NL / IQ4_XS: the
value of largest |x| of each block / sub-block maps to the table's extreme entry -127 (IQ4_XS: the
sub-scale of largest magnitude maps to the 6-bit code extreme, the others round away from zero so
their range stays covered); each value takes the nearest entry of the decoded grid (final scale
times table). The table has no 0: all-zero blocks (IQ4_XS: sub-blocks) decode to +0, a lone 0
to the level nearest it.
"""

import numpy as np

F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 = 0, 1, 2, 3, 6, 7, 8
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K = 10, 11, 12, 13, 14
IQ4_NL, IQ4_XS = 20, 23
BF16 = 30
TYPE_NAMES = {F32: "F32", F16: "F16", Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0", Q5_1: "Q5_1",
              Q8_0: "Q8_0", Q2_K: "Q2_K", Q3_K: "Q3_K", Q4_K: "Q4_K", Q5_K: "Q5_K", Q6_K: "Q6_K",
              IQ4_NL: "IQ4_NL", IQ4_XS: "IQ4_XS", BF16: "BF16"}
NAME_TO_TYPE = {v.lower(): k for k, v in TYPE_NAMES.items()}

# llama.cpp's `general.file_type` (enum llama_ftype) for a file whose 2-D weights have this type;
# Q3_K/Q4_K/Q5_K use the _M ("medium") values, which llama-quantize's aliases Q3_K/Q4_K/Q5_K name.
FILE_TYPE = {F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10,
             Q3_K: 12, Q4_K: 15, Q5_K: 17, Q6_K: 18, IQ4_NL: 25, IQ4_XS: 30, BF16: 32}

QK8_0 = 32  # values per Q8_0 block
Q8_0_BLOCK_BYTES = 2 + QK8_0  # fp16 scale, then 32 int8
QK_K = 256  # values per K-type super-block
K_TYPES = (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)
IQ4_TYPES = (IQ4_NL, IQ4_XS)  # codes index KVALUES_IQ4NL (IQ4_XS: 256 per super-block, like K)
# ggml-common.h's kvalues_iq4nl: the 16 levels of IQ4_NL / IQ4_XS (non-uniform, -127..113)
KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                         dtype=np.int8)

_F2 = "<f2"
# Block structs of ggml-common.h (packed, little-endian; fields in memory order).
_BLOCK_DTYPES = {
    Q4_0: [("d", _F2), ("qs", "u1", (16,))],                                         # 18 bytes
    Q4_1: [("d", _F2), ("m", _F2), ("qs", "u1", (16,))],                             # 20
    Q5_0: [("d", _F2), ("qh", "<u4"), ("qs", "u1", (16,))],                          # 22
    Q5_1: [("d", _F2), ("m", _F2), ("qh", "<u4"), ("qs", "u1", (16,))],              # 24
    Q8_0: [("d", _F2), ("qs", "i1", (QK8_0,))],                                      # 34
    Q2_K: [("scales", "u1", (16,)), ("qs", "u1", (64,)), ("d", _F2), ("dmin", _F2)],  # 84
    Q3_K: [("hmask", "u1", (32,)), ("qs", "u1", (64,)), ("scales", "u1", (12,)), ("d", _F2)],  # 110
    Q4_K: [("d", _F2), ("dmin", _F2), ("scales", "u1", (12,)), ("qs", "u1", (128,))],  # 144
    Q5_K: [("d", _F2), ("dmin", _F2), ("scales", "u1", (12,)), ("qh", "u1", (32,)),
           ("qs", "u1", (128,))],                                                     # 176
    Q6_K: [("ql", "u1", (128,)), ("qh", "u1", (64,)), ("scales", "i1", (16,)), ("d", _F2)],  # 210
    IQ4_NL: [("d", _F2), ("qs", "u1", (16,))],                                       # 18
    IQ4_XS: [("d", _F2), ("scales_h", "<u2"), ("scales_l", "u1", (4,)),
             ("qs", "u1", (128,))],                                                   # 136
}
_BLOCK_DTYPES = {t: np.dtype(f) for t, f in _BLOCK_DTYPES.items()}
# values per block
BLOCK_SIZE = {Q4_0: 32, Q4_1: 32, Q5_0: 32, Q5_1: 32, Q8_0: QK8_0,
              Q2_K: QK_K, Q3_K: QK_K, Q4_K: QK_K, Q5_K: QK_K, Q6_K: QK_K, IQ4_NL: 32, IQ4_XS: QK_K}
BLOCK_BYTES = {t: dt.itemsize for t, dt in _BLOCK_DTYPES.items()}
assert BLOCK_BYTES == {Q4_0: 18, Q4_1: 20, Q5_0: 22, Q5_1: 24, Q8_0: 34,
                       Q2_K: 84, Q3_K: 110, Q4_K: 144, Q5_K: 176, Q6_K: 210,
                       IQ4_NL: 18, IQ4_XS: 136}

_Q8_0_DTYPE = _BLOCK_DTYPES[Q8_0]
_CHUNK = 1 << 16  # blocks per vectorised step (bounds the temporaries for big tensors)
_f32 = np.float32


def nbytes(ggml_type, n_elements):
    """Bytes taken by n_elements of this type (n_elements must fill whole blocks)."""
    if ggml_type == F32:
        return 4 * n_elements
    if ggml_type in (F16, BF16):
        return 2 * n_elements
    if ggml_type in BLOCK_SIZE:
        qk = BLOCK_SIZE[ggml_type]
        if n_elements % qk:
            raise ValueError(f"{TYPE_NAMES[ggml_type]} needs a multiple of {qk} elements, "
                             f"got {n_elements}")
        return n_elements // qk * BLOCK_BYTES[ggml_type]
    raise ValueError(f"unsupported ggml type {ggml_type}")


def row_ok(ggml_type, ne0):
    """Whether a row of ne0 elements can be stored in this type (quant blocks do not span rows)."""
    return ggml_type not in BLOCK_SIZE or ne0 % BLOCK_SIZE[ggml_type] == 0


def storage_type(wanted, ne0):
    """The type a 2-D tensor with rows of ne0 values gets in a file of type `wanted`: `wanted` if
    its rows fill whole blocks, else, when ne0 % 32 == 0, Q8_0 for the K types and IQ4_NL for
    IQ4_XS (llama-quantize's fallback for IQ4_XS), else F16."""
    if row_ok(wanted, ne0):
        return wanted
    if wanted in K_TYPES and row_ok(Q8_0, ne0):
        return Q8_0
    if wanted == IQ4_XS and row_ok(IQ4_NL, ne0):
        return IQ4_NL
    return F16


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """Round float32 to bfloat16 bits, nearest-even, NaN kept quiet (as ggml's GGML_FP32_TO_BF16)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    quiet = ((u >> 16) | 64).astype(np.uint16)
    return np.where(nan, quiet, rounded)


# -- bit unpacking shared by the decoders and the packers --------------------------------------
#
# Element order inside a block (e: index of the dequantized value):
#   Q4_0..Q5_1   e = 16k + j: nibble k (0 low, 1 high) of qs[j]; Q5_*: 5th bit = bit e of qh (u32).
#   Q2_K, Q3_K   e = 128h + 32g + l: bits 2g..2g+1 of qs[32h + l]; Q3_K: high bit = bit 4h + g of
#                hmask[l]. Sub-block (scale) e // 16.
#   Q4_K, Q5_K   e = 64c + 32k + l: nibble k of qs[32c + l]; Q5_K: 5th bit = bit 2c + k of qh[l].
#                Sub-block (scale/min) e // 32 = 2c + k.
#   Q6_K         e = 128h + 32g + l: low 4 bits = nibble g // 2 of ql[64h + 32(g % 2) + l],
#                high 2 bits = bits 2g..2g+1 of qh[32h + l]. Sub-block (scale) e // 16.
#   IQ4_NL       as Q4_0: e = 16k + j, nibble k of qs[j]; the code indexes KVALUES_IQ4NL.
#   IQ4_XS       e = 32b + 16k + j: nibble k of qs[16b + j]. Sub-block b's 6-bit scale code:
#                low 4 bits = nibble b % 2 of scales_l[b // 2], high 2 = bits 2b..2b+1 of
#                scales_h (u16); the scale is d * (code - 32).

def _nibbles(qs):
    """(nb, 16) bytes -> (nb, 32) values: low nibbles are elements 0..15, high 16..31."""
    return np.concatenate([qs & 0xF, qs >> 4], axis=1)


def _bits32(qh):
    """(nb,) uint32 -> (nb, 32) bits, element e = bit e."""
    return ((qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8)


def _crumbs_k(qs):
    """(nb, 64) bytes -> (nb, 256) 2-bit values (Q2_K / Q3_K order)."""
    q = qs.reshape(-1, 2, 1, 32)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    return ((q >> shifts) & 3).reshape(-1, QK_K)


def _hmask_q3k(hmask):
    """(nb, 32) bytes -> (nb, 256) Q3_K high bits: element 128h + 32g + l = bit 4h+g of hmask[l]."""
    shifts = np.arange(8, dtype=np.uint8).reshape(1, 2, 4, 1)
    return ((hmask[:, None, None, :] >> shifts) & 1).reshape(-1, QK_K)


def _nibbles_k(qs):
    """(nb, 128) bytes -> (nb, 256) 4-bit values (Q4_K / Q5_K order)."""
    q = qs.reshape(-1, 4, 1, 32)
    return np.concatenate([q & 0xF, q >> 4], axis=2).reshape(-1, QK_K)


def _qh_q5k(qh):
    """(nb, 32) bytes -> (nb, 256) Q5_K 5th bits: element 64c + 32k + l = bit 2c + k of qh[l]."""
    shifts = np.arange(8, dtype=np.uint8).reshape(1, 4, 2, 1)
    return ((qh[:, None, None, :] >> shifts) & 1).reshape(-1, QK_K)


def _q6k_values(ql, qh):
    """(nb, 128) ql and (nb, 64) qh -> (nb, 256) 6-bit codes 0..63 of Q6_K."""
    l4 = ql.reshape(-1, 2, 2, 32)  # [h, g % 2, l]
    low = np.concatenate([l4 & 0xF, l4 >> 4], axis=2)  # [h, g, l] with g = 2 * nibble + g % 2
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    high = (qh.reshape(-1, 2, 1, 32) >> shifts) & 3
    return (low | (high << 4)).reshape(-1, QK_K)


def _scales_q3k(s):
    """(nb, 12) bytes -> (nb, 16) 6-bit codes 0..63 (the scale is code - 32).

    Sub-block j: low 4 bits in scales[j] (j < 8, low nibble) or scales[j - 8] (high nibble),
    high 2 bits = bits 2(j // 4)..+1 of scales[8 + j % 4] (what kmask1/kmask2 unpack in ggml)."""
    low = np.concatenate([s[:, :8] & 0xF, s[:, :8] >> 4], axis=1)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 4, 1)
    high = ((s[:, None, 8:12] >> shifts) & 3).reshape(-1, 16)
    return low | (high << 4)


def _scales_iq4xs(sh, sl):
    """(nb,) uint16 scales_h and (nb, 4) scales_l -> (nb, 8) 6-bit codes 0..63 (scale code - 32)."""
    low = np.stack([sl & 0xF, sl >> 4], axis=2).reshape(-1, 8)
    high = (sh[:, None] >> (2 * np.arange(8, dtype=np.uint16))) & 3
    return low | (high.astype(np.uint8) << 4)


def _scale_min_k4(s):
    """(nb, 12) bytes -> (nb, 8) scales and (nb, 8) mins, 6-bit (ggml's get_scale_min_k4)."""
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)], axis=1)
    mn = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], axis=1)
    return sc, mn


# -- decoders: (nb,) blocks -> (nb, block size) float32 -------------------------------------------

def _half(b, field):
    return b[field].astype(_f32)


def _dec_q8_0(b):
    return _half(b, "d")[:, None] * b["qs"].astype(_f32)


def _dec_q4_0(b):
    # y = (q - 8) * d
    q = _nibbles(b["qs"]).astype(np.int16) - 8
    return q.astype(_f32) * _half(b, "d")[:, None]


def _dec_q4_1(b):
    # y = q * d + m   (product exact, one rounding in the add)
    q = _nibbles(b["qs"])
    return q.astype(_f32) * _half(b, "d")[:, None] + _half(b, "m")[:, None]


def _dec_q5_0(b):
    # y = (q - 16) * d
    q = (_nibbles(b["qs"]) | (_bits32(b["qh"]) << 4)).astype(np.int16) - 16
    return q.astype(_f32) * _half(b, "d")[:, None]


def _dec_q5_1(b):
    # y = q * d + m
    q = _nibbles(b["qs"]) | (_bits32(b["qh"]) << 4)
    return q.astype(_f32) * _half(b, "d")[:, None] + _half(b, "m")[:, None]


def _dec_q2_k(b):
    # dl = d * (sc & 15), ml = dmin * (sc >> 4) per 16 values; y = dl * q - ml
    sc = b["scales"]
    dl = _half(b, "d")[:, None] * (sc & 0xF).astype(_f32)
    ml = _half(b, "dmin")[:, None] * (sc >> 4).astype(_f32)
    q = _crumbs_k(b["qs"]).astype(_f32).reshape(-1, 16, 16)
    return (dl[:, :, None] * q - ml[:, :, None]).reshape(-1, QK_K)


def _dec_q3_k(b):
    # dl = d * (scale code - 32) per 16 values; y = dl * (q2 - (high bit ? 0 : 4))
    dl = _half(b, "d")[:, None] * (_scales_q3k(b["scales"]).astype(np.int16) - 32).astype(_f32)
    q = _crumbs_k(b["qs"]).astype(np.int16) - 4 * (1 - _hmask_q3k(b["hmask"]).astype(np.int16))
    return (dl[:, :, None] * q.astype(_f32).reshape(-1, 16, 16)).reshape(-1, QK_K)


def _dec_q4_k(b):
    # d1 = d * sc, m1 = dmin * m per 32 values; y = d1 * q - m1
    sc, mn = _scale_min_k4(b["scales"])
    d1 = _half(b, "d")[:, None] * sc.astype(_f32)
    m1 = _half(b, "dmin")[:, None] * mn.astype(_f32)
    q = _nibbles_k(b["qs"]).astype(_f32).reshape(-1, 8, 32)
    return (d1[:, :, None] * q - m1[:, :, None]).reshape(-1, QK_K)


def _dec_q5_k(b):
    # as Q4_K with q = 4 low bits + 16 * high bit
    sc, mn = _scale_min_k4(b["scales"])
    d1 = _half(b, "d")[:, None] * sc.astype(_f32)
    m1 = _half(b, "dmin")[:, None] * mn.astype(_f32)
    q = (_nibbles_k(b["qs"]) | (_qh_q5k(b["qh"]) << 4)).astype(_f32).reshape(-1, 8, 32)
    return (d1[:, :, None] * q - m1[:, :, None]).reshape(-1, QK_K)


def _dec_q6_k(b):
    # y = (d * sc) * (q - 32), sc int8 per 16 values
    dsc = _half(b, "d")[:, None] * b["scales"].astype(_f32)
    q = (_q6k_values(b["ql"], b["qh"]).astype(np.int16) - 32).astype(_f32).reshape(-1, 16, 16)
    return (dsc[:, :, None] * q).reshape(-1, QK_K)


_KV_F32 = KVALUES_IQ4NL.astype(_f32)


def _dec_iq4_nl(b):
    # y = d * kvalues_iq4nl[q]
    return _half(b, "d")[:, None] * _KV_F32[_nibbles(b["qs"])]


def _dec_iq4_xs(b):
    # dl = d * (ls - 32) per 32 values, first; then y = dl * kvalues_iq4nl[q]
    ls = _scales_iq4xs(b["scales_h"], b["scales_l"]).astype(np.int16) - 32
    dl = _half(b, "d")[:, None] * ls.astype(_f32)
    q = _nibbles(b["qs"].reshape(-1, 16)).reshape(-1, 8, 32)
    return (dl[:, :, None] * _KV_F32[q]).reshape(-1, QK_K)


_DECODERS = {Q8_0: _dec_q8_0, Q4_0: _dec_q4_0, Q4_1: _dec_q4_1, Q5_0: _dec_q5_0, Q5_1: _dec_q5_1,
             Q2_K: _dec_q2_k, Q3_K: _dec_q3_k, Q4_K: _dec_q4_k, Q5_K: _dec_q5_k, Q6_K: _dec_q6_k,
             IQ4_NL: _dec_iq4_nl, IQ4_XS: _dec_iq4_xs}


def decode(ggml_type, raw, shape):
    """Decode a little-endian byte buffer (anything np.frombuffer accepts) to float32 of `shape`."""
    n = int(np.prod(shape, dtype=np.int64))
    if ggml_type == F32:
        out = np.frombuffer(raw, dtype="<f4", count=n)
    elif ggml_type == F16:
        out = np.frombuffer(raw, dtype="<f2", count=n).astype(np.float32)
    elif ggml_type == BF16:
        out = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2", count=n))
    elif ggml_type in _DECODERS:
        qk = BLOCK_SIZE[ggml_type]
        if n % qk:
            raise ValueError(f"{TYPE_NAMES[ggml_type]} needs a multiple of {qk} elements, got {n}")
        blocks = np.frombuffer(raw, dtype=_BLOCK_DTYPES[ggml_type], count=n // qk)
        dec = _DECODERS[ggml_type]
        out = np.empty((len(blocks), qk), dtype=np.float32)
        for i in range(0, len(blocks), _CHUNK):
            out[i:i + _CHUNK] = dec(blocks[i:i + _CHUNK])
    else:
        raise ValueError(f"unsupported ggml type {ggml_type}")
    return out.reshape(shape)


# -- encoders: (nb, block size) float32 -> (nb,) blocks -------------------------------------------

def _inv(d):
    """ggml's `id = d ? 1.0f/d : 0.0f` in float32."""
    out = np.zeros_like(d)
    np.divide(_f32(1), d, out=out, where=d != 0)
    return out


def _signed_absmax(x):
    """Per row, the value of largest magnitude (the first one on ties), as ggml's loops pick it."""
    return np.take_along_axis(x, np.argmax(np.abs(x), axis=-1)[..., None], axis=-1)[..., 0]


def quantize_q8_0(x):
    """Q8_0 blocks of float values, following ggml's reference quantizer bit for bit.

    Per block of 32: d = max|x| / 127 in float32, stored as fp16; q = roundf(x * (1/d)), where
    both the reciprocal and the product are float32 and roundf rounds halves away from zero.
    """
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.max(np.abs(x), axis=1)
    d = amax / np.float32(127)
    inv = _inv(d)
    v = (x * inv[:, None]).astype(np.float64)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)
    blocks = np.empty(x.shape[0], dtype=_Q8_0_DTYPE)
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q.astype(np.int8)
    return blocks


def _pack_nibbles(q):
    """(nb, 32) codes 0..15 -> (nb, 16) bytes, element j low nibble, j + 16 high nibble."""
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def _pack_bits32(bits):
    """(nb, 32) bits -> (nb,) uint32 with element e at bit e."""
    return (bits.astype(np.uint32) << np.arange(32, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)


def _enc_sym32(x, half):
    """ggml's quantize_row_q4_0_ref / q5_0_ref: d = max / -half (max = the value of largest |x|),
    q = min(2*half - 1, (int)(x * (1/d) + half + 0.5)), all float32, truncation toward zero."""
    mx = _signed_absmax(x)
    d = np.where(mx != 0, mx, _f32(0)) / _f32(-half)  # ggml's max starts at +0: 0 / -8 = -0
    v = x * _inv(d)[:, None] + _f32(half + 0.5)
    q = np.clip(np.trunc(v), 0, 2 * half - 1).astype(np.int32)
    return d, q


def _enc_affine32(x, nmax):
    """ggml's quantize_row_q4_1_ref / q5_1_ref: d = (max - min) / nmax,
    q = (int)((x - min) * (1/d) + 0.5), clamped to nmax; all float32."""
    # the first minimum / maximum in memory order, as ggml's strict comparisons keep it (this
    # only matters for the sign of a zero min)
    mn = np.take_along_axis(x, np.argmin(x, axis=1)[:, None], axis=1)[:, 0]
    mx = np.take_along_axis(x, np.argmax(x, axis=1)[:, None], axis=1)[:, 0]
    d = (mx - mn) / _f32(nmax)
    v = (x - mn[:, None]) * _inv(d)[:, None] + _f32(0.5)
    q = np.clip(np.trunc(v), 0, nmax).astype(np.int32)
    return d, mn, q


def _enc_q4_0(x):
    d, q = _enc_sym32(x, 8)
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q4_0])
    b["d"] = d.astype(np.float16)
    b["qs"] = _pack_nibbles(q)
    return b


def _enc_q4_1(x):
    d, mn, q = _enc_affine32(x, 15)
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q4_1])
    b["d"], b["m"] = d.astype(np.float16), mn.astype(np.float16)
    b["qs"] = _pack_nibbles(q)
    return b


def _enc_q5_0(x):
    d, q = _enc_sym32(x, 16)
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q5_0])
    b["d"] = d.astype(np.float16)
    b["qh"] = _pack_bits32(q >> 4)
    b["qs"] = _pack_nibbles(q & 0xF)
    return b


def _enc_q5_1(x):
    d, mn, q = _enc_affine32(x, 31)
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q5_1])
    b["d"], b["m"] = d.astype(np.float16), mn.astype(np.float16)
    b["qh"] = _pack_bits32(q >> 4)
    b["qs"] = _pack_nibbles(q & 0xF)
    return b


def _fp16_up(v):
    """fp16 of v (float32 array) rounded away from zero, so that |fp16(v)| >= |v|."""
    h = v.astype(np.float16)
    short = np.abs(h.astype(_f32)) < np.abs(v)
    if short.any():
        h[short] = np.nextafter(h[short], np.copysign(np.float16(np.inf), h[short]))
    return h


def _ceil_code(v, lo, hi):
    """Scale codes rounded away from zero (so the quantized scale covers the wanted one), clamped.
    A 1e-3 slack keeps float noise (2.0000002) from costing a whole code."""
    return np.clip(np.sign(v) * np.ceil(np.abs(v) - 1e-3), lo, hi).astype(np.int32)


def _affine_k(x, sub, nmax, smax):
    """Quantizer for x = d*ls * q - dmin*lm (Q2_K, Q4_K, Q5_K): q in 0..nmax, ls and lm in 0..smax.

    Per sub-block of `sub` values: the min (clamped to <= 0, as the min is subtracted) gives lm
    against dmin = fp16(max min / smax) rounded up, ls = ceil((max + dmin*lm) / nmax / d) against
    d = fp16(max needed step / smax) rounded up; then q = round((x + dmin*lm) / (d*ls)), clamped,
    using the float32 scales exactly as the decoder forms them."""
    xs = x.reshape(len(x), -1, sub)
    mins = _f32(0) - np.minimum(xs.min(axis=2), _f32(0))  # >= +0
    dmin16 = _fp16_up(mins.max(axis=1) / _f32(smax))
    dmin = dmin16.astype(_f32)
    lm = _ceil_code(np.divide(mins, dmin[:, None], out=np.zeros_like(mins),
                              where=dmin[:, None] > 0), 0, smax)
    m1 = dmin[:, None] * lm.astype(_f32)
    need = np.maximum(xs.max(axis=2) + m1, _f32(0)) / _f32(nmax)
    d16 = _fp16_up(need.max(axis=1) / _f32(smax))
    d = d16.astype(_f32)
    ls = _ceil_code(np.divide(need, d[:, None], out=np.zeros_like(need), where=d[:, None] > 0),
                    0, smax)
    d1 = d[:, None] * ls.astype(_f32)
    v = np.divide(xs + m1[:, :, None], d1[:, :, None], out=np.zeros_like(xs),
                  where=d1[:, :, None] > 0)
    q = np.clip(np.rint(v), 0, nmax).astype(np.int32).reshape(len(x), -1)
    return d16, dmin16, ls, lm, q


def _symmetric_k(x, sub, qlo, qhi, slo, shi):
    """Quantizer for x = d*s * q (Q3_K, Q6_K): q in qlo..qhi, s in slo..shi (qlo, slo < 0).

    Per sub-block the value of largest |x| maps to qlo (scale = max / qlo, as ggml's reference
    quantizers do), the sub-scale of largest magnitude maps to slo (d = fp16(that / slo) rounded
    away from zero), sub-scale codes round away from zero; q = round(x / (d*s)) clamped, with the
    float32 d*s the decoder forms."""
    xs = x.reshape(len(x), -1, sub)
    sc = _signed_absmax(xs) / _f32(qlo)
    d16 = _fp16_up(_signed_absmax(sc) / _f32(slo))
    d16[d16 == 0] = 0  # +0, not -0
    d = d16.astype(_f32)
    s = _ceil_code(np.divide(sc, d[:, None], out=np.zeros_like(sc), where=d[:, None] != 0),
                   slo, shi)
    dl = d[:, None] * s.astype(_f32)
    v = np.divide(xs, dl[:, :, None], out=np.zeros_like(xs), where=dl[:, :, None] != 0)
    q = np.clip(np.rint(v), qlo, qhi).astype(np.int32).reshape(len(x), -1)
    return d16, s, q


def _pack_crumbs_k(q):
    """(nb, 256) codes 0..3 -> (nb, 64) bytes (Q2_K / Q3_K order)."""
    q = q.reshape(-1, 2, 4, 32)
    return (q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)) \
        .reshape(-1, 64).astype(np.uint8)


def _pack_nibbles_k(q):
    """(nb, 256) codes 0..15 -> (nb, 128) bytes (Q4_K / Q5_K order)."""
    q = q.reshape(-1, 4, 2, 32)
    return (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(-1, 128).astype(np.uint8)


def _pack_scale_min_k4(ls, lm):
    """(nb, 8) 6-bit scales and mins -> (nb, 12) bytes (inverse of get_scale_min_k4)."""
    s = np.empty((len(ls), 12), dtype=np.int32)
    s[:, 0:4] = ls[:, 0:4] | ((ls[:, 4:8] >> 4) << 6)
    s[:, 4:8] = lm[:, 0:4] | ((lm[:, 4:8] >> 4) << 6)
    s[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    return s.astype(np.uint8)


def _enc_q2_k(x):
    d16, dmin16, ls, lm, q = _affine_k(x, 16, 3, 15)
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q2_K])
    b["scales"] = (ls | (lm << 4)).astype(np.uint8)
    b["qs"] = _pack_crumbs_k(q)
    b["d"], b["dmin"] = d16, dmin16
    return b


def _enc_q3_k(x):
    d16, s, q = _symmetric_k(x, 16, -4, 3, -32, 31)
    u = q + 4  # 0..7: bit 2 -> hmask, bits 0..1 -> qs
    code = s + 32  # 0..63
    scales = np.empty((len(x), 12), dtype=np.int32)
    scales[:, 0:8] = (code[:, 0:8] & 0xF) | ((code[:, 8:16] & 0xF) << 4)
    hi = (code >> 4).reshape(-1, 4, 4)  # [j // 4, j % 4]
    scales[:, 8:12] = hi[:, 0] | (hi[:, 1] << 2) | (hi[:, 2] << 4) | (hi[:, 3] << 6)
    h = (u >> 2).reshape(-1, 8, 32) << np.arange(8).reshape(1, 8, 1)  # bit 4h + g of hmask[l]
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q3_K])
    b["hmask"] = h.sum(axis=1).astype(np.uint8)
    b["qs"] = _pack_crumbs_k(u & 3)
    b["scales"] = scales.astype(np.uint8)
    b["d"] = d16
    return b


def _enc_q4_k(x):
    d16, dmin16, ls, lm, q = _affine_k(x, 32, 15, 63)
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q4_K])
    b["d"], b["dmin"] = d16, dmin16
    b["scales"] = _pack_scale_min_k4(ls, lm)
    b["qs"] = _pack_nibbles_k(q)
    return b


def _enc_q5_k(x):
    d16, dmin16, ls, lm, q = _affine_k(x, 32, 31, 63)
    h = (q >> 4).reshape(-1, 8, 32) << np.arange(8).reshape(1, 8, 1)  # bit 2c + k of qh[l]
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q5_K])
    b["d"], b["dmin"] = d16, dmin16
    b["scales"] = _pack_scale_min_k4(ls, lm)
    b["qh"] = h.sum(axis=1).astype(np.uint8)
    b["qs"] = _pack_nibbles_k(q & 0xF)
    return b


def _enc_q6_k(x):
    d16, s, q = _symmetric_k(x, 16, -32, 31, -128, 127)
    u = (q + 32).reshape(-1, 2, 4, 32)  # [h, g, l], codes 0..63
    lo, hi = u & 0xF, u >> 4
    ql = np.stack([lo[:, :, 0] | (lo[:, :, 2] << 4), lo[:, :, 1] | (lo[:, :, 3] << 4)], axis=2)
    qh = hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[Q6_K])
    b["ql"] = ql.reshape(-1, 128).astype(np.uint8)
    b["qh"] = qh.reshape(-1, 64).astype(np.uint8)
    b["scales"] = s.astype(np.int8)
    b["d"] = d16
    return b


def _nearest_iq4(x, dl):
    """Codes 0..15 whose decoded values dl * KVALUES_IQ4NL (float32, as the decoder forms them)
    are nearest to x; x (..., n), dl (...,) float32. The first code wins a tie. Where dl is a
    zero the code is the one that decodes to +0 (kvalue 1 for +0, -10 for -0)."""
    dl = dl[..., None]
    nz = dl != 0
    t = np.divide(x, dl, out=np.zeros_like(x), where=nz)
    # the table is increasing: the nearest level to t is one of the two around it (t's rounding
    # can only move it across a level it is next to, which is then one of the two)
    hi = np.clip(np.searchsorted(_KV_F32, t), 1, 15).astype(np.uint8)
    lo = hi - np.uint8(1)
    err_lo = np.abs(x - dl * _KV_F32[lo])
    err_hi = np.abs(x - dl * _KV_F32[hi])
    q = np.where(err_hi < err_lo, hi, lo)
    return np.where(nz, q, np.where(np.signbit(dl), 7, 8)).astype(np.uint8)


def _enc_iq4_nl(x):
    # d = (value of largest |x|) / -127: that value gets the table's extreme -127. fp16 rounded
    # away from zero, so the grid covers the block (no clipping at -127) and a tiny non-zero block
    # does not flush to a zero scale in fp16's subnormal range.
    d16 = _fp16_up(_signed_absmax(x) / _f32(-127))
    d16[d16 == 0] = 0  # +0, not -0
    q = _nearest_iq4(x, d16.astype(_f32))
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[IQ4_NL])
    b["d"] = d16
    b["qs"] = _pack_nibbles(q)
    return b


def _enc_iq4_xs(x):
    """Per sub-block of 32 the wanted scale s = (value of largest |x|) / -127. The super-block d
    (fp16, rounded away from zero) is the smallest for which every s / d fits the codes -32..31,
    of the sign that maps the s of largest magnitude to -32 where both fit equally; sub-scale
    codes round away from zero (the sub-block's range stays covered); values take the nearest
    level of the final float32 scale dl = d * code."""
    xs = x.reshape(len(x), 8, 32)
    s = _signed_absmax(xs) / _f32(-127)
    smax = np.maximum(s.max(axis=1), _f32(0))
    smin = np.minimum(s.min(axis=1), _f32(0))
    d_pos = np.maximum(smax / _f32(31), -smin / _f32(32))  # d > 0: s / d in -32..31
    d_neg = np.maximum(-smin / _f32(31), smax / _f32(32))  # d < 0: -s / |d| in -32..31
    prefer_neg = np.where(d_pos == d_neg, _signed_absmax(s) > 0, d_neg < d_pos)
    d16 = _fp16_up(np.where(prefer_neg, -d_neg, d_pos))
    d16[d16 == 0] = 0
    d = d16.astype(_f32)
    code = _ceil_code(np.divide(s, d[:, None], out=np.zeros_like(s), where=d[:, None] != 0),
                      -32, 31)
    dl = d[:, None] * code.astype(_f32)
    q = _nearest_iq4(xs, dl)  # (nb, 8, 32)
    ls = code + 32  # 0..63
    b = np.empty(len(x), dtype=_BLOCK_DTYPES[IQ4_XS])
    b["d"] = d16
    b["scales_h"] = ((ls >> 4).astype(np.uint16) << (2 * np.arange(8, dtype=np.uint16))) \
        .sum(axis=1, dtype=np.uint16)
    b["scales_l"] = ((ls[:, 0::2] & 0xF) | ((ls[:, 1::2] & 0xF) << 4)).astype(np.uint8)
    b["qs"] = _pack_nibbles(q.reshape(-1, 32)).reshape(-1, 128)
    return b


_ENCODERS = {Q8_0: quantize_q8_0, Q4_0: _enc_q4_0, Q4_1: _enc_q4_1, Q5_0: _enc_q5_0,
             Q5_1: _enc_q5_1, Q2_K: _enc_q2_k, Q3_K: _enc_q3_k, Q4_K: _enc_q4_k,
             Q5_K: _enc_q5_k, Q6_K: _enc_q6_k, IQ4_NL: _enc_iq4_nl, IQ4_XS: _enc_iq4_xs}


def quantize(ggml_type, x):
    """Blocks (structured array) of a quantized type for float values (any shape, size a
    multiple of the block size; blocks are taken in C order)."""
    qk = BLOCK_SIZE[ggml_type]
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, qk)
    out = np.empty(len(x), dtype=_BLOCK_DTYPES[ggml_type])
    enc = _ENCODERS[ggml_type]
    for i in range(0, len(x), _CHUNK):
        out[i:i + _CHUNK] = enc(x[i:i + _CHUNK])
    return out


def encode_chunks(ggml_type, x, max_elements=1 << 22):
    """encode(ggml_type, x) as a sequence of byte strings, one per group of whole rows of about
    max_elements values: the same bytes when joined (rows are encoded independently: every type
    is element-wise or in blocks within a row), but the encoder's temporaries stay a few MB
    instead of several times a 500 MB tensor."""
    x = np.asarray(x)
    if x.ndim < 2 or x.size <= max_elements:
        yield encode(ggml_type, x)
        return
    rows = x.reshape(-1, x.shape[-1])
    step = max(1, max_elements // x.shape[-1])
    for i in range(0, rows.shape[0], step):
        yield encode(ggml_type, rows[i:i + step])


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
    if ggml_type in _ENCODERS:
        qk = BLOCK_SIZE[ggml_type]
        if x.ndim == 0 or x.shape[-1] % qk:
            raise ValueError(f"{TYPE_NAMES[ggml_type]} rows must be a multiple of {qk}, "
                             f"got {x.shape[-1] if x.ndim else 'a scalar'}")
        return quantize(ggml_type, x32).tobytes()
    raise ValueError(f"unsupported ggml type {ggml_type}")
