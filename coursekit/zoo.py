"""The model zoo: small pretrained models that ship inside the package.

``load(name)`` returns a model in eval mode that takes images in [0, 1] and
returns logits. Weights live in ``coursekit/weights/<name>.pt`` and are listed,
with their sha256, accuracy, seed and training data, in
``coursekit/weights/manifest.json``. They are rebuilt, reproducibly, by::

    coursekit zoo build            # all models (needs the full MNIST: COURSEKIT_DATA)
    coursekit zoo build mnist_cnn  # one model

ImageNet models from torchvision load as ``load("torchvision/resnet18")`` when
their weights are in torch's cache (``$TORCH_HOME/hub/checkpoints``); they are
never downloaded by coursekit.

This module *loads*; it never imports a trainer. Each entry names its training recipe
(``trainer``), a key of :data:`coursekit.recipes.TRAINERS`: the build side
(:mod:`coursekit.recipes`) trains, evaluates and writes the weights and the manifest.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from coursekit.checks import CourseKitError


class MissingWeightsError(CourseKitError, FileNotFoundError):
    """A model's weights are not available on this machine."""


@dataclass
class ZooEntry:
    """One model: its architecture and, for the models we train, the name of its recipe."""

    name: str
    description: str
    build: Callable[[], nn.Module]   # the architecture, untrained
    trainer: str | None = None       # a key of coursekit.recipes.TRAINERS; None: not trained here
    recipe: dict = field(default_factory=dict)   # hyperparameters (stored in the manifest)


def weights_dir() -> Path:
    return Path(str(resources.files("coursekit") / "weights"))


def manifest_path() -> Path:
    return weights_dir() / "manifest.json"


def manifest() -> dict:
    """The manifest of shipped weights: ``{name: {sha256, accuracy, seed, data, ...}}``."""
    path = manifest_path()
    return json.loads(path.read_text()) if path.is_file() else {}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- architectures and storage

def _mnist_cnn():
    from coursekit.models import MnistCNN
    return MnistCNN()


def _mnist_mlp():
    from coursekit.models import MnistMLP
    return MnistMLP()


def _mobilenet_v1_imagenet():
    from coursekit.mobilenet import MobileNetV1
    return MobileNetV1(alpha=0.75)


def _mnist_logreg():
    from coursekit.models import LogisticRegression
    return LogisticRegression()


def _mnist_cnn_wide():
    from coursekit.models import MnistCNN
    return MnistCNN(width=2)


def _dcgan_mnist():
    from coursekit.gan.models import DCGANGenerator
    recipe = ENTRIES["dcgan_mnist"].recipe
    return DCGANGenerator(z_dim=recipe["z_dim"], channels=recipe["channels"], refine=recipe["refine"])


def _cgan_mnist():
    from coursekit.gan.models import ConditionalGenerator
    recipe = ENTRIES["cgan_mnist"].recipe
    return ConditionalGenerator(recipe["z_dim"], 10, recipe["channels"], refine=recipe["refine"])


def round_to_float16(model: nn.Module) -> None:
    """Round the weights through float16 in place, so figures describe a float16 file as loaded."""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())


ENTRIES: dict[str, ZooEntry] = {}

# What the two GAN generators share (they differ in length); chosen by scripts/gan_recipe_search.py.
_GAN_RECIPE = {"z_dim": 64, "channels": 128, "refine": True, "d_channels": 64, "d_dropout": 0.0,
               "batch_size": 128, "lr_g": 2e-4, "lr_d": 2e-4, "k": 1, "label_smoothing": 1.0, "seed": 0,
               "storage_dtype": "float16"}


def register(entry: ZooEntry) -> ZooEntry:
    ENTRIES[entry.name] = entry
    return entry


register(ZooEntry(
    "mnist_cnn", "MNIST CNN: 2 conv + 2 dense layers, ~99% test accuracy",
    _mnist_cnn, "mnist_classifier", {"epochs": 4, "lr": 2e-3, "batch_size": 64, "seed": 0},
))
register(ZooEntry(
    "mnist_mlp", "MNIST MLP: 784-128-128-10, ~98% test accuracy",
    _mnist_mlp, "mnist_classifier", {"epochs": 4, "lr": 2e-3, "batch_size": 64, "seed": 0},
))
register(ZooEntry(
    "mnist_logreg",
    "MNIST multinomial logistic regression on raw pixels (784 -> 10), ~92% test accuracy: "
    "the linear model of coursekit.linear",
    _mnist_logreg, "mnist_classifier", {"epochs": 5, "lr": 1e-3, "batch_size": 64, "seed": 0},
))
register(ZooEntry(
    "mnist_cnn_wide", "MNIST CNN at width 2 (32/64 channels), seed 1: a second standard model for transfer",
    _mnist_cnn_wide, "mnist_classifier_float16",
    {"epochs": 4, "lr": 2e-3, "batch_size": 64, "seed": 1, "storage_dtype": "float16"},
))
register(ZooEntry(
    "mnist_cnn_robust",
    "MNIST CNN adversarially trained against L-inf eps=0.3 (see recipe): robust to FGSM/PGD",
    _mnist_cnn, "mnist_robust",
    {"method": "pgd", "eps": 0.3, "steps": 5, "epochs": 3, "eps_warmup_epochs": 1.0, "lr": 2e-3,
     "batch_size": 100, "seed": 0, "storage_dtype": "float16",
     "note": "PGD adversarial training (Madry et al. 2018), 5 steps of 2.5*eps/5 from a random start; "
             "eps ramps up over the first epoch. (One-step FGSM training overfit catastrophically "
             "here: 99% FGSM accuracy but 0% under PGD.)"},
))
register(ZooEntry(
    "dcgan_mnist",
    "DCGAN generator for MNIST digits: noise z (N, 64) -> images (N, 1, 28, 28) in [0, 1] "
    "(the generator only; coursekit.gan.generate(G, n) draws samples)",
    _dcgan_mnist, "dcgan_mnist",
    {**_GAN_RECIPE, "channels": 256, "batch_size": 512, "steps": 25000, "ema_decay": 0.999,
     "note": "Chosen by scripts/gan_recipe_search.py on a GPU (docs/benchmarks.md, 'GAN: the dcgan_mnist "
             "recipe'): the stride-1 refine layer, 256 channels, batches of 512 over 213 epochs and the "
             "moving average of G's weights took the MNIST-domain FID from 403 to 18."},
))
register(ZooEntry(
    "cgan_mnist",
    "Class-conditional DCGAN generator for MNIST: G(z (N, 64), labels (N,)) -> images (N, 1, 28, 28) "
    "in [0, 1] of the asked-for digits (coursekit.gan.generate(G, n, labels=...))",
    _cgan_mnist, "cgan_mnist",
    {**_GAN_RECIPE, "steps": 5000,
     "note": "Chosen by scripts/gan_recipe_search.py on a GPU (docs/benchmarks.md)."},
))
register(ZooEntry(  # pretrained by Keras, ported by scripts/convert_mobilenet.py (no recipe)
    "mobilenet_v1_imagenet",
    "MobileNet v1 (width 0.75, 224x224) ImageNet classifier, 1000 classes, ~68% top-1 (Keras weights)",
    _mobilenet_v1_imagenet, None,
    {"rebuild": "`python scripts/convert_mobilenet.py ../shared/data/weights/mobilenet_v1_0.75_224_tfjs`"},
))


# ---------------------------------------------------------------- loading

def available() -> list[str]:
    """Names of the models that ``load`` knows (shipped or buildable)."""
    return sorted(ENTRIES)


def load(name: str, *, device: str | torch.device | None = None, verify: bool = True) -> nn.Module:
    """Load a pretrained model in eval mode: images in [0, 1] -> logits.

    ``verify`` checks the weights file against the manifest's sha256.
    """
    if not isinstance(name, str):
        raise CourseKitError(f"A model name is a string, got {type(name).__name__}.")
    if name.startswith("torchvision/"):
        model = _load_torchvision(name.split("/", 1)[1])
    else:
        if name not in ENTRIES:
            raise CourseKitError(
                f"Unknown model {name!r}. Available: {', '.join(available())}, "
                "or 'torchvision/<arch>' for torchvision's ImageNet models."
            )
        model = ENTRIES[name].build()
        path = weights_dir() / f"{name}.pt"
        if not path.is_file():
            how = (f"`coursekit zoo build {name}`" if ENTRIES[name].trainer is not None
                   else ENTRIES[name].recipe.get("rebuild", "the conversion script in scripts/"))
            raise MissingWeightsError(
                f"The weights of {name!r} are not in {weights_dir()}. Rebuild them with "
                f"{how} (reinstalling coursekit restores the shipped ones)."
            )
        if verify:
            expected = manifest().get(name, {}).get("sha256")
            if expected and sha256_of(path) != expected:
                raise CourseKitError(
                    f"The weights file {path} does not match its sha256 in the manifest "
                    "(corrupt or edited). Reinstall coursekit or rebuild with `coursekit zoo build`."
                )
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    if device is not None:
        model = model.to(device)
    return model.eval()


def _load_torchvision(arch: str) -> nn.Module:
    """A torchvision ImageNet classifier from torch's cache (never downloaded here)."""
    import torchvision
    from coursekit.models import Normalize

    try:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError):
        raise CourseKitError(f"torchvision has no model named {arch!r}.") from None
    checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not checkpoint.is_file():
        raise MissingWeightsError(
            f"The ImageNet weights for torchvision's {arch} are not in {checkpoint.parent}. "
            f"Download {weights.url} there (or set TORCH_HOME to a folder that has "
            "hub/checkpoints/ with it). coursekit never downloads them itself; "
            "zoo.load('mobilenet_v1_imagenet') works offline."
        )
    net = torchvision.models.get_model(arch, weights=None)
    net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return nn.Sequential(Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), net)
