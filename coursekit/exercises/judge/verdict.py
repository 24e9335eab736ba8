"""Judging what an answer did: one diagnosis, in self-study and in grading.

:func:`judge` takes an exercise and the :class:`~coursekit.exercises.runner.Record` of the answer's
runs (made in the student's process, or in the student's kernel and sent through the grading
channel) and returns a :class:`Diagnosis`. In order: missing function, shortcut (a forbidden
function executed while the answer ran), an unanswered stub, errors raised by the answer, the form
of the result (type, shape, detached), inputs changed in place, agreement with the reference on
every case; when it disagrees, the known mistake that gives the answer's outputs (the most
fundamental first), then the detectors and properties by depth, then (stochastic exercises) the
bands. Messages never quote reference values or the probes.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from coursekit.exercises.judge import bands as _bands
from coursekit.exercises.judge.exercise import Answer, Diagnosis, Exercise, ProbeFailed
from coursekit.exercises.runner import Record, run_answer

_KNOWN: dict = {}


def _same(a, b, atol: float, rtol: float) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape:
            return False
        return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, atol, rtol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], atol, rtol) for k in a)
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError, RuntimeError):
        return False
    if math.isinf(fa) or math.isinf(fb) or math.isnan(fa) or math.isnan(fb):
        return (fa == fb) or (math.isnan(fa) and math.isnan(fb))
    return abs(fa - fb) <= atol + rtol * abs(fb)


def agrees(exercise: Exercise, outputs: list, others: list) -> bool:
    return len(outputs) == len(others) and all(_same(a, b, exercise.atol, exercise.rtol)
                                               for a, b in zip(outputs, others))


def _case_calls(exercise: Exercise, seed: int) -> list:
    return [c for c in exercise.calls(seed) if c.name.startswith("case-")]


def known_answer(exercise: Exercise, which: str, fn: Callable, seed: int = 0) -> Answer | None:
    """What the reference (or a misconception's wrong answer) does on the cases: computed once per probe
    seed; None when that trusted implementation raises on a case."""
    key = (exercise.key, which, seed)
    if key not in _KNOWN:
        calls = _case_calls(exercise, seed)
        record = run_answer(exercise.function, fn, calls, watch=False)
        ok = len(record.runs) == len(calls) and all(r.status == "ok" for r in record.runs)
        _KNOWN[key] = Answer(exercise, record, seed) if ok else None
    return _KNOWN[key]


def known_outputs(exercise: Exercise, which: str, fn: Callable, seed: int = 0) -> list | None:
    """The case outputs of the reference or of a misconception's wrong answer (None: it raised)."""
    known = known_answer(exercise, which, fn, seed)
    return None if known is None else known.cases


_TYPE_NAMES = {"tensor": "Tensor", "float": "float", "int": "int", "bool": "bool", "str": "str",
               "none": "NoneType", "ndarray": "ndarray", "list": "list", "tuple": "tuple", "dict": "dict"}


def _type_problem(exercise: Exercise, form: dict, reference_form: dict) -> str | None:
    name, kind = exercise.function, form.get("type")
    shown = _TYPE_NAMES.get(kind, form.get("name", kind))
    if exercise.returns == "any":
        return None
    if exercise.returns == "float":
        return None if kind == "float" else f"{name} must return a Python float (use float(...)), not {shown}."
    if kind != "tensor":
        return f"{name} must return a torch.Tensor, not {shown}."
    if form.get("subclass"):
        return f"{name} must return a plain torch.Tensor, not a {form['subclass']} (a subclass of it)."
    if exercise.returns == "scalar":
        dims = len(form["shape"])
        if dims != 0:
            return f"{name} must return a scalar tensor (the mean over the batch), not one with {dims} dimension(s)."
        return None
    if form["shape"] != reference_form.get("shape"):   # the probe's sizes are not quoted: they are hidden
        return f"{name} returned a tensor of the wrong shape: it must have {exercise.shape}."
    if form.get("requires_grad"):
        return f"{name} must return a detached tensor: call .detach() on the result."
    return None


def _holds(check: Callable[[Answer], bool], answer: Answer) -> bool | None:
    """A detector's or a property's value; None when it needs a probe on which the answer raised."""
    try:
        return bool(check(answer))
    except ProbeFailed:
        return None


def judge(exercise: Exercise, record: Record, *, hidden: bool = False, bands_root: Path | None = None,
          seed: int = 0) -> Diagnosis:
    """The diagnosis of what the answer did on the probes of ``seed``. ``hidden``: the message goes to a
    hidden test's output, so it does not quote the answer's own error text (it could name a hidden
    probe's sizes); ``bands_root``: the course whose ``solutions/`` holds the bands (grading)."""
    name = exercise.function
    if record.defined == "missing":
        return Diagnosis(False, "missing", f"{name} is not defined: run the cell with your answer before this "
                         "check (if you deleted or moved that cell, restore it above this one).")
    if record.defined != "ok":
        kind = record.defined.split(": ", 1)[-1]
        return Diagnosis(False, "missing", f"{name} must be a function (def {name}(...)), not {kind}.")
    if record.shortcut:
        return Diagnosis(False, "shortcut", f"this exercise asks you to write {name} yourself; calling "
                         f"{record.shortcut} is not allowed here (use it to check your answer, not as the answer).")
    expected = [c.name for c in exercise.calls(seed)]
    runs = {r.name: r for r in record.runs}
    for call_name in expected:
        run = runs.get(call_name)
        if run is None or run.status == "ok":
            continue
        if run.status == "not-answered":
            return Diagnosis(False, "not-answered", f"{name} is not answered yet: replace "
                             "`raise NotImplementedError()` by your code.")
        if run.status == "form":
            return Diagnosis(False, "type", run.error)
        if call_name.startswith("case-"):
            error_type = run.error.split(":", 1)[0]
            if hidden:
                return Diagnosis(False, "error", f"{name} raised {error_type} on a hidden check: run it on other "
                                 "inputs (the public checks, or check(...) in self-study) to see where.")
            return Diagnosis(False, "error", f"{name} raised {run.error}")
    if any(runs.get(c) is None for c in expected if c.startswith("case-")):
        return Diagnosis(False, "error", f"{name} was not run on every check (the grading record is incomplete).")
    answer = Answer(exercise, record, seed)
    outputs = answer.cases
    reference = known_answer(exercise, "reference", exercise.reference, seed)
    case_runs = [runs[c] for c in expected if c.startswith("case-")]
    for run, reference_run in zip(case_runs, reference.record.runs):
        problem = _type_problem(exercise, run.form, reference_run.form)
        if problem:
            return Diagnosis(False, "type", problem)
    if any(run.mutated for run in record.runs):
        return Diagnosis(False, "mutated", f"{name} changed the tensors it was given (an in-place operation such as "
                         "x += ..., x.clamp_(...) or x.data[...] = ...): work on a copy (x.clone()), so that the "
                         "caller's data stays as it was.")
    if agrees(exercise, outputs, reference.cases):
        if exercise.gradient:
            return _gradient_verdict(exercise, case_runs, reference.record.runs)
        return Diagnosis(True, "ok", f"{name}: correct.")
    return _name_the_mistake(exercise, answer, outputs, bands_root, seed)


def _gradient_verdict(exercise: Exercise, runs: list, reference_runs: list) -> Diagnosis:
    """A loss with the right value: its gradient must reach the inputs, and be the reference's."""
    name = exercise.function
    if any(run.grads is None for run in runs):
        return Diagnosis(False, "no-gradient", f"{name} gives the right value but no gradient flows back through it: "
                         "compute it with torch operations on the inputs (no .detach(), .item(), numpy, or "
                         "torch.tensor(...) of a computed number), so that backward() can reach the model's parameters.")
    for run, ref in zip(runs, reference_runs):
        mine = [torch.from_numpy(g) for g in run.grads]
        theirs = [torch.from_numpy(g) for g in ref.grads]
        if not agrees(exercise, mine, theirs):
            return Diagnosis(False, "wrong", f"{name} gives the right value, but its gradient is not the loss's "
                             f"(e.g. a clamp or a rounded step in the way): {exercise.fallback}")
    return Diagnosis(True, "ok", f"{name}: correct.")


def _name_the_mistake(exercise: Exercise, answer: Answer, outputs: list, bands_root: Path | None,
                      seed: int) -> Diagnosis:
    matched = [m for m in exercise.misconceptions if m.wrong is not None
               and (wrong := known_outputs(exercise, f"wrong: {m.name}", m.wrong, seed)) is not None
               and agrees(exercise, outputs, wrong)]
    if matched:                       # an exact match is the mistake; several: the most fundamental
        m = min(matched, key=lambda m: m.depth)
        return Diagnosis(False, "misconception", m.hint, m.name)
    checks = [(m.depth, i, "detect", m) for i, m in enumerate(exercise.misconceptions) if m.detect is not None]
    checks += [(p.depth, i, "property", p) for i, p in enumerate(exercise.properties)]
    for _, _, kind, item in sorted(checks, key=lambda c: (c[0], c[2] != "detect", c[1])):
        if kind == "detect" and _holds(item.detect, answer):
            return Diagnosis(False, "misconception", item.hint, item.name)
        if kind == "property" and _holds(item.holds, answer) is False:
            return Diagnosis(False, "wrong", item.message)
    if exercise.bands is None:
        return Diagnosis(False, "wrong", exercise.fallback)
    outside = _bands.outside_band(exercise, answer, bands_root)
    if outside:                 # a stochastic answer with another random draw: judged by the bands
        return Diagnosis(False, "wrong", f"{exercise.fallback} (the {outside.replace('_', ' ')} of your "
                         "result is outside the range that correct answers reach)")
    return Diagnosis(True, "ok", f"{exercise.function}: correct.")


def diagnose(exercise: Exercise, fn, *, hidden: bool = False, seed: int = 0) -> Diagnosis:
    """Run the answer ``fn`` on the exercise's probes here and judge it (self-study, plain nbgrader)."""
    if fn is not None and fn is exercise.reference:
        # the registry's own reference handed in as the answer (calling it from an answer is caught
        # by the shortcut watch; in grading, the kernel cannot import it at all)
        record = Record(function=exercise.function, shortcut="the grading internals (coursekit.exercises.judge)")
    else:
        record = run_answer(exercise.function, fn, exercise.calls(seed), exercise.forbidden)
    return judge(exercise, record, hidden=hidden, seed=seed)
