"""GGUF v3 writer (own code): typed metadata, then tensors streamed one at a time.

Tensor data can be given as an array or as a zero-argument callable that produces it when the
data section is written, so a multi-GB model never has to be in memory at once. Offsets are fixed
up front from each tensor's declared shape and type.
"""

import struct

import numpy as np

from . import ggml_types
from .gguf import (ARRAY, BOOL, FLOAT32, FLOAT64, INT32, INT64, STRING, UINT32, UINT64, Value,
                   _NUMPY, _SCALAR, DEFAULT_ALIGNMENT, MAGIC)

VERSION = 3


def _string_bytes(s):
    b = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _value_bytes(v):
    t = v.type
    if t in _SCALAR:
        return struct.pack(_SCALAR[t], v.value)
    if t == STRING:
        return _string_bytes(v.value)
    if t == ARRAY:
        et, items = v.elem_type, v.value
        head = struct.pack("<IQ", et, len(items))
        if et in _NUMPY:
            return head + np.asarray(items).astype(_NUMPY[et]).tobytes()
        if et == STRING:
            return head + b"".join(_string_bytes(s) for s in items)
        if et == ARRAY:
            return head + b"".join(_value_bytes(x) for x in items)
    raise ValueError(f"cannot encode metadata value {v!r}")


class GGUFWriter:
    def __init__(self, path, alignment=DEFAULT_ALIGNMENT):
        self.path = str(path)
        self.alignment = alignment
        self.fields = {}
        self.tensors = []  # (name, shape, type, data-or-callable)
        if alignment != DEFAULT_ALIGNMENT:
            self.add("general.alignment", UINT32, alignment)

    # -- metadata -----------------------------------------------------------------------------
    def add_value(self, key, value):
        if key in self.fields:
            raise ValueError(f"duplicate metadata key {key}")
        self.fields[key] = value

    def add(self, key, type_, value, elem_type=None):
        self.add_value(key, Value(type_, value, elem_type))

    def add_string(self, key, s):
        self.add(key, STRING, s)

    def add_uint32(self, key, v):
        self.add(key, UINT32, int(v))

    def add_float32(self, key, v):
        self.add(key, FLOAT32, float(v))

    def add_bool(self, key, v):
        self.add(key, BOOL, bool(v))

    def add_array(self, key, elem_type, items):
        self.add(key, ARRAY, items, elem_type)

    # -- tensors ------------------------------------------------------------------------------
    def add_tensor(self, name, shape, ggml_type, data):
        """Declare a tensor. shape is the NumPy (row-major) shape; data is an array or a callable."""
        shape = tuple(int(s) for s in shape)
        if any(t[0] == name for t in self.tensors):
            raise ValueError(f"duplicate tensor {name}")
        if not 1 <= len(shape) <= 4:
            raise ValueError(f"{name}: {len(shape)} dims")
        if not ggml_types.row_ok(ggml_type, shape[-1]):
            raise ValueError(f"{name}: rows of {shape[-1]} cannot be stored as {ggml_type}")
        self.tensors.append((name, shape, ggml_type, data))

    def _pad(self, n):
        return -n % self.alignment

    def write(self):
        infos, offset = [], 0
        for name, shape, t, _ in self.tensors:
            size = ggml_types.nbytes(t, int(np.prod(shape, dtype=np.int64)))
            infos.append((name, shape, t, offset, size))
            offset += size + self._pad(size)

        head = bytearray(MAGIC)
        head += struct.pack("<IQQ", VERSION, len(self.tensors), len(self.fields))
        for key, v in self.fields.items():
            head += _string_bytes(key) + struct.pack("<I", v.type) + _value_bytes(v)
        for name, shape, t, off, _ in infos:
            head += _string_bytes(name) + struct.pack("<I", len(shape))
            head += struct.pack(f"<{len(shape)}Q", *reversed(shape))
            head += struct.pack("<IQ", t, off)
        head += bytes(self._pad(len(head)))

        with open(self.path, "wb") as f:
            f.write(head)
            for (name, shape, t, data), (_, _, _, _, size) in zip(self.tensors, infos):
                arr = data() if callable(data) else data
                arr = np.asarray(arr)
                if arr.shape != shape:
                    raise ValueError(f"{name}: data has shape {arr.shape}, declared {shape}")
                written = 0
                for raw in ggml_types.encode_chunks(t, arr):  # row groups: small temporaries
                    f.write(raw)
                    written += len(raw)
                if written != size:
                    raise AssertionError(f"{name}: {written} bytes encoded, {size} expected")
                f.write(bytes(self._pad(size)))
                del arr


__all__ = ["GGUFWriter", "Value", "ARRAY", "BOOL", "FLOAT32", "FLOAT64", "INT32", "INT64",
           "STRING", "UINT32", "UINT64"]
