"""safetensors reader and writer (own code; the `safetensors` package is not used).

Layout: uint64 little-endian header size N, N bytes of JSON {name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data; offsets are relative
to the byte after the header. Supported dtypes: F32, F16, BF16.
"""

import json
import struct

import numpy as np

from . import ggml_types

_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2)}


class SafetensorsFile:
    def __init__(self, path):
        self.path = str(path)
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        if len(self._map) < 8:
            raise ValueError(f"{self.path}: too short for a safetensors file")
        (n,) = struct.unpack("<Q", bytes(self._map[:8]))
        if n > len(self._map) - 8:
            raise ValueError(f"{self.path}: header size {n} exceeds the file")
        header = json.loads(bytes(self._map[8:8 + n]).decode("utf-8"))
        self.metadata = header.pop("__metadata__", {}) or {}
        self.data_offset = 8 + n
        self.tensors = {}
        data_len = len(self._map) - self.data_offset
        for name, info in header.items():
            dt = info["dtype"]
            if dt not in _DTYPES:
                raise ValueError(f"{self.path}: tensor {name} has unsupported dtype {dt}")
            begin, end = info["data_offsets"]
            shape = tuple(int(s) for s in info["shape"])
            want = int(np.prod(shape, dtype=np.int64)) * _DTYPES[dt][1]
            if not 0 <= begin <= end <= data_len or end - begin != want:
                raise ValueError(f"{self.path}: tensor {name} has bad data offsets {begin}..{end}")
            self.tensors[name] = (dt, shape, begin)

    def tensor(self, name):
        """Tensor as float32 (F32 tensors are a read-only view of the mapped file)."""
        dt, shape, begin = self.tensors[name]
        n = int(np.prod(shape, dtype=np.int64))
        np_dt, size = _DTYPES[dt]
        raw = self._map[self.data_offset + begin:self.data_offset + begin + n * size]
        arr = raw.view(np_dt)
        if dt == "F16":
            arr = arr.astype(np.float32)
        elif dt == "BF16":
            arr = ggml_types.bf16_bits_to_f32(arr)
        return arr.reshape(shape)


def encode(arr, dtype):
    """Bytes of `arr` stored as dtype "F32", "F16" or "BF16" (rounded nearest-even from float32)."""
    x = np.ascontiguousarray(arr, dtype=np.float32)
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F16":
        return x.astype("<f2").tobytes()
    if dtype == "BF16":
        return ggml_types.f32_to_bf16_bits(x).astype("<u2").tobytes()
    raise ValueError(f"unsupported dtype {dtype}")


def write(path, tensors, dtype="F32", metadata=None):
    """Write [(name, shape, array-or-callable)] to one safetensors file, streaming the data."""
    size = _DTYPES[dtype][1]
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, shape, _ in tensors:
        n = int(np.prod(shape, dtype=np.int64)) * size
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # keep the data 8-byte aligned, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name, shape, data in tensors:
            arr = np.asarray(data() if callable(data) else data)
            if arr.shape != tuple(shape):
                raise ValueError(f"{name}: data has shape {arr.shape}, declared {tuple(shape)}")
            if arr.ndim >= 2 and arr.size > (1 << 22):  # row groups: the encoder's temporaries stay small
                rows = arr.reshape(-1, arr.shape[-1])
                step = max(1, (1 << 22) // arr.shape[-1])
                for i in range(0, rows.shape[0], step):
                    f.write(encode(rows[i:i + step], dtype))
            else:
                f.write(encode(arr, dtype))
            del arr
    return offset
