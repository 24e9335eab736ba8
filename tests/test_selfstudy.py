"""Run All never halts in self-study: the STUDENT notebook of every lecture with exercises (notebooks/, as
released, every exercise unanswered) runs top to bottom in the fast budgets; each public check says "not
answered yet", every demo that takes a student's function ran on coursekit's own and said so, and the demos
drew their figures."""
from pathlib import Path
from typing import NamedTuple

import nbformat
import pytest

from coursekit import execute

ROOT = Path(__file__).resolve().parents[1]


class Expected(NamedTuple):
    fallback: str        # a line that says a demo fell back to the library's function
    fallbacks: int       # at least this many such lines
    images: int          # at least this many figures
    exercises: range     # how many exercises the lecture releases (each as a stub)


LECTURES = {
    "01_adversarial_examples": Expected("the demos below use coursekit.", 1, 5, range(4, 100)),
    "02_linear_explanation": Expected("the demos below use coursekit.", 1, 5, range(4, 100)),
    "03_defenses_transferability": Expected("the demos below use coursekit.", 1, 5, range(4, 100)),
    # the demo that trains the student's networks (04) or loop (05)
    "04_gan_game": Expected("Your ring_networks is not answered yet: the demos below use", 1, 8, range(4, 5)),
    "05_gan_training_tips": Expected("Your train_gan is not answered yet: the demos below use", 1, 8, range(4, 5)),
    "06_gan_applications": Expected("is not answered yet: the demos below use", 3, 8, range(4, 5)),
    "07_evaluating_gans": Expected("is not answered yet: the demos below use", 3, 8, range(4, 5)),
}


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "text/plain" in out.get("data", {}):
                parts.append(out.data["text/plain"])
            elif "text/markdown" in out.get("data", {}):
                parts.append(out.data["text/markdown"])
    return "\n".join(parts)


def test_every_lecture_with_exercises_is_checked_here():
    with_exercises = {p.parent.name for p in ROOT.glob("notebooks/*/*.ipynb")
                      if any(c.metadata.get("nbgrader", {}).get("solution")
                             for c in nbformat.read(p, as_version=4).cells)}
    assert with_exercises == set(LECTURES)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(LECTURES))
def test_the_unanswered_student_notebook_runs_to_the_end_on_the_library(assignment):
    expected = LECTURES[assignment]
    path = ROOT / "notebooks" / assignment / f"{assignment}.ipynb"
    released = nbformat.read(path, as_version=4)
    solutions = [c for c in released.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(solutions) in expected.exercises and all("NotImplementedError" in c.source for c in solutions), \
        "every exercise is released as a stub"
    functions = {c.source.split("def ", 1)[1].split("(", 1)[0] for c in solutions}

    result = execute.run_notebook(path, fast=True, env={"NBGRADER_EXECUTION": None, "COURSEKIT_GRADED": None})
    assert result.error is None, result.error
    nb = result.notebook
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert last.get("execution_count"), "the notebook did not reach its last cell"
    text = _text(nb)
    for function in functions:
        assert f"{function} is not answered yet" in text, f"the public check of {function} did not say so"
    fallbacks = [line for line in text.splitlines() if expected.fallback in line]
    assert len(fallbacks) >= expected.fallbacks, \
        "the demos that take a student's function fell back to the library's and said so"
    assert "demos below use your" not in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= expected.images, "the demos drew their figures"
