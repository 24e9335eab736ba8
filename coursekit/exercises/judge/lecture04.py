"""Registry entries for lecture 04 (the GAN game): discriminator loss, optimal D, non-saturating cost.

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from coursekit.exercises import probes
from coursekit.exercises.judge.exercise import Answer, Exercise, Misconception, Probe

ASSIGNMENT = "04_gan_game"
EXERCISES: list[Exercise] = []

# The loss functions of coursekit.gan: the exercises ask students to write them.
GAN_LOSSES = ("coursekit.gan.losses.discriminator_loss", "coursekit.gan.losses.minimax_generator_loss",
              "coursekit.gan.losses.non_saturating_generator_loss", "coursekit.gan.losses.log_d",
              "coursekit.gan.losses.log_one_minus_d")


# ---- 04 exercise 1: the discriminator's loss

def _d_loss_ref(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def _d_loss_cases(seed: int = 0):     # seed: the per-submission probe seed
    return [(probes.randn(1 + 1000 * seed, 16, scale=3.0), probes.randn(2 + 1000 * seed, 9, scale=3.0)),
            (probes.randn(3 + 1000 * seed, 5), probes.randn(4 + 1000 * seed, 12, scale=0.5)),
            (torch.tensor([100.0, -100.0, 3.0]), torch.tensor([-100.0, 200.0]))]   # confident logits


def _unstable_d_loss(real_logits, fake_logits):
    return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()


def _bce_on_probabilities(real_logits, fake_logits):
    real_p, fake_p = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return (F.binary_cross_entropy(real_p, torch.ones_like(real_p))
            + F.binary_cross_entropy(fake_p, torch.zeros_like(fake_p)))


def _clipped_d_loss(real_logits, fake_logits, eps=1e-7):
    return (-torch.log(torch.sigmoid(real_logits).clamp_min(eps)).mean()
            - torch.log((1 - torch.sigmoid(fake_logits)).clamp_min(eps)).mean())


def _logit_probes(moderate: tuple, confident: tuple) -> dict[str, Probe]:
    """The probes of :func:`_capped_for_confident_logits`: moderate logits, and confident ones."""
    return {"moderate-logits": Probe(args=lambda: moderate), "confident-logits": Probe(args=lambda: confident)}


def _capped_for_confident_logits(reference):
    """A detector: the answer agrees with the reference on moderate logits but, on confident ones,
    gives a finite wrong value (a log clipped with an eps, or BCE on probabilities, which clips too)."""
    def detect(answer: Answer) -> bool:
        moderate, confident = answer.on("moderate-logits"), answer.on("confident-logits")
        if not (isinstance(moderate, torch.Tensor) and isinstance(confident, torch.Tensor)):
            return False
        ok = torch.allclose(moderate.double(), reference(*answer.args("moderate-logits")).double(), atol=1e-5)
        expected = reference(*answer.args("confident-logits")).double()
        return bool(ok and torch.isfinite(confident).all() and not torch.allclose(confident.double(), expected, atol=1e-3))
    return detect


_STABLE_LOGS = ("log(sigmoid(.)) and log(1 + exp(.)) break for confident logits (sigmoid rounds to 0 or 1, "
                "exp overflows): write -log D = softplus(-logit) and -log(1 - D) = softplus(logit).")
_CLIPPED_LOGS = ("Clipping the probabilities (an eps in the log, or BCE on sigmoid outputs) caps the loss for "
                 "confident logits, so a very wrong D is barely penalised: use softplus on the logits instead.")


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex1-d-loss", function="my_discriminator_loss",
    title="Exercise 1 (the discriminator's loss)", reference=_d_loss_ref, cases=_d_loss_cases,
    misconceptions=[
        Misconception(name="labels swapped", wrong=lambda r, f: F.softplus(r).mean() + F.softplus(-f).mean(),
                      hint="Real and fake are swapped: D must say 1 for REAL images (-log D(x)) and 0 for fakes "
                      "(-log(1 - D(G(z))))."),
        Misconception(name="log of sigmoid", wrong=_unstable_d_loss, hint=_STABLE_LOGS),
        Misconception(name="BCE on probabilities", wrong=_bce_on_probabilities, hint=_CLIPPED_LOGS),
        Misconception(name="clipped log", wrong=_clipped_d_loss,
                      hint="An eps in the log (or a clamp) caps the loss for confident logits: write the logs with "
                      "softplus on the logits, which needs no eps.",
                      detect=_capped_for_confident_logits(_d_loss_ref)),
        Misconception(name="one mean over real and fake",
                      wrong=lambda r, f: torch.cat([F.softplus(-r), F.softplus(f)]).mean(),
                      hint="Average the real and the fake terms SEPARATELY and add them: one mean over both batches "
                      "together weighs each batch by its size (with equal sizes it halves the loss)."),
        Misconception(name="sums", wrong=lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(),
                      hint="Use means over each batch, not sums: the loss must not grow with the batch size."),
        Misconception(name="the value, not the loss", wrong=lambda r, f: -(F.softplus(-r).mean() + F.softplus(f).mean()),
                      hint="That is V(D, G), which D MAXIMISES: the loss to minimise is its negative, "
                      "-mean log D(x) - mean log(1 - D(G(z)))."),
        Misconception(name="fake term missing", wrong=lambda r, f: F.softplus(-r).mean(),
                      hint="The loss has two terms: D must also push the fakes' D(G(z)) towards 0 (+ mean softplus(fake_logits))."),
    ],
    hints=("The loss is -mean log D(x) - mean log(1 - D(G(z))) with D = sigmoid(logit). Write both logs in a "
           "form that stays finite for large logits.",
           "Two identities do it: -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l) "
           "(F.softplus); apply each to its own batch and average.",
           "def my_discriminator_loss(real_logits, fake_logits):\n"
           "    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()"),
    fallback="The loss is -mean log D(x) over the real batch plus -mean log(1 - D(G(z))) over the fake batch, "
    "written so that it stays finite for confident logits.",
    forbidden=GAN_LOSSES + ("coursekit.gan.training.discriminator_step",),
    returns="scalar", gradient=True,
    probes=_logit_probes(moderate=(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([-0.3, 1.5])),
                         confident=(torch.tensor([30.0, -40.0]), torch.tensor([-30.0, 40.0]))),
))


# ---- 04 exercise 2: the value of the game at the optimal discriminator, C(G)

def _normal(xs, mu, sd):
    return torch.exp(-0.5 * ((xs - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def _value_cases():
    xs = torch.linspace(-6, 8, 1401)                 # float32: the far tails underflow to exactly 0
    dx = float(xs[1] - xs[0])
    return [(_normal(xs, 2.0, 0.5), _normal(xs, 0.0, 1.0), dx),
            (_normal(xs, 2.0, 0.5), _normal(xs, 2.0, 0.5), dx),
            (torch.tensor([0.1, 0.4, 0.5, 0.0]), torch.tensor([0.0, 0.3, 0.3, 0.4]), 1.0),
            (torch.tensor([0.0, 0.5, 0.5, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]), 0.5)]


def _value_wrong(d_star="optimal", zeros="xlogy", integral="riemann", terms="both", jsd=False):
    def wrong(p_data, p_g, dx):
        p, q = p_data.double(), p_g.double()
        if d_star == "half":
            d = torch.full_like(p, 0.5)
        elif d_star == "swapped":
            d = q / (p + q)
        else:
            d = p / (p + q)                                   # 0/0 where both densities vanish
            if zeros == "xlogy":
                d = torch.where(p + q > 0, d, torch.full_like(d, 0.5))
        if zeros == "plain_log":
            d = torch.where(p + q > 0, d, torch.full_like(d, 0.5))
            terms_ = p * torch.log(d) + q * torch.log(1 - d)      # 0 * log 0 = nan
        else:
            terms_ = torch.xlogy(p, d) + torch.xlogy(q, 1 - d)
        if terms == "data_only":
            terms_ = torch.xlogy(p, d)
        if integral == "sum":
            value = terms_.sum()
        elif integral == "mean":
            value = terms_.mean()
        else:
            value = (terms_ * dx).sum()
        value = float(value)
        return (value + math.log(4)) / 2 if jsd else value
    return wrong


_value_ref = _value_wrong()      # no mistake switched on: the reference (= gan.value_at_optimal_discriminator)


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex2-value-at-optimum", function="value_at_optimal_d",
    title="Exercise 2 (the value of the game at the optimal discriminator)", reference=_value_ref, cases=_value_cases,
    misconceptions=[
        Misconception(name="no dx", wrong=_value_wrong(integral="sum"),
                      hint="C(G) is an INTEGRAL: on a grid, multiply the sum by the spacing dx (a Riemann sum)."),
        Misconception(name="mean over the grid", wrong=_value_wrong(integral="mean"),
                      hint="Average over the grid points is not the integral: sum the terms and multiply by dx."),
        Misconception(name="0 log 0", wrong=_value_wrong(zeros="plain_log"),
                      hint="Where a density is 0 its term must be 0 (0 log 0 = 0), but 0 * log(0) gives nan in torch: "
                      "use torch.xlogy(p, D), which is 0 when p is 0."),
        Misconception(name="0/0 where both densities are 0", wrong=_value_wrong(zeros="none"),
                      hint="Where BOTH densities are 0 (far in the tails) D* = 0/0 is nan; those points contribute "
                      "nothing, so give D* any value there (e.g. torch.where(p_data + p_g > 0, ..., 0.5))."),
        Misconception(name="D = 1/2 everywhere", wrong=_value_wrong(d_star="half"),
                      hint="D* = 1/2 only at the end of the game: use D*(x) = p_data / (p_data + p_g) at every point, "
                      "otherwise every pair of densities scores -log 4."),
        Misconception(name="D* swapped", wrong=_value_wrong(d_star="swapped"),
                      hint="D* is the probability that x is REAL: p_data / (p_data + p_g), not p_g / (p_data + p_g)."),
        Misconception(name="returned the JSD", wrong=_value_wrong(jsd=True),
                      hint="Return the value C(G) itself, -log 4 + 2 JSD, not the Jensen-Shannon divergence."),
        Misconception(name="data term only", wrong=_value_wrong(terms="data_only"),
                      hint="C(G) has two terms: p_data log D* AND p_g log(1 - D*)."),
    ],
    hints=("First D* at every grid point, then the integral of p_data log D* + p_g log(1 - D*) as a sum times dx. "
           "Watch the points where a density is 0.",
           "D* = p_data / (p_data + p_g), with any value (say 1/2) where both are 0; torch.xlogy(p, D) computes "
           "p log D with 0 log 0 = 0; multiply the summed terms by dx and return a Python float.",
           "def value_at_optimal_d(p_data, p_g, dx):\n"
           "    total = p_data + p_g\n"
           "    d_star = torch.where(total > 0, p_data / total, torch.full_like(total, 0.5))\n"
           "    terms = torch.xlogy(p_data, d_star) + torch.xlogy(p_g, 1 - d_star)\n"
           "    return float((terms * dx).sum())"),
    fallback="C(G) = integral of p_data log D* + p_g log(1 - D*) dx with D* = p_data / (p_data + p_g), taking 0 log 0 = 0 "
    "and skipping the points where both densities are 0.",
    forbidden=("coursekit.gan.theory.value_at_optimal_discriminator", "coursekit.gan.theory.jensen_shannon_divergence"),
    returns="float", atol=1e-4,
))


# ---- 04 exercise 3: the non-saturating generator cost

def _ns_ref(fake_logits):
    return F.softplus(-fake_logits).mean()


def _ns_cases():
    return [(probes.randn(3, 20, scale=4.0),), (torch.tensor([-8.0, -8.0, 0.0, 2.0]),),
            (torch.tensor([-200.0, 200.0, 1.0]),)]


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex3-ns-loss", function="my_non_saturating_loss",
    title="Exercise 3 (the non-saturating generator cost)", reference=_ns_ref, cases=_ns_cases,
    misconceptions=[
        Misconception(name="saturating (minimax) cost", wrong=lambda l: -F.softplus(l).mean(),
                      hint="That is the minimax cost mean log(1 - D(G(z))), whose gradient vanishes when D rejects the "
                      "fakes; the non-saturating cost is -mean log D(G(z))."),
        Misconception(name="log of sigmoid", wrong=lambda l: -torch.log(torch.sigmoid(l)).mean(),
                      hint="log(sigmoid(.)) breaks when D confidently rejects a fake (sigmoid rounds to 0, log 0 = -inf): "
                      "write -log D = softplus(-logit)."),
        Misconception(name="BCE on probabilities",
                      wrong=lambda l: F.binary_cross_entropy(torch.sigmoid(l), torch.ones_like(l)), hint=_CLIPPED_LOGS),
        Misconception(name="clipped log", wrong=lambda l: -torch.log(torch.sigmoid(l).clamp_min(1e-7)).mean(),
                      hint="An eps in the log (or a clamp) caps the cost exactly where D rejects the fakes, and kills "
                      "the gradient there: write -log D = softplus(-logit), which needs no eps.",
                      detect=_capped_for_confident_logits(_ns_ref)),
        Misconception(name="fakes labelled fake", wrong=lambda l: F.softplus(l).mean(),
                      hint="That is the discriminator's fake term (target 0): the generator wants D to say REAL, so its "
                      "cost is -log D(G(z)) = softplus(-logit)."),
        Misconception(name="sum", wrong=lambda l: F.softplus(-l).sum(),
                      hint="Take the mean over the batch, not the sum."),
        Misconception(name="sign", wrong=lambda l: -F.softplus(-l).mean(),
                      hint="The sign is flipped: the cost is -mean log D(G(z)) = +mean softplus(-logit), which is lower "
                      "when D believes the fakes."),
    ],
    hints=("The generator minimises -mean log D(G(z)): it wants D to call its fakes real.",
           "With D = sigmoid(l), the identity -log sigmoid(l) = softplus(-l) (F.softplus) keeps the cost finite "
           "and its gradient alive for very negative logits; average over the batch.",
           "def my_non_saturating_loss(fake_logits):\n"
           "    return F.softplus(-fake_logits).mean()"),
    fallback="The non-saturating cost is -mean log D(G(z)), written so that it stays finite when D rejects the fakes.",
    forbidden=GAN_LOSSES + ("coursekit.gan.training.generator_step", "coursekit.gan.losses.get_generator_loss"),
    returns="scalar", gradient=True,
    probes=_logit_probes(moderate=(torch.tensor([0.5, -1.0, 2.0]),), confident=(torch.tensor([-30.0, -40.0, 1.0]),)),
))
