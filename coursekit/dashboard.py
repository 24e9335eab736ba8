"""The live GAN dashboard (``coursekit.widgets.GANDashboard``): samples, losses and D's outputs while
a :class:`coursekit.gan.GANTrainer` trains, with Start / Stop, a progress bar and the time left."""
from __future__ import annotations

import io
import time
from typing import Callable

import torch

from coursekit import runtime
from coursekit.checks import CourseKitError
from coursekit.frames import Frames, evenly


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

    RECORD_FRAMES = 16   # figures kept by static() for the site's slider (about evenly spaced in steps)

    def _record(self) -> None:
        """Keep the figure now if training has moved on by 1/15 of the steps (or ended) since the last one."""
        last = self.recorded[-1][0] if self.recorded else None
        spacing = max(1, -(-self.steps // (self.RECORD_FRAMES - 1)))   # ceil: at most RECORD_FRAMES
        if last is None or self.steps_done - last >= spacing or (self.finished and last != self.steps_done):
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
        picks = evenly(self.recorded, limit)
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
