"""Verdicts outside the student's process: a grading kernel only records what the answer did; the grader
rebuilds the probes, judges the records, and is not fooled by what the kernel patched or forged."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from coursekit.exercises import channel, runner
from coursekit.exercises.judge import grading

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01_adversarial_examples"
SEED = 7


def grade_session(scenario: str, tmp_path: Path) -> tuple[dict, str]:
    folder = grading.prepare_channel(tmp_path / "channel", ASSIGNMENT, SEED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), channel.CHANNEL_ENV: str(folder), channel.SEED_ENV: str(SEED),
           "COURSEKIT_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("NBGRADER_EXECUTION", None)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "grading_kernel_session.py"), scenario],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "judge imported in the kernel: False" in proc.stdout, proc.stdout
    return grading.judge_records(folder, SEED, assignment=ASSIGNMENT, course_root=ROOT), proc.stdout


def test_a_correct_answer_gets_every_point_and_the_kernel_never_loads_the_judge(tmp_path):
    verdicts, out = grade_session("correct", tmp_path)
    assert {k: v.ok for k, v in verdicts.items()} == {"ex1-input-step": True, "ex-fooling-loop": True, "ex2-fgsm": True,
                                                      "ex3-projection": True, "ex-pgd-loop": True}
    assert all(v.points_fraction == 1.0 and v.records == 1 for v in verdicts.values())
    assert "Error" not in out                             # a recording hidden cell raises nothing


def test_wrong_answers_get_their_hints_and_a_deleted_answer_its_message(tmp_path):
    verdicts, _ = grade_session("wrong", tmp_path)
    assert not any(v.ok for v in verdicts.values())
    assert verdicts["ex2-fgsm"].kind == "misconception" and "DOWN the loss" in verdicts["ex2-fgsm"].message
    assert verdicts["ex3-projection"].kind == "misconception" and "clip to the image range" in verdicts["ex3-projection"].message
    assert verdicts["ex1-input-step"].kind == "missing" and "is not defined" in verdicts["ex1-input-step"].message
    assert verdicts["ex-fooling-loop"].kind == "misconception" and "torch.where" in verdicts["ex-fooling-loop"].message
    assert verdicts["ex-pgd-loop"].kind == "misconception" and "Clip the random start" in verdicts["ex-pgd-loop"].message


def test_lying_tensors_and_patched_comparisons_in_the_kernel_do_not_raise_a_grade(tmp_path):
    verdicts, _ = grade_session("lying", tmp_path)
    assert verdicts["ex1-input-step"].ok                  # the untouched correct answer still passes
    assert not verdicts["ex2-fgsm"].ok and "plain torch.Tensor" in verdicts["ex2-fgsm"].message
    assert not verdicts["ex3-projection"].ok


def test_an_engine_patched_from_a_student_cell_and_a_forged_record_score_zero(tmp_path):
    verdicts, _ = grade_session("patched", tmp_path)
    assert {k: v.points_fraction for k, v in verdicts.items()} == {"ex1-input-step": 0.0, "ex-fooling-loop": 0.0,
                                                                    "ex2-fgsm": 0.0, "ex3-projection": 0.0,
                                                                    "ex-pgd-loop": 0.0}
    assert verdicts["ex1-input-step"].kind == "unreadable"


def test_the_grader_uses_its_own_probes_not_the_channels(tmp_path):
    """A kernel that rewrites probes.json (e.g. eps = 0 everywhere, where the identity is right) only
    changes what the answer ran on: the grader compares with the reference on the probes it rebuilds."""
    folder = grading.prepare_channel(tmp_path / "channel", ASSIGNMENT, SEED)
    specs = json.loads((folder / channel.PROBES_JSON).read_text())
    for spec in specs:
        for call in spec["calls"]:
            items = call["args"]["tuple"]
            if spec["exercise_id"] == "ex2-fgsm":
                items[-1] = {"v": 0.0}                   # eps = 0: returning x is right on these
    (folder / channel.PROBES_JSON).write_text(json.dumps(specs))
    os.environ[channel.CHANNEL_ENV] = str(folder)
    try:
        channel.record(ASSIGNMENT, "ex2-fgsm", {"my_fgsm": lambda model, x, y, eps: x.clone()})
    finally:
        del os.environ[channel.CHANNEL_ENV]
    verdict = grading.judge_records(folder, SEED, assignment=ASSIGNMENT)["ex2-fgsm"]
    assert not verdict.ok


def test_an_exercise_whose_hidden_cell_never_ran_scores_zero(tmp_path):
    folder = grading.prepare_channel(tmp_path / "channel", ASSIGNMENT, SEED)
    verdicts = grading.judge_records(folder, SEED, assignment=ASSIGNMENT)
    assert all(v.kind == "not-run" and v.points_fraction == 0.0 for v in verdicts.values())


def _equal(a, b) -> bool:
    """Plain data from the runner (arrays, numbers, strings, lists, dicts) equal, NaN equal to NaN."""
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc")
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("assignment", ["01_adversarial_examples", "02_linear_explanation", "03_defenses_transferability",
                                        "04_gan_game", "05_gan_training_tips", "06_gan_applications",
                                        "07_evaluating_gans"])
def test_every_probe_of_an_assignment_travels_to_the_kernel_and_back(assignment, tmp_path):
    """Models by name, generators by state, harnesses by name: the reference's outputs on the decoded
    probes, recorded and read back, are judged correct (seed 3: other inputs than self-study's)."""
    from coursekit.exercises.judge.registry import EXERCISES

    folder = grading.prepare_channel(tmp_path / "channel", assignment, 3)
    specs = json.loads((folder / channel.PROBES_JSON).read_text())
    import numpy as np
    with np.load(folder / channel.PROBES_NPZ, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    os.environ[channel.CHANNEL_ENV] = str(folder)
    try:
        for spec in specs:
            exercise = EXERCISES[(assignment, spec["exercise_id"])]
            decoded = channel.decode_calls(spec["calls"], arrays)
            for mine, theirs in zip(decoded, exercise.calls(3)):
                assert mine.name == theirs.name and mine.harness is theirs.harness
                runs = [runner.call_once(exercise.reference, c) for c in (mine, theirs)]
                assert runs[0].status == runs[1].status == "ok"
                assert _equal(runs[0].output, runs[1].output), spec["exercise_id"]

            def copied_reference(*args, _reference=exercise.reference, **kwargs):   # trusted code called from here
                return _reference(*args, **kwargs)
            record = runner.run_answer(exercise.function, copied_reference, decoded, watch=False)
            arrays_out: dict = {}
            line = channel.encode_record(record, arrays_out)
            back = channel.decode_record(json.loads(json.dumps(line)), arrays_out)
            assert grading.judge(exercise, back, hidden=True, seed=3).ok, spec["exercise_id"]
    finally:
        del os.environ[channel.CHANNEL_ENV]


def test_per_submission_probes_differ_where_the_cases_draw_from_the_seed():
    from coursekit.exercises import judge  # noqa: F401
    from coursekit.exercises.judge.registry import get

    exercise = get("01", "ex3-projection")
    first, other = exercise.calls(0)[0].args[0], exercise.calls(5)[0].args[0]
    assert first.shape == other.shape and not torch.equal(first, other)


def test_a_channel_without_probes_fails_closed_where_the_judge_is_hidden(tmp_path, monkeypatch):
    from coursekit import exercises
    from coursekit.exercises import notebook

    monkeypatch.setenv(channel.CHANNEL_ENV, str(tmp_path))            # the grader prepared nothing
    monkeypatch.setattr(notebook, "_judge_available", lambda: False)
    with pytest.raises(AssertionError, match="could not run: the grader prepared no probes"):
        exercises.grade(ASSIGNMENT, "ex3-projection", {"my_project_linf": lambda x_adv, x, eps: x_adv})
    assert not (tmp_path / channel.RECORDS).exists()


def test_a_channel_without_probes_is_judged_in_the_process_where_the_judge_is_there(tmp_path, monkeypatch):
    from coursekit import exercises

    monkeypatch.setenv(channel.CHANNEL_ENV, str(tmp_path))
    with pytest.raises(AssertionError, match="clip to the image range"):
        exercises.grade(ASSIGNMENT, "ex3-projection", {"my_project_linf": lambda x_adv, x, eps: x + (x_adv - x).clamp(-eps, eps)})
