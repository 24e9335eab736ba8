"""coursekit.gan.study: tip studies over seeds, their stored default-budget result, the saturation study."""
import json

import pytest
import torch

from coursekit.checks import CourseKitError
from coursekit.gan import study

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_stored_study_matches_its_definition_and_has_every_snapshot():
    for name, settings in study.STUDIES.items():
        stored = study.stored_study(name)
        assert list(stored["runs"]) == list(settings)                  # the notebook's legend order
        assert len(stored["seeds"]) >= 3                                 # evidence over anecdotes
        for runs in stored["runs"].values():
            assert len(runs) == len(stored["seeds"])
            for run in runs:
                assert run["sample_steps"] == list(range(0, study.STUDY_STEPS + 1, study.STUDY_STEPS // study.SNAPSHOTS))
                assert all(len(run[m]) == study.SNAPSHOTS + 1 for m in study.METRICS)
                assert all(0 <= v <= 8 for v in run["modes"])


def test_the_stored_result_is_what_the_code_computes():
    # The first 200 steps of the collapsing recipe, seed 0, recomputed: the same trajectory as stored.
    stored = study.stored_study("collapse")["runs"]["collapsing: lr_g = 3e-3, lr_d = 3e-4"][0]
    again = study.ring_run(study.COLLAPSE, seed=0, steps=200, snapshots=2)
    assert again["sample_steps"] == [0, 100, 200]
    for metric in ("energy_distance", "high_quality"):
        assert again[metric] == pytest.approx(stored[metric][:3], abs=2e-3)
    assert again["modes"] == stored["modes"][:3]


def test_a_stale_store_is_refused(tmp_path):
    content = json.loads(study.STORED.read_text())
    content["studies"]["k"]["steps"] = study.STUDY_STEPS // 2
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(content))
    with pytest.raises(CourseKitError, match="stale"):
        study.stored_study("k", path=stale)
    with pytest.raises(CourseKitError, match="missing"):
        study.stored_study("k", path=tmp_path / "absent.json")


def test_fast_budgets_read_the_store_and_say_so(monkeypatch):
    monkeypatch.setenv("COURSEKIT_FAST", "1")
    result = study.tip_study("label_smoothing")
    assert result["source"].startswith("stored")
    assert "stored result of the default budgets" in study.describe_source(result)
    with pytest.raises(CourseKitError):
        study.tip_study("no such study")


def test_compare_runs_every_setting_over_seeds_and_reuses_runs():
    settings = {"reference": {}, "k = 2": {"k": 2}}
    result = study.compare(settings, seeds=[0, 1], steps=20, progress=False)
    assert result["source"] == "live" and result["seeds"] == [0, 1]
    assert [len(result["runs"][n]) for n in settings] == [2, 2]
    assert result["runs"]["reference"][0] != result["runs"]["reference"][1]       # seeds differ
    again = study.compare({"same": {}}, seeds=[0], steps=20, progress=False)
    assert again["runs"]["same"][0] is result["runs"]["reference"][0]             # computed once
    assert study.final(result, "modes") == {n: [r["modes"][-1] for r in runs] for n, runs in result["runs"].items()}
    assert "computed live" in study.describe_source(result)
    fig = study.plot_study(result, ("energy_distance", "modes"))
    assert len(fig.axes) == 2 and len(fig.axes[1].get_legend().get_texts()) == 2
    with pytest.raises(CourseKitError):
        study.compare({"bad": {"learning_rate": 1e-3}}, seeds=[0], steps=20, progress=False)
    with pytest.raises(CourseKitError):
        study.ring_run({}, seed=0, steps=25)                                       # not a multiple of 10


def test_first_step_reaching_reads_the_snapshots():
    fake = {"runs": {"a": [{"sample_steps": [0, 10, 20], "modes": [0, 8, 8]},
                           {"sample_steps": [0, 10, 20], "modes": [0, 3, 5]}]}}
    assert study.first_step_reaching(fake, "modes", 8) == {"a": [10, float("inf")]}


def test_saturation_study_minimax_gradient_vanishes_against_a_winning_d():
    result = study.saturation_study(seeds=[0], d_steps=150, steps=20)
    assert result["d_fake_start"][0] < 0.05                                        # D rejects the fakes
    assert result["grad_norm"]["non_saturating"][0] > 20 * result["grad_norm"]["minimax"][0]
    assert [len(r) for r in result["d_fake"]["minimax"]] == [20]
