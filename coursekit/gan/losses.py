"""The GAN game as losses on discriminator logits.

The discriminator outputs a logit ``l``; its probability that the input is real
is ``D = sigmoid(l)``. Everything is written with two numerically stable pieces::

    log D       = log sigmoid(l)     = -softplus(-l)
    log (1 - D) = log sigmoid(-l)    = -softplus(l)

(``softplus(t) = log(1 + e^t)`` never overflows in torch), so no loss ever takes
``log`` of a probability that rounded to 0 or 1. All losses average over the batch.

The Wasserstein GAN with gradient penalty (WGAN-GP, Gulrajani et al. 2017) is the modern answer
to "modify the cost function": a *critic* with unbounded scores instead of a classifier
(:func:`wgan_critic_loss`, :func:`wgan_generator_loss`), kept 1-Lipschitz by the
:func:`gradient_penalty`.
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


def get_generator_loss(name: str):
    """The generator loss function called ``name``: 'non_saturating', 'minimax' or 'wasserstein'."""
    if name not in GENERATOR_LOSSES:
        raise CourseKitError(
            f"Unknown generator loss {name!r}: use 'non_saturating' (-log D(G(z)), the "
            "practical choice), 'minimax' (log(1 - D(G(z))), the original game) or 'wasserstein' "
            "(-C(G(z)) against a critic trained with the gradient penalty: WGAN-GP)."
        )
    return GENERATOR_LOSSES[name]


# ---------------------------------------------------------------- WGAN-GP (Gulrajani et al. 2017)

def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The Wasserstein critic's loss (what the critic *minimises*, without the penalty)::

        L_C = mean_j C(G(z_j)) - mean_i C(x_i)

    A critic outputs an unbounded *score* ``C(x)`` (no sigmoid, no log). Minus this loss,
    ``mean C(x) - mean C(G(z))``, estimates the Wasserstein-1 distance between the data and
    the generator when ``C`` is 1-Lipschitz (Kantorovich-Rubinstein duality); the
    :func:`gradient_penalty` keeps it close to that.

    real_scores ``(N,)``, fake_scores ``(M,)`` -> scalar.
    """
    real_scores = check_logits(real_scores, "real_scores")
    fake_scores = check_logits(fake_scores, "fake_scores")
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The Wasserstein generator's cost: ``-mean_j C(G(z_j))`` (G raises the critic's scores).

    Its gradient with respect to a score is ``-1/M`` whatever the score: it never saturates.
    fake_scores ``(M,)`` -> scalar.
    """
    fake_scores = check_logits(fake_scores, "fake_scores")
    return -fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *, alpha: torch.Tensor | None = None,
                     generator: torch.Generator | None = None,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP's penalty: the critic's gradient norm on random interpolates, pushed towards 1::

        x_hat_i = alpha_i x_i + (1 - alpha_i) x~_i,      alpha_i ~ U[0, 1]
        GP      = mean_i ( || grad_x C(x_hat_i) ||_2 - 1 )^2

    (the norm over all of an example's values). ``real`` and ``fake`` ``(N, ...)`` of the same
    shape; ``alpha`` ``(N,)`` fixes the mixing weights (else drawn from ``generator``); ``labels``
    go to a conditional critic ``C(x, y)``. The gradient is taken with ``create_graph=True``,
    so the penalty trains the critic (a second derivative through C). Returns a scalar.
    """
    if not isinstance(real, torch.Tensor) or not isinstance(fake, torch.Tensor) or real.shape != fake.shape:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (real, fake)]
        raise CourseKitError(f"real and fake must be tensors of the same shape (N, ...), got {shapes[0]} and "
                             f"{shapes[1]}: the penalty interpolates between pairs of them.")
    n = real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, generator=generator).to(real.device)
    if not isinstance(alpha, torch.Tensor) or alpha.shape != (n,):
        raise CourseKitError(f"alpha must be a tensor of shape ({n},): one mixing weight per example.")
    if ((alpha < 0) | (alpha > 1)).any():
        raise CourseKitError("alpha must lie in [0, 1]: the interpolates lie on the segments between real and fake.")
    weight = alpha.to(real.dtype).view(n, *([1] * (real.dim() - 1)))
    train = torch.is_grad_enabled()   # under torch.no_grad() the penalty is only evaluated, not trained
    with torch.enable_grad():         # ... but it IS a gradient, so autograd must run either way
        x_hat = (weight * real.detach() + (1 - weight) * fake.detach()).requires_grad_(True)
        scores = critic(x_hat) if labels is None else critic(x_hat, labels)
        scores = check_logits(scores, "the critic's scores")
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=train)
    # sqrt(. + tiny): the norm's derivative stays finite where a gradient is exactly 0.
    norms = torch.sqrt(grad.flatten(1).pow(2).sum(1) + 1e-12)
    return ((norms - 1) ** 2).mean()


#: The generator costs by name (``GANTrainer(generator_loss=...)``); 'wasserstein' switches the
#: discriminator to a critic trained with :func:`wgan_critic_loss` + the :func:`gradient_penalty`.
GENERATOR_LOSSES = {
    "non_saturating": non_saturating_generator_loss,
    "minimax": minimax_generator_loss,
    "wasserstein": wgan_generator_loss,
}
