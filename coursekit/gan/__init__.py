"""Generative adversarial networks: the game, the losses, the training tricks.

- :mod:`coursekit.gan.losses`: ``discriminator_loss`` (with one-sided label
  smoothing), ``minimax_generator_loss``, ``non_saturating_generator_loss``, all
  on logits and numerically stable;
- :mod:`coursekit.gan.theory`: ``optimal_discriminator``, ``value_at_optimal_discriminator``
  (C(G) = -log 4 + 2 JSD) and ``jensen_shannon_divergence``, for densities on a grid;
- :mod:`coursekit.gan.vbn`: ``VirtualBatchNorm``;
- :mod:`coursekit.gan.models`: ``DCGANGenerator`` / ``DCGANDiscriminator`` for
  MNIST, ``ConditionalGenerator`` / ``ConditionalDiscriminator``,
  ``MLPGenerator`` / ``MLPDiscriminator`` for 2-D toys, ``generate``;
- :mod:`coursekit.gan.training`: ``discriminator_step``, ``generator_step``
  (one step each, as in Goodfellow et al. 2014) and ``GANTrainer``
  (k D steps, separate learning rates, label smoothing, seeded, checkpoints);
- ``energy_distance``, ``mode_coverage``, ``digit_quality``: checks on samples, from
  :mod:`coursekit.metrics.samples` (with the other ways to evaluate a generator).

How the zoo's generators are trained is on the build side: :mod:`coursekit.recipes.gan`.
"""
from coursekit.gan.losses import (
    GENERATOR_LOSSES,
    check_logits,
    check_real_label,
    discriminator_loss,
    get_generator_loss,
    log_d,
    log_one_minus_d,
    minimax_generator_loss,
    non_saturating_generator_loss,
)
from coursekit.gan.models import (
    ConditionalDiscriminator,
    ConditionalGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    check_noise,
    generate,
    is_conditional,
)
from coursekit.gan.theory import jensen_shannon_divergence, optimal_discriminator, value_at_optimal_discriminator
from coursekit.gan.training import GANTrainer, discriminator_step, generator_step
from coursekit.gan.vbn import VirtualBatchNorm
from coursekit.metrics.samples import ModeCoverage, digit_quality, energy_distance, mode_coverage

__all__ = [
    "GENERATOR_LOSSES", "check_logits", "check_real_label", "discriminator_loss",
    "get_generator_loss", "log_d", "log_one_minus_d", "minimax_generator_loss",
    "non_saturating_generator_loss", "ModeCoverage", "digit_quality", "energy_distance",
    "mode_coverage", "ConditionalDiscriminator", "ConditionalGenerator", "DCGANDiscriminator",
    "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "check_noise", "generate",
    "is_conditional", "GANTrainer", "discriminator_step", "generator_step", "VirtualBatchNorm",
    "jensen_shannon_divergence", "optimal_discriminator", "value_at_optimal_discriminator",
]
