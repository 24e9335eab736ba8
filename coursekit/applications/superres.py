"""Super-resolution: a small SRGAN that upscales low-resolution digits, and how to score it.

The task: from a low-resolution image ``x_lr = downsample(x_hr)`` (14x14 or 7x7)
recover the 28x28 original. The classic baseline is **bicubic interpolation**.
**SRGAN** (Ledig et al. 2017) trains a generator ``G: x_lr -> x_sr`` with::

    L_G = content(G(x_lr), x_hr)  +  w_adv * ( -mean log D(G(x_lr)) )
    content(a, b) = mean (a - b)^2                  (pixel MSE, "SRResNet")
                  + mean (phi(a) - phi(b))^2        (optional: features phi of a trained CNN)

and a discriminator ``D`` that tells real high-resolution digits from
super-resolved ones (:func:`coursekit.gan.discriminator_loss`). The content
term alone gives the *average* of all plausible sharp images (a blur); the
adversarial term pushes towards *one* sharp, plausible image.

Scores (higher is better), per image:

- PSNR: ``10 log10(R^2 / mean (x - y)^2)`` in dB, ``R`` the data range (1);
- SSIM (Wang et al. 2004): the mean over an 11x11 Gaussian window (sigma 1.5) of::

      (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
      C1 = (0.01 R)^2,  C2 = (0.03 R)^2

  over the windows that fit inside the image (as ``skimage.metrics.structural_similarity``
  with ``gaussian_weights=True, use_sample_covariance=False``).

Shapes: high-resolution images ``(N, 1, 28, 28)``, low-resolution ``(N, 1, 28/f, 28/f)``
for the factor ``f`` in {2, 4}; all in [0, 1].
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from coursekit.applications._common import (
    BatchSampler, adam, check_positive_float, check_same_shape, device_of, eval_mode,
)
from coursekit.checks import CourseKitError, check_int, check_images, check_nonnegative
from coursekit.gan import discriminator_step, generator_step, non_saturating_generator_loss

FACTORS = (2, 4)


def _check_factor(factor) -> int:
    if factor not in FACTORS or isinstance(factor, bool):
        raise CourseKitError(f"factor must be one of {FACTORS} (28x28 -> 14x14 or 7x7), got {factor!r}.")
    return int(factor)


# ====================================================================== resolution

def downsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """The low-resolution observation: the mean of each ``f x f`` block (area averaging).

    ``(N, C, H, W)`` -> ``(N, C, H/f, W/f)``; H and W must be divisible by ``f``.
    """
    check_images(x)
    factor = _check_factor(factor)
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise CourseKitError(f"Image size {tuple(x.shape[-2:])} is not divisible by factor {factor}.")
    return F.avg_pool2d(x, factor)


def bicubic_upsample(x_lr: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """The baseline: bicubic interpolation by ``f``, clipped to [0, 1]. ``(N, C, h, w)`` -> ``(N, C, f h, f w)``."""
    check_images(x_lr, "x_lr")
    factor = _check_factor(factor)
    return F.interpolate(x_lr, scale_factor=factor, mode="bicubic", align_corners=False).clamp(0, 1)


# ====================================================================== scores

def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB: ``10 log10(R^2 / mean_pixels (x - y)^2)``.

    x, y: ``(N, C, H, W)``. Returns ``(N,)``; ``inf`` where the images are identical.
    """
    check_images(x)
    check_images(y, "y")
    check_same_shape(x, y, "x", "y")
    data_range = check_positive_float(data_range, "data_range")
    mse = (x.detach().double() - y.detach().double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(data_range ** 2 / mse)).float()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """A normalised 2-D Gaussian window ``(size, size)`` that sums to 1 (the outer product of 1-D ones)."""
    size = check_int(size, "window_size")
    if size % 2 == 0:
        raise CourseKitError(f"window_size must be odd, got {size}.")
    sigma = check_positive_float(sigma, "sigma")
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, *, window_size: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004), Gaussian-weighted, in [-1, 1].

    Local statistics are weighted means over a Gaussian window ``w`` (``window_size``,
    ``sigma``): ``mu_x = w * x``, ``sigma_x^2 = w * x^2 - mu_x^2``, ``sigma_xy = w * (x y) - mu_x mu_y``
    (``*``: a 'valid' 2-D correlation). The SSIM map::

        ((2 mu_x mu_y + C1)(2 sigma_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

    with ``C1 = (k1 R)^2``, ``C2 = (k2 R)^2`` is averaged over positions and channels.
    x, y: ``(N, C, H, W)`` with H, W >= ``window_size``. Returns ``(N,)``; 1 iff x == y.
    """
    check_images(x)
    check_images(y, "y")
    check_same_shape(x, y, "x", "y")
    data_range = check_positive_float(data_range, "data_range")
    window = gaussian_window(window_size, sigma)
    if x.shape[-1] < window_size or x.shape[-2] < window_size:
        raise CourseKitError(f"Images {tuple(x.shape[-2:])} are smaller than the {window_size}x{window_size} window.")
    c = x.shape[1]
    x, y = x.detach().double(), y.detach().double()
    w = window.expand(c, 1, window_size, window_size).contiguous()

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x ** 2
    var_y = local_mean(y * y) - mu_y ** 2
    cov_xy = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1).float()


# ====================================================================== models

class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 convolutions: the SRResNet building block (no batch norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRGenerator(nn.Module):
    """A small SRGAN generator (Ledig et al. 2017, scaled down)::

        x_lr (N, 1, h, w) -> conv 5x5, PReLU                         (N, c, h, w)
             -> blocks x ResidualBlock, + skip from the first conv    (N, c, h, w)
             -> [conv 3x3 to 4c, PixelShuffle(2), PReLU] per factor 2 (N, c, 2h, 2w) ...
             -> conv 5x5 -> + logit(bicubic(x_lr)) -> sigmoid         (N, 1, f h, f w) in [0, 1]

    PixelShuffle rearranges ``4c`` channels into a 2x larger image with ``c``
    channels (learned upsampling). The network predicts a *correction* to the
    bicubic image (in logit space), so an untrained generator already starts
    near the baseline and training only has to add the detail.
    """

    def __init__(self, factor: int = 2, channels: int = 32, blocks: int = 3):
        super().__init__()
        self.factor = _check_factor(factor)
        c = check_int(channels, "channels")
        blocks = check_int(blocks, "blocks", minimum=0)
        self.head = nn.Sequential(nn.Conv2d(1, c, 5, padding=2), nn.PReLU(c))
        self.blocks = nn.Sequential(*[ResidualBlock(c) for _ in range(blocks)])
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(self.factor))):
            ups += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(c)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(c, 1, 5, padding=2)
        nn.init.zeros_(self.tail.weight)  # start exactly at the bicubic image
        nn.init.zeros_(self.tail.bias)

    def forward(self, x_lr: torch.Tensor) -> torch.Tensor:
        if x_lr.dim() != 4 or x_lr.shape[1] != 1:
            raise CourseKitError(f"SRGenerator takes low-resolution images (N, 1, h, w), got {tuple(x_lr.shape)}.")
        h = self.head(x_lr)
        h = h + self.blocks(h)
        correction = self.tail(self.upsample(h))
        base = F.interpolate(x_lr, scale_factor=self.factor, mode="bicubic", align_corners=False)
        base = base.clamp(1e-3, 1 - 1e-3)
        return torch.sigmoid(torch.logit(base) + correction)


def srgan_discriminator(channels: int = 32) -> nn.Module:
    """The SRGAN discriminator: :class:`coursekit.gan.DCGANDiscriminator` on 28x28 images -> logits ``(N,)``.

    Layer norm instead of batch norm: real and super-resolved batches are judged
    separately, and batch statistics would let D tell them apart by the batch alone.
    """
    from coursekit.gan import DCGANDiscriminator

    return DCGANDiscriminator(check_int(channels, "channels"), norm="layer")


# ====================================================================== losses

def content_loss(sr: torch.Tensor, hr: torch.Tensor, feature_net: nn.Module | None = None,
                 feature_weight: float = 1.0) -> torch.Tensor:
    """The content loss ``mean (sr - hr)^2 [+ feature_weight * mean (phi(sr) - phi(hr))^2]`` (a scalar).

    sr, hr: ``(N, C, H, W)``. ``feature_net`` = phi (optional), e.g. the convolutional
    part of a trained digit classifier: the "perceptual" loss of SRGAN (they use VGG).
    """
    check_same_shape(sr, hr, "sr", "hr")
    loss = F.mse_loss(sr, hr)
    if feature_net is not None:
        feature_weight = check_nonnegative(feature_weight, "feature_weight")
        loss = loss + feature_weight * F.mse_loss(feature_net(sr), feature_net(hr).detach())
    return loss


def srgan_generator_loss(fake_logits: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor, *,
                         adversarial_weight: float = 1e-2, feature_net: nn.Module | None = None,
                         feature_weight: float = 1.0) -> torch.Tensor:
    """``L_G = content(sr, hr) + w_adv * (-mean log D(sr))`` (non-saturating, from :mod:`coursekit.gan`)."""
    w = check_nonnegative(adversarial_weight, "adversarial_weight")
    loss = content_loss(sr, hr, feature_net, feature_weight)
    if w:
        loss = loss + w * non_saturating_generator_loss(fake_logits)
    return loss


# ====================================================================== training

def train_srgan(generator: SRGenerator, discriminator: nn.Module | None, hr_images: torch.Tensor, *,
                steps: int = 500, batch_size: int = 32, lr: float = 1e-3, lr_d: float = 2e-4,
                adversarial_weight: float = 1e-2, feature_net: nn.Module | None = None,
                feature_weight: float = 1.0, seed: int = 0, progress: bool = True) -> dict[str, list[float]]:
    """Train a super-resolution generator on high-resolution images ``(N, 1, 28, 28)`` in [0, 1].

    Each step draws a batch ``x_hr``, makes ``x_lr = downsample(x_hr, generator.factor)`` and
    ``x_sr = G(x_lr)``; updates D (if ``adversarial_weight > 0``) on real ``x_hr`` vs ``x_sr``
    (:func:`coursekit.gan.discriminator_step`); then updates G on :func:`srgan_generator_loss`
    (:func:`coursekit.gan.generator_step` with the content loss as ``extra_loss``).
    ``adversarial_weight=0`` (or ``discriminator=None``) trains the content-only "SRResNet". Returns ``{"step", "content", "adversarial", "d_loss",
    "psnr" (batch mean, dB), "seconds"}``; the models end in eval mode.
    """
    check_images(hr_images, "hr_images", channels=1)
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    lr, lr_d = check_positive_float(lr, "lr"), check_positive_float(lr_d, "lr_d")
    w_adv = check_nonnegative(adversarial_weight, "adversarial_weight")
    if discriminator is None:
        w_adv = 0.0
    rng = torch.Generator().manual_seed(seed)
    sampler = BatchSampler(len(hr_images), batch_size, rng)
    opt_g = adam(generator.parameters(), lr)
    opt_d = adam(discriminator.parameters(), lr_d) if w_adv else None
    device = device_of(generator)
    history: dict[str, list[float]] = {"step": [], "content": [], "adversarial": [], "d_loss": [],
                                       "psnr": [], "seconds": []}
    models = [generator] + ([discriminator] if w_adv else [])
    modes = [m.training for m in ([feature_net] if feature_net is not None else [])]
    if feature_net is not None:
        feature_net.eval()
    start = time.perf_counter()
    for m in models:
        m.train()
    try:
        for step in tqdm(range(1, steps + 1), desc="SRGAN" if w_adv else "SRResNet", disable=not progress):
            hr = hr_images[sampler.next()].to(device)
            lr_batch = F.avg_pool2d(hr, generator.factor)
            d_loss = float("nan")
            if w_adv:
                d_loss = discriminator_step(generator, discriminator, opt_d, hr, lr_batch)["d_loss"]
            terms = {}

            def content_term(sr):
                terms["content"] = content_loss(sr, hr, feature_net, feature_weight)
                terms["sr"] = sr.detach()
                return terms["content"]

            if w_adv:
                adversarial = generator_step(generator, discriminator, opt_g, lr_batch, extra_loss=content_term,
                                             adversarial_weight=w_adv)["adversarial"]
            else:  # SRResNet: the content loss alone, no discriminator
                loss = content_term(generator(lr_batch))
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                opt_g.step()
                adversarial = 0.0
            content, sr = terms["content"], terms["sr"]
            history["step"].append(step)
            history["content"].append(content.item())
            history["adversarial"].append(adversarial)
            history["d_loss"].append(d_loss)
            history["psnr"].append(float(psnr(sr.detach().clamp(0, 1), hr).mean()))
            history["seconds"].append(time.perf_counter() - start)
    finally:
        for m in models:
            m.eval()
        if feature_net is not None:
            feature_net.train(modes[0])
        if discriminator is not None:
            discriminator.zero_grad(set_to_none=True)
    return history


@torch.no_grad()
def super_resolve(generator: nn.Module, x_lr: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``G(x_lr)`` in eval mode, batched: ``(N, 1, h, w)`` -> ``(N, 1, f h, f w)`` on the CPU."""
    check_images(x_lr, "x_lr", channels=1)
    device = device_of(generator)
    with eval_mode(generator):
        return torch.cat([generator(x_lr[i:i + batch_size].to(device)).cpu()
                          for i in range(0, len(x_lr), batch_size)])


def evaluate_superres(generators: dict[str, nn.Module], hr_images: torch.Tensor,
                      factor: int = 2) -> dict[str, dict[str, float]]:
    """Mean PSNR and SSIM against the high-resolution images, bicubic first, then each generator.

    ``generators``: name -> model (each must upscale by ``factor``). Returns
    ``{"bicubic": {"psnr": dB, "ssim": s}, name: {...}, ...}``.
    """
    check_images(hr_images, "hr_images", channels=1)
    factor = _check_factor(factor)
    x_lr = downsample(hr_images, factor)
    outputs = {"bicubic": bicubic_upsample(x_lr, factor)}
    for name, g in generators.items():
        if getattr(g, "factor", factor) != factor:
            raise CourseKitError(f"Generator {name!r} upscales by {g.factor}, not by {factor}.")
        outputs[name] = super_resolve(g, x_lr)
    return {name: {"psnr": float(psnr(out, hr_images).mean()), "ssim": float(ssim(out, hr_images).mean())}
            for name, out in outputs.items()}
