"""Autograding hostile and broken submissions (coursekit.sandbox on top of nbgrader).

The corpus is tests/hostile_submissions/ (rebuild it with make_corpus.py): a 5-point assignment
``00_tiny`` and one submission per way of breaking or cheating the grader. Each case's grade is
what its code really does under the real tests; its reason is the most serious finding.
"""
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from coursekit import feedback, grading, sandbox

HERE = Path(__file__).resolve().parent / "hostile_submissions"
CASES = HERE / "cases"
A = "00_tiny"
LIMITS = sandbox.Limits(cell_timeout=10, notebook_timeout=30, memory_mb=1500, max_processes=64)

# student -> (score out of 5, reason); why, in one line each
EXPECTED = {
    "alice_correct": (5, "ok"),
    "bob_blank": (0, "error"),                   # NotImplementedError everywhere
    "raises": (3, "error"),                      # ex1 raises: 0/2
    "syntax_error": (3, "error"),                # ex2 does not compile: 0/2
    "emptied_solution": (4, "error"),            # ex3 empty: NameError, 0/1
    "deleted_solution": (3, "error"),            # ex1 cell gone: graded as the blank stub
    "deleted_test_cells": (5, "tampering"),      # code right; the deleted/emptied tests ran anyway
    "edited_tests": (3, "tampering"),            # ex1 wrong; its tests, points and ids were restored
    "not_a_notebook": (0, "invalid"),
    "truncated_json": (0, "invalid"),
    "infinite_loop": (3, "timeout"),             # ex2 never returns: both its cells stopped
    "notebook_timeout": (2, "timeout"),          # 4 x 9 s of sleep: the notebook budget (30 s) runs out after ex1
    "huge_allocation": (3, "memory"),            # ex1 asks for 8 TB: MemoryError
    "memory_hog": (4, "memory"),                 # > 1.5 GB resident after ex2: killed, ex3 not run
    "fork_bomb": (5, "error"),                   # all tests passed first; the bomb hits the process limit
    "prints_megabytes": (5, "ok"),               # 20 MB of output: truncated, grade unaffected
    "deletes_files": (5, "tampering"),           # every deletion fails: the course is not in the sandbox
    "writes_gradebook": (5, "tampering"),        # sqlite cannot open either gradebook
    "reads_hidden_tests": (3, "tampering"),      # reading solutions/ and the gradebook fails: ex1 0/2
    "redefines_helper": (3, "tampering"),        # ex1 wrong + close_enough = always True: restored
    "patches_numpy": (3, "tampering"),           # ex1 wrong + np.allclose patched: restored
    "patches_torch": (3, "tampering"),           # ex2 wrong + torch.allclose/assert_close patched
    "overrides_assertion_error": (4, "tampering"),  # ex3 wrong + AssertionError replaced, errors swallowed
    "obfuscated_patch": (3, "tampering"),        # the same patches via __import__/setattr/globals()
    "blanks_later_cells": (2, "tampering"),      # an input transformer erases every later cell: fail closed
    "exits_kernel": (4, "error"),                # tries to kill the grader, then exits: ex3 not run
}


def test_corpus_matches_the_expectations():
    assert sorted(p.name for p in CASES.iterdir()) == sorted(EXPECTED)
    for student in EXPECTED:
        assert (CASES / student / A / f"{A}.ipynb").is_file()


# ---- fast checks: no kernel ------------------------------------------------------------------

def _released():
    kit = sandbox.prepare_assignment(HERE / "course", A)
    import nbformat

    return kit, nbformat.reads(kit["released"][A], as_version=4)


@pytest.fixture(scope="module")
def released():
    return _released()


def _load(student):
    return sandbox.load_submission((CASES / student / A / f"{A}.ipynb").read_bytes(), A)


@pytest.mark.parametrize("student", ["not_a_notebook", "truncated_json"])
def test_unreadable_submissions_are_invalid(student):
    nb, findings = _load(student)
    assert nb is None and [f["kind"] for f in findings] == ["invalid"]
    assert ("not a notebook" in findings[0]["message"]) == (student == "not_a_notebook")
    assert ("truncated" in findings[0]["message"]) == (student == "truncated_json")


def test_missing_and_non_utf8_files_are_invalid():
    assert sandbox.load_submission(None, A)[1][0]["kind"] == "invalid"
    assert sandbox.load_submission(b"\xff\xfe\x00junk", A)[1][0]["kind"] == "invalid"
    assert sandbox.load_submission(b'{"cells": 3}', A)[1][0]["kind"] == "invalid"


def test_rebuild_restores_test_cells_and_reports_tampering(released):
    kit, rel = released
    nb, _ = _load("edited_tests")
    graded, findings = sandbox.rebuild(nb, rel, A)
    rel_tests = {c.metadata["nbgrader"]["grade_id"]: (c.source, c.metadata["nbgrader"])
                 for c in rel.cells if c.metadata.get("nbgrader", {}).get("grade")}
    got_tests = {c.metadata["nbgrader"]["grade_id"]: (c.source, c.metadata["nbgrader"])
                 for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert got_tests == rel_tests, "every test cell (source and metadata) must come from the release"
    text = " ".join(f["message"] for f in findings if f["kind"] == "tampering")
    assert "ex1-double-tests" in text and "ex1-double-hidden" in text and "my-own-hidden" in text
    # the student's (wrong) solution is what runs
    assert "3 * np.asarray" in next(c.source for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-double")


def test_rebuild_of_deleted_cells(released):
    kit, rel = released
    graded, findings = sandbox.rebuild(_load("deleted_solution")[0], rel, A)
    stub = next(c.source for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-double")
    assert "NotImplementedError" in stub
    assert [f["kind"] for f in findings] == ["error"]
    graded, findings = sandbox.rebuild(_load("deleted_test_cells")[0], rel, A)
    assert {f["where"] for f in findings if f["kind"] == "tampering"} == {"ex1-double-tests", "ex2-scale-hidden"}
    assert len(graded.cells) == len(rel.cells)


def test_added_cells_keep_their_place_and_are_marked_as_student_code(released):
    kit, rel = released
    graded, findings = sandbox.rebuild(_load("redefines_helper")[0], rel, A)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") or c.metadata.get("coursekit", {}).get("origin")
           for c in graded.cells if c.cell_type == "code"]
    assert ids.index("student") == ids.index("ex1-double") + 1
    assert not findings


def _scan(student, released):
    kit, rel = released
    graded, _ = sandbox.rebuild(_load(student)[0], rel, A)
    info = sandbox.notebook_names(rel)
    return sandbox.scan_code(sandbox.student_code(graded), module_aliases=set(info["aliases"]),
                             protected_names=set(info["protected"]),
                             builtin_names=set(info["builtins_used"]) | {"AssertionError"})


@pytest.mark.parametrize("student,words", [
    ("patches_numpy", ["np.allclose", "np.testing.assert_allclose"]),
    ("patches_torch", ["torch.allclose", "torch.testing.assert_close"]),
    ("redefines_helper", ["close_enough"]),
    ("overrides_assertion_error", ["AssertionError", "builtins", "IPython"]),
    ("obfuscated_patch", ["__import__", "setattr"]),
    ("reads_hidden_tests", ["course files", "exec"]),
    ("writes_gradebook", ["gradebook", "databases"]),
    ("blanks_later_cells", ["IPython"]),
])
def test_static_scan_names_the_tampering(student, words, released):
    text = " ".join(f["message"] for f in _scan(student, released))
    for word in words:
        assert word in text, (word, text)


@pytest.mark.parametrize("student", ["alice_correct", "bob_blank", "raises", "infinite_loop", "memory_hog",
                                     "prints_megabytes", "fork_bomb"])
def test_static_scan_has_no_false_alarms(student, released):
    assert _scan(student, released) == []


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "examples" / "submissions").glob("*/*/*.ipynb")),
                         ids=lambda p: f"{p.parts[-3]}-{p.parts[-2][:2]}")
def test_static_scan_accepts_the_real_example_submissions(path):
    import nbformat

    root = Path(__file__).resolve().parents[1]
    rel = nbformat.read(root / "notebooks" / path.parent.name / path.name, as_version=4)
    graded, findings = sandbox.rebuild(sandbox.load_submission(path.read_bytes())[0], rel)
    info = sandbox.notebook_names(rel)
    findings += sandbox.scan_code(sandbox.student_code(graded), module_aliases=set(info["aliases"]),
                                  protected_names=set(info["protected"]),
                                  builtin_names=set(info["builtins_used"]) | {"AssertionError"})
    assert findings == []


def test_main_reason_is_the_most_serious_finding():
    f = sandbox.finding
    assert sandbox.main_reason([]) == "ok"
    assert sandbox.main_reason([f("info", "x"), f("error", "x"), f("timeout", "x")]) == "timeout"
    assert sandbox.main_reason([f("memory", "x"), f("tampering", "x")]) == "tampering"
    assert sandbox.main_reason([f("tampering", "x"), f("invalid", "x")]) == "invalid"


def test_feedback_banner_escapes_student_text():
    res = {"score": 1, "max_score": 5, "reason": "error",
           "findings": [sandbox.finding("error", "<script>alert(1)</script>", "ex1")]}
    banner = feedback.feedback_banner(res)
    assert "<script>" not in banner and "&lt;script&gt;" in banner and "result: error" in banner


# ---- the corpus, graded for real (kernels, limits, parallel workers) ----------------------------

def _tree_hash(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _collect(course: Path, students):
    for student in students:
        src = CASES / student / A / f"{A}.ipynb"
        dst = course / "submitted" / student / A / f"{A}.ipynb"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes().replace(b"@COURSE_ROOT@", str(course).encode()))


@pytest.fixture(scope="module")
def graded_corpus(tmp_path_factory):
    """Alice first, then every case with 2 workers: the gradebook must keep alice's grade."""
    course = tmp_path_factory.mktemp("hostile") / "course"
    shutil.copytree(HERE / "course", course)
    _collect(course, EXPECTED)
    first = grading.autograde(course, A, ["alice_correct"], limits=LIMITS)
    before = {"solutions": _tree_hash(course / "solutions"), "submitted": _tree_hash(course / "submitted"),
              "config": hashlib.sha256((course / "nbgrader_config.py").read_bytes()).hexdigest()}
    others = sorted(s for s in EXPECTED if s != "alice_correct")
    results = grading.autograde(course, A, others, workers=2, limits=LIMITS)
    by = {r["student"]: r for r in first + results}
    return course, by, before


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_hostile_submission_grade_and_reason(student, graded_corpus):
    course, by, _ = graded_corpus
    score, reason = EXPECTED[student]
    res = by[student]
    assert (res["score"], res["reason"]) == (score, reason), json.dumps(res["findings"], indent=1)
    assert res["max_score"] == 5
    row = {r["student"]: r for r in grading.grades(course)}[student]
    assert row["score"] == score and row["reason"] == reason
    html = (course / "feedback" / student / A / f"{A}.html").read_text()
    assert f"result: {reason}" in html, "the feedback states the result and its reason"
    for f in res["findings"]:
        if f["kind"] == reason:
            assert f["message"][:40].replace("'", "&#x27;").replace('"', "&quot;")[:20] in html


@pytest.mark.slow
def test_gradebook_and_course_survive_the_corpus(graded_corpus):
    course, by, before = graded_corpus
    con = sqlite3.connect(course / "gradebook.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    students = {r[0] for r in con.execute("SELECT id FROM student")}
    assert students == set(EXPECTED)
    assert con.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == len(EXPECTED)
    con.close()
    rows = {r["student"]: r for r in grading.grades(course)}
    assert rows["alice_correct"]["score"] == 5, "graded before the hostile batch, still right after it"
    assert _tree_hash(course / "solutions") == before["solutions"]
    assert _tree_hash(course / "submitted") == before["submitted"]
    assert hashlib.sha256((course / "nbgrader_config.py").read_bytes()).hexdigest() == before["config"]


@pytest.mark.slow
def test_limits_are_enforced_and_reported(graded_corpus):
    course, by, _ = graded_corpus
    text = lambda s: " ".join(f["message"] for f in by[s]["findings"])  # noqa: E731
    assert "longer than 10 s" in text("infinite_loop")
    assert "30 s" in text("notebook_timeout") and by["notebook_timeout"]["seconds"] < 30 + LIMITS.grace
    assert "more than 1500 MB" in text("memory_hog")
    assert "MemoryError" in text("huge_allocation")
    # the bomb stops at the process limit (BlockingIOError, or the kernel too busy to answer); its
    # sleeping children never outlive the grading
    assert any(k in text("fork_bomb") for k in ("more than 64 processes", "left behind",
                                                   "Resource temporarily unavailable", "stopped sending"))
    # Landlock refuses the course's files; under bubblewrap they do not exist in the kernel's world
    missing = "FileNotFoundError" if by["reads_hidden_tests"]["isolation"] == "bubblewrap" else "PermissionError"
    assert missing in text("reads_hidden_tests")
    assert "restored" in text("patches_numpy") and "numpy.allclose" in text("patches_numpy")
    assert "torch.testing.assert_close" in text("patches_torch") or "assert_close" in text("patches_torch")
    assert "name close_enough" in text("redefines_helper")
    graded = (course / "autograded" / "prints_megabytes" / A / f"{A}.ipynb")
    assert graded.stat().st_size < 2_000_000 and "output truncated" in graded.read_text()


@pytest.mark.slow
def test_reports_from_the_corpus(graded_corpus, tmp_path):
    course, by, _ = graded_corpus
    paths = grading.report(course, tmp_path / "reports")
    summary = grading.failure_summary(course)
    for reason in sandbox.REASONS:
        assert sorted(summary[reason]) == sorted(f"{s}/{A}" for s, (_, r) in EXPECTED.items() if r == reason)
    stats = {s["cell"]: s for s in grading.exercise_stats(course)}
    assert stats["ex3-count-tests"]["n"] == len(EXPECTED) and stats["ex3-count-tests"]["points"] == 1
    lines = paths["grades"].read_text().splitlines()
    assert lines[0].startswith("student,assignment,score,max_score") and len(lines) == len(EXPECTED) + 1
    assert paths["histogram"].read_bytes()[:4] == b"\x89PNG"
    assert "tampering" in paths["summary"].read_text()


@pytest.mark.slow
def test_dask_cluster_on_loopback_gives_the_same_grades(tmp_path):
    distributed = pytest.importorskip("distributed")
    course = tmp_path / "course"
    shutil.copytree(HERE / "course", course)
    students = ["alice_correct", "patches_torch", "truncated_json"]
    _collect(course, students)
    from coursekit import cli

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        status = cli.main(["--root", str(course), "autograde", A, "--dask", cluster.scheduler_address,
                           "--cell-timeout", "10", "--notebook-timeout", "30", "--memory-mb", "1500"])
    assert status == 0
    got = {r["student"]: (r["score"], r["reason"]) for r in grading.grades(course)}
    assert got == {s: EXPECTED[s] for s in students}
    assert (course / "feedback" / "patches_torch" / A / f"{A}.html").is_file()
    assert cli.main(["--root", str(course), "report", "--out", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "histogram.png").is_file()
