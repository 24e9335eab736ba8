"""Lecture 01 (adversarial examples): one gradient step on the input, the fooling loop (deep), FGSM, the
L-infinity projection, the PGD loop (deep).

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from coursekit.exercises import harnesses, probes
from coursekit.exercises.judge.exercise import Answer, Bands, Exercise, Misconception, Probe, Property

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
    title="Exercise 3 (FGSM)", reference=_fgsm_ref, cases=_fgsm_cases,
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
    title="Exercise 4 (the L-infinity projection)", reference=_proj_ref, cases=_proj_cases,
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




# ---- 01 exercise 2 (deep): the fooling loop, from noise to a chosen class

def _fooling_ref(model, x0, target, alpha, max_steps, confidence):
    from coursekit import attacks

    return attacks.fooling_loop(model, x0, target, alpha, max_steps, confidence)


def _fooling_cases():
    model = probes.model("mnist_cnn")
    noise = probes.rand(11, 6, 1, 28, 28)
    x, _ = probes.digits(64)
    with torch.no_grad():
        own = model(x[:4]).argmax(1)            # confident from the start: no step is needed
    return [(model, noise, torch.tensor([0, 1, 2, 3, 4, 5]), 0.02, 60, 0.99),
            (model, noise[:4], torch.tensor([9, 9, 6, 7]), 0.01, 3, 0.99),            # stopped by max_steps
            (model, torch.cat([x[:2], noise[:2]]), torch.cat([own[:2], torch.tensor([8, 2])]), 0.02, 60, 0.9),
            (model, x[:4], own, 0.02, 10, 0.5)]                                      # done before any step


def _fooling_wrong(direction=1.0, clamp=True, freeze=True, check_first=True, rule="prob", use_sign=True,
                   count_offset=0):
    def wrong(model, x0, target, alpha, max_steps, confidence):
        model.eval()
        x = x0.clone().detach()
        rows = torch.arange(len(x))
        steps = 0
        while True:
            x.requires_grad_(True)
            logits = model(x)
            done = (logits.softmax(1)[rows, target] >= confidence) if rule == "prob" else (logits.argmax(1) == target)
            if check_first and (bool(done.all()) or steps == max_steps):
                return x.detach(), steps + count_offset
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, target), x)
            stepped = x - direction * alpha * (grad.sign() if use_sign else grad)
            stepped = stepped.clamp(0, 1) if clamp else stepped
            x = (torch.where(done.view(-1, 1, 1, 1), x, stepped) if freeze else stepped).detach()
            steps += 1
            if not check_first:
                with torch.no_grad():
                    done = model(x).softmax(1)[rows, target] >= confidence
                if bool(done.all()) or steps == max_steps:
                    return x, steps + count_offset
    return wrong


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex-fooling-loop", function="fooling_loop",
    title="Exercise 2 (the fooling loop: from noise to a chosen class)", reference=_fooling_ref, cases=_fooling_cases,
    misconceptions=[
        Misconception(name="gradient ascent", wrong=_fooling_wrong(direction=-1.0), depth=0,
                      hint="Your steps go UP the cross-entropy towards the target, away from it: step against the "
                      "gradient, x - alpha * sign(grad)."),
        Misconception(name="no clamp", wrong=_fooling_wrong(clamp=False),
                      hint="Clamp to [0, 1] after every step (.clamp(0, 1)): pixel values outside that range are not an image."),
        Misconception(name="plain gradient step", wrong=_fooling_wrong(use_sign=False), depth=0,
                      hint="This loop takes SIGNED steps, x - alpha * sign(grad): every pixel moves by alpha, whatever "
                      "the size of the gradient."),
        Misconception(name="confident images keep moving", wrong=_fooling_wrong(freeze=False),
                      hint="An image that has reached the confidence must stay as it is while the others go on: keep it "
                      "with torch.where(done.view(-1, 1, 1, 1), x, x_stepped)."),
        Misconception(name="checks after the step", wrong=_fooling_wrong(check_first=False),
                      hint="Check the stopping rule BEFORE each step: an image that is already confident needs no step, "
                      "and steps counts the steps actually taken."),
        Misconception(name="argmax instead of the confidence", wrong=_fooling_wrong(rule="argmax"),
                      hint="Stop on the probability, p(target | x) >= confidence (softmax of the logits), not as soon as "
                      "the target is the most likely class."),
        Misconception(name="steps miscounted", wrong=_fooling_wrong(count_offset=1), depth=2,
                      hint="steps must be the number of gradient steps taken: 0 when the images are confident from the start."),
    ],
    hints=("Four parts in a loop: the loss (cross-entropy towards the target), the step (signed, down the loss), "
           "the clamp to [0, 1], and the stopping rule (every image at p(target) >= confidence, or max_steps). "
           "Check the rule BEFORE each step.",
           "In the loop: make x require a gradient and compute the logits once; one flag per image says whether "
           "the softmax probability of its target has reached the confidence; if every flag is up, or max_steps "
           "steps are taken, return the detached images and the count; otherwise take the input gradient of the "
           "cross-entropy towards the target, step against its sign, clamp, keep the flagged images as they were "
           "(torch.where), and count the step.",
           "def fooling_loop(model, x0, target, alpha, max_steps, confidence):\n"
           "    model.eval()\n"
           "    x = x0.clone().detach()\n"
           "    rows = torch.arange(len(x))\n"
           "    steps = 0\n"
           "    while True:\n"
           "        x.requires_grad_(True)\n"
           "        logits = model(x)\n"
           "        done = logits.softmax(1)[rows, target] >= confidence\n"
           "        if bool(done.all()) or steps == max_steps:\n"
           "            return x.detach(), steps\n"
           "        loss = F.cross_entropy(logits, target)\n"
           "        (grad,) = torch.autograd.grad(loss, x)\n"
           "        stepped = (x - alpha * grad.sign()).clamp(0, 1)\n"
           "        x = torch.where(done.view(-1, 1, 1, 1), x, stepped).detach()\n"
           "        steps += 1"),
    fallback="The loop must check p(target | x) >= confidence for every image BEFORE each step, then move the images "
             "that are not done by -alpha * sign(gradient of the cross-entropy towards the target), clamp to [0, 1], and "
             "return (x, the number of steps taken).",
    forbidden=("coursekit.attacks.fooling_loop", "coursekit.attacks.fooling_image",
               "coursekit.attacks.targeted_close_attack", "coursekit.attacks.fgsm", "coursekit.attacks.pgd"),
    harness=harnesses.fooling_pair, shape="the shape of x0 (and steps, an int)", atol=1e-6,
))


# ---- 01 exercise 5 (deep): the PGD loop

def _pgd_ref(model, x, y, eps, alpha, steps, generator):
    from coursekit import attacks

    return attacks.pgd(model, x, y, eps, alpha, steps, generator=generator)


def _pgd_cases():
    model = probes.model("mnist_cnn")
    x, y = probes.digits(64)
    return [(model, x[:16], y[:16], 0.2, 0.05, 5, torch.Generator().manual_seed(0)),
            (model, x[16:24], y[16:24], 0.1, 0.03, 3, torch.Generator().manual_seed(1)),
            (model, x[24:28], y[24:28], 0.3, 0.1, 0, torch.Generator().manual_seed(2))]


def _pgd_wrong(start="uniform", use_generator=True, clip_start=True, direction=1.0, use_sign=True,
               project="x", steps_offset=0):
    from coursekit import attacks

    def wrong(model, x, y, eps, alpha, steps, generator):
        model.eval()
        if start == "none":
            x_adv = x.clone()
        else:
            u = torch.rand(x.shape, generator=generator if use_generator else None)
            x_adv = x + (u * eps if start == "positive" else (2 * u - 1) * eps)
            x_adv = x_adv.clamp(0, 1) if clip_start else x_adv
        x_start = x_adv.detach()
        for _ in range(max(steps + steps_offset, 0)):
            x_adv = x_adv.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
            stepped = x_adv.detach() + direction * alpha * (grad.sign() if use_sign else grad)
            if project == "x":
                x_adv = attacks.project_linf(stepped, x, eps)
            elif project == "start":
                x_adv = attacks.project_linf(stepped, x_start, eps)
            else:
                x_adv = stepped.clamp(0, 1)
        return x_adv.detach()
    return wrong


def _pgd_probe(global_seed: int, generator_seed: int = 0) -> Probe:
    def args():
        x, y = probes.digits(64)
        return probes.model("mnist_cnn"), x[:8], y[:8], 0.2, 0.05, 2, torch.Generator().manual_seed(generator_seed)
    return Probe(args=args, global_seed=global_seed)


def _pgd_honours_its_generator(answer: Answer) -> bool:
    return answer.same("generator-seed-123", "generator-seed-456") and \
        not answer.same("generator-seed-123", "other-generator-seed")


def _pgd_band_args(seed: int) -> tuple:
    x, y = probes.digits(64)
    return probes.model("mnist_cnn"), x[:32], y[:32], 0.15, 0.04, 4, torch.Generator().manual_seed(seed)


def _pgd_stats(out, args) -> dict:
    """How strong the attack is and where it ended: ``at_the_boundary`` (pixels exactly eps away from x)
    separates a walk from the random start from one that started at x."""
    model, x, y, eps = args[:4]
    with torch.no_grad():
        logits = model(out)
    delta = out - x
    return {"adversarial_loss": F.cross_entropy(logits, y).item(),
            "fooled_fraction": (logits.argmax(1) != y).float().mean().item(),
            "mean_abs_change": float(delta.abs().mean()),
            "at_the_boundary": float(((delta.abs() - eps).abs() < 1e-4).float().mean())}


def _pgd_within_ball(answer: Answer) -> bool:
    for (model, x, y, eps, alpha, steps, g), out in zip(answer.case_args, answer.cases):
        if float((out - x).abs().max()) > eps + 1e-6 or float(out.min()) < 0 or float(out.max()) > 1:
            return False
    return True


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex-pgd-loop", function="my_pgd",
    title="Exercise 5 (the PGD loop)", reference=_pgd_ref, cases=_pgd_cases,
    misconceptions=[
        Misconception(name="no random start", wrong=_pgd_wrong(start="none"),
                      hint="PGD starts from a RANDOM point of the eps-ball: x plus uniform noise in [-eps, eps] drawn with "
                      "the generator you are given, clipped to [0, 1]."),
        Misconception(name="one-sided random start", wrong=_pgd_wrong(start="positive"),
                      hint="The random start must be uniform in [-eps, eps]: torch.rand gives [0, 1), so rescale it "
                      "(twice the draw minus one, times eps)."),
        Misconception(name="random start not clipped", wrong=_pgd_wrong(clip_start=False),
                      hint="Clip the random start to [0, 1] before the first gradient: it must be an image."),
        Misconception(name="gradient descent", wrong=_pgd_wrong(direction=-1.0), depth=0,
                      hint="Your steps go DOWN the loss, which helps the model: an untargeted attack steps UP, "
                      "+ alpha * sign(grad)."),
        Misconception(name="raw gradient", wrong=_pgd_wrong(use_sign=False), depth=0,
                      hint="Use the SIGN of the gradient: each step moves every pixel by alpha."),
        Misconception(name="projected around the random start", wrong=_pgd_wrong(project="start"),
                      hint="Project onto the eps-ball around the CLEAN x, not around the random start: the attack may "
                      "move each pixel at most eps away from the original image."),
        Misconception(name="no projection", wrong=_pgd_wrong(project="none"), depth=0,
                      hint="After each step, project back with attacks.project_linf onto the eps-ball around the clean x "
                      "(clipping to [0, 1] alone is not enough)."),
        Misconception(name="steps miscounted", wrong=_pgd_wrong(steps_offset=1), depth=2,
                      hint="Take exactly `steps` gradient steps after the random start (steps = 0 returns the random start)."),
        Misconception(name="random start without the generator", wrong=_pgd_wrong(use_generator=False),
                      hint="Draw the random start with the generator you are given (torch.rand(..., generator=generator)): "
                      "the same generator must give the same attack.",
                      detect=lambda answer: not _pgd_honours_its_generator(answer)),
    ],
    hints=("Three parts: a random start in the eps-ball (drawn with the generator), then `steps` FGSM-like steps of "
           "size alpha, each followed by a projection back onto the eps-ball around the CLEAN x and [0, 1].",
           "Draw the start as uniform noise in [-eps, eps] with the generator, add it to x and clip to [0, 1]. In the "
           "loop: make the iterate a leaf that needs a gradient, take the input gradient of the cross-entropy for "
           "the true labels, add alpha times its sign, and project with attacks.project_linf around the clean x.",
           "def my_pgd(model, x, y, eps, alpha, steps, generator):\n"
           "    model.eval()\n"
           "    delta = (2 * torch.rand(x.shape, generator=generator) - 1) * eps\n"
           "    x_adv = (x + delta).clamp(0, 1)\n"
           "    for _ in range(steps):\n"
           "        x_adv = x_adv.detach().requires_grad_(True)\n"
           "        loss = F.cross_entropy(model(x_adv), y)\n"
           "        (grad,) = torch.autograd.grad(loss, x_adv)\n"
           "        x_adv = attacks.project_linf(x_adv.detach() + alpha * grad.sign(), x, eps)\n"
           "    return x_adv.detach()"),
    fallback="PGD: start at clip(x + U(-eps, eps)) drawn with the generator, then `steps` times x_adv = "
             "project_linf(x_adv + alpha * sign(gradient of the cross-entropy), x, eps).",
    forbidden=("coursekit.attacks.pgd", "coursekit.attacks.fgsm", "coursekit.defenses.make_adversarial",
               "coursekit.defenses.adversarial_training_epoch"),
    atol=1e-5,
    probes={"generator-seed-123": _pgd_probe(123), "generator-seed-456": _pgd_probe(456),
            "other-generator-seed": _pgd_probe(123, generator_seed=1)},
    properties=[Property(holds=_pgd_within_ball, depth=0,
                         message="Stay in the eps-ball around the clean x and in [0, 1]: project every step with "
                                 "attacks.project_linf(x_new, x, eps)."),
                Property(holds=_pgd_honours_its_generator,
                         message="Draw the random start with the generator you are given (not torch's global generator, "
                                 "nor one you seed yourself), so that runs repeat.")],
    bands=Bands(args=_pgd_band_args, stats=_pgd_stats, seeds=40, min_margin=0.01,
                min_margins={"at_the_boundary": 0.005}),
))
