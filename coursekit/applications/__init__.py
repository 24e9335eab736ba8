"""GAN applications, each small enough to train on a laptop CPU in seconds to a minute.

- :mod:`coursekit.applications.translation`: image-to-image translation between
  digit domains (thickened, inverted, outlined strokes): pix2pix (paired) and
  CycleGAN (unpaired, cycle-consistency loss);
- :mod:`coursekit.applications.superres`: a small SRGAN (content + adversarial
  loss) that upscales low-resolution digits, ``psnr``, ``ssim`` and the bicubic baseline;
- :mod:`coursekit.applications.private`: a conditional GAN as a source of synthetic
  labelled data: train-synthetic-test-real accuracy and a memorisation check
  (nearest-real-neighbour distances);
- :mod:`coursekit.applications.manufacturing`: a defect data set built offline from
  scikit-image textures with drawn scratches and spots, a defect GAN that
  generates rare defects, and a classifier trained with and without them;
- :mod:`coursekit.applications.explore`: a slider over training snapshots;
- :mod:`coursekit.applications.studies`: the comparisons of lecture 06 over several seeds
  (CycleGAN, the defect classifier), live with the default budgets, stored for the fast ones.

Submodules load lazily (``coursekit.applications.superres`` etc.), so importing
this package costs nothing.
"""
from __future__ import annotations

import importlib

__all__ = ["translation", "superres", "private", "manufacturing", "explore", "studies"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
