"""Lecture 03 (defenses and transferability): the bypass loss, the inner step of fast adversarial
training (stochastic: graded by bands), the transfer success rate.

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from coursekit.exercises import probes
from coursekit.exercises.judge.exercise import Answer, Bands, Exercise, Misconception, Probe, Property

ASSIGNMENT = "03_defenses_transferability"
EXERCISES: list[Exercise] = []


# ---- 03 exercise 1: the bypass loss

def _bypass_ref(z, d, y, lam):
    from coursekit import defenses

    return defenses.bypass_loss(z, d, y, lam, kind="ce")


def _bypass_cases():
    g = torch.Generator().manual_seed(6)
    z, d = torch.randn(16, 10, generator=g) * 3, torch.randn(16, generator=g) * 3
    y = torch.randint(0, 10, (16,), generator=g)
    return [(z, d, y, 0.5), (z, d, y, 2.0), (z, torch.full((16,), 100.0), y, 1.0), (z[:4], d[:4], y[:4], 0.0)]


def _bypass_wrong(ce_sign=-1.0, clean=F.softplus, weight_on="detector", reduce="mean"):
    def wrong(z, d, y, lam):
        ce = ce_sign * F.cross_entropy(z, y, reduction="none")
        look = clean(d)
        total = lam * ce + look if weight_on == "classifier" else ce + (lam if weight_on == "detector" else 1.0) * look
        return total.sum() if reduce == "sum" else total.mean()
    return wrong


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex1-bypass-loss", function="my_bypass_loss",
    title="Exercise 1 (the bypass loss)", reference=_bypass_ref, cases=_bypass_cases,
    misconceptions=[
        Misconception(name="CE sign", wrong=_bypass_wrong(ce_sign=1.0),
                      hint="Wrong sign on the classifier term: the attacker minimises this loss and wants the classifier to "
                      "LEAVE class y, so the term is -CE(classifier_logits, y)."),
        Misconception(name="unstable log", wrong=_bypass_wrong(clean=lambda d: -torch.log(1 - torch.sigmoid(d))),
                      hint="log(1 - sigmoid(d)) overflows for large detector logits: use F.softplus(d), the same value computed stably."),
        Misconception(name="BCE towards 'adversarial'", wrong=_bypass_wrong(clean=lambda d: F.softplus(-d)),
                      hint="To look clean the detector must say 0: BCE(d, 0) = softplus(d), not softplus(-d) (that is BCE(d, 1))."),
        Misconception(name="weight ignored", wrong=_bypass_wrong(weight_on="nowhere"),
                      hint="Multiply the detector term by detector_weight (lambda)."),
        Misconception(name="weight on the wrong term", wrong=_bypass_wrong(weight_on="classifier"),
                      hint="detector_weight multiplies the DETECTOR term, softplus(detector_logits), not the cross-entropy."),
        Misconception(name="sum over the batch", wrong=_bypass_wrong(reduce="sum"),
                      hint="Average over the batch (.mean()), do not sum."),
    ],
    hints=("Two terms per example: 'leave class y' is minus the cross-entropy, 'look clean' is the binary cross-entropy "
           "of the detector logit against 0. Use reduction='none' to keep one value per example.",
           "'Leave class y' is minus the per-example cross-entropy of the classifier logits (reduction='none'); "
           "'look clean' is the softplus of the detector logits; weight the second by detector_weight, add, and "
           "take the mean over the batch.",
           "def my_bypass_loss(classifier_logits, detector_logits, y, detector_weight):\n"
           "    leave_class = -F.cross_entropy(classifier_logits, y, reduction='none')\n"
           "    look_clean = F.softplus(detector_logits)\n"
           "    return (leave_class + detector_weight * look_clean).mean()"),
    fallback="The loss is mean(-CE(classifier_logits, y) + detector_weight * softplus(detector_logits)): check the signs and the weight.",
    forbidden=("coursekit.defenses.bypass_loss", "coursekit.defenses.adaptive_attack"),
    returns="scalar", atol=1e-5, gradient=True,
))


# ---- 03 exercise 2: the inner step of fast adversarial training (stochastic: bands)

def _fast_at_ref(model, x, y, eps, alpha, generator):
    from coursekit import attacks

    delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
    x_start = (x + delta).clamp(0, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_start), y), x_start)
    return attacks.project_linf(x_start.detach() + alpha * grad.sign(), x, eps).detach()


def _fast_at_wrong(start="uniform", direction=1.0, project="x", use_generator=True, step_from="start", grad_at="start"):
    from coursekit import attacks

    def wrong(model, x, y, eps, alpha, generator):
        if start == "none":
            delta = torch.zeros_like(x)
        else:
            u = torch.rand(x.shape, generator=generator if use_generator else None)
            delta = u * eps if start == "positive" else (u * 2 - 1) * eps
        x_start = (x + delta).clamp(0, 1).requires_grad_(True)
        at = x_start if grad_at == "start" else x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(at), y), at)
        stepped = (x_start.detach() if step_from == "start" else x) + direction * alpha * grad.sign()
        if project == "none":
            return stepped
        return attacks.project_linf(stepped, x if project == "x" else x_start.detach(), eps).detach()
    return wrong


def _fast_at_cases():
    model = probes.model("mnist_cnn")
    x, y = probes.digits(64)
    return [(model, x[:32], y[:32], 0.3, 0.375, torch.Generator().manual_seed(0)),
            (model, x[32:48], y[32:48], 0.1, 0.125, torch.Generator().manual_seed(1))]


def _band_args(seed: int) -> tuple:
    x, y = probes.digits(64)
    return probes.model("mnist_cnn"), x[:32], y[:32], 0.3, 0.375, torch.Generator().manual_seed(seed)


def _fast_at_stats(out, args) -> dict:
    """How strong the attack is, and how far it moved the pixels. ``inner_change`` (the mean |x_adv - x|
    over pixels strictly inside (0, 1)) tells a step from the random start (|delta + alpha sign(g)| spreads
    below eps) from a step taken again from x (every unclipped pixel lands exactly eps away)."""
    model, x, y = args[:3]
    with torch.no_grad():
        loss = F.cross_entropy(model(out), y).item()
        fooled = (model(out).argmax(1) != y).float().mean().item()
    change = (out - x).abs()
    inside = (out > 0) & (out < 1)
    return {"adversarial_loss": loss, "fooled_fraction": fooled, "mean_abs_change": float(change.mean()),
            "inner_change": float(change[inside].mean())}


def _generator_probe(global_seed: int, generator_seed: int = 0) -> Probe:
    """The same images under a given global seed and generator seed."""
    def args():
        x, y = probes.digits(64)
        return probes.model("mnist_cnn"), x[:8], y[:8], 0.3, 0.375, torch.Generator().manual_seed(generator_seed)
    return Probe(args=args, global_seed=global_seed)


def _repeats_with_generator(answer: Answer) -> bool:
    """The same generator gives the same result whatever torch's global seed."""
    return answer.same("generator-seed-123", "generator-seed-456")


def _follows_the_generator(answer: Answer) -> bool:
    """Another generator seed gives another result (an answer that seeds its own generator does not)."""
    return not answer.same("generator-seed-123", "other-generator-seed")


def _within_ball(answer: Answer) -> bool:
    for (model, x, y, eps, alpha, g), out in zip(answer.case_args, answer.cases):
        if float((out - x).abs().max()) > eps + 1e-6 or float(out.min()) < 0 or float(out.max()) > 1:
            return False
    return True


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex2-fast-at", function="fast_at_batch",
    title="Exercise 2 (the inner step of fast adversarial training)", reference=_fast_at_ref, cases=_fast_at_cases,
    misconceptions=[
        Misconception(name="no random start", wrong=_fast_at_wrong(start="none"),
                      hint="Start from a random point of the eps-ball: delta ~ U(-eps, eps) per pixel, drawn with the generator."),
        Misconception(name="one-sided random start", wrong=_fast_at_wrong(start="positive"),
                      hint="The random start must be uniform in [-eps, eps]: torch.rand gives [0, 1), so use (rand * 2 - 1) * eps."),
        Misconception(name="gradient descent", wrong=_fast_at_wrong(direction=-1.0),
                      hint="The step goes DOWN the loss: the attack must go UP, x' + alpha * sign(grad)."),
        Misconception(name="no projection", wrong=_fast_at_wrong(project="none"),
                      hint="Project back at the end: attacks.project_linf(x'', x, eps) keeps the eps-ball around x and [0, 1]."),
        Misconception(name="projected around the start", wrong=_fast_at_wrong(project="start"),
                      hint="Project onto the eps-ball around the CLEAN x, not around the random start."),
        Misconception(name="random start without the generator", wrong=_fast_at_wrong(use_generator=False),
                      hint="Draw the random start with torch.rand(x.shape, generator=generator), so that the same generator "
                      "gives the same batch.",
                      detect=lambda answer: not (_repeats_with_generator(answer) and _follows_the_generator(answer))),
        Misconception(name="stepped from x", wrong=_fast_at_wrong(step_from="x"),
                      hint="Take the step FROM the random start x' (x' + alpha * sign(gradient at x')), not from x: "
                      "starting again from x throws the random start away."),
        Misconception(name="gradient at x", wrong=_fast_at_wrong(grad_at="x"),
                      hint="Take the gradient AT the random start x', not at the clean x: the point of the random "
                      "start is a gradient from somewhere else in the eps-ball."),
    ],
    hints=("Three steps: a random start inside the eps-ball, one FGSM-like step of size alpha from there, "
           "and a projection back onto the eps-ball around the clean x.",
           "torch.rand(x.shape, generator=generator) is uniform in [0, 1): rescale it to [-eps, eps]. The step is "
           "an FGSM step of size alpha taken FROM the random start (the gradient there); attacks.project_linf("
           "x_new, x, eps) brings the result back around the CLEAN x.",
           "def fast_at_batch(model, x, y, eps, alpha, generator):\n"
           "    delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps\n"
           "    x_start = (x + delta).clamp(0, 1).requires_grad_(True)\n"
           "    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_start), y), x_start)\n"
           "    return attacks.project_linf(x_start.detach() + alpha * grad.sign(), x, eps).detach()"),
    fallback="Random start U(-eps, eps) drawn with the generator, clip, one signed step of size alpha uphill, project onto the eps-ball around x.",
    forbidden=("coursekit.attacks.fgsm", "coursekit.attacks.pgd", "coursekit.defenses.make_adversarial",
               "coursekit.defenses.adversarial_training"),
    bands=Bands(args=_band_args, stats=_fast_at_stats, seeds=40, min_margins={"inner_change": 0.002}),
    probes={"generator-seed-123": _generator_probe(123), "generator-seed-456": _generator_probe(456),
            "other-generator-seed": _generator_probe(123, generator_seed=1)},
    properties=[Property(holds=_within_ball, message="Stay in the eps-ball around x and in [0, 1]: project with "
                                                     "attacks.project_linf(x'', x, eps)."),
                Property(holds=lambda answer: _repeats_with_generator(answer) and _follows_the_generator(answer),
                         message="Draw the random start with the generator you are given (not torch's global "
                                 "generator, nor one you seed yourself), so that runs repeat.")],
))


# ---- 03 exercise 3: transfer success rate

def _transfer_ref(target_model, x_adv, x, y):
    with torch.no_grad():
        correct = target_model(x).argmax(1) == y
        fooled = target_model(x_adv).argmax(1) != y
    return float((fooled & correct).sum() / correct.sum())


@lru_cache(maxsize=None)
def _transfer_data():
    from coursekit import attacks

    cnn = probes.model("mnist_cnn")
    x, y = probes.digits(120)
    return x, y, attacks.fgsm(cnn, x, y, 0.25), attacks.fgsm(cnn, x, y, 0.1)


def _transfer_cases():
    x, y, adv, adv_small = _transfer_data()
    return [(probes.model("mnist_logreg"), adv, x, y), (probes.model("mnist_cnn"), adv_small, x, y),
            (probes.model("mnist_mlp"), adv, x, y)]


def _masks(m, x_adv, x, y):
    with torch.no_grad():
        return m(x).argmax(1) == y, m(x_adv).argmax(1) != y


def _transfer_wrong(rate):
    def wrong(target_model, x_adv, x, y):
        correct, fooled = _masks(target_model, x_adv, x, y)
        return float(rate(correct, fooled))
    return wrong


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex3-transfer", function="transfer_success",
    title="Exercise 3 (transfer success rate)", reference=_transfer_ref, cases=_transfer_cases,
    misconceptions=[
        Misconception(name="all examples", wrong=_transfer_wrong(lambda correct, fooled: fooled.float().mean()),
                      hint="Count only examples the TARGET gets right when clean: its own mistakes are not the attack's success."),
        Misconception(name="divided by all", wrong=_transfer_wrong(lambda correct, fooled: (fooled & correct).sum() / len(fooled)),
                      hint="Divide by the number of examples the target classifies correctly when clean, not by all examples."),
        Misconception(name="numerator not restricted", wrong=_transfer_wrong(lambda correct, fooled: fooled.sum() / correct.sum()),
                      hint="In the numerator too, count only the examples that were correct when clean (fooled & correct)."),
        Misconception(name="accuracy instead of success", wrong=_transfer_wrong(lambda correct, fooled: (correct & ~fooled).sum() / correct.sum()),
                      hint="That is the accuracy that survives the attack: the success rate counts the MISclassified adversarial examples."),
    ],
    hints=("Two boolean masks over the examples: correct on clean x, and wrong on x_adv. Use torch.no_grad().",
           "Two boolean masks from the target's argmax predictions: right on x, and wrong on x_adv. The rate "
           "is how many examples are in BOTH, over how many are in the first.",
           "def transfer_success(target_model, x_adv, x, y):\n"
           "    with torch.no_grad():\n"
           "        correct = target_model(x).argmax(1) == y\n"
           "        fooled = target_model(x_adv).argmax(1) != y\n"
           "    return float((fooled & correct).sum() / correct.sum())"),
    fallback="Count only examples the TARGET gets right when clean, and divide by their number.",
    forbidden=("coursekit.transfer.transfer_matrix", "coursekit.attacks.attack_success_rate"),
    returns="float", atol=1e-6,
))



