"""Trace folders: one .npy per hook plus index.json, the layout `reslens trace` writes too.

index.json = {"model": path, "tokens": [ids], "dtype": "float64",
              "hooks": [{"name": hook, "file": "<hook>.npy", "shape": [...]}, ...]}
"""

import json
import os

import numpy as np

from .forward import forward
from .model import load_model

INDEX = "index.json"


def write_trace(hooks, out_dir, model_path, tokens, dtype=np.float64):
    os.makedirs(out_dir, exist_ok=True)
    entries = []
    for name, arr in hooks.items():
        fname = name + ".npy"
        np.save(os.path.join(out_dir, fname), np.asarray(arr, dtype=dtype))
        entries.append({"name": name, "file": fname, "shape": list(arr.shape)})
    index = {"model": str(model_path), "tokens": [int(t) for t in tokens],
             "dtype": np.dtype(dtype).name, "hooks": entries}
    # One hook per line keeps the file readable and diffable.
    lines = [f' "{k}": {json.dumps(index[k])},' for k in ("model", "tokens", "dtype")]
    hooks_json = ",\n".join("  " + json.dumps(e) for e in entries)
    with open(os.path.join(out_dir, INDEX), "w") as f:
        f.write("{\n" + "\n".join(lines) + '\n "hooks": [\n' + hooks_json + "\n ]\n}\n")
    return index


def read_trace(trace_dir):
    """(index dict, {hook name: array}) of a trace folder; arrays are memory-mapped .npy files."""
    with open(os.path.join(trace_dir, INDEX)) as f:
        index = json.load(f)
    arrays = {h["name"]: np.load(os.path.join(trace_dir, h["file"]), mmap_mode="r")
              for h in index["hooks"]}
    return index, arrays


def trace(model_path, ids, out_dir, ggml_gelu=False, dtype=np.float64):
    model = load_model(model_path)
    hooks = forward(model, ids, ggml_gelu=ggml_gelu)
    return write_trace(hooks, out_dir, model_path, ids, dtype)
