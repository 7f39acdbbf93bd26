"""GGUF v2/v3 reader: metadata and tensors (F32, F16, BF16 and the types of ggml_types), memory-mapped.

Layout (all little-endian): magic "GGUF", uint32 version, uint64 tensor count, uint64 metadata
count, then the key/value pairs, then per tensor (name, uint32 n_dims, uint64 ne[n_dims],
uint32 type, uint64 offset), then padding to `general.alignment` (default 32) and the data
section. Offsets are relative to the data section. ne[0] is the contiguous axis, so the NumPy
shape of a tensor is ne reversed.
"""

import struct

import numpy as np

from . import ggml_types

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# Metadata value types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {
    UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
    FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d",
}
_NUMPY = {
    UINT8: "<u1", INT8: "<i1", UINT16: "<u2", INT16: "<i2", UINT32: "<u4", INT32: "<i4",
    FLOAT32: "<f4", BOOL: "<u1", UINT64: "<u8", INT64: "<i8", FLOAT64: "<f8",
}


class Value:
    """A typed metadata value. Arrays keep their element type so that a writer can reproduce them:
    numeric arrays are NumPy arrays, string arrays are lists of str."""

    __slots__ = ("type", "value", "elem_type")

    def __init__(self, type_, value, elem_type=None):
        self.type, self.value, self.elem_type = type_, value, elem_type

    def __repr__(self):
        v = self.value
        if self.type == ARRAY:
            v = f"[{len(v)} x type {self.elem_type}]"
        return f"Value(type={self.type}, {v!r})"


def _decode_str(b):
    # GGUF strings should be UTF-8; surrogateescape keeps any stray byte so that writing the
    # string back with the same error handler reproduces the file exactly.
    return b.decode("utf-8", "surrogateescape")


class TensorInfo:
    __slots__ = ("name", "shape", "type", "offset", "nbytes")

    def __init__(self, name, shape, type_, offset, nbytes):
        self.name, self.shape, self.type, self.offset, self.nbytes = name, shape, type_, offset, nbytes

    @property
    def ne(self):
        return tuple(reversed(self.shape))


class GGUFFile:
    """A parsed GGUF file. `fields` maps key -> Value (in file order); `tensors` maps name ->
    TensorInfo (in file order); `tensor(name)` decodes one tensor to float32."""

    def __init__(self, path):
        self.path = str(path)
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._buf = memoryview(self._map)
        self._pos = 0
        self._parse()

    # -- low-level readers --------------------------------------------------------------------
    def _take(self, n):
        if n < 0 or self._pos + n > len(self._buf):
            raise ValueError(f"{self.path}: truncated at byte {self._pos} (need {n} more)")
        b = self._buf[self._pos:self._pos + n]
        self._pos += n
        return b

    def _scalar(self, fmt):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self._take(size))[0]

    def _string(self):
        n = self._scalar("<Q")
        return _decode_str(bytes(self._take(n)))

    def _value(self, t):
        if t in _SCALAR:
            return Value(t, self._scalar(_SCALAR[t]))
        if t == STRING:
            return Value(t, self._string())
        if t == ARRAY:
            et = self._scalar("<I")
            n = self._scalar("<Q")
            if et in _NUMPY:
                size = np.dtype(_NUMPY[et]).itemsize
                arr = np.frombuffer(self._take(n * size), dtype=_NUMPY[et]).copy()
                if et == BOOL:
                    arr = arr.astype(bool)
                return Value(ARRAY, arr, et)
            if et == STRING:
                return Value(ARRAY, [self._string() for _ in range(n)], et)
            if et == ARRAY:
                return Value(ARRAY, [self._value(ARRAY) for _ in range(n)], et)
            raise ValueError(f"{self.path}: unknown array element type {et}")
        raise ValueError(f"{self.path}: unknown metadata value type {t}")

    # -- structure ----------------------------------------------------------------------------
    def _parse(self):
        if bytes(self._take(4)) != MAGIC:
            raise ValueError(f"{self.path}: not a GGUF file")
        self.version = self._scalar("<I")
        if self.version not in (2, 3):
            raise ValueError(f"{self.path}: GGUF version {self.version} not supported (need 2 or 3)")
        n_tensors = self._scalar("<Q")
        n_kv = self._scalar("<Q")
        self.fields = {}
        for _ in range(n_kv):
            key = self._string()
            if key in self.fields:
                raise ValueError(f"{self.path}: duplicate key {key}")
            self.fields[key] = self._value(self._scalar("<I"))

        self.alignment = int(self.get("general.alignment", DEFAULT_ALIGNMENT))
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise ValueError(f"{self.path}: alignment {self.alignment} is not a power of two")

        infos = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._scalar("<I")
            if not 1 <= n_dims <= 4:
                raise ValueError(f"{self.path}: tensor {name} has {n_dims} dims")
            ne = [self._scalar("<Q") for _ in range(n_dims)]
            t = self._scalar("<I")
            off = self._scalar("<Q")
            if t not in ggml_types.TYPE_NAMES:
                raise ValueError(f"{self.path}: tensor {name} has unsupported type {t}")
            if not ggml_types.row_ok(t, ne[0]):
                raise ValueError(f"{self.path}: tensor {name}: ne0={ne[0]} does not fill {t} blocks")
            n = int(np.prod(ne, dtype=np.int64))
            infos.append(TensorInfo(name, tuple(reversed(ne)), t, off, ggml_types.nbytes(t, n)))

        self.data_offset = -(-self._pos // self.alignment) * self.alignment
        self.tensors = {}
        for ti in infos:
            if ti.name in self.tensors:
                raise ValueError(f"{self.path}: duplicate tensor {ti.name}")
            if ti.offset % self.alignment:
                raise ValueError(f"{self.path}: tensor {ti.name} offset {ti.offset} is not aligned")
            if self.data_offset + ti.offset + ti.nbytes > len(self._buf):
                raise ValueError(f"{self.path}: tensor {ti.name} runs past the end of the file")
            self.tensors[ti.name] = ti

    # -- access -------------------------------------------------------------------------------
    def get(self, key, default=None):
        """Plain Python (or NumPy, for numeric arrays) value of a metadata key."""
        v = self.fields.get(key)
        return default if v is None else v.value

    def raw(self, name):
        ti = self.tensors[name]
        start = self.data_offset + ti.offset
        return self._buf[start:start + ti.nbytes]

    def tensor(self, name):
        """Tensor `name` as float32, NumPy shape (ne reversed)."""
        ti = self.tensors[name]
        return ggml_types.decode(ti.type, self.raw(name), ti.shape)
