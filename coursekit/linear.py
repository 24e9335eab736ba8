"""The linear explanation of adversarial examples (Goodfellow, Shlens & Szegedy 2015).

For a linear score ``w^T x`` and a perturbation ``eta = eps * sign(w)``::

    w^T (x + eta) = w^T x + eps * ||w||_1

Every pixel moves by at most ``eps``, yet the score moves by ``eps * ||w||_1``,
which grows *linearly* with the number of inputs ``n`` (``||w||_1 ~ n * mean|w|``).
In high dimension many tiny changes add up to a large one: no non-linearity or
over-fitting is needed to explain adversarial examples.

- :func:`linear_response_growth`: the experiment, with random or trained weights;
- :func:`train_logistic_regression`, :func:`downsample`,
  :func:`linear_response_by_resolution`: the same on MNIST logistic regression
  at 7x7, 14x14 and 28x28 pixels;
- :func:`fgsm_linear`: FGSM in closed form for binary logistic regression,
  ``x + eps * (1 - 2y) * sign(w)``, equal to the gradient-sign step.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.checks import CourseKitError, check_images, check_labels, check_nonnegative

__all__ = [
    "train_logistic_regression", "downsample", "linear_response_growth",
    "linear_response_by_resolution", "fgsm_linear", "BinaryLogisticRegression",
]


# ---------------------------------------------------------------- training

def train_logistic_regression(
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 5,
    lr: float = 1e-3,
    seed: int = 0,
    *,
    batch_size: int = 64,
    num_classes: int | None = None,
    progress: bool = False,
) -> tuple[nn.Module, dict]:
    r"""Fit multinomial logistic regression ``softmax(W x + b)`` on raw pixels.

    Cross-entropy, Adam (``lr``, decaying linearly to 0), ``epochs`` passes in
    mini-batches (:func:`coursekit.training.train_classifier`): the recipe of the
    zoo's ``mnist_logreg``. x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)``.
    ``W`` has shape ``(num_classes, C*H*W)`` (``num_classes`` defaults to ``max(y) + 1``).
    Returns ``(model, history)`` with the model in eval mode.
    """
    from coursekit.models import LogisticRegression
    from coursekit.training import train_classifier

    check_images(x)
    check_labels(y, len(x))
    if len(x) == 0:
        raise CourseKitError("x is empty: logistic regression needs training examples.")
    num_classes = num_classes or max(int(y.max()) + 1, 2)
    torch.manual_seed(seed)
    model = LogisticRegression(in_features=x[0].numel(), num_classes=num_classes)
    history = train_classifier(model, x, y, epochs=epochs, lr=lr, batch_size=batch_size,
                               seed=seed, progress=progress)
    return model.eval(), history


def downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Average-pool images to ``size x size`` pixels: ``(N, C, H, W) -> (N, C, size, size)``."""
    check_images(x)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise CourseKitError(f"size must be a positive integer, got {size!r}.")
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.adaptive_avg_pool2d(x, size)


# ---------------------------------------------------------------- the experiment

def _check_dims(dims: Sequence[int], limit: int | None = None) -> list[int]:
    dims = list(dims) if not isinstance(dims, int) else [dims]
    if not dims or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1
                       for n in dims):
        raise CourseKitError(f"dims must be positive integers (input dimensions), got {dims!r}.")
    if limit is not None and max(dims) > limit:
        raise CourseKitError(
            f"dims go up to {max(dims)} but the weight vector has only {limit} entries."
        )
    return [int(n) for n in dims]


def linear_response_growth(
    dims: Sequence[int] = (10, 100, 1_000, 10_000, 100_000),
    eps: float = 0.01,
    seed: int = 0,
    *,
    weights: torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    r"""How much ``eta = eps * sign(w)`` moves a linear score, as the dimension ``n`` grows.

    For each ``n`` in ``dims`` take ``w in R^n`` and an input ``x in [0, 1]^n``;
    then *measure*

    .. math:: \Delta = w^T (x + \eta) - w^T x \quad \text{with} \quad \eta = \epsilon\,\mathrm{sign}(w)

    and compare it with the formula ``eps * ||w||_1``. ``max |eta_i| = eps`` for
    every ``n``, while ``Delta`` grows linearly in ``n``. For contrast, a random
    perturbation of the same size, ``eps * s`` with random signs ``s``, moves the
    score only by about ``eps * ||w||_2`` (growing like ``sqrt(n)``).

    ``weights=None``: ``w ~ N(0, 1)`` (seeded). Otherwise ``w`` is ``n`` entries
    of ``weights`` chosen at random without replacement (seeded), e.g. a row of
    a trained logistic regression (``zoo.load("mnist_logreg").linear.weight[3]``).
    Computed in float64.

    Returns a dict of arrays, one entry per ``n``: ``"dims"``,
    ``"max_pixel_change"`` (``max |eta_i|``), ``"activation_change"``
    (measured ``Delta``), ``"eps_l1_norm"`` (``eps * ||w||_1``),
    ``"random_sign_change"`` (``|w^T (eps * s)|``) and ``"eps"``.
    """
    eps = check_nonnegative(eps, "eps")
    if weights is not None:
        if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
            raise CourseKitError("weights must be a float torch.Tensor (a weight vector).")
        weights = weights.detach().flatten().double().cpu()
    dims = _check_dims(dims, None if weights is None else len(weights))
    generator = torch.Generator().manual_seed(seed)
    rows: dict[str, list[float]] = {k: [] for k in
                                    ("max_pixel_change", "activation_change", "eps_l1_norm",
                                     "random_sign_change")}
    for n in dims:
        if weights is None:
            w = torch.randn(n, generator=generator, dtype=torch.float64)
        else:
            w = weights[torch.randperm(len(weights), generator=generator)[:n]]
        x = torch.rand(n, generator=generator, dtype=torch.float64)
        eta = eps * torch.sign(w)                                       # eta = eps * sign(w)
        random_signs = torch.randint(0, 2, (n,), generator=generator).double() * 2 - 1
        rows["max_pixel_change"].append(float(eta.abs().max()))
        rows["activation_change"].append(float(w @ (x + eta) - w @ x))  # measured
        rows["eps_l1_norm"].append(eps * float(w.abs().sum()))          # eps * ||w||_1
        rows["random_sign_change"].append(abs(float(w @ (eps * random_signs))))
    result = {"dims": np.array(dims)}
    result.update({k: np.array(v) for k, v in rows.items()})
    result["eps"] = np.full(len(dims), eps)
    return result


def linear_response_by_resolution(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    sizes: Sequence[int] = (7, 14, 28),
    eps: float = 0.1,
    *,
    epochs: int = 3,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    r"""The linear experiment on real, trained weights: MNIST at several resolutions.

    For each ``size``, average-pool the digits to ``size x size`` (``n = size^2``
    inputs), train logistic regression (:func:`train_logistic_regression`), and
    measure on the test images: clean accuracy, accuracy under FGSM with budget
    ``eps`` (:func:`coursekit.attacks.fgsm` in the ``n``-pixel input space), and
    for each class row ``w_c`` the score change ``eps * ||w_c||_1`` under
    ``eta = eps * sign(w_c)`` (mean over classes), with ``mean |w|``.

    Returns a dict of arrays, one entry per size: ``"sizes"``, ``"dims"``,
    ``"accuracy"``, ``"fgsm_accuracy"``, ``"eps_l1_norm"``, ``"mean_abs_weight"``.
    """
    from coursekit.attacks import fgsm
    from coursekit.training import accuracy

    eps = check_nonnegative(eps, "eps")
    sizes = _check_dims(sizes)
    check_images(x_test, "x_test")
    check_labels(y_test, len(x_test), "y_test")
    out: dict[str, list[float]] = {k: [] for k in
                                   ("accuracy", "fgsm_accuracy", "eps_l1_norm", "mean_abs_weight")}
    for size in sizes:
        small_train, small_test = downsample(x_train, size), downsample(x_test, size)
        model, _ = train_logistic_regression(small_train, y_train, epochs=epochs, lr=lr,
                                             seed=seed, progress=progress)
        w = model.linear.weight.detach().double()                      # (classes, n)
        out["accuracy"].append(accuracy(model, small_test, y_test))
        out["fgsm_accuracy"].append(accuracy(model, fgsm(model, small_test, y_test, eps), y_test))
        out["eps_l1_norm"].append(float((eps * w.abs().sum(1)).mean()))
        out["mean_abs_weight"].append(float(w.abs().mean()))
    result = {"sizes": np.array(sizes), "dims": np.array([s * s for s in sizes])}
    result.update({k: np.array(v) for k, v in out.items()})
    return result


# ---------------------------------------------------------------- FGSM in closed form

class BinaryLogisticRegression(nn.Module):
    r"""Binary logistic regression ``p(y=1 | x) = sigmoid(w^T x + b)`` as a 2-logit classifier.

    Returns logits ``[0, w^T x + b]``: their softmax is ``[1 - p, p]``, so the
    cross-entropy equals the binary log-loss and every attack of
    :mod:`coursekit.attacks` applies. x: ``(N, ...)`` with ``n`` values per example.
    """

    def __init__(self, w: torch.Tensor, b: float | torch.Tensor = 0.0):
        super().__init__()
        self.register_buffer("w", torch.as_tensor(w, dtype=torch.float32).detach().flatten().clone())
        self.register_buffer("b", torch.as_tensor(b, dtype=torch.float32).detach().reshape(()).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(score), score], dim=1)


def fgsm_linear(w: torch.Tensor, b: float | torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                eps: float) -> torch.Tensor:
    r"""FGSM on binary logistic regression, in closed form.

    With ``p = sigmoid(w^T x + b)`` and the log-loss
    ``L = -[y log p + (1 - y) log(1 - p)]``, the input gradient is
    ``grad_x L = (p - y) w``. Since ``0 < p < 1``, ``sign(p - y) = 1 - 2y``, so

    .. math:: x_{adv} = \mathrm{clip}_{[0,1]}\big(x + \epsilon\,(1 - 2y)\,\mathrm{sign}(w)\big)

    -- exactly the gradient-sign step, with no gradient computed: for ``y = 1``
    every pixel moves by ``eps`` against ``w`` and the score ``w^T x + b`` drops
    by ``eps * ||w||_1`` (before clipping).

    w: ``(n,)``; b: a number; x: ``(N, n)`` or ``(N, C, H, W)`` with ``C*H*W = n``,
    values in [0, 1]; y: ``(N,)`` labels in {0, 1}. Returns a tensor shaped like ``x``.
    ``b`` shifts ``p`` but never the sign of ``p - y``: it does not enter the step.
    """
    eps = check_nonnegative(eps, "eps")
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise CourseKitError("w must be a float torch.Tensor of shape (n,).")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() not in (2, 4):
        raise CourseKitError(
            "x must be a float tensor of shape (N, n) or (N, C, H, W) with values in [0, 1]."
        )
    check_images(x.reshape(len(x), 1, 1, -1) if x.dim() == 2 else x)
    w = w.detach().flatten().to(x.device, x.dtype)
    if x[0].numel() != w.numel():
        raise CourseKitError(
            f"w has {w.numel()} entries but each example of x has {x[0].numel()} values."
        )
    check_labels(y, len(x), num_classes=2)
    direction = (1 - 2 * y.to(x.device, x.dtype)).view(-1, *([1] * (x.dim() - 1)))
    return (x.detach() + eps * direction * torch.sign(w).view(x[0].shape)).clamp(0, 1)
