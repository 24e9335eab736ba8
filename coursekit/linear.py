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
  ``x + eps * (1 - 2y) * sign(w)``, equal to the gradient-sign step;
- :func:`smallest_flipping_eps`: the exact smallest L-infinity budget that flips a multiclass
  linear classifier, with the clip to [0, 1] that the margin formula ignores;
- :func:`robust_logistic_loss`, :func:`train_binary_logistic`: robust training of logistic
  regression in closed form (the inner max is ``-eps * ||w||_1``; Kolter & Madry's tutorial).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.checks import CourseKitError, check_images, check_labels, check_nonnegative

__all__ = [
    "train_logistic_regression", "downsample", "worst_perturbation", "linear_response_growth",
    "linear_response_by_resolution", "fgsm_linear", "BinaryLogisticRegression",
    "smallest_flipping_eps", "flipped_at", "robust_logistic_loss", "train_binary_logistic",
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


def worst_perturbation(w: torch.Tensor, eps: float) -> torch.Tensor:
    r"""The perturbation with ``||eta||_inf <= eps`` that raises ``w^T x`` the most: ``eta = eps * sign(w)``.

    It raises the score by exactly ``eps * ||w||_1``. w: ``(n,)``; returns ``(n,)``.
    """
    return check_nonnegative(eps, "eps") * torch.sign(w)


def linear_response_growth(
    dims: Sequence[int] = (10, 100, 1_000, 10_000, 100_000),
    eps: float = 0.01,
    seed: int = 0,
    *,
    weights: torch.Tensor | None = None,
    draws: int = 200,
) -> dict[str, np.ndarray]:
    r"""How much ``eta = eps * sign(w)`` moves a linear score, as the dimension ``n`` grows.

    For each ``n`` in ``dims`` take ``w in R^n`` and an input ``x in [0, 1]^n``;
    then *measure*

    .. math:: \Delta = w^T (x + \eta) - w^T x \quad \text{with} \quad \eta = \epsilon\,\mathrm{sign}(w)

    and compare it with the formula ``eps * ||w||_1``. ``max |eta_i| = eps`` for
    every ``n``, while ``Delta`` grows linearly in ``n``. For contrast, a random
    perturbation of the same size, ``eps * s`` with random signs ``s``, moves the
    score by ``w^T (eps * s)``, a sum of ``n`` random terms whose root-mean-square over
    draws is exactly ``eps * ||w||_2 = eps * sqrt(n) * rms(w)`` (growing like ``sqrt(n)``);
    ``draws`` sign vectors per ``n`` give its median and 10-90% range.

    ``weights=None``: ``w ~ N(0, 1)`` (seeded). Otherwise ``w`` is ``n`` entries
    of ``weights`` chosen at random without replacement (seeded), e.g. a row of
    a trained logistic regression (``zoo.load("mnist_logreg").linear.weight[3]``).
    Computed in float64.

    Returns a dict of arrays, one entry per ``n``: ``"dims"``,
    ``"max_pixel_change"`` (``max |eta_i|``), ``"activation_change"``
    (measured ``Delta``), ``"eps_l1_norm"`` (``eps * ||w||_1``), ``"eps_l2_norm"``
    (``eps * ||w||_2``), ``"random_sign_change"`` (median over draws of ``|w^T (eps * s)|``),
    ``"random_sign_low"``, ``"random_sign_high"`` (its 10% and 90% quantiles) and ``"eps"``.
    """
    eps = check_nonnegative(eps, "eps")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise CourseKitError(f"draws must be a positive integer (random sign vectors per n), got {draws!r}.")
    if weights is not None:
        if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
            raise CourseKitError("weights must be a float torch.Tensor (a weight vector).")
        weights = weights.detach().flatten().double().cpu()
    dims = _check_dims(dims, None if weights is None else len(weights))
    generator = torch.Generator().manual_seed(seed)
    rows: dict[str, list[float]] = {k: [] for k in
                                    ("max_pixel_change", "activation_change", "eps_l1_norm", "eps_l2_norm",
                                     "random_sign_change", "random_sign_low", "random_sign_high")}
    for n in dims:
        if weights is None:
            w = torch.randn(n, generator=generator, dtype=torch.float64)
        else:
            w = weights[torch.randperm(len(weights), generator=generator)[:n]]
        x = torch.rand(n, generator=generator, dtype=torch.float64)
        eta = worst_perturbation(w, eps)                                # eta = eps * sign(w)
        random_signs = torch.randint(0, 2, (draws, n), generator=generator).double() * 2 - 1
        random_change = (random_signs @ w).abs() * eps                  # |w^T (eps * s)| per draw
        low, median, high = torch.quantile(random_change, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
        rows["max_pixel_change"].append(float(eta.abs().max()))
        rows["activation_change"].append(float(w @ (x + eta) - w @ x))  # measured
        rows["eps_l1_norm"].append(eps * float(w.abs().sum()))          # eps * ||w||_1
        rows["eps_l2_norm"].append(eps * float(w.norm()))               # eps * ||w||_2
        rows["random_sign_change"].append(float(median))
        rows["random_sign_low"].append(float(low))
        rows["random_sign_high"].append(float(high))
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


# ---------------------------------------------------------------- the smallest flipping eps, exactly

def smallest_flipping_eps(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                          clip: bool = True) -> torch.Tensor:
    r"""The smallest L-infinity budget that changes a multiclass linear classifier's decision.

    For the true class ``y`` and another class ``t``, with ``d = w_y - w_t`` and the margin
    ``m_t = z_y - z_t``, the best perturbation moves each pixel by ``eps`` against ``sign(d_i)``;
    but a pixel can only move until it hits 0 or 1 (its room ``r_i = x_i`` if ``d_i > 0``, else
    ``1 - x_i``). The margin then falls by

    .. math:: D_t(\epsilon) = \textstyle\sum_i |d_i| \min(\epsilon, r_i), \qquad
              \epsilon^\star = \min_{t \ne y} \; \min\{\epsilon : D_t(\epsilon) \ge m_t\}

    (``D_t`` is piecewise linear: solved exactly between the sorted rooms). ``clip=False``
    ignores the box, ``D_t = eps * ||d||_1``, which gives the textbook ``m_t / ||w_y - w_t||_1``
    (a lower bound). ``inf`` where even moving every pixel to the end of its room does not flip.

    W: ``(K, n)``; b: ``(K,)``; x: ``(N, n)`` or ``(N, C, H, W)`` in [0, 1]; y: ``(N,)``.
    Returns ``(N,)`` float64 (0 for an image the model already gets wrong).
    """
    if not isinstance(W, torch.Tensor) or W.dim() != 2 or not W.is_floating_point():
        raise CourseKitError("W must be a float tensor of shape (K, n): one weight row per class.")
    x = x.reshape(len(x), -1) if isinstance(x, torch.Tensor) else x
    check_images(x.reshape(len(x), 1, 1, -1))
    K, n = W.shape
    if x.shape[1] != n or b.shape != (K,):
        raise CourseKitError(f"W is {tuple(W.shape)}, so b must be ({K},) and each image must have {n} values; "
                             f"got b {tuple(b.shape)} and images of {x.shape[1]} values.")
    check_labels(y, len(x), num_classes=K)
    W, b, x = W.detach().double(), b.detach().double(), x.detach().double()
    logits = x @ W.T + b                                             # (N, K)
    d = W[y][:, None, :] - W[None, :, :]                            # (N, K, n): w_y - w_t
    margin = logits.gather(1, y[:, None]) - logits                  # (N, K): z_y - z_t
    weight = d.abs()
    if not clip:
        eps_t = margin / weight.sum(2)
    else:
        room = torch.where(d > 0, x[:, None, :], 1 - x[:, None, :])  # how far each pixel can go
        room, order = room.sort(2)
        weight = weight.gather(2, order)
        below = (weight * room).cumsum(2) - weight * room           # sum_{j<k} |d_j| r_j
        tail = weight.flip(2).cumsum(2).flip(2)                      # sum_{j>=k} |d_j|
        at_break = below + room * tail                               # D(r_k)
        k = (at_break < margin[..., None]).sum(2, keepdim=True)      # first breakpoint reaching m
        reachable = k.squeeze(2) < n
        k = k.clamp(max=n - 1)
        eps_t = (margin - below.gather(2, k).squeeze(2)) / tail.gather(2, k).squeeze(2).clamp_min(1e-300)
        eps_t = torch.where(reachable, eps_t, torch.full_like(eps_t, float("inf")))
    eps_t = eps_t.scatter(1, y[:, None], float("inf"))             # t = y is not a target
    return eps_t.amin(1).clamp_min(0.0)


def flipped_at(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    r"""Whether some L-infinity perturbation of size ``eps`` flips the linear classifier, by attacking.

    For every target ``t != y`` the best box-constrained perturbation is applied,
    ``x_t = clip_[0,1](x - eps * sign(w_y - w_t))``, and the image counts as flipped when some ``x_t``
    is classified as ``t`` (a tie counts). An independent check of :func:`smallest_flipping_eps`: it
    flips exactly when ``eps >= eps*``. Shapes as there; returns ``(N,)`` booleans.
    """
    eps = check_nonnegative(eps, "eps")
    x = x.reshape(len(x), -1).detach().double()
    W, b = W.detach().double(), b.detach().double()
    check_labels(y, len(x), num_classes=W.shape[0])
    d = W[y][:, None, :] - W[None, :, :]                              # (N, K, n)
    x_t = (x[:, None, :] - eps * d.sign()).clamp(0, 1)               # one attacked image per target
    logits = torch.einsum("ntk,ck->ntc", x_t, W) + b                  # (N, K targets, K classes)
    own = logits.gather(2, y.view(-1, 1, 1).expand(-1, W.shape[0], 1)).squeeze(2)
    theirs = logits.diagonal(dim1=1, dim2=2)                          # z_t of the image attacked towards t
    hit = theirs >= own
    hit[torch.arange(len(x)), y] = False
    return hit.any(1)


# ---------------------------------------------------------------- robust logistic regression

def _signed_labels(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return 2 * y.to(like.dtype) - 1                                # {0, 1} -> {-1, +1}


def robust_logistic_loss(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                         eps: float) -> torch.Tensor:
    r"""The logistic loss under the worst L-infinity perturbation, in closed form.

    With ``y`` in {0, 1} read as ``s = 2y - 1`` in {-1, +1} and ``L(z) = log(1 + exp(-z))``:

    .. math:: \max_{\|\delta\|_\infty \le \epsilon} L\big(s\,(w^\top (x + \delta) + b)\big)
              = L\big(s\,(w^\top x + b) - \epsilon \|w\|_1\big)

    (the inner max is reached at ``delta = -eps * s * sign(w)``: Kolter & Madry's tutorial, ch. 2).
    ``eps = 0`` is the ordinary logistic loss. w: ``(n,)``; b: ``()``; x: ``(N, n)``; y: ``(N,)``.
    Returns the mean over the batch (a scalar tensor).
    """
    eps = check_nonnegative(eps, "eps")
    score = _signed_labels(y, x) * (x @ w + b) - eps * w.abs().sum()
    return F.softplus(-score).mean()                               # L(z) = softplus(-z)


def train_binary_logistic(x: torch.Tensor, y: torch.Tensor, *, eps: float = 0.0, steps: int = 200,
                          lr: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Binary logistic regression trained (robustly when ``eps > 0``) by full-batch gradient descent.

    .. math:: \min_{w, b} \; \tfrac1N \textstyle\sum_i L\big(s_i (w^\top x_i + b) - \epsilon \|w\|_1\big)

    (:func:`robust_logistic_loss`) from ``w = 0, b = 0``, ``steps`` steps of plain gradient descent
    (``torch.optim.SGD``, ``lr``, no momentum): deterministic. x: ``(N, n)`` in [0, 1];
    y: ``(N,)`` in {0, 1}. Returns ``(w, b)``: ``(n,)`` and ``()``, detached.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise CourseKitError("x must be a float tensor of shape (N, n): one flattened image per row.")
    check_labels(y, len(x), num_classes=2)
    if len(x) == 0:
        raise CourseKitError("x is empty: logistic regression needs training examples.")
    lr = check_nonnegative(lr, "lr")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise CourseKitError(f"steps must be a non-negative integer, got {steps!r}.")
    w = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    b = torch.zeros((), dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.SGD([w, b], lr=lr)
    for _ in range(steps):
        loss = robust_logistic_loss(w, b, x, y, eps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return w.detach(), b.detach()
