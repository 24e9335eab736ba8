"""The GAN game as losses on discriminator logits.

The discriminator outputs a logit ``l``; its probability that the input is real
is ``D = sigmoid(l)``. Everything is written with two numerically stable pieces::

    log D       = log sigmoid(l)     = -softplus(-l)
    log (1 - D) = log sigmoid(-l)    = -softplus(l)

(``softplus(t) = log(1 + e^t)`` never overflows in torch), so no loss ever takes
``log`` of a probability that rounded to 0 or 1. All losses average over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from coursekit.checks import CourseKitError


def check_logits(logits: torch.Tensor, name: str = "logits") -> torch.Tensor:
    """Check a batch of discriminator logits: a float tensor ``(N,)`` (or ``(N, 1)``).

    Returns the logits as ``(N,)``.
    """
    if not isinstance(logits, torch.Tensor):
        raise CourseKitError(
            f"{name} must be a torch.Tensor of discriminator logits, got {type(logits).__name__}."
        )
    if not logits.is_floating_point():
        raise CourseKitError(f"{name} must be a float tensor, got dtype {logits.dtype}.")
    if logits.dim() == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.dim() != 1:
        raise CourseKitError(
            f"{name} must have shape (N,): one logit per example, got {tuple(logits.shape)}. "
            "A discriminator returns one number per image (not probabilities, not images)."
        )
    if logits.shape[0] == 0:
        raise CourseKitError(f"{name} is empty: a batch needs at least one example.")
    return logits


def check_real_label(real_label: float) -> float:
    """The target for real examples: 1 (no smoothing) or a value in (0, 1), e.g. 0.9."""
    try:
        value = float(real_label)
    except (TypeError, ValueError):
        raise CourseKitError(f"real_label must be a number in (0, 1], got {real_label!r}.") from None
    if not 0.0 < value <= 1.0:
        raise CourseKitError(
            f"real_label (one-sided label smoothing) must be in (0, 1], got {real_label!r}: "
            "1 means no smoothing, 0.9 is the usual smoothed value. Fake labels always stay 0."
        )
    return value


def log_d(logits: torch.Tensor) -> torch.Tensor:
    """``log D(x) = log sigmoid(l) = -softplus(-l)``, elementwise and stable."""
    return -F.softplus(-logits)


def log_one_minus_d(logits: torch.Tensor) -> torch.Tensor:
    """``log (1 - D(x)) = log sigmoid(-l) = -softplus(l)``, elementwise and stable."""
    return -F.softplus(logits)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_label: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy of the discriminator, what D *minimises*::

        L_D = mean_i BCE(l_real_i, t) + mean_j BCE(l_fake_j, 0)
            = -mean[t log D(x) + (1 - t) log(1 - D(x))] - mean[log(1 - D(G(z)))]

    With ``t = real_label = 1`` this is minus the value V(D, G) of the minimax game
    (Goodfellow et al. 2014). ``real_label < 1`` (e.g. 0.9) is *one-sided* label
    smoothing: only the real targets move; fakes keep target 0.

    real_logits: ``(N,)``, fake_logits: ``(M,)`` -> a scalar.
    """
    real_logits = check_logits(real_logits, "real_logits")
    fake_logits = check_logits(fake_logits, "fake_logits")
    t = check_real_label(real_label)
    real_term = -(t * log_d(real_logits) + (1.0 - t) * log_one_minus_d(real_logits)).mean()
    fake_term = -log_one_minus_d(fake_logits).mean()
    return real_term + fake_term


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's cost in the original minimax game: ``mean log(1 - D(G(z)))``.

    G minimises it. It *saturates*: when D confidently rejects the fakes
    (D(G(z)) -> 0, early in training) its gradient ``-sigmoid(l)`` vanishes.
    fake_logits ``(N,)`` -> scalar (<= 0).
    """
    fake_logits = check_logits(fake_logits, "fake_logits")
    return log_one_minus_d(fake_logits).mean()


def non_saturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The modified ("non-saturating") generator cost: ``-mean log D(G(z))``.

    Same fixed point as the minimax cost, but its gradient ``-sigmoid(-l)`` is
    largest exactly when D rejects the fakes, so G learns early in training.
    fake_logits ``(N,)`` -> scalar (>= 0).
    """
    fake_logits = check_logits(fake_logits, "fake_logits")
    return -log_d(fake_logits).mean()


GENERATOR_LOSSES = {
    "non_saturating": non_saturating_generator_loss,
    "minimax": minimax_generator_loss,
}


def get_generator_loss(name: str):
    """The generator loss function called ``name`` ('non_saturating' or 'minimax')."""
    if name not in GENERATOR_LOSSES:
        raise CourseKitError(
            f"Unknown generator loss {name!r}: use 'non_saturating' (-log D(G(z)), the "
            "practical choice) or 'minimax' (log(1 - D(G(z))), the original game)."
        )
    return GENERATOR_LOSSES[name]
