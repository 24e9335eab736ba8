"""The one notebook executor (coursekit.execute) and the one hidden-test stripper (coursekit.hidden_tests)."""
import os

import nbformat
import pytest

from coursekit import execute, feedback, hidden_tests, site
from coursekit.checks import CourseKitError

v4 = nbformat.v4


def write_notebook(path, *sources):
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


# ---------------------------------------------------------------- hidden tests (no kernel)

def test_a_region_becomes_one_placeholder_and_public_code_stays():
    source = "a = 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 4  # secret\n### END HIDDEN TESTS\nprint('done')"
    out, found = hidden_tests.strip_hidden(source, "# hidden")
    assert found and out == "a = 1\n# hidden\nprint('done')"


def test_a_missing_end_marker_hides_the_rest_of_the_cell():
    source = "a = 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 4  # secret\nassert f(3) == 6  # secret"
    for placeholder in (hidden_tests.SITE_PLACEHOLDER, hidden_tests.FEEDBACK_PLACEHOLDER):
        out, found = hidden_tests.strip_hidden(source, placeholder)
        assert found and "secret" not in out and out == f"a = 1\n{placeholder}"


def test_two_regions_and_a_stray_end_marker():
    source = ("### BEGIN HIDDEN TESTS\nx1\n### END HIDDEN TESTS\nkeep\n### BEGIN HIDDEN TESTS\nx2\n"
              "### END HIDDEN TESTS\n### END HIDDEN TESTS\ntail")
    out, found = hidden_tests.strip_hidden(source, "#h")
    assert found and out == "#h\nkeep\n#h\ntail"
    assert hidden_tests.strip_hidden("plain = 1", "#h") == ("plain = 1", False)


def test_site_and_feedback_strip_alike():
    source = "a = 1\n### BEGIN HIDDEN TESTS\nassert secret == 42"       # END missing
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell(source), v4.new_code_cell("b = 2")]
    nb.cells[0].outputs = [v4.new_output("stream", text="hidden-output")]
    site.strip_hidden_tests(nb)
    assert nb.cells[0].source == f"a = 1\n{hidden_tests.SITE_PLACEHOLDER}" and nb.cells[0].outputs == []
    assert nb.cells[1].source == "b = 2"
    cell = v4.new_code_cell(source)
    cell, _ = feedback.HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert cell.source == f"a = 1\n{hidden_tests.FEEDBACK_PLACEHOLDER}"


# ---------------------------------------------------------------- the executor (a kernel each)

def test_modes_reach_the_kernel_and_this_process_is_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("COURSEKIT_FAST", "keep-me")
    monkeypatch.setenv("DROP_ME", "here")
    path = write_notebook(tmp_path / "env.ipynb",
                          "import os\nfrom coursekit import runtime\n"
                          "print(os.environ['COURSEKIT_FAST'], 'NBGRADER_EXECUTION' in os.environ, "
                          "runtime.mode(), runtime.is_grading(), os.environ.get('EXTRA'), 'DROP_ME' in os.environ)")
    seen = {}
    for fast, static in ((True, False), (False, False), (False, True)):
        result = execute.run_notebook(path, fast=fast, static_widgets=static, env={"EXTRA": "x", "DROP_ME": None})
        assert result.ok and result.seconds > 0 and result.cpu_seconds > 0
        seen[fast, static] = result.notebook.cells[0].outputs[0]["text"].split()
    assert seen[True, False] == ["1", "False", "fast", "True", "x", "False"]
    assert seen[False, False] == ["0", "False", "default", "False", "x", "False"]
    assert seen[False, True] == ["0", "False", "default", "True", "x", "False"]
    assert os.environ["COURSEKIT_FAST"] == "keep-me" and os.environ["NBGRADER_EXECUTION"] == "autograde"
    assert os.environ["DROP_ME"] == "here"


def test_a_failing_cell_is_reported_not_raised_and_the_strict_form_raises(tmp_path):
    path = write_notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('the lesson broke')", "y = 2")
    result = execute.run_notebook(path)
    assert not result.ok and "the lesson broke" in result.error and "\x1b[" not in result.error
    assert execute.last_line(result.error) == "ValueError: the lesson broke"
    assert result.notebook.cells[0].outputs == [] and "execution_count" in result.notebook.cells[0]
    out = tmp_path / "out" / "bad.ipynb"
    with pytest.raises(execute.NotebookFailed, match="the lesson broke") as info:
        execute.execute_notebook(path, out)
    assert isinstance(info.value, CourseKitError)
    assert out.is_file(), "the notebook executed so far is written, to read the failure in context"


def test_execute_notebook_writes_outputs_and_timing(tmp_path):
    path = write_notebook(tmp_path / "ok.ipynb", "print(6 * 7)", "import time; time.sleep(0.3)")
    out = execute.execute_notebook(path, tmp_path / "build" / "ok.ipynb")
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "42\n"
    cell_id, seconds = execute.slowest_cell(nb)
    assert cell_id == nb.cells[1].id and 0.3 <= seconds < 30
    assert nbformat.read(path, as_version=4).cells[0].outputs == [], "the source is never overwritten"


# ---------------------------------------------------------------- the all-modes benchmark (benchmarks/bench_notebooks.py)

def test_bench_runs_a_lecture_per_mode_and_data_source_and_lists_its_claims(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_notebooks

    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path / "not-a-mirror"))
    lecture = tmp_path / "solutions" / "09_tiny"
    lecture.mkdir(parents=True)
    path = write_notebook(lecture / "09_tiny.ipynb",
                          "import os\nfrom coursekit import claims, data, runtime\n"
                          "source = data.find_source('mnist', 'test', download=False).kind\n"
                          "claims.claim(True, f'ran in {runtime.mode()} mode on {source} digits')",
                          "claims.claim(os.environ['COURSEKIT_FAST'] == '1', 'the fast path')")
    fast = bench_notebooks.run(path, "fast", 60, "embedded", scratch=tmp_path / "scratch")
    assert fast["verdict"] == "ok" and fast["data"] == "embedded"
    assert [c["statement"] for c in fast["claims"]] == ["ran in fast mode on embedded digits", "the fast path"]
    assert {c["notebook"] for c in fast["claims"]} == {"09_tiny"}
    default = bench_notebooks.run(path, "default", 60, "embedded", scratch=tmp_path / "scratch")
    assert default["verdict"] == "FAILED" and "ClaimError" in default["error"] and "the fast path" in default["error"]
    assert [c["holds"] for c in default["claims"]] == [True, False]
    report = bench_notebooks.claims_report([fast, default])
    assert "### 09_tiny (fast budgets, embedded digits): 2 claim(s)" in report and "CONTRADICTED: the fast path" in report
    text = bench_notebooks.table([fast, default], markdown=False)
    assert text.splitlines()[0].split()[:3] == ["notebook", "mode", "data"] and "FAILED" in text.splitlines()[2]
    if bench_notebooks.mirror_folder() is None:          # the mirror is optional: CI and dev machines have it
        with pytest.raises(SystemExit, match="no MNIST mirror"):
            bench_notebooks.data_env("mirror", tmp_path)
    else:
        mirror = bench_notebooks.run(path, "fast", 60, "mirror", scratch=tmp_path / "scratch")
        assert mirror["claims"][0]["statement"] == "ran in fast mode on mirror digits"
