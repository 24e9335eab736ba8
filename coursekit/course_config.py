"""The nbgrader settings of a coursekit course, in one place.

``nbgrader_config.py`` at the course root (and the tiny course of the hostile-submission tests) call
:func:`apply`; nbgrader reads the result as usual::

    from coursekit.course_config import apply
    apply(get_config(), os.path.dirname(os.path.abspath(__file__)))
"""
from __future__ import annotations

import os


def apply(c, root: str) -> None:
    """Fill the traitlets config ``c`` for the course directory ``root``."""
    c.CourseDirectory.root = root
    c.CourseDirectory.course_id = "coursekit"
    c.CourseDirectory.source_directory = "solutions"      # instructor sources (solutions, hidden tests)
    c.CourseDirectory.release_directory = "notebooks"     # student versions, made by `coursekit release`
    c.CourseDirectory.db_url = "sqlite:///" + os.path.join(root, "gradebook.db")

    # Student versions: the solution region becomes this stub.
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

    # A cell that runs longer than this during autograding is stopped (its tests fail).
    c.ExecutePreprocessor.timeout = 120
    c.Execute.timeout = 120
    c.Execute.extra_arguments = []

    # A test cell deleted from a submission is put back from the gradebook and run (plain
    # `nbgrader autograde`; the sandbox of `coursekit autograde` restores every test cell anyway).
    c.OverwriteCells.add_missing_cells = True

    # Feedback never shows hidden tests (source or tracebacks): see coursekit/feedback.py.
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    from coursekit.feedback import HideHiddenTests

    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
