"""Every ```python block of every docs/transformerlens*.md page runs, in order, one namespace per
page (from the repository root, with ../shared beside it), so the pages' side-by-side examples and
the numbers they assert stay true. A page with no python block fails: the glob found a page that
tests nothing."""

from __future__ import annotations

import pathlib
import re

import pytest

from conftest import REPO, shared_dir

PAGES = sorted((REPO / "docs").glob("transformerlens*.md"))
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def python_blocks(page: pathlib.Path) -> list:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def test_the_pages_exist():
    assert REPO / "docs" / "transformerlens.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_runs(page: pathlib.Path, monkeypatch):
    if shared_dir().resolve() != (REPO.parent / "shared").resolve():
        pytest.skip("the pages name ../shared/models beside the checkout")
    monkeypatch.chdir(REPO)
    blocks = python_blocks(page)
    assert blocks, f"{page.name} has no ```python block"
    ns: dict = {"__name__": f"docs.{page.stem}"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page.name}[block {i + 1}]", "exec"), ns)
        except Exception as e:  # name the block in the failure
            raise AssertionError(f"{page.name}, python block {i + 1} failed: {type(e).__name__}: {e}\n{code}") from e


def test_block_extraction_finds_each_block(tmp_path: pathlib.Path):
    page = tmp_path / "transformerlens-x.md"
    page.write_text("a\n```python\nx = 1\n```\ntext\n```sh\nls\n```\n```python\nassert x == 1\n```\n")
    assert python_blocks(page) == ["x = 1\n", "assert x == 1\n"]
