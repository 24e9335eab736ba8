"""Registry entries for lecture 04 (the GAN game): discriminator loss, optimal D, non-saturating cost.

Imported at the bottom of :mod:`coursekit.exercises`; see that module for how answers are judged.
"""
from __future__ import annotations

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


# ---- 04 exercise 2: the optimal discriminator

def _optimal_d_ref(p_data, p_g):
    return p_data / (p_data + p_g)


def _optimal_d_cases():
    g = torch.Generator().manual_seed(2)
    return [(torch.rand(50, generator=g) + 0.01, torch.rand(50, generator=g) + 0.01),
            (torch.tensor([1.0, 3.0, 1e-3, 2.0]), torch.tensor([1.0, 1.0, 5.0, 0.5])),
            (torch.rand(4, 6, generator=g) * 3 + 0.1, torch.rand(4, 6, generator=g) + 0.1)]


register(Exercise(
    ASSIGNMENT, "ex2-optimal-d", "optimal_discriminator",
    "Exercise 2 (the optimal discriminator)", _optimal_d_ref, _optimal_d_cases,
    [
        Misconception("swapped", lambda p_data, p_g: p_g / (p_data + p_g),
                      "D* is the probability that x is REAL: p_data goes in the numerator, not p_g."),
        Misconception("density ratio", lambda p_data, p_g: p_data / p_g,
                      "p_data / p_g is not a probability (it can exceed 1): divide by the SUM p_data + p_g."),
        Misconception("one half", lambda p_data, p_g: torch.full_like(p_data, 0.5),
                      "D* = 1/2 only where p_g = p_data (at the end of the game); in general it depends on both densities."),
        Misconception("log ratio", lambda p_data, p_g: torch.log(p_data / p_g),
                      "log(p_data / p_g) is the LOGIT of D* (what a network outputs before the sigmoid): "
                      "return the probability p_data / (p_data + p_g)."),
    ],
    ("For a fixed G, maximise p_data(x) log D + p_g(x) log(1 - D) for each x separately: set the "
     "derivative in D to zero.",
     "The derivative is p_data / D - p_g / (1 - D); solve p_data (1 - D) = p_g D for D, elementwise "
     "(tensors of densities in, tensor of probabilities out).",
     "def optimal_discriminator(p_data, p_g):\n"
     "    return p_data / (p_data + p_g)"),
    "D*(x) is the probability that x is real given the two densities: the share of p_data in p_data + p_g, "
    "elementwise.",
    shape="the shape of p_data (one value per point)",
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
