"""Pre-rendered frames of an explorer: what a slider shows, one PNG per position.

The explorers of :mod:`coursekit.widgets` (and the GAN dashboard, :mod:`coursekit.dashboard`) render
their frames with ``frames()``; the static site (:mod:`coursekit.site`) drives them with an HTML range
input, so an explorer stays interactive on a page without a kernel.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Sequence

from coursekit.checks import CourseKitError

FRAME_DPI = 72


def png(fig, dpi: int = FRAME_DPI) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed (it is not shown again)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


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
                "images": [base64.b64encode(image).decode("ascii") for image in self.images]}

    @classmethod
    def from_json(cls, data: dict) -> "Frames":
        return cls(label=data["label"], values=list(data["values"]), start=int(data.get("start", 0)),
                   images=[base64.b64decode(text) for text in data["images"]])


def evenly(items: Sequence, limit: int) -> list[int]:
    """Indices of at most ``limit`` items spread evenly, first and last included."""
    n = len(items)
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})
