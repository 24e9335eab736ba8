"""Bands for stochastic exercises: computed from the reference over many seeds, stored per assignment.

A stochastic exercise (a random start, a GAN step) cannot be graded by equality with one reference
output: a correct answer that draws its random numbers differently must pass. Its statistics
(:class:`~coursekit.exercises.judge.exercise.Bands`) must instead stay inside bands: the reference's
[min, max] over ``seeds`` fixed seeds, widened by a quarter of the range (and at least
``min_margin``). ``scripts/calibrate_bands.py`` writes them to ``solutions/<assignment>/bands.json``;
the same seeds give the same file.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from coursekit.exercises.judge.exercise import Answer, Exercise, ProbeFailed, to_torch
from coursekit.exercises.runner import call_once

ROOT = Path(__file__).resolve().parents[3]          # the course checkout (solutions/ beside coursekit/)


def bands_path(assignment: str, root: Path | None = None) -> Path:
    return (root or ROOT) / "solutions" / assignment / "bands.json"


def reference_stats(exercise: Exercise, seed: int) -> dict:
    """The band statistics of the reference on the probe of ``seed``."""
    call = exercise.band_call(seed)
    run = call_once(exercise.reference, call)
    if run.status != "ok":
        raise RuntimeError(f"{exercise.assignment}/{exercise.exercise_id}: the reference failed on {call.name}: {run.error}")
    return exercise.bands.stats(to_torch(run.output, run.form), call.args)


def calibrate(exercise: Exercise) -> dict:
    """Bands for each statistic: [min, max] of the reference over ``bands.seeds`` seeds, widened by a
    quarter of the range (and at least ``bands.min_margin``) so a correct answer with another random draw fits."""
    stats: dict[str, list[float]] = {}
    for seed in range(exercise.bands.seeds):
        for name, value in reference_stats(exercise, seed).items():
            stats.setdefault(name, []).append(float(value))
    bands = {}
    for name, values in sorted(stats.items()):
        lo, hi = min(values), max(values)
        margin = max(0.25 * (hi - lo), exercise.bands.min_margins.get(name, exercise.bands.min_margin))
        bands[name] = {"low": round(lo - margin, 4), "high": round(hi + margin, 4),
                       "reference_mean": round(sum(values) / len(values), 4)}
    return {"seeds": exercise.bands.seeds, "stats": bands}


def calibrate_assignment(exercises: Iterable[Exercise], assignment: str) -> dict:
    return {e.exercise_id: calibrate(e) for e in sorted(exercises, key=lambda e: e.exercise_id)
            if e.assignment == assignment and e.bands is not None}


def _band_files(assignment: str, root: Path | None) -> list[Path]:
    if root is not None:                    # the judge of a grading channel: the course's own file only
        return [bands_path(assignment, root)]
    here = Path.cwd()
    # the course's own file first (autograding runs below the course root), the package's checkout next;
    # a bands.json beside the notebook (released, or handed in with a submission) only when neither exists
    found = [folder / "solutions" / assignment / "bands.json" for folder in (here, *here.parents)]
    return found + [bands_path(assignment), here / "bands.json"]


@lru_cache(maxsize=None)
def _stored(key: tuple[str, str], where: str, root: Path | None) -> dict | None:
    for path in _band_files(key[0], root):
        if path.is_file():
            stored = json.loads(path.read_text())
            if key[1] in stored:
                return stored[key[1]]
    return None


def bands(exercise: Exercise, root: Path | None = None) -> dict:
    """The stored bands of ``exercise`` (computed when no file holds them: the same seeds give the same bands)."""
    stored = _stored(exercise.key, str(Path.cwd()), root)
    return stored if stored is not None else calibrate(exercise)


def outside_band(exercise: Exercise, answer: Answer, root: Path | None = None) -> str | None:
    """The first statistic of the answer's band probes that leaves its band (None: all inside)."""
    stored = bands(exercise, root)["stats"]
    for seed in exercise.bands.graded_seeds:
        call = exercise.band_call(seed)
        try:
            output = answer.on(call.name)
        except ProbeFailed:
            return "result"
        for name, value in exercise.bands.stats(output, call.args).items():
            band = stored[name]
            if not band["low"] <= float(value) <= band["high"]:
                return name
    return None
