"""Registry entries for lecture 06 (GAN applications): one pix2pix training step, the cycle-consistency
loss, PSNR, nearest-neighbour distances (the memorisation check for private synthetic data).

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

import torch

from coursekit.exercises import harnesses, probes
from coursekit.exercises.judge.exercise import Answer, Exercise, Misconception, Probe, Property

ASSIGNMENT = "06_gan_applications"
EXERCISES: list[Exercise] = []


# ---- 06 exercise 1: one pix2pix training step (the deep one)

def _pix2pix_ref(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
    from coursekit.applications import translation

    stats = translation.pix2pix_step(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight)
    return {"d_loss": stats["d_loss"], "g_loss": stats["g_loss"]}


def _pix2pix_cases():
    return [(0, 100.0), (1, 10.0), (2, 0.0)]


def _pix2pix_wrong(*, l1="l1", weight_on="l1", g_cost="non_saturating", detach=True, order="d_first",
                   zero_grad=True, pair="candidate first", reduce="mean"):
    """A pix2pix step with one thing done the way students get it wrong."""
    import torch.nn.functional as F

    def bce(logits, label):
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))

    def judge(discriminator, candidate, source):
        return discriminator(candidate, source) if pair == "candidate first" else discriminator(source, candidate)

    def wrong(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
        def d_update():
            fake = generator(source)
            d_loss = bce(judge(discriminator, target, source), 1.0) + bce(
                judge(discriminator, fake.detach() if detach else fake, source), 0.0)
            if zero_grad:
                d_optimizer.zero_grad()
            d_loss.backward()
            d_optimizer.step()
            return d_loss.item()

        def g_update():
            fake = generator(source)
            logits = judge(discriminator, fake, source)
            adversarial = bce(logits, 1.0) if g_cost == "non_saturating" else -bce(logits, 0.0)
            difference = (fake - target).abs() if l1 == "l1" else (fake - target) ** 2
            distance = difference.mean() if reduce == "mean" else difference.sum()
            if l1 is None:
                g_loss = adversarial
            elif weight_on == "l1":
                g_loss = adversarial + l1_weight * distance
            else:
                g_loss = l1_weight * adversarial + distance
            if zero_grad:
                g_optimizer.zero_grad()
            g_loss.backward()
            g_optimizer.step()
            return g_loss.item()

        if order == "d_first":
            d_loss = d_update()
            g_loss = g_update()
        else:
            g_loss = g_update()
            d_loss = d_update()
        return {"d_loss": d_loss, "g_loss": g_loss}
    return wrong


def _pix2pix_passes_into_g(answer: Answer) -> float:
    return float(answer.on("case-0")[2 * harnesses.CALLS])      # backward passes reaching G per parameter and call


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex-pix2pix-step", function="my_pix2pix_step",
    title="Exercise 1 (one pix2pix training step)", reference=_pix2pix_ref, cases=_pix2pix_cases,
    misconceptions=[
        Misconception(name="fakes not detached", wrong=_pix2pix_wrong(detach=False), depth=0,
                      hint="In the discriminator's update G is held fixed: detach G's output there (fake.detach()), "
                      "otherwise D's loss sends gradients into G."),
        Misconception(name="generator first", wrong=_pix2pix_wrong(order="g_first"), depth=0,
                      hint="Update the discriminator FIRST, then the generator against the updated discriminator."),
        Misconception(name="no L1 term", wrong=_pix2pix_wrong(l1=None),
                      hint="The generator's loss has two terms: fool D, AND stay close to the target: add l1_weight "
                      "times the mean absolute difference between G(x) and y."),
        Misconception(name="squared error", wrong=_pix2pix_wrong(l1="l2"),
                      hint="pix2pix's reconstruction term is the L1 distance, the mean ABSOLUTE difference |G(x) - y|, "
                      "not a squared error (L1 blurs less)."),
        Misconception(name="weight on the adversarial term", wrong=_pix2pix_wrong(weight_on="adversarial"),
                      hint="l1_weight multiplies the L1 term, not the adversarial one: L_G = adversarial + l1_weight * "
                      "mean |G(x) - y|."),
        Misconception(name="L1 summed", wrong=_pix2pix_wrong(reduce="sum"),
                      hint="Average the absolute differences over every pixel of every image (a mean, not a sum)."),
        Misconception(name="saturating generator cost", wrong=_pix2pix_wrong(g_cost="minimax"),
                      hint="The generator's adversarial term is the NON-saturating one, -mean log D(x, G(x)) (fake pairs "
                      "labelled real), not mean log(1 - D(x, G(x)))."),
        Misconception(name="source and candidate swapped", wrong=_pix2pix_wrong(pair="source first"),
                      hint="The discriminator is called D(candidate, source): the target (or G's output) first, the "
                      "source image it should be a translation of second."),
        Misconception(name="gradients not cleared", wrong=_pix2pix_wrong(zero_grad=False),
                      hint="Clear each optimiser's gradients (zero_grad) before its backward(): otherwise gradients add up "
                      "from one step to the next."),
    ],
    hints=("Two updates, the discriminator first: D learns to tell real pairs (source, target) from fake pairs "
           "(source, G(source)) while G is held fixed; then G learns to fool the updated D while staying close to "
           "the target.",
           "D's loss: binary cross-entropy on its patch logits, real pairs labelled 1 and fake pairs 0, with G's "
           "output detached. G's loss: fake pairs labelled 1 (the non-saturating cost) through the updated D, plus "
           "l1_weight times the mean absolute difference to the target. Each update: zero_grad, backward, step with "
           "its own optimiser; return both losses as floats.",
           "def my_pix2pix_step(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):\n"
           "    fake = generator(source)\n"
           "    real_logits = discriminator(target, source)\n"
           "    fake_logits = discriminator(fake.detach(), source)\n"
           "    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))\n"
           "              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))\n"
           "    d_optimizer.zero_grad()\n"
           "    d_loss.backward()\n"
           "    d_optimizer.step()\n"
           "    fake_logits = discriminator(fake, source)\n"
           "    adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))\n"
           "    g_loss = adversarial + l1_weight * (fake - target).abs().mean()\n"
           "    g_optimizer.zero_grad()\n"
           "    g_loss.backward()\n"
           "    g_optimizer.step()\n"
           "    return {\"d_loss\": d_loss.item(), \"g_loss\": g_loss.item()}"),
    fallback="One discriminator update (BCE on real pairs (x, y) -> 1 and detached fake pairs (x, G(x)) -> 0), then one "
    "generator update on -mean log D(x, G(x)) + l1_weight * mean |G(x) - y| against the updated D; zero_grad before "
    "each backward.",
    forbidden=("coursekit.applications.translation.pix2pix_step", "coursekit.applications.translation.train_pix2pix",
               "coursekit.applications.translation.pix2pix_generator_loss",
               "coursekit.applications.translation.patch_discriminator_loss",
               "coursekit.gan.training.discriminator_step", "coursekit.gan.training.generator_step"),
    atol=1e-5, harness=harnesses.two_pix2pix_steps,
    properties=[Property(holds=lambda answer: _pix2pix_passes_into_g(answer) <= 1.0, depth=0,
                         message="In the discriminator's update G is held fixed: detach G's output there, so that "
                                 "only the generator's update sends gradients into G."),
                Property(holds=lambda answer: _pix2pix_passes_into_g(answer) >= 1.0,
                         message="No gradient reaches G in the generator's update: compute D(G(x), x) without "
                                 "detaching, so that the generator's loss can move G.")],
))


# ---- 06 exercise 2: the cycle-consistency loss

def _cycle_ref(x, x_reconstructed):
    return (x_reconstructed - x).abs().mean()


def _cycle_cases(seed: int = 0):
    x = torch.zeros(1, 1, 2, 2)
    r = x.clone()
    r[0, 0, 0, 0] = 0.5
    s = 1000 * seed                                      # seed: the per-submission probe seed
    return [(probes.rand(6 + s, 3, 1, 28, 28), probes.rand(7 + s, 3, 1, 28, 28)), (x, r),
            (probes.rand(8 + s, 2, 3, 5, 5), probes.rand(9 + s, 2, 3, 5, 5))]


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex1-cycle-loss", function="my_cycle_consistency_loss",
    title="Exercise 2 (the cycle-consistency loss)", reference=_cycle_ref, cases=_cycle_cases,
    misconceptions=[
        Misconception(name="squared error", wrong=lambda x, r: (r - x).pow(2).mean(),
                      hint="CycleGAN's round trip uses the L1 error, the mean ABSOLUTE difference, not a squared error."),
        Misconception(name="sum", wrong=lambda x, r: (r - x).abs().sum(),
                      hint="Average over every pixel of every image (a mean), not a sum: the loss must not grow with the "
                      "image size."),
        Misconception(name="signed difference", wrong=lambda x, r: (r - x).mean(),
                      hint="Take the ABSOLUTE value of each difference before averaging: positive and negative errors must "
                      "not cancel."),
        Misconception(name="root mean square", wrong=lambda x, r: (r - x).pow(2).mean().sqrt(),
                      hint="That is the root-mean-square error: CycleGAN uses the plain mean absolute difference (L1)."),
    ],
    hints=("The round trip x -> G(x) -> F(G(x)) should give x back: penalise how far x_reconstructed is from x, "
           "pixel by pixel.",
           "The L1 error: the absolute value of each pixel's difference, averaged over every pixel of every image.",
           "def my_cycle_consistency_loss(x, x_reconstructed):\n"
           "    return (x_reconstructed - x).abs().mean()"),
    fallback="The cycle-consistency loss is the mean absolute difference |F(G(x)) - x| over all pixels (L1).",
    forbidden=("coursekit.applications.translation.cycle_consistency_loss",
               "coursekit.applications.translation.l1_distance"),
    returns="scalar", atol=1e-6, gradient=True,
))


# ---- 06 exercise 3: PSNR

def _psnr_ref(x, y):
    mse = ((x - y) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


def _psnr_cases(seed: int = 0):
    from coursekit.applications import superres

    hr = probes.digits(16)[0][:6]
    low = superres.bicubic_upsample(superres.downsample(hr, 2), 2)
    return [(low, hr), (torch.full((2, 1, 8, 8), 0.6), torch.full((2, 1, 8, 8), 0.5)),
            (probes.rand(3 + 1000 * seed, 4, 3, 6, 6), probes.rand(4 + 1000 * seed, 4, 3, 6, 6))]


def _mse(x, y):
    return ((x - y) ** 2).flatten(1).mean(1)


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex2-psnr", function="my_psnr",
    title="Exercise 3 (PSNR)", reference=_psnr_ref, cases=_psnr_cases,
    misconceptions=[
        Misconception(name="20 log10 of the MSE", wrong=lambda x, y: 20 * torch.log10(1.0 / _mse(x, y)),
                      hint="With the MEAN SQUARED error the factor is 10: PSNR = 10 log10(1 / MSE) (20 goes with the "
                      "root of the MSE)."),
        Misconception(name="natural log", wrong=lambda x, y: 10 * torch.log(1.0 / _mse(x, y)),
                      hint="Decibels use the base-10 logarithm: torch.log10, not torch.log."),
        Misconception(name="sign", wrong=lambda x, y: 10 * torch.log10(_mse(x, y)),
                      hint="The sign is flipped: PSNR = 10 log10(peak^2 / MSE) is HIGHER for closer images."),
        Misconception(name="root of the MSE", wrong=lambda x, y: 10 * torch.log10(1.0 / _mse(x, y).sqrt()),
                      hint="Use the mean squared error itself in 10 log10(1 / MSE), not its square root."),
        Misconception(name="peak 255", wrong=lambda x, y: 10 * torch.log10(255.0 ** 2 / _mse(x, y)),
                      hint="Images are in [0, 1] in this course: the peak value is 1, not 255."),
    ],
    hints=("PSNR compares the largest possible signal (the peak, 1 for images in [0, 1]) with the mean squared "
           "error, in decibels, one number per image.",
           "First one mean squared error per image (flatten each image's pixels, average over dim 1), then "
           "decibels: 10 log10(peak^2 / MSE) with peak 1.",
           "def my_psnr(x, y):\n"
           "    mse = ((x - y) ** 2).flatten(1).mean(1)\n"
           "    return 10 * torch.log10(1.0 / mse)"),
    fallback="PSNR is in decibels: 10 log10(peak^2 / MSE) with peak 1 for images in [0, 1], the MSE taken over each "
    "image's own pixels (one value per image).",
    forbidden=("coursekit.applications.superres.psnr", "torchmetrics.functional.image.psnr", "torchmetrics.image.psnr",
               "skimage.metrics.simple_metrics", "kornia.metrics.psnr", "piq.psnr"),
    atol=1e-3, shape="shape (N,): one PSNR per image",
))


# ---- 06 exercise 4: nearest-neighbour distances

def _pairwise(queries, references, p=2.0):
    # exact (no matrix-product shortcut, double): a query that is also a reference is at distance 0
    return torch.cdist(queries.flatten(1).double(), references.flatten(1).double(), p=p,
                       compute_mode="donot_use_mm_for_euclid_dist")


def _nn_ref(queries, references):
    return _pairwise(queries, references).min(dim=1).values.float()


def _nn_cases():
    q = torch.zeros(1, 1, 2, 2)
    r = torch.stack([torch.full((1, 2, 2), 0.5), torch.ones(1, 2, 2)])
    x, _ = probes.digits(120)
    return [(q, r), (x[:30], x[30:120]), (x[:5], x[:40]), (probes.rand(5, 7, 1, 4, 4), probes.rand(6, 11, 1, 4, 4))]


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex3-nearest-neighbour", function="my_nearest_neighbour_distances",
    title="Exercise 4 (distance to the nearest training image)", reference=_nn_ref, cases=_nn_cases,
    misconceptions=[
        Misconception(name="squared distance", wrong=lambda q, r: (_pairwise(q, r) ** 2).min(dim=1).values.float(),
                      hint="Return the Euclidean distance ||q - r||_2 itself, not its square."),
        Misconception(name="farthest", wrong=lambda q, r: _pairwise(q, r).max(dim=1).values.float(),
                      hint="The NEAREST training image: take the minimum over the references, not the maximum."),
        Misconception(name="L1 distance", wrong=lambda q, r: _pairwise(q, r, p=1.0).min(dim=1).values.float(),
                      hint="Use the Euclidean (L2) distance, sqrt(sum (q - r)^2), not the sum of absolute differences."),
        Misconception(name="mean distance", wrong=lambda q, r: _pairwise(q, r).mean(dim=1).float(),
                      hint="Memorisation shows in the distance to the CLOSEST training image: take the minimum, not the "
                      "average over the references."),
    ],
    hints=("Flatten each image to a vector; for each query, the Euclidean distance to every reference; keep "
           "the smallest.",
           "torch.cdist on the flattened images gives the (M, R) matrix of Euclidean distances; for each query "
           "(row) keep the smallest entry.",
           "def my_nearest_neighbour_distances(queries, references):\n"
           "    d = torch.cdist(queries.flatten(1), references.flatten(1))\n"
           "    return d.min(dim=1).values"),
    fallback="For each query: min over the references of the Euclidean distance ||q - r||_2 (pixels flattened), "
    "one value per query.",
    forbidden=("coursekit.applications.private.nearest_neighbour_distances",
               "coursekit.applications.private.nearest_neighbours", "sklearn.neighbors", "faiss"),
    # float32 torch.cdist (matrix-product form) is off by up to ~1e-2 at distance 0 (more on other BLAS);
    # true nearest distances between digits are about 3 or more, and wrong answers miss by far more
    atol=0.05, shape="shape (M,): one distance per query",
))
