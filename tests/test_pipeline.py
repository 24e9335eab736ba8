"""The nbgrader pipeline end to end: release is in sync, notebooks run, grades are right."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit import execute, feedback, grading
from coursekit.checks import CourseKitError

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted(ROOT.glob("solutions/*/*.ipynb"))


def has_graded_cells(path: Path) -> bool:
    """False for notebooks without exercises (00_start_here): released and executed, not graded."""
    return any(c.metadata.get("nbgrader", {}).get("grade") for c in nbformat.read(path, as_version=4).cells)


GRADED = [p for p in SOLUTIONS if has_graded_cells(p)]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_notebooks  # noqa: E402
import make_example_submissions  # noqa: E402

BUDGET_RECORDS = ROOT / "build" / "notebook_budgets"


def make_course_copy(dest: Path) -> Path:
    """A throwaway course directory: the config, solutions, notebooks and examples."""
    for name in ("solutions", "notebooks", "examples"):
        shutil.copytree(ROOT / name, dest / name)
    shutil.copy(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    return dest


def _normalised(path: Path) -> dict:
    return json.loads(json.dumps(nbformat.read(path, as_version=4), sort_keys=True))


def test_there_are_lecture_notebooks():
    assert SOLUTIONS, "solutions/ holds no notebooks"
    assert grading.assignments(ROOT) == sorted({p.parent.name for p in SOLUTIONS})


def test_student_notebooks_are_exactly_what_nbgrader_generates(tmp_path):
    course = make_course_copy(tmp_path / "course")
    shutil.rmtree(course / "notebooks")
    grading.release(course)
    generated = sorted(p.relative_to(course / "notebooks") for p in (course / "notebooks").glob("*/*.ipynb"))
    committed = sorted(p.relative_to(ROOT / "notebooks") for p in (ROOT / "notebooks").glob("*/*.ipynb"))
    assert generated == committed, "notebooks/ and solutions/ hold different notebooks: run `coursekit release`"
    for rel in generated:
        assert _normalised(course / "notebooks" / rel) == _normalised(ROOT / "notebooks" / rel), (
            f"notebooks/{rel} is out of sync with solutions/: run `coursekit release` (never edit it by hand)")


def test_released_notebooks_hide_solutions_and_hidden_tests():
    for path in sorted(ROOT.glob("notebooks/*/*.ipynb")):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        nb = nbformat.read(path, as_version=4)
        graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        exercises = has_graded_cells(ROOT / "solutions" / path.parent.name / path.name)
        assert (len(graded) >= 2 if exercises else not graded) and all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_example_submissions_are_in_sync(tmp_path):
    made = make_example_submissions.make(ROOT, tmp_path)
    assert len(made) == 3 * len(GRADED)
    for path in made:
        bundled = ROOT / "examples" / "submissions" / path.relative_to(tmp_path)
        assert _normalised(path) == _normalised(bundled), f"{bundled} is stale: run scripts/make_example_submissions.py"


def test_feedback_filter_strips_hidden_source_and_tracebacks():
    cell = nbformat.v4.new_code_cell("a = 1\n### BEGIN HIDDEN TESTS\nassert secret == 42, 'reason'\n### END HIDDEN TESTS")
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="reason",
                                           traceback=["----", "assert secret == 42, 'reason'", "AssertionError: reason"])]
    cell, _ = feedback.HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert "secret" not in cell.source and "a = 1" in cell.source
    assert cell.outputs[0]["traceback"] == ["AssertionError: reason"]


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    from coursekit import cli

    course = make_course_copy(tmp_path / "course")
    assert cli.main(["--root", str(course), "release", "99_no_such_lecture"]) == 2
    assert "Unknown assignment '99_no_such_lecture'" in capsys.readouterr().err
    assert cli.main(["--root", str(course), "collect", str(tmp_path / "nowhere")]) == 2
    assert "No submissions folder" in capsys.readouterr().err
    with pytest.raises(CourseKitError, match="No course directory"):
        grading.find_course_root(tmp_path)
    assert cli.main(["zoo", "list"]) == 0
    assert "mnist_cnn" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("notebook", SOLUTIONS, ids=lambda p: p.parent.name)
def test_solution_notebook_executes_headless(notebook, tmp_path):
    # The embedded digits, as a newcomer without the mirror runs it (a mirror once hid a false title);
    # CI runs the other modes (fast with the mirror, default with both) through bench_notebooks.
    result = execute.run_notebook(notebook, fast=True, env=bench_notebooks.data_env("embedded", tmp_path))
    assert result.error is None, result.error
    nb = result.notebook
    # The budget report (printed at the end of the run by conftest.py; not a timed test).
    cell, cell_s = execute.slowest_cell(nb)
    BUDGET_RECORDS.mkdir(parents=True, exist_ok=True)
    (BUDGET_RECORDS / f"{notebook.parent.name}.json").write_text(json.dumps(bench_notebooks.row(
        notebook.parent.name, "fast", result.seconds, result.cpu_seconds, cell, cell_s, None, data="embedded")))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "a lecture shows its claims as figures"


ASSIGNMENTS = sorted({p.parent.name for p in GRADED})  # nothing to autograde without exercises


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograding_the_example_submissions(assignment, tmp_path):
    course = make_course_copy(tmp_path / "course")
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(course), "collect",
                           str(course / "examples" / "submissions"), assignment],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    grading.autograde(course, assignment)
    rows = grading.grades(course)
    by = {r["student"]: r for r in rows if r["assignment"] == assignment}
    full = by["alice_correct"]
    assert full["score"] == full["max_score"] > 0, full
    assert by["bob_blank"]["score"] == 0, by["bob_blank"]
    wrong = by["carol_wrong"]
    assert 0 < wrong["score"] < wrong["max_score"], wrong
    html = (course / "feedback" / "carol_wrong" / assignment / f"{assignment}.html").read_text()
    assert "BEGIN HIDDEN TESTS" not in html and "hidden checks ran here" in html
    csv_path = grading.export_csv(rows, tmp_path / "grades.csv")
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("student,assignment,score,max_score") and len(lines) == len(rows) + 1


@pytest.mark.slow
def test_plain_nbgrader_puts_a_deleted_test_cell_back_and_runs_it(tmp_path):
    """`coursekit autograde --no-sandbox` (plain nbgrader, trusted submissions): a hidden test cell the
    student deleted is re-added from the gradebook (OverwriteCells.add_missing_cells) and still fails a
    wrong answer, so deleting it gains nothing."""
    course = make_course_copy(tmp_path / "course")
    assignment = "04_gan_game"
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(course), "collect",
                           str(course / "examples" / "submissions"), assignment],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    path = course / "submitted" / "carol_wrong" / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if c.get("id") != "ex1-d-loss-hidden"]     # her ex1 answer is wrong
    nbformat.write(nb, path)
    grading.autograde(course, assignment, ["carol_wrong"], sandbox=False, feedback=False)
    graded = nbformat.read(course / "autograded" / "carol_wrong" / assignment / f"{assignment}.ipynb", as_version=4)
    restored = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-d-loss-hidden"]
    assert len(restored) == 1 and "was missing from the submission" in restored[0].source
    row = next(r for r in grading.grades(course) if r["student"] == "carol_wrong" and r["assignment"] == assignment)
    assert row["score"] <= row["max_score"] - 2, row        # the restored hidden check took its 2 points
