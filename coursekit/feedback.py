"""The feedback students receive: verdicts, not internals.

nbgrader's feedback HTML shows each graded cell's full source, hidden tests included, and the
traceback of a failed check (which quotes the failing source line). ``HideHiddenTests`` (enabled
in ``nbgrader_config.py`` for ``GenerateFeedback``, the plain-nbgrader path) removes every
``### BEGIN HIDDEN TESTS`` region and replaces the traceback of a cell that had one by its final
line, e.g. ``AssertionError: the step must be x - lr * grad ...``: the plain-language reason, never
the check's code or its reference values.

The sandbox (``coursekit autograde``) goes further and writes its feedback pages in its own
process (:func:`feedback_page`, nbgrader's feedback template): a hidden test cell shows only its
plain-language verdict (:func:`student_view`), never what was printed while it ran; the message of
a failed hidden check is shown only when the check itself (the test cell or the course's library)
raised it, never the text of an exception the student's own code raised. A banner at the top
(:func:`feedback_banner`) states the score, the result and the findings.
"""
from __future__ import annotations

import copy
import os
import re
import threading

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from coursekit.hidden_tests import strip_hidden  # the placeholder is hidden_tests.FEEDBACK_PLACEHOLDER

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def reason_only(output) -> None:
    """Reduce an error output to its last line (exception type and message)."""
    message = _ANSI.sub("", f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
    output["traceback"] = [message]


class HideHiddenTests(Preprocessor):
    """nbconvert preprocessor: no hidden-test source or traceback in feedback."""

    enabled = Bool(True, help="on by default: nbgrader registers preprocessors without enabling them").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.source, had_hidden = strip_hidden(cell.source)
            if had_hidden:
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        reason_only(output)
        return cell, resources


# ---- the grading banner: the result and its findings at the top of every feedback page -----------

def feedback_banner(result: dict) -> str:
    """HTML: the grading reason and findings (escaped: they may quote student text)."""
    import html

    items = "".join(f"<li><b>{html.escape(f['kind'])}</b>{' (' + html.escape(f['where']) + ')' if f['where'] else ''}: "
                    f"{html.escape(f['message'])}</li>" for f in result["findings"])
    colour = "#e8f5e9" if result.get("reason", "ok") == "ok" else "#fff3e0"
    return (f'<div id="coursekit-grading" style="background:{colour};border:1px solid #999;padding:8px;margin:8px">'
            f"<b>Autograding: {html.escape(str(result.get('score')))} / {html.escape(str(result.get('max_score')))}"
            f" points, result: {html.escape(result.get('reason', 'ok'))}</b>"
            f"{'<ul>' + items + '</ul>' if items else ''}</div>")


def inject_banner(html_text: str, banner: str) -> str:
    """The page with ``banner`` right after its <body> tag."""
    i = html_text.find("<body")
    if i < 0:
        return banner + html_text
    j = html_text.find(">", i) + 1
    return html_text[:j] + banner + html_text[j:]


def placeholder_page(student: str, assignment: str, notebook: str, banner: str) -> str:
    """The feedback page of a notebook that could not be run (the banner says why)."""
    import html

    return (f"<html><head><title>{html.escape(notebook)}</title></head><body>{banner}<h1>{html.escape(assignment)} / "
            f"{html.escape(notebook)}: {html.escape(student)}</h1></body></html>")


# ---- the student's view of a graded notebook ------------------------------------------------------

_FRAME = re.compile(r"^(?:Cell In\[(\d+)\]|File (\S+?):\d+)")
# Exception names shown for a failed hidden check raised by the student's code (a custom class name could
# carry text of its own); anything else is "an exception".
_PLAIN_ERRORS = {"AssertionError", "TypeError", "ValueError", "NameError", "AttributeError", "IndexError",
                 "KeyError", "RuntimeError", "ZeroDivisionError", "NotImplementedError", "MemoryError",
                 "RecursionError", "ImportError", "ModuleNotFoundError", "UnboundLocalError", "OverflowError",
                 "CellTimeoutError", "KernelDied", "NotebookTimeout", "GradingGuardError", "OutputTimeout"}


def _raised_by_the_check(output, cell, library_dirs: tuple[str, ...]) -> bool:
    """The innermost frame of an error is the test cell itself or the course's library (trusted text)."""
    frames = [_FRAME.match(_ANSI.sub("", str(entry)).strip()) for entry in output.get("traceback", [])]
    frames = [m for m in frames if m]
    if not frames:      # an error the grader wrote itself (timeout, guard): one line, no frame
        return output.get("ename") in ("CellTimeoutError", "KernelDied", "NotebookTimeout", "GradingGuardError",
                                       "OutputTimeout")
    cell_no, path = frames[-1].groups()
    if cell_no is not None:
        return int(cell_no) == cell.get("execution_count")
    return os.path.abspath(path).startswith(library_dirs)


def hidden_verdict(cell, score: float | None, points: float, library_dirs: tuple[str, ...]) -> str:
    """The plain-language verdict of a hidden test cell that the judge did not speak for."""
    if score is not None and score >= points > 0:
        return "Hidden checks: passed."
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return "Hidden checks: not passed."
    out = errors[-1]
    ename = str(out.get("ename", "Error"))
    if _raised_by_the_check(out, cell, library_dirs):
        return f"Hidden checks: not passed. {_ANSI.sub('', ename)}: {_ANSI.sub('', str(out.get('evalue', '')))}".strip()
    shown = ename if ename in _PLAIN_ERRORS else "an exception"
    return f"Hidden checks: not passed. Your code raised {shown} while the hidden checks ran."


def student_view(nb, scores: dict[str, float], *, judged: set[str] = frozenset(), library_dirs: tuple[str, ...] = ()):
    """A copy of the graded notebook for the student: hidden cells show only their verdict.

    ``scores``: {grade_id: score}; ``judged``: grade ids whose outputs already are the judge's verdict.
    Every cell's nbgrader metadata gets its score (the feedback template shows it).
    """
    from nbformat import NotebookNode

    view = copy.deepcopy(nb)
    for cell in view.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if meta.get("grade"):
            meta["score"] = scores.get(gid, 0.0)
            meta.setdefault("comment", None)
        if cell.cell_type != "code":
            continue
        cell.source, hidden = strip_hidden(cell.source)
        if hidden and gid not in judged:
            text = hidden_verdict(cell, scores.get(gid), float(meta.get("points", 0)), library_dirs)
            cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=text + "\n")]
    return view


_exporters = threading.local()


def _exporter():
    """nbgrader's feedback template in nbconvert's HTMLExporter (one per thread: exporters keep state)."""
    if getattr(_exporters, "html", None) is None:
        import nbgrader
        from nbconvert.exporters import HTMLExporter
        from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
        from traitlets.config import Config

        here = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader")
        c = Config()
        c.HTMLExporter.template_name = "feedback"
        c.HTMLExporter.extra_template_basedirs = [os.path.join(here, "templates")]
        c.HTMLExporter.extra_template_paths = [os.path.join(here, "static", "node_modules", "bootstrap", "dist", "css")]
        exporter = HTMLExporter(config=c)
        exporter.register_preprocessor(CSSHTMLHeaderPreprocessor(), enabled=True)
        _exporters.html = exporter
    return _exporters.html


def feedback_page(view, *, notebook: str, score: float, max_score: float, banner: str = "") -> str:
    """The feedback HTML of one notebook (nbgrader's template), with the grading banner on top."""
    resources = {"nbgrader": {"notebook": notebook, "score": score, "max_score": max_score, "late_penalty": 0}}
    html_text, _ = _exporter().from_notebook_node(view, resources=resources)
    return inject_banner(html_text, banner) if banner else html_text
