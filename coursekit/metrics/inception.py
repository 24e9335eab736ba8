"""The Inception Score (Salimans et al. 2016), from class logits ``(N, C)``::

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x)

high when each sample is confidently classified (sharp ``p(y|x)``) *and* the classes are
diverse (flat ``p(y)``). Between 1 and ``C``.
"""
from __future__ import annotations

import numpy as np
import torch

from coursekit.checks import CourseKitError, check_int
from coursekit.metrics._inputs import _as_matrix

TORCH_FIDELITY_SEED = 2020  # torch-fidelity's default shuffle seed for the Inception Score



def inception_score(logits, splits: int = 10, *, ddof: int = 0,
                    shuffle_seed: int | None = TORCH_FIDELITY_SEED) -> tuple[float, float]:
    """Inception Score from class logits: mean and std over ``splits`` groups.

    The rows are shuffled (``shuffle_seed``), then for each split (rows
    ``i*N//splits`` to ``(i+1)*N//splits``, as in Salimans et al.'s code and
    torch-fidelity)::

        p(y|x) = softmax(logits),  p(y) = mean_x p(y|x),
        IS_split = exp( mean_x sum_y p(y|x) (log p(y|x) - log p(y)) )

    Returns ``(mean, std)`` of the per-split scores, computed in float64.

    logits: ``(N, C)`` with ``N >= splits``.
    ``ddof``: the std convention. 0 (default) is the population std
    ``np.std`` used by Salimans et al.'s original code and torch-fidelity;
    torchmetrics' ``InceptionScore`` uses ``torch.std``, i.e. ``ddof=1`` (and it
    cuts the splits with ``chunk``, which equals ours when ``splits`` divides N).
    ``shuffle_seed``: the rows are first permuted by
    ``np.random.RandomState(shuffle_seed).permutation(N)``. The default, 2020,
    is torch-fidelity's, so by default the result equals torch-fidelity's
    ``isc_features_to_metric(logits, splits)``. ``None`` keeps the order (as
    Salimans et al.'s code and torch-fidelity's ``shuffle=False``). Keep the
    shuffle when samples may be sorted by class (a class-conditional generator,
    a sorted dataset): otherwise each split sees few classes, p(y) is sharp and
    the score drops towards 1.
    torchmetrics shuffles with ``torch.randperm`` from the global generator, so it
    matches only when given the same permutation.
    """
    x = _as_matrix(logits, "logits")
    n, c = x.shape
    splits = check_int(splits, "splits")
    if n < splits:
        raise CourseKitError(f"Need at least one sample per split: got N={n} logits for splits={splits}.")
    if ddof not in (0, 1):
        raise CourseKitError(f"ddof must be 0 (population std) or 1 (sample std), got {ddof!r}.")
    if ddof == 1 and splits < 2:
        raise CourseKitError("A sample std (ddof=1) needs splits >= 2.")
    if shuffle_seed is not None:
        order = np.random.RandomState(int(shuffle_seed)).permutation(n)
        x = x[torch.from_numpy(order).to(x.device)]
    log_p = torch.log_softmax(x, dim=1)                  # log p(y|x)
    p = log_p.exp()                                      # p(y|x)
    neg_entropy = (p * log_p).sum(1)                     # sum_y p(y|x) log p(y|x)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_y = p[lo:hi].mean(0)                           # p(y) over this split
        # a class no sample gives any probability contributes 0 * log 0 = 0
        log_p_y = torch.where(p_y > 0, p_y.log(), torch.zeros_like(p_y))
        kl = neg_entropy[lo:hi] - p[lo:hi] @ log_p_y     # KL(p(y|x) || p(y)) per sample
        scores.append(float(kl.mean().exp()))
    values = np.array(scores)
    return float(values.mean()), float(values.std(ddof=ddof))
