"""The nbgrader pipeline: release, collect, autograde, export grades.

A thin layer over nbgrader's own commands and its Gradebook API (both reached through
:mod:`coursekit.coursedir`, which also knows the course layout); autograding runs each submission
in :mod:`coursekit.sandbox`.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from coursekit.checks import CourseKitError
from coursekit.coursedir import (assignments, check_assignment, find_course_root, graded_gradebook,  # noqa: F401
                                 in_gradebook, nbgrader, open_gradebook)


def release(root: Path, names: list[str] | None = None) -> list[Path]:
    """Generate the student notebooks in notebooks/ from solutions/."""
    wanted = names or assignments(root)
    for name in wanted:
        check_assignment(root, name)
    # The whole course in one nbgrader process (its start-up is most of the time a release takes):
    # nbgrader matches the assignment id as a glob over solutions/.
    for pattern in ["*"] if set(wanted) == set(assignments(root)) else wanted:
        nbgrader(root, "generate_assignment", pattern, "--force")
    return [p for name in wanted for p in sorted((root / "notebooks" / name).glob("*.ipynb"))]


def collect(root: Path, source: Path, names: list[str] | None = None) -> list[tuple[str, str]]:
    """Copy submissions from ``source/<student>/<assignment>/*.ipynb`` into submitted/.

    Returns the (student, assignment) pairs collected. Existing submissions of the
    same student and assignment are replaced.
    """
    source = Path(source)
    if not source.is_dir():
        raise CourseKitError(f"No submissions folder {source}: expected <student>/<assignment>/*.ipynb inside.")
    wanted = set(names or assignments(root))
    pairs = []
    for student_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            if assignment_dir.name not in wanted:
                continue
            dest = root / "submitted" / student_dir.name / assignment_dir.name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(assignment_dir, dest)
            pairs.append((student_dir.name, assignment_dir.name))
    if not pairs:
        raise CourseKitError(f"No submissions found under {source} for {', '.join(sorted(wanted))}.")
    return pairs


def autograde(root: Path, name: str, students: list[str] | None = None, *, feedback: bool = True,
              sandbox: bool = True, workers: int = 1, dask: str | object | None = None,
              limits=None, progress: bool = False, judge: str | None = None) -> list[dict] | None:
    """Autograde every collected submission of ``name`` (and write feedback HTML).

    By default each submission is graded in its own sandbox (``coursekit.sandbox``): a kernel in
    bubblewrap (or rlimits + Landlock) with time, memory and process limits, tests restored from the
    release and guarded against tampering, hidden checks of the exercise engine judged outside the
    kernel; the results are merged into ``gradebook.db``. ``workers`` grades N submissions at a time
    on this machine; ``dask`` (a scheduler address or a ``distributed.Client``) sends the work to a
    Dask cluster instead. ``judge``: another module with the engine's judging functions (tests).
    Returns one record per submission (score, reason, findings). ``sandbox=False`` runs plain
    ``nbgrader autograde`` in the course directory (trusted submissions only) and returns None.
    """
    check_assignment(root, name)
    submitted = root / "submitted"
    found = sorted(p.parent.name for p in submitted.glob(f"*/{name}") if p.is_dir())
    if not (students or found):
        raise CourseKitError(f"No submissions of {name} in {submitted}: run `coursekit collect` first.")
    if sandbox:
        from coursekit import sandbox as _sandbox

        return _sandbox.autograde(root, name, students, workers=workers, dask=dask, limits=limits,
                                  progress=progress, feedback=feedback, judge=judge)
    if not in_gradebook(root, name):     # a fresh clone: notebooks/ is committed, gradebook.db is not
        nbgrader(root, "generate_assignment", name, "--force")
    if students:
        for student in students:
            nbgrader(root, "autograde", name, "--force", f"--student={student}")
    else:
        nbgrader(root, "autograde", name, "--force")
    if feedback:
        nbgrader(root, "generate_feedback", name, "--force")
    return None


def grades(root: Path) -> list[dict]:
    """Every student's score on every assignment (and per notebook cell), from the gradebook."""
    from nbgrader.api import MissingEntry

    rows = []
    with graded_gradebook(root) as gb:
        for assignment in gb.assignments:
            for student in gb.students:
                try:
                    sub = gb.find_submission(assignment.name, student.id)
                except MissingEntry:
                    continue
                row = {"student": student.id, "assignment": assignment.name,
                       "score": round(sub.score, 4), "max_score": assignment.max_score}
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        row[grade.name] = round(grade.score, 4)
                record = root / "autograded" / student.id / assignment.name / "coursekit_grading.json"
                if record.is_file():
                    row["reason"] = json.loads(record.read_text()).get("reason", "")
                rows.append(row)
    return rows


def export_csv(rows: list[dict], path: Path) -> Path:
    """Write grade rows as CSV (columns: student, assignment, score, max_score, each test cell)."""
    fields = ["student", "assignment", "score", "max_score"]
    for row in rows:
        fields += [k for k in row if k not in fields]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def format_table(rows: list[dict]) -> str:
    """A plain-text grade table (with the autograding result when the sandbox graded it)."""
    if not rows:
        return "(no grades)"
    reasons = any("reason" in r for r in rows)
    header = f"{'student':<16} {'assignment':<28} {'score':>7} / {'max':<5}" + ("  result" if reasons else "")
    lines = [header, "-" * len(header)]
    for r in sorted(rows, key=lambda r: (r["assignment"], r["student"])):
        line = f"{r['student']:<16} {r['assignment']:<28} {r['score']:>7.2f} / {r['max_score']:<5g}"
        lines.append(line + (f"  {r.get('reason', '')}" if reasons else ""))
    return "\n".join(lines)


# ---- reports: per-exercise statistics, histogram, failures by reason ---------------------------

def exercise_stats(root: Path) -> list[dict]:
    """Per graded cell: points, number of submissions, mean, share with full and with zero marks."""
    from statistics import mean, median

    stats = []
    with graded_gradebook(root) as gb:
        for assignment in gb.assignments:
            for nb in assignment.notebooks:
                for cell in nb.grade_cells:
                    scores = []
                    for sub in nb.submissions:
                        for grade in sub.grades:
                            if grade.name == cell.name and grade.score is not None:
                                scores.append(float(grade.score))
                    if not scores:
                        continue
                    top = float(cell.max_score)
                    stats.append({"assignment": assignment.name, "notebook": nb.name, "cell": cell.name,
                                  "points": top, "n": len(scores), "mean": round(mean(scores), 3),
                                  "median": round(median(scores), 3),
                                  "full_marks": round(sum(s >= top for s in scores) / len(scores), 3),
                                  "zero": round(sum(s == 0 for s in scores) / len(scores), 3)})
    return stats


def failure_summary(root: Path) -> dict[str, list[str]]:
    """{reason: ["student/assignment", ...]} from the sandbox's records (ok included)."""
    from coursekit.sandbox import REASONS, load_results

    out: dict[str, list[str]] = {r: [] for r in REASONS}
    for rec in load_results(root):
        out.setdefault(rec["reason"], []).append(f"{rec['student']}/{rec['assignment']}")
    return out


def format_failures(summary: dict[str, list[str]], root: Path | None = None) -> str:
    """A plain-text summary: how many submissions per reason, who, and the first finding of each."""
    from coursekit.sandbox import load_results

    first = {}
    if root is not None:
        for rec in load_results(root):
            serious = [f for f in rec["findings"] if f["kind"] == rec["reason"]]
            if serious:
                first[f"{rec['student']}/{rec['assignment']}"] = serious[0]["message"]
    lines = ["result      submissions"]
    for reason, who in summary.items():
        lines.append(f"{reason:<11} {len(who):>5}")
        if reason != "ok":
            for w in who:
                lines.append(f"    {w}: {first.get(w, '')[:110]}")
    return "\n".join(lines)


def plot_histogram(rows: list[dict], path: Path) -> Path:
    """One histogram of total scores per assignment (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["assignment"] for r in rows})
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.5 * max(1, len(names)), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        mine = [r for r in rows if r["assignment"] == name]
        top = max(r["max_score"] for r in mine) or 1
        ax.hist([r["score"] for r in mine], bins=min(20, max(5, int(top) + 1)), range=(0, top),
                color="#4c72b0", edgecolor="white")
        ax.set_title(f"{name} ({len(mine)} submissions)")
        ax.set_xlabel(f"score (max {top:g})")
        ax.set_ylabel("submissions")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(root: Path, out_dir: Path) -> dict[str, Path]:
    """grades.csv, exercises.csv, failures.csv, histogram.png and summary.txt in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = grades(root)
    paths = {"grades": export_csv(rows, out_dir / "grades.csv")}
    stats = exercise_stats(root)
    paths["exercises"] = export_csv_rows(stats, out_dir / "exercises.csv")
    summary = failure_summary(root)
    from coursekit.sandbox import load_results

    failures = [{"student": r["student"], "assignment": r["assignment"], "reason": r["reason"],
                 "score": r["score"], "max_score": r["max_score"],
                 "findings": " | ".join(f"{f['kind']}: {f['message']}" for f in r["findings"])}
                for r in load_results(root)]
    paths["failures"] = export_csv_rows(failures, out_dir / "failures.csv")
    paths["histogram"] = plot_histogram(rows, out_dir / "histogram.png")
    text = [format_table(rows), "", format_failures(summary, root), "",
            "exercise                               points     n   mean  full marks"]
    for s in stats:
        text.append(f"{s['assignment'][:14]:<14} {s['cell']:<24} {s['points']:>5g} {s['n']:>5} {s['mean']:>6.2f}"
                    f" {s['full_marks']:>10.0%}")
    paths["summary"] = out_dir / "summary.txt"
    paths["summary"].write_text("\n".join(text) + "\n")
    return paths


def export_csv_rows(rows: list[dict], path: Path) -> Path:
    """Any list of flat dicts as CSV (columns: the union of keys, first seen first)."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields or ["empty"], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path

