"""Registry entries for lecture 06 (GAN applications): cycle-consistency loss, PSNR, nearest-neighbour
distances (the memorisation check for private synthetic data).

Imported at the bottom of :mod:`coursekit.exercises`; see that module for how answers are judged.
"""
from __future__ import annotations

import torch

from coursekit.exercises import Exercise, Misconception, _digits, register

ASSIGNMENT = "06_gan_applications"


def _rand(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ---- 06 exercise 1: the cycle-consistency loss

def _cycle_ref(x, x_reconstructed):
    return (x_reconstructed - x).abs().mean()


def _cycle_cases():
    x = torch.zeros(1, 1, 2, 2)
    r = x.clone()
    r[0, 0, 0, 0] = 0.5
    return [(_rand(6, 3, 1, 28, 28), _rand(7, 3, 1, 28, 28)), (x, r), (_rand(8, 2, 3, 5, 5), _rand(9, 2, 3, 5, 5))]


register(Exercise(
    ASSIGNMENT, "ex1-cycle-loss", "my_cycle_consistency_loss",
    "Exercise 1 (the cycle-consistency loss)", _cycle_ref, _cycle_cases,
    [
        Misconception("squared error", lambda x, r: (r - x).pow(2).mean(),
                      "CycleGAN's round trip uses the L1 error, the mean ABSOLUTE difference, not a squared error."),
        Misconception("sum", lambda x, r: (r - x).abs().sum(),
                      "Average over every pixel of every image (a mean), not a sum: the loss must not grow with the "
                      "image size."),
        Misconception("signed difference", lambda x, r: (r - x).mean(),
                      "Take the ABSOLUTE value of each difference before averaging: positive and negative errors must "
                      "not cancel."),
        Misconception("root mean square", lambda x, r: (r - x).pow(2).mean().sqrt(),
                      "That is the root-mean-square error: CycleGAN uses the plain mean absolute difference (L1)."),
    ],
    ("The round trip x -> G(x) -> F(G(x)) should give x back: penalise how far x_reconstructed is from x, "
     "pixel by pixel.",
     "The L1 error: the absolute value of each pixel's difference, averaged over every pixel of every image.",
     "def my_cycle_consistency_loss(x, x_reconstructed):\n"
     "    return (x_reconstructed - x).abs().mean()"),
    "The cycle-consistency loss is the mean absolute difference |F(G(x)) - x| over all pixels (L1).",
    forbidden=("coursekit.applications.translation.cycle_consistency_loss",
               "coursekit.applications.translation.l1_distance"),
    returns="scalar", atol=1e-6,
))


# ---- 06 exercise 2: PSNR

def _psnr_ref(x, y):
    mse = ((x - y) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


def _psnr_cases():
    from coursekit.applications import superres

    hr = _digits(16)[0][:6]
    low = superres.bicubic_upsample(superres.downsample(hr, 2), 2)
    return [(low, hr), (torch.full((2, 1, 8, 8), 0.6), torch.full((2, 1, 8, 8), 0.5)),
            (_rand(3, 4, 3, 6, 6), _rand(4, 4, 3, 6, 6))]


def _mse(x, y):
    return ((x - y) ** 2).flatten(1).mean(1)


register(Exercise(
    ASSIGNMENT, "ex2-psnr", "my_psnr",
    "Exercise 2 (PSNR)", _psnr_ref, _psnr_cases,
    [
        Misconception("20 log10 of the MSE", lambda x, y: 20 * torch.log10(1.0 / _mse(x, y)),
                      "With the MEAN SQUARED error the factor is 10: PSNR = 10 log10(1 / MSE) (20 goes with the "
                      "root of the MSE)."),
        Misconception("natural log", lambda x, y: 10 * torch.log(1.0 / _mse(x, y)),
                      "Decibels use the base-10 logarithm: torch.log10, not torch.log."),
        Misconception("sign", lambda x, y: 10 * torch.log10(_mse(x, y)),
                      "The sign is flipped: PSNR = 10 log10(peak^2 / MSE) is HIGHER for closer images."),
        Misconception("root of the MSE", lambda x, y: 10 * torch.log10(1.0 / _mse(x, y).sqrt()),
                      "Use the mean squared error itself in 10 log10(1 / MSE), not its square root."),
        Misconception("peak 255", lambda x, y: 10 * torch.log10(255.0 ** 2 / _mse(x, y)),
                      "Images are in [0, 1] in this course: the peak value is 1, not 255."),
    ],
    ("PSNR compares the largest possible signal (the peak, 1 for images in [0, 1]) with the mean squared "
     "error, in decibels, one number per image.",
     "First one mean squared error per image (flatten each image's pixels, average over dim 1), then "
     "decibels: 10 log10(peak^2 / MSE) with peak 1.",
     "def my_psnr(x, y):\n"
     "    mse = ((x - y) ** 2).flatten(1).mean(1)\n"
     "    return 10 * torch.log10(1.0 / mse)"),
    "PSNR is in decibels: 10 log10(peak^2 / MSE) with peak 1 for images in [0, 1], the MSE taken over each "
    "image's own pixels (one value per image).",
    forbidden=("coursekit.applications.superres.psnr",),
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
    x, _ = _digits(120)
    return [(q, r), (x[:30], x[30:120]), (x[:5], x[:40]), (_rand(5, 7, 1, 4, 4), _rand(6, 11, 1, 4, 4))]


register(Exercise(
    ASSIGNMENT, "ex3-nearest-neighbour", "my_nearest_neighbour_distances",
    "Exercise 3 (distance to the nearest training image)", _nn_ref, _nn_cases,
    [
        Misconception("squared distance", lambda q, r: (_pairwise(q, r) ** 2).min(dim=1).values.float(),
                      "Return the Euclidean distance ||q - r||_2 itself, not its square."),
        Misconception("farthest", lambda q, r: _pairwise(q, r).max(dim=1).values.float(),
                      "The NEAREST training image: take the minimum over the references, not the maximum."),
        Misconception("L1 distance", lambda q, r: _pairwise(q, r, p=1.0).min(dim=1).values.float(),
                      "Use the Euclidean (L2) distance, sqrt(sum (q - r)^2), not the sum of absolute differences."),
        Misconception("mean distance", lambda q, r: _pairwise(q, r).mean(dim=1).float(),
                      "Memorisation shows in the distance to the CLOSEST training image: take the minimum, not the "
                      "average over the references."),
    ],
    ("Flatten each image to a vector; for each query, the Euclidean distance to every reference; keep "
     "the smallest.",
     "torch.cdist on the flattened images gives the (M, R) matrix of Euclidean distances; for each query "
     "(row) keep the smallest entry.",
     "def my_nearest_neighbour_distances(queries, references):\n"
     "    d = torch.cdist(queries.flatten(1), references.flatten(1))\n"
     "    return d.min(dim=1).values"),
    "For each query: min over the references of the Euclidean distance ||q - r||_2 (pixels flattened), "
    "one value per query.",
    forbidden=("coursekit.applications.private.nearest_neighbour_distances",
               "coursekit.applications.private.nearest_neighbours"),
    # float32 torch.cdist (matrix-product form) is off by up to ~1e-2 at distance 0 (more on other BLAS);
    # true nearest distances between digits are about 3 or more, and wrong answers miss by far more
    atol=0.05, shape="shape (M,): one distance per query",
))
