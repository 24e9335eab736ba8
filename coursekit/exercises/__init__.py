"""The exercise engine: every graded exercise, its checks, and what notebooks call.

Notebooks use ``grade(assignment, exercise_id, globals())`` in hidden test cells, ``check(...)`` and
``hint(...)`` in self-check cells, ``public_checks`` and ``answer_or_library`` so that Run All never halts
in self-study (:mod:`~coursekit.exercises.notebook`). The package is in two halves:

- kernel-side (public, no expected value anywhere): :mod:`~coursekit.exercises.runner` runs an answer
  on its probes and records plain data; :mod:`~coursekit.exercises.probes` builds shared probe inputs;
  :mod:`~coursekit.exercises.harnesses` runs answers that act on state;
- trusted (:mod:`coursekit.exercises.judge`): the declarations (one module per lecture, listed in
  ``judge/registry.py``), references, misconception banks, bands, and the judging of records.

The judge's names (``EXERCISES``, ``get``, ``Exercise``, ``Misconception``, ``check``, ...) are loaded
on first use, so that importing this package loads no reference (the grading kernel cannot).
How to add an exercise: docs/CONVENTIONS.md, "Exercise registry".
"""
from __future__ import annotations

import importlib

from coursekit.exercises.notebook import answer_or_library, check, grade, graded_offering, grading, hint, public_checks
from coursekit.exercises.runner import ATTACK_LIBRARIES, AnswerFormError

_JUDGE_NAMES = {
    "EXERCISES": "registry", "get": "registry", "register": "registry", "LECTURES": "registry",
    "Exercise": "exercise", "Misconception": "exercise", "Probe": "exercise", "Property": "exercise",
    "Bands": "exercise", "Diagnosis": "exercise", "Answer": "exercise",
    "diagnose": "verdict", "judge": "verdict",
    "bands": "bands", "bands_path": "bands", "calibrate": "bands",
}


def __getattr__(name: str):
    if name in _JUDGE_NAMES:
        return getattr(importlib.import_module(f"coursekit.exercises.judge.{_JUDGE_NAMES[name]}"), name)
    raise AttributeError(f"module 'coursekit.exercises' has no attribute {name!r}")


def calibrate_assignment(assignment: str) -> dict:
    """The bands of every stochastic exercise of ``assignment`` (what ``bands.json`` stores)."""
    from coursekit.exercises.judge import bands, registry

    return bands.calibrate_assignment(registry.EXERCISES.values(), assignment)


__all__ = ["ATTACK_LIBRARIES", "AnswerFormError", "answer_or_library", "calibrate_assignment", "check", "grade",
           "graded_offering", "grading", "hint", "public_checks", *sorted(_JUDGE_NAMES)]
