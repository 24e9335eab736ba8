"""Registry entries for lecture 04 (the GAN game): discriminator loss, optimal D, non-saturating cost.

Imported at the bottom of :mod:`coursekit.exercises`; see that module for how answers are judged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from coursekit.exercises import Exercise, Misconception, register

ASSIGNMENT = "04_gan_game"

# The loss functions of coursekit.gan: the exercises ask students to write them.
GAN_LOSSES = ("coursekit.gan.losses.discriminator_loss", "coursekit.gan.losses.minimax_generator_loss",
              "coursekit.gan.losses.non_saturating_generator_loss", "coursekit.gan.losses.log_d",
              "coursekit.gan.losses.log_one_minus_d")


def _randn(seed: int, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- 04 exercise 1: the discriminator's loss

def _d_loss_ref(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def _d_loss_cases():
    return [(_randn(1, 16, scale=3.0), _randn(2, 9, scale=3.0)),
            (_randn(3, 5), _randn(4, 12, scale=0.5)),
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


def _capped_for_confident_logits(reference, moderate, confident):
    """A detector: the answer agrees with the reference on moderate logits but, on confident ones,
    gives a finite wrong value (a log clipped with an eps, or BCE on probabilities, which clips too)."""
    def detect(fn) -> bool:
        from coursekit.exercises import _call

        try:
            ok = torch.allclose(_call(fn, moderate).double(), reference(*moderate).double(), atol=1e-5)
            out = _call(fn, confident)
        except Exception:
            return False
        return bool(ok and torch.isfinite(out) and not torch.allclose(out.double(), reference(*confident).double(),
                                                                     atol=1e-3))
    return detect


_STABLE_LOGS = ("log(sigmoid(.)) and log(1 + exp(.)) break for confident logits (sigmoid rounds to 0 or 1, "
                "exp overflows): write -log D = softplus(-logit) and -log(1 - D) = softplus(logit).")
_CLIPPED_LOGS = ("Clipping the probabilities (an eps in the log, or BCE on sigmoid outputs) caps the loss for "
                 "confident logits, so a very wrong D is barely penalised: use softplus on the logits instead.")


register(Exercise(
    ASSIGNMENT, "ex1-d-loss", "my_discriminator_loss",
    "Exercise 1 (the discriminator's loss)", _d_loss_ref, _d_loss_cases,
    [
        Misconception("labels swapped", lambda r, f: F.softplus(r).mean() + F.softplus(-f).mean(),
                      "Real and fake are swapped: D must say 1 for REAL images (-log D(x)) and 0 for fakes "
                      "(-log(1 - D(G(z))))."),
        Misconception("log of sigmoid", _unstable_d_loss, _STABLE_LOGS),
        Misconception("BCE on probabilities", _bce_on_probabilities, _CLIPPED_LOGS),
        Misconception("clipped log", _clipped_d_loss,
                      "An eps in the log (or a clamp) caps the loss for confident logits: write the logs with "
                      "softplus on the logits, which needs no eps.",
                      detect=_capped_for_confident_logits(
                          lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
                          (torch.tensor([0.5, -1.0, 2.0]), torch.tensor([-0.3, 1.5])),
                          (torch.tensor([30.0, -40.0]), torch.tensor([-30.0, 40.0])))),
        Misconception("one mean over real and fake",
                      lambda r, f: torch.cat([F.softplus(-r), F.softplus(f)]).mean(),
                      "Average the real and the fake terms SEPARATELY and add them: one mean over both batches "
                      "together weighs each batch by its size (with equal sizes it halves the loss)."),
        Misconception("sums", lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(),
                      "Use means over each batch, not sums: the loss must not grow with the batch size."),
        Misconception("the value, not the loss", lambda r, f: -(F.softplus(-r).mean() + F.softplus(f).mean()),
                      "That is V(D, G), which D MAXIMISES: the loss to minimise is its negative, "
                      "-mean log D(x) - mean log(1 - D(G(z)))."),
        Misconception("fake term missing", lambda r, f: F.softplus(-r).mean(),
                      "The loss has two terms: D must also push the fakes' D(G(z)) towards 0 (+ mean softplus(fake_logits))."),
    ],
    ("The loss is -mean log D(x) - mean log(1 - D(G(z))) with D = sigmoid(logit). Write both logs in a "
     "form that stays finite for large logits.",
     "Two identities do it: -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l) "
     "(F.softplus); apply each to its own batch and average.",
     "def my_discriminator_loss(real_logits, fake_logits):\n"
     "    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()"),
    "The loss is -mean log D(x) over the real batch plus -mean log(1 - D(G(z))) over the fake batch, "
    "written so that it stays finite for confident logits.",
    forbidden=GAN_LOSSES + ("coursekit.gan.training.discriminator_step",),
    returns="scalar",
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


register(Exercise(
    ASSIGNMENT, "ex2-value-at-optimum", "value_at_optimal_d",
    "Exercise 2 (the value of the game at the optimal discriminator)", _value_ref, _value_cases,
    [
        Misconception("no dx", _value_wrong(integral="sum"),
                      "C(G) is an INTEGRAL: on a grid, multiply the sum by the spacing dx (a Riemann sum)."),
        Misconception("mean over the grid", _value_wrong(integral="mean"),
                      "Average over the grid points is not the integral: sum the terms and multiply by dx."),
        Misconception("0 log 0", _value_wrong(zeros="plain_log"),
                      "Where a density is 0 its term must be 0 (0 log 0 = 0), but 0 * log(0) gives nan in torch: "
                      "use torch.xlogy(p, D), which is 0 when p is 0."),
        Misconception("0/0 where both densities are 0", _value_wrong(zeros="none"),
                      "Where BOTH densities are 0 (far in the tails) D* = 0/0 is nan; those points contribute "
                      "nothing, so give D* any value there (e.g. torch.where(p_data + p_g > 0, ..., 0.5))."),
        Misconception("D = 1/2 everywhere", _value_wrong(d_star="half"),
                      "D* = 1/2 only at the end of the game: use D*(x) = p_data / (p_data + p_g) at every point, "
                      "otherwise every pair of densities scores -log 4."),
        Misconception("D* swapped", _value_wrong(d_star="swapped"),
                      "D* is the probability that x is REAL: p_data / (p_data + p_g), not p_g / (p_data + p_g)."),
        Misconception("returned the JSD", _value_wrong(jsd=True),
                      "Return the value C(G) itself, -log 4 + 2 JSD, not the Jensen-Shannon divergence."),
        Misconception("data term only", _value_wrong(terms="data_only"),
                      "C(G) has two terms: p_data log D* AND p_g log(1 - D*)."),
    ],
    ("First D* at every grid point, then the integral of p_data log D* + p_g log(1 - D*) as a sum times dx. "
     "Watch the points where a density is 0.",
     "D* = p_data / (p_data + p_g), with any value (say 1/2) where both are 0; torch.xlogy(p, D) computes "
     "p log D with 0 log 0 = 0; multiply the summed terms by dx and return a Python float.",
     "def value_at_optimal_d(p_data, p_g, dx):\n"
     "    total = p_data + p_g\n"
     "    d_star = torch.where(total > 0, p_data / total, torch.full_like(total, 0.5))\n"
     "    terms = torch.xlogy(p_data, d_star) + torch.xlogy(p_g, 1 - d_star)\n"
     "    return float((terms * dx).sum())"),
    "C(G) = integral of p_data log D* + p_g log(1 - D*) dx with D* = p_data / (p_data + p_g), taking 0 log 0 = 0 "
    "and skipping the points where both densities are 0.",
    forbidden=("coursekit.gan.theory.value_at_optimal_discriminator", "coursekit.gan.theory.jensen_shannon_divergence"),
    returns="float", atol=1e-4,
))


# ---- 04 exercise 3: the non-saturating generator cost

def _ns_ref(fake_logits):
    return F.softplus(-fake_logits).mean()


def _ns_cases():
    return [(_randn(3, 20, scale=4.0),), (torch.tensor([-8.0, -8.0, 0.0, 2.0]),),
            (torch.tensor([-200.0, 200.0, 1.0]),)]


register(Exercise(
    ASSIGNMENT, "ex3-ns-loss", "my_non_saturating_loss",
    "Exercise 3 (the non-saturating generator cost)", _ns_ref, _ns_cases,
    [
        Misconception("saturating (minimax) cost", lambda l: -F.softplus(l).mean(),
                      "That is the minimax cost mean log(1 - D(G(z))), whose gradient vanishes when D rejects the "
                      "fakes; the non-saturating cost is -mean log D(G(z))."),
        Misconception("log of sigmoid", lambda l: -torch.log(torch.sigmoid(l)).mean(),
                      "log(sigmoid(.)) breaks when D confidently rejects a fake (sigmoid rounds to 0, log 0 = -inf): "
                      "write -log D = softplus(-logit)."),
        Misconception("BCE on probabilities",
                      lambda l: F.binary_cross_entropy(torch.sigmoid(l), torch.ones_like(l)), _CLIPPED_LOGS),
        Misconception("clipped log", lambda l: -torch.log(torch.sigmoid(l).clamp_min(1e-7)).mean(),
                      "An eps in the log (or a clamp) caps the cost exactly where D rejects the fakes, and kills "
                      "the gradient there: write -log D = softplus(-logit), which needs no eps.",
                      detect=_capped_for_confident_logits(lambda l: F.softplus(-l).mean(),
                                                          (torch.tensor([0.5, -1.0, 2.0]),),
                                                          (torch.tensor([-30.0, -40.0, 1.0]),))),
        Misconception("fakes labelled fake", lambda l: F.softplus(l).mean(),
                      "That is the discriminator's fake term (target 0): the generator wants D to say REAL, so its "
                      "cost is -log D(G(z)) = softplus(-logit)."),
        Misconception("sum", lambda l: F.softplus(-l).sum(),
                      "Take the mean over the batch, not the sum."),
        Misconception("sign", lambda l: -F.softplus(-l).mean(),
                      "The sign is flipped: the cost is -mean log D(G(z)) = +mean softplus(-logit), which is lower "
                      "when D believes the fakes."),
    ],
    ("The generator minimises -mean log D(G(z)): it wants D to call its fakes real.",
     "With D = sigmoid(l), the identity -log sigmoid(l) = softplus(-l) (F.softplus) keeps the cost finite "
     "and its gradient alive for very negative logits; average over the batch.",
     "def my_non_saturating_loss(fake_logits):\n"
     "    return F.softplus(-fake_logits).mean()"),
    "The non-saturating cost is -mean log D(G(z)), written so that it stays finite when D rejects the fakes.",
    forbidden=GAN_LOSSES + ("coursekit.gan.training.generator_step", "coursekit.gan.losses.get_generator_loss"),
    returns="scalar",
))
