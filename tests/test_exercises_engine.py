"""The exercise engine's notebook side: a graded offering keeps its answers, hints show once, the most
fundamental mistake is named first, and Run All never halts in self-study while a blank still fails
under grading."""
import json
import re
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from coursekit import attacks, exercises
from coursekit.checks import CourseKitError
from coursekit.exercises import notebook

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted(p.parent.name for p in ROOT.glob("solutions/0[1-9]_*/*.ipynb")
                  if any(c.metadata.get("nbgrader", {}).get("solution")
                         for c in nbformat.read(p, as_version=4).cells))
KEYS = sorted(k for k in exercises.EXERCISES if k[0] in LECTURES)


@pytest.fixture
def self_study(monkeypatch, tmp_path):
    for name in ("COURSEKIT_GRADED", "NBGRADER_EXECUTION", notebook.CHANNEL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def graded(self_study, monkeypatch):
    monkeypatch.setenv("COURSEKIT_GRADED", "1")


def solution_region_lines(assignment: str) -> dict[str, list[str]]:
    """grade id -> the stripped lines between ### BEGIN SOLUTION and ### END SOLUTION of the source notebook."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    found = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and "### BEGIN SOLUTION" in cell.source:
            region = cell.source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
            found[meta["grade_id"]] = [line.strip() for line in region.splitlines() if line.strip()]
    return found


# ---------------------------------------------------------------- a graded offering keeps its answers

def test_the_mode_comes_from_the_environment_or_the_course_file(self_study, monkeypatch, tmp_path):
    assert not exercises.graded_offering()
    (tmp_path / "coursekit_course.json").write_text(json.dumps({"graded": True}))
    nested = tmp_path / "notebooks" / "01_adversarial_examples"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert exercises.graded_offering()                       # found in a folder above the notebook
    monkeypatch.setenv("COURSEKIT_GRADED", "0")
    assert not exercises.graded_offering()                   # the environment decides when it is set
    monkeypatch.setenv("COURSEKIT_GRADED", "1")
    assert exercises.graded_offering(Path("/"))


@pytest.mark.parametrize("key", KEYS, ids="/".join)
def test_in_a_graded_offering_no_hint_and_no_message_shows_a_line_of_the_solution(key, graded, capsys):
    lines = solution_region_lines(key[0])[key[1]]
    exercise = exercises.EXERCISES[key]
    shown = []
    for level in (1, 2, 3):
        assert exercises.hint(key[0][:2], key[1], level) is None
        shown.append(capsys.readouterr().out)
    assert "withheld until grades are out" in shown[2]
    for misconception in exercise.misconceptions[:2]:         # what check() prints for known mistakes
        exercises.check(key[0][:2], key[1], misconception.wrong)
        shown.append(capsys.readouterr().out)
    exercises.check(key[0][:2], key[1], lambda *args: (_ for _ in ()).throw(ValueError("mine")))
    shown.append(capsys.readouterr().out)
    # and everything else check() can print: every hint, property message and the fallback
    shown += [m.hint for m in exercise.misconceptions] + [p.message for p in exercise.properties] + [exercise.fallback]
    for text in shown:
        for line in lines:
            assert line not in text, f"{key}: {line!r} is printed in a graded offering:\n{text}"


def test_in_self_study_the_ladder_ends_with_the_solution(self_study, capsys):
    exercises.hint("01", "ex2-fgsm", 3)
    assert capsys.readouterr().out.startswith("def my_fgsm(model, x, y, eps):")


def test_self_checks_and_hints_are_off_while_grading(self_study, monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert exercises.check("01", "ex2-fgsm", attacks.fgsm) is None
    assert exercises.hint("01", "ex2-fgsm", 3) is None
    out = capsys.readouterr().out
    assert "off while this notebook is graded" in out and "def my_fgsm" not in out


# ---------------------------------------------------------------- shown once, in a real kernel

def test_a_hint_and_a_check_show_their_text_once_in_a_notebook(tmp_path):
    from coursekit.execute import run_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('from coursekit.exercises import check, hint\nhint("02", "ex3-min-flip", 1)'),
                nbformat.v4.new_code_cell('check("02", "ex3-min-flip", lambda W, b, x, y, t: 0.0)')]
    path = tmp_path / "hint.ipynb"
    nbformat.write(nb, path)
    executed = run_notebook(path, timeout=120)
    assert executed.ok, executed.error
    text = exercises.get("02", "ex3-min-flip").hints[0]
    first, second = executed.notebook.cells[0].outputs, executed.notebook.cells[1].outputs
    assert len(first) == 1 and first[0].get("text", "").count(text) == 1, first
    assert all(o.output_type == "stream" for o in second) and len(second) == 1, second   # no Out[]: Diagnosis(...)


# ---------------------------------------------------------------- the most fundamental mistake first

def _fgsm_variant(sign=True, clip=True, eval_mode=True):
    def answer(model, x, y, eps):
        if eval_mode:
            model.eval()
        x = x.clone().detach().requires_grad_(True)
        F.cross_entropy(model(x), y).backward()
        step = x.grad.sign() if sign else x.grad
        out = x.detach() + eps * step
        return out.clamp(0, 1) if clip else out
    return answer


@pytest.mark.parametrize("answer,named", [
    (_fgsm_variant(sign=False, clip=False, eval_mode=False), "raw gradient"),
    (_fgsm_variant(sign=False, clip=True, eval_mode=False), "raw gradient"),
    (_fgsm_variant(sign=False, clip=False, eval_mode=True), "raw gradient"),
    (_fgsm_variant(sign=True, clip=False, eval_mode=False), "no clip"),
    (_fgsm_variant(sign=True, clip=True, eval_mode=False), "model left in train mode"),
], ids=["no-sign-no-clip-no-eval", "no-sign-no-eval", "no-sign-no-clip", "no-clip-no-eval", "no-eval-only"])
def test_an_fgsm_with_several_mistakes_is_told_the_most_fundamental_first(answer, named):
    result = exercises.diagnose(exercises.get("01", "ex2-fgsm"), answer)
    assert not result.ok and result.misconception == named, result


# ---------------------------------------------------------------- Run All never halts in self-study

def _stub(*args):
    raise NotImplementedError()


def test_a_public_check_of_an_unanswered_exercise_says_so_in_self_study(self_study, capsys):
    with exercises.public_checks("my_fgsm"):
        _stub()
        print("public checks passed")
    out = capsys.readouterr().out
    assert "my_fgsm is not answered yet" in out and "passed" not in out


def test_a_public_check_of_an_unanswered_exercise_still_fails_under_grading(self_study, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(NotImplementedError):
        with exercises.public_checks("my_fgsm"):
            _stub()


def test_a_failing_public_check_is_not_hidden(self_study):
    with pytest.raises(AssertionError, match="clip to"):
        with exercises.public_checks("my_fgsm"):
            assert False, "clip to [0, 1]"


def _right_fgsm(model, x, y, eps):
    model.eval()
    x = x.clone().detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


@pytest.mark.parametrize("namespace,uses_answer,says", [
    ({"my_fgsm": _right_fgsm}, True, "use your my_fgsm"),
    ({"my_fgsm": _stub}, False, "is not answered yet: the demos below use coursekit.attacks.fgsm"),
    ({}, False, "is not answered yet"),
    ({"my_fgsm": _fgsm_variant(sign=False)}, False, "does not pass the checks yet"),
], ids=["correct", "stub", "missing", "wrong"])
def test_the_demos_use_the_answer_when_it_passes_else_the_library(self_study, capsys, namespace, uses_answer, says):
    chosen = exercises.answer_or_library(namespace, "my_fgsm", attacks.fgsm)
    assert (chosen is namespace.get("my_fgsm")) == uses_answer and (uses_answer or chosen is attacks.fgsm)
    out = capsys.readouterr().out
    assert says in out and len(out.strip().splitlines()) == 1


def test_the_demos_use_the_library_while_grading(self_study, monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert exercises.answer_or_library({"my_fgsm": _right_fgsm}, "my_fgsm", attacks.fgsm) is attacks.fgsm
    assert re.fullmatch(r"The demos below use coursekit\.attacks\.fgsm\.\n", capsys.readouterr().out)


def test_answer_or_library_needs_the_exercise_when_the_name_is_ambiguous(self_study):
    with pytest.raises(CourseKitError, match="exercises ask for a function named"):
        exercises.answer_or_library({"nobody_writes_this": _stub}, "nobody_writes_this", attacks.fgsm)

