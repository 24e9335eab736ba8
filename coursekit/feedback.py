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
