"""Registry entries for lecture 06 (GAN applications): cycle-consistency loss, PSNR, nearest-neighbour
distances (the memorisation check for private synthetic data).

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

import torch

from coursekit.exercises import probes
from coursekit.exercises.judge.exercise import Exercise, Misconception

ASSIGNMENT = "06_gan_applications"
EXERCISES: list[Exercise] = []


# ---- 06 exercise 1: the cycle-consistency loss

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
    title="Exercise 1 (the cycle-consistency loss)", reference=_cycle_ref, cases=_cycle_cases,
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


# ---- 06 exercise 2: PSNR

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
    title="Exercise 2 (PSNR)", reference=_psnr_ref, cases=_psnr_cases,
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


# ---- 06 exercise 3: nearest-neighbour distances

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
    title="Exercise 3 (distance to the nearest training image)", reference=_nn_ref, cases=_nn_cases,
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
