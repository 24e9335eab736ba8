"""Registry entries for lecture 07 (evaluating GANs): Wilson bound, Inception Score, Fréchet distance.

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

import math

import torch

from coursekit.exercises import probes
from coursekit.exercises.judge.exercise import Exercise, Misconception

ASSIGNMENT = "07_evaluating_gans"
EXERCISES: list[Exercise] = []


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


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex1-wilson", function="my_wilson_lower",
    title="Exercise 1 (the Wilson lower bound)", reference=_wilson_lower_ref, cases=_wilson_cases,
    misconceptions=[
        Misconception(name="no z^2/(4n^2) term", wrong=_wilson_wrong(small_n_term=False),
                      hint="Keep the z^2/(4n^2) term under the square root: without it the interval collapses to a point "
                      "when all answers are right (or all wrong)."),
        Misconception(name="Wald interval", wrong=_wald_lower,
                      hint="That is the textbook (Wald) bound p - z sqrt(p(1-p)/n): Wilson's centre is shifted towards 1/2 "
                      "and its half width has the extra z^2/(4n^2) term."),
        Misconception(name="centre not shifted", wrong=_wilson_wrong(shift_centre=False),
                      hint="Wilson's centre is (p + z^2/(2n)) / (1 + z^2/n), not p itself."),
        Misconception(name="upper bound", wrong=_wilson_wrong(sign=1.0),
                      hint="You returned the UPPER end of the interval (centre + half width): the lower end subtracts."),
    ],
    hints=("With p the observed fraction k/n, the interval is centre +- half width, both divided by 1 + z^2/n; return the lower end.",
           "With p the fraction k/n: centre = (p + z^2/(2n)) / (1 + z^2/n) and half width = z / (1 + z^2/n) * "
           "sqrt(p(1 - p)/n + z^2/(4n^2)); the lower end cannot go below 0.",
           "def my_wilson_lower(k, n, z=1.96):\n"
           "    p = k / n\n"
           "    denominator = 1 + z**2 / n\n"
           "    centre = (p + z**2 / (2 * n)) / denominator\n"
           "    half = z / denominator * (p * (1 - p) / n + z**2 / (4 * n**2)) ** 0.5\n"
           "    return max(0.0, centre - half)"),
    fallback="The lower end is centre - half width with centre = (p + z^2/(2n)) / (1 + z^2/n) and "
    "half width = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2)), clipped at 0.",
    forbidden=("coursekit.annotation.wilson_interval", "coursekit.annotation.annotation_summary",
               "scipy.stats._binomtest", "statsmodels.stats.proportion"),
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
    digits = metrics.extract_features(probes.digits(100)[0], "mnist_cnn", progress=False, kind="logits")
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


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex2-inception-score", function="my_inception_score",
    title="Exercise 2 (the Inception Score)", reference=_is_ref, cases=_is_cases,
    misconceptions=[
        Misconception(name="softmax of the mean logit", wrong=_is_wrong(p_y_from="logits"),
                      hint="p(y) is the average of the softmax PROBABILITIES over the images, not the softmax of the average logit."),
        Misconception(name="KL reversed", wrong=_is_wrong(reverse=True),
                      hint="The KL goes from p(y|x) to p(y): sum_y p(y|x) (log p(y|x) - log p(y)); you computed KL(p(y) || p(y|x))."),
        Misconception(name="no exp", wrong=_is_wrong(exp=False),
                      hint="The score is exp(mean KL): you returned the mean KL itself (the log of the score)."),
        Misconception(name="mean over classes", wrong=_is_wrong(reduce="mean"),
                      hint="The KL SUMS over the classes y (dim=1), it does not average over them."),
    ],
    hints=("p(y|x) = softmax of each row of the logits; p(y) = the mean of those rows; KL per image; mean; exp.",
           "Work with log-probabilities (torch.log_softmax, in double). p(y) is the MEAN of the probabilities "
           "over the images; each image's KL is a sum over the classes; the score is exp of the mean KL.",
           "def my_inception_score(logits):\n"
           "    log_p_yx = torch.log_softmax(logits.double(), dim=1)\n"
           "    p_yx = log_p_yx.exp()\n"
           "    log_p_y = p_yx.mean(0).log()\n"
           "    kl = (p_yx * (log_p_yx - log_p_y)).sum(1)\n"
           "    return float(kl.mean().exp())"),
    fallback="IS = exp(mean over images of KL(p(y|x) || p(y))), with p(y|x) = softmax(logits) and p(y) the mean of p(y|x).",
    forbidden=("coursekit.metrics.inception_score", "coursekit.metrics.inception_score_of_images",
               "torchmetrics.image.inception", "torch_fidelity"),
    returns="float", atol=1e-6,
))


# ---- 07 exercise 3: the Fréchet distance between two feature sets

def _fd_ref(features_a, features_b):
    from coursekit import metrics

    return float(metrics.frechet_distance(features_a, features_b))


def _fd_cases(seed: int = 0):
    from coursekit import metrics

    g = torch.Generator().manual_seed(3 + 1000 * seed)     # seed: the per-submission probe seed
    a = torch.randn(300, 8, generator=g) @ torch.randn(8, 8, generator=g)
    b = torch.randn(300, 8, generator=g) @ torch.randn(8, 8, generator=g) + 0.3
    c = 0.5 * torch.randn(60, 5, generator=g) + 1.0
    d = torch.randn(60, 5, generator=g)
    features = metrics.extract_features(probes.digits(300)[0], "mnist_cnn", progress=False)
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


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex3-frechet", function="my_frechet_distance",
    title="Exercise 3 (the Fréchet distance)", reference=_fd_ref, cases=_fd_cases,
    misconceptions=[
        Misconception(name="covariance over the wrong axis", wrong=_fd_wrong(axis="images"),
                      hint="The covariances must be (d, d), between the FEATURES: torch.cov treats rows as variables, "
                      "so use torch.cov(x.T); torch.cov(x) compares images with each other."),
        Misconception(name="no trace-sqrt term", wrong=_fd_wrong(trace_term="none"),
                      hint="Subtract 2 Tr((S_a S_b)^{1/2}): without it, even a set compared with itself is far from 0."),
        Misconception(name="elementwise square root", wrong=_fd_wrong(trace_term="elementwise"),
                      hint="(S_a S_b)^{1/2} is a MATRIX square root of the matrix product: take the square roots of the "
                      "eigenvalues of S_a @ S_b, not of the entries of S_a * S_b."),
        Misconception(name="no mean term", wrong=_fd_wrong(mean_term="none"),
                      hint="Add ||mu_a - mu_b||^2: two sets with the same spread but different means must be far apart."),
        Misconception(name="mean distance not squared", wrong=_fd_wrong(mean_term="norm"),
                      hint="The mean term is the SQUARED distance ||mu_a - mu_b||^2, not the distance."),
        Misconception(name="population covariance", wrong=_fd_wrong(correction=0),
                      hint="Use the sample covariance (divide by N - 1, torch.cov's default), not the population one (N)."),
    ],
    hints=("Means (d,) and covariances (d, d) of each set, then ||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2}).",
           "torch.cov treats ROWS as variables: pass the transpose to get (d, d) covariances. Tr((S_a S_b)^{1/2}) "
           "is the sum of the square roots of the eigenvalues of S_a @ S_b (torch.linalg.eigvals, real part, "
           "clamped at 0).",
           "def my_frechet_distance(features_a, features_b):\n"
           "    a, b = features_a.double(), features_b.double()\n"
           "    mu_a, mu_b = a.mean(0), b.mean(0)\n"
           "    sigma_a, sigma_b = torch.cov(a.T), torch.cov(b.T)\n"
           "    trace_sqrt = torch.linalg.eigvals(sigma_a @ sigma_b).real.clamp(min=0).sqrt().sum()\n"
           "    return float((mu_a - mu_b) @ (mu_a - mu_b) + sigma_a.trace() + sigma_b.trace() - 2 * trace_sqrt)"),
    fallback="FD = ||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^{1/2}), with (d, d) sample covariances of the features.",
    forbidden=("coursekit.metrics.frechet_distance", "coursekit.metrics.frechet_distance_from_statistics",
               "coursekit.metrics.fid", "pytorch_fid", "torchmetrics.image.fid", "torch_fidelity", "cleanfid"),
    # a float32 computation is legitimate: on the 100-d features probe (150 images, near-singular
    # covariances) float32 answers are off by up to 2e-3 relative (a symmetric square root: 2.0e-3;
    # eigvals of S_a S_b: 6e-5); the nearest known mistake, the population covariance, is 1.7 % off at N = 60
    returns="float", atol=1e-6, rtol=5e-3,
))
