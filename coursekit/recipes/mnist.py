"""How the zoo's MNIST classifiers are trained (``coursekit zoo build mnist_cnn ...``).

Every recipe trains on the full MNIST training set (60,000 images) and measures on the 10,000
test images; :func:`full_mnist` refuses the embedded subset (4,000/1,000 digits) with the fix.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from coursekit.checks import CourseKitError
from coursekit.zoo import round_to_float16

#: The size of each split of the full MNIST: what the zoo's figures are measured on.
FULL_MNIST = {"train": 60000, "test": 10000}


def full_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``data.load_mnist(split)``, refusing anything smaller than the full split.

    Returns images ``(N, 1, 28, 28)`` in [0, 1] and labels ``(N,)``, ``N`` = 60,000 (train) or
    10,000 (test). Raises :class:`~coursekit.checks.CourseKitError` (with the fix) otherwise.
    """
    from coursekit import data

    if split not in FULL_MNIST:
        raise CourseKitError(f"split must be one of {', '.join(FULL_MNIST)}, got {split!r}.")
    x, y = data.load_mnist(split)
    if len(x) < FULL_MNIST[split]:
        raise CourseKitError(
            f"Building the zoo needs the full MNIST (60,000 train / 10,000 test), found {len(x)} "
            f"{split} images (the embedded subset?). Set COURSEKIT_DATA to a mirror in "
            "torchvision's layout, e.g. COURSEKIT_DATA=../shared/data."
        )
    return x, y


def train_classifier_recipe(model: nn.Module, recipe: dict) -> dict:
    """Train on the full MNIST training set, evaluate on the 10,000 test images.

    ``recipe``: epochs, lr, batch_size, seed (:func:`coursekit.training.train_classifier`).
    """
    from coursekit import training

    x_train, y_train = full_mnist("train")
    x_test, y_test = full_mnist("test")
    history = training.train_classifier(
        model, x_train, y_train, epochs=recipe["epochs"], lr=recipe["lr"],
        batch_size=recipe["batch_size"], seed=recipe["seed"],
    )
    return {
        "accuracy": training.accuracy(model, x_test, y_test),
        "evaluated_on": "MNIST test set (10,000 images)",
        "data": "MNIST training set (60,000 images)",
        "final_train_loss": history["loss"][-1],
    }


def train_float16_classifier_recipe(model: nn.Module, recipe: dict) -> dict:
    """:func:`train_classifier_recipe`, then weights rounded to float16 (< 1 MB): the accuracy of what ships."""
    from coursekit import training

    figures = train_classifier_recipe(model, recipe)
    round_to_float16(model)
    x_test, y_test = full_mnist("test")
    return {**figures, "accuracy": training.accuracy(model, x_test, y_test),
            "storage_dtype": "float16 (loaded as float32)"}


def train_robust_recipe(model: nn.Module, recipe: dict) -> dict:
    """Adversarial training on the full MNIST (:func:`coursekit.defenses.adversarial_training`).

    Figures: clean accuracy on the 10,000 test images and PGD accuracy (eps 0.3, 20 steps of 0.01
    and 40 steps of 0.025, random start) and FGSM accuracy on the first 1,000, of the float16
    weights that ship.
    """
    from coursekit import attacks, defenses, training

    x_train, y_train = full_mnist("train")
    x_test, y_test = full_mnist("test")
    train_kwargs = {k: v for k, v in recipe.items() if k not in ("note", "storage_dtype")}
    start = time.perf_counter()
    history = defenses.adversarial_training(model, x_train, y_train, **train_kwargs)
    seconds = time.perf_counter() - start
    round_to_float16(model)
    x_eval, y_eval = x_test[:1000], y_test[:1000]
    pgd20 = attacks.pgd(model, x_eval, y_eval, 0.3, 0.01, 20, seed=0)
    pgd40 = attacks.pgd(model, x_eval, y_eval, 0.3, 0.025, 40, seed=1)
    fgsm = attacks.fgsm(model, x_eval, y_eval, 0.3)
    return {
        "accuracy": training.accuracy(model, x_test, y_test),
        "evaluated_on": "MNIST test set (10,000 images); attacks on the first 1,000",
        "pgd20_eps0.3_accuracy": training.accuracy(model, pgd20, y_eval),
        "pgd40_eps0.3_accuracy": training.accuracy(model, pgd40, y_eval),
        "fgsm_eps0.3_accuracy": training.accuracy(model, fgsm, y_eval),
        "data": "MNIST training set (60,000 images), each batch replaced by adversarial examples",
        "final_train_loss": history["loss"][-1],
        "training_seconds": round(seconds),
        "storage_dtype": "float16 (loaded as float32)",
    }
