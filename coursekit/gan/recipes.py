"""How the zoo's ``dcgan_mnist`` generator is trained (``zoo.build(['dcgan_mnist'])``)."""
from __future__ import annotations

import time

import torch
from torch import nn

from coursekit.checks import CourseKitError


def train_dcgan_mnist(generator: nn.Module, recipe: dict) -> dict:
    """Train ``generator`` against a fresh ``DCGANDiscriminator`` on the full MNIST training set.

    ``recipe``: steps, batch_size, lr_g, lr_d, k, label_smoothing, d_channels, seed
    (and storage_dtype: "float16" rounds the weights as they will be stored).
    Afterwards 1,000 samples are classified by ``zoo.load('mnist_cnn')``; the
    returned metrics (written to the manifest) say how many it recognises with
    confidence > 0.9, and which digits it sees.
    """
    from coursekit import data, zoo
    from coursekit.gan.metrics import digit_quality
    from coursekit.gan.models import DCGANDiscriminator, generate
    from coursekit.gan.training import GANTrainer

    x_train, _ = data.load_mnist("train")
    if len(x_train) < 60000:
        raise CourseKitError(
            "Building dcgan_mnist needs the full MNIST training set (60,000 images), found "
            f"{len(x_train)} (the embedded subset?). Set COURSEKIT_DATA to a mirror in "
            "torchvision's layout, e.g. COURSEKIT_DATA=../shared/data."
        )
    torch.manual_seed(recipe["seed"] + 1)  # the discriminator's initial weights
    discriminator = DCGANDiscriminator(recipe["d_channels"])
    trainer = GANTrainer(
        generator, discriminator, lr_g=recipe["lr_g"], lr_d=recipe["lr_d"], k=recipe["k"],
        label_smoothing=recipe["label_smoothing"], seed=recipe["seed"], sample_every=0,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    history = trainer.train(x_train, recipe["steps"], recipe["batch_size"])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if recipe.get("storage_dtype") == "float16":  # evaluate what ships: weights rounded to float16
        with torch.no_grad():
            for tensor in generator.state_dict().values():
                if tensor.is_floating_point():
                    tensor.copy_(tensor.half().float())
    samples = generate(generator, 1000, seed=recipe["seed"] + 1000)
    quality = digit_quality(samples, zoo.load("mnist_cnn"), threshold=0.9)
    last = slice(-200, None)
    return {
        "data": "MNIST training set (60,000 images)",
        "evaluated_on": "1,000 samples (noise seed = recipe seed + 1000) classified by mnist_cnn",
        "confident_fraction": quality["confident_fraction"],
        "confidence_threshold": 0.9,
        "mean_confidence": quality["mean_confidence"],
        "class_histogram": quality["class_histogram"],
        "final_d_loss": sum(history["d_loss"][last]) / len(history["d_loss"][last]),
        "final_g_loss": sum(history["g_loss"][last]) / len(history["g_loss"][last]),
        "train_seconds": round(wall, 1),
        "train_cpu_seconds": round(cpu, 1),
        "torch_threads": torch.get_num_threads(),
    }
