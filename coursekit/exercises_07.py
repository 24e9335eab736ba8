"""Registry entries for lecture 07 (evaluating GANs): Wilson bound, Inception Score, Fréchet distance.

Imported at the bottom of :mod:`coursekit.exercises`; see that module for how answers are judged.
"""
from __future__ import annotations

import math

import torch

from coursekit.exercises import Exercise, Misconception, register

ASSIGNMENT = "07_evaluating_gans"


# ---- 07 exercise 1: the lower end of the Wilson interval

def _wilson_lower_ref(k, n, z=1.96):
    from coursekit import annotation

    return float(annotation.wilson_interval(k, n, z)[0])


def _wilson_cases():
    return [(12, 20, 1.96), (33, 40, 1.96), (0, 20, 1.96), (20, 20, 1.96), (1, 10, 1.96),
            (490, 500, 2.576), (5, 7, 1.0)]


def _wilson_wrong(shift_centre=True, small_n_term=True, sign=-1.0):
    def wrong(k, n, z=1.96):
        p = k / n
        denominator = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denominator if shift_centre else p
        variance = p * (1 - p) / n + (z**2 / (4 * n**2) if small_n_term else 0.0)
        return float(min(1.0, max(0.0, centre + sign * z / denominator * math.sqrt(variance))))
    return wrong


def _wald_lower(k, n, z=1.96):
    p = k / n
    return float(max(0.0, p - z * math.sqrt(p * (1 - p) / n)))


register(Exercise(
    ASSIGNMENT, "ex1-wilson", "my_wilson_lower",
    "Exercise 1 (the Wilson lower bound)", _wilson_lower_ref, _wilson_cases,
    [
        Misconception("no z^2/(4n^2) term", _wilson_wrong(small_n_term=False),
                      "Keep the z^2/(4n^2) term under the square root: without it the interval collapses to a point "
                      "when all answers are right (or all wrong)."),
        Misconception("Wald interval", _wald_lower,
                      "That is the textbook (Wald) bound p - z sqrt(p(1-p)/n): Wilson's centre is shifted towards 1/2 "
                      "and its half width has the extra z^2/(4n^2) term."),
        Misconception("centre not shifted", _wilson_wrong(shift_centre=False),
                      "Wilson's centre is (p + z^2/(2n)) / (1 + z^2/n), not p itself."),
        Misconception("upper bound", _wilson_wrong(sign=1.0),
                      "You returned the UPPER end of the interval (centre + half width): the lower end subtracts."),
    ],
    ("p = k / n; the interval is centre +- half width, both divided by 1 + z^2/n; return the lower end.",
     "With p = k / n: centre = (p + z^2/(2n)) / (1 + z^2/n) and half width = z / (1 + z^2/n) * "
     "sqrt(p(1 - p)/n + z^2/(4n^2)); the lower end cannot go below 0.",
     "def my_wilson_lower(k, n, z=1.96):\n"
     "    p = k / n\n"
     "    denominator = 1 + z**2 / n\n"
     "    centre = (p + z**2 / (2 * n)) / denominator\n"
     "    half = z / denominator * (p * (1 - p) / n + z**2 / (4 * n**2)) ** 0.5\n"
     "    return max(0.0, centre - half)"),
    "The lower end is centre - half width with centre = (p + z^2/(2n)) / (1 + z^2/n) and "
    "half width = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2)), clipped at 0.",
    forbidden=("coursekit.annotation.wilson_interval", "coursekit.annotation.annotation_summary"),
    returns="float", atol=1e-9,
))


# ---- 07 exercise 2: the Inception Score from logits

def _is_ref(logits):
    from coursekit import metrics

    return float(metrics.inception_score(logits, splits=1)[0])


def _is_cases():
    from coursekit import metrics

    g = torch.Generator().manual_seed(7)
    bias = torch.linspace(0, 2, 10)
    digits = metrics.extract_features(_digits_07(100), "mnist_cnn", progress=False, kind="logits")
    return [(torch.randn(200, 10, generator=g) + bias,), (3 * torch.randn(200, 10, generator=g) + bias,),
            (2 * torch.randn(50, 4, generator=g),), (digits,)]


def _is_wrong(p_y_from="probabilities", reverse=False, exp=True, reduce="sum"):
    def wrong(logits):
        log_p_yx = torch.log_softmax(logits.double(), dim=1)
        p_yx = log_p_yx.exp()
        if p_y_from == "probabilities":
            log_p_y = p_yx.mean(0).log()
        else:
            log_p_y = torch.log_softmax(logits.double().mean(0), dim=0)
        if reverse:
            terms = log_p_y.exp() * (log_p_y - log_p_yx)
        else:
            terms = p_yx * (log_p_yx - log_p_y)
        kl = terms.sum(1) if reduce == "sum" else terms.mean(1)
        return float(kl.mean().exp()) if exp else float(kl.mean())
    return wrong


register(Exercise(
    ASSIGNMENT, "ex2-inception-score", "my_inception_score",
    "Exercise 2 (the Inception Score)", _is_ref, _is_cases,
    [
        Misconception("softmax of the mean logit", _is_wrong(p_y_from="logits"),
                      "p(y) is the average of the softmax PROBABILITIES over the images, not the softmax of the average logit."),
        Misconception("KL reversed", _is_wrong(reverse=True),
                      "The KL goes from p(y|x) to p(y): sum_y p(y|x) (log p(y|x) - log p(y)); you computed KL(p(y) || p(y|x))."),
        Misconception("no exp", _is_wrong(exp=False),
                      "The score is exp(mean KL): you returned the mean KL itself (the log of the score)."),
        Misconception("mean over classes", _is_wrong(reduce="mean"),
                      "The KL SUMS over the classes y (dim=1), it does not average over them."),
    ],
    ("p(y|x) = softmax of each row of the logits; p(y) = the mean of those rows; KL per image; mean; exp.",
     "Work with log-probabilities (torch.log_softmax, in double). p(y) is the MEAN of the probabilities "
     "over the images; each image's KL is a sum over the classes; the score is exp of the mean KL.",
     "def my_inception_score(logits):\n"
     "    log_p_yx = torch.log_softmax(logits.double(), dim=1)\n"
     "    p_yx = log_p_yx.exp()\n"
     "    log_p_y = p_yx.mean(0).log()\n"
     "    kl = (p_yx * (log_p_yx - log_p_y)).sum(1)\n"
     "    return float(kl.mean().exp())"),
    "IS = exp(mean over images of KL(p(y|x) || p(y))), with p(y|x) = softmax(logits) and p(y) the mean of p(y|x).",
    forbidden=("coursekit.metrics.inception_score", "coursekit.metrics.inception_score_of_images"),
    returns="float", atol=1e-6,
))


# ---- 07 exercise 3: the Fréchet distance between two feature sets

def _fd_ref(features_a, features_b):
    from coursekit import metrics

    return float(metrics.frechet_distance(features_a, features_b))


def _digits_07(n: int) -> torch.Tensor:
    from coursekit import data

    return data.embedded_mnist("test", limit=n)[0]   # the same probes on every machine


def _fd_cases():
    from coursekit import metrics

    g = torch.Generator().manual_seed(3)
    a = torch.randn(300, 8, generator=g) @ torch.randn(8, 8, generator=g)
    b = torch.randn(300, 8, generator=g) @ torch.randn(8, 8, generator=g) + 0.3
    c = 0.5 * torch.randn(60, 5, generator=g) + 1.0
    d = torch.randn(60, 5, generator=g)
    features = metrics.extract_features(_digits_07(300), "mnist_cnn", progress=False)
    return [(a, b), (c, d), (a, a + torch.linspace(-1, 1, 8)), (features[:150], features[150:])]


def _fd_wrong(axis="features", mean_term="squared", trace_term="eigvals", correction=1):
    def wrong(features_a, features_b):
        a, b = features_a.double(), features_b.double()
        mu_a, mu_b = a.mean(0), b.mean(0)
        if axis == "features":
            s_a, s_b = torch.cov(a.T, correction=correction), torch.cov(b.T, correction=correction)
        else:
            s_a, s_b = torch.cov(a, correction=correction), torch.cov(b, correction=correction)
        if trace_term == "eigvals":
            trace_sqrt = torch.linalg.eigvals(s_a @ s_b).real.clamp(min=0).sqrt().sum()
        elif trace_term == "elementwise":
            trace_sqrt = (s_a * s_b).clamp(min=0).sqrt().trace()
        else:
            trace_sqrt = torch.zeros((), dtype=torch.float64)
        diff = mu_a - mu_b
        means = diff @ diff if mean_term == "squared" else (diff.norm() if mean_term == "norm" else 0.0)
        return float(means + s_a.trace() + s_b.trace() - 2 * trace_sqrt)
    return wrong


register(Exercise(
    ASSIGNMENT, "ex3-frechet", "my_frechet_distance",
    "Exercise 3 (the Fréchet distance)", _fd_ref, _fd_cases,
    [
        Misconception("covariance over the wrong axis", _fd_wrong(axis="images"),
                      "The covariances must be (d, d), between the FEATURES: torch.cov treats rows as variables, "
                      "so use torch.cov(x.T); torch.cov(x) compares images with each other."),
        Misconception("no trace-sqrt term", _fd_wrong(trace_term="none"),
                      "Subtract 2 Tr((S_a S_b)^{1/2}): without it, even a set compared with itself is far from 0."),
        Misconception("elementwise square root", _fd_wrong(trace_term="elementwise"),
                      "(S_a S_b)^{1/2} is a MATRIX square root of the matrix product: take the square roots of the "
                      "eigenvalues of S_a @ S_b, not of the entries of S_a * S_b."),
        Misconception("no mean term", _fd_wrong(mean_term="none"),
                      "Add ||mu_a - mu_b||^2: two sets with the same spread but different means must be far apart."),
        Misconception("mean distance not squared", _fd_wrong(mean_term="norm"),
                      "The mean term is the SQUARED distance ||mu_a - mu_b||^2, not the distance."),
        Misconception("population covariance", _fd_wrong(correction=0),
                      "Use the sample covariance (divide by N - 1, torch.cov's default), not the population one (N)."),
    ],
    ("Means (d,) and covariances (d, d) of each set, then ||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2}).",
     "torch.cov treats ROWS as variables: pass the transpose to get (d, d) covariances. Tr((S_a S_b)^{1/2}) "
     "is the sum of the square roots of the eigenvalues of S_a @ S_b (torch.linalg.eigvals, real part, "
     "clamped at 0).",
     "def my_frechet_distance(features_a, features_b):\n"
     "    a, b = features_a.double(), features_b.double()\n"
     "    mu_a, mu_b = a.mean(0), b.mean(0)\n"
     "    sigma_a, sigma_b = torch.cov(a.T), torch.cov(b.T)\n"
     "    trace_sqrt = torch.linalg.eigvals(sigma_a @ sigma_b).real.clamp(min=0).sqrt().sum()\n"
     "    return float((mu_a - mu_b) @ (mu_a - mu_b) + sigma_a.trace() + sigma_b.trace() - 2 * trace_sqrt)"),
    "FD = ||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2}), with (d, d) sample covariances of the features.",
    forbidden=("coursekit.metrics.frechet_distance", "coursekit.metrics.frechet_distance_from_statistics",
               "coursekit.metrics.fid"),
    returns="float", atol=1e-6,
))
