"""Evaluating generative models: Inception Score, FID and precision/recall.

Three ideas of the lecture, each a function that reads like its formula:

- **Inception Score** (Salimans et al. 2016), from class logits ``(N, C)``::

      IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x)

  high when each sample is confidently classified (sharp ``p(y|x)``) *and*
  the classes are diverse (flat ``p(y)``). Between 1 and ``C``.
- **Fréchet distance** (Heusel et al. 2017), from features ``(N, d)``::

      FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

  the Fréchet (2-Wasserstein) distance between two Gaussians fitted to the
  features. With Inception-v3 pool features it is the FID; lower is better.
- **Precision and recall** (Kynkäänniemi et al. 2019), kernel-free, from
  features: precision is the fraction of generated samples that fall inside the
  k-NN balls of the real samples (quality); recall is the fraction of real
  samples inside the k-NN balls of the generated ones (coverage). **Density and
  coverage** (Naeem et al. 2020) are the variants that real outliers cannot fool.

Images go through a *feature network*, chosen by name:

- ``"mnist_cnn"``: the zoo's MNIST classifier. Features are its penultimate
  100-d activations, logits its 10 class scores. A *domain* score for MNIST
  (an IS of at most 10), always available offline.
- ``"inception_v3"``: torchvision's ImageNet Inception-v3 (2048-d pool
  features, 1000-class logits). Its weights are never downloaded here: they are
  loaded from torch's cache when present (see :func:`inception_v3_checkpoint`).
  These are torchvision's weights, not the TensorFlow FID-Inception weights that
  pytorch-fid and torch-fidelity use, so scores are comparable with each other
  but not with published FID/IS numbers.

Images may be a tensor ``(N, C, H, W)`` in [0, 1] or any iterable of batches
(a DataLoader, a generator of tensors, or of ``(images, labels)`` pairs); FID
streams over them, keeping only float64 sums and outer products.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from coursekit.checks import CourseKitError, check_images, check_int
from coursekit.models import Normalize
from coursekit.zoo import MissingWeightsError

__all__ = [
    "CORRUPTIONS", "FEATURE_NETS", "FeatureExtractor", "corrupt", "FeatureStatistics", "MissingWeightsError",
    "MnistCNNFeatures", "InceptionV3Features", "extract_features", "feature_extractor",
    "feature_statistics", "fid", "frechet_distance", "frechet_distance_from_statistics",
    "inception_score", "inception_score_of_images", "inception_v3_checkpoint",
    "precision_recall", "precision_recall_of_images", "density_coverage",
]

FEATURE_NETS = ("mnist_cnn", "inception_v3")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_SIZE = 299
TORCH_FIDELITY_SEED = 2020  # torch-fidelity's default shuffle seed for the Inception Score

Images = Union[torch.Tensor, Iterable]


# ====================================================================== checks

def _as_matrix(x, name: str) -> torch.Tensor:
    """A 2-D float64 tensor ``(N, d)`` of finite values (a copy when converted)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise CourseKitError(f"{name} must be a torch.Tensor of shape (N, d), got {type(x).__name__}.")
    if x.dim() != 2:
        hint = " One feature vector per row: use x.flatten(1)." if x.dim() > 2 else ""
        raise CourseKitError(f"{name} must have shape (N, d) (one row per sample), got {tuple(x.shape)}.{hint}")
    if x.is_complex() or x.dtype == torch.bool:
        raise CourseKitError(f"{name} must hold real numbers, got dtype {x.dtype}.")
    x = x.detach()
    if x.numel() and not all(math.isfinite(float(v)) for v in torch.aminmax(x)):  # NaN propagates
        raise CourseKitError(f"{name} contains NaN or infinite values (a diverged generator?).")
    if x.device.type == "mps":  # no float64 on Apple GPUs
        x = x.cpu()
    return x.to(torch.float64)


# ====================================================================== Fréchet distance

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


def _as_vector(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.dim() != 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise CourseKitError(f"{name} must be a 1-D tensor (a mean vector), got {shape}.")
    x = x.detach()
    if x.device.type == "mps":  # no float64 on Apple GPUs
        x = x.cpu()
    x = x.to(torch.float64)
    if not torch.isfinite(x).all():
        raise CourseKitError(f"{name} contains NaN or infinite values.")
    return x


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


# ====================================================================== Inception Score

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


# ====================================================================== precision / recall

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


# ====================================================================== corruptions (sanity checks for a metric)

CORRUPTIONS = ("noise", "blur")


def _gaussian_kernel_1d(sigma: float) -> torch.Tensor:
    """``exp(-t^2 / (2 sigma^2))`` on ``t = -r..r``, ``r = ceil(3 sigma)``, normalised to sum 1."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-t * t / (2 * sigma * sigma))
    return kernel / kernel.sum()


def corrupt(images: torch.Tensor, kind: str = "noise", level: float = 0.1, *,
            seed: int | None = 0) -> torch.Tensor:
    """A degraded copy of real images, to check that a metric notices (FID up, IS down).

    - ``"noise"``: ``clip_[0,1](x + level * eps)``, ``eps ~ N(0, I)`` (seeded with ``seed``);
    - ``"blur"``: a Gaussian blur ``x * g_sigma`` with ``sigma = level`` pixels (separable
      kernel of radius ``ceil(3 sigma)``, reflected borders).

    images: ``(N, C, H, W)`` in [0, 1]; ``level >= 0`` (0 returns an unchanged copy).
    Returns a new tensor of the same shape and dtype, in [0, 1].
    """
    check_images(images, "images")
    if kind not in CORRUPTIONS:
        raise CourseKitError(f"Unknown corruption {kind!r}: use one of {', '.join(CORRUPTIONS)}.")
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise CourseKitError(f"level must be a number >= 0, got {level!r}.") from None
    if not level >= 0 or math.isinf(level):
        raise CourseKitError(f"level must be a finite number >= 0, got {level!r}.")
    x = images.detach().clone()
    if level == 0 or x.numel() == 0:
        return x
    if kind == "noise":
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        noise = torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)
        return (x + level * noise).clamp(0, 1)
    kernel = _gaussian_kernel_1d(level).to(device=x.device, dtype=x.dtype)
    radius = (len(kernel) - 1) // 2
    n, c, h, w = x.shape
    if radius >= min(h, w):
        raise CourseKitError(
            f"A blur with sigma={level} needs images larger than {radius} pixels per side, got {h}x{w}."
        )
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w).clamp(0, 1)


# ====================================================================== feature networks

class FeatureExtractor(nn.Module):
    """Images in [0, 1] ``(N, C, H, W)`` -> ``.features(x)`` ``(N, feature_dim)`` and ``.logits(x)`` ``(N, num_classes)``.

    ``.logits_from_features(f)`` applies only the last layer, so one pass gives both.
    """

    name: str = "custom"
    feature_dim: int
    num_classes: int

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class MnistCNNFeatures(FeatureExtractor):
    """The zoo's MNIST CNN as a feature network: penultimate 100-d activations and 10 logits.

    ``(N, 1, 28, 28)`` in [0, 1] -> features ``(N, 100)`` (after the ReLU of the
    first dense layer), logits ``(N, 10)``.
    """

    name = "mnist_cnn"

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        head = list(model.classifier)
        self._body = nn.Sequential(*head[:-1])  # Flatten, Linear, ReLU: shares the parameters
        self._last = head[-1]
        self.feature_dim = self._last.in_features
        self.num_classes = self._last.out_features

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "images", channels=1, size=(28, 28))
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._prepare(x)
        return self._body(self.model.features(self.model.normalize(x)))

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """The last (dense) layer: features ``(N, 100)`` -> logits ``(N, 10)``."""
        return self._last(features)


class InceptionV3Features(FeatureExtractor):
    """torchvision's Inception-v3 as a feature network: 2048-d pool features and 1000 ImageNet logits.

    Inside: grayscale -> 3 channels, bilinear resize to 299x299 (as pytorch-fid),
    ImageNet normalisation, then torchvision's ``transform_input`` (which maps
    the normalised input to the [-1, 1] scaling the ported Google weights expect).
    """

    name = "inception_v3"
    feature_dim = 2048
    num_classes = 1000

    def __init__(self, net: nn.Module):
        super().__init__()
        net.transform_input = True
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.fc = net.fc
        net.fc = nn.Identity()  # net(x) now ends at the (flattened, dropout-free in eval) pool features
        self.net = net

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "images")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise CourseKitError(
                f"Inception-v3 takes grayscale (1 channel) or RGB (3 channels) images, got shape {tuple(x.shape)}."
            )
        if tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        return self.normalize(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.net.training:
            raise CourseKitError("Put the feature network in eval mode (.eval()) before extracting features.")
        return self.net(self._prepare(x))

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """The classifier layer: pool features ``(N, 2048)`` -> ImageNet logits ``(N, 1000)``."""
        return self.fc(features)


def inception_v3_checkpoint() -> Path:
    """Where torchvision's Inception-v3 ImageNet weights are expected.

    ``torch.hub.get_dir()/checkpoints/inception_v3_google-0cc3c7bd.pth`` (the file
    name of ``Inception_V3_Weights.IMAGENET1K_V1.url``); ``get_dir()`` is
    ``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``.
    """
    from torchvision.models import Inception_V3_Weights

    url = Inception_V3_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _load_inception_v3() -> InceptionV3Features:
    import torchvision
    from torchvision.models import Inception_V3_Weights

    checkpoint = inception_v3_checkpoint()
    if not checkpoint.is_file():
        raise MissingWeightsError(
            f"The Inception-v3 weights are not in torch's cache: {checkpoint} does not exist. "
            f"Download {Inception_V3_Weights.IMAGENET1K_V1.url} into {checkpoint.parent} (or set "
            "TORCH_HOME to a folder whose hub/checkpoints/ has it). coursekit never downloads "
            "weights itself; feature_net='mnist_cnn' works offline."
        )
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                          transform_input=True)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as error:  # corrupt or truncated download, wrong file
        raise CourseKitError(
            f"{checkpoint} is not a valid Inception-v3 state dict ({type(error).__name__}: "
            f"{str(error)[:200]}). Delete it and download it again."
        ) from None
    return InceptionV3Features(net)


def feature_extractor(name: str = "mnist_cnn", *, device: str | torch.device | None = None) -> FeatureExtractor:
    """A feature network by name, in eval mode: ``"mnist_cnn"`` or ``"inception_v3"``.

    The returned module has ``.features(x)`` and ``.logits(x)`` for images in [0, 1].
    ``"inception_v3"`` raises :class:`MissingWeightsError` when its weights are not
    in torch's cache (:func:`inception_v3_checkpoint`); nothing is downloaded.
    """
    if name == "mnist_cnn":
        from coursekit import zoo

        extractor: FeatureExtractor = MnistCNNFeatures(zoo.load("mnist_cnn"))
    elif name == "inception_v3":
        extractor = _load_inception_v3()
    else:
        raise CourseKitError(f"Unknown feature network {name!r}. Available: {', '.join(FEATURE_NETS)}.")
    for p in extractor.parameters():
        p.requires_grad_(False)
    if device is not None:
        extractor = extractor.to(device)
    return extractor.eval()


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _resolve_extractor(feature_net, device) -> tuple[FeatureExtractor, torch.device]:
    if isinstance(feature_net, str):
        device = torch.device(device) if device is not None else _default_device()
        return feature_extractor(feature_net, device=device), device
    if isinstance(feature_net, FeatureExtractor):
        param = next(feature_net.parameters(), None)
        own = param.device if param is not None else torch.device("cpu")
        if device is not None and torch.device(device) != own:
            raise CourseKitError(
                f"The feature network is on {own} but device={device!r} was asked for: move it "
                "first (extractor.to(device)) or leave device=None."
            )
        return feature_net, own
    raise CourseKitError(
        f"feature_net must be a name ({', '.join(FEATURE_NETS)}) or a FeatureExtractor, "
        f"got {type(feature_net).__name__}."
    )


@contextmanager
def _eval_mode(module: nn.Module):
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def _batches(images: Images, batch_size: int, *, desc: str, progress: bool) -> Iterator[torch.Tensor]:
    """Yield batches of images ``(B, C, H, W)`` in [0, 1] from a tensor or an iterable of batches."""
    batch_size = check_int(batch_size, "batch_size")
    if isinstance(images, torch.Tensor):
        check_images(images, "images")
        total = math.ceil(images.shape[0] / batch_size)
        source: Iterable = (images[i:i + batch_size] for i in range(0, images.shape[0], batch_size))
    elif isinstance(images, np.ndarray):
        raise CourseKitError("images must be a torch.Tensor (N, C, H, W) in [0, 1]: convert with torch.as_tensor(...).")
    elif isinstance(images, (str, bytes, dict)) or not hasattr(images, "__iter__"):
        raise CourseKitError(
            f"images must be a tensor (N, C, H, W) in [0, 1] or an iterable of such batches "
            f"(e.g. a DataLoader), got {type(images).__name__}."
        )
    else:
        try:
            total = len(images)  # type: ignore[arg-type]
        except TypeError:
            total = None
        source = images
    shape = None
    for batch in tqdm(source, total=total, desc=desc, disable=not progress, leave=False):
        if isinstance(batch, (tuple, list)):  # (images, labels) from a DataLoader
            if not batch:
                raise CourseKitError("Got an empty tuple as a batch; expected images or (images, labels).")
            batch = batch[0]
        check_images(batch, "a batch of images")
        if shape is None:
            shape = tuple(batch.shape[1:])
        elif tuple(batch.shape[1:]) != shape:
            raise CourseKitError(
                f"All batches must have the same image shape: first {shape}, then {tuple(batch.shape[1:])}."
            )
        if batch.shape[0]:
            yield batch


def feature_statistics(images: Images, feature_net: str | FeatureExtractor = "mnist_cnn",
                       batch_size: int = 256, progress: bool = True,
                       device: str | torch.device | None = None) -> FeatureStatistics:
    """Stream images through the feature network into a :class:`FeatureStatistics` (mean, covariance).

    Useful to compute the real data's statistics once and reuse them: ``fid`` accepts
    a ``FeatureStatistics`` in place of images.
    """
    extractor, device = _resolve_extractor(feature_net, device)
    stats = FeatureStatistics()
    with _eval_mode(extractor), torch.no_grad():
        for batch in _batches(images, batch_size, desc=f"{extractor.name} features", progress=progress):
            stats.update(extractor.features(batch.to(device)))
    if stats.n < 2:
        raise CourseKitError(f"FID needs at least 2 images per set, got {stats.n}.")
    return stats


def extract_features(images: Images, feature_net: str | FeatureExtractor = "mnist_cnn",
                     batch_size: int = 256, progress: bool = True,
                     device: str | torch.device | None = None, *, kind: str = "features") -> torch.Tensor:
    """All features ``(N, feature_dim)`` (or ``kind="logits"``: ``(N, num_classes)``), float32 on the CPU."""
    if kind not in ("features", "logits"):
        raise CourseKitError(f"kind must be 'features' or 'logits', got {kind!r}.")
    extractor, device = _resolve_extractor(feature_net, device)
    outputs = []
    with _eval_mode(extractor), torch.no_grad():
        for batch in _batches(images, batch_size, desc=f"{extractor.name} {kind}", progress=progress):
            outputs.append(getattr(extractor, kind)(batch.to(device)).float().cpu())
    if not outputs:
        raise CourseKitError("No images were given (an empty tensor or iterable).")
    return torch.cat(outputs)


def fid(images_a: Images | FeatureStatistics, images_b: Images | FeatureStatistics,
        feature_net: str | FeatureExtractor = "mnist_cnn", batch_size: int = 256,
        progress: bool = True, device: str | torch.device | None = None) -> float:
    """Fréchet distance between two image sets in a feature network's feature space.

    ``FID = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` over the
    features of ``images_a`` and ``images_b`` (tensors ``(N, C, H, W)`` in [0, 1],
    iterables of batches, or precomputed :class:`FeatureStatistics`).
    ``feature_net="inception_v3"`` gives the FID proper (2048-d pool features);
    the default ``"mnist_cnn"`` gives an MNIST-domain FID (100-d features).
    Features are streamed: only float64 sums and outer products are kept.
    """
    pending = [x for x in (images_a, images_b) if not isinstance(x, FeatureStatistics)]
    extractor = _resolve_extractor(feature_net, device)[0] if pending else None
    stats = [
        images if isinstance(images, FeatureStatistics)
        else feature_statistics(images, extractor, batch_size, progress)
        for images in (images_a, images_b)
    ]
    return stats[0].frechet_distance(stats[1])


def inception_score_of_images(images: Images, feature_net: str | FeatureExtractor = "mnist_cnn",
                              splits: int = 10, batch_size: int = 256, progress: bool = True,
                              device: str | torch.device | None = None, *, ddof: int = 0,
                              shuffle_seed: int | None = TORCH_FIDELITY_SEED) -> tuple[float, float]:
    """Inception Score ``(mean, std)`` of images, from the feature network's class logits.

    See :func:`inception_score` for the formula and the std convention. With
    ``"mnist_cnn"`` the score lies between 1 and 10 (10 classes); with
    ``"inception_v3"`` between 1 and 1000. Logits are kept (``N x C`` floats)
    and shuffled before splitting (``shuffle_seed``), so class-sorted sets are fine.
    """
    logits = extract_features(images, feature_net, batch_size, progress, device, kind="logits")
    return inception_score(logits, splits, ddof=ddof, shuffle_seed=shuffle_seed)


def precision_recall_of_images(real_images: Images, fake_images: Images,
                               feature_net: str | FeatureExtractor = "mnist_cnn", k: int = 3,
                               batch_size: int = 256, progress: bool = True,
                               device: str | torch.device | None = None) -> tuple[float, float]:
    """:func:`precision_recall` on the feature network's features of two image sets."""
    extractor, device = _resolve_extractor(feature_net, device)
    real = extract_features(real_images, extractor, batch_size, progress)
    fake = extract_features(fake_images, extractor, batch_size, progress)
    return precision_recall(real, fake, k)
