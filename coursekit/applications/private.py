"""Synthetic data instead of private data: a conditional GAN, TSTR accuracy and a memorisation check.

The idea: a hospital cannot share its images, but it can share a *generator*
trained on them, or images sampled from it. Two questions decide whether that
is useful and whether it is safe:

1. **Utility: train on synthetic, test on real (TSTR).** Train a classifier only
   on labelled samples ``(G(z, y), y)`` of a conditional GAN and measure its
   accuracy on *real* test images; compare with the same classifier trained on
   the real training set (TRTR, train-real-test-real)::

       TSTR = acc(f_synthetic, real test),   TRTR = acc(f_real, real test)

2. **Privacy: does the generator copy its training images?** For each image
   compute the Euclidean distance to its nearest neighbour in the real training
   set::

       d(q) = min_i || q - x_i ||_2            (pixels flattened, x_i in the training set)

   Synthetic samples should be about as far from the training images as fresh
   real images (the test set) are: ``d(synthetic)`` much smaller than
   ``d(test)`` means the GAN memorised (and leaks) training images.

Plain GANs give no formal guarantee. Differential privacy (DP-SGD on the
discriminator: clip each example's gradient, add Gaussian noise) gives one,
at a price in quality; see the lecture's notes.
"""
from __future__ import annotations

import torch
from torch import nn

from coursekit.checks import CourseKitError, check_int, check_images, check_labels


# ====================================================================== the generator

def train_conditional_gan(x: torch.Tensor, y: torch.Tensor, *, steps: int = 1000, batch_size: int = 64,
                          z_dim: int = 32, g_channels: int = 32, d_channels: int = 16,
                          lr_g: float = 1e-3, lr_d: float = 5e-4, label_smoothing: float = 0.9,
                          seed: int = 0, progress: bool = True):
    """Train a class-conditional DCGAN on labelled digits with :class:`coursekit.gan.GANTrainer`.

    x: ``(N, 1, 28, 28)`` in [0, 1]; y: ``(N,)`` digits 0-9. The models are
    :class:`coursekit.gan.ConditionalGenerator` / :class:`coursekit.gan.ConditionalDiscriminator`
    (small widths, so a few hundred steps run in well under a minute on a CPU);
    the weights are initialised under ``torch.manual_seed(seed)``.
    Returns ``(generator, history)`` with the generator in eval mode.
    """
    from coursekit.gan import ConditionalDiscriminator, ConditionalGenerator, GANTrainer

    check_images(x, channels=1, size=(28, 28))
    check_labels(y, len(x), "y", 10)
    steps = check_int(steps, "steps")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = ConditionalGenerator(z_dim, 10, check_int(g_channels, "g_channels"))
        discriminator = ConditionalDiscriminator(10, check_int(d_channels, "d_channels"))
    trainer = GANTrainer(generator, discriminator, lr_g=lr_g, lr_d=lr_d, label_smoothing=label_smoothing,
                         seed=seed, sample_every=max(1, steps // 5), num_samples=20)
    history = trainer.train((x, y), steps=steps, batch_size=batch_size, progress=progress)
    return generator, history


def synthetic_dataset(generator: nn.Module, n: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A labelled synthetic data set: ``n`` samples ``G(z, y)``, labels cycling 0, 1, ..., 9.

    Returns ``(x_synthetic (n, 1, 28, 28) in [0, 1], y_synthetic (n,) int64)``, the same for the same seed.
    """
    from coursekit.gan import generate, is_conditional

    n = check_int(n, "n")
    if not is_conditional(generator):
        raise CourseKitError("A labelled synthetic data set needs a conditional generator G(z, y).")
    labels = torch.arange(n) % generator.num_classes
    return generate(generator, n, labels=labels, seed=seed), labels


# ====================================================================== utility

def train_test_accuracy(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                        y_test: torch.Tensor, *, epochs: int = 3, seed: int = 0,
                        progress: bool = False) -> float:
    """Train a fresh :class:`coursekit.models.MnistCNN` on ``(x_train, y_train)``; its accuracy on ``(x_test, y_test)``.

    The same architecture, seed and schedule (:func:`coursekit.training.train_classifier`)
    for every training set, so that only the *data* differs between two calls.
    """
    from coursekit.models import MnistCNN
    from coursekit.training import accuracy, train_classifier

    check_images(x_train, "x_train", channels=1, size=(28, 28))
    check_labels(y_train, len(x_train), "y_train", 10)
    check_images(x_test, "x_test", channels=1, size=(28, 28))
    check_labels(y_test, len(x_test), "y_test", 10)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MnistCNN()
        train_classifier(model, x_train, y_train, epochs=check_int(epochs, "epochs"), seed=seed,
                         progress=progress)
    return accuracy(model, x_test, y_test)


def tstr_report(real_train: tuple[torch.Tensor, torch.Tensor], synthetic: tuple[torch.Tensor, torch.Tensor],
                real_test: tuple[torch.Tensor, torch.Tensor], *, epochs: int = 3, seed: int = 0,
                progress: bool = False) -> dict[str, float]:
    """Train-real-test-real vs train-synthetic-test-real accuracy (each argument a pair ``(x, y)``).

    Returns ``{"train_real_test_real", "train_synthetic_test_real", "ratio"}``;
    ``ratio = TSTR / TRTR`` (1: the synthetic data is as useful as the real data).
    Use training sets of the same size for a fair comparison.
    """
    trtr = train_test_accuracy(*real_train, *real_test, epochs=epochs, seed=seed, progress=progress)
    tstr = train_test_accuracy(*synthetic, *real_test, epochs=epochs, seed=seed, progress=progress)
    return {"train_real_test_real": trtr, "train_synthetic_test_real": tstr, "ratio": tstr / max(trtr, 1e-12)}


# ====================================================================== privacy

@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, references: torch.Tensor, *,
                       batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image its nearest reference image: ``d_j = min_i ||q_j - r_i||_2``.

    queries ``(M, C, H, W)``, references ``(N, C, H, W)`` (pixels flattened).
    Returns ``(distances (M,), indices (M,))``: the distance and the index of the nearest reference.
    """
    check_images(queries, "queries")
    check_images(references, "references")
    if queries.shape[1:] != references.shape[1:]:
        raise CourseKitError(
            f"queries and references must be images of the same size, got {tuple(queries.shape[1:])} "
            f"and {tuple(references.shape[1:])}.")
    if len(references) == 0:
        raise CourseKitError("references is empty: there is no neighbour to find.")
    batch_size = check_int(batch_size, "batch_size")
    r = references.flatten(1).double()
    r_sq = (r * r).sum(1)
    dists, idxs = [], []
    for i in range(0, len(queries), batch_size):
        q = queries[i:i + batch_size].flatten(1).double()
        # ||q - r||^2 = ||q||^2 - 2 q.r + ||r||^2, in float64 so that exact copies give 0
        sq = ((q * q).sum(1, keepdim=True) - 2 * q @ r.T + r_sq).clamp_min(0)
        d, j = sq.min(1)
        dists.append(d.sqrt().float())
        idxs.append(j)
    if not dists:
        return torch.zeros(0), torch.zeros(0, dtype=torch.long)
    return torch.cat(dists), torch.cat(idxs)


def nearest_neighbour_distances(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """``(M,)``: the Euclidean distance from each query image to its nearest reference image."""
    return nearest_neighbours(queries, references)[0]


def memorisation_report(synthetic: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> dict:
    """Nearest-training-neighbour distances of synthetic and of held-out real images.

    Returns ``{"synthetic_to_train": (M,), "test_to_train": (K,), "median_synthetic",
    "median_test", "ratio": median_synthetic / median_test, "copies": fraction of synthetic
    samples closer to a training image than the closest 1 % of test images are}``.
    A ratio well below 1, or many "copies", means the generator reproduces training images.
    """
    syn = nearest_neighbour_distances(synthetic, train)
    real = nearest_neighbour_distances(test, train)
    threshold = torch.quantile(real, 0.01)
    med_syn, med_real = float(syn.median()), float(real.median())
    return {"synthetic_to_train": syn, "test_to_train": real, "median_synthetic": med_syn,
            "median_test": med_real, "ratio": med_syn / max(med_real, 1e-12),
            "copies": float((syn < threshold).float().mean())}
