"""Building the zoo: how every shipped model is trained, evaluated and written.

The loading side (:mod:`coursekit.zoo`) never imports this package: loading a model needs its
architecture and its weights, not its trainer. Each :class:`coursekit.zoo.ZooEntry` names its
trainer (``entry.trainer``), a key of :data:`TRAINERS` here:

- :mod:`coursekit.recipes.mnist`: the one "is the full MNIST here?" check (:func:`full_mnist`) and
  the classifiers' recipes (plain, float16, PGD adversarial training);
- :mod:`coursekit.recipes.gan`: the GAN generators' recipes and the digit-generator evaluation
  (the quality bar), also used by ``scripts/gan_recipe_search.py``;
- :mod:`coursekit.recipes.build`: :func:`build` (``coursekit zoo build``, ``make zoo``) and
  :func:`record_in_manifest`.
"""
from coursekit.recipes.build import TRAINERS, build, record_in_manifest
from coursekit.recipes.mnist import full_mnist

__all__ = ["TRAINERS", "build", "record_in_manifest", "full_mnist"]
