"""coursekit.annotation: the real-vs-fake game, its CSV files and its statistics."""
import csv
import math
import random

import numpy as np
import pytest
import torch

from coursekit import annotation
from coursekit.annotation import (COLUMNS, RealFakeGame, annotation_summary, read_annotations,
                                  record_answer, wilson_interval)
from coursekit.checks import CourseKitError


@pytest.fixture()
def images():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(12, 1, 8, 8, generator=g) * 0.5          # "real": dark
    fake = 0.5 + torch.rand(15, 1, 8, 8, generator=g) * 0.5    # "fake": bright
    return real, fake


class FakeClock:
    """A clock that advances by ``step`` seconds each time it is read."""

    def __init__(self, step=1.5):
        self.now, self.step = 0.0, step

    def __call__(self):
        self.now += self.step
        return self.now


def _play(game, strategy):
    """Answer every image with strategy(truth) -> 'real' | 'fake'."""
    while not game.done:
        truth = game.items[game.position][1]
        game.answer(strategy(truth))


# ============================================================ Wilson interval

@pytest.mark.parametrize("k, n, expected", [
    (8, 10, (0.4902, 0.9433)),   # standard textbook values
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (50, 100, (0.4038, 0.5962)),
    (1, 20, (0.0089, 0.2361)),
])
def test_wilson_interval_known_values(k, n, expected):
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected[0], abs=5e-5)
    assert high == pytest.approx(expected[1], abs=5e-5)


@pytest.mark.parametrize("k, n, z", [(3, 17, 1.96), (12, 40, 1.0), (39, 40, 2.576), (0, 5, 1.645)])
def test_wilson_interval_solves_the_score_test(k, n, z):
    # The Wilson bounds are the p0 with |p - p0| = z sqrt(p0 (1 - p0) / n): the roots of
    # (1 + z^2/n) p0^2 - (2p + z^2/n) p0 + p^2 = 0.
    p = k / n
    roots = sorted(np.roots([1 + z * z / n, -(2 * p + z * z / n), p * p]).real)
    low, high = wilson_interval(k, n, z)
    assert low == pytest.approx(max(roots[0], 0.0), abs=1e-12)
    assert high == pytest.approx(min(roots[1], 1.0), abs=1e-12)
    assert 0.0 <= low <= p <= high <= 1.0


def test_wilson_interval_is_symmetric_and_shrinks_with_n():
    low, high = wilson_interval(3, 10)
    low2, high2 = wilson_interval(7, 10)
    assert low == pytest.approx(1 - high2, abs=1e-12) and high == pytest.approx(1 - low2, abs=1e-12)
    widths = [np.subtract(*wilson_interval(n // 2, n)[::-1]) for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2]


@pytest.mark.parametrize("k, n, z, match", [
    (3, 0, 1.96, "n >= 1"),
    (11, 10, 1.96, "between 0 and n"),
    (-1, 10, 1.96, "between 0 and n"),
    (2.5, 10, 1.96, "whole numbers"),
    (3, 10, 0.0, "z must be"),
    (3, 10, "wide", "z must be"),
])
def test_wilson_interval_bad_input(k, n, z, match):
    with pytest.raises(CourseKitError, match=match):
        wilson_interval(k, n, z)


# ============================================================ CSV

def test_record_answer_creates_header_and_appends(tmp_path):
    path = tmp_path / "sub" / "answers.csv"
    row = record_answer(path, "alice", "real-3", "Real", "fake", 2.25)
    assert row == {"annotator": "alice", "image_id": "real-3", "truth": "real", "answer": "fake", "seconds": 2.25}
    record_answer(path, "alice", "fake-0", "fake", "fake", 1.0)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1:] == ["alice,real-3,real,fake,2.250", "alice,fake-0,fake,fake,1.000"]


def test_record_answer_quotes_awkward_names(tmp_path):
    path = tmp_path / "a.csv"
    record_answer(path, 'O\'Brien, "Bob"', "fake-1", "fake", "real", 0.5)
    rows = read_annotations(path)
    assert rows[0]["annotator"] == 'O\'Brien, "Bob"'


def test_record_answer_refuses_a_foreign_file_without_touching_it(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text("student,score\nann,3\n")
    with pytest.raises(CourseKitError, match="not an annotation file"):
        record_answer(path, "alice", "real-0", "real", "real", 1.0)
    assert path.read_text() == "student,score\nann,3\n"


def test_an_interrupted_row_does_not_lose_later_or_earlier_rows(tmp_path):
    path = tmp_path / "a.csv"
    record_answer(path, "alice", "real-0", "real", "real", 1.0)
    with open(path, "a") as f:
        f.write("alice,fake-")  # a crash in the middle of a write
    record_answer(path, "alice", "fake-2", "fake", "fake", 2.0)
    with pytest.warns(UserWarning, match="incomplete row"):
        rows = read_annotations(path)
    assert [r["image_id"] for r in rows] == ["real-0", "fake-2"]


@pytest.mark.parametrize("kwargs, match", [
    ({"answer": "maybe"}, "answer must be 'real' or 'fake'"),
    ({"truth": "generated"}, "truth must be 'real' or 'fake'"),
    ({"annotator": "  "}, "annotator"),
    ({"seconds": -1}, "seconds"),
    ({"seconds": "soon"}, "seconds"),
])
def test_record_answer_bad_values(tmp_path, kwargs, match):
    values = {"annotator": "alice", "image_id": "real-0", "truth": "real", "answer": "real", "seconds": 1.0}
    values.update(kwargs)
    with pytest.raises(CourseKitError, match=match):
        record_answer(tmp_path / "a.csv", **values)
    assert not (tmp_path / "a.csv").exists()


def test_read_annotations_merges_annotators(tmp_path):
    for name, answers in (("alice", ["real", "fake"]), ("bob", ["fake", "fake", "real"])):
        for i, answer in enumerate(answers):
            record_answer(tmp_path / f"{name}.csv", name, f"real-{i}", "real", answer, float(i))
    rows = read_annotations([tmp_path / "alice.csv", str(tmp_path / "bob.csv")])
    assert [r["annotator"] for r in rows] == ["alice"] * 2 + ["bob"] * 3
    assert all(isinstance(r["seconds"], float) for r in rows)
    assert read_annotations(tmp_path / "bob.csv") == rows[2:]


def test_read_annotations_errors(tmp_path):
    with pytest.raises(CourseKitError, match="No annotation file"):
        read_annotations(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b,c,d,e\n1,2,3,4,5\n")
    with pytest.raises(CourseKitError, match="header"):
        read_annotations(tmp_path / "other.csv")
    (tmp_path / "bad.csv").write_text(",".join(COLUMNS) + "\nalice,real-0,real,perhaps,1.0\n")
    with pytest.raises(CourseKitError, match=r"bad.csv, line 2: answer"):
        read_annotations(tmp_path / "bad.csv")
    with pytest.raises(CourseKitError, match="path"):
        read_annotations(42)


# ============================================================ summary

def test_summary_of_hand_made_rows():
    rows = [
        {"annotator": "a", "image_id": "real-0", "truth": "real", "answer": "real", "seconds": 1.0},
        {"annotator": "a", "image_id": "fake-0", "truth": "fake", "answer": "real", "seconds": 3.0},
        {"annotator": "b", "image_id": "fake-1", "truth": "fake", "answer": "fake", "seconds": 2.0},
        {"annotator": "b", "image_id": "fake-2", "truth": "fake", "answer": "real", "seconds": 2.0},
    ]
    s = annotation_summary(rows)
    overall = s["overall"]
    assert (overall["n"], overall["correct"], overall["n_fake"], overall["fakes_judged_real"]) == (4, 2, 3, 2)
    assert overall["accuracy"] == 0.5 and overall["fooling_rate"] == pytest.approx(2 / 3)
    assert overall["accuracy_ci"] == wilson_interval(2, 4)
    assert overall["fooling_rate_ci"] == wilson_interval(2, 3)
    assert overall["mean_seconds"] == 2.0
    assert s["per_annotator"]["a"]["accuracy"] == 0.5 and s["per_annotator"]["a"]["fooling_rate"] == 1.0
    assert s["per_annotator"]["b"]["n_real"] == 0 and math.isnan(s["per_annotator"]["b"]["real_accuracy"])
    with pytest.raises(CourseKitError, match="No annotations"):
        annotation_summary([])


def test_perfect_and_always_real_and_coin_flip_annotators(tmp_path, images):
    real, fake = images
    path = tmp_path / "answers.csv"
    _play(RealFakeGame(real, fake, "perfect", path, n=20, seed=1), lambda truth: truth)
    _play(RealFakeGame(real, fake, "credulous", path, n=20, seed=2), lambda truth: "real")
    coin = random.Random(0)
    _play(RealFakeGame(real, fake, "coin", path, n=20, seed=3), lambda truth: coin.choice(["real", "fake"]))
    s = annotation_summary(read_annotations(path))["per_annotator"]
    assert s["perfect"]["accuracy"] == 1.0 and s["perfect"]["fooling_rate"] == 0.0
    assert s["perfect"]["accuracy_ci"] == (pytest.approx(wilson_interval(20, 20)[0]), 1.0)
    assert s["perfect"]["accuracy_ci"][0] > 0.5
    assert s["credulous"]["accuracy"] == 0.5 and s["credulous"]["fooling_rate"] == 1.0
    low, high = s["coin"]["accuracy_ci"]
    assert low < 0.5 < high
    assert len(read_annotations(path)) == 60  # three games, one file, nothing lost


def test_wilson_interval_covers_a_coin_flip_annotator_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    correct = rng.binomial(40, 0.5, size=2000)
    covered = np.mean([low <= 0.5 <= high for low, high in (wilson_interval(int(k), 40) for k in correct)])
    assert 0.92 < covered < 0.98


# ============================================================ the game

def test_game_draws_balanced_shuffled_images(tmp_path, images):
    real, fake = images
    game = RealFakeGame(real, fake, "alice", tmp_path / "a.csv", n=9, seed=0)
    truths = [truth for _, truth, _ in game.items]
    assert truths.count("real") == 4 and truths.count("fake") == 5
    assert truths != sorted(truths)  # shuffled, not all reals first
    for image_id, truth, image in game.items:
        kind, index = image_id.split("-")
        assert kind == truth
        assert torch.equal(image, (real if truth == "real" else fake)[int(index)])
    assert len({image_id for image_id, _, _ in game.items}) == 9
    same = RealFakeGame(real, fake, "bob", tmp_path / "b.csv", n=9, seed=0)
    assert [i for i, _, _ in same.items] == [i for i, _, _ in game.items]
    other = RealFakeGame(real, fake, "bob", tmp_path / "b.csv", n=9, seed=1)
    assert [i for i, _, _ in other.items] != [i for i, _, _ in game.items]


def test_game_answer_records_rows_with_seconds(tmp_path, images):
    real, fake = images
    path = tmp_path / "a.csv"
    game = RealFakeGame(real, fake, "alice", path, n=4, clock=FakeClock(step=1.5))
    first_id = game.items[0][0]
    row = game.answer("REAL")
    assert row["image_id"] == first_id and row["answer"] == "real" and row["seconds"] == 1.5
    assert game.position == 1 and not game.done
    with pytest.raises(CourseKitError, match="'real' or 'fake'"):
        game.answer("dunno")
    assert game.position == 1  # a bad answer records nothing
    _play(game, lambda truth: truth)
    assert game.done and len(game.rows) == 4
    assert read_annotations(path) == game.rows
    with pytest.raises(CourseKitError, match="game is over"):
        game.answer("real")


def test_game_widget_buttons_call_answer(tmp_path, images):
    real, fake = images
    game = RealFakeGame(real, fake, "alice", tmp_path / "a.csv", n=3)
    box = game.widget
    assert box is game.widget  # built once
    image = game._widgets["image"]
    assert image.value[:8] == b"\x89PNG\r\n\x1a\n"
    first_png = image.value
    assert game._widgets["progress"].value == "Image 1 of 3"
    game.buttons["real"].click()
    assert game.rows[-1]["answer"] == "real" and game._widgets["progress"].value == "Image 2 of 3"
    assert image.value != first_png
    game.buttons["fake"].click()
    game.answer("fake")
    assert [r["answer"] for r in game.rows] == ["real", "fake", "fake"]
    assert game.buttons["real"].disabled and game.buttons["fake"].disabled
    assert "accuracy" in game._widgets["result"].value and "95% CI" in game._widgets["result"].value


def test_game_result_text_reads_the_interval(tmp_path, images):
    real, fake = images
    game = RealFakeGame(real, fake, "alice", tmp_path / "a.csv", n=20)
    _play(game, lambda truth: truth)
    assert "20/20 correct" in game.result_text() and "Better than chance" in game.result_text()
    game = RealFakeGame(real, fake, "bob", tmp_path / "b.csv", n=4)
    _play(game, lambda truth: "real")
    assert "could not reliably tell" in game.result_text()


def test_static_fallback_and_summary_figures(tmp_path, images):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    real, fake = images
    game = RealFakeGame(real, fake, "alice", tmp_path / "a.csv", n=7)
    fig = game.show_static(columns=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 7 and [ax.get_title() for ax in shown] == [str(i) for i in range(1, 8)]
    plt.close(fig)
    _play(game, lambda truth: truth)
    record_answer(tmp_path / "a.csv", "bob", "fake-0", "fake", "real", 1.0)
    fig = annotation.plot_summary(annotation_summary(read_annotations(tmp_path / "a.csv")))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["alice\n(n=7)", "bob\n(n=1)", "overall\n(n=8)"]
    plt.close(fig)
    plt.close(game.plot_summary())



def test_show_gives_the_static_figure_while_grading_and_the_widget_live(tmp_path, images, monkeypatch):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    real, fake = images
    game = RealFakeGame(real, fake, "alice", tmp_path / "a.csv", n=6)
    monkeypatch.setenv("COURSEKIT_FAST", "1")
    fig = game.show(columns=3)
    assert len([ax for ax in fig.axes if ax.images]) == 6
    plt.close(fig)
    pytest.importorskip("ipywidgets")
    monkeypatch.delenv("COURSEKIT_FAST")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    assert game.show() is None
    assert shown == [game.widget]

def test_game_on_rgb_images(tmp_path):
    real, fake = torch.rand(4, 3, 6, 6), torch.rand(4, 3, 6, 6)
    game = RealFakeGame(real, fake, "alice", tmp_path / "a.csv", n=4)
    assert game._widgets is None and game.widget is not None
    assert game._widgets["image"].value[:4] == b"\x89PNG"


@pytest.mark.parametrize("change, match", [
    ({"fake_images": torch.rand(5, 1, 9, 9)}, "same shape"),
    ({"fake_images": torch.rand(5, 3, 8, 8)}, "same shape"),
    ({"real_images": torch.rand(5, 8, 8)}, r"\(N, C, H, W\)"),
    ({"real_images": torch.rand(5, 1, 8, 8) * 255}, r"\[0, 1\]"),
    ({"n": 0}, "positive integer"),
    ({"n": 40}, "needs 20 real"),
    ({"annotator": ""}, "annotator"),
])
def test_game_bad_input(tmp_path, change, match):
    kwargs = {"real_images": torch.rand(12, 1, 8, 8), "fake_images": torch.rand(12, 1, 8, 8),
              "annotator": "alice", "csv_path": tmp_path / "a.csv", "n": 10}
    kwargs.update(change)
    with pytest.raises(CourseKitError, match=match):
        RealFakeGame(**kwargs)


def test_csv_is_readable_by_the_csv_module(tmp_path, images):
    real, fake = images
    game = RealFakeGame(real, fake, "alice", tmp_path / "a.csv", n=4)
    _play(game, lambda truth: truth)
    with open(tmp_path / "a.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["image_id"] for r in rows] == [i for i, _, _ in game.items]
    assert set(rows[0]) == set(COLUMNS)


def test_wilson_lower_and_accuracy_per_annotator_from_csv_files(tmp_path):
    assert annotation.wilson_lower(12, 20) == annotation.wilson_interval(12, 20)[0]
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("annotator,image_id,truth,answer,seconds\n"
                     "ann,real-1,real,real,1.0\nann,fake-2,fake,real,2.0\nbob,fake-3, Fake ,FAKE,1.5\n"
                     "bob,real-4,real,fake\n")                      # a row cut off by an interrupted session
    second.write_text("annotator,image_id,truth,answer,seconds\nann,fake-5,fake,fake,0.5\n")
    with pytest.warns(UserWarning, match="incomplete"):
        result = annotation.accuracy_per_annotator([first, second])
    assert list(result) == ["ann", "bob"]
    assert result["ann"][0] == pytest.approx(2 / 3) and result["bob"][0] == 1.0
    assert result["ann"][1:] == pytest.approx(annotation.wilson_interval(2, 3))
    assert result["bob"][1:] == pytest.approx(annotation.wilson_interval(1, 1))
