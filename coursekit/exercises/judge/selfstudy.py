"""What notebooks call: ``grade`` (hidden test cells), ``check`` and ``hint`` (self-learners).

All three judge in the calling process; in grading through the sandbox, ``grade`` only records (see
:mod:`coursekit.exercises.channel`) and the verdict is made outside the student's kernel.
"""
from __future__ import annotations

from typing import Callable, Mapping

from coursekit.checks import CourseKitError
from coursekit.exercises.judge.exercise import Diagnosis, Exercise
from coursekit.exercises.judge.registry import get
from coursekit.exercises.judge.verdict import diagnose


def lookup(exercise: Exercise, answer) -> Callable | None:
    """The answer: the function itself, or looked up by name in a notebook's namespace (``globals()``)."""
    if isinstance(answer, Mapping):
        return answer.get(exercise.function)
    return answer


def grade(assignment: str, exercise_id: str, answer) -> None:
    """For hidden test cells: raise AssertionError(hint) unless the answer is right.

    ``answer`` is the student's function, or the notebook's namespace (``globals()``), where the
    function is looked up by name (so a deleted or moved answer cell gives a clear message).
    """
    exercise = get(assignment, exercise_id)
    result = diagnose(exercise, lookup(exercise, answer), hidden=True)
    if not result.ok:
        raise AssertionError(result.message)


def check(assignment: str, exercise_id: str, answer) -> Diagnosis:
    """For self-learners: judge an answer now and print what is wrong, with a hint."""
    exercise = get(assignment, exercise_id)
    result = diagnose(exercise, lookup(exercise, answer))
    if result.ok:
        print(f"{exercise.title}: your answer agrees with the reference on every check.")
    else:
        print(f"{exercise.title}: not yet. {result.message}")
        if result.kind in ("wrong", "type", "error"):
            print(f"Stuck? hint({exercise.assignment.split('_')[0]!r}, {exercise_id!r}, 1) gives a hint, "
                  "level 2 a stronger one, level 3 the solution.")
    return result


def hint(assignment: str, exercise_id: str, level: int = 1) -> str:
    """The hint ladder: 1 a hint, 2 a stronger hint, 3 the solution. Prints and returns it."""
    exercise = get(assignment, exercise_id)
    if level not in (1, 2, 3):
        raise CourseKitError("level must be 1 (hint), 2 (stronger hint) or 3 (the solution).")
    text = exercise.hints[level - 1]
    print(text)
    return text
