"""A notebook-like session in a grading kernel, for tests/test_exercises_channel.py.

Run as ``python grading_kernel_session.py <scenario>`` with COURSEKIT_GRADING_CHANNEL set: the trusted
half of the engine is hidden (as the sandbox hides it), the "student's cells" of the scenario run,
then the hidden test cells of lecture 01, exactly as in the notebook.
"""
import importlib.abc
import sys


class HideTheJudge(importlib.abc.MetaPathFinder):
    """What the sandbox does to the kernel: coursekit.exercises.judge cannot be imported."""

    def find_spec(self, name, path=None, target=None):
        if name == "coursekit.exercises.judge" or name.startswith("coursekit.exercises.judge."):
            raise ImportError(f"{name} is hidden while grading")
        return None


sys.meta_path.insert(0, HideTheJudge())
import coursekit.exercises.channel  # noqa: E402,F401  (the sandbox loads the kernel side before student code)

import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ASSIGNMENT = "01_adversarial_examples"


def input_gradient_step(model, x, target, lr):
    x = x.clone().detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), target), x)
    return (x - lr * grad).clamp(0, 1).detach()


def my_fgsm(model, x, y, eps):
    model.eval()
    x = x.clone().detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def my_project_linf(x_adv, x, eps):
    return (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)


def fooling_loop(model, x0, target, alpha, max_steps, confidence, freeze=True):
    model.eval()
    x = x0.clone().detach()
    steps = 0
    while True:
        x.requires_grad_(True)
        logits = model(x)
        done = logits.softmax(1).gather(1, target.view(-1, 1)).squeeze(1) >= confidence
        if bool(done.all()) or steps == max_steps:
            return x.detach(), steps
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, target), x)
        stepped = (x - alpha * grad.sign()).clamp(0, 1)
        x = (torch.where(done.view(-1, 1, 1, 1), x, stepped) if freeze else stepped).detach()
        steps += 1


def my_pgd(model, x, y, eps, alpha, steps, generator, clip_start=True):
    model.eval()
    x_adv = x + (2 * torch.rand(x.shape, generator=generator) - 1) * eps
    x_adv = x_adv.clamp(0, 1) if clip_start else x_adv
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        x_adv = (x + (x_adv.detach() + alpha * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)
    return x_adv.detach()


class Agreeable(torch.Tensor):
    """Wrong numbers that claim to equal whatever they are compared with."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__, torch.isclose):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


scenario = sys.argv[1]
if scenario == "wrong":
    def my_fgsm(model, x, y, eps):  # noqa: F811  (steps down the loss)
        model.eval()
        x = x.clone().detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
        return (x - eps * grad.sign()).clamp(0, 1).detach()

    def my_project_linf(x_adv, x, eps):  # noqa: F811  (no image clip)
        return x + (x_adv - x).clamp(-eps, eps)

    del input_gradient_step                   # the answer cell was deleted
    _right_fooling_loop, _right_pgd = fooling_loop, my_pgd

    def fooling_loop(model, x0, target, alpha, max_steps, confidence):  # noqa: F811  (confident images move on)
        return _right_fooling_loop(model, x0, target, alpha, max_steps, confidence, freeze=False)

    def my_pgd(model, x, y, eps, alpha, steps, generator):  # noqa: F811  (random start not clipped)
        return _right_pgd(model, x, y, eps, alpha, steps, generator, clip_start=False)
elif scenario == "lying":
    def my_fgsm(model, x, y, eps):  # noqa: F811  (wrong numbers that lie in comparisons)
        return torch.zeros_like(x).as_subclass(Agreeable)

    def my_project_linf(x_adv, x, eps):  # noqa: F811  (wrong, and every comparison of this process agrees)
        return x_adv

    torch.allclose = lambda *args, **kwargs: True
    torch.equal = lambda *args, **kwargs: True
elif scenario == "patched":
    import coursekit.exercises as engine
    from coursekit.exercises import channel, runner

    def my_fgsm(model, x, y, eps):  # noqa: F811
        return x

    def my_project_linf(x_adv, x, eps):  # noqa: F811
        return x_adv

    def input_gradient_step(model, x, target, lr):  # noqa: F811
        return x

    # the engine patched from a student cell: conversions that report a clean scalar, a forged record
    # without any run (and an arrays file outside the channel), check() that always agrees
    runner.plain = lambda value, depth=0: (0.0, {"type": "tensor", "shape": [], "requires_grad": False})
    original_record = channel.record

    def forged_record(assignment, exercise_id, answer):
        folder = Path(os.environ[channel.CHANNEL_ENV])
        if exercise_id == "ex1-input-step":
            line = {"assignment": assignment, "exercise_id": exercise_id, "arrays": "../../etc/passwd",
                    "record": {"function": "input_gradient_step", "defined": "ok", "shortcut": None, "runs": []}}
            with open(folder / channel.RECORDS, "a") as out:
                out.write(json.dumps(line) + "\n")
            return
        original_record(assignment, exercise_id, answer)

    channel.record = forged_record
    engine.check = lambda *args, **kwargs: True

# ---- the hidden test cells, as in the released notebook
from coursekit import exercises as _exercises  # noqa: E402

for _exercise_id in ("ex1-input-step", "ex-fooling-loop", "ex2-fgsm", "ex3-projection", "ex-pgd-loop"):
    try:
        _exercises.grade(ASSIGNMENT, _exercise_id, globals())
    except Exception as err:  # noqa: BLE001  (a hidden cell that fails: the next cells still run)
        print(f"{_exercise_id}: {type(err).__name__}: {err}")

print("judge imported in the kernel:", any(m.startswith("coursekit.exercises.judge") for m in sys.modules))
