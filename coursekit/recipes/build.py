"""``coursekit zoo build``: train the zoo's models, save their weights, update the manifest."""
from __future__ import annotations

import json
import platform
from typing import Callable

import torch
from torch import nn

from coursekit import zoo
from coursekit.checks import CourseKitError
from coursekit.recipes import gan, mnist

#: ``ZooEntry.trainer`` -> ``(model, recipe) -> figures`` (the figures go into the manifest).
TRAINERS: dict[str, Callable[[nn.Module, dict], dict]] = {
    "mnist_classifier": mnist.train_classifier_recipe,
    "mnist_classifier_float16": mnist.train_float16_classifier_recipe,
    "mnist_robust": mnist.train_robust_recipe,
    "dcgan_mnist": gan.train_dcgan_mnist,
    "cgan_mnist": gan.train_cgan_mnist,
}


def buildable() -> list[str]:
    """The zoo's models that have a training recipe."""
    return [name for name, entry in zoo.ENTRIES.items() if entry.trainer is not None]


def build(names: list[str] | None = None) -> dict:
    """Train the named models (default: all with a recipe), save weights, update the manifest."""
    from coursekit import __version__

    names = names or buildable()
    for name in names:
        if name not in buildable():
            raise CourseKitError(f"No build recipe for {name!r}. Buildable: {', '.join(buildable())}.")
    for name in names:
        entry = zoo.ENTRIES[name]
        torch.manual_seed(entry.recipe.get("seed", 0))
        model = entry.build()
        print(f"building {name}: {entry.description}", flush=True)
        figures = TRAINERS[entry.trainer](model, entry.recipe)
        path = zoo.weights_dir() / f"{name}.pt"
        state = model.state_dict()
        if entry.recipe.get("storage_dtype") == "float16":  # halves the file; zoo.load restores float32
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        torch.save(state, path)
        record_in_manifest(name, {
            "description": entry.description,
            "sha256": zoo.sha256_of(path),
            "bytes": path.stat().st_size,
            "parameters": sum(p.numel() for p in model.parameters()),
            "recipe": entry.recipe,
            **figures,
            "built_with": {"coursekit": __version__, "torch": torch.__version__,
                           "python": platform.python_version()},
        })
        print(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    return zoo.manifest()


def record_in_manifest(name: str, record: dict) -> None:
    """Write one model's record, re-reading the file so parallel builds do not clobber it."""
    current = zoo.manifest()
    current[name] = record
    zoo.manifest_path().write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
