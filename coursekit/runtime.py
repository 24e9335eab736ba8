"""Run-time settings in one place: the device, and fast "grading" vs full "learning" budgets.

- ``device()``: CUDA, then Apple MPS, then CPU (override with ``COURSEKIT_DEVICE=cpu``).
- ``is_grading()``: true while nbgrader executes a notebook (it sets ``NBGRADER_EXECUTION``)
  or when ``COURSEKIT_FAST=1`` (CI, the course job). Notebooks then take the same code path
  with tiny budgets.
- ``budget(full=..., fast=...)``: pick the value for the current mode.
- ``full_size()``: true when ``COURSEKIT_FULL=1`` (bigger data/models, e.g. on a GPU).
"""
from __future__ import annotations

import os

import torch


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def device() -> torch.device:
    """The best available device (``COURSEKIT_DEVICE`` overrides)."""
    forced = os.environ.get("COURSEKIT_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def is_grading() -> bool:
    """True under nbgrader's autograder or with ``COURSEKIT_FAST=1``."""
    return "NBGRADER_EXECUTION" in os.environ or _flag("COURSEKIT_FAST")


def full_size() -> bool:
    """True with ``COURSEKIT_FULL=1``: use larger data, models and budgets."""
    return _flag("COURSEKIT_FULL") and not is_grading()


def budget(full, fast):
    """``fast`` while grading (or COURSEKIT_FAST=1), else ``full``."""
    return fast if is_grading() else full
