"""Input validation with errors that teach.

Every public coursekit function that takes images calls :func:`check_images`
so that a wrong shape, dtype or range fails loudly with a hint instead of
silently producing a wrong answer.
"""
from __future__ import annotations

import math

import torch


class CourseKitError(ValueError):
    """A usage error with a plain-language explanation of what to change."""


def check_images(x: torch.Tensor, name: str = "x", *, channels: int | None = None,
                 size: tuple[int, int] | None = None) -> torch.Tensor:
    """Check that ``x`` is a float batch of images ``(N, C, H, W)`` in [0, 1].

    Returns ``x`` unchanged so the call can be used inline.
    """
    if not isinstance(x, torch.Tensor):
        raise CourseKitError(
            f"{name} must be a torch.Tensor of images, got {type(x).__name__}. "
            "Convert with torch.as_tensor(...)."
        )
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise CourseKitError(
            f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}.{hint}"
        )
    if not x.is_floating_point():
        raise CourseKitError(
            f"{name} must be a float tensor with values in [0, 1], got dtype {x.dtype}. "
            "Images stored as 0-255 integers become x.float() / 255."
        )
    if channels is not None and x.shape[1] != channels:
        raise CourseKitError(
            f"{name} must have {channels} channel(s), got shape {tuple(x.shape)}."
        )
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        raise CourseKitError(
            f"{name} must be {size[0]}x{size[1]} pixels, got shape {tuple(x.shape)}."
        )
    if x.numel():
        lo, hi = float(x.detach().min()), float(x.detach().max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise CourseKitError(
                f"{name} must hold values in [0, 1] (images are in [0, 1] everywhere in "
                f"coursekit; normalisation happens inside the model), got range "
                f"[{lo:.3g}, {hi:.3g}]."
            )
        if x.detach().isnan().any():
            raise CourseKitError(f"{name} contains NaN values.")
    return x


def check_labels(y: torch.Tensor, n: int, name: str = "y", num_classes: int | None = None) -> torch.Tensor:
    """Check that ``y`` is an integer vector of ``n`` class indices."""
    if not isinstance(y, torch.Tensor):
        raise CourseKitError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}.")
    if y.dim() != 1 or y.shape[0] != n:
        raise CourseKitError(
            f"{name} must have shape ({n},) (one class index per image), got {tuple(y.shape)}."
        )
    if y.is_floating_point() or y.dtype == torch.bool:
        raise CourseKitError(f"{name} must hold integer class indices (torch.long), got dtype {y.dtype}.")
    if num_classes is not None and y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise CourseKitError(f"{name} must hold class indices in [0, {num_classes - 1}].")
    return y


def check_nonnegative(value: float, name: str) -> float:
    """Check a budget such as eps or a step size: a finite number >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CourseKitError(f"{name} must be a number, got {value!r}.") from None
    if not v >= 0 or v == float("inf"):
        raise CourseKitError(f"{name} must be a finite number >= 0, got {value!r}.")
    return v


def check_int(value, name: str, minimum: int = 1) -> int:
    """An integer ``>= minimum`` (Python or NumPy; bools rejected: ``True`` is not a count)."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise CourseKitError(f"{name} must be {wanted}, got {value!r}.")
    return int(value)


def check_positive_float(value, name: str) -> float:
    """A finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CourseKitError(f"{name} must be a positive number, got {value!r}.") from None
    if not (v > 0 and math.isfinite(v)):
        raise CourseKitError(f"{name} must be a positive number, got {value!r}.")
    return v
