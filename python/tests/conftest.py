"""Fixtures of the Python tests: the shared models (from ../shared beside the checkout, or
$RESLENS_SHARED_DIR) and the model shipped in models/, loaded once per session, and the built CLI for parity checks ($RESLENS_CLI,
else build/reslens). A test that needs the shared models fails when they are missing, as the C++
tests do; parity tests are skipped only when the CLI was not built."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import Dict, List

import pytest

import reslens

REPO = pathlib.Path(__file__).resolve().parents[2]

# name -> path under shared/, and a prompt the tests use for it.
MODELS: Dict[str, str] = {
    "stories260K.gguf": "models/stories260K/stories260K.gguf",
    "stories260K.bin": "models/stories260K/stories260K.bin",
    "TinyStories-656K": "models/TinyStories-656K",
    "TinyStories-656K.gguf": "models/TinyStories-656K/TinyStories-656K-f32.gguf",
    "random-gpt2.gguf": "models/random-gpt2/random-gpt2-test.gguf",
    "random-gpt2-hf": "models/random-gpt2-hf",
    # Shipped in this repository (models/), not in shared/.
    "knowledge-gpt2": "repo:models/knowledge-gpt2",
    "knowledge-gpt2.gguf": "repo:models/knowledge-gpt2/knowledge-gpt2.gguf",
}
PROMPTS: Dict[str, str] = {
    "stories260K.gguf": "Once upon a time, there was a little girl named Lily.",
    "stories260K.bin": "Once upon a time, there was a little girl named Lily.",
    "TinyStories-656K": "Once upon a time, there was a little dog. He liked to",
    "TinyStories-656K.gguf": "Once upon a time, there was a little dog. He liked to",
    "random-gpt2.gguf": "The capital of France is",
    "random-gpt2-hf": "The capital of France is",
    "knowledge-gpt2": "The capital of France is",
    "knowledge-gpt2.gguf": "The official language of Japan is",
}


def shared_dir() -> pathlib.Path:
    for var in ("RESLENS_SHARED_DIR", "RESLENS_SHARED_DIR_DEFAULT"):
        if os.environ.get(var):
            return pathlib.Path(os.environ[var])
    return REPO.parent / "shared"


def model_path(name: str) -> str:
    rel = MODELS[name]
    if rel.startswith("repo:"):
        p = REPO / rel[len("repo:"):]
        if not p.exists():
            pytest.fail(f"{p} is missing from the checkout")
        return str(p)
    p = shared_dir() / rel
    if not p.exists():
        pytest.fail(f"shared model {p} is missing: these tests need ../shared beside the checkout "
                    "(or RESLENS_SHARED_DIR)")
    return str(p)


_loaded: Dict[str, reslens.Model] = {}


def get_model(name: str) -> reslens.Model:
    if name not in _loaded:
        _loaded[name] = reslens.load(model_path(name))
    return _loaded[name]


@pytest.fixture(params=list(MODELS))
def any_model(request) -> tuple:
    """(name, model) for every shared model."""
    return request.param, get_model(request.param)


def cli_path() -> str:
    p = os.environ.get("RESLENS_CLI") or str(REPO / "build" / "reslens")
    if not os.access(p, os.X_OK):
        pytest.skip(f"the reslens CLI is not built ({p}); parity tests need it")
    return p


def run_cli(args: List[str]) -> str:
    """The CLI's stdout (fails the test with its stderr when it exits non-zero)."""
    r = subprocess.run([cli_path(), *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"reslens {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r.stdout


def cli_json(args: List[str]) -> dict:
    return json.loads(run_cli(args))
