"""The Fréchet distance (Heusel et al. 2017) between Gaussians fitted to two feature sets::

    FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

the Fréchet (2-Wasserstein) distance between two Gaussians fitted to the features. With
Inception-v3 pool features it is the FID; lower is better. :class:`FeatureStatistics` keeps a
running mean and covariance so that images can stream through a feature network.
"""
from __future__ import annotations

import numpy as np
import torch

from coursekit.checks import CourseKitError
from coursekit.metrics._inputs import _as_matrix, _as_vector


def _mean_and_covariance(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(d,)`` and sample covariance ``(d, d)`` (ddof=1, as ``np.cov(x, rowvar=False)``)."""
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)


def _trace_sqrt_product(sigma_a: torch.Tensor, sigma_b: torch.Tensor) -> torch.Tensor:
    """``Tr((S_a S_b)^{1/2})`` for symmetric PSD ``S_a, S_b``, with symmetric eigenvalue solvers only.

    Write ``S_a = F F^T``. The nonzero eigenvalues of ``S_a S_b = F F^T S_b`` are
    those of the symmetric PSD matrix ``F^T S_b F``, so ``Tr((S_a S_b)^{1/2})`` is
    the sum of the square roots of its eigenvalues (an ``eigvalsh``: no complex
    numbers, no epsilon). ``F`` is a Cholesky factor (fast) of ``S_a`` or, by
    symmetry of the trace, of ``S_b``, after dropping the features that are
    constant in that set (zero rows and columns change no eigenvalue but break
    Cholesky). When neither is positive definite (fewer samples than dimensions),
    ``F = V diag(sqrt(w))`` from ``S_a = V diag(w) V^T``. Round-off negatives are
    clipped to 0.
    """
    for s, t in ((sigma_a, sigma_b), (sigma_b, sigma_a)):
        keep = s.diagonal() > 0
        factor, info = torch.linalg.cholesky_ex(s[keep][:, keep])
        if int(info) == 0:
            t = t[keep][:, keep]
            break
    else:  # singular covariances: an eigendecomposition (slower, always works)
        w, v = torch.linalg.eigh(sigma_a)
        factor, t = v * w.clamp(min=0).sqrt(), sigma_b
    middle = factor.T @ t @ factor
    middle = (middle + middle.T) / 2
    return torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()


def _trace_sqrt_product_scipy(sigma_a: np.ndarray, sigma_b: np.ndarray, eps: float = 1e-6) -> float:
    """pytorch-fid's recipe: ``scipy.linalg.sqrtm(S_a S_b)``, adding ``eps I`` when singular."""
    from scipy import linalg

    covmean = linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma_a.shape[0]) * eps
        covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise CourseKitError(
                f"sqrtm(S_a S_b) has a large imaginary part ({np.abs(covmean.imag).max():.3g}): "
                "the covariances are badly conditioned. Use method='eigh'."
            )
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance_from_statistics(mu_a, sigma_a, mu_b, sigma_b, *, method: str = "eigh") -> float:
    """Fréchet distance between ``N(mu_a, S_a)`` and ``N(mu_b, S_b)``.

    ``FD = ||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2})``, in float64.

    mu: ``(d,)``; sigma: ``(d, d)`` symmetric positive semi-definite.
    ``method``: ``"eigh"`` (default: the eigenvalues of the symmetric matrix
    ``F^T S_b F`` with ``S_a = F F^T``, see ``_trace_sqrt_product``; robust for
    singular covariances and the fastest) or ``"sqrtm"`` (pytorch-fid's
    ``scipy.linalg.sqrtm(S_a S_b)`` with its ``1e-6 I`` fallback). Both agree
    with pytorch-fid, torch-fidelity and torchmetrics to about 1e-8 relative.
    The result is clipped at 0 (it can only be negative by round-off).
    """
    mu_a, mu_b = (_as_vector(m, name) for m, name in ((mu_a, "mu_a"), (mu_b, "mu_b")))
    sigma_a, sigma_b = (_as_matrix(s, name) for s, name in ((sigma_a, "sigma_a"), (sigma_b, "sigma_b")))
    d = mu_a.shape[0]
    if mu_b.shape[0] != d or sigma_a.shape != (d, d) or sigma_b.shape != (d, d):
        raise CourseKitError(
            "The two Gaussians must live in the same feature space: got means of length "
            f"{mu_a.shape[0]} and {mu_b.shape[0]}, covariances {tuple(sigma_a.shape)} and "
            f"{tuple(sigma_b.shape)}. Use the same feature network for both sets."
        )
    sigma_b = sigma_b.to(sigma_a.device)
    diff = mu_a - mu_b.to(mu_a.device)
    if method == "eigh":
        trace_sqrt = float(_trace_sqrt_product(sigma_a, sigma_b))
    elif method == "sqrtm":
        trace_sqrt = _trace_sqrt_product_scipy(sigma_a.cpu().numpy(), sigma_b.cpu().numpy())
    else:
        raise CourseKitError(f"Unknown method {method!r}: use 'eigh' or 'sqrtm'.")
    distance = float(diff @ diff) + float(sigma_a.trace()) + float(sigma_b.trace()) - 2 * trace_sqrt
    return max(distance, 0.0)


def frechet_distance(features_a, features_b, *, method: str = "eigh") -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID on Inception features).

    ``FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``

    features_a: ``(N_a, d)``, features_b: ``(N_b, d)``, N >= 2 each. Means and
    *sample* covariances (divide by N - 1, as pytorch-fid's ``np.cov``) are
    computed in float64. Symmetric in its arguments; 0 for a set with itself.
    """
    a = _as_matrix(features_a, "features_a")
    b = _as_matrix(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise CourseKitError(
            f"features_a and features_b must have the same dimension d, got {a.shape[1]} and "
            f"{b.shape[1]}. Extract both with the same feature network."
        )
    for x, name in ((a, "features_a"), (b, "features_b")):
        if x.shape[0] < 2:
            raise CourseKitError(
                f"{name} has {x.shape[0]} sample(s): a covariance needs at least 2 "
                "(and FID is only reliable with thousands)."
            )
    mu_a, sigma_a = _mean_and_covariance(a)
    mu_b, sigma_b = _mean_and_covariance(b.to(a.device))
    return frechet_distance_from_statistics(mu_a, sigma_a, mu_b, sigma_b, method=method)


class FeatureStatistics:
    """Running mean and covariance of feature vectors, accumulated batch by batch.

    Keeps ``n``, ``sum(x - c)`` and ``sum((x - c)(x - c)^T)`` in float64, where the
    shift ``c`` is the first batch's mean (this keeps the one-pass formula
    ``S = (sum_outer - n m m^T) / (n - 1)`` accurate). Memory: ``d x d`` numbers,
    however many samples stream through.
    """

    def __init__(self) -> None:
        self.n = 0
        self._shift: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None
        self._sum_outer: torch.Tensor | None = None

    @property
    def dim(self) -> int | None:
        return None if self._shift is None else self._shift.shape[0]

    def update(self, features) -> "FeatureStatistics":
        """Add a batch ``(B, d)`` of feature vectors."""
        x = _as_matrix(features, "features")
        if self._shift is None:
            self._shift = x.mean(0)
            d = x.shape[1]
            self._sum = torch.zeros(d, dtype=torch.float64, device=x.device)
            self._sum_outer = torch.zeros(d, d, dtype=torch.float64, device=x.device)
        elif x.shape[1] != self.dim:
            raise CourseKitError(f"Expected features of dimension {self.dim}, got {x.shape[1]}.")
        x = x.to(self._shift.device) - self._shift
        self._sum += x.sum(0)
        self._sum_outer += x.T @ x
        self.n += x.shape[0]
        return self

    @classmethod
    def from_features(cls, features) -> "FeatureStatistics":
        return cls().update(features)

    def _require(self, minimum: int) -> None:
        if self.n < minimum:
            raise CourseKitError(
                f"Only {self.n} sample(s) seen: a mean needs 1 and a covariance at least 2."
            )

    @property
    def mean(self) -> torch.Tensor:
        """``mu = (1/n) sum x``, shape ``(d,)``, float64."""
        self._require(1)
        return self._shift + self._sum / self.n

    @property
    def covariance(self) -> torch.Tensor:
        """``S = (1/(n-1)) sum (x - mu)(x - mu)^T``, shape ``(d, d)``, float64."""
        self._require(2)
        m = self._sum / self.n
        return (self._sum_outer - self.n * torch.outer(m, m)) / (self.n - 1)

    def frechet_distance(self, other: "FeatureStatistics", *, method: str = "eigh") -> float:
        return frechet_distance_from_statistics(self.mean, self.covariance, other.mean,
                                                other.covariance, method=method)

    def __repr__(self) -> str:
        return f"FeatureStatistics(n={self.n}, dim={self.dim})"
