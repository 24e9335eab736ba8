"""An explorer over training snapshots: watch a generator learn, step by step.

Works with any history that holds ``"snapshots"`` (a list of image batches
``(K, C, H, W)``) and ``"snapshot_steps"``, e.g. those of
:func:`coursekit.applications.translation.train_pix2pix` and ``train_cyclegan``.
Shown with :func:`coursekit.widgets.show`: a slider in a live session, a static
figure while grading.
"""
from __future__ import annotations

import torch

from coursekit.checks import CourseKitError, check_images


class SnapshotExplorer:
    """A slider over training steps showing ``inputs``, the generator's outputs then, and ``targets``."""

    def __init__(self, history: dict, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
                 title: str = "training progress", n_show: int = 8):
        snapshots = history.get("snapshots") or []
        if not snapshots:
            raise CourseKitError("The history holds no snapshots: train with snapshot_every > 0 and snapshot_inputs.")
        check_images(inputs, "inputs")
        self.snapshots, self.steps = snapshots, list(history["snapshot_steps"])
        self.n = min(n_show, len(inputs))
        self.inputs = inputs[:self.n]
        self.targets = targets[:self.n] if targets is not None else None
        self.title = title

    def rows(self, index: int) -> tuple[torch.Tensor, list[str]]:
        """The images of one view: inputs, outputs at snapshot ``index`` (and targets), and row names."""
        if not 0 <= index < len(self.snapshots):
            raise CourseKitError(f"index must be in [0, {len(self.snapshots) - 1}], got {index}.")
        rows = [self.inputs, self.snapshots[index][:self.n]]
        names = ["input", f"output, step {self.steps[index]}"]
        if self.targets is not None:
            rows.append(self.targets)
            names.append("target")
        return torch.cat(rows), names

    def figure(self, index: int):
        from coursekit import plotting

        images, names = self.rows(index)
        fig = plotting.show_images(images, ncols=self.n, size=1.1,
                                   title=f"{self.title}: rows = {', '.join(names)}")
        return fig

    def static(self, n_views: int = 4):
        """The fallback: outputs at a few steps (rows), with the inputs on top and the targets below."""
        from coursekit import plotting

        picks = sorted({round(i * (len(self.snapshots) - 1) / max(n_views - 1, 1)) for i in range(n_views)})
        rows = [self.inputs] + [self.snapshots[i][:self.n] for i in picks]
        names = ["input"] + [f"step {self.steps[i]}" for i in picks]
        if self.targets is not None:
            rows.append(self.targets)
            names.append("target")
        fig = plotting.show_images(torch.cat(rows), ncols=self.n, size=1.0,
                                   title=f"{self.title} — rows: {' / '.join(names)}")
        return fig

    def widget(self):
        import ipywidgets as widgets
        import matplotlib.pyplot as plt

        slider = widgets.SelectionSlider(options=[(str(s), i) for i, s in enumerate(self.steps)],
                                         value=len(self.steps) - 1, description="step", continuous_update=False)
        out = widgets.Output()

        def redraw(change=None):
            with out:
                out.clear_output(wait=True)
                plt.show(self.figure(slider.value))

        slider.observe(redraw, names="value")
        redraw()
        self.slider, self.output = slider, out
        return widgets.VBox([slider, out])
