"""Shared probe inputs of the exercises: models, digits, seeded tensors.

Public on purpose: in grading, the student's kernel rebuilds the models named in the probes it is
handed (:mod:`coursekit.exercises.channel`), so what is here must hold nothing a student could use
to look an answer up (no reference, no expected value). Everything is deterministic and cached.

A model handed to an answer is one of :func:`model`'s: zoo models by name, plus the small probe
models of :data:`PROBE_MODELS` (e.g. a classifier with dropout handed over in train mode). The name
travels with the model (:func:`model_name`), so a probe can be written to the grading channel as
plain data and rebuilt on the other side.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch

from coursekit.checks import CourseKitError


def _dropout_mlp() -> torch.nn.Module:
    """A small digit classifier with dropout, handed over in TRAIN mode: in train mode its outputs
    (and an attack's gradient) change from call to call, so an answer must switch to eval()."""
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.5),
                             nn.Linear(64, 10)).train()


# name -> builder of a probe model that is not in the zoo (deterministic: the same weights everywhere)
PROBE_MODELS: dict[str, Callable[[], torch.nn.Module]] = {"dropout_mlp": _dropout_mlp}

_NAMES: dict[int, str] = {}


@lru_cache(maxsize=None)
def model(name: str) -> torch.nn.Module:
    """A probe model: a zoo model (``"mnist_cnn"``) or one of :data:`PROBE_MODELS`; built once."""
    if name in PROBE_MODELS:
        built = PROBE_MODELS[name]()
    else:
        from coursekit import zoo

        built = zoo.load(name)
    _NAMES[id(built)] = name
    return built


def model_name(module: torch.nn.Module) -> str:
    """The name :func:`model` built ``module`` under (how a probe model travels to the kernel)."""
    try:
        return _NAMES[id(module)]
    except KeyError:
        raise CourseKitError("A probe hands the answer a model that probes.model() did not build: build probe "
                             "models with coursekit.exercises.probes.model(name) (add new ones to "
                             "PROBE_MODELS), so that grading can rebuild them in the student's kernel.") from None


@lru_cache(maxsize=None)
def digits(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` embedded MNIST test digits and labels: the same probes (and bands) on every
    machine, with or without a data mirror."""
    from coursekit import data

    return data.embedded_mnist("test", limit=n)


def rand(seed: int, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) values of ``shape`` from their own seeded generator."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def randn(seed: int, *shape: int, scale: float = 1.0) -> torch.Tensor:
    """Standard normal values of ``shape`` times ``scale``, from their own seeded generator."""
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
