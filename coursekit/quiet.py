"""Quiet commands: the course's jobs print progress and results, not third-party noise.

Two kinds of noise came out of every command that runs notebooks or grades them, and both are
handled at the narrowest point that explains them, so that every *other* warning stays visible:

- ``[IPKernelApp] WARNING | Kernel is running over TCP without encryption``: ipykernel says so
  when the manager that starts it provisions no CurveZMQ keys. The warning is right, so it is not
  filtered: :func:`kernel_config` switches transport encryption on
  (``KernelManager.transport_encryption = "auto"``: keys for every kernel whose kernelspec declares
  ``curve`` support, which ipykernel's does), and the reason for the warning is gone. Pass it to
  every kernel manager the course creates: ``NotebookClient(..., config=kernel_config())``,
  ``configure_kernels(c)`` in an nbgrader or Jupyter server config, or the command-line form
  :data:`KERNEL_ARGUMENTS` (JupyterLab).
- SQLAlchemy's ``SAWarning: Object of type <SubmittedAssignment> not in session, add operation along
  '...' will not proceed``, raised inside :mod:`nbgrader.api` whenever a submission is added to the
  gradebook (nbgrader's own user guide shows the same lines in its autograde output: the objects are
  added explicitly right after, nothing is lost). :data:`HARMLESS_WARNINGS` lists it by category,
  module and message; :func:`filter_known_warnings` ignores exactly those (the CLI calls it), and
  ``pyproject.toml``'s ``filterwarnings`` holds the same entries for pytest (a test checks they agree).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

__all__ = ["HARMLESS_WARNINGS", "KERNEL_ARGUMENTS", "Harmless", "configure_kernels",
           "filter_known_warnings", "kernel_config", "pytest_filters"]


@dataclass(frozen=True)
class Harmless:
    """A third-party warning that is known to be harmless: matched by category, module and message."""

    category: str     # dotted path of the warning class, e.g. "sqlalchemy.exc.SAWarning"
    module: str       # regex over the module the warning is attributed to
    message: str      # regex over the start of the message
    why: str          # why it is harmless (for the reader of this list)

    def pytest_filter(self) -> str:
        """The same filter in pytest's ``filterwarnings`` syntax (action:message:category:module)."""
        return f"ignore:{self.message}:{self.category}:{self.module}"


HARMLESS_WARNINGS: tuple[Harmless, ...] = (
    Harmless("sqlalchemy.exc.SAWarning", r"nbgrader\.api", r"Object of type <\w+> not in session",
             "nbgrader's Gradebook builds a submission's objects inside an autoflush and adds them "
             "right after; its own documentation shows the warning in normal autograde output"),
)

# Transport encryption for every kernel a Jupyter application starts (JupyterLab, nbgrader apps).
KERNEL_ARGUMENTS: tuple[str, ...] = ("--KernelManager.transport_encryption=auto",)


def _category(path: str) -> type[Warning] | None:
    module, _, name = path.rpartition(".")
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except (ImportError, AttributeError):  # the package is not installed: nothing to filter
        return None


def filter_known_warnings() -> list[Harmless]:
    """Ignore the warnings of :data:`HARMLESS_WARNINGS` in this process; return those installed."""
    installed = []
    for entry in HARMLESS_WARNINGS:
        category = _category(entry.category)
        if category is not None:
            warnings.filterwarnings("ignore", message=entry.message, category=category, module=entry.module)
            installed.append(entry)
    return installed


def pytest_filters() -> list[str]:
    """:data:`HARMLESS_WARNINGS` as pytest ``filterwarnings`` lines (pyproject.toml must list them)."""
    return [entry.pytest_filter() for entry in HARMLESS_WARNINGS]


def _encryption_policy() -> str:
    import zmq

    # "auto" needs libzmq with CurveZMQ (pyzmq's wheels have it); without it, keep the default.
    return "auto" if zmq.has("curve") else "disabled"


def kernel_config():
    """A traitlets ``Config`` that starts kernels with CurveZMQ transport encryption.

    For ``nbclient.NotebookClient(nb, config=kernel_config())`` (and anything else that creates a
    ``jupyter_client`` kernel manager from a config).
    """
    from traitlets.config import Config

    config = Config()
    configure_kernels(config)
    return config


def configure_kernels(c) -> None:
    """Set transport encryption in a traitlets config ``c`` (nbgrader_config.py, a server config)."""
    c.KernelManager.transport_encryption = _encryption_policy()
