"""The docstring examples run (as doctests, from the repository root with ../shared beside it), and
the type stubs of reslens._core name what the module has."""

from __future__ import annotations

import ast
import doctest
import pathlib

import numpy as np
import pytest

import reslens
from conftest import REPO, get_model, shared_dir
from reslens import ablate, cache, experiment, explain, model, utils
from reslens import generation, hooks


def test_docstring_examples(monkeypatch):
    if shared_dir().resolve() != (REPO.parent / "shared").resolve():
        pytest.skip("the examples name ../shared/models beside the checkout")
    monkeypatch.chdir(REPO)
    m = get_model("stories260K.gguf")
    logits, c = m.run_with_cache("Once upon a time")
    globs = {"reslens": reslens, "np": np, "model": m, "logits": logits, "cache": c,
             "core": reslens._core.Model.load("../shared/models/stories260K/stories260K.gguf")}
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    n = 0
    for module in (reslens, model, cache, explain, ablate, experiment, utils, reslens._core, hooks, generation):
        for test in finder.find(module, module.__name__, extraglobs=globs):
            runner.run(test)
            n += len(test.examples)
    assert runner.failures == 0
    assert n >= 25


def test_stubs_name_what_the_module_has():
    stub = ast.parse((pathlib.Path(reslens.__file__).parent / "_core.pyi").read_text())
    core = reslens._core
    for node in stub.body:
        if isinstance(node, ast.ClassDef):
            assert hasattr(core, node.name), node.name
            cls = getattr(core, node.name)
            for item in node.body:
                name = item.name if isinstance(item, ast.FunctionDef) else getattr(getattr(item, "target", None), "id", None)
                if name and name != "__init__":
                    assert hasattr(cls, name), f"{node.name}.{name}"
        elif isinstance(node, ast.FunctionDef):
            assert hasattr(core, node.name), node.name
    public = {n for n in dir(core) if not n.startswith("__")}
    stubbed = {n.name for n in stub.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    stubbed |= {t.id for n in stub.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    assert public - stubbed == set()
