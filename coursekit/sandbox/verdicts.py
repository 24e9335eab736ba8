"""Verdicts outside the student's process: the grading channel and the trusted judge.

Before a submission runs the grader makes a channel folder and a probe seed and starts the kernel
with ``COURSEKIT_GRADING_CHANNEL=<folder>`` and ``COURSEKIT_PROBE_SEED=<int>``. In the kernel,
``coursekit.exercises.grade(...)`` then only *records* the student's outputs into the channel; it
judges nothing. The kernel can write that folder at any time, so the grader keeps only what was
written *while a hidden test cell ran*: after each such cell it copies the bytes appended (and the
files created) during the cell into a trusted folder out of the kernel's reach
(:class:`Channel`), keeping only the records of that cell's own exercise. Anything else found in
the channel at the end is reported as ``tampering``.

After the run the grader calls the exercise engine's judge on the trusted copy (the engine's
trusted side, never loaded by the kernel) and sets each hidden test cell's score from its verdict
(:func:`apply_verdicts`), replacing the cell's outputs by the verdict's message.
"""
from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from coursekit.sandbox.records import finding
from coursekit.sandbox.submission import exercise_of, has_hidden_tests, is_test, nbgrader_meta

# Where the engine's judge lives (the first that exists): (module, function).
JUDGE_CANDIDATES = (("coursekit.exercises", "judge_records"), ("coursekit.exercises.judge", "judge_records"))
EXERCISE_KEYS = ("exercise", "exercise_id")


@dataclass
class Verdict:
    """The judge's word on one exercise: full points when ``ok``, else 0 (or ``fraction`` of them)."""

    ok: bool
    message: str
    fraction: float | None = None

    @classmethod
    def of(cls, v) -> "Verdict":
        """Accept the engine's object or a dict with ok / message / points_fraction."""
        get = v.get if isinstance(v, dict) else (lambda k, d=None: getattr(v, k, d))
        fraction = get("points_fraction", None)
        if fraction is None:
            fraction = get("fraction", None)
        return cls(bool(get("ok", False)), str(get("message", "") or ""),
                   None if fraction is None else min(1.0, max(0.0, float(fraction))))

    def points(self, max_points: float) -> float:
        if self.fraction is not None:
            return round(max_points * self.fraction, 4)
        return float(max_points) if self.ok else 0.0


def probe_seed(secret: str, assignment: str, student: str) -> int:
    """A per-submission probe seed: reproducible by the grader, unpredictable without the course's secret."""
    digest = hmac.new(secret.encode(), f"{assignment}/{student}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def find_judge(spec: str | None = None):
    """The judge function: ``spec`` ("module:function") or the exercise engine's; None if there is none."""
    candidates = [tuple(spec.split(":", 1))] if spec else JUDGE_CANDIDATES
    for module, name in candidates:
        try:
            fn = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if callable(fn):
            return fn
    return None


class Channel:
    """The kernel's channel folder, and the trusted copy of what the hidden checks wrote into it."""

    def __init__(self, folder: Path, trusted: Path):
        self.folder, self.trusted = Path(folder), Path(trusted)
        self.trusted.mkdir(parents=True, exist_ok=True)
        self.taken: dict[str, int] = {}     # file -> bytes accounted for (captured or reported)

    def _files(self) -> dict[str, int]:
        out = {}
        for root, _, names in os.walk(self.folder):
            for name in names:
                path = Path(root) / name
                if path.is_file() and not path.is_symlink():
                    out[str(path.relative_to(self.folder))] = path.stat().st_size
        return out

    def before(self) -> dict[str, int]:
        """Sizes of the channel's files as a hidden test cell starts."""
        return self._files()

    def after(self, before: dict[str, int], cell, where: str) -> list[dict]:
        """Copy what the cell appended (records of its own exercise only); findings for anything odd."""
        exercise = exercise_of(cell)
        found = []
        if any(size < self.taken.get(rel, 0) for rel, size in before.items()):
            found.append(finding("tampering", "the grading channel was rewritten by the student's code", where))
        for rel, size in self._files().items():
            start = before.get(rel, 0)
            if size <= start:
                continue
            with open(self.folder / rel, "rb") as f:
                f.seek(start)
                data = f.read(size - start)
            if rel.endswith(".jsonl"):
                data = _own_records(data, exercise)
            dest = self.trusted / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "ab") as f:
                f.write(data)
            self.taken[rel] = size
        return found

    def stray(self) -> list[dict]:
        """Channel content written outside the hidden checks (ignored by the judge, reported)."""
        extra = [rel for rel, size in self._files().items() if size > self.taken.get(rel, 0)]
        if not extra:
            return []
        return [finding("tampering", f"the student's code wrote into the grading channel outside the hidden checks "
                                     f"({', '.join(sorted(extra)[:3])}); it was ignored")]


def _own_records(data: bytes, exercise: str | None) -> bytes:
    """JSON lines that name another exercise are dropped (a student's function writing for another cell)."""
    if exercise is None:
        return data
    kept = []
    for line in data.splitlines(keepends=True):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and any(k in record for k in EXERCISE_KEYS):
            if not any(record.get(k) == exercise for k in EXERCISE_KEYS):
                continue
        kept.append(line if line.endswith(b"\n") else line + b"\n")
    return b"".join(kept)


def judged_cells(nb) -> dict[int, str]:
    """{cell index: exercise id} of the hidden test cells that call the engine's ``grade``."""
    out = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and is_test(cell) and has_hidden_tests(cell):
            exercise = exercise_of(cell)
            if exercise:
                out[i] = exercise
    return out


def run_judge(judge, trusted: Path, seed: int) -> tuple[dict[str, Verdict], list[dict]]:
    """{exercise id: Verdict} from the judge; a judge that fails is an ``error`` (nothing is judged)."""
    try:
        raw = judge(str(trusted), seed) or {}
        return {str(k): Verdict.of(v) for k, v in raw.items()}, []
    except Exception as exc:      # the instructor's side failed: say so, grade nothing as passed
        return {}, [finding("error", f"the exercise judge failed ({type(exc).__name__}: {str(exc)[:200]}); "
                                     "the hidden checks it judges score 0")]


def apply_verdicts(nb, verdicts: dict[str, Verdict]) -> dict[str, float]:
    """Set each judged hidden cell's outputs to its verdict; return {grade_id: score} for those cells.

    A hidden cell without a verdict (nothing recorded: the answer was missing, or something stopped
    the recording) scores 0: fail closed.
    """
    from nbformat import NotebookNode

    scores = {}
    for index, exercise in judged_cells(nb).items():
        cell = nb.cells[index]
        meta = nbgrader_meta(cell)
        verdict = verdicts.get(exercise) or Verdict(False, "the hidden checks could not judge this exercise: "
                                                           "no answer was recorded")
        scores[meta["grade_id"]] = verdict.points(float(meta.get("points", 0)))
        cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=verdict_text(verdict) + "\n")]
    return scores


def verdict_text(verdict: Verdict) -> str:
    head = "Hidden checks: passed." if verdict.ok else "Hidden checks: not passed."
    return f"{head} {verdict.message}".strip()


def make_trusted_dir(box_root: Path) -> Path:
    """A folder for the trusted copy, outside every folder the kernel can reach."""
    path = Path(box_root) / "trusted"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(mode=0o700)
    return path
