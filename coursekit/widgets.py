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
