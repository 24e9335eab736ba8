"""Run-time settings in one place: the device, and the size of every budget.

Three sizes, one code path (notebooks call ``budget`` and never test the mode themselves):

========  ==================================================  ==========================
mode      when                                                ``budget(full, fast, large)``
========  ==================================================  ==========================
fast      nbgrader grading (``NBGRADER_EXECUTION``), CI,      ``fast``
          ``COURSEKIT_FAST=1``
default   a live session on a laptop CPU                      ``full``
large     ``full_size()``: a CUDA GPU is there, or            ``large`` (``full`` if none)
          ``COURSEKIT_FULL=1``
========  ==================================================  ==========================

- ``device()``: ``COURSEKIT_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``; ``auto`` or unset:
  the best available) else CUDA, then Apple MPS, then the CPU. A forced device that is not there
  raises a :class:`~coursekit.checks.CourseKitError` that says what to do.
- ``full_size()``: ``COURSEKIT_FULL=1`` forces it on, ``COURSEKIT_FULL=0`` off; unset, it is on
  when ``device()`` is a CUDA GPU. Never while grading.
- ``describe()``: one line for humans (used by ``coursekit doctor`` and lecture 00).
- ``model_device(model)``: where a model's weights are; ``evaluating(*models)``: a block with the
  models in eval mode, every submodule's own mode restored afterwards (the one helper for both:
  attacks, metrics, training, the GAN code and the applications use them).
- ``is_grading()``: explorers (``coursekit.widgets.show``) show their static figure instead of a
  live widget: under nbgrader, with the fast budgets (``COURSEKIT_FAST=1``), and with
  ``COURSEKIT_STATIC_WIDGETS=1`` (the static site, any budget). ``COURSEKIT_LIVE_WIDGETS=1`` keeps
  widgets live with fast budgets (the browser test, tests/test_browser.py); nbgrader always gets
  the static figures.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from coursekit.checks import CourseKitError

_FALSE = ("", "0", "false", "no", "off")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in _FALSE


def mps_available() -> bool:
    """True on Apple silicon with a PyTorch build that has the MPS backend."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The device types this machine offers, best first (``cpu`` always last)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if mps_available():
        found.append("mps")
    return found + ["cpu"]


def device() -> torch.device:
    """The device every notebook uses: ``COURSEKIT_DEVICE``, else CUDA > MPS > CPU."""
    forced = os.environ.get("COURSEKIT_DEVICE", "").strip().lower()
    if forced and forced != "auto":
        try:
            chosen = torch.device(forced)
        except RuntimeError:
            raise CourseKitError(
                f"COURSEKIT_DEVICE={forced!r} is not a device name: use cpu, cuda, cuda:N, mps or auto."
            ) from None
        if chosen.type not in available_devices():
            raise CourseKitError(
                f"COURSEKIT_DEVICE={forced!r} but this machine has no {chosen.type.upper()} device "
                f"(available: {', '.join(available_devices())}). Unset COURSEKIT_DEVICE or set it to cpu."
            )
        if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise CourseKitError(
                f"COURSEKIT_DEVICE={forced!r} but only {torch.cuda.device_count()} CUDA device(s) are visible."
            )
        return chosen
    return torch.device(available_devices()[0])


def fast_budgets() -> bool:
    """True under nbgrader's autograder or with ``COURSEKIT_FAST=1``: tiny budgets."""
    return "NBGRADER_EXECUTION" in os.environ or _flag("COURSEKIT_FAST")


def is_grading() -> bool:
    """True when explorers must show static figures (no live widget front end).

    Under nbgrader; with ``COURSEKIT_STATIC_WIDGETS=1``; with the fast budgets unless
    ``COURSEKIT_LIVE_WIDGETS=1``.
    """
    if "NBGRADER_EXECUTION" in os.environ or _flag("COURSEKIT_STATIC_WIDGETS"):
        return True
    return fast_budgets() and not _flag("COURSEKIT_LIVE_WIDGETS")


def full_size() -> bool:
    """Larger data, models and budgets: on with a CUDA GPU or ``COURSEKIT_FULL=1``; never while grading."""
    if fast_budgets():
        return False
    setting = os.environ.get("COURSEKIT_FULL")
    if setting is not None and setting.strip() != "":
        return _flag("COURSEKIT_FULL")
    return device().type == "cuda"


def mode() -> str:
    """``'fast'`` (grading/CI), ``'large'`` (full size) or ``'default'``."""
    if fast_budgets():
        return "fast"
    return "large" if full_size() else "default"


def budget(full, fast, large=None):
    """``fast`` while grading, ``large`` in full-size mode (when given), else ``full``."""
    if fast_budgets():
        return fast
    if large is not None and full_size():
        return large
    return full


def describe_device(d: torch.device | None = None) -> str:
    """A device for humans: ``cuda (NVIDIA H200)``, ``mps (Apple GPU)``, ``cpu (2 cores, 2 torch threads)``."""
    d = torch.device(d) if d is not None else device()
    if d.type == "cuda":
        index = d.index if d.index is not None else torch.cuda.current_device()
        return f"cuda ({torch.cuda.get_device_name(index)})"
    if d.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def describe() -> str:
    """One line: the device (with the GPU's name) and the budget mode."""
    return f"device {describe_device()}; budgets: {mode()}"


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (else its first buffer); the CPU for a model with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def evaluating(*models: nn.Module) -> Iterator[None]:
    """Run a block with every model in eval mode; restore the mode of every submodule afterwards.

    Restoring each submodule (not ``model.train(previous)``) matters when a caller froze part of a
    model: a feature extractor kept in eval mode inside a model being trained stays in eval mode.
    Gradients are not touched (``torch.no_grad()`` / ``enable_grad()`` are the caller's choice).
    """
    modes = [(module, module.training) for model in models for module in model.modules()]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
