"""ipywidgets explorers, each with a static fallback figure.

Widgets need a live kernel and a widget-capable front end; the static
fallbacks render everywhere (autograding, the static site, nbviewer). Every
explorer is a small class whose ``update`` method is what a slider or button
calls, so tests and the fallback use the same code path.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from coursekit import runtime
from coursekit.checks import check_images, check_labels


def _class_name(names: Sequence[str] | None, k: int) -> str:
    return names[k] if names is not None else str(k)


class EpsilonExplorer:
    """A slider over epsilon that shows image, perturbation and the model's prediction.

    ``attack(model, x, y, eps) -> x_adv`` defaults to :func:`coursekit.attacks.fgsm`.
    """

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 attack: Callable | None = None, eps_max: float = 0.3, eps_step: float = 0.01,
                 class_names: Sequence[str] | None = None):
        from coursekit import attacks

        check_images(x)
        check_labels(y, len(x))
        self.model, self.x, self.y = model, x[:1], y[:1]
        self.attack = attack or attacks.fgsm
        self.eps_max, self.eps_step = eps_max, eps_step
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

    def figure(self, eps: float):
        from coursekit import plotting

        r = self.compute(eps)
        names = self.class_names
        return plotting.show_attack(
            self.x[0], r["x_adv"][0],
            f"{_class_name(names, r['clean'])} ({float(r['p_clean'].max()):.0%})",
            f"{_class_name(names, r['adversarial'])} ({float(r['p_adv'].max()):.0%})",
            title=f"ε = {eps:.3f}", amplify=None if eps > 0 else 1.0,
        )

    def static(self, eps_values: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.3)):
        """The fallback: the same view at a few epsilons, as one figure."""
        from coursekit import plotting

        images, titles = [], []
        for eps in eps_values:
            r = self.compute(float(eps))
            images.append(r["x_adv"][0])
            titles.append(f"ε={eps:.2f}: {_class_name(self.class_names, r['adversarial'])} "
                          f"({float(r['p_adv'].max()):.0%})")
        return plotting.show_images(torch.stack(images), titles, ncols=len(images), size=1.8,
                                    title="adversarial image and prediction as ε grows")

    def widget(self):
        """The interactive version (a FloatSlider driving an Output)."""
        import ipywidgets as widgets
        import matplotlib.pyplot as plt

        slider = widgets.FloatSlider(value=0.0, min=0.0, max=self.eps_max, step=self.eps_step,
                                     description="ε", continuous_update=False, readout_format=".3f")
        out = widgets.Output()

        def redraw(change=None):
            with out:
                out.clear_output(wait=True)
                fig = self.figure(slider.value)
                plt.show(fig)

        slider.observe(redraw, names="value")
        redraw()
        self.slider, self.output = slider, out
        return widgets.VBox([slider, out])


def show(explorer, **static_kwargs):
    """Display the widget in a live session; the static figure while grading."""
    if runtime.is_grading():
        return explorer.static(**static_kwargs)
    from IPython.display import display

    display(explorer.widget())
    return None


class FoolingLiveView:
    """Watch gradient descent turn noise into an input the model calls ``target``.

    ``run()`` performs the optimisation (coursekit.attacks.fooling_image) and keeps
    its history; the widget replays it with a step slider.
    """

    def __init__(self, model: torch.nn.Module, target: int, *, class_names: Sequence[str] | None = None,
                 **attack_kwargs):
        self.model, self.target, self.class_names = model, int(target), class_names
        self.attack_kwargs = {"snapshot_every": 5, **attack_kwargs}
        self.x: torch.Tensor | None = None
        self.history: dict = {}

    def run(self) -> dict:
        from coursekit import attacks

        self.x, self.history = attacks.fooling_image(self.model, self.target, **self.attack_kwargs)
        return self.history

    def static(self):
        from coursekit import plotting

        if not self.history:
            self.run()
        fig = plotting.plot_curves(
            list(range(len(self.history["target_prob"]))),
            {f"P({_class_name(self.class_names, self.target)})": self.history["target_prob"]},
            xlabel="gradient step", ylabel="probability", marker="",
            title="from noise to a confident prediction", ylim=(0, 1.02))
        return fig

    def widget(self):
        import ipywidgets as widgets
        import matplotlib.pyplot as plt
        from coursekit import plotting

        if not self.history:
            self.run()
        snaps = self.history.get("snapshots") or [self.x]
        steps = self.history.get("snapshot_steps") or [len(self.history["target_prob"]) - 1]
        slider = widgets.IntSlider(value=len(snaps) - 1, min=0, max=len(snaps) - 1,
                                   description="snapshot", continuous_update=False)
        out = widgets.Output()

        def redraw(change=None):
            with out:
                out.clear_output(wait=True)
                i = slider.value
                step = steps[i]
                prob = self.history["target_prob"][min(step, len(self.history["target_prob"]) - 1)]
                fig = plotting.show_images(snaps[i][:1], [f"step {step}: P(target) = {prob:.2f}"],
                                           ncols=1, size=2.5)
                plt.show(fig)

        slider.observe(redraw, names="value")
        redraw()
        return widgets.VBox([slider, out])


class GANDashboard:
    """A live view of GAN training: samples, losses and D(x) / D(G(z)) while it trains.

    ``GANDashboard(trainer, data, steps)`` trains ``trainer`` (a
    :class:`coursekit.gan.GANTrainer`) on ``data`` for ``steps`` generator steps, in
    chunks of ``chunk`` steps; after each chunk the figure is redrawn: the samples
    of the fixed noise (a grid of digits, or for 2-D data a scatter over
    ``reference`` real points), the losses, and the discriminator's mean outputs
    on real and generated examples. In a live kernel :meth:`widget` gives Start and
    Stop buttons (training runs in a background thread, so Stop works while it
    trains); :meth:`static` (used while grading) trains to the end and returns the
    final figure. ``run_chunk`` and ``stop`` are what the buttons call.
    """

    def __init__(self, trainer, data, steps: int, *, batch_size: int = 64, chunk: int = 25,
                 reference: torch.Tensor | None = None, title: str = "GAN training"):
        from coursekit.checks import CourseKitError

        for value, name in ((steps, "steps"), (batch_size, "batch_size"), (chunk, "chunk")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CourseKitError(f"{name} must be a positive integer, got {value!r}.")
        if not hasattr(trainer, "train") or not hasattr(trainer, "history"):
            raise CourseKitError("trainer must be a coursekit.gan.GANTrainer.")
        self.trainer, self.data, self.steps = trainer, data, steps
        self.batch_size, self.chunk, self.title = batch_size, chunk, title
        self.reference = reference
        self.steps_done = 0
        self.stopped = False
        self.redraws = 0
        self._stop_requested = False
        self._thread = None
        self._widgets: dict | None = None

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.steps

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
        before = self.trainer.g_updates
        self.trainer.train(self.data, n, self.batch_size, progress=False,
                           callback=lambda history: self._stop_requested)
        self.steps_done += self.trainer.g_updates - before
        if self._stop_requested:
            self.stopped = True
        return self.trainer.history

    def run(self, on_chunk: Callable[[], None] | None = None) -> dict:
        """Train in chunks until ``steps`` are done or :meth:`stop` is called."""
        while not self.finished and not self._stop_requested:
            self.run_chunk()
            if on_chunk is not None:
                on_chunk()
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

    def figure(self, *, pyplot: bool = True):
        """The current state: samples, losses, D(x) and D(G(z)) against the step.

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
        self._draw_samples(axes[0], self.trainer.sample(), f"samples after {self.trainer.g_updates} G steps")
        steps = history["step"]
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
            if steps:
                ax.legend(fontsize=8)
        state = "stopped" if self.stopped else ("done" if self.finished else "training")
        fig.suptitle(f"{self.title}: {self.steps_done}/{self.steps} steps ({state})")
        fig.tight_layout()
        self.redraws += 1
        return fig

    def png(self) -> bytes:
        """The current figure as PNG bytes (what the live widget shows)."""
        import io

        fig = self.figure(pyplot=False)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def static(self):
        """The fallback: train to the end (no live updates) and return the final figure."""
        self.run()
        return self.figure()

    def widget(self):
        """Start / Stop buttons, a status line and the live figure (an Image widget)."""
        import threading

        import ipywidgets as widgets

        start = widgets.Button(description="Start", button_style="success", icon="play")
        stop = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        status = widgets.HTML(value=f"{self.steps_done}/{self.steps} steps")
        image = widgets.Image(value=self.png(), format="png")
        self._widgets = {"start": start, "stop": stop, "status": status, "image": image}

        def refresh():
            image.value = self.png()
            status.value = f"{self.steps_done}/{self.steps} steps" + (" (stopped)" if self.stopped else "")

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
            self._thread = threading.Thread(target=work, daemon=True)
            self._thread.start()

        def on_stop(_=None):
            self.stop()

        start.on_click(on_start)
        stop.on_click(on_stop)
        self._on_start, self._on_stop = on_start, on_stop
        return widgets.VBox([widgets.HBox([start, stop, status]), image])
