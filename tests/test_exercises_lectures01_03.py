"""The deep exercises of lectures 01-03 grade fairly: correct answers written differently pass, known mistakes
get their own hint, library shortcuts are named, and the behaviour checks (generator honoured, caller's data
left alone, the form of the result) hold. The reference, the ladder's solution and every misconception are
also covered for every exercise by tests/test_exercises.py."""
import pytest
import torch
import torch.nn.functional as F

from coursekit import attacks, defenses, exercises, linear

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def judged(exercise_id: str, fn):
    assignment = {"ex-fooling-loop": "01", "ex-pgd-loop": "01", "ex-robust-logistic": "02", "ex-at-epoch": "03"}
    return exercises.diagnose(exercises.get(assignment[exercise_id], exercise_id), fn)


# ---------------------------------------------------------------- 01: the fooling loop

def fooling_for_loop(model, x0, target, alpha, max_steps, confidence):
    """A for loop with a break, .backward() on a copy, a summed loss (the sign does not care), a mask product."""
    model.eval()
    x = x0.detach().clone()
    taken = 0
    for step in range(max_steps + 1):
        leaf = x.clone().requires_grad_(True)
        logits = model(leaf)
        p = torch.softmax(logits, dim=1).gather(1, target.view(-1, 1)).squeeze(1)
        todo = (p < confidence).float().view(-1, 1, 1, 1)
        if todo.sum() == 0 or step == max_steps:
            break
        F.nll_loss(torch.log_softmax(logits, 1), target, reduction="sum").backward()
        x = (x - alpha * leaf.grad.sign() * todo).clamp(0, 1)
        taken += 1
    return x, taken


def fooling_recursive_mask(model, x0, target, alpha, max_steps, confidence):
    """A while loop over the remaining images only (indexing instead of torch.where)."""
    x = x0.clone()
    steps = 0
    with torch.no_grad():
        left = model(x).softmax(1)[torch.arange(len(x)), target] < confidence
    while bool(left.any()) and steps < max_steps:
        idx = left.nonzero().flatten()
        part = x[idx].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(part), target[idx]), part)
        x[idx] = (part - alpha * grad.sign()).clamp(0, 1).detach()
        steps += 1
        with torch.no_grad():
            left = model(x).softmax(1)[torch.arange(len(x)), target] < confidence
    return x.detach(), steps


@pytest.mark.parametrize("answer", [fooling_for_loop, fooling_recursive_mask])
def test_other_correct_fooling_loops_are_accepted(answer):
    result = judged("ex-fooling-loop", answer)
    assert result.ok, result.message


def test_fooling_loop_shortcuts_and_forms_are_named():
    library = lambda model, x0, target, alpha, max_steps, confidence: attacks.fooling_loop(
        model, x0, target, alpha, max_steps, confidence)
    assert judged("ex-fooling-loop", library).kind == "shortcut"

    def steps_as_tensor(model, x0, target, alpha, max_steps, confidence):
        x, steps = fooling_for_loop(model, x0, target, alpha, max_steps, confidence)
        return x, torch.tensor(steps)
    result = judged("ex-fooling-loop", steps_as_tensor)
    assert result.kind == "type" and "int" in result.message

    def in_place(model, x0, target, alpha, max_steps, confidence):
        x, steps = fooling_for_loop(model, x0, target, alpha, max_steps, confidence)
        x0.copy_(x)
        return x0, steps
    assert judged("ex-fooling-loop", in_place).kind == "mutated"


# ---------------------------------------------------------------- 01: the PGD loop

def pgd_backward_and_other_rounding(model, x, y, eps, alpha, steps, generator):
    """.backward() and x.grad, a summed loss, the start written as rand * 2 * eps - eps (other rounding), a
    min/max projection."""
    model.eval()
    x_adv = (x + torch.rand(x.shape, generator=generator) * 2 * eps - eps).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.clone().detach().requires_grad_(True)
        F.cross_entropy(model(x_adv), y, reduction="sum").backward()
        stepped = x_adv.detach() + alpha * x_adv.grad.sign()
        x_adv = torch.min(torch.max(stepped, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def pgd_uniform_and_delta(model, x, y, eps, alpha, steps, generator):
    """The perturbation delta is the variable: uniform_ with the generator, clip delta, then the box."""
    delta = torch.empty_like(x).uniform_(-eps, eps, generator=generator)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    for _ in range(steps):
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x + delta), y), delta)
        delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
        delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    return (x + delta).detach()


@pytest.mark.parametrize("answer", [pgd_backward_and_other_rounding, pgd_uniform_and_delta])
def test_other_correct_pgd_loops_are_accepted(answer):
    result = judged("ex-pgd-loop", answer)
    assert result.ok, result.message


def test_pgd_shortcuts_are_named_the_library_and_torchattacks():
    assert judged("ex-pgd-loop", lambda m, x, y, eps, a, s, g: attacks.pgd(m, x, y, eps, a, s, generator=g)).kind == "shortcut"
    torchattacks = pytest.importorskip("torchattacks")

    def with_torchattacks(model, x, y, eps, alpha, steps, generator):
        return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps)(x, y)
    result = judged("ex-pgd-loop", with_torchattacks)
    assert result.kind == "shortcut" and "torchattacks" in result.message


def test_a_pgd_that_seeds_its_own_generator_or_changes_x_is_rejected():
    def own_generator(model, x, y, eps, alpha, steps, generator):
        return pgd_uniform_and_delta(model, x, y, eps, alpha, steps, torch.Generator().manual_seed(0))
    result = judged("ex-pgd-loop", own_generator)
    assert not result.ok and "generator" in result.message

    def in_place(model, x, y, eps, alpha, steps, generator):
        out = pgd_uniform_and_delta(model, x, y, eps, alpha, steps, generator)
        x.copy_(out)
        return x
    assert judged("ex-pgd-loop", in_place).kind == "mutated"


def test_a_pgd_that_steps_from_x_instead_of_its_random_start_is_rejected():
    """Drawn differently from the bank's version, so only the bands can catch it."""
    def from_x(model, x, y, eps, alpha, steps, generator):
        torch.rand(x.shape, generator=generator)             # draws the start ... and throws it away
        x_adv = x.clone()
        for _ in range(steps):
            x_adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction="sum"), x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
        return x_adv.detach()
    assert not judged("ex-pgd-loop", from_x).ok


# ---------------------------------------------------------------- 02: robust logistic regression

def robust_by_hand(x, y, eps, steps, lr):
    """Manual gradient steps under no_grad instead of an optimiser."""
    s = y.float() * 2 - 1
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    for _ in range(steps):
        loss = torch.nn.functional.softplus(eps * w.abs().sum() - s * (x @ w + b)).mean()
        gw, gb = torch.autograd.grad(loss, (w, b))
        with torch.no_grad():
            w -= lr * gw
            b -= lr * gb
    return w.detach(), b.detach()


def robust_as_bce(x, y, eps, steps, lr):
    """The same loss as a binary cross-entropy with logits: the worst case moves the logit towards the wrong class."""
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([w, b], lr=lr)
    for _ in range(steps):
        worst_logit = x @ w + b - (2 * y.float() - 1) * eps * w.norm(p=1)
        loss = F.binary_cross_entropy_with_logits(worst_logit, y.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return w.detach(), b.detach()


@pytest.mark.parametrize("answer", [robust_by_hand, robust_as_bce])
def test_other_correct_robust_trainings_are_accepted(answer):
    result = judged("ex-robust-logistic", answer)
    assert result.ok, result.message


def test_robust_training_shortcut_and_form():
    library = lambda x, y, eps, steps, lr: linear.train_binary_logistic(x, y, eps=eps, steps=steps, lr=lr)
    assert judged("ex-robust-logistic", library).kind == "shortcut"
    result = judged("ex-robust-logistic", lambda x, y, eps, steps, lr: robust_by_hand(x, y, eps, steps, lr)[0])
    assert result.kind == "type" and "(w, b)" in result.message


# ---------------------------------------------------------------- 03: an adversarial-training epoch

def epoch_backward_then_reset(model, optimizer, x, y, eps, alpha, steps, batch_size, generator):
    """.backward() in the inner loop (it fills the weights' .grad) but zero_grad right before the outer step;
    a weighted mean over the batches (all the same size here)."""
    total, seen = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        x_adv = (xb + eps * (2 * torch.rand(xb.shape, generator=generator) - 1)).clamp(0, 1)
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            F.cross_entropy(model(x_adv), yb).backward()
            x_adv = torch.max(torch.min(x_adv + alpha * x_adv.grad.sign(), xb + eps), xb - eps).clamp(0, 1)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x_adv.detach()), yb)
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(xb), seen + len(xb)
    return total / seen


def epoch_frozen_weights(model, optimizer, x, y, eps, alpha, steps, batch_size, generator):
    """The weights frozen during the attack (requires_grad_(False)), the batches from torch.split."""
    losses = []
    for xb, yb in zip(torch.split(x, batch_size), torch.split(y, batch_size)):
        model.requires_grad_(False)
        delta = ((2 * torch.rand(xb.shape, generator=generator) - 1) * eps)
        x_adv = (xb + delta).clamp(0, 1)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), yb, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = attacks.project_linf(x_adv.detach() + alpha * grad.sign(), xb, eps)
        model.requires_grad_(True)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x_adv), yb)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("answer", [epoch_backward_then_reset, epoch_frozen_weights])
def test_other_correct_adversarial_training_epochs_are_accepted(answer):
    result = judged("ex-at-epoch", answer)
    assert result.ok, result.message


def test_an_epoch_that_calls_the_library_or_returns_a_tensor_is_named():
    library = lambda m, o, x, y, eps, a, s, bs, g: defenses.adversarial_training_epoch(
        m, o, x, y, eps=eps, alpha=a, steps=s, batch_size=bs, generator=g)
    assert judged("ex-at-epoch", library).kind == "shortcut"

    def inner_library(model, optimizer, x, y, eps, alpha, steps, batch_size, generator):
        x_adv = attacks.pgd(model, x, y, eps, alpha, steps, generator=generator)
        loss = F.cross_entropy(model(x_adv), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    assert judged("ex-at-epoch", inner_library).kind == "shortcut"

    def tensor_loss(model, optimizer, x, y, eps, alpha, steps, batch_size, generator):
        return torch.tensor(epoch_frozen_weights(model, optimizer, x, y, eps, alpha, steps, batch_size, generator))
    result = judged("ex-at-epoch", tensor_loss)
    assert result.kind == "type" and "float" in result.message
