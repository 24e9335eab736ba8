"""Small helpers shared by the GAN applications (validation, modes, seeding)."""
from __future__ import annotations

import torch

from coursekit.checks import CourseKitError, check_positive_float  # noqa: F401 (re-exported)
from coursekit.runtime import evaluating as eval_mode  # noqa: F401 (the one eval-mode helper, re-exported)
from coursekit.runtime import model_device as device_of  # noqa: F401 (the one device helper, re-exported)


def check_fraction(value, name: str, *, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1] (optionally excluding an end)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CourseKitError(f"{name} must be a number in [0, 1], got {value!r}.") from None
    if not (0.0 <= v <= 1.0) or (open_low and v == 0.0) or (open_high and v == 1.0):
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise CourseKitError(f"{name} must be a number in {lo}0, 1{hi}, got {value!r}.")
    return v


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise CourseKitError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}."
        )


class BatchSampler:
    """Epoch-wise shuffled mini-batch indices from a seeded ``torch.Generator``."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        if batch_size > n:
            raise CourseKitError(f"batch_size={batch_size} is larger than the data ({n} examples).")
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self._order = torch.randperm(n, generator=generator)
        self._cursor = 0

    def next(self) -> torch.Tensor:
        if self._cursor + self.batch_size > self.n:
            self._order = torch.randperm(self.n, generator=self.generator)
            self._cursor = 0
        idx = self._order[self._cursor:self._cursor + self.batch_size]
        self._cursor += self.batch_size
        return idx


def adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with the GAN betas (0.5, 0.999) of Radford et al. (2016)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
