"""The one notebook executor: run a notebook headless in a fresh kernel, in a chosen budget mode.

Used by ``coursekit execute``, the static site (:mod:`coursekit.site`), the budgets benchmark
(``benchmarks/bench_notebooks.py``) and the pipeline tests, so that "the lecture runs" means the
same thing everywhere.

The budget mode reaches the kernel through its environment (never by changing this process's
``os.environ``, so executions in threads do not see each other's settings):

- ``fast=True``: ``COURSEKIT_FAST=1`` (the grading/CI budgets, :func:`coursekit.runtime.budget`);
  ``fast=False``: ``COURSEKIT_FAST=0`` (a learner's default budgets). ``NBGRADER_EXECUTION`` is
  removed either way: a lecture executed here is not being graded, and the variable would force
  the fast budgets;
- ``static_widgets=True``: explorers show their static figure (``COURSEKIT_STATIC_WIDGETS=1``), as
  a page without a kernel needs;
- ``env``: any other variables for the kernel (e.g. ``COURSEKIT_CLAIMS_LOG``), applied last; a
  ``None`` value removes the variable (e.g. ``COURSEKIT_DATA`` for the embedded digits).

:func:`run_notebook` never raises for a failing notebook: it returns the error text (a cell's
exception, a timeout, a dead kernel) with the notebook executed so far, so a caller can report
every notebook. :func:`execute_notebook` is the strict form: it writes the executed notebook and
raises :class:`NotebookFailed` on the first error.
"""
from __future__ import annotations

import os
import re
import resource
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

from coursekit.checks import CourseKitError

__all__ = ["Executed", "NotebookFailed", "kernel_env", "run_notebook", "execute_notebook",
           "slowest_cell", "last_line"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_CHARS = 2000   # the tail of a traceback: where the exception and its message are


class NotebookFailed(CourseKitError):
    """A notebook raised (or timed out, or its kernel died) while it was executed."""


@dataclass(frozen=True)
class Executed:
    """One execution: the notebook with its outputs, its wall and kernel CPU time, its error."""

    notebook: object          # nbformat.NotebookNode (executed as far as it got)
    seconds: float            # wall time, kernel start to shutdown
    cpu_seconds: float        # the kernel's CPU time (a busy machine inflates it far less than wall time)
    error: str | None         # None when every cell ran; else the error text without terminal colours

    @property
    def ok(self) -> bool:
        return self.error is None


def kernel_env(*, fast: bool, static_widgets: bool = False,
               env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The kernel's environment: this process's, with the budget mode and ``env`` applied (``None`` removes)."""
    out = dict(os.environ)
    out.pop("NBGRADER_EXECUTION", None)
    out["COURSEKIT_FAST"] = "1" if fast else "0"
    if static_widgets:
        out.update(COURSEKIT_STATIC_WIDGETS="1", COURSEKIT_LIVE_WIDGETS="0")
    for name, value in (env or {}).items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def run_notebook(path: Path, *, fast: bool = True, timeout: int = 600, static_widgets: bool = False,
                 env: Mapping[str, str | None] | None = None) -> Executed:
    """Execute the notebook at ``path`` (cwd: its folder) in a fresh ``python3`` kernel.

    ``timeout`` is per cell, in seconds. Cells record their timing (:func:`slowest_cell`).
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                            store_widget_state=not static_widgets,
                            resources={"metadata": {"path": str(path.parent)}})
    error = None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        client.execute(env=kernel_env(fast=fast, static_widgets=static_widgets, env=env))
    except Exception as exc:  # a cell's error, a timeout, a dead kernel: the caller reports it
        text = _ANSI.sub("", str(exc)).strip()
        error = (text if type(exc).__name__ == "CellExecutionError"
                 else f"{type(exc).__name__}: {text}")[-_ERROR_CHARS:]
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)     # the kernel, once it has exited
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Executed(notebook=nb, seconds=seconds, cpu_seconds=cpu, error=error)


def execute_notebook(path: Path, out_path: Path | None = None, *, fast: bool = True,
                     timeout: int = 600, env: Mapping[str, str | None] | None = None) -> Path:
    """Execute a notebook, write it to ``out_path`` (when given) and return that path.

    The source is never overwritten (``out_path=None`` returns ``path`` unwritten). Raises
    :class:`NotebookFailed` with the error text when a cell fails; the notebook executed so far is
    written first, to read the failure in context.
    """
    import nbformat

    result = run_notebook(path, fast=fast, timeout=timeout, env=env)
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(result.notebook, out_path)
    if result.error:
        raise NotebookFailed(f"{Path(path).name} failed to execute:\n{result.error}")
    return Path(out_path or path)


def last_line(error: str | None) -> str:
    """The last line of an error text (the exception and its message), '' for None."""
    lines = (error or "").strip().splitlines()
    return lines[-1] if lines else ""


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def slowest_cell(nb) -> tuple[str, float]:
    """(cell id, seconds) of the slowest code cell, from nbclient's execution timing metadata."""
    best = ("-", 0.0)
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            seconds = _timestamp(end) - _timestamp(start)
            if seconds > best[1]:
                best = (cell.get("id", "?"), seconds)
    return best
