"""C++ errors arrive as Python exceptions of fitting types, never as a crashed interpreter."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import reslens
from conftest import PROMPTS, get_model, model_path


def test_exception_hierarchy():
    assert issubclass(reslens.FormatError, ValueError) and issubclass(reslens.FormatError, reslens.Error)
    assert issubclass(reslens.UnsupportedError, NotImplementedError)
    assert issubclass(reslens.NotFoundError, FileNotFoundError) and issubclass(reslens.NotFoundError, reslens.IoError)
    assert issubclass(reslens.IoError, OSError)
    assert reslens.FormatError.__module__ == "reslens"


def test_missing_file(tmp_path: pathlib.Path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        reslens.load(tmp_path / "nope.gguf")
    with pytest.raises(reslens.IoError):
        reslens.load(str(tmp_path / "nope.gguf"))


def test_folder_without_a_model(tmp_path: pathlib.Path):
    with pytest.raises(reslens.IoError, match="no model found") as e:
        reslens.load(tmp_path)
    assert not isinstance(e.value, FileNotFoundError)


def test_malformed_files(tmp_path: pathlib.Path):
    data = pathlib.Path(model_path("stories260K.gguf")).read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(reslens.FormatError) as e:
        reslens.load(truncated)
    assert isinstance(e.value, ValueError) and "truncated.gguf" in str(e.value)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    with pytest.raises(reslens.FormatError):
        reslens.load(garbage)


def test_unsupported_architecture(tmp_path: pathlib.Path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(reslens.UnsupportedError, match="BertModel") as e:
        reslens.load(tmp_path)
    assert isinstance(e.value, NotImplementedError)


def test_bad_arguments():
    model = get_model("stories260K.gguf")
    text = PROMPTS["stories260K.gguf"]
    V = model.cfg.d_vocab
    with pytest.raises(IndexError, match="outside the vocabulary|out of range"):
        model.run_with_cache([1, V + 5])
    with pytest.raises(IndexError):
        model.run_with_cache([1, -3])
    with pytest.raises(ValueError, match="context window|n_ctx|longer"):
        model.run_with_cache([1] * (model.cfg.n_ctx + 1), names_filter=[])
    with pytest.raises(ValueError, match="empty"):
        model.run_with_cache("", prepend_bos=False)
    with pytest.raises(ValueError, match="batch"):  # a 2-D array is a batch (issue 21); batch=False refuses it
        model.run_with_cache(np.ones((2, 3), dtype=np.int64), batch=False)
    with pytest.raises(TypeError):
        model.to_tokens([1, 2])
    with pytest.raises(TypeError):
        model.run_with_cache(np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="unknown hook"):
        model.run_with_cache(text, names_filter="blocks.0.hook_resid")
    with pytest.raises(IndexError, match="position"):
        reslens.explain(model, text, position=999)
    with pytest.raises(IndexError, match="vocabulary"):
        reslens.explain(model, text, target=V)
    with pytest.raises(IndexError, match="vocabulary"):
        reslens.explain(model, text, target=str(V + 1))
    with pytest.raises(ValueError, match="foil is the target"):
        reslens.explain(model, text, target=13, foil=13)
    with pytest.raises(ValueError, match="empty"):
        reslens.explain(model, text, target="")
    with pytest.raises(TypeError):
        reslens.explain(model, text, target=1.5)
    with pytest.raises(ValueError, match="compat"):
        reslens.explain(model, text, compat="nope")
    with pytest.raises(ValueError, match="top"):
        reslens.explain(model, text, top=0)
    with pytest.raises(IndexError):
        model.weight("W_Q", 99)
    with pytest.raises(ValueError, match="unknown weight"):
        model.weight("W_nope", 0)
    with pytest.raises(IndexError):
        model.W_Q[99]
    with pytest.raises(IndexError):
        model.to_string([V + 1])
    bad = reslens.Intervention(ffn=[(0, 10_000)])
    with pytest.raises(IndexError):
        model.run_with_cache(text, intervention=bad)


def test_errors_never_crash_the_interpreter(tmp_path: pathlib.Path):
    """A child interpreter survives a run of bad calls and exits normally."""
    script = f"""
import reslens
m = reslens.load({model_path('stories260K.gguf')!r})
n = 0
for call in (lambda: m.run_with_cache([10**6]), lambda: reslens.load('/nonexistent'),
             lambda: reslens.explain(m, 'hi', position=50), lambda: m.weight('W_Q', -5),
             lambda: reslens.ablate(m, 'hi', ffn='0:999999')):
    try:
        call()
    except Exception:
        n += 1
print(n)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "5"
