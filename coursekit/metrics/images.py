"""From images to scores: stream images (a tensor or an iterable of batches) through a feature network.

Images may be a tensor ``(N, C, H, W)`` in [0, 1] or any iterable of batches (a DataLoader, a
generator of tensors, or of ``(images, labels)`` pairs); FID streams over them, keeping only
float64 sums and outer products.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from coursekit import runtime
from coursekit.checks import CourseKitError, check_images, check_int
from coursekit.metrics.features import FEATURE_NETS, FeatureExtractor, feature_extractor
from coursekit.metrics.frechet import FeatureStatistics
from coursekit.metrics.inception import TORCH_FIDELITY_SEED, inception_score
from coursekit.metrics.neighbours import precision_recall

Images = Union[torch.Tensor, Iterable]


def _resolve_extractor(feature_net, device) -> tuple[FeatureExtractor, torch.device]:
    """The feature network and its device: a name is loaded on ``device``, default ``runtime.device()``."""
    if isinstance(feature_net, str):
        device = torch.device(device) if device is not None else runtime.device()
        return feature_extractor(feature_net, device=device), device
    if isinstance(feature_net, FeatureExtractor):
        own = runtime.model_device(feature_net)
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
    with runtime.evaluating(extractor), torch.no_grad():
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
    with runtime.evaluating(extractor), torch.no_grad():
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
