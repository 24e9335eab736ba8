"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020).

Kernel-free, from features: precision is the fraction of generated samples that fall inside the
k-NN balls of the real samples (quality); recall is the fraction of real samples inside the k-NN
balls of the generated ones (coverage). Density and coverage are the variants that real outliers
cannot fool.
"""
from __future__ import annotations

import torch

from coursekit.checks import CourseKitError, check_int
from coursekit.metrics._inputs import _as_matrix


def _pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b)


def _kth_neighbour_radii(x: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest *other* row (the self-distance 0 is skipped)."""
    radii = [_pairwise_distances(block, x).kthvalue(k + 1, dim=1).values for block in x.split(batch_size)]
    return torch.cat(radii)


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
                     batch_size: int) -> torch.Tensor:
    """For each point: is ``||point - centre_j|| <= radius_j`` for some j?"""
    return torch.cat([(_pairwise_distances(block, centres) <= radii).any(dim=1)
                      for block in points.split(batch_size)])


def _feature_pair(real_features, fake_features) -> tuple[torch.Tensor, torch.Tensor]:
    """Two ``(N, d)`` / ``(M, d)`` feature matrices of the same ``d``, on the real features' device."""
    real = _as_matrix(real_features, "real_features")
    fake = _as_matrix(fake_features, "fake_features").to(real.device)
    if real.shape[1] != fake.shape[1]:
        raise CourseKitError(
            f"real_features and fake_features must have the same dimension d, got "
            f"{real.shape[1]} and {fake.shape[1]}."
        )
    return real, fake


def precision_recall(real_features, fake_features, k: int = 3, *,
                     batch_size: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), kernel-free.

    Each set approximates its manifold by the union of balls around its samples,
    of radius the distance to the sample's k-th nearest neighbour in the same set::

        precision = (1/M) sum_j [ fake_j in manifold(real) ]   (are fakes realistic?)
        recall    = (1/N) sum_i [ real_i in manifold(fake) ]   (are all reals covered?)

    real_features: ``(N, d)``, fake_features: ``(M, d)``, ``k < min(N, M)``.
    Distances are computed in float64 in blocks of ``batch_size`` rows.
    """
    real, fake = _feature_pair(real_features, fake_features)
    k = check_int(k, "k")
    batch_size = check_int(batch_size, "batch_size")
    if k >= min(real.shape[0], fake.shape[0]):
        raise CourseKitError(
            f"k={k} needs more than k samples in each set, got {real.shape[0]} real and "
            f"{fake.shape[0]} fake."
        )
    real_radii = _kth_neighbour_radii(real, k, batch_size)
    fake_radii = _kth_neighbour_radii(fake, k, batch_size)
    precision = _inside_any_ball(fake, real, real_radii, batch_size).double().mean()
    recall = _inside_any_ball(real, fake, fake_radii, batch_size).double().mean()
    return float(precision), float(recall)


def density_coverage(real_features, fake_features, k: int = 5, *,
                     batch_size: int = 1024) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020): precision and recall made robust to outliers.

    With ``B(r_i)`` the ball around real sample ``i`` reaching its k-th nearest real neighbour::

        density  = 1/(k M) sum_j sum_i [ fake_j in B(r_i) ]     (about 1 when fakes are like reals)
        coverage = (1/N) sum_i [ some fake_j in B(r_i) ]         (share of real balls that are hit)

    Precision counts a fake once if *any* real ball holds it, so one real outlier
    with a huge ball can make a whole cluster of bad samples "realistic"; density
    counts how many balls hold it (an outlier's ball adds only 1/k). Coverage uses
    only the real balls, so generated outliers cannot inflate it the way they
    inflate recall. Density is unbounded above (samples crowded into dense
    regions), coverage lies in [0, 1].

    real_features: ``(N, d)``, fake_features: ``(M, d)``, ``k < N``; float64 distances in blocks.
    """
    real, fake = _feature_pair(real_features, fake_features)
    k = check_int(k, "k")
    batch_size = check_int(batch_size, "batch_size")
    if k >= real.shape[0]:
        raise CourseKitError(f"k={k} needs more than k real samples, got {real.shape[0]}.")
    if fake.shape[0] < 1:
        raise CourseKitError("fake_features is empty: give at least one generated sample.")
    radii = _kth_neighbour_radii(real, k, batch_size)
    hits = torch.zeros((), dtype=torch.float64, device=real.device)
    covered = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    for block in fake.split(batch_size):
        inside = _pairwise_distances(block, real) <= radii      # (B, N): fake j inside real ball i
        hits += inside.sum()
        covered |= inside.any(dim=0)
    density = hits / (k * fake.shape[0])
    return float(density), float(covered.double().mean())
