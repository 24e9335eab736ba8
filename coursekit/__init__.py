"""coursekit: a hands-on course on adversarial examples and GANs.

Submodules are imported on demand (``import coursekit.attacks``) so that
``import coursekit`` stays fast: it does no torch work at import time.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "annotation", "applications", "attacks", "checks", "claims", "cli", "data", "defenses", "doctor",
    "exercises", "feedback", "gan", "grading", "linear", "metrics", "mobilenet", "models",
    "plotting", "runtime", "sandbox", "site", "training", "transfer", "widgets", "zoo",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"coursekit.{name}")
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES) + ["__version__"]
