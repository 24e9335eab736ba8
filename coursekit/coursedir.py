"""The course directory: where it is, its assignments, nbgrader's commands and its gradebook.

The bottom of the course machinery: release, execute, grading and the sandbox import from here,
never the other way round. Layout (nbgrader's, with our folder names)::

    nbgrader_config.py                                 settings (coursekit/course_config.py)
    solutions/<assignment>/<notebook>.ipynb            instructor source
    notebooks/<assignment>/<notebook>.ipynb            student version (release)
    submitted/<student>/<assignment>/<notebook>.ipynb
    autograded/..., feedback/..., gradebook.db
"""
from __future__ import annotations

import os
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


def check_assignment(root: Path, name: str) -> None:
    """Raise a clear error unless ``name`` is an assignment of the course."""
    if name not in assignments(root):
        raise CourseKitError(f"Unknown assignment {name!r}. Available: {', '.join(assignments(root))}.")


def _bin_first_env() -> dict:
    # nbgrader runs `alembic` and `jupyter` from PATH: put this interpreter's bin/ first.
    bindir = os.path.dirname(sys.executable)
    return dict(os.environ, PYTHONWARNINGS="ignore", PATH=bindir + os.pathsep + os.environ.get("PATH", ""))


def nbgrader(root: Path, *args: str, quiet: bool = True) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course directory; raise with its log on failure."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=_bin_first_env(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise CourseKitError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    if not quiet:
        print(proc.stdout, proc.stderr, sep="", end="")
    return proc


def open_gradebook(path: Path):
    """nbgrader's Gradebook on ``path`` (a new one runs ``alembic`` from PATH: use this interpreter's)."""
    from nbgrader.api import Gradebook

    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return Gradebook(f"sqlite:///{path}")


def graded_gradebook(root: Path):
    """The course's gradebook, which must exist (grades and reports read it)."""
    db = root / "gradebook.db"
    if not db.is_file():
        raise CourseKitError(f"No gradebook at {db}: autograde something first.")
    return open_gradebook(db)


def in_gradebook(root: Path, name: str) -> bool:
    """Whether assignment ``name`` is in the course's gradebook (a fresh clone has none)."""
    from nbgrader.api import MissingEntry

    if not (root / "gradebook.db").is_file():
        return False
    with open_gradebook(root / "gradebook.db") as gb:
        try:
            gb.find_assignment(name)
        except MissingEntry:
            return False
    return True
