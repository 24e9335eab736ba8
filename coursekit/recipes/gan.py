"""How the zoo's GAN generators are trained (``coursekit zoo build dcgan_mnist cgan_mnist``).

One function per shipped generator; both train with :class:`coursekit.gan.GANTrainer` on the
full MNIST training set, on ``runtime.device()`` (a GPU when there is one), and evaluate what
ships (weights rounded to float16) with :func:`evaluate_digit_generator`:

- ``confident_fraction``: share of samples that the zoo's ``mnist_cnn`` classifies with
  probability > 0.9 (real test digits: about 99%);
- ``class_shares``: the classifier's predicted classes (a collapsed generator puts most
  samples in a few classes; MNIST has about 10% each);
- ``fid_mnist``: the MNIST-domain Fréchet distance (``mnist_cnn``'s 100-d features) between
  the samples and the 10,000 test digits, next to ``fid_mnist_real``: the same distance for
  as many *real training* digits (the floor that sampling noise alone gives).

Recipes are plain dicts (stored in the manifest); ``checkpoint_every``/``on_checkpoint``
let a search (``scripts/gan_recipe_search.py``) evaluate a run as it goes. A recipe with
``ema_decay`` ships the exponential moving average of G's weights over the training steps
(Karras et al. 2018; Yazıcı et al. 2019): the average of the late iterates lies nearer the
middle of the oscillation that plain GAN training keeps up, and draws cleaner digits.
"""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from coursekit.recipes.mnist import full_mnist
from coursekit.zoo import round_to_float16

#: The bar of a generator "worth showing" (issue 17): confident samples, every class present,
#: and an MNIST-domain FID at most twice that of real digits at the same sample size.
QUALITY_BAR = {"confident_fraction": 0.9, "class_share_min": 0.05, "class_share_max": 0.15,
               "fid_ratio_max": 2.0}


@torch.no_grad()
def evaluate_digit_generator(generator: nn.Module, *, n: int = 2000, seed: int = 1000,
                             real_test: torch.Tensor | None = None,
                             real_train: torch.Tensor | None = None) -> dict:
    """The quality figures of a digit generator (see the module docstring).

    ``n`` samples from noise seed ``seed`` (a conditional generator gets labels 0..9 cycling);
    ``real_test`` (default: the MNIST test set) is the reference of the FID; ``real_train``
    (default: the training set) gives ``n`` real digits for the real-vs-real floor.
    For a conditional generator ``label_agreement`` (the classifier agrees with the asked-for
    class, confidently) is added, overall and per class.
    """
    from coursekit import data, metrics, runtime, zoo
    from coursekit.gan.models import generate, is_conditional

    device = runtime.model_device(generator)
    classifier = zoo.load("mnist_cnn", device=device)
    extractor = metrics.feature_extractor("mnist_cnn", device=device)
    if real_test is None:
        real_test = data.load_mnist("test")[0]
    if real_train is None:
        real_train = data.load_mnist("train")[0]
    labels = torch.arange(n) % 10 if is_conditional(generator) else None
    samples = generate(generator, n, seed=seed, labels=labels)
    quality = metrics.digit_quality(samples, classifier, threshold=0.9)
    reference = metrics.feature_statistics(real_test, extractor, progress=False)
    pick = torch.randperm(len(real_train), generator=torch.Generator().manual_seed(seed))[:n]
    result = {
        "samples": n,
        "confident_fraction": round(quality["confident_fraction"], 4),
        "mean_confidence": round(quality["mean_confidence"], 4),
        "class_shares": [round(c / n, 4) for c in quality["class_histogram"]],
        "fid_mnist": round(metrics.fid(samples, reference, extractor, progress=False), 2),
        "fid_mnist_real": round(metrics.fid(real_train[pick], reference, extractor, progress=False), 2),
        "fid_reference": f"{len(real_test)} real test digits",
    }
    if labels is not None:
        confidence, predicted = metrics.class_probabilities(classifier, samples).max(1)
        agree = (predicted == labels) & (confidence > 0.9)
        result["label_agreement"] = round(float(agree.float().mean()), 4)
        result["label_agreement_per_class"] = [round(float(agree[labels == c].float().mean()), 4)
                                               for c in range(10)]
    return result


def meets_quality_bar(figures: dict, bar: dict = QUALITY_BAR) -> list[str]:
    """The ways ``figures`` (from :func:`evaluate_digit_generator`) miss the bar; empty: it meets it."""
    misses = []
    if figures["confident_fraction"] < bar["confident_fraction"]:
        misses.append(f"confident fraction {figures['confident_fraction']:.3f} < {bar['confident_fraction']}")
    for digit, share in enumerate(figures["class_shares"]):
        if not bar["class_share_min"] <= share <= bar["class_share_max"]:
            misses.append(f"class {digit} share {share:.3f} outside "
                          f"[{bar['class_share_min']}, {bar['class_share_max']}]")
    if figures["fid_mnist"] > bar["fid_ratio_max"] * figures["fid_mnist_real"]:
        misses.append(f"FID {figures['fid_mnist']:.1f} > {bar['fid_ratio_max']} x real {figures['fid_mnist_real']:.1f}")
    return misses


def _optimizer(params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    # The fused CUDA kernel cuts launch overhead on a GPU; the maths is Adam's either way.
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), fused=device.type == "cuda")


def moving_average(model: nn.Module, decay: float) -> tuple[nn.Module, Callable[[], None]]:
    """A copy of ``model`` and ``update()``, which moves the copy's weights towards ``model``'s.

    .. math:: \bar\theta \leftarrow \beta\,\bar\theta + (1 - \beta)\,\theta, \qquad \beta = \text{decay}

    Floating-point buffers (batch-norm statistics) are averaged the same way; integer
    buffers (batch counters) are copied.
    """
    import copy

    average = copy.deepcopy(model).requires_grad_(False)
    pairs = list(zip(average.state_dict().values(), model.state_dict().values()))
    floats = [(mine, theirs) for mine, theirs in pairs if mine.is_floating_point()]
    others = [(mine, theirs) for mine, theirs in pairs if not mine.is_floating_point()]

    @torch.no_grad()
    def update() -> None:
        for mine, theirs in floats:
            mine.lerp_(theirs, 1.0 - decay)
        for mine, theirs in others:
            mine.copy_(theirs)

    return average, update


def train_gan_recipe(generator: nn.Module, discriminator: nn.Module, recipe: dict, *,
                     conditional: bool = False, device: torch.device | None = None,
                     checkpoint_every: int = 0,
                     on_checkpoint: Callable[[int, float, dict], None] | None = None,
                     track_decays: tuple[float, ...] = (),
                     progress: bool = True) -> dict:
    """Train ``generator`` against ``discriminator`` on the full MNIST with ``recipe``.

    ``recipe``: steps, batch_size, lr_g, lr_d, k, label_smoothing, seed, and optionally
    ``ema_decay`` (G's weights end as their moving average, see :func:`moving_average`).
    Every ``checkpoint_every`` steps ``on_checkpoint(step, train_seconds, averages)`` is
    called, ``averages`` mapping each decay (``ema_decay`` and ``track_decays``) to its
    averaged generator (training continues exactly where it stopped). Returns the training
    figures.
    """
    from coursekit import runtime
    from coursekit.gan.training import GANTrainer

    device = device or runtime.device()
    x_train, y_train = full_mnist("train")
    generator.to(device)
    discriminator.to(device)
    x_train = x_train.to(device)
    y_train = y_train.to(device) if conditional else None
    trainer = GANTrainer(
        generator, discriminator, lr_g=recipe["lr_g"], lr_d=recipe["lr_d"], k=recipe["k"],
        label_smoothing=recipe["label_smoothing"], seed=recipe["seed"], sample_every=0,
        g_optimizer=_optimizer(generator.parameters(), recipe["lr_g"], device),
        d_optimizer=_optimizer(discriminator.parameters(), recipe["lr_d"], device),
    )
    data = (x_train, y_train) if conditional else x_train
    decays = sorted(set(track_decays) | ({recipe["ema_decay"]} if recipe.get("ema_decay") else set()))
    averages, updates = {}, []
    for decay in decays:
        averages[decay], update = moving_average(generator, decay)
        updates.append(update)

    def after_step(history: dict) -> None:  # returns None: training goes on
        for update in updates:
            update()

    chunk = checkpoint_every or recipe["steps"]
    wall = 0.0
    cpu = time.process_time()
    done = 0
    while done < recipe["steps"]:
        todo = min(chunk, recipe["steps"] - done)
        start = time.perf_counter()
        trainer.train(data, todo, recipe["batch_size"], progress=progress,
                      callback=after_step if updates else None)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall += time.perf_counter() - start
        done += todo
        if on_checkpoint is not None:
            on_checkpoint(done, wall, averages)
    if recipe.get("ema_decay"):
        generator.load_state_dict(averages[recipe["ema_decay"]].state_dict())
    last = slice(-200, None)
    history = trainer.history
    return {
        "data": "MNIST training set (60,000 images)",
        "final_d_loss": round(sum(history["d_loss"][last]) / len(history["d_loss"][last]), 4),
        "final_g_loss": round(sum(history["g_loss"][last]) / len(history["g_loss"][last]), 4),
        "train_seconds": round(wall, 1),
        "train_cpu_seconds": round(time.process_time() - cpu, 1),
        "trained_on": runtime.describe_device(device),
    }


def dcgan_discriminator(recipe: dict) -> nn.Module:
    from coursekit.gan.models import DCGANDiscriminator
    return DCGANDiscriminator(recipe["d_channels"], dropout=recipe.get("d_dropout", 0.0))


def conditional_discriminator(recipe: dict) -> nn.Module:
    from coursekit.gan.models import ConditionalDiscriminator
    return ConditionalDiscriminator(10, recipe["d_channels"], dropout=recipe.get("d_dropout", 0.0))


def _train_and_evaluate(generator: nn.Module, recipe: dict, *, conditional: bool) -> dict:
    torch.manual_seed(recipe["seed"] + 1)  # the discriminator's initial weights
    make_d = conditional_discriminator if conditional else dcgan_discriminator
    figures = train_gan_recipe(generator, make_d(recipe), recipe, conditional=conditional)
    generator.cpu().eval()
    if recipe.get("storage_dtype") == "float16":  # evaluate what ships
        round_to_float16(generator)
    quality = evaluate_digit_generator(generator, n=2000, seed=recipe["seed"] + 1000)
    misses = meets_quality_bar(quality)
    return {**figures, **quality, "quality_bar": QUALITY_BAR,
            "meets_quality_bar": not misses, "misses": misses,
            "evaluated_on": "2,000 samples (noise seed = recipe seed + 1000) classified by mnist_cnn"}


def train_dcgan_mnist(generator: nn.Module, recipe: dict) -> dict:
    """The zoo's ``dcgan_mnist``: G against a fresh ``DCGANDiscriminator`` (see the module docstring)."""
    return _train_and_evaluate(generator, recipe, conditional=False)


def train_cgan_mnist(generator: nn.Module, recipe: dict) -> dict:
    """The zoo's ``cgan_mnist``: a class-conditional G against a ``ConditionalDiscriminator``."""
    return _train_and_evaluate(generator, recipe, conditional=True)
