"""Registry entries for lecture 07 (evaluating GANs): Wilson bound, each annotator's accuracy and interval
from annotation CSV files, Inception Score, Fréchet distance.

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

import math

import torch

from coursekit.exercises import harnesses, probes
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


_wilson_by_hand = _wilson_wrong()                # every switch in its right place: the Wilson lower bound itself


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
    forbidden=("coursekit.annotation.wilson_interval", "coursekit.annotation.wilson_lower",
               "coursekit.annotation.annotation_summary", "coursekit.annotation.accuracy_per_annotator",
               "scipy.stats._binomtest", "statsmodels.stats.proportion"),
    returns="float", atol=1e-9,
))


# ---- 07 exercise 2: each annotator's accuracy and Wilson interval, from annotation CSV files (the deep one)

HEADER = "annotator,image_id,truth,answer,seconds"


def _rows(annotator: str, outcomes: str, start: int = 0, spelling=("real", "fake")) -> list[str]:
    """CSV lines for one annotator: ``outcomes`` is a string of R (right) / W (wrong), truths alternating;
    the answers written as in ``spelling`` (a hand-edited file: 'Real', ' fake ', ...)."""
    lines = []
    for i, outcome in enumerate(outcomes):
        truth = ("real", "fake")[(start + i) % 2]
        answer = truth if outcome == "R" else ("fake" if truth == "real" else "real")
        written = spelling[("real", "fake").index(answer)]
        name = f'"{annotator}"' if "," in annotator else annotator
        lines.append(f"{name},{truth}-{start + i},{truth},{written},{1.0 + 0.25 * i:.3f}")
    return lines


def _file(*blocks: list[str]) -> str:
    return "\n".join([HEADER] + [line for block in blocks for line in block]) + "\n"


def _annotation_cases(seed: int = 0):
    g = torch.Generator().manual_seed(77 + 1000 * seed)          # seed: the per-submission probe seed

    def outcomes(n: int, right: float) -> str:
        return "".join("R" if float(u) < right else "W" for u in torch.rand(n, generator=g))

    clean = [_file(_rows("ada", outcomes(40, 0.9))), _file(_rows("ben", outcomes(40, 0.7))),
             _file(_rows("cy", outcomes(40, 0.55)))]
    sessions = [_file(_rows("dee", outcomes(15, 0.6)), _rows("eli", "RRRRRRRRRR")),
                _file(_rows("dee", outcomes(25, 0.6), start=15))]
    messy = [_file(_rows("Smith, J.", outcomes(12, 0.75), spelling=("Real", " fake ")),
                   _rows("fay", outcomes(9, 0.5), spelling=("REAL", "Fake")))
             + "fay,real-99,real,real\n",                         # a row cut off by an interrupted session
             _file(_rows("gus", "WWWWWW"))]
    return [(clean, 1.96), (sessions, 1.96), (messy, 1.96), (clean[:1] + messy[1:], 2.576)]


def _read(paths):
    """(annotator, truth, answer) of every complete row, labels as written."""
    import csv

    rows = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            rows += [(r[0], r[2], r[3]) for r in reader if len(r) == 5]
    return rows


def _annotation_wrong(*, normalise=True, complete_only=True, header=False, interval="wilson", count="right",
                      per_file=False):
    """Each annotator's (accuracy, low, high), with one thing done the way students get it wrong."""
    import csv

    def wrong(paths, z=1.96):
        counts = {}
        for path in paths:
            if per_file:
                counts = {name: kn for name, kn in counts.items() if False}   # a fresh count for every file
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                if not header:
                    next(reader)
                for row in reader:
                    if complete_only and len(row) != 5:
                        continue
                    if len(row) < 4:
                        continue
                    name, truth, answer = row[0], row[2], row[3]
                    if normalise:
                        truth, answer = truth.strip().lower(), answer.strip().lower()
                    if count == "right":
                        hit, counted = answer == truth, True
                    elif count == "says real":
                        hit, counted = answer == "real", True
                    else:                                   # fooling rate: fakes judged real
                        hit, counted = answer == "real" and truth == "fake", truth == "fake"
                    k, n = counts.get(name, (0, 0))
                    counts[name] = (k + hit, n + counted)
        out = {}
        for name, (k, n) in counts.items():
            if n == 0:
                continue
            p = k / n
            if interval == "wald":
                half = z * math.sqrt(p * (1 - p) / n)
                low, high = max(0.0, p - half), min(1.0, p + half)
            else:
                low = _wilson_by_hand(k, n, z)                 # by hand: coursekit's is a shortcut here
                high = 1 - _wilson_by_hand(n - k, n, z) if interval == "wilson" else min(1.0, 2 * p - low)
            out[name] = (p, low, high)
        return out
    return wrong


def _annotation_ref(paths, z=1.96):
    import warnings

    from coursekit import annotation

    with warnings.catch_warnings():            # the skipped half-written row: expected here, not news
        warnings.simplefilter("ignore")
        return annotation.accuracy_per_annotator(paths, z)


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex-annotation-accuracy", function="my_accuracy_per_annotator",
    title="Exercise 2 (each annotator's accuracy and interval, from the CSV files)", reference=_annotation_ref,
    cases=_annotation_cases,
    misconceptions=[
        Misconception(name="header read as a row", wrong=_annotation_wrong(header=True), depth=0,
                      hint="The first line of each file is the header (annotator,image_id,...): skip it, it is not "
                      "an annotator's answer."),
        Misconception(name="one file only", wrong=_annotation_wrong(per_file=True), depth=0,
                      hint="Count over ALL the files together: one person may have answered in several sessions "
                      "(several files), and their answers add up."),
        Misconception(name="labels not normalised", wrong=_annotation_wrong(normalise=False),
                      hint="Some files were edited by hand ('Real', ' fake '): compare the labels after .strip().lower()."),
        Misconception(name="incomplete rows counted", wrong=_annotation_wrong(complete_only=False),
                      hint="Skip a row that does not have all five fields: an interrupted session left it half written."),
        Misconception(name="Wald interval", wrong=_annotation_wrong(interval="wald"),
                      hint="Use the Wilson interval of Exercise 1 (low = the Wilson lower bound of k right of n, high = 1 - "
                      "the lower bound of the n - k wrong ones), not p +- z sqrt(p(1-p)/n)."),
        Misconception(name="symmetric interval", wrong=_annotation_wrong(interval="mirrored"),
                      hint="The Wilson interval is not symmetric around k/n: its upper end is 1 - (the lower bound of the "
                      "n - k WRONG answers), not k/n plus the distance down to the lower end."),
        Misconception(name="fooling rate", wrong=_annotation_wrong(count="fooled"),
                      hint="Accuracy counts every answer that equals the truth (real judged real AND fake judged fake), "
                      "over all of the annotator's answers, not the share of fakes judged real."),
        Misconception(name="share of 'real' answers", wrong=_annotation_wrong(count="says real"),
                      hint="Accuracy counts answers that EQUAL the truth, not how often the annotator said 'real'."),
    ],
    hints=("Read every file with the csv module, skipping its header; keep, per annotator, how many answers they gave "
           "and how many equal the truth (over all the files); then the share right and its Wilson interval.",
           "Clean each row before counting: skip rows without five fields, and compare truth and answer after "
           ".strip().lower(). With k right of n: accuracy k/n, low = my_wilson_lower(k, n, z), high = "
           "1 - my_wilson_lower(n - k, n, z); return a dict mapping each name to that triple.",
           "def my_accuracy_per_annotator(paths, z=1.96):\n"
           "    import csv\n"
           "\n"
           "    counts = {}\n"
           "    for path in paths:\n"
           "        with open(path, newline=\"\") as f:\n"
           "            reader = csv.reader(f)\n"
           "            next(reader)                                  # the header\n"
           "            for row in reader:\n"
           "                if len(row) != 5:                         # half written: skip\n"
           "                    continue\n"
           "                name, truth, answer = row[0], row[2].strip().lower(), row[3].strip().lower()\n"
           "                k, n = counts.get(name, (0, 0))\n"
           "                counts[name] = (k + (answer == truth), n + 1)\n"
           "    result = {}\n"
           "    for name, (k, n) in counts.items():\n"
           "        p = k / n\n"
           "        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)\n"
           "        half = z / (1 + z**2 / n) * (p * (1 - p) / n + z**2 / (4 * n**2)) ** 0.5\n"
           "        result[name] = (p, max(0.0, centre - half), min(1.0, centre + half))\n"
           "    return result"),
    fallback="Per annotator, over all files: k = answers equal to the truth (labels compared after .strip().lower(), "
    "incomplete rows skipped), n = answers; return {name: (k/n, Wilson low, Wilson high)} (if you use my_wilson_lower, "
    "check that Exercise 1 passes first).",
    forbidden=("coursekit.annotation.read_annotations", "coursekit.annotation.annotation_summary",
               "coursekit.annotation.accuracy_per_annotator", "coursekit.annotation._summarise",
               "coursekit.annotation._validated_row", "coursekit.annotation.wilson_interval",
               "coursekit.annotation.wilson_lower", "scipy.stats._binomtest", "statsmodels.stats.proportion"),
    returns="any", atol=1e-9, harness=harnesses.annotation_files,
))


# ---- 07 exercise 3: the Inception Score from logits

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
    title="Exercise 3 (the Inception Score)", reference=_is_ref, cases=_is_cases,
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


# ---- 07 exercise 4: the Fréchet distance between two feature sets

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
    title="Exercise 4 (the Fréchet distance)", reference=_fd_ref, cases=_fd_cases,
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
