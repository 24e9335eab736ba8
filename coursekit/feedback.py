"""Keep hidden tests hidden in the feedback students receive.

nbgrader's feedback HTML shows each graded cell's full source, hidden tests
included, and the traceback of a failed check (which quotes the failing source
line). ``HideHiddenTests`` (enabled in ``nbgrader_config.py`` for
``GenerateFeedback``) removes every ``### BEGIN HIDDEN TESTS`` region and
replaces the traceback of a cell that had one by its final line, e.g.
``AssertionError: the step must be x - lr * grad ...``: the plain-language reason,
never the check's code or its reference values.
"""
from __future__ import annotations

import re

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


def placeholder_page(student: str, assignment: str, notebooks) -> dict:
    """{"feedback/<name>.html": base64 page} when nothing could be run (the banner says why)."""
    import base64
    import html

    out = {}
    for name in notebooks:
        page = (f"<html><head><title>{html.escape(name)}</title></head><body><h1>{html.escape(assignment)} / "
                f"{html.escape(name)}: {html.escape(student)}</h1></body></html>")
        out[f"feedback/{name}.html"] = base64.b64encode(page.encode()).decode()
    return out
