"""Every ```python block of docs/transformerlens-hooks.md (hooks, activation patching, generate,
lens next to TransformerLens) runs, in order, in one namespace, from the repository root with
../shared beside it, so the page's examples and the numbers they assert stay true. (TransformerLens
code is in ```py blocks, which are not run.)"""

from __future__ import annotations

import re

import pytest

from conftest import REPO, shared_dir

PAGE = REPO / "docs" / "transformerlens-hooks.md"
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def test_every_python_block_of_the_hooks_page_runs(monkeypatch):
    if shared_dir().resolve() != (REPO.parent / "shared").resolve():
        pytest.skip("the page's examples run from the repository root")
    monkeypatch.chdir(REPO)
    blocks = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 8, "the page lost its python blocks"
    ns: dict = {"__name__": "docs.transformerlens_hooks"}
    try:
        for i, code in enumerate(blocks):
            try:
                exec(compile(code, f"{PAGE.name}[block {i + 1}]", "exec"), ns)
            except Exception as e:  # name the block in the failure
                raise AssertionError(f"{PAGE.name}, python block {i + 1} failed: {type(e).__name__}: {e}\n{code}") from e
    finally:
        if "model" in ns:
            ns["model"].reset_hooks(including_permanent=True)


def test_the_block_pattern_skips_transformerlens_blocks():
    text = "```py\nimport transformer_lens\n```\n```python\nx = 1\n```\n"
    assert BLOCK.findall(text) == ["x = 1\n"]
