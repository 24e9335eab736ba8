"""Authoring helper for nbgrader source notebooks in solutions/ (not part of the package).

    from nbtools import NB
    nb = NB()
    nb.md("# Title")
    nb.code("import torch")
    nb.solution("ex1-name", "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION")
    nb.tests("ex1-name-tests", 2, "assert f(1) == 1\nprint('public checks passed ...')")
    nb.tests("ex1-name-hidden", 2, "### BEGIN HIDDEN TESTS\nassert f(2) == 2\n### END HIDDEN TESTS")
    nb.write("solutions/NN_name/NN_name.ipynb")

Cell ids equal grade ids for graded cells (stable across edits), and a counter elsewhere.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat


class NB:
    def __init__(self) -> None:
        self.cells: list = []
        self._n = 0

    def _id(self, kind: str) -> str:
        self._n += 1
        return f"{kind}-{self._n:03d}"

    def md(self, src: str) -> None:
        cell = nbformat.v4.new_markdown_cell(src.strip("\n"))
        cell["id"] = self._id("md")
        self.cells.append(cell)

    def code(self, src: str) -> None:
        cell = nbformat.v4.new_code_cell(src.strip("\n"))
        cell["id"] = self._id("code")
        self.cells.append(cell)

    def solution(self, grade_id: str, src: str) -> None:
        assert "### BEGIN SOLUTION" in src and "### END SOLUTION" in src, grade_id
        cell = nbformat.v4.new_code_cell(src.strip("\n"))
        cell["id"] = grade_id
        cell["metadata"]["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": False,
                                        "schema_version": 3, "solution": True, "task": False}
        self.cells.append(cell)

    def tests(self, grade_id: str, points: int, src: str) -> None:
        cell = nbformat.v4.new_code_cell(src.strip("\n"))
        cell["id"] = grade_id
        cell["metadata"]["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True,
                                        "points": points, "schema_version": 3, "solution": False,
                                        "task": False}
        self.cells.append(cell)

    def write(self, path: str | Path) -> None:
        ids = [c["id"] for c in self.cells]
        assert len(ids) == len(set(ids)), "duplicate cell ids"
        for c in self.cells:
            assert re.fullmatch(r"[a-zA-Z0-9-_]+", c["id"]), c["id"]
        nb = nbformat.v4.new_notebook()
        nb["cells"] = self.cells
        nb["metadata"] = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                         "name": "python3"},
                          "language_info": {"name": "python"}}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.validate(nb)
        nbformat.write(nb, path)
