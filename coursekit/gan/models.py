"""Small generators and discriminators.

Generators map noise ``z ~ N(0, I)`` of shape ``(N, z_dim)`` to samples; for
images the output is ``(N, 1, 28, 28)`` in [0, 1] (a sigmoid), like every image
in coursekit. Discriminators map samples to one *logit* per example, ``(N,)``;
``sigmoid(logit)`` is D's probability that the example is real.
"""
from __future__ import annotations

import torch
from torch import nn

from coursekit.checks import CourseKitError, check_labels
from coursekit.gan.vbn import VirtualBatchNorm
from coursekit.runtime import evaluating, model_device


def check_noise(z: torch.Tensor, z_dim: int, name: str = "z") -> torch.Tensor:
    """Check a batch of latent vectors ``(N, z_dim)``."""
    if not isinstance(z, torch.Tensor):
        raise CourseKitError(f"{name} must be a torch.Tensor of shape (N, {z_dim}), got {type(z).__name__}.")
    if z.dim() != 2 or z.shape[1] != z_dim:
        raise CourseKitError(
            f"{name} must have shape (N, {z_dim}), got {tuple(z.shape)}. "
            f"Sample it with torch.randn(n, {z_dim})."
        )
    if not z.is_floating_point():
        raise CourseKitError(f"{name} must be a float tensor, got dtype {z.dtype}.")
    return z


def _check_image_batch(x: torch.Tensor, channels: int, name: str = "x") -> None:
    """Shape check only (cheap, called every forward pass)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (channels, 28, 28):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise CourseKitError(f"{name} must be images of shape (N, {channels}, 28, 28), got {shape}.")


def _norm_2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise CourseKitError(f"Unknown norm {kind!r}: use 'batch', 'layer' or 'none'.")


# ---------------------------------------------------------------- DCGAN

class DCGANGenerator(nn.Module):
    """A small DCGAN generator (Radford et al. 2016) for 28x28 images::

        z (N, z_dim) -> Linear -> (N, C, 7, 7) -> BN, ReLU
          -> ConvTranspose 4x4/2 -> (N, C/2, 14, 14) -> BN, ReLU
          -> ConvTranspose 4x4/2 -> (N, 1, 28, 28) -> sigmoid (pixels in [0, 1])

    ``channels=C`` (64: 243k parameters, under 1 MB). ``refine=True`` adds a
    5x5 stride-1 convolution (C -> C, norm, ReLU) at 7x7 before the upsampling,
    as in the TensorFlow DCGAN tutorial's MNIST generator: more capacity where
    the digit's shape is laid out. ``use_vbn=True`` replaces batch norm by
    virtual batch norm with a fixed reference batch of ``reference_size`` noise
    vectors (a buffer, saved with the weights).
    """

    def __init__(self, z_dim: int = 64, channels: int = 64, *, use_vbn: bool = False,
                 reference_size: int = 64, out_channels: int = 1, refine: bool = False):
        super().__init__()
        if not isinstance(z_dim, int) or z_dim < 1:
            raise CourseKitError(f"z_dim must be a positive integer, got {z_dim!r}.")
        if not isinstance(channels, int) or channels < 2 or channels % 2:
            raise CourseKitError(f"channels must be an even integer >= 2, got {channels!r}.")
        self.z_dim = z_dim
        self.use_vbn = use_vbn
        norm = VirtualBatchNorm if use_vbn else nn.BatchNorm2d
        c = channels
        refine_layers = ([nn.Conv2d(c, c, 5, padding=2, bias=False), norm(c), nn.ReLU()]
                         if refine else [])
        self.net = nn.Sequential(
            nn.Linear(z_dim, c * 7 * 7, bias=False), nn.Unflatten(1, (c, 7, 7)), norm(c), nn.ReLU(),
            *refine_layers,
            nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False), norm(c // 2), nn.ReLU(),
            nn.ConvTranspose2d(c // 2, out_channels, 4, stride=2, padding=1), nn.Sigmoid(),
        )
        if use_vbn:
            self.register_buffer("reference_z", torch.randn(reference_size, z_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_noise(z, self.z_dim)
        if not self.use_vbn:
            return self.net(z)
        # Virtual batch norm: push the fixed reference batch through the same layers so
        # that every VBN layer normalises with statistics of the reference activations.
        h, h_ref = z, self.reference_z
        for layer in self.net:
            if isinstance(layer, VirtualBatchNorm):
                h_ref = layer.set_reference(h_ref)
                h = layer(h)
            else:
                h, h_ref = layer(h), layer(h_ref)
        return h


class DCGANDiscriminator(nn.Module):
    """A small DCGAN discriminator for 28x28 images -> logits ``(N,)``::

        x (N, 1, 28, 28) -> Conv 4x4/2 -> (N, C, 14, 14) -> LeakyReLU(0.2)
          -> Conv 4x4/2 -> (N, 2C, 7, 7) -> norm, LeakyReLU(0.2) -> Linear -> logit

    ``norm``: 'batch' (DCGAN), 'layer' or 'none' (per-example gradients, e.g. DP-SGD).
    ``dropout``: dropout after each LeakyReLU (0: none; the TensorFlow DCGAN
    tutorial uses 0.3), which keeps D from memorising the real digits.
    """

    def __init__(self, channels: int = 32, *, in_channels: int = 1, norm: str = "batch",
                 dropout: float = 0.0):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise CourseKitError(f"dropout must be in [0, 1), got {dropout!r}.")
        c = channels
        self.in_channels = in_channels
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2), *drop,
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), _norm_2d(norm, 2 * c), nn.LeakyReLU(0.2), *drop,
            nn.Flatten(), nn.Linear(2 * c * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image_batch(x, self.in_channels)
        return self.net(x).squeeze(1)


# ---------------------------------------------------------------- conditional (labels in)

class ConditionalGenerator(nn.Module):
    """A class-conditional DCGAN generator: ``G(z, y)`` draws a digit of class ``y``.

    The label is embedded (``nn.Embedding(num_classes, embed_dim)``) and
    concatenated to the noise: ``[z, e(y)] -> DCGANGenerator``.
    z ``(N, z_dim)``, labels ``(N,)`` int64 -> ``(N, 1, 28, 28)`` in [0, 1].
    """

    conditional = True

    def __init__(self, z_dim: int = 64, num_classes: int = 10, channels: int = 64, *,
                 embed_dim: int = 16, use_vbn: bool = False, refine: bool = False):
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.body = DCGANGenerator(z_dim + embed_dim, channels, use_vbn=use_vbn, refine=refine)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_noise(z, self.z_dim)
        check_labels(labels, len(z), "labels", self.num_classes)
        return self.body(torch.cat([z, self.embed(labels)], 1))


class ConditionalDiscriminator(nn.Module):
    """A class-conditional discriminator: ``D(x, y)``, is ``x`` a real image *of class y*?

    The label is embedded as a 28x28 map and stacked on the image as a second
    channel: ``[x, e(y)] -> DCGANDiscriminator(in_channels=2)`` -> logits ``(N,)``.
    """

    conditional = True

    def __init__(self, num_classes: int = 10, channels: int = 32, *, norm: str = "batch",
                 dropout: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, 28 * 28)
        self.body = DCGANDiscriminator(channels, in_channels=2, norm=norm, dropout=dropout)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_image_batch(x, 1)
        check_labels(labels, len(x), "labels", self.num_classes)
        label_map = self.embed(labels).view(-1, 1, 28, 28)
        return self.body(torch.cat([x, label_map], 1))


# ---------------------------------------------------------------- 2-D toys

class MLPGenerator(nn.Module):
    """``z (N, z_dim) -> (N, out_features)``: an MLP with ReLU hidden layers, linear output."""

    def __init__(self, z_dim: int = 8, hidden: int = 128, out_features: int = 2, depth: int = 3):
        super().__init__()
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        width = z_dim
        for _ in range(depth - 1):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_noise(z, self.z_dim)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """``x (N, in_features) -> logits (N,)``: an MLP with LeakyReLU(0.2) hidden layers."""

    def __init__(self, in_features: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.in_features = in_features
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(depth - 1):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise CourseKitError(f"x must have shape (N, {self.in_features}), got {shape}.")
        return self.net(x).squeeze(1)


# ---------------------------------------------------------------- sampling

def is_conditional(model: nn.Module) -> bool:
    """Whether ``model`` takes class labels as a second input."""
    return bool(getattr(model, "conditional", False))


@torch.no_grad()
def generate(generator: nn.Module, n: int, *, labels: torch.Tensor | None = None,
             seed: int | None = None, z: torch.Tensor | None = None,
             batch_size: int = 500) -> torch.Tensor:
    """Draw ``n`` samples ``G(z)``, ``z ~ N(0, I)``, with the generator in eval mode.

    ``seed`` makes the noise repeatable; ``z`` ``(n, z_dim)`` gives it directly.
    For a conditional generator pass ``labels`` ``(n,)`` (default: 0, 1, 2, ... cycling).
    Returns the samples on the CPU; the generator's mode is restored afterwards.
    """
    if not isinstance(n, int) or n < 1:
        raise CourseKitError(f"n must be a positive integer, got {n!r}.")
    z_dim = getattr(generator, "z_dim", None)
    if z_dim is None:
        raise CourseKitError("The generator needs a z_dim attribute (the length of its noise vectors).")
    if z is None:
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, z_dim, generator=g)
    check_noise(z, z_dim)
    if len(z) != n:
        raise CourseKitError(f"z has {len(z)} rows but n={n}.")
    if is_conditional(generator):
        if labels is None:
            labels = torch.arange(n) % generator.num_classes
        check_labels(labels, n, "labels", generator.num_classes)
    elif labels is not None:
        raise CourseKitError("labels are only for a conditional generator (G(z, y)); this one is G(z).")
    device = model_device(generator)
    with evaluating(generator):
        chunks = []
        for i in range(0, n, batch_size):
            zb = z[i:i + batch_size].to(device)
            if labels is None:
                chunks.append(generator(zb).cpu())
            else:
                chunks.append(generator(zb, labels[i:i + batch_size].to(device)).cpu())
        return torch.cat(chunks)
