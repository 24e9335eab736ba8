"""Validate a submitted notebook and rebuild it on the released structure (no student code runs here).

The notebook that is graded is the *release*: every instructor cell and every test cell (source,
nbgrader metadata, points, checksum, grade id) comes from it; only the solution cells (matched by
grade id) and the cells the student added come from the submission. Edited, deleted or re-pointed
test cells are reported as ``tampering`` (the originals run); a deleted solution cell is graded as
the blank stub.
"""
from __future__ import annotations

import copy
import json

from coursekit.sandbox.records import finding


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def cell_source(cell) -> str:
    src = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(src) if isinstance(src, list) else str(src)


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell) -> bool:
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and not m.get("solution")


def load_submission(data: bytes | None, name: str = "notebook") -> tuple[object | None, list[dict]]:
    """Parse a submitted notebook; return (notebook or None, findings)."""
    import nbformat

    if data is None:
        return None, [finding("invalid", f"{name}.ipynb is missing from the submission", name)]
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [finding("invalid", f"{name}.ipynb is not a text file (not a notebook)", name)]
    except json.JSONDecodeError as exc:
        what = "is truncated or broken JSON" if data.strip().startswith(b"{") else "is not a notebook (not JSON)"
        return None, [finding("invalid", f"{name}.ipynb {what}: {exc.msg} at line {exc.lineno}", name)]
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return None, [finding("invalid", f"{name}.ipynb is JSON but not a notebook (no list of cells)", name)]
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as exc:  # nbformat raises many kinds
        return None, [finding("invalid", f"{name}.ipynb cannot be read as a notebook: {exc}", name)]
    for cell in nb.cells:
        if not isinstance(cell.get("source", ""), str) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return None, [finding("invalid", f"{name}.ipynb has a malformed cell", name)]
    return nb, []


def rebuild(student, released, name: str = "notebook"):
    """The notebook to grade: the release, with the student's solution cells and added cells.

    Returns (notebook, findings). Instructor and test cells always come from the release;
    tampering with them is reported.
    """
    import nbformat

    findings: list[dict] = []
    rel_cells = released.cells
    rel_by_gid = {nbgrader_meta(c)["grade_id"]: c for c in rel_cells if nbgrader_meta(c).get("grade_id")}
    rel_ids = {c.get("id") for c in rel_cells if c.get("id")}
    rel_sources = {cell_source(c).strip() for c in rel_cells}

    student_solution: dict[str, str] = {}
    seen_gids: set[str] = set()
    anchor_of_extra: list[tuple[str | None, object]] = []   # (anchor key, cell)
    anchor: str | None = None
    for cell in student.cells:
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        rel = rel_by_gid.get(gid) if gid else None
        if rel is not None and gid not in seen_gids:
            seen_gids.add(gid)
            rel_meta = nbgrader_meta(rel)
            if is_solution(rel):
                student_solution[gid] = cell_source(cell)
                if not meta.get("solution"):
                    findings.append(finding("tampering", f"the nbgrader metadata of solution cell {gid!r} was edited", gid))
            else:
                changed = [k for k in ("grade", "solution", "locked", "points", "checksum")
                           if meta.get(k) != rel_meta.get(k)]
                if cell_source(cell).strip() != cell_source(rel).strip():
                    what = "emptied" if not cell_source(cell).strip() else "edited"
                    findings.append(finding("tampering", f"test cell {gid!r} was {what} (the original checks ran)", gid))
                elif changed:
                    findings.append(finding("tampering", f"the nbgrader metadata of cell {gid!r} was edited "
                                            f"({', '.join(changed)}); the original was restored", gid))
            anchor = gid
            continue
        if gid and gid not in rel_by_gid:
            findings.append(finding("tampering", f"cell with unknown grade id {gid!r} (not in the release): run as "
                                    "the student's own code, graded by nothing", gid))
        elif gid:
            findings.append(finding("tampering", f"grade id {gid!r} appears twice: the copy ran as the student's own code", gid))
        key = cell.get("id")
        if (key and key in rel_ids) or cell_source(cell).strip() in rel_sources:
            anchor = f"id:{key}" if key in rel_ids else anchor
            continue  # an instructor cell (possibly edited: the release's version runs)
        anchor_of_extra.append((anchor, cell))

    for gid, cell in rel_by_gid.items():
        if gid in seen_gids:
            continue
        if is_solution(cell):
            findings.append(finding("error", f"solution cell {gid!r} was deleted: graded as blank", gid))
        else:
            findings.append(finding("tampering", f"test cell {gid!r} was deleted (the original checks ran)", gid))

    out = copy.deepcopy(released)
    cells = []
    extras_at: dict[str | None, list] = {}
    for key, cell in anchor_of_extra:
        extras_at.setdefault(key, []).append(cell)

    def add_extras(key):
        for cell in extras_at.pop(key, []):
            new = (nbformat.v4.new_code_cell(cell_source(cell)) if cell.cell_type == "code"
                   else nbformat.v4.new_markdown_cell(cell_source(cell)))
            new.metadata["coursekit"] = {"origin": "student"}
            cells.append(new)

    add_extras(None)
    for cell in out.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid and is_solution(cell) and gid in student_solution:
            cell.source = student_solution[gid]
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs")
        if cell.cell_type != "code":
            cell.pop("outputs", None)
        cells.append(cell)
        add_extras(gid or (f"id:{cell.get('id')}" if cell.get("id") else None))
    for key in list(extras_at):
        add_extras(key)
    out.cells = cells
    return out, findings


def student_code(nb) -> list[tuple[str, str]]:
    """(where, source) of every code cell that came from the student."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_solution(cell):
            out.append((nbgrader_meta(cell).get("grade_id", f"cell {i}"), cell.source))
        elif cell.metadata.get("coursekit", {}).get("origin") == "student":
            out.append((f"added cell {i}", cell.source))
    return out



HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"


def has_hidden_tests(cell) -> bool:
    """A test cell with a hidden region (its source as the gradebook holds it)."""
    return HIDDEN_BEGIN in cell_source(cell)


def restore_sources(nb, sources: dict[str, str]) -> None:
    """Put the gradebook's source back into every locked or graded cell (hidden tests included).

    The release has the hidden tests stripped; the gradebook keeps each cell's full source (what
    nbgrader's OverwriteCells restores). ``sources``: {grade_id: source}.
    """
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in sources and not is_solution(cell):
            cell.source = sources[gid]


def exercise_of(cell) -> str | None:
    """The exercise a hidden test cell grades: the second argument of its ``grade("<lecture>", "<id>", ...)``."""
    import ast

    try:
        tree = ast.parse(cell_source(cell))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and len(node.args) >= 2
                and (getattr(node.func, "attr", None) == "grade" or getattr(node.func, "id", None) == "grade")
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[:2])):
            return node.args[1].value
    return None
