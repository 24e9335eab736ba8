"""Lecture 01 (adversarial examples): one gradient step on the input, FGSM, the L-infinity projection.

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from coursekit.exercises import probes
from coursekit.exercises.judge.exercise import Answer, Exercise, Misconception, Probe

ASSIGNMENT = "01_adversarial_examples"
EXERCISES: list[Exercise] = []


def _input_grad(model, x, target, reduction="mean", normalise=False):
    x = x.clone().detach().requires_grad_(True)
    inp = (x - 0.1307) / 0.3081 if normalise else x
    loss = F.cross_entropy(model(inp), target, reduction=reduction)
    (grad,) = torch.autograd.grad(loss, x)
    return x.detach(), grad


# ---- 01 exercise 1: one gradient step on the input

def _step_ref(model, x, target, lr):
    x, g = _input_grad(model, x, target)
    return (x - lr * g).clamp(0, 1)


def _step_cases():
    model = probes.model("mnist_cnn")
    return [(model, probes.rand(1, 4, 1, 28, 28), torch.tensor([3, 3, 7, 1]), 0.5),
            (model, probes.rand(2, 6, 1, 28, 28), torch.tensor([0, 1, 2, 8, 8, 9]), 40.0),
            (model, probes.digits(64)[0][:5], torch.tensor([4, 4, 4, 4, 4]), 20.0)]


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex1-input-step", function="input_gradient_step",
    title="Exercise 1 (one gradient step on the input)", reference=_step_ref, cases=_step_cases,
    misconceptions=[
        Misconception(name="gradient ascent", wrong=lambda m, x, t, lr: (x + lr * _input_grad(m, x, t)[1]).clamp(0, 1),
                      hint="You stepped UP the loss: to make the model predict the target, go DOWN the gradient, x - lr * grad."),
        Misconception(name="no clip", wrong=lambda m, x, t, lr: x - lr * _input_grad(m, x, t)[1],
                      hint="Clip the result to [0, 1] (.clamp(0, 1)): pixel values outside that range are not an image."),
        Misconception(name="summed loss", wrong=lambda m, x, t, lr: (x - lr * _input_grad(m, x, t, "sum")[1]).clamp(0, 1),
                      hint="Use the MEAN cross-entropy over the batch (F.cross_entropy's default), not the sum: "
                      "the step must not grow with the batch size."),
        Misconception(name="sign step", wrong=lambda m, x, t, lr: (x - lr * _input_grad(m, x, t)[1].sign()).clamp(0, 1),
                      hint="This exercise takes a plain gradient step, x - lr * grad, not a step along the sign of the gradient (that is FGSM)."),
    ],
    hints=("Compute the loss F.cross_entropy(model(x), target) on a copy of x that requires a gradient, "
           "then take the gradient with respect to x (not the weights).",
           "Work on a copy of x that is a leaf needing a gradient (clone, detach, requires_grad_), take the "
           "gradient of the loss with respect to that copy with torch.autograd.grad; "
           "then step against the gradient and clip to [0, 1]; return a detached tensor.",
           "def input_gradient_step(model, x, target, lr):\n"
           "    x = x.clone().detach().requires_grad_(True)\n"
           "    loss = F.cross_entropy(model(x), target)\n"
           "    (grad,) = torch.autograd.grad(loss, x)\n"
           "    return (x - lr * grad).clamp(0, 1).detach()"),
    fallback="The step must be x - lr * (gradient of the mean cross-entropy towards the target), then clipped to [0, 1].",
    forbidden=("coursekit.attacks.fooling_image", "coursekit.attacks.targeted_close_attack",
               "coursekit.attacks.fgsm", "coursekit.attacks.pgd"),
))


# ---- 01 exercise 2: FGSM

def _fgsm_ref(model, x, y, eps):
    from coursekit import attacks

    return attacks.fgsm(model, x, y, eps)


def _fgsm_cases():
    model = probes.model("mnist_cnn")
    x, y = probes.digits(64)
    return [(model, x[:16], y[:16], 0.1), (model, x[16:32], y[16:32], 0.25), (model, x[:4], y[:4], 0.0),
            (probes.model("dropout_mlp"), x[32:40], y[32:40], 0.1)]


def _dropout_probe(global_seed: int) -> Probe:
    """The dropout model (in train mode) under a given global seed: an answer that leaves it in train
    mode gives different outputs under two seeds."""
    def args():
        x, y = probes.digits(64)
        return probes.model("dropout_mlp"), x[32:40], y[32:40], 0.1
    return Probe(args=args, global_seed=global_seed)


def _depends_on_the_random_dropout(answer: Answer) -> bool:
    return not answer.same("dropout-seed-123", "dropout-seed-456")


def _not_a_sign_step(answer: Answer) -> bool:
    """Some pixel moved by neither 0 nor eps (and was not clipped at 0 or 1): not a step along the sign."""
    for (model, x, y, eps), out in list(zip(answer.case_args, answer.cases))[:2]:     # mnist_cnn, eps > 0
        moved = (out - x).abs()
        allowed = ((moved - eps).abs() <= 1e-5) | (moved <= 1e-6) | (out <= 0) | (out >= 1)
        if not bool(allowed.all()):
            return True
    return False


def _outside_the_image_range(answer: Answer) -> bool:
    return any(float(out.min()) < 0 or float(out.max()) > 1 for out in answer.cases)


def _fgsm_wrong(direction=1.0, clip=True, use_sign=True, normalise=False, eval_mode=True):
    def wrong(model, x, y, eps):
        if eval_mode:
            model.eval()
        x, g = _input_grad(model, x, y, normalise=normalise)
        out = x + direction * eps * (g.sign() if use_sign else g)
        return out.clamp(0, 1) if clip else out
    return wrong


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex2-fgsm", function="my_fgsm",
    title="Exercise 2 (FGSM)", reference=_fgsm_ref, cases=_fgsm_cases,
    misconceptions=[
        Misconception(name="gradient descent", wrong=_fgsm_wrong(direction=-1.0),
                      hint="Your step goes DOWN the loss, which helps the model: an untargeted attack moves UP, x + eps * sign(grad)."),
        Misconception(name="no clip", wrong=_fgsm_wrong(clip=False),
                      hint="Clip x_adv to [0, 1] after the step (.clamp(0, 1)): it must stay an image.",
                      detect=_outside_the_image_range, depth=1),
        Misconception(name="raw gradient", wrong=_fgsm_wrong(use_sign=False),
                      hint="Use the SIGN of the gradient (grad.sign()): every pixel moves by exactly eps, the raw gradient is tiny.",
                      detect=_not_a_sign_step, depth=0),
        Misconception(name="normalised before the attack", wrong=_fgsm_wrong(normalise=True),
                      hint="Do not normalise the images yourself: coursekit's models take [0, 1] images and normalise inside."),
        Misconception(name="model left in train mode", wrong=_fgsm_wrong(eval_mode=False),
                      hint="Put the model in eval() mode first: in train mode dropout (or batch norm) changes the model at "
                      "every call, so your gradient and your attack are random.",
                      detect=_depends_on_the_random_dropout, depth=2),   # named once the step itself is right
    ],
    hints=("FGSM needs the gradient of the loss with respect to the INPUT image, for the true labels y.",
           "Make x a leaf that needs a gradient (clone, detach, requires_grad_), take the gradient of the MEAN "
           "cross-entropy for the TRUE labels with torch.autograd.grad, move each pixel by eps in the direction "
           "of its sign, and clip to [0, 1].",
           "def my_fgsm(model, x, y, eps):\n"
           "    model.eval()\n"
           "    x = x.clone().detach().requires_grad_(True)\n"
           "    loss = F.cross_entropy(model(x), y)\n"
           "    (grad,) = torch.autograd.grad(loss, x)\n"
           "    return (x + eps * grad.sign()).clamp(0, 1).detach()"),
    fallback="x_adv must equal clip(x + eps * sign(gradient of the loss w.r.t. x)) for the true labels.",
    forbidden=("coursekit.attacks.fgsm", "coursekit.attacks.pgd", "coursekit.defenses.make_adversarial"),
    atol=1e-6,
    probes={"dropout-seed-123": _dropout_probe(123), "dropout-seed-456": _dropout_probe(456)},
))


# ---- 01 exercise 3: the L-infinity projection

def _proj_ref(x_adv, x, eps):
    from coursekit import attacks

    return attacks.project_linf(x_adv, x, eps)


def _proj_cases(seed: int = 0):
    g = torch.Generator().manual_seed(3 + 1000 * seed)      # seed: the per-submission probe seed
    x = torch.rand(8, 1, 28, 28, generator=g)
    z = x + 0.5 * torch.randn(8, 1, 28, 28, generator=g)
    x2 = torch.rand(4, 3, 8, 8, generator=g)
    z2 = x2 + 0.05 * torch.randn(4, 3, 8, 8, generator=g)
    return [(z, x, 0.2), (z2, x2, 0.1), (x, x, 0.3)]


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex3-projection", function="my_project_linf",
    title="Exercise 3 (the L-infinity projection)", reference=_proj_ref, cases=_proj_cases,
    misconceptions=[
        Misconception(name="no image clip", wrong=lambda z, x, eps: x + (z - x).clamp(-eps, eps),
                      hint="After projecting onto the eps-ball, clip to the image range [0, 1] too."),
        Misconception(name="image clip only", wrong=lambda z, x, eps: z.clamp(0, 1),
                      hint="Clipping to [0, 1] is not enough: every pixel must also end within eps of x (clip x_adv - x to [-eps, eps])."),
        Misconception(name="clipped the image, not the difference", wrong=lambda z, x, eps: z.clamp(-eps, eps).clamp(0, 1),
                      hint="Clip the DIFFERENCE x_adv - x to [-eps, eps], then add it back to x; clipping x_adv itself to [-eps, eps] is not the ball around x."),
        Misconception(name="jump to the boundary", wrong=lambda z, x, eps: (x + eps * (z - x).sign()).clamp(0, 1),
                      hint="Projecting means clipping: a point inside the ball stays where it is, it does not jump to the boundary (no sign())."),
    ],
    hints=("Two constraints: within eps of x (per pixel), and inside [0, 1]. Write delta = x_adv - x first.",
           "First clip the DIFFERENCE x_adv - x to [-eps, eps], add it back to x, then clip that to [0, 1].",
           "def my_project_linf(x_adv, x, eps):\n"
           "    delta = (x_adv - x).clamp(-eps, eps)\n"
           "    return (x + delta).clamp(0, 1)"),
    fallback="The projection must be clip_[0,1](x + clip_[-eps,eps](x_adv - x)).",
    forbidden=("coursekit.attacks.project_linf", "coursekit.attacks.pgd", "coursekit.attacks.project_l2"),
    atol=1e-6,
))


