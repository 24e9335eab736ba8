"""Datasets, offline first.

MNIST and Fashion-MNIST are returned as ``(images, labels)``: float32
``(N, 1, 28, 28)`` in [0, 1] and int64 labels. Each split is looked up in order:

1. a local mirror named by ``$COURSEKIT_DATA`` (torchvision's layout:
   ``$COURSEKIT_DATA/MNIST/raw/train-images-idx3-ubyte.gz`` ...);
2. the user cache (``$COURSEKIT_CACHE``, default ``~/.cache/coursekit``);
3. a torchvision download into that cache, when online (skipped when
   ``COURSEKIT_OFFLINE=1``);
4. a small embedded default shipped with the package: 5,000 real MNIST digits
   (4,000 "train" / 1,000 "test", disjoint, balanced), so every notebook runs
   offline.

Also: a real cat photo for ImageNet demos and 2-D toy distributions for GANs.
"""
from __future__ import annotations

import gzip
import math
import os
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from coursekit.checks import CourseKitError


class DataUnavailableError(CourseKitError, FileNotFoundError):
    """No source could provide the requested data."""


# torchvision's folder and file names, per dataset.
_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_EMBEDDED = {"mnist": "mnist_embedded.npz"}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True)
class Source:
    """Where a split comes from: ``kind`` is mirror, cache, download or embedded."""

    kind: str
    location: str

    def __str__(self) -> str:
        return f"{self.kind} ({self.location})"


def cache_dir() -> Path:
    """The user cache: ``$COURSEKIT_CACHE`` or ``~/.cache/coursekit``."""
    env = os.environ.get("COURSEKIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "coursekit"


def _check_name(dataset: str, split: str) -> None:
    if dataset not in _FOLDERS:
        raise CourseKitError(
            f"Unknown dataset {dataset!r}. Available: {', '.join(sorted(_FOLDERS))}."
        )
    if split not in _FILES:
        raise CourseKitError(f"Unknown split {split!r}: use 'train' or 'test'.")


def _raw_files(root: Path, dataset: str, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) idx files of a split under ``root`` in torchvision's layout."""
    raw = root / _FOLDERS[dataset] / "raw"
    found = []
    for stem in _FILES[split]:
        for candidate in (raw / stem, raw / f"{stem}.gz"):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            return None
    return found[0], found[1]


def _read_idx(path: Path) -> np.ndarray:
    """Read an idx file (gzipped or not): the format MNIST is distributed in."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CourseKitError(f"{path} is not an unsigned-byte idx file (corrupt download?).")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(shape):
        raise CourseKitError(f"{path} is truncated: expected {math.prod(shape)} values, found {body.size}.")
    return body.reshape(shape)


def _to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.array(images)).float().div_(255.0).unsqueeze(1)
    y = torch.from_numpy(np.array(labels, dtype=np.int64))
    return x, y


def _embedded_path(dataset: str) -> Path | None:
    name = _EMBEDDED.get(dataset)
    if name is None:
        return None
    path = Path(str(resources.files("coursekit") / "assets" / name))
    return path if path.is_file() else None


def _try_download(dataset: str, split: str) -> bool:
    """Download a split with torchvision into the cache; False when offline."""
    if os.environ.get("COURSEKIT_OFFLINE", "").strip() not in ("", "0"):
        return False
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[dataset]
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        cls(root=str(cache_dir()), train=(split == "train"), download=True)
        return _raw_files(cache_dir(), dataset, split) is not None
    except Exception:  # no network, a mirror down, a proxy: all mean "offline" here
        return False
    finally:
        socket.setdefaulttimeout(old_timeout)


def find_source(dataset: str = "mnist", split: str = "train", *, download: bool = True) -> Source:
    """Resolve where ``dataset``/``split`` will be read from (see the module docstring)."""
    _check_name(dataset, split)
    mirror = os.environ.get("COURSEKIT_DATA")
    if mirror and _raw_files(Path(mirror), dataset, split):
        return Source("mirror", str(Path(mirror) / _FOLDERS[dataset] / "raw"))
    if _raw_files(cache_dir(), dataset, split):
        return Source("cache", str(cache_dir() / _FOLDERS[dataset] / "raw"))
    if download and _try_download(dataset, split):
        return Source("download", str(cache_dir() / _FOLDERS[dataset] / "raw"))
    embedded = _embedded_path(dataset)
    if embedded is not None:
        return Source("embedded", str(embedded))
    raise DataUnavailableError(
        f"No {dataset} {split} data found. Tried: $COURSEKIT_DATA "
        f"({mirror or 'not set'}), the cache ({cache_dir()}), a download "
        f"({'disabled by COURSEKIT_OFFLINE' if os.environ.get('COURSEKIT_OFFLINE') else 'failed: offline?'}). "
        f"To fix: connect to the internet once, or copy torchvision's raw files to "
        f"<dir>/{_FOLDERS[dataset]}/raw/ and set COURSEKIT_DATA=<dir>."
    )


def load_dataset(dataset: str = "mnist", split: str = "train", *, limit: int | None = None,
                 download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``dataset`` ('mnist' or 'fashion_mnist') as ``(images, labels)``.

    images: float32 ``(N, 1, 28, 28)`` in [0, 1]; labels: int64 ``(N,)``.
    ``limit`` keeps the first ``limit`` examples.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise CourseKitError(f"limit must be a positive integer or None, got {limit!r}.")
    source = find_source(dataset, split, download=download)
    if source.kind == "embedded":
        with np.load(source.location) as npz:
            images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
    else:
        images_path, labels_path = _raw_files(Path(source.location).parent.parent, dataset, split)
        images, labels = _read_idx(images_path), _read_idx(labels_path)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return _to_tensors(images, labels)


def embedded_mnist(split: str = "test", *, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The MNIST digits shipped in the package (4,000 train / 1,000 test, class-balanced), whatever
    mirror or cache this machine has: fixed inputs for graders, bands and tests that must give the
    same numbers everywhere. Same format as :func:`load_mnist`."""
    _check_name("mnist", split)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise CourseKitError(f"limit must be a positive integer or None, got {limit!r}.")
    path = _embedded_path("mnist")
    if path is None:
        raise DataUnavailableError("The embedded MNIST digits are missing from this coursekit install: "
                                   "reinstall coursekit (they ship in coursekit/assets/).")
    with np.load(path) as npz:
        images, labels = npz[f"{split}_images"][:limit], npz[f"{split}_labels"][:limit]
    return _to_tensors(images, labels)


def load_mnist(split: str = "train", *, limit: int | None = None,
               download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as float32 ``(N, 1, 28, 28)`` in [0, 1] and int64 labels."""
    return load_dataset("mnist", split, limit=limit, download=download)


def load_fashion_mnist(split: str = "train", *, limit: int | None = None,
                       download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST (mirror, cache or download; no embedded copy)."""
    return load_dataset("fashion_mnist", split, limit=limit, download=download)


# ---------------------------------------------------------------- photos

def load_photo(name: str = "cat") -> torch.Tensor:
    """A real photo shipped by scikit-image, as float32 ``(3, H, W)`` in [0, 1].

    Names: 'cat' (Chelsea the cat), 'coffee', 'astronaut', 'rocket'.
    """
    photos = {"cat": "chelsea", "coffee": "coffee", "astronaut": "astronaut", "rocket": "rocket"}
    if name not in photos:
        raise CourseKitError(f"Unknown photo {name!r}. Available: {', '.join(photos)}.")
    from skimage import data as skdata

    array = getattr(skdata, photos[name])()
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255.0)


def load_cat_photo() -> torch.Tensor:
    """Chelsea the cat (scikit-image), ``(3, 300, 451)`` in [0, 1]: the lecture's cat."""
    return load_photo("cat")


# ---------------------------------------------------------------- 2-D toys

TOY_2D = ("ring", "grid", "spiral", "moons")


def toy_2d(name: str = "ring", n: int = 1000, *, seed: int = 0) -> torch.Tensor:
    """Samples ``(n, 2)`` from a 2-D toy distribution for GAN demos.

    - 'ring': 8 Gaussians (std 0.05) on a circle of radius 2 (mode collapse shows at once);
    - 'grid': 25 Gaussians (std 0.05) on a 5x5 grid in [-2, 2]^2;
    - 'spiral': a noisy spiral; 'moons': two interleaved half circles.
    """
    if name not in TOY_2D:
        raise CourseKitError(f"Unknown toy distribution {name!r}. Available: {', '.join(TOY_2D)}.")
    if not isinstance(n, int) or n < 1:
        raise CourseKitError(f"n must be a positive integer, got {n!r}.")
    g = torch.Generator().manual_seed(seed)
    if name == "ring":
        k = torch.randint(0, 8, (n,), generator=g).float()
        centers = 2.0 * torch.stack([torch.cos(2 * math.pi * k / 8), torch.sin(2 * math.pi * k / 8)], 1)
        return centers + 0.05 * torch.randn(n, 2, generator=g)
    if name == "grid":
        k = torch.randint(0, 25, (n,), generator=g)
        centers = torch.stack([(k // 5).float() - 2.0, (k % 5).float() - 2.0], 1)
        return centers + 0.05 * torch.randn(n, 2, generator=g)
    if name == "spiral":
        t = 3 * math.pi * torch.sqrt(torch.rand(n, generator=g))
        points = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / (1.5 * math.pi)
        return points + 0.05 * torch.randn(n, 2, generator=g)
    t = math.pi * torch.rand(n, generator=g)
    upper = torch.rand(n, generator=g) < 0.5
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    return torch.stack([x, y], 1) * 1.5 - torch.tensor([0.75, 0.0]) + 0.05 * torch.randn(n, 2, generator=g)


def toy_2d_centers(name: str = "ring") -> torch.Tensor:
    """The mode centres of 'ring' or 'grid' (for mode-coverage metrics)."""
    if name == "ring":
        k = torch.arange(8).float()
        return 2.0 * torch.stack([torch.cos(2 * math.pi * k / 8), torch.sin(2 * math.pi * k / 8)], 1)
    if name == "grid":
        k = torch.arange(25)
        return torch.stack([(k // 5).float() - 2.0, (k % 5).float() - 2.0], 1)
    raise CourseKitError(f"Only 'ring' and 'grid' have discrete modes, got {name!r}.")
