"""What grading one submission produces: its limits, its findings and the record kept per submission.

A finding is ``{"kind", "where", "message"}``; the submission's reason is its most serious kind::

    invalid > tampering > memory > timeout > error > ok        ("info" findings never count)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

REASONS = ("ok", "error", "timeout", "memory", "tampering", "invalid")
# The submission's reason is its most serious finding, in this order.
SEVERITY = {"invalid": 5, "tampering": 4, "memory": 3, "timeout": 2, "error": 1, "ok": 0}
RESULT_FILE = "coursekit_grading.json"
RECORD_KEYS = ("student", "assignment", "score", "max_score", "reason", "findings", "seconds", "compute_seconds",
               "isolation")


@dataclass
class Limits:
    """Resource limits for one submission (seconds, MiB, kB)."""

    cell_timeout: int = 120          # one cell (nbgrader's ExecutePreprocessor timeout)
    notebook_timeout: int = 600      # all cells of one notebook together
    memory_mb: int = 4096            # resident memory of the kernel and its children
    address_space_mb: int = 16384    # RLIMIT_AS of the kernel (torch alone reserves ~3.5 GB)
    max_processes: int = 64          # RLIMIT_NPROC: tasks the kernel may add to its uid's current count
    max_file_mb: int = 64            # RLIMIT_FSIZE: the largest file the kernel may write
    max_output_kb: int = 256         # stdout/stderr/display data kept per cell
    grace: int = 90                  # extra wall-clock for the kernel's start and the feedback
    threads: int = 1                 # CPU threads of the kernel's libraries (workers grade side by side)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Limits":
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})


def finding(kind: str, message: str, where: str = "") -> dict:
    """One thing grading noticed: ``kind`` is a reason or ``info``; ``where`` a cell's grade id."""
    assert kind in REASONS + ("info",), kind
    return {"kind": kind, "where": where, "message": message}


def main_reason(findings: list[dict]) -> str:
    """The most serious kind among the findings (``ok`` when there is none)."""
    kinds = [f["kind"] for f in findings if f["kind"] in SEVERITY]
    return max(kinds, key=SEVERITY.get, default="ok")


def write_record(folder: Path, result: dict) -> Path:
    """``folder/coursekit_grading.json``: the reason, findings and times of one graded submission."""
    path = Path(folder) / RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: result[k] for k in RECORD_KEYS if k in result}, indent=1))
    return path


def load_results(root: Path) -> list[dict]:
    """The per-submission grading records (reason, findings, times) of a course directory."""
    return [json.loads(p.read_text()) for p in sorted(Path(root).glob(f"autograded/*/*/{RESULT_FILE}"))]
