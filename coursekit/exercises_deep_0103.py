"""Registry entries for the deep exercises of lectures 01-03 (issue 13): the fooling loop and the PGD
loop (01), robust logistic regression in closed form (02), an adversarial-training epoch (03).

Imported at the bottom of :mod:`coursekit.exercises` (like ``exercises_04`` ... ``exercises_07``) until
the exercise engine becomes a package; then these entries move to its ``lecture01`` ... ``lecture03``
modules. Each entry: a reference (coursekit's own function), probes, a misconception bank with
plain-language hints, behaviour checks (the caller's tensors are not changed in place; the random start
comes from the generator it is given), shortcut detection, a hint ladder.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from coursekit.exercises import (AnswerFormError, Exercise, Misconception, _call, _digits, _model,
                                 _same_under_two_global_seeds, register)

def _leaves_its_inputs_alone(fn, make_args, positions) -> bool:
    """Whether the answer leaves the caller's tensors unchanged (checked on the caller's own tensors:
    the engine's probes run on clones, so an in-place change would otherwise go unseen)."""
    args = make_args()
    kept = [args[i].clone() for i in positions]
    try:
        fn(*args)
    except Exception:
        return True                          # an answer that raises is judged elsewhere
    return all(torch.equal(args[i], k) for i, k in zip(positions, kept))


# ================================================================ 01: the fooling loop

def _fooling_ref(model, x0, target, alpha, max_steps, confidence):
    from coursekit import attacks

    x, history = attacks.fooling_image(model, target, start=x0, lr=alpha, max_steps=max_steps,
                                       confidence=confidence, method="sign")
    return x, history["steps"]


def _fooling_pair(out):
    if not (isinstance(out, tuple) and len(out) == 2):
        raise AnswerFormError("fooling_loop must return a pair (x, steps).")
    x, steps = out
    if not isinstance(x, torch.Tensor):
        raise AnswerFormError(f"fooling_loop must return the images as a torch.Tensor, not {type(x).__name__}.")
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise AnswerFormError("fooling_loop must return the number of steps as a Python int.")
    return x, steps


def _wrap_fooling(fn):
    def pure(*args):
        x, steps = _fooling_pair(fn(*args))
        return torch.cat([x.flatten(), torch.tensor([float(steps)], dtype=x.dtype)])
    return pure


def _fooling_cases():
    model = _model("mnist_cnn")
    g = torch.Generator().manual_seed(11)
    noise = torch.rand(6, 1, 28, 28, generator=g)
    x, y = _digits(64)
    with torch.no_grad():
        own = model(x[:4]).argmax(1)            # already confident at the start: no step is needed
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


def _fooling_keeps_x0(fn) -> bool:
    model = _model("mnist_cnn")
    return _leaves_its_inputs_alone(
        fn, lambda: (model, torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3)),
                     torch.tensor([4, 6]), 0.02, 5, 0.99), (1,))


register(Exercise(
    "01_adversarial_examples", "ex-fooling-loop", "fooling_loop",
    "Exercise 2 (the fooling loop: from noise to a chosen class)", _fooling_ref, _fooling_cases,
    [
        Misconception("gradient ascent", _fooling_wrong(direction=-1.0),
                      "Your steps go UP the cross-entropy towards the target, away from it: step against the "
                      "gradient, x - alpha * sign(grad)."),
        Misconception("no clamp", _fooling_wrong(clamp=False),
                      "Clamp to [0, 1] after every step (.clamp(0, 1)): pixel values outside that range are not an image."),
        Misconception("plain gradient step", _fooling_wrong(use_sign=False),
                      "This loop takes SIGNED steps, x - alpha * sign(grad): every pixel moves by alpha, whatever the "
                      "size of the gradient."),
        Misconception("confident images keep moving", _fooling_wrong(freeze=False),
                      "An image that has reached the confidence must stay as it is while the others go on: keep it "
                      "with torch.where(done.view(-1, 1, 1, 1), x, x_stepped)."),
        Misconception("checks after the step", _fooling_wrong(check_first=False),
                      "Check the stopping rule BEFORE each step: an image that is already confident needs no step, and "
                      "steps counts the steps actually taken."),
        Misconception("argmax instead of the confidence", _fooling_wrong(rule="argmax"),
                      "Stop on the probability, p(target | x) >= confidence (softmax of the logits), not as soon as "
                      "the target is the most likely class."),
        Misconception("steps miscounted", _fooling_wrong(count_offset=1),
                      "steps must be the number of gradient steps taken: 0 when the images are confident from the start."),
        Misconception("x0 changed in place", None,
                      "Work on a copy of x0 (x = x0.clone().detach()): the caller's noise must not change.",
                      detect=lambda fn: not _fooling_keeps_x0(fn)),
    ],
    ("Four parts in a loop: the loss (cross-entropy towards the target), the step (signed, down the loss), "
     "the clamp to [0, 1], and the stopping rule (every image at p(target) >= confidence, or max_steps). "
     "Check the rule BEFORE each step.",
     "In the loop: make x require a gradient, compute the logits once; done = softmax probability of the "
     "target >= confidence (one flag per image); return (x detached, steps) if all are done or steps == "
     "max_steps; otherwise take the gradient of F.cross_entropy(logits, target) with torch.autograd.grad, "
     "step and clamp, keep the done images with torch.where, and count the step.",
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
    "The loop must check p(target | x) >= confidence for every image BEFORE each step, then move the images "
    "that are not done by -alpha * sign(grad of the cross-entropy to the target), clamp to [0, 1], and return "
    "(x, number of steps taken).",
    forbidden=("coursekit.attacks.fooling_image", "coursekit.attacks.targeted_close_attack",
               "coursekit.attacks.fgsm", "coursekit.attacks.pgd"),
    wrap=_wrap_fooling, shape="the shape of x0 (and steps, an int)", atol=1e-6,
    properties=[(_fooling_keeps_x0, "Work on a copy of x0: the caller's images must not change.")],
))


# ================================================================ 01: the PGD loop

def _pgd_ref(model, x, y, eps, alpha, steps, generator):
    from coursekit import attacks

    return attacks.pgd(model, x, y, eps, alpha, steps, generator=generator)


def _pgd_cases():
    model = _model("mnist_cnn")
    x, y = _digits(64)
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


def _pgd_uses_its_generator(fn) -> bool:
    model = _model("mnist_cnn")
    x, y = _digits(64)
    return _same_under_two_global_seeds(fn, lambda: (model, x[:8], y[:8], 0.2, 0.05, 2, torch.Generator().manual_seed(0)))


def _pgd_keeps_x(fn) -> bool:
    model = _model("mnist_cnn")
    x, y = _digits(64)
    return _leaves_its_inputs_alone(fn, lambda: (model, x[:4].clone(), y[:4].clone(), 0.2, 0.05, 2,
                                                 torch.Generator().manual_seed(0)), (1, 2))


def _pgd_stats(fn, seed: int) -> dict:
    model = _model("mnist_cnn")
    x, y = _digits(64)
    out = _call(fn, (model, x[:32], y[:32], 0.15, 0.04, 4, torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        logits = model(out)
    delta = out - x[:32]
    return {"adversarial_loss": F.cross_entropy(logits, y[:32]).item(),
            "fooled_fraction": (logits.argmax(1) != y[:32]).float().mean().item(),
            "mean_abs_change": float(delta.abs().mean()),
            "at_the_boundary": float(((delta.abs() - 0.15).abs() < 1e-4).float().mean())}


register(Exercise(
    "01_adversarial_examples", "ex-pgd-loop", "my_pgd",
    "Exercise 5 (the PGD loop)", _pgd_ref, _pgd_cases,
    [
        Misconception("no random start", _pgd_wrong(start="none"),
                      "PGD starts from a RANDOM point of the eps-ball: x + (2 * torch.rand(x.shape, generator=generator) "
                      "- 1) * eps, clipped to [0, 1]."),
        Misconception("one-sided random start", _pgd_wrong(start="positive"),
                      "The random start must be uniform in [-eps, eps]: torch.rand gives [0, 1), so use (2 * rand - 1) * eps."),
        Misconception("random start not clipped", _pgd_wrong(clip_start=False),
                      "Clip the random start to [0, 1] before the first gradient: it must be an image."),
        Misconception("gradient descent", _pgd_wrong(direction=-1.0),
                      "Your steps go DOWN the loss, which helps the model: an untargeted attack steps UP, + alpha * sign(grad)."),
        Misconception("raw gradient", _pgd_wrong(use_sign=False),
                      "Use the SIGN of the gradient (grad.sign()): each step moves every pixel by alpha."),
        Misconception("projected around the random start", _pgd_wrong(project="start"),
                      "Project onto the eps-ball around the CLEAN x, not around the random start: the attack may move "
                      "each pixel at most eps away from the original image."),
        Misconception("no projection", _pgd_wrong(project="none"),
                      "After each step, project back: attacks.project_linf(x_new, x, eps) keeps every pixel within eps "
                      "of the clean x (clipping to [0, 1] alone is not enough)."),
        Misconception("steps miscounted", _pgd_wrong(steps_offset=1),
                      "Take exactly `steps` gradient steps after the random start (steps = 0 returns the random start)."),
        Misconception("random start without the generator", _pgd_wrong(use_generator=False),
                      "Draw the random start with torch.rand(x.shape, generator=generator): the same generator must "
                      "give the same attack.",
                      detect=lambda fn: not _pgd_uses_its_generator(fn)),
        Misconception("x changed in place", None,
                      "Do not change the caller's x (or y): work on new tensors (x_adv = (x + delta).clamp(0, 1)).",
                      detect=lambda fn: not _pgd_keeps_x(fn)),
    ],
    ("Three parts: a random start in the eps-ball (drawn with the generator), then `steps` FGSM-like steps of "
     "size alpha, each followed by a projection back onto the eps-ball around the CLEAN x and [0, 1].",
     "delta = (2 * torch.rand(x.shape, generator=generator) - 1) * eps; x_adv = (x + delta).clamp(0, 1). In the "
     "loop: make x_adv a leaf that needs a gradient, take the gradient of the cross-entropy for the true labels "
     "with torch.autograd.grad, add alpha times its sign, and project with attacks.project_linf(..., x, eps).",
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
    "PGD: x_adv = clip(x + U(-eps, eps)) drawn with the generator, then `steps` times x_adv = "
    "project_linf(x_adv + alpha * sign(grad of the cross-entropy), x, eps).",
    forbidden=("coursekit.attacks.pgd", "coursekit.attacks.fgsm", "coursekit.defenses.make_adversarial",
               "coursekit.defenses.adversarial_training_epoch"),
    exact=False, band_stats=_pgd_stats, band_seeds=40, band_min_margin=0.01, atol=1e-5,
    properties=[(_pgd_uses_its_generator, "Use the generator you are given for the random start, so that runs repeat."),
                (_pgd_keeps_x, "Do not change the caller's x in place.")],
))


# ================================================================ 02: robust logistic regression

def _robust_ref(x, y, eps, steps, lr):
    from coursekit import linear

    return linear.train_binary_logistic(x, y, eps=eps, steps=steps, lr=lr)


def _wrap_wb(fn):
    def pure(*args):
        out = fn(*args)
        if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
            raise AnswerFormError("train_robust_logistic must return a pair of tensors (w, b).")
        w, b = out
        if w.dim() != 1 or b.numel() != 1:
            raise AnswerFormError("train_robust_logistic must return w of shape (n,) and b with a single value.")
        return torch.cat([w.double().flatten(), b.double().reshape(1)])
    return pure


@lru_cache(maxsize=None)
def _three_vs_five(n: int):
    x, y = _digits(400)
    keep = (y == 3) | (y == 5)
    return x[keep][:n].flatten(1), (y[keep][:n] == 5).long()


def _robust_cases():
    x, y = _three_vs_five(60)
    g = torch.Generator().manual_seed(21)
    xs, ys = torch.rand(30, 12, generator=g), torch.randint(0, 2, (30,), generator=g)
    return [(x, y, 0.1, 40, 0.5), (x, y, 0.0, 30, 0.5), (xs, ys, 0.05, 25, 1.0), (x[:40], y[:40], 0.2, 20, 0.3)]


def _robust_wrong(where="inside", sign=1.0, norm="l1", labels="signed", bias_in_norm=False, reduce="mean",
                  zero_grad=True, train_bias=True):
    def wrong(x, y, eps, steps, lr):
        w = torch.zeros(x.shape[1], requires_grad=True)
        b = torch.zeros((), requires_grad=True)
        optimizer = torch.optim.SGD([w, b] if train_bias else [w], lr=lr)
        s = 2 * y.float() - 1 if labels == "signed" else y.float()
        for _ in range(steps):
            size = w.abs().sum() if norm == "l1" else w.norm()
            size = size + b.abs() if bias_in_norm else size
            margin = s * (x @ w + b)
            if where == "inside":
                losses = F.softplus(-(margin - sign * eps * size))
                loss = losses.sum() if reduce == "sum" else losses.mean()
            else:                                              # an L1 penalty beside the loss
                loss = F.softplus(-margin).mean() + eps * size
            if zero_grad:
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return w.detach(), b.detach()
    return wrong


register(Exercise(
    "02_linear_explanation", "ex-robust-logistic", "train_robust_logistic",
    "Exercise 4 (robust logistic regression in closed form)", _robust_ref, _robust_cases,
    [
        Misconception("L1 penalty outside the loss", _robust_wrong(where="outside"),
                      "eps * ||w||_1 goes INSIDE the logistic loss, L(s * (w^T x + b) - eps * ||w||_1): it is the worst "
                      "case of the attack, not a regularisation term added beside the loss."),
        Misconception("the attack helps", _robust_wrong(sign=-1.0),
                      "The attack LOWERS the margin: subtract eps * ||w||_1 from s * (w^T x + b), do not add it."),
        Misconception("L2 norm", _robust_wrong(norm="l2"),
                      "An L-infinity attack of size eps lowers the margin by eps * ||w||_1, the L1 norm (w.abs().sum()), "
                      "not the L2 norm."),
        Misconception("labels not signed", _robust_wrong(labels="raw"),
                      "Turn the labels {0, 1} into signs s = 2y - 1 in {-1, +1}: with y = 0 the margin s * score vanishes."),
        Misconception("bias in the norm", _robust_wrong(bias_in_norm=True),
                      "Only the weights w meet the perturbation: the norm is ||w||_1, without the bias."),
        Misconception("summed loss", _robust_wrong(reduce="sum"),
                      "Average the loss over the examples (.mean()): a sum makes the step grow with the data set."),
        Misconception("gradients accumulate", _robust_wrong(zero_grad=False),
                      "Call optimizer.zero_grad() before each backward(): otherwise the gradients of all earlier steps add up."),
        Misconception("bias not trained", _robust_wrong(train_bias=False),
                      "Train the bias too: give both w and b to the optimiser."),
    ],
    ("Write the loss first: the worst L-infinity perturbation lowers s * (w^T x + b) by exactly eps * ||w||_1, so "
     "the robust loss is the logistic loss of that lowered margin. Then ordinary gradient descent.",
     "s = 2 * y - 1; w and b start at zero and require gradients; torch.optim.SGD([w, b], lr=lr); each step: "
     "loss = F.softplus(-(s * (x @ w + b) - eps * w.abs().sum())).mean(), zero_grad, backward, step.",
     "def train_robust_logistic(x, y, eps, steps, lr):\n"
     "    s = 2 * y.to(x.dtype) - 1\n"
     "    w = torch.zeros(x.shape[1], requires_grad=True)\n"
     "    b = torch.zeros((), requires_grad=True)\n"
     "    optimizer = torch.optim.SGD([w, b], lr=lr)\n"
     "    for _ in range(steps):\n"
     "        margin = s * (x @ w + b) - eps * w.abs().sum()\n"
     "        loss = F.softplus(-margin).mean()\n"
     "        optimizer.zero_grad()\n"
     "        loss.backward()\n"
     "        optimizer.step()\n"
     "    return w.detach(), b.detach()"),
    "Minimise mean(softplus(-(s * (x @ w + b) - eps * ||w||_1))) with s = 2y - 1, from w = 0 and b = 0, by `steps` "
    "steps of plain gradient descent (torch.optim.SGD, lr); return (w, b) detached.",
    forbidden=("coursekit.linear.train_binary_logistic", "coursekit.linear.robust_logistic_loss",
               "coursekit.linear.train_logistic_regression", "coursekit.training.train_classifier"),
    wrap=_wrap_wb, shape="w of shape (n,) and a one-value b", atol=1e-5,
))


# ================================================================ 03: an adversarial-training epoch

class _TinyCNN(nn.Module):
    """A small probe network (fast to train on the grading path)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                                 nn.Linear(4 * 7 * 7, 10))

    def forward(self, x):
        return self.net(x)


def _fresh(model_seed: int, optimiser: str):
    torch.manual_seed(model_seed)
    model = _TinyCNN()
    opt = (torch.optim.SGD(model.parameters(), lr=0.05) if optimiser == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-3))
    return model, opt


def _wrap_epoch(fn):
    def pure(model_seed, optimiser, x, y, eps, alpha, steps, batch_size, generator_seed):
        model, opt = _fresh(model_seed, optimiser)
        loss = fn(model, opt, x, y, eps, alpha, steps, batch_size, torch.Generator().manual_seed(generator_seed))
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            raise AnswerFormError("adversarial_training_epoch must return the mean loss as a Python float (loss.item()).")
        if isinstance(loss, bool) or not isinstance(loss, (float, int)):
            raise AnswerFormError("adversarial_training_epoch must return the mean of the batch losses as a Python float.")
        weights = torch.cat([p.detach().double().flatten() for p in model.parameters()])
        return torch.cat([weights, torch.tensor([float(loss)], dtype=torch.float64)])
    return pure


def _epoch_ref(model, optimizer, x, y, eps, alpha, steps, batch_size, generator):
    from coursekit import defenses

    return defenses.adversarial_training_epoch(model, optimizer, x, y, eps=eps, alpha=alpha, steps=steps,
                                               batch_size=batch_size, generator=generator)


def _epoch_cases():
    x, y = _digits(64)
    return [(0, "sgd", x[:32], y[:32], 0.2, 0.08, 3, 16, 0), (1, "adam", x[32:56], y[32:56], 0.1, 0.04, 2, 8, 1),
            (2, "sgd", x[:16], y[:16], 0.3, 0.1, 1, 16, 2)]


def _epoch_wrong(inner="pgd", random_start=True, leak=False, zero_grad=True, returns="mean", use_generator=True,
                 direction=1.0, project="x"):
    from coursekit import attacks

    def wrong(model, optimizer, x, y, eps, alpha, steps, batch_size, generator):
        losses = []
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            if zero_grad and leak:
                optimizer.zero_grad()
            model.eval()
            if random_start:
                u = torch.rand(xb.shape, generator=generator if use_generator else None)
                x_adv = (xb + (2 * u - 1) * eps).clamp(0, 1)
            else:
                x_adv = xb.clone()
            for _ in range(0 if inner == "clean" else (1 if inner == "fgsm" else steps)):
                x_adv = x_adv.detach().requires_grad_(True)
                loss = F.cross_entropy(model(x_adv), yb)
                if leak:                        # .backward() fills the weights' .grad too
                    loss.backward()
                    grad = x_adv.grad
                else:
                    (grad,) = torch.autograd.grad(loss, x_adv)
                stepped = x_adv.detach() + direction * alpha * grad.sign()
                x_adv = attacks.project_linf(stepped, xb if project == "x" else x_adv.detach(), eps) \
                    if project != "none" else stepped.clamp(0, 1)
            model.train()
            loss = F.cross_entropy(model(x_adv.detach()), yb)
            if zero_grad and not leak:
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses[-1] if returns == "last" else sum(losses) / len(losses)
    return wrong


def _epoch_uses_its_generator(fn) -> bool:
    x, y = _digits(64)
    wrapped = _wrap_epoch(fn)
    return _same_under_two_global_seeds(wrapped, lambda: (3, "sgd", x[:8], y[:8], 0.2, 0.08, 1, 8, 5))


def _epoch_keeps_data(fn) -> bool:
    x, y = _digits(64)

    def run(xx, yy):
        model, opt = _fresh(4, "sgd")
        return fn(model, opt, xx, yy, 0.2, 0.08, 1, 8, torch.Generator().manual_seed(0))
    return _leaves_its_inputs_alone(run, lambda: (x[:8].clone(), y[:8].clone()), (0, 1))


def _epoch_stats(fn, seed: int) -> dict:
    x, y = _digits(64)
    model, opt = _fresh(seed, "sgd")
    loss = _call(fn, (model, opt, x[:32], y[:32], 0.2, 0.08, 3, 16, torch.Generator().manual_seed(seed)))
    start, _ = _fresh(seed, "sgd")
    moved = torch.cat([(p - q).detach().flatten() for p, q in zip(model.parameters(), start.parameters())])
    return {"returned_loss": float(loss), "weight_change": float(moved.norm())}


register(Exercise(
    "03_defenses_transferability", "ex-at-epoch", "adversarial_training_epoch",
    "Exercise 3 (an adversarial-training epoch)", _epoch_ref, _epoch_cases,
    [
        Misconception("no inner max", _epoch_wrong(inner="clean", random_start=False),
                      "The outer step must train on ADVERSARIAL examples: run the PGD inner loop on each batch first, "
                      "then take the optimiser step on the attacked batch."),
        Misconception("trained on the random start only", _epoch_wrong(inner="clean"),
                      "The random start is only where PGD begins: take the `steps` signed gradient steps (with the "
                      "projection) before the optimiser step."),
        Misconception("one step instead of PGD", _epoch_wrong(inner="fgsm"),
                      "The inner loop takes `steps` PGD steps, not one: one step is FGSM training, which can overfit "
                      "to FGSM (see the demo below)."),
        Misconception("no random start", _epoch_wrong(random_start=False),
                      "Start PGD from a random point of the eps-ball: (2 * torch.rand(xb.shape, generator=generator) - 1) * eps."),
        Misconception("inner gradients leak into the weights", _epoch_wrong(leak=True),
                      "loss.backward() in the PGD loop also fills the weights' .grad: take the input gradient with "
                      "torch.autograd.grad(loss, x_adv), or call optimizer.zero_grad() right before the outer backward()."),
        Misconception("gradients accumulate", _epoch_wrong(zero_grad=False),
                      "Call optimizer.zero_grad() before each outer backward(): otherwise every batch's gradients add up."),
        Misconception("inner loop descends", _epoch_wrong(direction=-1.0),
                      "The inner loop must go UP the loss (the worst case, + alpha * sign(grad)); going down makes the "
                      "examples easier, not harder."),
        Misconception("no projection in the inner loop", _epoch_wrong(project="none"),
                      "Project each PGD step back onto the eps-ball around the clean batch: attacks.project_linf(x_new, xb, eps)."),
        Misconception("returns the last batch's loss", _epoch_wrong(returns="last"),
                      "Return the mean of the batch losses over the whole epoch, not the last batch's loss."),
        Misconception("random start without the generator", _epoch_wrong(use_generator=False),
                      "Draw the random starts with torch.rand(xb.shape, generator=generator): the same generator must "
                      "give the same epoch.",
                      detect=lambda fn: not _epoch_uses_its_generator(fn)),
        Misconception("data changed in place", None,
                      "Do not change the caller's x or y: build new tensors for the adversarial batches.",
                      detect=lambda fn: not _epoch_keeps_data(fn)),
    ],
    ("For each batch, in order: the inner max (PGD from a random start drawn with the generator: `steps` signed "
     "steps of alpha, projected onto the eps-ball around the clean batch), then the outer min (one optimiser "
     "step on the cross-entropy of the attacked batch). Return the mean batch loss.",
     "for start in range(0, len(x), batch_size): xb, yb = the batch; x_adv = clip(xb + (2 * rand(xb.shape, "
     "generator) - 1) * eps); `steps` times: input gradient with torch.autograd.grad (not backward: it would "
     "fill the weights' .grad), step by alpha * sign, attacks.project_linf(..., xb, eps). Then model.train(), "
     "loss = F.cross_entropy(model(x_adv), yb), optimizer.zero_grad(), loss.backward(), optimizer.step(); keep loss.item().",
     "def adversarial_training_epoch(model, optimizer, x, y, eps, alpha, steps, batch_size, generator):\n"
     "    losses = []\n"
     "    for start in range(0, len(x), batch_size):\n"
     "        xb, yb = x[start:start + batch_size], y[start:start + batch_size]\n"
     "        model.eval()\n"
     "        x_adv = (xb + (2 * torch.rand(xb.shape, generator=generator) - 1) * eps).clamp(0, 1)\n"
     "        for _ in range(steps):\n"
     "            x_adv = x_adv.detach().requires_grad_(True)\n"
     "            (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), yb), x_adv)\n"
     "            x_adv = attacks.project_linf(x_adv.detach() + alpha * grad.sign(), xb, eps)\n"
     "        model.train()\n"
     "        loss = F.cross_entropy(model(x_adv), yb)\n"
     "        optimizer.zero_grad()\n"
     "        loss.backward()\n"
     "        optimizer.step()\n"
     "        losses.append(loss.item())\n"
     "    return sum(losses) / len(losses)"),
    "For each batch in order: PGD (random start from the generator, `steps` signed steps of alpha, projection onto "
    "the eps-ball around the clean batch), then zero_grad, backward and step on the attacked batch's cross-entropy; "
    "return the mean of the batch losses.",
    forbidden=("coursekit.attacks.pgd", "coursekit.attacks.fgsm", "coursekit.defenses.make_adversarial",
               "coursekit.defenses.adversarial_training", "coursekit.defenses.adversarial_training_epoch",
               "coursekit.training.train_classifier"),
    wrap=_wrap_epoch, returns="tensor", atol=1e-4, exact=False, band_stats=_epoch_stats, band_seeds=40,
    band_min_margin=0.01, shape="the same parameters as the model (and a float loss)",
    properties=[(_epoch_uses_its_generator, "Use the generator you are given for the random starts, so that runs repeat."),
                (_epoch_keeps_data, "Do not change the caller's x or y in place.")],
))
