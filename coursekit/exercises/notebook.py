"""What notebook cells call: ``grade``, ``check``, ``hint``, ``public_checks``, ``answer_or_library``.

Two ways a course runs (:func:`graded_offering`):

- **self-study** (the default): ``check`` names a mistake, the hint ladder ends with the solution, and
  Run All on a blank notebook reaches the end (unanswered exercises say so; demos use the library);
- **graded offering** (``COURSEKIT_GRADED=1`` on the students' machines, or ``{"graded": true}`` in a
  ``coursekit_course.json`` beside the notebook or in a folder above it, which ``coursekit release``
  writes for a graded course): no hint and no message shows a line of a solution.

While a notebook is being graded (:func:`grading`: nbgrader sets ``NBGRADER_EXECUTION``, the sandbox
sets ``COURSEKIT_GRADING_CHANNEL``) an unanswered exercise fails as it should, and self-checks are off.
This module runs in the student's kernel: it imports the trusted judge only when it is available.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

CHANNEL_ENV = "COURSEKIT_GRADING_CHANNEL"
COURSE_FILE = "coursekit_course.json"


def grading() -> bool:
    """Whether this notebook is being graded (nbgrader's autograde/validate, or the sandbox)."""
    return bool(os.environ.get("NBGRADER_EXECUTION") or os.environ.get(CHANNEL_ENV))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def graded_offering(start: Path | None = None) -> bool:
    """Whether the course is a graded offering: ``COURSEKIT_GRADED`` (set: it decides), else the nearest
    ``coursekit_course.json`` in ``start`` (the working folder) or a folder above it."""
    if "COURSEKIT_GRADED" in os.environ:
        return _truthy(os.environ["COURSEKIT_GRADED"])
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        path = folder / COURSE_FILE
        if path.is_file():
            try:
                return bool(json.loads(path.read_text()).get("graded", False))
            except (OSError, ValueError, AttributeError):
                return False
    return False


def _judge_available() -> bool:
    try:
        import coursekit.exercises.judge.selfstudy  # noqa: F401
    except ImportError:          # hidden from the kernel while grading
        return False
    return True


def grade(assignment: str, exercise_id: str, answer) -> None:
    """For hidden test cells. In the sandbox (a grading channel is set), run the answer on the channel's
    probes and record what it did: the verdict is made outside this process. Otherwise judge here and
    raise ``AssertionError(hint)`` unless the answer is right."""
    if os.environ.get(CHANNEL_ENV):
        from coursekit.exercises import channel

        channel.record(assignment, exercise_id, answer)
        return
    from coursekit.exercises.judge import selfstudy

    selfstudy.grade(assignment, exercise_id, answer)


def check(assignment: str, exercise_id: str, answer):
    """For self-learners: judge an answer now and print what is wrong, with a hint (off while grading)."""
    if grading() or not _judge_available():
        print("Self-checks are off while this notebook is graded.")
        return None
    from coursekit.exercises.judge import selfstudy

    return selfstudy.check(assignment, exercise_id, answer, graded=graded_offering())


def hint(assignment: str, exercise_id: str, level: int = 1) -> None:
    """The hint ladder, shown once: 1 a hint, 2 a stronger hint, 3 the solution (withheld in a graded
    offering until grades are out)."""
    if grading() or not _judge_available():
        print("Hints are off while this notebook is graded.")
        return None
    from coursekit.exercises.judge import selfstudy

    print(selfstudy.hint_text(assignment, exercise_id, level, graded=graded_offering()))
    return None


@contextmanager
def public_checks(function: str) -> Iterator[None]:
    """Wrap a public check cell: ``with public_checks("my_fgsm"): ...``.

    In self-study, an exercise not answered yet (its stub raises ``NotImplementedError``) prints
    "not answered yet" and the notebook goes on; while grading the error goes through, so a blank
    answer scores 0. Any other error (a failed check) goes through in both."""
    try:
        yield
    except NotImplementedError:
        if grading():
            raise
        print(f"{function} is not answered yet: these checks run once you replace "
              "`raise NotImplementedError()` by your code.")


def answer_or_library(namespace: Mapping, function: str, library: Callable, *, exercise: tuple[str, str] | None = None,
                      ) -> Callable:
    """The function the demos use: the student's ``function`` from ``namespace`` (``globals()``) when it
    passes every check, else ``library`` (coursekit's own), saying which in one line.

    While grading, the library's (the demos are not graded; a wrong answer must not stop the cells
    after them). ``exercise=(assignment, exercise_id)`` when the function name alone is ambiguous."""
    name = f"{getattr(library, '__module__', '')}.{getattr(library, '__qualname__', 'the library')}".lstrip(".")
    answer = namespace.get(function)
    if grading() or not _judge_available():
        print(f"The demos below use {name}.")
        return library
    from coursekit.exercises.judge import selfstudy

    verdict = selfstudy.verdict_for(function, answer, exercise=exercise)
    if verdict.ok:
        print(f"The demos below use your {function} (it passes every check).")
        return answer
    reason = "is not answered yet" if verdict.kind in ("missing", "not-answered") else "does not pass the checks yet"
    print(f"Your {function} {reason}: the demos below use {name}.")
    return library
