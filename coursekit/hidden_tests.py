"""The one hidden-test stripper: what a student may see of a cell that holds hidden tests.

nbgrader marks hidden tests with a line containing ``### BEGIN HIDDEN TESTS`` and one containing
``### END HIDDEN TESTS``; everything from the BEGIN line through the END line is hidden. The rule,
line by line as nbgrader's own ``ClearHiddenTests`` reads the markers:

- each hidden region becomes one placeholder line (a comment saying checks are there);
- the code around it stays (a student sees the public part of the cell);
- **a BEGIN without an END hides everything to the end of the cell** (fail closed: a missing
  marker must never publish a reference answer; the site's former regex published the region
  in that case, the feedback's line filter already hid it);
- an END without a BEGIN hides nothing but that marker line.

Used by the static site (:mod:`coursekit.site`: before grading, the region's outputs are dropped
too) and the feedback filter (:mod:`coursekit.feedback`: after grading, a failure keeps only its
reason).
"""
from __future__ import annotations

__all__ = ["BEGIN", "END", "FEEDBACK_PLACEHOLDER", "SITE_PLACEHOLDER", "strip_hidden", "strip_hidden_cells"]

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
FEEDBACK_PLACEHOLDER = "# (hidden checks ran here; their code is not shown)"
SITE_PLACEHOLDER = "# hidden checks: they run when the notebook is graded"


def strip_hidden(source: str, placeholder: str = FEEDBACK_PLACEHOLDER) -> tuple[str, bool]:
    """Remove hidden-test regions from a cell's source; return (new source, was there one?).

    Each region (BEGIN line through END line, or through the last line when END is missing)
    becomes the single line ``placeholder``.
    """
    out: list[str] = []
    inside = found = False
    for line in source.split("\n"):
        if BEGIN in line:
            if not inside:
                out.append(placeholder)
            inside = found = True
        elif END in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out), found


def strip_hidden_cells(nb, placeholder: str = SITE_PLACEHOLDER, *, clear_outputs: bool = True) -> int:
    """Strip every code cell of ``nb`` in place (and drop its outputs); return how many had hidden tests."""
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.source, found = strip_hidden(cell.source, placeholder)
        if found:
            count += 1
            if clear_outputs:
                cell.outputs = []
    return count
