"""Degraded copies of real images: the sanity check of a metric (FID must rise, IS must fall)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from coursekit.checks import CourseKitError, check_images

CORRUPTIONS = ("noise", "blur")


def _gaussian_kernel_1d(sigma: float) -> torch.Tensor:
    """``exp(-t^2 / (2 sigma^2))`` on ``t = -r..r``, ``r = ceil(3 sigma)``, normalised to sum 1."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-t * t / (2 * sigma * sigma))
    return kernel / kernel.sum()


def corrupt(images: torch.Tensor, kind: str = "noise", level: float = 0.1, *,
            seed: int | None = 0) -> torch.Tensor:
    """A degraded copy of real images, to check that a metric notices (FID up, IS down).

    - ``"noise"``: ``clip_[0,1](x + level * eps)``, ``eps ~ N(0, I)`` (seeded with ``seed``);
    - ``"blur"``: a Gaussian blur ``x * g_sigma`` with ``sigma = level`` pixels (separable
      kernel of radius ``ceil(3 sigma)``, reflected borders).

    images: ``(N, C, H, W)`` in [0, 1]; ``level >= 0`` (0 returns an unchanged copy).
    Returns a new tensor of the same shape and dtype, in [0, 1].
    """
    check_images(images, "images")
    if kind not in CORRUPTIONS:
        raise CourseKitError(f"Unknown corruption {kind!r}: use one of {', '.join(CORRUPTIONS)}.")
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise CourseKitError(f"level must be a number >= 0, got {level!r}.") from None
    if not level >= 0 or math.isinf(level):
        raise CourseKitError(f"level must be a finite number >= 0, got {level!r}.")
    x = images.detach().clone()
    if level == 0 or x.numel() == 0:
        return x
    if kind == "noise":
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        noise = torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)
        return (x + level * noise).clamp(0, 1)
    kernel = _gaussian_kernel_1d(level).to(device=x.device, dtype=x.dtype)
    radius = (len(kernel) - 1) // 2
    n, c, h, w = x.shape
    if radius >= min(h, w):
        raise CourseKitError(
            f"A blur with sigma={level} needs images larger than {radius} pixels per side, got {h}x{w}."
        )
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w).clamp(0, 1)
