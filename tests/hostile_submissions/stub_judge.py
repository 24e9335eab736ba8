"""The judge of the test course's 01_judged assignment: the grader's side, outside the student's kernel.

It has the shape of the exercise engine's trusted side (coursekit.exercises.judge.grading):
``prepare_channel(channel, assignment, seed)`` before the kernel starts and
``judge_records(channel, seed, *, assignment, course_root)`` after it ran, returning per exercise a
verdict with ``ok``, ``points_fraction`` and ``message``. The probes are rebuilt here from the seed,
the references and the tolerances (``solutions/01_judged/bands.json``, a judge-only file) never
reach the kernel, and only plain numbers are read from the records.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FUNCTIONS = {"ex1-standardize": "standardize", "ex2-clip": "clip_unit", "ex3-jitter": "jitter"}


def _references(seed: int) -> dict[str, list[np.ndarray]]:
    x = np.random.default_rng(seed).normal(size=6)
    jitter = [x + 0.1 * np.random.default_rng(seed + 1 + k).normal(size=x.shape) for k in range(2)]
    return {"ex1-standardize": [(x - x.mean()) / x.std()] * 2, "ex2-clip": [np.clip(x, -1.0, 1.0)] * 2,
            "ex3-jitter": jitter}


def prepare_channel(channel: Path, assignment: str, seed: int) -> None:
    """Nothing to send: the recorder draws the probes from the seed it is given."""


def _last_records(channel: Path) -> dict[str, dict]:
    last = {}
    path = Path(channel) / "records.jsonl"
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("exercise") in FUNCTIONS:
            last[record["exercise"]] = record
    return last


def _verdict(name: str, record: dict | None, expected: list[np.ndarray], band: dict) -> dict:
    if record is None:
        return {"ok": False, "points_fraction": 0.0, "message": f"{name}: the hidden checks did not run to the end."}
    if record.get("error"):     # the exception's name only: its text is the student's
        return {"ok": False, "points_fraction": 0.0, "message": f"{name} raised an exception on the hidden probes."}
    if record.get("mutated"):
        return {"ok": False, "points_fraction": 0.0,
                "message": f"{name} changes the array it is given in place: return a new one."}
    try:
        outputs = [np.asarray(o, dtype=np.float64) for o in record["outputs"]]
        ok = len(outputs) == len(expected) and all(
            o.shape == e.shape and np.allclose(o, e, rtol=band["rtol"], atol=band["atol"])
            for o, e in zip(outputs, expected))
    except (KeyError, TypeError, ValueError):
        ok = False
    message = f"{name}: correct on the hidden probes." if ok else f"{name}: wrong values on the hidden probes."
    return {"ok": ok, "points_fraction": 1.0 if ok else 0.0, "message": message}


def judge_records(channel: Path, seed: int, *, assignment: str, course_root: Path) -> dict[str, dict]:
    bands = json.loads((Path(course_root) / "solutions" / assignment / "bands.json").read_text())
    records, references = _last_records(channel), _references(seed)
    return {ex: _verdict(name, records.get(ex), references[ex], bands[ex]) for ex, name in FUNCTIONS.items()}
