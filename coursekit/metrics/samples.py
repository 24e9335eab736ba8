"""How good are a generator's samples? Distances for 2-D toys and a classifier check for digits.

Also importable from :mod:`coursekit.gan` (lectures 04-05 use them beside the game).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from coursekit import runtime
from coursekit.checks import CourseKitError, check_images


def _check_points(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] < 1 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise CourseKitError(f"{name} must be a float tensor of points (N, d) with N >= 1, got {shape}.")
    if not torch.isfinite(x).all():
        raise CourseKitError(f"{name} contains NaN or infinite values (did training diverge?).")
    return x.detach().double()


@torch.no_grad()
def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Squared energy distance between two sample sets ``a (N, d)`` and ``b (M, d)``::

        E(a, b) = 2 mean|a_i - b_j| - mean|a_i - a_i'| - mean|b_j - b_j'|

    (Euclidean norms; all pairs, so this is the distance between the two
    empirical distributions: >= 0, and 0 only when they are identical). For
    ``d = 1`` it is ``scipy.stats.energy_distance(a, b) ** 2``.
    """
    a, b = _check_points(a, "a"), _check_points(b, "b")
    if a.shape[1] != b.shape[1]:
        raise CourseKitError(f"a and b must have the same dimension, got {a.shape[1]} and {b.shape[1]}.")
    cross = torch.cdist(a, b).mean()
    within_a = torch.cdist(a, a).mean()
    within_b = torch.cdist(b, b).mean()
    return float(2 * cross - within_a - within_b)


class ModeCoverage(NamedTuple):
    """``modes``: how many modes are covered; ``high_quality``: fraction of samples
    within ``radius`` of some mode; ``counts``: high-quality samples per mode."""

    modes: int
    high_quality: float
    counts: torch.Tensor


@torch.no_grad()
def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, radius: float = 0.15,
                  min_count: int = 5) -> ModeCoverage:
    """Mode coverage on a mixture of Gaussians (the 8-mode ring, the 25-mode grid).

    A sample is *high quality* when it lies within ``radius`` of its nearest
    centre (3 standard deviations: 0.15 for ``coursekit.data.toy_2d``). A mode is
    *covered* when at least ``min_count`` high-quality samples land on it.
    A mode-collapsed GAN has high quality but few modes.

    samples ``(N, 2)``, centers ``(K, 2)`` (e.g. ``data.toy_2d_centers('ring')``).
    """
    samples, centers = _check_points(samples, "samples"), _check_points(centers, "centers")
    if samples.shape[1] != centers.shape[1]:
        raise CourseKitError("samples and centers must have the same dimension.")
    if not radius > 0:
        raise CourseKitError(f"radius must be > 0, got {radius!r}.")
    distance, nearest = torch.cdist(samples, centers).min(1)
    good = distance <= radius
    counts = torch.bincount(nearest[good], minlength=len(centers))
    return ModeCoverage(int((counts >= min_count).sum()), float(good.double().mean()), counts)


@torch.no_grad()
def class_probabilities(classifier: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``softmax(classifier(images))`` ``(N, C)`` on the CPU, in batches on the classifier's device, in eval mode."""
    device = runtime.model_device(classifier)
    with runtime.evaluating(classifier):
        return torch.cat([classifier(images[i:i + batch_size].to(device)).softmax(1).cpu()
                          for i in range(0, len(images), batch_size)])


@torch.no_grad()
def digit_quality(images: torch.Tensor, classifier: nn.Module | None = None,
                  threshold: float = 0.9) -> dict:
    """Are generated digits recognisable? Classify them with an MNIST classifier.

    Returns ``confident_fraction`` (share of images whose top softmax
    probability exceeds ``threshold``), ``mean_confidence`` and
    ``class_histogram`` (predicted classes, a list of 10 counts: a collapsed
    generator puts most samples in a few classes). ``classifier`` defaults to
    ``zoo.load('mnist_cnn')``. images ``(N, 1, 28, 28)`` in [0, 1].
    """
    check_images(images, "images", channels=1, size=(28, 28))
    if classifier is None:
        from coursekit import zoo
        classifier = zoo.load("mnist_cnn")
    probs = class_probabilities(classifier, images)
    confidence, predicted = probs.max(1)
    return {
        "confident_fraction": float((confidence > threshold).float().mean()),
        "mean_confidence": float(confidence.mean()),
        "class_histogram": torch.bincount(predicted, minlength=probs.shape[1]).tolist(),
    }
