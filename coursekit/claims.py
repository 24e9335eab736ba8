"""Claims that can fail: a notebook states what its result shows next to the condition that must hold.

A sentence such as "PGD lowers the accuracy more than FGSM" is only as true as the run that printed
it. In a notebook, write it as a claim::

    from coursekit.claims import claim
    claim(acc_pgd < acc_fgsm,
          f"PGD lowers the accuracy more than FGSM: {acc_pgd:.0%} vs {acc_fgsm:.0%} at eps = {eps}.")

When the condition holds, the statement is shown (as Markdown in Jupyter, as text elsewhere) and
recorded; when it does not, :class:`ClaimError` stops the notebook and says which statement its own
output contradicts, in which budget mode. So a notebook can only say what its run showed, in every
mode (fast / default / large budgets, embedded digits or the full MNIST), and CI proves it by
running the notebooks in each mode.

Every claim made in a process is kept in :func:`made` (statement, mode, data source); with
``COURSEKIT_CLAIMS_LOG=<folder>`` each claim is also appended to ``<folder>/claims.jsonl`` (the CI
lists them per lecture).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from coursekit.checks import CourseKitError

__all__ = ["ClaimError", "claim", "made", "mode_label"]

_MADE: list[dict] = []


class ClaimError(CourseKitError, AssertionError):
    """A statement of the notebook that its own result contradicts."""


def mode_label() -> str:
    """The budget mode and the data source, e.g. ``"default budgets, embedded digits"``."""
    from coursekit import data, runtime

    try:
        source = data.find_source("mnist", "test", download=False).kind
    except CourseKitError:
        source = "no data"
    digits = "embedded digits" if source == "embedded" else f"full MNIST ({source})"
    return f"{runtime.mode()} budgets, {digits}"


def _show(statement: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the course stack
        print(statement)
        return
    if get_ipython() is None:
        print(statement)
    else:
        display(Markdown(statement))


def claim(holds, statement: str, *, show: bool = True) -> str:
    """State ``statement`` if ``holds`` is true, else raise :class:`ClaimError`.

    ``holds``: the condition the statement rests on (a bool, or anything ``bool()`` accepts: a
    one-element tensor, a numpy bool). ``statement``: Markdown, formatted from the values just
    computed. ``show=False`` records the claim without displaying it (for a figure title that
    already says it). Returns the statement.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise CourseKitError("A claim needs its statement: a non-empty string (formatted from the results).")
    record = {"statement": statement, "mode": mode_label(), "holds": bool(holds)}
    _MADE.append(record)
    folder = os.environ.get("COURSEKIT_CLAIMS_LOG")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with open(Path(folder) / "claims.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps({**record, "notebook": os.environ.get("COURSEKIT_NOTEBOOK", "")}) + "\n")
    if not record["holds"]:
        raise ClaimError(
            f"This notebook's own result contradicts its statement ({record['mode']}): {statement!r}. "
            "The text must change to say what this run shows (or the run must show it)."
        )
    if show:
        _show(statement)
    return statement


def made() -> list[dict]:
    """The claims made in this process so far: ``{"statement", "mode", "holds"}`` each."""
    return [dict(record) for record in _MADE]
