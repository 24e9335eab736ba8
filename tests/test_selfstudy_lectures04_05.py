"""Run All never halts in self-study: the STUDENT notebooks of lectures 04-05 (notebooks/, as released, every
exercise unanswered) run top to bottom in the fast budgets; each public check says "not answered yet", the
demo that trains the student's networks (04) or loop (05) ran on coursekit's own and said so, and its figures
were drawn."""
from pathlib import Path

import nbformat
import pytest

from coursekit import execute

ROOT = Path(__file__).resolve().parents[1]
# assignment -> the function whose demo falls back to the library's
LECTURES = {"04_gan_game": "ring_networks", "05_gan_training_tips": "train_gan"}


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "text/plain" in out.get("data", {}):
                parts.append(out.data["text/plain"])
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(LECTURES))
def test_the_unanswered_student_notebook_runs_to_the_end_on_the_library(assignment):
    path = ROOT / "notebooks" / assignment / f"{assignment}.ipynb"
    released = nbformat.read(path, as_version=4)
    solutions = [c for c in released.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(solutions) == 4 and all("NotImplementedError" in c.source for c in solutions), \
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
    demo = LECTURES[assignment]
    assert f"Your {demo} is not answered yet: the demos below use" in text, \
        "the demo that takes the student's function fell back to the library's and said so"
    assert "demos below use your" not in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 8, "the demos drew their figures"
