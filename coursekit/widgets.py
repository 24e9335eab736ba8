"""ipywidgets explorers, each with a static fallback figure and pre-rendered frames.

Widgets need a live kernel and a widget-capable front end; the static fallbacks render everywhere
(autograding, nbviewer). Every explorer is a small class whose ``figure`` method is what its slider
or button calls, so tests, the fallback and the static site use the same code path:

- ``widget()``: the live controls, laid out for a 1366x768 laptop screen (:data:`LAPTOP`): a wide
  slider and a figure that fit the screen together;
- ``static()``: one figure showing what the slider would show at a few positions;
- ``frames()``: every slider position pre-rendered as PNG (:class:`Frames`). The static site
  (``coursekit site``, :mod:`coursekit.site`) drives them with an HTML range input, so an explorer
  stays interactive on a page without a kernel.

:func:`show` picks: the widget in a live session; the static figure (and, for the site, the frames)
while grading, with ``COURSEKIT_FAST=1`` or ``COURSEKIT_STATIC_WIDGETS=1``
(:func:`coursekit.runtime.is_grading`). A ``caption`` belongs to the static figure: it is shown under
it, never under a live widget.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import torch

from coursekit import runtime
from coursekit.checks import CourseKitError, check_images, check_labels
from coursekit.dashboard import GANDashboard
from coursekit.frames import Frames, evenly, png

__all__ = ["EpsilonExplorer", "FoolingLiveView", "Frames", "GANDashboard", "frames_bundle", "show"]

FRAMES_MIME = "application/vnd.coursekit.frames+json"
SITE_FRAMES_ENV = "COURSEKIT_SITE_FRAMES"     # set by the site build: show() also emits the frames
STATIC_MARK = {"coursekit": {"static_explorer": True}}   # output metadata of show()'s static figure and caption
LAPTOP = (1366, 768)                          # the screen every widget is designed for (width, height)
SLIDER_LAYOUT = {"width": "min(92%, 760px)"}  # a wide slider: fine steps are reachable with a mouse


def _class_name(names: Sequence[str] | None, k: int) -> str:
    return names[k] if names is not None else str(k)


def _display_figure(fig) -> None:
    """Show a figure in the current output (a widget's Output) once, whatever the backend, and close it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


def _redrawn_output(slider, figure: Callable[[float], object]):
    """An Output that shows ``figure(slider.value)`` now and again whenever the slider moves."""
    import ipywidgets as widgets

    out = widgets.Output()

    def redraw(change=None):
        with out:
            out.clear_output(wait=True)
            _display_figure(figure(slider.value))

    slider.observe(redraw, names="value")
    redraw()
    return out


def _slider_style():
    import ipywidgets as widgets

    return {"layout": widgets.Layout(**SLIDER_LAYOUT), "style": {"description_width": "initial"}}


# ====================================================================== the epsilon explorer

class EpsilonExplorer:
    """A slider over epsilon that shows image, perturbation and the model's prediction.

    ``attack(model, x, y, eps) -> x_adv`` defaults to :func:`coursekit.attacks.fgsm`. The
    perturbation is drawn on one fixed scale, :math:`\\delta \\in [-\\varepsilon_{max},
    \\varepsilon_{max}]`, at every ε: a larger ε looks stronger.
    """

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 attack: Callable | None = None, eps_max: float = 0.3, eps_step: float = 0.01,
                 class_names: Sequence[str] | None = None):
        from coursekit import attacks

        check_images(x)
        check_labels(y, len(x))
        if not eps_max > 0 or not eps_step > 0:
            raise CourseKitError(f"eps_max and eps_step must be > 0, got {eps_max!r} and {eps_step!r}.")
        self.model, self.x, self.y = model, x[:1], y[:1]
        self.attack = attack or attacks.fgsm
        self.eps_max, self.eps_step = float(eps_max), float(eps_step)
        self.class_names = class_names
        self.last: dict = {}

    def compute(self, eps: float) -> dict:
        """Attack at ``eps``; return the adversarial image and both predictions."""
        x_adv = self.attack(self.model, self.x, self.y, eps)
        with torch.no_grad():
            p_clean = self.model(self.x).softmax(1)[0]
            p_adv = self.model(x_adv).softmax(1)[0]
        self.last = {"eps": eps, "x_adv": x_adv, "clean": int(p_clean.argmax()),
                     "adversarial": int(p_adv.argmax()), "p_adv": p_adv, "p_clean": p_clean}
        return self.last

    def _label(self, k: int, p: torch.Tensor) -> str:
        return f"{_class_name(self.class_names, k)} ({float(p.max()):.0%})"

    def figure(self, eps: float):
        from coursekit import plotting

        r = self.compute(eps)
        fooled = r["adversarial"] != r["clean"]
        verdict = "the prediction changed" if fooled else "the prediction holds"
        return plotting.show_attack(
            self.x[0], r["x_adv"][0], self._label(r["clean"], r["p_clean"]), self._label(r["adversarial"], r["p_adv"]),
            title=f"ε = {eps:.3f}: {verdict}", delta_range=self.eps_max)

    def positions(self, count: int = 16) -> list[float]:
        """At most ``count`` round values of ε from 0 to ``eps_max`` (both included): what the static
        figure (5) and the site's pre-rendered slider (16) show."""
        from matplotlib.ticker import MaxNLocator

        ticks = MaxNLocator(nbins=max(count - 1, 1), steps=[1, 2, 2.5, 5, 10]).tick_values(0, self.eps_max)
        values = [round(float(t), 6) for t in ticks if -1e-9 <= t <= self.eps_max + 1e-9]
        if values[-1] < self.eps_max - 1e-9:
            values.append(self.eps_max)
        return [abs(v) for v in values]

    def frames(self, count: int = 16) -> Frames:
        values = self.positions(count)
        return Frames("ε", [f"{v:.3f}" for v in values], [png(self.figure(v)) for v in values])

    def static(self, eps_values: Sequence[float] | None = None):
        """The fallback: the adversarial image and prediction at a few epsilons, as one figure."""
        from coursekit import plotting

        eps_values = list(eps_values) if eps_values is not None else self.positions(5)
        images, titles = [], []
        for eps in eps_values:
            r = self.compute(float(eps))
            images.append(r["x_adv"][0])
            titles.append(f"ε={eps:.2f}: {self._label(r['adversarial'], r['p_adv'])}")
        return plotting.show_images(torch.stack(images), titles, ncols=len(images), size=1.8,
                                    title="adversarial image and prediction as ε grows")

    def widget(self):
        """The interactive version: a wide FloatSlider driving an Output."""
        import ipywidgets as widgets

        slider = widgets.FloatSlider(value=0.0, min=0.0, max=self.eps_max, step=self.eps_step,
                                     description="ε (largest change per pixel)", continuous_update=False,
                                     readout_format=".3f", **_slider_style())
        self.slider, self.output = slider, _redrawn_output(slider, self.figure)
        return widgets.VBox([slider, self.output])


# ====================================================================== show

def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course stack
        return False
    return get_ipython() is not None


def frames_bundle(frames: Frames) -> dict:
    """The display bundle that carries pre-rendered frames to the static site (and a text fallback)."""
    text = (f"[{len(frames.values)} pre-rendered frames of a slider over {frames.label}: "
            "the course site shows them with a slider]")
    return {FRAMES_MIME: frames.to_json(), "text/plain": text}


def show(explorer, *, caption: str | None = None, **static_kwargs):
    """Display the widget in a live session; the static figure (with ``caption``) while grading.

    In a static run inside IPython the figure is displayed here, then the caption under it (Markdown),
    then, when the site is being built (``COURSEKIT_SITE_FRAMES=1``), the explorer's pre-rendered
    frames. Returns the static figure (None in a live session); end the line with ``;``.
    """
    if not runtime.is_grading():
        from IPython.display import display

        display(explorer.widget())
        return None
    fig = explorer.static(**static_kwargs)
    if not _in_ipython():
        return fig
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    # marked, so that the site can put the pre-rendered slider in their place
    display(fig, metadata=STATIC_MARK)
    plt.close(fig)
    if caption:
        display(Markdown(caption), metadata=STATIC_MARK)
    if os.environ.get(SITE_FRAMES_ENV, "").strip() not in ("", "0") and hasattr(explorer, "frames"):
        display(frames_bundle(explorer.frames()), raw=True)
    return fig


# ====================================================================== the fooling live view

class FoolingLiveView:
    """Watch gradient descent turn noise into an input the model calls ``target``.

    ``run()`` performs the optimisation (:func:`coursekit.attacks.fooling_image`, a snapshot at every
    step) and keeps its history. Each frame shows the input at one step, how far every pixel has
    moved since the start (one fixed colour scale for all frames, so the change is seen to grow) and
    the target probability so far; the widget replays them with a slider and a Play button.
    """

    def __init__(self, model: torch.nn.Module, target: int, *, class_names: Sequence[str] | None = None,
                 **attack_kwargs):
        self.model, self.target, self.class_names = model, int(target), class_names
        self.attack_kwargs = {"snapshot_every": 1, **attack_kwargs}
        self.x: torch.Tensor | None = None
        self.history: dict = {}

    def run(self) -> dict:
        from coursekit import attacks

        self.x, self.history = attacks.fooling_image(self.model, self.target, **self.attack_kwargs)
        return self.history

    def _ensure_run(self) -> None:
        if not self.history:
            self.run()

    @property
    def snapshots(self) -> list[torch.Tensor]:
        self._ensure_run()
        return self.history.get("snapshots") or [self.x.detach().cpu()]

    @property
    def snapshot_steps(self) -> list[int]:
        self._ensure_run()
        return self.history.get("snapshot_steps") or [len(self.history["target_prob"]) - 1]

    def _prob(self, step: int) -> float:
        probs = self.history["target_prob"]
        return float(probs[min(step, len(probs) - 1)])

    def change_range(self) -> float:
        """The largest |x_t - x_0| over all snapshots: the fixed colour scale of every frame."""
        first = self.snapshots[0]
        return max(max(float((s - first).abs().max()) for s in self.snapshots), 1e-6)

    def figure(self, index: int):
        """Frame ``index``: the input, its change since the start, and P(target) up to that step."""
        import matplotlib.pyplot as plt

        snaps, steps = self.snapshots, self.snapshot_steps
        if not 0 <= index < len(snaps):
            raise CourseKitError(f"index must be in [0, {len(snaps) - 1}], got {index}.")
        name = _class_name(self.class_names, self.target)
        step, limit = steps[index], self.change_range()
        fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.6), gridspec_kw={"width_ratios": [1, 1, 1.6]})
        axes[0].imshow(snaps[index][0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title(f"step {step}: P({name}) = {self._prob(step):.2f}", fontsize=9)
        change = (snaps[index][0, 0] - snaps[0][0, 0]).numpy()
        shown = axes[1].imshow(change, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[1].set_title("change since the start", fontsize=9)
        bar = fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04, ticks=[-limit, 0, limit], format="%.2f")
        bar.ax.tick_params(labelsize=7)
        for ax in axes[:2]:
            ax.axis("off")
        probs = self.history["target_prob"]
        axes[2].plot(range(len(probs)), probs, color="lightgray")
        axes[2].plot(range(step + 1), probs[:step + 1], color="tab:red")
        axes[2].scatter([step], [self._prob(step)], color="tab:red", zorder=3)
        axes[2].set_ylim(0, 1.02)
        axes[2].set_xlabel("gradient step")
        axes[2].set_ylabel(f"P({name})")
        axes[2].grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def frames(self, limit: int = 24) -> Frames:
        picks = evenly(self.snapshots, limit)
        steps = self.snapshot_steps
        return Frames("step", [str(steps[i]) for i in picks], [png(self.figure(i)) for i in picks],
                      start=len(picks) - 1)

    def static(self, n_frames: int = 6):
        """The fallback replays the optimisation: the input and its change at a few steps, and P(target)."""
        import matplotlib.pyplot as plt

        snaps, steps = self.snapshots, self.snapshot_steps
        picks = evenly(snaps, n_frames)
        limit, name = self.change_range(), _class_name(self.class_names, self.target)
        fig = plt.figure(figsize=(1.45 * len(picks) + 3.6, 3.3))
        grid = fig.add_gridspec(2, len(picks) + 2)
        for col, i in enumerate(picks):
            top, bottom = fig.add_subplot(grid[0, col]), fig.add_subplot(grid[1, col])
            top.imshow(snaps[i][0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            top.set_title(f"step {steps[i]}\nP = {self._prob(steps[i]):.2f}", fontsize=8)
            bottom.imshow((snaps[i][0, 0] - snaps[0][0, 0]).numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
            if col == 0:
                bottom.set_title("change since the start", fontsize=8, loc="left")
            for ax in (top, bottom):
                ax.axis("off")
        curve = fig.add_subplot(grid[:, len(picks):])
        probs = self.history["target_prob"]
        curve.plot(range(len(probs)), probs, color="tab:red")
        curve.scatter([steps[i] for i in picks], [self._prob(steps[i]) for i in picks], color="tab:red", s=12)
        curve.set_ylim(0, 1.02)
        curve.set_xlabel("gradient step")
        curve.set_ylabel(f"P({name})")
        curve.grid(alpha=0.3)
        fig.suptitle(f"From noise to P({name}) = {self._prob(steps[-1]):.2f} in {steps[-1]} gradient steps "
                     f"(change on one scale, ±{limit:.2f})", fontsize=10)
        fig.tight_layout()
        return fig

    def widget(self):
        import ipywidgets as widgets

        last = len(self.snapshots) - 1
        slider = widgets.IntSlider(value=last, min=0, max=last, description="snapshot (gradient step)",
                                   continuous_update=False, **_slider_style())
        play = widgets.Play(value=last, min=0, max=last, interval=400, description="replay")
        widgets.jslink((play, "value"), (slider, "value"))
        self.slider, self.output = slider, _redrawn_output(slider, self.figure)
        return widgets.VBox([widgets.HBox([play, slider]), self.output])
