"""The float64 reference (scripts/reslens_ref, written from the math, not from the C++) for the
TransformerLens-helper tests: a model's reference forward pass, cached per (model, ids)."""

from __future__ import annotations

import sys
from typing import Dict, Tuple

from conftest import REPO, model_path

sys.path.insert(0, str(REPO / "scripts"))
import reslens_ref  # noqa: E402

_models: Dict[str, object] = {}
_runs: Dict[Tuple[str, tuple], dict] = {}


def ref_model(name: str):
    if name not in _models:
        _models[name] = reslens_ref.load_model(model_path(name))
    return _models[name]


def ref_forward(name: str, ids, edit=None) -> dict:
    """{hook name: float64 array, "logits": ...} of the reference pass (no batch dimension)."""
    key = (name, tuple(int(i) for i in ids))
    if edit is not None:
        return reslens_ref.forward(ref_model(name), list(key[1]), edit=edit)
    if key not in _runs:
        _runs[key] = reslens_ref.forward(ref_model(name), list(key[1]))
    return _runs[key]
