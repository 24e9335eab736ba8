"""Judging in the calling process: ``grade`` (hidden test cells without the sandbox), ``check`` and the
hint ladder (self-learners), and the verdict behind ``answer_or_library``.

In a graded offering nothing printed here shows a line of a solution: the last rung is withheld, and
a rung or message that quotes the solution is replaced (:func:`quotes_the_solution`). The notebook
entry points are in :mod:`coursekit.exercises.notebook`.
"""
from __future__ import annotations

from typing import Callable, Mapping

from coursekit.checks import CourseKitError
from coursekit.exercises.judge.exercise import Diagnosis, Exercise
from coursekit.exercises.judge.registry import EXERCISES, get
from coursekit.exercises.judge.verdict import diagnose

WITHHELD = ("The solution is withheld until grades are out (this course is a graded offering); "
            "hint({number!r}, {exercise_id!r}, 1) and 2 give hints.")


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


def solution_lines(exercise: Exercise) -> list[str]:
    """The lines of the ladder's solution after its ``def`` line (stripped)."""
    return [line.strip() for line in exercise.hints[2].splitlines()[1:] if line.strip()]


def quotes_the_solution(exercise: Exercise, text: str) -> bool:
    return any(line in text for line in solution_lines(exercise))


def _number(exercise: Exercise) -> str:
    return exercise.assignment.split("_")[0]


def check(assignment: str, exercise_id: str, answer, *, graded: bool = False) -> Diagnosis:
    """For self-learners: judge an answer now and print what is wrong, with a hint."""
    exercise = get(assignment, exercise_id)
    result = diagnose(exercise, lookup(exercise, answer))
    message = result.message
    if graded and quotes_the_solution(exercise, message):
        message = exercise.fallback if not quotes_the_solution(exercise, exercise.fallback) else "see the hints."
    if result.ok:
        print(f"{exercise.title}: your answer agrees with the reference on every check.")
    else:
        print(f"{exercise.title}: not yet. {message}")
        if result.kind in ("wrong", "type", "error"):
            last = "the solution is withheld until grades are out" if graded else "level 3 the solution"
            print(f"Stuck? hint({_number(exercise)!r}, {exercise_id!r}, 1) gives a hint, "
                  f"level 2 a stronger one, {last}.")
    result.printed = True
    return result


def hint_text(assignment: str, exercise_id: str, level: int = 1, *, graded: bool = False) -> str:
    """The rung ``level`` of the hint ladder: 1 a hint, 2 a stronger hint, 3 the solution (in a graded
    offering: a note that it is withheld)."""
    exercise = get(assignment, exercise_id)
    if level not in (1, 2, 3):
        raise CourseKitError("level must be 1 (hint), 2 (stronger hint) or 3 (the solution).")
    text = exercise.hints[level - 1]
    if graded and (level == 3 or quotes_the_solution(exercise, text)):
        return WITHHELD.format(number=_number(exercise), exercise_id=exercise.exercise_id)
    return text


def hint(assignment: str, exercise_id: str, level: int = 1, *, graded: bool = False) -> None:
    """Print the rung ``level`` of the hint ladder once."""
    print(hint_text(assignment, exercise_id, level, graded=graded))


def verdict_for(function: str, answer, *, exercise: tuple[str, str] | None = None) -> Diagnosis:
    """The verdict on ``answer``, the student's ``function`` (found by its name in the registry)."""
    if exercise is not None:
        found = get(*exercise)
    else:
        matches = [e for e in EXERCISES.values() if e.function == function]
        if len(matches) != 1:
            raise CourseKitError(f"{len(matches)} exercises ask for a function named {function}: "
                                 "pass exercise=(assignment, exercise_id).")
        found = matches[0]
    return diagnose(found, answer)
