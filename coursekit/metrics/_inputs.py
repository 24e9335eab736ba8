"""Input checks shared by the metrics: feature matrices and mean vectors, as float64."""
from __future__ import annotations

import math

import numpy as np
import torch

from coursekit.checks import CourseKitError


def _as_matrix(x, name: str) -> torch.Tensor:
    """A 2-D float64 tensor ``(N, d)`` of finite values (a copy when converted)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise CourseKitError(f"{name} must be a torch.Tensor of shape (N, d), got {type(x).__name__}.")
    if x.dim() != 2:
        hint = " One feature vector per row: use x.flatten(1)." if x.dim() > 2 else ""
        raise CourseKitError(f"{name} must have shape (N, d) (one row per sample), got {tuple(x.shape)}.{hint}")
    if x.is_complex() or x.dtype == torch.bool:
        raise CourseKitError(f"{name} must hold real numbers, got dtype {x.dtype}.")
    x = x.detach()
    if x.numel() and not all(math.isfinite(float(v)) for v in torch.aminmax(x)):  # NaN propagates
        raise CourseKitError(f"{name} contains NaN or infinite values (a diverged generator?).")
    if x.device.type == "mps":  # no float64 on Apple GPUs
        x = x.cpu()
    return x.to(torch.float64)


def _as_vector(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.dim() != 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise CourseKitError(f"{name} must be a 1-D tensor (a mean vector), got {shape}.")
    x = x.detach()
    if x.device.type == "mps":  # no float64 on Apple GPUs
        x = x.cpu()
    x = x.to(torch.float64)
    if not torch.isfinite(x).all():
        raise CourseKitError(f"{name} contains NaN or infinite values.")
    return x
