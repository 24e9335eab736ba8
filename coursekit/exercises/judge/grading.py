"""Verdicts outside the student's process: the grader's side of the grading channel.

The sandbox grades one submission like this (see :mod:`coursekit.exercises.channel` for the folder)::

    from coursekit.exercises.judge.grading import prepare_channel, judge_records
    prepare_channel(channel, assignment, seed)          # before the kernel starts
    # run the notebook with COURSEKIT_GRADING_CHANNEL=<channel>, COURSEKIT_PROBE_SEED=<seed>,
    # and coursekit/exercises/judge/ hidden from the kernel
    verdicts = judge_records(channel, seed, assignment=assignment, course_root=root)
    # verdicts["ex2-fgsm"].ok -> the hidden test cell "ex2-fgsm-hidden" gets its points, else 0;
    # its outputs are replaced by verdicts["ex2-fgsm"].message

The probes are rebuilt here from ``seed`` (never read back from the channel, which the kernel can
write), the references and known mistakes run here, and the record of each exercise (the last one
written) is judged by the same code as ``check()`` in self-study
(:func:`coursekit.exercises.judge.verdict.judge`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coursekit.exercises.channel import PROBES_JSON, PROBES_NPZ, encode_calls, read_records
from coursekit.exercises.judge.exercise import Exercise
from coursekit.exercises.judge.registry import EXERCISES
from coursekit.exercises.judge.verdict import judge


@dataclass(frozen=True)
class Verdict:
    """The verdict on one exercise's hidden checks: ``points_fraction`` of its points (1 or 0), and the
    plain-language ``message`` that replaces the hidden cell's outputs in the feedback."""

    ok: bool
    points_fraction: float
    message: str
    kind: str
    records: int = 1              # how many records the kernel wrote for it (the last one is judged)


def exercises_of(assignment: str) -> list[Exercise]:
    return sorted((e for e in EXERCISES.values() if e.assignment == assignment), key=lambda e: e.exercise_id)


def prepare_channel(channel_dir: Path, assignment: str, seed: int) -> Path:
    """Write the probes of every exercise of ``assignment`` (drawn with the per-submission ``seed``) into
    ``channel_dir`` for the kernel."""
    channel_dir = Path(channel_dir)
    channel_dir.mkdir(parents=True, exist_ok=True)
    arrays: dict = {}
    specs = [{"assignment": e.assignment, "exercise_id": e.exercise_id, "function": e.function,
              "forbidden": list(e.forbidden), "calls": encode_calls(e.calls(seed), arrays)}
             for e in exercises_of(assignment)]
    np.savez(channel_dir / PROBES_NPZ, **arrays)
    (channel_dir / PROBES_JSON).write_text(json.dumps(specs))
    return channel_dir


def judge_records(channel_dir: Path, seed: int, *, assignment: str, course_root: Path | None = None
                  ) -> dict[str, Verdict]:
    """The verdict on every exercise of ``assignment`` from the records in ``channel_dir``; an exercise
    without a record (its hidden cell did not run to the end) scores 0. ``course_root``: where
    ``solutions/<assignment>/bands.json`` is read (default: this checkout's)."""
    written = read_records(Path(channel_dir), assignment)
    verdicts = {}
    for exercise in exercises_of(assignment):
        records = written.get(exercise.exercise_id, [])
        if not records:
            verdicts[exercise.exercise_id] = Verdict(False, 0.0, f"{exercise.function}: the hidden checks did not run "
                                                     "(the cell stopped before it finished).", "not-run", 0)
            continue
        last = records[-1]
        if isinstance(last, str):
            verdicts[exercise.exercise_id] = Verdict(False, 0.0, f"{exercise.function}: the grading record could "
                                                     "not be read (was the grading folder changed?).", "unreadable",
                                                     len(records))
            continue
        try:
            result = judge(exercise, last, hidden=True, bands_root=course_root, seed=seed)
        except Exception as err:  # noqa: BLE001  (a record well formed but not judgeable: forged, or a bug here)
            verdicts[exercise.exercise_id] = Verdict(False, 0.0, f"{exercise.function}: the grading record could not "
                                                     f"be judged ({type(err).__name__}).", "unreadable", len(records))
            continue
        verdicts[exercise.exercise_id] = Verdict(result.ok, 1.0 if result.ok else 0.0, result.message, result.kind,
                                                 len(records))
    return verdicts
