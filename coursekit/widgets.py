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

import base64
import io
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from coursekit import runtime
from coursekit.checks import CourseKitError, check_images, check_labels

FRAMES_MIME = "application/vnd.coursekit.frames+json"
SITE_FRAMES_ENV = "COURSEKIT_SITE_FRAMES"     # set by the site build: show() also emits the frames
LAPTOP = (1366, 768)                          # the screen every widget is designed for (width, height)
SLIDER_LAYOUT = {"width": "min(92%, 760px)"}  # a wide slider: fine steps are reachable with a mouse
FRAME_DPI = 72


def _class_name(names: Sequence[str] | None, k: int) -> str:
    return names[k] if names is not None else str(k)


def _png(fig, dpi: int = FRAME_DPI) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed (it is not shown again)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def _display_figure(fig) -> None:
    """Show a figure in the current output (a widget's Output) once, whatever the backend, and close it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


def _slider_style():
    import ipywidgets as widgets

    return {"layout": widgets.Layout(**SLIDER_LAYOUT), "style": {"description_width": "initial"}}


@dataclass
class Frames:
    """An explorer's slider pre-rendered: one PNG per position.

    ``label``: the slider's name (e.g. ``"ε"``); ``values``: the readout at each position;
    ``images``: PNG bytes, one per value; ``start``: the position shown first.
    """

    label: str
    values: list[str]
    images: list[bytes] = field(repr=False)
    start: int = 0

    def __post_init__(self) -> None:
        if not self.values or len(self.values) != len(self.images):
            raise CourseKitError(f"Frames need one image per value: {len(self.values)} values, "
                                 f"{len(self.images)} images.")
        if not 0 <= self.start < len(self.values):
            raise CourseKitError(f"start must index a frame (0..{len(self.values) - 1}), got {self.start}.")

    def to_json(self) -> dict:
        return {"label": self.label, "values": list(self.values), "start": self.start,
                "images": [base64.b64encode(png).decode("ascii") for png in self.images]}

    @classmethod
    def from_json(cls, data: dict) -> "Frames":
        return cls(label=data["label"], values=list(data["values"]), start=int(data.get("start", 0)),
                   images=[base64.b64decode(text) for text in data["images"]])


def _evenly(items: Sequence, limit: int) -> list[int]:
    """Indices of at most ``limit`` items spread evenly, first and last included."""
    n = len(items)
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


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
        return Frames("ε", [f"{v:.3f}" for v in values], [_png(self.figure(v)) for v in values])

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
        out = widgets.Output()

        def redraw(change=None):
            with out:
                out.clear_output(wait=True)
                _display_figure(self.figure(slider.value))

        slider.observe(redraw, names="value")
        redraw()
        self.slider, self.output = slider, out
        return widgets.VBox([slider, out])


# ====================================================================== show

def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course stack
        return False
    return get_ipython() is not None


def frames_bundle(frames: Frames, caption: str | None = None) -> dict:
    """The display bundle that carries pre-rendered frames to the static site (and a text fallback)."""
    data = frames.to_json()
    data["caption"] = caption or ""
    text = (f"[{len(frames.values)} pre-rendered frames of a slider over {frames.label}: "
            "the course site shows them with a slider]")
    return {FRAMES_MIME: data, "text/plain": text}


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

    display(fig)
    plt.close(fig)
    if caption:
        display(Markdown(caption))
    if os.environ.get(SITE_FRAMES_ENV, "").strip() not in ("", "0") and hasattr(explorer, "frames"):
        display(frames_bundle(explorer.frames(), caption), raw=True)
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
        picks = _evenly(self.snapshots, limit)
        steps = self.snapshot_steps
        return Frames("step", [str(steps[i]) for i in picks], [_png(self.figure(i)) for i in picks],
                      start=len(picks) - 1)

    def static(self, n_frames: int = 6):
        """The fallback replays the optimisation: the input and its change at a few steps, and P(target)."""
        import matplotlib.pyplot as plt

        snaps, steps = self.snapshots, self.snapshot_steps
        picks = _evenly(snaps, n_frames)
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
        out = widgets.Output()

        def redraw(change=None):
            with out:
                out.clear_output(wait=True)
                _display_figure(self.figure(slider.value))

        slider.observe(redraw, names="value")
        redraw()
        self.slider, self.output = slider, out
        return widgets.VBox([widgets.HBox([play, slider]), out])


# ====================================================================== the GAN dashboard

def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class GANDashboard:
    """A live view of GAN training: samples, losses and D(x) / D(G(z)) while it trains.

    ``GANDashboard(trainer, data, steps)`` trains ``trainer`` (a :class:`coursekit.gan.GANTrainer`)
    on ``data`` for ``steps`` generator steps, in chunks of ``chunk`` steps; after each chunk the
    figure is redrawn: the samples of the fixed noise (a grid of digits, or for 2-D data a scatter
    over ``reference`` real points), the losses, and the discriminator's mean outputs on real and
    generated examples. In a live kernel :meth:`widget` gives Start and Stop buttons (training runs
    in a background thread, so Stop works while it trains), a progress bar and the time left
    (measured: the seconds per step so far times the steps to go). Before Start the figure shows
    the untrained generator's samples and says what Start will do (no empty axes).
    :meth:`static` (used while grading) trains to the end and returns the final figure; its title
    says how many steps that was, and in the fast budgets that they are the grading budget.
    ``run_chunk`` and ``stop`` are what the buttons call.
    """

    def __init__(self, trainer, data, steps: int, *, batch_size: int = 64, chunk: int = 25,
                 reference: torch.Tensor | None = None, title: str = "GAN training"):
        for value, name in ((steps, "steps"), (batch_size, "batch_size"), (chunk, "chunk")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CourseKitError(f"{name} must be a positive integer, got {value!r}.")
        if not hasattr(trainer, "train") or not hasattr(trainer, "history"):
            raise CourseKitError("trainer must be a coursekit.gan.GANTrainer.")
        self.trainer, self.data, self.steps = trainer, data, steps
        self.batch_size, self.chunk, self.title = batch_size, chunk, title
        self.reference = reference
        self.steps_done = 0
        self.seconds = 0.0          # wall time spent training (for the time estimate)
        self.stopped = False
        self.redraws = 0
        self.recorded: list[tuple[int, bytes]] = []   # (step, png) after chunks, for frames()
        self._stop_requested = False
        self._thread = None
        self._widgets: dict | None = None

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.steps

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        return self.steps_done > 0

    def seconds_left(self) -> float | None:
        """Estimated seconds to finish: seconds per step so far x steps to go (None before any step)."""
        if not self.started:
            return None
        return self.seconds / self.steps_done * (self.steps - self.steps_done)

    def status(self) -> str:
        """One line: progress, elapsed time and the estimate of the time left."""
        if not self.started:
            return (f"0/{self.steps} steps: press Start (the time estimate appears after the first "
                    f"{min(self.chunk, self.steps)} steps)")
        state = " (stopped)" if self.stopped and not self.finished else ""
        line = f"{self.steps_done}/{self.steps} steps{state} · {_duration(self.seconds)} elapsed"
        if self.finished:
            return line + " · done"
        return line + f" · about {_duration(self.seconds_left())} left"

    def stop(self) -> None:
        """Ask training to stop after the current generator step (what the Stop button does)."""
        self._stop_requested = True

    def run_chunk(self, n: int | None = None) -> dict:
        """Train up to ``n`` (default ``chunk``) more generator steps; returns the history.

        Stops early, and marks the dashboard ``stopped``, once :meth:`stop` was called.
        """
        n = min(n or self.chunk, self.steps - self.steps_done)
        if n <= 0 or self._stop_requested:
            self.stopped = self.stopped or self._stop_requested
            return self.trainer.history
        before, start = self.trainer.g_updates, time.perf_counter()
        self.trainer.train(self.data, n, self.batch_size, progress=False,
                           callback=lambda history: self._stop_requested)
        self.seconds += time.perf_counter() - start
        self.steps_done += self.trainer.g_updates - before
        if self._stop_requested:
            self.stopped = True
        return self.trainer.history

    def run(self, on_chunk: Callable[[], None] | None = None, *, progress: bool = False) -> dict:
        """Train in chunks until ``steps`` are done or :meth:`stop` is called (``progress``: a bar)."""
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.steps, initial=self.steps_done, desc=self.title, unit="step")
        try:
            while not self.finished and not self._stop_requested:
                before = self.steps_done
                self.run_chunk()
                if bar is not None:
                    bar.update(self.steps_done - before)
                if on_chunk is not None:
                    on_chunk()
        finally:
            if bar is not None:
                bar.close()
        self.stopped = self.stopped or self._stop_requested
        return self.trainer.history

    # ------------------------------------------------------------ drawing

    def _draw_samples(self, ax, samples: torch.Tensor, label: str) -> None:
        if samples.dim() == 2:  # 2-D points
            if self.reference is not None:
                ref = self.reference.detach().cpu()
                ax.scatter(ref[:, 0], ref[:, 1], s=4, alpha=0.3, color="tab:blue", label="real")
            ax.scatter(samples[:, 0], samples[:, 1], s=4, alpha=0.6, color="tab:red", label="G(z)")
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")
            ax.set_aspect("equal", adjustable="datalim")
            ax.legend(loc="upper right", fontsize=7, markerscale=2)
        else:  # images: a square tile of up to 36 samples
            n = int(min(len(samples), 36) ** 0.5)
            tiles = samples[: n * n, 0].reshape(n, n, *samples.shape[2:])
            grid = tiles.permute(0, 2, 1, 3).reshape(n * samples.shape[2], n * samples.shape[3])
            ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(label, fontsize=9)

    def _headline(self) -> str:
        if not self.started:
            return f"{self.title}: not started (Start trains {self.steps} generator steps)"
        if self.finished and runtime.fast_budgets():
            return f"{self.title}: {self.steps_done} generator steps (fast budgets: the grading/CI size)"
        if self.finished:
            return f"{self.title}: {self.steps_done} generator steps"
        state = "stopped" if self.stopped else "training"
        return f"{self.title}: {self.steps_done}/{self.steps} steps ({state})"

    def figure(self, *, pyplot: bool = True):
        """The current state: samples, losses, D(x) and D(G(z)) against the step.

        Before the first step the two curve panels hold a note instead of empty axes.
        ``pyplot=False`` builds a bare matplotlib Figure (safe from the training thread).
        """
        if pyplot:
            import matplotlib.pyplot as plt

            fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        else:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(12, 3.6))
            axes = fig.subplots(1, 3)
        history = self.trainer.history
        label = (f"samples after {self.trainer.g_updates} G steps" if self.started
                 else "the untrained generator's samples")
        self._draw_samples(axes[0], self.trainer.sample(), label)
        steps = history["step"]
        if not steps:
            for ax, what in ((axes[1], "the losses of D and G"), (axes[2], "D(x) and D(G(z))")):
                ax.axis("off")
                ax.text(0.5, 0.5, f"{what}\nappear here once training starts", ha="center", va="center",
                        fontsize=10, color="gray", transform=ax.transAxes)
        else:
            axes[1].plot(steps, history["d_loss"], label="D loss")
            axes[1].plot(steps, history["g_loss"], label="G loss")
            axes[1].set_xlabel("generator step")
            axes[1].set_ylabel("loss")
            axes[1].set_title("losses")
            axes[2].plot(steps, history["d_real"], label="D(x), real")
            axes[2].plot(steps, history["d_fake"], label="D(G(z)), fake")
            axes[2].axhline(0.5, color="gray", lw=0.8, ls="--")
            axes[2].set_ylim(0, 1)
            axes[2].set_xlabel("generator step")
            axes[2].set_ylabel("mean probability 'real'")
            axes[2].set_title("the discriminator's outputs")
            for ax in axes[1:]:
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
        fig.suptitle(self._headline())
        fig.tight_layout()
        self.redraws += 1
        return fig

    def png(self) -> bytes:
        """The current figure as PNG bytes (what the live widget shows)."""
        fig = self.figure(pyplot=False)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def _record(self) -> None:
        self.recorded.append((self.steps_done, self.png()))

    def static(self, record: bool = True):
        """The fallback: train to the end (a progress bar, no live figure) and return the final figure.

        ``record``: keep the figure after every chunk, which :meth:`frames` replays.
        """
        if record and not self.recorded:
            self._record()
        self.run(on_chunk=self._record if record else None, progress=True)
        return self.figure()

    def frames(self, limit: int = 16) -> Frames:
        """The recorded figures (training first if nothing was recorded), at most ``limit``, evenly spread."""
        if not self.recorded:
            import matplotlib.pyplot as plt

            plt.close(self.static())
        picks = _evenly(self.recorded, limit)
        return Frames("step", [str(self.recorded[i][0]) for i in picks], [self.recorded[i][1] for i in picks],
                      start=len(picks) - 1)

    def widget(self):
        """Start / Stop buttons, a progress bar with the time left, and the live figure (an Image widget)."""
        import threading

        import ipywidgets as widgets

        start = widgets.Button(description="Start", button_style="success", icon="play")
        stop = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        bar = widgets.IntProgress(value=self.steps_done, min=0, max=self.steps,
                                  layout=widgets.Layout(width="220px"))
        status = widgets.HTML(value=self.status())
        image = widgets.Image(value=self.png(), format="png", layout=widgets.Layout(max_width="100%"))
        self._widgets = {"start": start, "stop": stop, "status": status, "image": image, "bar": bar}

        def refresh():
            image.value = self.png()
            bar.value = self.steps_done
            status.value = self.status()

        def work():
            try:
                self.run(on_chunk=refresh)
            finally:
                refresh()
                start.disabled, stop.disabled = self.finished, True

        def on_start(_=None):
            if self.running or self.finished:
                return
            self._stop_requested, self.stopped = False, False
            start.disabled, stop.disabled = True, False
            status.value = f"{self.steps_done}/{self.steps} steps · training the first {self.chunk} steps ..."
            self._thread = threading.Thread(target=work, daemon=True)
            self._thread.start()

        def on_stop(_=None):
            self.stop()

        start.on_click(on_start)
        stop.on_click(on_stop)
        self._on_start, self._on_stop = on_start, on_stop
        return widgets.VBox([widgets.HBox([start, stop, bar, status]), image])
