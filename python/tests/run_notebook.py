"""Executes a notebook top to bottom with nbclient (Debian: python3-nbclient, python3-ipykernel) in
the repository root, and exits non-zero if any cell raises. CTest runs it on examples/explain.ipynb
with PYTHONPATH pointing at the built module.

    PYTHONPATH=build/python /usr/bin/python3 python/tests/run_notebook.py examples/explain.ipynb
"""

from __future__ import annotations

import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as e:
        print(f"run_notebook: {e} (Debian: apt-get install python3-nbclient python3-ipykernel)", file=sys.stderr)
        return 1
    path = pathlib.Path(argv[1])
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("RESLENS_REPO", str(REPO))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # ipykernel's debugger notice on stderr
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    try:
        client.execute()
    except CellExecutionError as e:
        print(f"{path}: a cell raised\n{e}", file=sys.stderr)
        return 1
    n = sum(1 for c in nb.cells if c.cell_type == "code")
    print(f"{path}: {n} code cells ran without errors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
