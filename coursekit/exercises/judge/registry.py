"""The registry: every graded exercise of the course, from one module per lecture, listed explicitly.

A lecture module (``lecture01.py`` ... ``lecture07.py``) declares its exercises in a list
``EXERCISES``; :data:`LECTURES` names the modules. Adding a lecture = one module + one line here.
"""
from __future__ import annotations

from types import ModuleType

from coursekit.checks import CourseKitError
from coursekit.exercises.judge import lecture01, lecture02, lecture03, lecture04, lecture05, lecture06, lecture07
from coursekit.exercises.judge.exercise import Exercise

LECTURES: tuple[ModuleType, ...] = (lecture01, lecture02, lecture03, lecture04, lecture05, lecture06, lecture07)

EXERCISES: dict[tuple[str, str], Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise (an instructor's own, beside the course's); a key registered twice is an error."""
    if exercise.key in EXERCISES and EXERCISES[exercise.key] is not exercise:
        raise CourseKitError(f"The exercise {exercise.assignment}/{exercise.exercise_id} is registered twice.")
    EXERCISES[exercise.key] = exercise
    return exercise


for _lecture in LECTURES:
    for _exercise in _lecture.EXERCISES:
        register(_exercise)


def get(assignment: str, exercise_id: str) -> Exercise:
    """The exercise; ``assignment`` may be its number alone (``"01"``)."""
    matches = [e for (a, i), e in EXERCISES.items()
               if i == exercise_id and (a == assignment or a.split("_")[0] == assignment)]
    if len(matches) != 1:
        known = ", ".join(f"{a}/{i}" for a, i in sorted(EXERCISES))
        raise CourseKitError(f"No exercise {assignment}/{exercise_id}. Known exercises: {known}.")
    return matches[0]
