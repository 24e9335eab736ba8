"""The nbgrader pipeline: release, collect, autograde, export grades.

A thin layer over nbgrader's own commands (run as ``python -m nbgrader`` in the
course directory, where ``nbgrader_config.py`` lives) and its Gradebook API.
Layout (nbgrader's, with our folder names)::

    solutions/<assignment>/<notebook>.ipynb          instructor source
    notebooks/<assignment>/<notebook>.ipynb          student version (release)
    submitted/<student>/<assignment>/<notebook>.ipynb
    autograded/..., feedback/..., gradebook.db
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from coursekit.checks import CourseKitError


def find_course_root(start: Path | None = None) -> Path:
    """The nearest folder (upwards from ``start`` or the cwd) with nbgrader_config.py."""
    here = Path(start or os.environ.get("COURSEKIT_ROOT") or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / "solutions").is_dir():
            return folder
    raise CourseKitError(
        f"No course directory found from {here}: run this inside the coursekit checkout "
        "(the folder with nbgrader_config.py and solutions/), or set COURSEKIT_ROOT."
    )


def assignments(root: Path) -> list[str]:
    """Assignment names: the folders of solutions/ that hold notebooks."""
    return sorted(p.name for p in (root / "solutions").iterdir()
                  if p.is_dir() and any(p.glob("*.ipynb")))


def _check_assignment(root: Path, name: str) -> None:
    if name not in assignments(root):
        raise CourseKitError(f"Unknown assignment {name!r}. Available: {', '.join(assignments(root))}.")


def nbgrader(root: Path, *args: str, quiet: bool = True) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course directory; raise with its log on failure."""
    # nbgrader runs `alembic` and `jupyter` from PATH: put this interpreter's bin/ first.
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PYTHONWARNINGS="ignore",
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise CourseKitError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    if not quiet:
        print(proc.stdout, proc.stderr, sep="", end="")
    return proc


def release(root: Path, names: list[str] | None = None) -> list[Path]:
    """Generate the student notebooks in notebooks/ from solutions/."""
    out = []
    for name in names or assignments(root):
        _check_assignment(root, name)
        nbgrader(root, "generate_assignment", name, "--force")
        out.extend(sorted((root / "notebooks" / name).glob("*.ipynb")))
    return out


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


def autograde(root: Path, name: str, students: list[str] | None = None, *, feedback: bool = True) -> None:
    """Autograde every collected submission of ``name`` (then write feedback HTML)."""
    _check_assignment(root, name)
    submitted = root / "submitted"
    found = sorted(p.parent.name for p in submitted.glob(f"*/{name}") if p.is_dir())
    if not (students or found):
        raise CourseKitError(f"No submissions of {name} in {submitted}: run `coursekit collect` first.")
    if students:
        for student in students:
            nbgrader(root, "autograde", name, "--force", f"--student={student}")
    else:
        nbgrader(root, "autograde", name, "--force")
    if feedback:
        nbgrader(root, "generate_feedback", name, "--force")


def grades(root: Path) -> list[dict]:
    """Every student's score on every assignment (and per notebook cell), from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    db = root / "gradebook.db"
    if not db.is_file():
        raise CourseKitError(f"No gradebook at {db}: autograde something first.")
    rows = []
    with Gradebook(f"sqlite:///{db}") as gb:
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
    """A plain-text grade table."""
    if not rows:
        return "(no grades)"
    header = f"{'student':<16} {'assignment':<28} {'score':>7} / {'max':<5}"
    lines = [header, "-" * len(header)]
    for r in sorted(rows, key=lambda r: (r["assignment"], r["student"])):
        lines.append(f"{r['student']:<16} {r['assignment']:<28} {r['score']:>7.2f} / {r['max_score']:<5g}")
    return "\n".join(lines)


def execute_notebook(path: Path, out_path: Path | None = None, *, timeout: int = 600,
                     fast: bool = True) -> Path:
    """Execute a notebook headless with nbclient (fast budgets unless ``fast=False``)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_backup = os.environ.get("COURSEKIT_FAST")
    if fast:
        os.environ["COURSEKIT_FAST"] = "1"
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    finally:
        if env_backup is None:
            os.environ.pop("COURSEKIT_FAST", None)
        else:
            os.environ["COURSEKIT_FAST"] = env_backup
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_path)
    return Path(out_path or path)
