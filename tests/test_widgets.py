"""The explorers (coursekit.widgets): fixed scales, frames that differ, captions only under static figures."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from coursekit import data, gan, widgets, zoo
from coursekit.checks import CourseKitError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return zoo.load("mnist_cnn")


@pytest.fixture(scope="module")
def digit():
    x, y = data.embedded_mnist("test", limit=1)
    return x, y


def perturbation_image(fig):
    """The middle panel's image of plotting.show_attack."""
    return fig.axes[1].images[0]


def test_epsilon_explorer_draws_the_perturbation_on_one_fixed_scale(model, digit):
    explorer = widgets.EpsilonExplorer(model, *digit, eps_max=0.3)
    limits, titles = set(), set()
    for eps in (0.02, 0.1, 0.3):
        fig = explorer.figure(eps)
        image = perturbation_image(fig)
        limits.add(image.get_clim())
        titles.add(fig.axes[1].get_title().splitlines()[0])
        assert len(fig.axes) == 4, "the three panels and the perturbation's colour bar"
        largest = float(abs(image.get_array()).max())
        assert largest == pytest.approx(eps, abs=1e-6), "the panel shows δ itself, not a rescaled δ"
    assert limits == {(-0.3, 0.3)}, "the same colour scale at every ε"
    assert titles == {"perturbation δ"}, "the scale is labelled once (no 'x10' -> 'x2' label)"


def test_epsilon_positions_and_frames(model, digit):
    explorer = widgets.EpsilonExplorer(model, *digit, eps_max=0.3)
    positions = explorer.positions()
    assert positions[0] == 0 and positions[-1] == pytest.approx(0.3) and len(positions) <= 16
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert explorer.static().get_axes(), "the static figure draws"
    frames = explorer.frames(count=4)
    assert frames.label == "ε" and frames.values == ["0.000", "0.100", "0.200", "0.300"]
    assert all(png[:4] == b"\x89PNG" for png in frames.images)
    assert len(set(frames.images)) == len(frames.images), "every frame differs"
    assert widgets.Frames.from_json(frames.to_json()) == frames
    assert widgets.EpsilonExplorer(model, *digit, eps_max=0.4).positions(5) == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_epsilon_widget_has_a_wide_slider(model, digit):
    pytest.importorskip("ipywidgets")
    explorer = widgets.EpsilonExplorer(model, *digit, eps_max=0.3)
    box = explorer.widget()
    slider = box.children[0]
    assert slider.layout.width == widgets.SLIDER_LAYOUT["width"]
    assert slider.max == 0.3 and slider.value == 0.0


def test_bad_explorer_settings(model, digit):
    with pytest.raises(CourseKitError, match="eps_max"):
        widgets.EpsilonExplorer(model, *digit, eps_max=0)
    with pytest.raises(CourseKitError, match="one image per value"):
        widgets.Frames("ε", ["0"], [])


def test_fooling_live_view_has_a_frame_per_step_and_they_differ(model):
    live = widgets.FoolingLiveView(model, target=5, seed=1)
    live.run()
    steps = live.snapshot_steps
    assert steps == list(range(len(steps))) and len(steps) >= 8, "a snapshot at every step"
    limit = live.change_range()
    first, last = live.figure(0), live.figure(len(steps) - 1)
    assert first.axes[1].images[0].get_clim() == last.axes[1].images[0].get_clim() == (-limit, limit)
    assert float(abs(last.axes[1].images[0].get_array()).max()) == pytest.approx(limit, rel=1e-5)
    assert float(abs(first.axes[1].images[0].get_array()).max()) == 0.0
    frames = live.frames()
    assert frames.values[0] == "0" and frames.values[-1] == str(steps[-1]) and frames.start == len(frames.values) - 1
    assert len(set(frames.images)) == len(frames.images)


def test_fooling_static_fallback_replays_the_optimisation(model):
    live = widgets.FoolingLiveView(model, target=3, seed=0)
    fig = live.static(n_frames=5)
    images = [ax for ax in fig.axes if ax.images]
    curves = [ax for ax in fig.axes if ax.lines]
    assert len(images) == 10 and len(curves) == 1, "five frames (input and change) and the probability curve"
    assert f"in {live.snapshot_steps[-1]} gradient steps" in fig._suptitle.get_text()


def ring_dashboard(steps=20, chunk=5):
    torch.manual_seed(0)
    trainer = gan.GANTrainer(gan.MLPGenerator(z_dim=4, hidden=16), gan.MLPDiscriminator(hidden=16),
                             seed=0, sample_every=0, num_samples=100)
    ring = data.toy_2d("ring", 256, seed=0)
    return widgets.GANDashboard(trainer, ring, steps=steps, chunk=chunk, reference=ring)


def test_dashboard_empty_state_says_what_start_does():
    dash = ring_dashboard()
    fig = dash.figure()
    _, losses, outputs = fig.axes
    assert not losses.lines and not outputs.lines and not losses.axison and not outputs.axison
    assert "appear here once training starts" in losses.texts[0].get_text()
    assert "(training)" not in fig._suptitle.get_text() and "not started" in fig._suptitle.get_text()
    assert "press Start" in dash.status() and dash.seconds_left() is None


def test_dashboard_time_estimate_and_progress():
    dash = ring_dashboard(steps=20, chunk=5)
    dash.run_chunk()
    assert dash.steps_done == 5 and dash.seconds > 0
    assert dash.seconds_left() == pytest.approx(dash.seconds / 5 * 15)
    assert "5/20 steps" in dash.status() and "left" in dash.status()
    dash.run()
    assert dash.seconds_left() == 0 and dash.status().endswith("done")


def test_dashboard_frames_replay_the_training():
    dash = ring_dashboard(steps=20, chunk=5)
    dash.static()
    frames = dash.frames()
    assert frames.values == ["0", "5", "10", "15", "20"]
    assert len(set(frames.images)) == 5


def test_dashboard_widget_shows_progress_and_estimate():
    pytest.importorskip("ipywidgets")
    dash = ring_dashboard(steps=10, chunk=5)
    dash.widget()
    parts = dash._widgets
    assert parts["bar"].value == 0 and parts["bar"].max == 10 and "press Start" in parts["status"].value
    parts["start"].click()
    dash._thread.join(60)
    assert parts["bar"].value == 10 and "done" in parts["status"].value


class Shown(list):
    def __call__(self, obj, raw=False, metadata=None):
        self.append(obj)
        self.metadata = getattr(self, "metadata", []) + [metadata]


@pytest.fixture()
def displayed(monkeypatch):
    import IPython.display

    shown = Shown()
    monkeypatch.setattr(IPython.display, "display", shown)
    monkeypatch.setattr(widgets, "_in_ipython", lambda: True)
    return shown


def test_show_static_puts_the_caption_under_the_figure_and_frames_for_the_site(model, digit, displayed,
                                                                                  monkeypatch):
    import IPython.display
    from matplotlib.figure import Figure

    monkeypatch.setenv("COURSEKIT_FAST", "1")
    monkeypatch.delenv("COURSEKIT_LIVE_WIDGETS", raising=False)
    monkeypatch.delenv(widgets.SITE_FRAMES_ENV, raising=False)
    explorer = widgets.EpsilonExplorer(model, *digit, eps_max=0.3)
    widgets.show(explorer, caption="*Figure 4.* The digit at five values of ε.")
    assert isinstance(displayed[0], Figure)
    assert isinstance(displayed[1], IPython.display.Markdown) and "Figure 4" in displayed[1].data
    assert len(displayed) == 2, "no frames unless the site asks"
    assert displayed.metadata == [widgets.STATIC_MARK] * 2, "marked for the site to replace"
    displayed.clear()
    monkeypatch.setenv(widgets.SITE_FRAMES_ENV, "1")
    widgets.show(explorer, caption="cap")
    bundle = displayed[2]
    assert set(bundle) == {widgets.FRAMES_MIME, "text/plain"}
    assert len(bundle[widgets.FRAMES_MIME]["images"]) >= 10


def test_show_live_has_no_caption(model, digit, displayed, monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setenv("COURSEKIT_FAST", "0")
    monkeypatch.delenv("COURSEKIT_STATIC_WIDGETS", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    explorer = widgets.EpsilonExplorer(model, *digit, eps_max=0.3)
    assert widgets.show(explorer, caption="*Figure 4 (static fallback).*") is None
    kinds = [type(d).__name__ for d in displayed]   # the widget (its first figure goes into its Output)
    assert kinds[-1] == "VBox" and "Markdown" not in kinds


# ---------------------------------------------------------------- the real-vs-fake game's widget

def png_size(png: bytes) -> tuple[int, int]:
    import struct

    return struct.unpack(">II", png[16:24])


@pytest.fixture()
def digits():
    x, _ = data.embedded_mnist("test", limit=40)
    return x[:20], x[20:]


def test_game_image_is_about_280_pixels_and_crisp(tmp_path, digits):
    pytest.importorskip("ipywidgets")
    from coursekit.annotation import GAME_IMAGE_PX, RealFakeGame

    game = RealFakeGame(*digits, "alice", tmp_path / "a.csv", n=4)
    game.widget
    image = game._widgets["image"]
    width, height = png_size(image.value)
    assert width == height and GAME_IMAGE_PX <= width < GAME_IMAGE_PX + 28, "nearest-neighbour upscaled"
    assert image.layout.width == f"{GAME_IMAGE_PX}px" and "coursekit-pixelated" in image._dom_classes
    assert "image-rendering: pixelated" in game._widgets["box"].children[0].value


def test_game_keys_answer_once_per_letter(tmp_path, digits):
    pytest.importorskip("ipywidgets")
    from coursekit.annotation import RealFakeGame

    game = RealFakeGame(*digits, "alice", tmp_path / "a.csv", n=6)
    keys = game.widget and game._widgets["keys"]
    keys.value = "r"
    keys.value = "rF"            # the front end sends the whole text each time
    keys.value = "rFx"           # other keys are ignored
    keys.value = "rF"            # a backspace answers nothing
    assert [r["answer"] for r in game.rows] == ["real", "fake"]
    keys.value = "rFrrff"
    assert [r["answer"] for r in game.rows] == ["real", "fake", "real", "real", "fake", "fake"] and game.done
    keys.value = "rFrrffr"       # after the last answer: nothing (and no error)
    assert len(game.rows) == 6


def test_game_feedback_is_optional_and_the_end_leaves_no_gap(tmp_path, digits):
    pytest.importorskip("ipywidgets")
    from coursekit.annotation import RealFakeGame

    told = RealFakeGame(*digits, "alice", tmp_path / "a.csv", n=2, feedback=True)
    told.widget
    truth = told.items[0][1]
    told.answer(truth)
    assert f"Right: image 1 was {truth}" in told._widgets["said"].value
    told.answer("fake" if told.items[1][1] == "real" else "real")
    assert f"Image 2 was {told.items[1][1]}" in told._widgets["said"].value
    assert told._widgets["play"].layout.display == "none", "image and controls give way to the result"
    assert "correct" in told._widgets["result"].value and told._widgets["bar"].value == 2
    silent = RealFakeGame(*digits, "bob", tmp_path / "b.csv", n=2, feedback=False)
    silent.widget
    silent.answer("real")
    said = silent._widgets["said"].value
    assert said == "Answer 1 recorded." and "real" not in said and "fake" not in said
    assert "without feedback" in silent._widgets["box"].children[1].value


def test_dashboard_records_at_most_about_sixteen_figures_however_long_it_trains():
    dash = ring_dashboard(steps=100, chunk=2)
    dash.static()
    steps = [step for step, _ in dash.recorded]
    assert steps[0] == 0 and steps[-1] == 100 and len(steps) <= dash.RECORD_FRAMES
    assert all(b - a >= 100 / (dash.RECORD_FRAMES - 1) for a, b in zip(steps, steps[1:-1]))
