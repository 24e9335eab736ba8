"""Image-to-image translation: pix2pix (paired) and CycleGAN (unpaired) on MNIST domains.

A *domain* is a style of image. We build domains offline from MNIST with simple
image operations, so that the true translation is known and can be measured:

- ``"thicken"``: grey-scale dilation, ``T(x)(p) = max_{|q - p|_inf <= r} x(q)``
  (a ``(2r+1) x (2r+1)`` max-pool with stride 1): bolder strokes;
- ``"invert"``: ``T(x) = 1 - x``: white digits on black become black on white;
- ``"edges"``: the morphological gradient ``T(x) = dilate(x) - erode(x)``: the
  outline of each stroke.

**pix2pix** (Isola et al. 2017) learns ``G: source -> target`` from *pairs*
``(x, T(x))`` with a conditional discriminator that sees ``(source, candidate)``
and judges every patch::

    L_G = -mean log D(x, G(x))  +  lambda * mean |G(x) - y|          (non-saturating + L1)
    L_D = -mean log D(x, y) - mean log(1 - D(x, G(x)))

One training step of pix2pix is :func:`pix2pix_step` (D first, then G against the updated D);
:func:`train_pix2pix` runs it, or a step of your own with the same signature.

**CycleGAN** (Zhu et al. 2017) has no pairs, only two piles of images (the
horse-to-zebra setting). Two generators ``G: A -> B`` and ``F: B -> A`` are
trained so that their outputs look like the other domain (two discriminators)
and so that a round trip returns the input::

    L_cyc = mean |F(G(a)) - a| + mean |G(F(b)) - b|

Shapes: images ``(N, 1, 28, 28)`` in [0, 1]; a patch discriminator returns
logits ``(N, 7, 7)``, one per overlapping patch.
"""
from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from coursekit.applications._common import (
    BatchSampler, adam, check_positive_float, check_same_shape, device_of, eval_mode,
)
from coursekit.checks import CourseKitError, check_int, check_images, check_nonnegative
from coursekit.gan import (
    discriminator_loss, discriminator_step, generator_step, non_saturating_generator_loss,
)

DOMAIN_KINDS = ("thicken", "invert", "edges")


# ====================================================================== domains

def dilate(x: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Grey-scale dilation: the max over a ``(2r+1) x (2r+1)`` square. ``(N, C, H, W)`` -> same."""
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)


def erode(x: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Grey-scale erosion: the min over a ``(2r+1) x (2r+1)`` square, ``-dilate(-x)``."""
    return -F.max_pool2d(-x, 2 * radius + 1, stride=1, padding=radius)


def translate_domain(x: torch.Tensor, kind: str = "thicken", *, radius: int = 1) -> torch.Tensor:
    """The true translation ``T(x)`` of a domain (see the module docstring). Same shape, in [0, 1]."""
    check_images(x)
    if kind not in DOMAIN_KINDS:
        raise CourseKitError(f"Unknown domain kind {kind!r}. Available: {', '.join(DOMAIN_KINDS)}.")
    radius = check_int(radius, "radius")
    with torch.no_grad():
        if kind == "thicken":
            return dilate(x, radius)
        if kind == "invert":
            return 1.0 - x
        return (dilate(x, radius) - erode(x, radius)).clamp(0, 1)


def paired_domains(x: torch.Tensor, kind: str = "thicken", *, radius: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired training data for pix2pix: ``(source, target) = (x, T(x))``, both ``(N, C, H, W)``."""
    target = translate_domain(x, kind, radius=radius)
    return x.clone(), target


def unpaired_domains(x: torch.Tensor, kind: str = "thicken", *, seed: int = 0,
                     radius: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpaired data for CycleGAN: two *disjoint* halves of ``x``, one per domain.

    The images are shuffled (``seed``) and split: domain A holds the first half as
    is, domain B holds ``T(.)`` of the *other* half, so no image of B is the
    translation of an image of A: like photos of horses and of (different) zebras.
    Returns ``(domain_a, domain_b)``, each ``(N // 2, C, H, W)``.
    """
    check_images(x)
    if len(x) < 2:
        raise CourseKitError(f"Need at least 2 images to split into two domains, got {len(x)}.")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    half = len(x) // 2
    domain_a = x[order[:half]].clone()
    domain_b = translate_domain(x[order[half:2 * half]], kind, radius=radius)
    return domain_a, domain_b


# ====================================================================== models

class UNetGenerator(nn.Module):
    """A tiny U-Net for 28x28 images (the pix2pix generator, scaled down)::

        x (N, 1, 28, 28) -> conv 3x3              -> e1 (N, c, 28, 28)
                         -> conv 4x4/2, norm       -> e2 (N, 2c, 14, 14)
                         -> conv 4x4/2, norm       -> e3 (N, 4c, 7, 7)     bottleneck
        e3 -> convT 4x4/2, norm -> (N, 2c, 14, 14) ++ e2   (skip connection)
           -> convT 4x4/2, norm -> (N, c, 28, 28)  ++ e1   (skip connection)
           -> conv 3x3 -> sigmoid -> (N, 1, 28, 28) in [0, 1]

    The skip connections carry the fine detail (where the strokes are) past the
    bottleneck, so the network only has to learn *how to restyle* them.
    Instance norm (no running statistics): train and eval mode agree.
    """

    def __init__(self, channels: int = 16, in_channels: int = 1, out_channels: int = 1):
        super().__init__()
        c = check_int(channels, "channels")
        self.in_channels = in_channels
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.enc1 = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1), act())
        self.enc2 = nn.Sequential(nn.Conv2d(c, 2 * c, 4, 2, 1), nn.InstanceNorm2d(2 * c, affine=True), act())
        self.enc3 = nn.Sequential(nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.InstanceNorm2d(4 * c, affine=True), act())
        self.dec2 = nn.Sequential(nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1),
                                  nn.InstanceNorm2d(2 * c, affine=True), nn.ReLU())
        self.dec1 = nn.Sequential(nn.ConvTranspose2d(4 * c, c, 4, 2, 1),
                                  nn.InstanceNorm2d(c, affine=True), nn.ReLU())
        self.out = nn.Sequential(nn.Conv2d(2 * c, out_channels, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise CourseKitError(
                f"UNetGenerator takes images (N, {self.in_channels}, H, W) with H, W divisible by 4, "
                f"got {tuple(x.shape)}."
            )
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d2 = self.dec2(e3)
        d1 = self.dec1(torch.cat([d2, e2], 1))
        return self.out(torch.cat([d1, e1], 1))


class PatchDiscriminator(nn.Module):
    """A PatchGAN discriminator: one logit per overlapping patch, ``(N, 7, 7)`` for 28x28 inputs::

        [candidate (, source)] -> conv 4x4/2 -> LeakyReLU             (N, c, 14, 14)
                               -> conv 4x4/2 -> norm, LeakyReLU        (N, 2c, 7, 7)
                               -> conv 3x3   -> logits                 (N, 7, 7)

    Each logit sees a ~16x16 window: D judges local texture (is this stroke
    thick and sharp?) and leaves global agreement with the target to the L1 term.
    ``conditional=True`` (pix2pix): ``D(candidate, source)`` sees the pair, stacked
    as channels, and asks "is this a real translation *of this source*?".
    ``conditional=False`` (CycleGAN): ``D(candidate)`` only asks "is this from the domain?".
    """

    def __init__(self, channels: int = 16, *, in_channels: int = 1, conditional: bool = True):
        super().__init__()
        c = check_int(channels, "channels")
        self.in_channels = in_channels
        self.conditional = bool(conditional)
        stacked = 2 * in_channels if conditional else in_channels
        self.net = nn.Sequential(
            nn.Conv2d(stacked, c, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.InstanceNorm2d(2 * c, affine=True), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 1, 3, padding=1),
        )

    def forward(self, candidate: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        if candidate.dim() != 4 or candidate.shape[1] != self.in_channels:
            raise CourseKitError(
                f"candidate must be images (N, {self.in_channels}, H, W), got {tuple(candidate.shape)}.")
        if self.conditional:
            if source is None:
                raise CourseKitError("This PatchDiscriminator is conditional (pix2pix): call D(candidate, source).")
            check_same_shape(candidate, source, "candidate", "source")
            candidate = torch.cat([candidate, source], 1)
        elif source is not None:
            raise CourseKitError("This PatchDiscriminator is unconditional (CycleGAN): call D(candidate).")
        return self.net(candidate).squeeze(1)


class CycleGAN(nn.Module):
    """The two CycleGAN generators in one module: ``g_ab: A -> B`` and ``g_ba: B -> A``.

    ``forward(a)`` is ``g_ab(a)`` (the direction the course uses); the zoo ships both.
    """

    def __init__(self, channels: int = 16):
        super().__init__()
        self.g_ab = UNetGenerator(channels)
        self.g_ba = UNetGenerator(channels)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.g_ab(a)


# ====================================================================== losses

def l1_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean |a - b|`` over all elements (a scalar)."""
    check_same_shape(a, b, "a", "b")
    return (a - b).abs().mean()


def pix2pix_generator_loss(fake_logits: torch.Tensor, fake: torch.Tensor, target: torch.Tensor,
                           l1_weight: float = 100.0) -> torch.Tensor:
    """The pix2pix generator loss: fool the patch discriminator *and* stay close to the target::

        L_G = -mean_{i, patches} log D(x_i, G(x_i))  +  lambda * mean |G(x) - y|

    fake_logits: the discriminator's logits on ``(source, G(source))``, any shape
    ``(N, ...)`` (every patch counts once); fake, target: ``(N, C, H, W)``;
    ``l1_weight`` = lambda >= 0 (100 in the paper). Returns a scalar.
    """
    check_same_shape(fake, target, "fake", "target")
    lam = check_nonnegative(l1_weight, "l1_weight")
    adversarial = non_saturating_generator_loss(fake_logits.reshape(-1))
    return adversarial + lam * l1_distance(fake, target)


def patch_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss over all patches: ``-mean log D(real) - mean log(1 - D(fake))``."""
    return discriminator_loss(real_logits.reshape(-1), fake_logits.reshape(-1))


def cycle_consistency_loss(x: torch.Tensor, x_reconstructed: torch.Tensor) -> torch.Tensor:
    """The cycle-consistency loss of one round trip: ``mean |F(G(x)) - x|`` (an L1 distance).

    x, x_reconstructed: ``(N, C, H, W)``. Returns a scalar >= 0; 0 iff the round
    trip gives back exactly the input.
    """
    check_same_shape(x, x_reconstructed, "x", "x_reconstructed")
    return (x_reconstructed - x).abs().mean()


# ====================================================================== training

def patch_logits(discriminator: PatchDiscriminator, source: torch.Tensor | None = None):
    """The patch discriminator as :mod:`coursekit.gan`'s step functions see it: ``candidate -> (N * P,)``.

    Every one of the ``P`` patch logits counts as one example of the GAN losses (so the
    losses average over images *and* patches); ``source`` (pix2pix) is the batch of
    source images that a conditional discriminator sees beside each candidate.
    """
    if source is None:
        return lambda candidate: discriminator(candidate).reshape(-1)
    return lambda candidate: discriminator(candidate, source).reshape(-1)


def _snapshotter(generator: nn.Module, history: dict, every: int, inputs: torch.Tensor | None):
    """A function ``snapshot(step)`` that stores ``G(inputs)`` in the history every ``every`` steps."""
    every = check_int(every, "snapshot_every", minimum=0)
    if every and inputs is None:
        raise CourseKitError("snapshot_every > 0 needs snapshot_inputs: the images to translate at each snapshot.")
    if inputs is not None:
        check_images(inputs, "snapshot_inputs")

    def snapshot(step: int) -> None:
        if every and step % every == 0:
            history["snapshots"].append(translate(generator, inputs))
            history["snapshot_steps"].append(step)

    return snapshot


def pix2pix_step(generator: nn.Module, discriminator: PatchDiscriminator, g_optimizer: torch.optim.Optimizer,
                 d_optimizer: torch.optim.Optimizer, source: torch.Tensor, target: torch.Tensor,
                 l1_weight: float = 100.0) -> dict[str, float]:
    """One pix2pix training step on a batch of pairs ``(source, target)``, both ``(N, C, H, W)``.

    First the discriminator, with G held fixed (:func:`coursekit.gan.discriminator_step`): real pairs
    ``(x, y)`` against fake pairs ``(x, G(x))``, every patch's logit one example::

        L_D = -mean log D(x, y) - mean log(1 - D(x, G(x)))

    then the generator against the updated D (:func:`coursekit.gan.generator_step`, the L1 term as its
    ``extra_loss``): :func:`pix2pix_generator_loss`, ``-mean log D(x, G(x)) + lambda * mean |G(x) - y|``.
    Returns ``{"d_loss", "g_loss", "adversarial", "l1"}`` (floats).
    """
    lam = check_nonnegative(l1_weight, "l1_weight")
    d_of_pair = patch_logits(discriminator, source)       # G's "noise" is the source image itself
    d_stats = discriminator_step(generator, d_of_pair, d_optimizer, target, source)
    l1 = {}

    def weighted_l1(fake):  # pix2pix_generator_loss = the adversarial term + this
        l1["value"] = l1_distance(fake, target)
        return lam * l1["value"]

    g_stats = generator_step(generator, d_of_pair, g_optimizer, source, extra_loss=weighted_l1)
    return {"d_loss": d_stats["d_loss"], "g_loss": g_stats["g_loss"], "adversarial": g_stats["adversarial"],
            "l1": l1["value"].item()}


def train_pix2pix(generator: nn.Module, discriminator: PatchDiscriminator, source: torch.Tensor,
                  target: torch.Tensor, *, steps: int = 500, batch_size: int = 32, lr: float = 2e-4,
                  l1_weight: float = 100.0, seed: int = 0, progress: bool = True,
                  snapshot_every: int = 0, snapshot_inputs: torch.Tensor | None = None,
                  step: Callable = pix2pix_step) -> dict[str, list]:
    """Train pix2pix on pairs ``(source, target)``, both ``(N, C, H, W)`` in [0, 1].

    Each training step is ``step(generator, discriminator, g_optimizer, d_optimizer, x, y, l1_weight)``
    on a batch (:func:`pix2pix_step`, or yours: it returns at least ``{"d_loss", "g_loss"}``), with
    Adam (0.5, 0.999) for both. Returns the history ``{"step", "d_loss", "g_loss", "l1", "seconds",
    "snapshots", "snapshot_steps"}`` (``l1``: ``mean |G(x) - y|`` of the batch, as the step saw it or,
    for a step that does not say, just after it); every ``snapshot_every`` steps (0: never) the
    generator's outputs on ``snapshot_inputs`` (CPU tensors; step 0 = untrained).
    Both models end in eval mode.
    """
    check_images(source, "source")
    check_images(target, "target")
    check_same_shape(source, target, "source", "target")
    if not getattr(discriminator, "conditional", False):
        raise CourseKitError("pix2pix needs a conditional PatchDiscriminator (it judges (source, output) pairs).")
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    lr = check_positive_float(lr, "lr")
    rng = torch.Generator().manual_seed(seed)
    sampler = BatchSampler(len(source), batch_size, rng)
    opt_g, opt_d = adam(generator.parameters(), lr), adam(discriminator.parameters(), lr)
    device = device_of(generator)
    history: dict[str, list] = {"step": [], "d_loss": [], "g_loss": [], "l1": [],
                                "seconds": [], "snapshots": [], "snapshot_steps": []}
    snapshot = _snapshotter(generator, history, snapshot_every, snapshot_inputs)
    snapshot(0)
    start = time.perf_counter()
    generator.train()
    discriminator.train()
    try:
        for number in tqdm(range(1, steps + 1), desc="pix2pix", disable=not progress):
            idx = sampler.next()
            x, y = source[idx].to(device), target[idx].to(device)
            stats = step(generator, discriminator, opt_g, opt_d, x, y, l1_weight)
            if "l1" not in stats:
                with torch.no_grad():
                    stats = {**stats, "l1": float(l1_distance(generator(x), y))}
            history["step"].append(number)
            for key in ("d_loss", "g_loss", "l1"):
                history[key].append(float(stats[key]))
            history["seconds"].append(time.perf_counter() - start)
            snapshot(number)
    finally:
        generator.eval()
        discriminator.eval()
    return history


def train_cyclegan(cyclegan: CycleGAN, d_a: PatchDiscriminator, d_b: PatchDiscriminator,
                   domain_a: torch.Tensor, domain_b: torch.Tensor, *, steps: int = 500,
                   batch_size: int = 32, lr: float = 2e-4, cycle_weight: float = 10.0,
                   identity_weight: float = 0.0, seed: int = 0, progress: bool = True,
                   snapshot_every: int = 0, snapshot_inputs: torch.Tensor | None = None) -> dict[str, list]:
    """Train CycleGAN on two unpaired piles of images, ``domain_a`` ``(N, C, H, W)`` and ``domain_b`` ``(M, C, H, W)``.

    Generator objective (G = ``cyclegan.g_ab``, F = ``cyclegan.g_ba``)::

        L = -mean log D_B(G(a)) - mean log D_A(F(b))                         adversarial
            + lambda_cyc * (mean |F(G(a)) - a| + mean |G(F(b)) - b|)         cycle consistency
            + lambda_id  * (mean |G(b) - b| + mean |F(a) - a|)               identity (optional)

    and each discriminator descends the usual :func:`coursekit.gan.discriminator_loss`
    (over patches). Each step updates the discriminators first, then both generators
    together (:func:`coursekit.gan.discriminator_step` / :func:`~coursekit.gan.generator_step`,
    the rest of the objective passed as ``extra_loss``). Returns ``{"step", "d_loss", "g_adversarial", "cycle", "seconds",
    "snapshots", "snapshot_steps"}`` (snapshots: ``G(snapshot_inputs)`` every ``snapshot_every``
    steps, as in :func:`train_pix2pix`); the models end in eval mode.
    """
    check_images(domain_a, "domain_a")
    check_images(domain_b, "domain_b")
    if domain_a.shape[1:] != domain_b.shape[1:]:
        raise CourseKitError("domain_a and domain_b must hold images of the same size and channels.")
    if getattr(d_a, "conditional", True) or getattr(d_b, "conditional", True):
        raise CourseKitError("CycleGAN needs unconditional PatchDiscriminators (conditional=False).")
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    lr = check_positive_float(lr, "lr")
    cycle_weight = check_nonnegative(cycle_weight, "cycle_weight")
    identity_weight = check_nonnegative(identity_weight, "identity_weight")
    rng = torch.Generator().manual_seed(seed)
    sample_a, sample_b = BatchSampler(len(domain_a), batch_size, rng), BatchSampler(len(domain_b), batch_size, rng)
    g, f = cyclegan.g_ab, cyclegan.g_ba
    opt_g = adam(cyclegan.parameters(), lr)
    opt_d = adam([*d_a.parameters(), *d_b.parameters()], lr)
    device = device_of(cyclegan)
    history: dict[str, list] = {"step": [], "d_loss": [], "g_adversarial": [], "cycle": [], "seconds": [],
                                "snapshots": [], "snapshot_steps": []}
    snapshot = _snapshotter(g, history, snapshot_every, snapshot_inputs)
    snapshot(0)
    start = time.perf_counter()
    for m in (cyclegan, d_a, d_b):
        m.train()
    try:
        for step in tqdm(range(1, steps + 1), desc="CycleGAN", disable=not progress):
            a, b = domain_a[sample_a.next()].to(device), domain_b[sample_b.next()].to(device)
            judge_a, judge_b = patch_logits(d_a), patch_logits(d_b)
            # discriminators: real images of their domain vs translations into it (one optimiser,
            # each step moves only the discriminator that received gradients)
            d_loss = (discriminator_step(g, judge_b, opt_d, b, a)["d_loss"]
                      + discriminator_step(f, judge_a, opt_d, a, b)["d_loss"])
            cycle_terms = {}

            def rest_of_objective(fake_b):
                # G's step descends "fool D_B"; the rest of the CycleGAN objective rides along:
                # fool D_A with F(b), and come back where you started (both round trips)
                fake_a = f(b)
                cycle_terms["adversarial_a"] = non_saturating_generator_loss(judge_a(fake_a))
                cycle_terms["cycle"] = cycle_consistency_loss(a, f(fake_b)) + cycle_consistency_loss(b, g(fake_a))
                loss = cycle_terms["adversarial_a"] + cycle_weight * cycle_terms["cycle"]
                if identity_weight:
                    loss = loss + identity_weight * (l1_distance(g(b), b) + l1_distance(f(a), a))
                return loss

            g_stats = generator_step(g, judge_b, opt_g, a, extra_loss=rest_of_objective)
            history["step"].append(step)
            history["d_loss"].append(d_loss)
            history["g_adversarial"].append(g_stats["adversarial"] + cycle_terms["adversarial_a"].item())
            history["cycle"].append(cycle_terms["cycle"].item())
            history["seconds"].append(time.perf_counter() - start)
            snapshot(step)
    finally:
        for m in (cyclegan, d_a, d_b):
            m.eval()
    return history


@torch.no_grad()
def translate(generator: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Apply a trained generator in eval mode: ``(N, C, H, W)`` in [0, 1] -> same shape, on the CPU."""
    check_images(x)
    device = device_of(generator)
    with eval_mode(generator):
        return torch.cat([generator(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def translation_error(generator: nn.Module, source: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """How far the translation lands from the true target, vs doing nothing.

    Returns ``{"l1_output": mean |G(x) - y|, "l1_source": mean |x - y|}``: a useful
    translator has ``l1_output`` well below ``l1_source``.
    """
    check_images(source, "source")
    check_images(target, "target")
    check_same_shape(source, target, "source", "target")
    output = translate(generator, source)
    return {"l1_output": float(l1_distance(output, target)), "l1_source": float(l1_distance(source, target))}
