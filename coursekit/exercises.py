"""The exercise registry: reference, misconception bank, shortcut guard, hint ladder, bands.

Every graded exercise of the course is an :class:`Exercise` in ``EXERCISES``, keyed by
``(assignment, exercise_id)`` where ``exercise_id`` is the grade id of the solution cell
(``("01_adversarial_examples", "ex2-fgsm")``). One entry holds

- ``reference``: a correct implementation with the student's signature (usually coursekit's own);
- ``cases()``: fixed probe inputs (tuples of arguments), built deterministically;
- ``misconceptions``: known-wrong answers that real students write, each a
  :class:`Misconception` (``name``, the ``wrong`` implementation, a plain-language ``hint``, and
  optionally a ``detect(fn)`` probe for wrong answers that cannot be matched output for output,
  e.g. a random start drawn without the generator);
- ``forbidden``: coursekit functions that the answer may not call (the exercise asks to write them);
- ``hints``: the ladder (hint, stronger hint, solution);
- ``wrap`` (exercises whose answer acts on state, e.g. a GAN training step that updates models and
  optimisers): turns an answer into a pure function of the probe arguments (build fresh state from
  them, run the answer, return what it changed as one tensor); the reference and the wrong answers
  are wrapped the same way. A wrapper raises :class:`AnswerFormError` for an answer of the wrong form;
- ``band_stats`` (stochastic exercises): statistics graded against bands computed from the reference
  under many seeds, stored in ``solutions/<assignment>/bands.json`` (``scripts/calibrate_bands.py``).

How an answer is judged (:func:`diagnose`), in order: missing function, shortcut (a forbidden
function or an attack library is *executed* while the answer runs: detected with a profiler hook,
whatever the import alias), errors raised by the answer, type and shape, agreement with the
reference on every probe; when it disagrees, the first misconception whose wrong implementation
gives the answer's outputs (or whose detector fires) names the mistake; otherwise the exercise's
generic hint. Messages never quote reference values or the probes.

In notebooks (hidden test cells) ``grade(assignment, exercise_id, globals())`` raises an
``AssertionError`` whose one-line message is the hint (the feedback keeps only that line);
self-learners call ``check(...)`` and ``hint(..., level)``.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from coursekit.checks import CourseKitError

# Third-party libraries that implement the attacks: executing their code is a shortcut too.
ATTACK_LIBRARIES = ("torchattacks", "art", "foolbox", "cleverhans", "advertorch")


class AnswerFormError(Exception):
    """Raised by an exercise's ``wrap`` when the answer returns the wrong kind of result."""


@dataclass
class Misconception:
    """A known-wrong answer and the hint that names the mistake."""

    name: str
    wrong: Callable | None
    hint: str
    detect: Callable[[Callable], bool] | None = None    # probe for answers that cannot be matched


@dataclass
class Diagnosis:
    ok: bool
    kind: str                 # ok | missing | not-answered | shortcut | error | type | misconception | wrong
    message: str
    misconception: str | None = None

    def __bool__(self) -> bool:
        return self.ok


@dataclass
class Exercise:
    assignment: str
    exercise_id: str
    function: str                                   # the name the student defines
    title: str
    reference: Callable
    cases: Callable[[], list[tuple]]
    misconceptions: list[Misconception]
    hints: tuple[str, str, str]
    fallback: str                                   # the hint when no misconception matches
    forbidden: tuple[str, ...] = ()                 # dotted names of coursekit functions
    returns: str = "tensor"                         # tensor | float | scalar
    atol: float = 1e-5
    exact: bool = True                              # False: outputs may differ from the reference
    band_stats: Callable | None = None              # (fn, seed) -> {stat: value}
    band_seeds: int = 0
    band_min_margin: float = 0.02                   # the least widening of a band (in the stat's units)
    properties: list[tuple[Callable[[Callable], bool], str]] = field(default_factory=list)
    wrap: Callable[[Callable], Callable] | None = None     # answer -> pure function of the probe args
    shape: str = "the same shape as its input"             # said when a tensor's shape is wrong

    @property
    def key(self) -> tuple[str, str]:
        return self.assignment, self.exercise_id


EXERCISES: dict[tuple[str, str], Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    EXERCISES[exercise.key] = exercise
    return exercise


def get(assignment: str, exercise_id: str) -> Exercise:
    """The exercise; ``assignment`` may be its number alone (``"01"``)."""
    matches = [e for (a, i), e in EXERCISES.items()
               if i == exercise_id and (a == assignment or a.split("_")[0] == assignment)]
    if len(matches) != 1:
        known = ", ".join(f"{a}/{i}" for a, i in sorted(EXERCISES))
        raise CourseKitError(f"No exercise {assignment}/{exercise_id}. Known exercises: {known}.")
    return matches[0]


# ---------------------------------------------------------------- running an answer safely

def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.Generator):
        g = torch.Generator()
        g.set_state(value.get_state())
        return g
    return value


def _forbidden_codes(names: Sequence[str]) -> dict:
    import importlib

    codes = {}
    for dotted in names:
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):     # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)           # also methods: coursekit.gan.VirtualBatchNorm.forward
            break
        codes[getattr(obj, "__code__", None)] = dotted
    codes.pop(None, None)
    return codes


class _ShortcutWatch:
    """Record whether a forbidden function (or an attack library) runs while the answer runs."""

    def __init__(self, forbidden: Sequence[str]):
        self.codes = _forbidden_codes(forbidden)
        self.hit: str | None = None
        self._previous = None

    def _profile(self, frame, event, arg):
        if event == "call" and self.hit is None:
            code = frame.f_code
            if code in self.codes:
                self.hit = self.codes[code]
            else:
                parts = Path(code.co_filename).parts
                for lib in ATTACK_LIBRARIES:
                    if lib in parts and "site-packages" in parts:
                        self.hit = f"the {lib} library"
                        break

    def __enter__(self):
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._previous)
        return False


def _call(fn: Callable, args: tuple, watch: _ShortcutWatch | None = None):
    args = tuple(_clone(a) for a in args)
    modes = [(m, m.training) for m in args if isinstance(m, torch.nn.Module)]
    try:
        if watch is None:
            return fn(*args)
        with watch:
            return fn(*args)
    finally:
        for m, training in modes:       # an answer that calls model.eval() must not leak into the notebook
            m.train(training)


def _same(a, b, atol: float) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape:
            return False
        a, b = a.detach().double().cpu(), b.detach().double().cpu()
        return bool(torch.allclose(a, b, atol=atol, rtol=1e-4, equal_nan=True))
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError, RuntimeError):
        return False
    if math.isinf(fa) or math.isinf(fb) or math.isnan(fa) or math.isnan(fb):
        return (fa == fb) or (math.isnan(fa) and math.isnan(fb))
    return abs(fa - fb) <= atol + 1e-4 * abs(fb)


def _type_problem(exercise: Exercise, out, ref) -> str | None:
    name = exercise.function
    if exercise.returns == "float":
        if not isinstance(out, float):
            return f"{name} must return a Python float (use float(...)), not {type(out).__name__}."
        return None
    if not isinstance(out, torch.Tensor):
        return f"{name} must return a torch.Tensor, not {type(out).__name__}."
    if exercise.returns == "scalar":
        if out.dim() != 0:
            return f"{name} must return a scalar tensor (the mean over the batch), not one with {out.dim()} dimension(s)."
        return None
    if out.shape != ref.shape:      # the probe's sizes are not quoted: they are part of the hidden checks
        return f"{name} returned a tensor of the wrong shape: it must have {exercise.shape}."
    if out.requires_grad:
        return f"{name} must return a detached tensor: call .detach() on the result."
    return None


def _pure(exercise: Exercise, fn: Callable) -> Callable:
    return exercise.wrap(fn) if exercise.wrap is not None else fn


def _outputs(fn: Callable, cases: list[tuple]) -> list:
    return [_call(fn, args) for args in cases]


_CACHE: dict = {}


def _cases(exercise: Exercise) -> list[tuple]:
    key = (exercise.key, "cases")
    if key not in _CACHE:
        _CACHE[key] = exercise.cases()
    return _CACHE[key]


def _known_outputs(exercise: Exercise, which: str, fn: Callable) -> list:
    """Outputs of the reference or of a misconception's wrong answer (deterministic: computed once)."""
    key = (exercise.key, which)
    if key not in _CACHE:
        _CACHE[key] = _outputs(_pure(exercise, fn), _cases(exercise))
    return _CACHE[key]


def _agrees(fn_outputs: list, other_outputs: list, atol: float) -> bool:
    return all(_same(a, b, atol) for a, b in zip(fn_outputs, other_outputs))


# ---------------------------------------------------------------- bands for stochastic exercises

def bands_path(assignment: str, root: Path | None = None) -> Path:
    root = root or Path(__file__).resolve().parents[1]
    return root / "solutions" / assignment / "bands.json"


def calibrate(exercise: Exercise) -> dict:
    """Bands for each statistic: [min, max] of the reference over ``band_seeds`` seeds, widened
    by a quarter of the range (and at least ``band_min_margin``) so a correct answer with another random draw fits."""
    stats: dict[str, list[float]] = {}
    for seed in range(exercise.band_seeds):
        for name, value in exercise.band_stats(exercise.reference, seed).items():
            stats.setdefault(name, []).append(float(value))
    bands = {}
    for name, values in sorted(stats.items()):
        lo, hi = min(values), max(values)
        margin = max(0.25 * (hi - lo), exercise.band_min_margin)
        bands[name] = {"low": round(lo - margin, 4), "high": round(hi + margin, 4),
                       "reference_mean": round(sum(values) / len(values), 4)}
    return {"seeds": exercise.band_seeds, "stats": bands}


def calibrate_assignment(assignment: str) -> dict:
    return {e.exercise_id: calibrate(e) for e in sorted(EXERCISES.values(), key=lambda e: e.exercise_id)
            if e.assignment == assignment and e.band_stats is not None}


def _band_files(assignment: str) -> list[Path]:
    here = Path.cwd()
    found = [here / "bands.json"]           # autograding: nbgrader copies the source folder's files here
    for folder in (here, *here.parents):
        found.append(folder / "solutions" / assignment / "bands.json")
    found.append(bands_path(assignment))
    return found


@lru_cache(maxsize=None)
def _bands_cached(assignment: str, exercise_id: str, cwd: str) -> dict:
    for path in _band_files(assignment):
        if path.is_file():
            stored = json.loads(path.read_text())
            if exercise_id in stored:
                return stored[exercise_id]
    return calibrate(get(assignment, exercise_id))     # no file: the same seeds give the same bands


def bands(exercise: Exercise) -> dict:
    return _bands_cached(exercise.assignment, exercise.exercise_id, str(Path.cwd()))


def _outside_band(exercise: Exercise, fn: Callable) -> str | None:
    stored = bands(exercise)["stats"]
    for seed in range(3):
        for name, value in exercise.band_stats(fn, 1000 + seed).items():
            band = stored[name]
            if not band["low"] <= float(value) <= band["high"]:
                return name
    return None


# ---------------------------------------------------------------- diagnosis

def diagnose(exercise: Exercise, fn: Callable | None) -> Diagnosis:
    """Judge an answer; the message names the likely mistake in plain language.

    The probes seed torch's random generator; the notebook's random state is restored afterwards, so a
    check does not change what the next cells draw."""
    with torch.random.fork_rng(devices=[]):
        return _diagnose(exercise, fn)


def _diagnose(exercise: Exercise, fn: Callable | None) -> Diagnosis:
    name = exercise.function
    if fn is None:
        return Diagnosis(False, "missing", f"{name} is not defined: run the cell with your answer before this "
                         "check (if you deleted or moved that cell, restore it above this one).")
    if not callable(fn):
        return Diagnosis(False, "missing", f"{name} must be a function (def {name}(...)), not {type(fn).__name__}.")
    cases = _cases(exercise)
    references = _known_outputs(exercise, "reference", exercise.reference)
    outputs, watch, pure = [], _ShortcutWatch(exercise.forbidden), _pure(exercise, fn)
    for args in cases:
        try:
            outputs.append(_call(pure, args, watch))
        except AnswerFormError as err:
            return Diagnosis(False, "type", str(err))
        except NotImplementedError:
            return Diagnosis(False, "not-answered", f"{name} is not answered yet: replace "
                             "`raise NotImplementedError()` by your code.")
        except Exception as err:  # the student's own error: safe to show, it names no reference value
            if watch.hit:
                break
            return Diagnosis(False, "error", f"{name} raised {type(err).__name__}: {err}".split("\n")[0])
        if watch.hit:
            break
    if watch.hit:
        return Diagnosis(False, "shortcut", f"this exercise asks you to write {name} yourself; calling "
                         f"{watch.hit} is not allowed here (use it to check your answer, not as the answer).")
    for out, ref in zip(outputs, references):
        problem = _type_problem(exercise, out, ref)
        if problem:
            return Diagnosis(False, "type", problem)
    if _agrees(outputs, references, exercise.atol):      # the reference's outputs on every probe
        return Diagnosis(True, "ok", f"{name}: correct.")
    for m in exercise.misconceptions:
        if m.wrong is not None:
            try:
                wrong_outputs = _known_outputs(exercise, f"wrong: {m.name}", m.wrong)
            except Exception:
                continue
            if _agrees(outputs, wrong_outputs, exercise.atol):
                return Diagnosis(False, "misconception", m.hint, m.name)
    for m in exercise.misconceptions:
        if m.detect is not None and m.detect(fn):
            return Diagnosis(False, "misconception", m.hint, m.name)
    for ok, message in exercise.properties:
        if not ok(fn):
            return Diagnosis(False, "wrong", message)
    if exercise.exact or exercise.band_stats is None:
        return Diagnosis(False, "wrong", exercise.fallback)
    outside = _outside_band(exercise, fn)
    if outside:                 # a stochastic answer with another random draw: judged by the bands
        return Diagnosis(False, "wrong", f"{exercise.fallback} (the {outside.replace('_', ' ')} of your "
                         "result is outside the range that correct answers reach)")
    return Diagnosis(True, "ok", f"{name}: correct.")


def _lookup(exercise: Exercise, answer) -> Callable | None:
    if isinstance(answer, Mapping):
        return answer.get(exercise.function)
    return answer


def grade(assignment: str, exercise_id: str, answer) -> None:
    """For hidden test cells: raise AssertionError(hint) unless the answer is right.

    ``answer`` is the student's function, or the notebook's namespace (``globals()``), where the
    function is looked up by name (so a deleted or moved answer cell gives a clear message).
    """
    exercise = get(assignment, exercise_id)
    result = diagnose(exercise, _lookup(exercise, answer))
    if not result.ok:
        raise AssertionError(result.message)


def check(assignment: str, exercise_id: str, answer) -> Diagnosis:
    """For self-learners: judge an answer now and print what is wrong, with a hint."""
    exercise = get(assignment, exercise_id)
    result = diagnose(exercise, _lookup(exercise, answer))
    if result.ok:
        print(f"{exercise.title}: your answer agrees with the reference on every check.")
    else:
        print(f"{exercise.title}: not yet. {result.message}")
        if result.kind in ("wrong", "type", "error"):
            print(f"Stuck? hint({exercise.assignment.split('_')[0]!r}, {exercise_id!r}, 1) gives a hint, "
                  "level 2 a stronger one, level 3 the solution.")
    return result


def hint(assignment: str, exercise_id: str, level: int = 1) -> str:
    """The hint ladder: 1 a hint, 2 a stronger hint, 3 the solution. Prints and returns it."""
    exercise = get(assignment, exercise_id)
    if level not in (1, 2, 3):
        raise CourseKitError("level must be 1 (hint), 2 (stronger hint) or 3 (the solution).")
    text = exercise.hints[level - 1]
    print(text)
    return text


# ================================================================ the exercises of lectures 01-03

def _f32(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@lru_cache(maxsize=None)
def _model(name: str):
    from coursekit import zoo

    return zoo.load(name)


@lru_cache(maxsize=None)
def _digits(n: int):
    from coursekit import data

    return data.embedded_mnist("test", limit=n)   # the same probes (and bands) on every machine


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
    model = _model("mnist_cnn")
    return [(model, _f32(1, 4, 1, 28, 28), torch.tensor([3, 3, 7, 1]), 0.5),
            (model, _f32(2, 6, 1, 28, 28), torch.tensor([0, 1, 2, 8, 8, 9]), 40.0),
            (model, _digits(64)[0][:5], torch.tensor([4, 4, 4, 4, 4]), 20.0)]


register(Exercise(
    "01_adversarial_examples", "ex1-input-step", "input_gradient_step",
    "Exercise 1 (one gradient step on the input)", _step_ref, _step_cases,
    [
        Misconception("gradient ascent", lambda m, x, t, lr: (x + lr * _input_grad(m, x, t)[1]).clamp(0, 1),
                      "You stepped UP the loss: to make the model predict the target, go DOWN the gradient, x - lr * grad."),
        Misconception("no clip", lambda m, x, t, lr: x - lr * _input_grad(m, x, t)[1],
                      "Clip the result to [0, 1] (.clamp(0, 1)): pixel values outside that range are not an image."),
        Misconception("summed loss", lambda m, x, t, lr: (x - lr * _input_grad(m, x, t, "sum")[1]).clamp(0, 1),
                      "Use the MEAN cross-entropy over the batch (F.cross_entropy's default), not the sum: "
                      "the step must not grow with the batch size."),
        Misconception("sign step", lambda m, x, t, lr: (x - lr * _input_grad(m, x, t)[1].sign()).clamp(0, 1),
                      "This exercise takes a plain gradient step, x - lr * grad, not a step along the sign of the gradient (that is FGSM)."),
    ],
    ("Compute the loss F.cross_entropy(model(x), target) on a copy of x that requires a gradient, "
     "then take the gradient with respect to x (not the weights).",
     "x = x.clone().detach().requires_grad_(True); (grad,) = torch.autograd.grad(loss, x); "
     "then step against the gradient and clip to [0, 1]; return a detached tensor.",
     "def input_gradient_step(model, x, target, lr):\n"
     "    x = x.clone().detach().requires_grad_(True)\n"
     "    loss = F.cross_entropy(model(x), target)\n"
     "    (grad,) = torch.autograd.grad(loss, x)\n"
     "    return (x - lr * grad).clamp(0, 1).detach()"),
    "The step must be x - lr * (gradient of the mean cross-entropy towards the target), then clipped to [0, 1].",
    forbidden=("coursekit.attacks.fooling_image", "coursekit.attacks.targeted_close_attack",
               "coursekit.attacks.fgsm", "coursekit.attacks.pgd"),
))


# ---- 01 exercise 2: FGSM

def _fgsm_ref(model, x, y, eps):
    from coursekit import attacks

    return attacks.fgsm(model, x, y, eps)


@lru_cache(maxsize=None)
def _dropout_mlp() -> torch.nn.Module:
    """A small digit classifier with dropout, handed over in TRAIN mode: in train mode its outputs
    (and the attack's gradient) change from call to call, so an answer must switch to eval()."""
    from torch import nn

    torch.manual_seed(5)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10)).train()


def _fgsm_cases():
    model = _model("mnist_cnn")
    x, y = _digits(64)
    return [(model, x[:16], y[:16], 0.1), (model, x[16:32], y[16:32], 0.25), (model, x[:4], y[:4], 0.0),
            (_dropout_mlp(), x[32:40], y[32:40], 0.1)]


def _same_under_two_global_seeds(fn, make_args: Callable[[], tuple]) -> bool:
    """Whether the answer gives the same output for the same arguments when torch's global seed differs
    (i.e. its randomness, if any, comes from its arguments)."""
    outputs = []
    for seed in (123, 456):
        torch.manual_seed(seed)
        outputs.append(_call(fn, make_args()))
    return torch.equal(*outputs)


def _depends_on_the_random_dropout(fn) -> bool:
    x, y = _digits(64)
    return not _same_under_two_global_seeds(fn, lambda: (_dropout_mlp(), x[32:40], y[32:40], 0.1))


def _fgsm_wrong(direction=1.0, clip=True, use_sign=True, normalise=False, eval_mode=True):
    def wrong(model, x, y, eps):
        if eval_mode:
            model.eval()
        x, g = _input_grad(model, x, y, normalise=normalise)
        out = x + direction * eps * (g.sign() if use_sign else g)
        return out.clamp(0, 1) if clip else out
    return wrong


register(Exercise(
    "01_adversarial_examples", "ex2-fgsm", "my_fgsm",
    "Exercise 2 (FGSM)", _fgsm_ref, _fgsm_cases,
    [
        Misconception("gradient descent", _fgsm_wrong(direction=-1.0),
                      "Your step goes DOWN the loss, which helps the model: an untargeted attack moves UP, x + eps * sign(grad)."),
        Misconception("no clip", _fgsm_wrong(clip=False),
                      "Clip x_adv to [0, 1] after the step (.clamp(0, 1)): it must stay an image."),
        Misconception("raw gradient", _fgsm_wrong(use_sign=False),
                      "Use the SIGN of the gradient (grad.sign()): every pixel moves by exactly eps, the raw gradient is tiny."),
        Misconception("normalised before the attack", _fgsm_wrong(normalise=True),
                      "Do not normalise the images yourself: coursekit's models take [0, 1] images and normalise inside."),
        Misconception("model left in train mode", _fgsm_wrong(eval_mode=False),
                      "Put the model in eval() mode first: in train mode dropout (or batch norm) changes the model at "
                      "every call, so your gradient and your attack are random.",
                      detect=_depends_on_the_random_dropout),
    ],
    ("FGSM needs the gradient of the loss with respect to the INPUT image, for the true labels y.",
     "Make x a leaf that needs a gradient (clone, detach, requires_grad_), take the gradient of the MEAN "
     "cross-entropy for the TRUE labels with torch.autograd.grad, move each pixel by eps in the direction "
     "of its sign, and clip to [0, 1].",
     "def my_fgsm(model, x, y, eps):\n"
     "    model.eval()\n"
     "    x = x.clone().detach().requires_grad_(True)\n"
     "    loss = F.cross_entropy(model(x), y)\n"
     "    (grad,) = torch.autograd.grad(loss, x)\n"
     "    return (x + eps * grad.sign()).clamp(0, 1).detach()"),
    "x_adv must equal clip(x + eps * sign(gradient of the loss w.r.t. x)) for the true labels.",
    forbidden=("coursekit.attacks.fgsm", "coursekit.attacks.pgd", "coursekit.defenses.make_adversarial"),
    atol=1e-6,
))


# ---- 01 exercise 3: the L-infinity projection

def _proj_ref(x_adv, x, eps):
    from coursekit import attacks

    return attacks.project_linf(x_adv, x, eps)


def _proj_cases():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(8, 1, 28, 28, generator=g)
    z = x + 0.5 * torch.randn(8, 1, 28, 28, generator=g)
    x2 = torch.rand(4, 3, 8, 8, generator=g)
    z2 = x2 + 0.05 * torch.randn(4, 3, 8, 8, generator=g)
    return [(z, x, 0.2), (z2, x2, 0.1), (x, x, 0.3)]


register(Exercise(
    "01_adversarial_examples", "ex3-projection", "my_project_linf",
    "Exercise 3 (the L-infinity projection)", _proj_ref, _proj_cases,
    [
        Misconception("no image clip", lambda z, x, eps: x + (z - x).clamp(-eps, eps),
                      "After projecting onto the eps-ball, clip to the image range [0, 1] too."),
        Misconception("image clip only", lambda z, x, eps: z.clamp(0, 1),
                      "Clipping to [0, 1] is not enough: every pixel must also end within eps of x (clip x_adv - x to [-eps, eps])."),
        Misconception("clipped the image, not the difference", lambda z, x, eps: z.clamp(-eps, eps).clamp(0, 1),
                      "Clip the DIFFERENCE x_adv - x to [-eps, eps], then add it back to x; clipping x_adv itself to [-eps, eps] is not the ball around x."),
        Misconception("jump to the boundary", lambda z, x, eps: (x + eps * (z - x).sign()).clamp(0, 1),
                      "Projecting means clipping: a point inside the ball stays where it is, it does not jump to the boundary (no sign())."),
    ],
    ("Two constraints: within eps of x (per pixel), and inside [0, 1]. Write delta = x_adv - x first.",
     "delta = (x_adv - x).clamp(-eps, eps), then (x + delta).clamp(0, 1).",
     "def my_project_linf(x_adv, x, eps):\n"
     "    delta = (x_adv - x).clamp(-eps, eps)\n"
     "    return (x + delta).clamp(0, 1)"),
    "The projection must be clip_[0,1](x + clip_[-eps,eps](x_adv - x)).",
    forbidden=("coursekit.attacks.project_linf", "coursekit.attacks.pgd", "coursekit.attacks.project_l2"),
    atol=1e-6,
))


# ---- 02 exercise 1: the worst-case perturbation

def _worst_cases():
    g = torch.Generator().manual_seed(4)
    return [(torch.randn(1000, generator=g, dtype=torch.float64), 0.05),
            (torch.randn(50, generator=g), 0.3), (torch.tensor([0.5, -2.0, 3.0]), 0.1)]


register(Exercise(
    "02_linear_explanation", "ex1-worst-perturbation", "worst_perturbation",
    "Exercise 1 (the worst-case perturbation)", lambda w, eps: eps * torch.sign(w), _worst_cases,
    [
        Misconception("decreases the score", lambda w, eps: -eps * torch.sign(w),
                      "Your eta LOWERS w^T x: move every entry in the direction of the sign of its weight."),
        Misconception("scaled weights", lambda w, eps: eps * w,
                      "eps * w does not use the budget: entries with small weights barely move. Use eps * sign(w): every entry moves by eps."),
        Misconception("normalised weights", lambda w, eps: eps * w / w.abs().max(),
                      "Scaling w so that its largest entry is eps leaves the other entries below eps: use eps * sign(w)."),
    ],
    ("Maximise w^T eta = sum_i w_i eta_i with |eta_i| <= eps: each term on its own.",
     "The best eta_i is +eps when w_i > 0 and -eps when w_i < 0: torch.sign does that.",
     "def worst_perturbation(w, eps):\n    return eps * torch.sign(w)"),
    "w^T eta must reach its maximum eps * ||w||_1: every entry moves by eps in the direction of its weight's sign.",
    forbidden=("coursekit.linear.fgsm_linear",),
    atol=1e-9,
))


# ---- 02 exercise 2: FGSM in closed form for logistic regression

def _logit_ref(w, x, y, eps):
    direction = (1 - 2 * y.to(x.dtype)).view(-1, 1)            # sign(p - y), y in {0, 1} of any dtype
    return (x + eps * direction * torch.sign(w)).clamp(0, 1)


def _logit_cases():
    g = torch.Generator().manual_seed(5)
    w = 0.01 * torch.randn(784, generator=g)
    x = torch.rand(16, 784, generator=g)
    y = torch.randint(0, 2, (16,), generator=g)
    w2 = torch.tensor([1.0, -1.0, 2.0])
    return [(w, x, y, 0.2), (w2, torch.full((2, 3), 0.5), torch.tensor([1, 0]), 0.1),
            (w2, torch.tensor([[0.95, 0.05, 0.5], [0.02, 0.99, 0.5]]), torch.tensor([0.0, 1.0]), 0.3)]


def _logit_wrong(direction_of_y, clip=True):
    def wrong(w, x, y, eps):
        out = x + eps * direction_of_y(y.to(x.dtype)).view(-1, 1) * torch.sign(w)
        return out.clamp(0, 1) if clip else out
    return wrong


register(Exercise(
    "02_linear_explanation", "ex2-fgsm-logistic", "fgsm_logistic",
    "Exercise 2 (FGSM in closed form)", _logit_ref, _logit_cases,
    [
        Misconception("no clip", _logit_wrong(lambda y: 1 - 2 * y, clip=False),
                      "Clip x_adv to [0, 1] (.clamp(0, 1)): inputs are pixel values."),
        Misconception("direction flipped", _logit_wrong(lambda y: 2 * y - 1),
                      "Wrong direction: for y = 1 the attack must LOWER the score w^T x, so the step is (1 - 2y) * sign(w)."),
        Misconception("label ignored", _logit_wrong(lambda y: torch.ones_like(y)),
                      "The direction depends on the label: (1 - 2y) is +1 for y = 0 and -1 for y = 1."),
    ],
    ("The gradient of the log-loss is (p - y) w and 0 < p < 1: what is the sign of p - y for y = 0 and for y = 1?",
     "sign(p - y) = 1 - 2y. Make it a column, (1 - 2y).view(-1, 1), so it broadcasts over the n inputs, multiply by "
     "eps * sign(w), add to x, clip to [0, 1].",
     "def fgsm_logistic(w, x, y, eps):\n"
     "    direction = (1 - 2 * y.to(x.dtype)).view(-1, 1)\n"
     "    return (x + eps * direction * torch.sign(w)).clamp(0, 1)"),
    "x_adv = clip(x + eps * (1 - 2y) * sign(w)) to [0, 1].",
    forbidden=("coursekit.linear.fgsm_linear", "coursekit.attacks.fgsm"),
    atol=1e-6,
))


# ---- 02 exercise 3: the smallest flipping eps

def _flip_ref(W, b, x, y, t):
    margin = (W[y] - W[t]) @ x + (b[y] - b[t])
    return float(margin / (W[y] - W[t]).abs().sum())


def _flip_cases():
    logreg = _model("mnist_logreg")
    W, b = logreg.linear.weight.detach(), logreg.linear.bias.detach()
    x, y = _digits(64)
    cases = [(W, b, x[i].flatten(), int(y[i]), (int(y[i]) + k) % 10) for i, k in ((0, 1), (1, 3), (2, 5), (3, 7))]
    g = torch.Generator().manual_seed(7)
    W2, b2 = torch.randn(4, 20, generator=g), torch.randn(4, generator=g) * 3
    return cases + [(W2, b2, torch.rand(20, generator=g), 1, 2), (W2, b2, torch.rand(20, generator=g), 0, 3)]


register(Exercise(
    "02_linear_explanation", "ex3-min-flip", "min_flip_eps",
    "Exercise 3 (the smallest flipping eps)", _flip_ref, _flip_cases,
    [
        Misconception("no biases", lambda W, b, x, y, t: float((W[y] - W[t]) @ x / (W[y] - W[t]).abs().sum()),
                      "Include the biases in the margin: z_y - z_t = (w_y - w_t)^T x + (b_y - b_t)."),
        Misconception("L2 norm", lambda W, b, x, y, t: float(((W[y] - W[t]) @ x + b[y] - b[t]) / (W[y] - W[t]).norm()),
                      "Divide by the L1 norm of (w_y - w_t): an L-infinity budget eps lowers the margin by eps * ||w_y - w_t||_1, not the L2 norm."),
        Misconception("swapped classes", lambda W, b, x, y, t: float(((W[t] - W[y]) @ x + b[t] - b[y]) / (W[y] - W[t]).abs().sum()),
                      "The margin is z_y - z_t (true class minus target), positive while x is still classified as y."),
        Misconception("no absolute value", lambda W, b, x, y, t: float(((W[y] - W[t]) @ x + b[y] - b[t]) / (W[y] - W[t]).sum()),
                      "The norm needs absolute values: ||w_y - w_t||_1 = (w_y - w_t).abs().sum()."),
    ],
    ("eps* = margin / (how much one unit of eps lowers the margin). Write the margin z_y - z_t first.",
     "margin = (W[y] - W[t]) @ x + (b[y] - b[t]); each unit of eps lowers it by (W[y] - W[t]).abs().sum().",
     "def min_flip_eps(W, b, x, y, t):\n"
     "    margin = (W[y] - W[t]) @ x + (b[y] - b[t])\n"
     "    return float(margin / (W[y] - W[t]).abs().sum())"),
    "eps* = (z_y - z_t) / ||w_y - w_t||_1, with the biases in the margin.",
    returns="float", atol=1e-5,
))


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


register(Exercise(
    "03_defenses_transferability", "ex1-bypass-loss", "my_bypass_loss",
    "Exercise 1 (the bypass loss)", _bypass_ref, _bypass_cases,
    [
        Misconception("CE sign", _bypass_wrong(ce_sign=1.0),
                      "Wrong sign on the classifier term: the attacker minimises this loss and wants the classifier to "
                      "LEAVE class y, so the term is -CE(classifier_logits, y)."),
        Misconception("unstable log", _bypass_wrong(clean=lambda d: -torch.log(1 - torch.sigmoid(d))),
                      "log(1 - sigmoid(d)) overflows for large detector logits: use F.softplus(d), the same value computed stably."),
        Misconception("BCE towards 'adversarial'", _bypass_wrong(clean=lambda d: F.softplus(-d)),
                      "To look clean the detector must say 0: BCE(d, 0) = softplus(d), not softplus(-d) (that is BCE(d, 1))."),
        Misconception("weight ignored", _bypass_wrong(weight_on="nowhere"),
                      "Multiply the detector term by detector_weight (lambda)."),
        Misconception("weight on the wrong term", _bypass_wrong(weight_on="classifier"),
                      "detector_weight multiplies the DETECTOR term, softplus(detector_logits), not the cross-entropy."),
        Misconception("sum over the batch", _bypass_wrong(reduce="sum"),
                      "Average over the batch (.mean()), do not sum."),
    ],
    ("Two terms per example: 'leave class y' is minus the cross-entropy, 'look clean' is the binary cross-entropy "
     "of the detector logit against 0. Use reduction='none' to keep one value per example.",
     "leave_class = -F.cross_entropy(classifier_logits, y, reduction='none'); look_clean = F.softplus(detector_logits); "
     "combine with detector_weight and take the mean.",
     "def my_bypass_loss(classifier_logits, detector_logits, y, detector_weight):\n"
     "    leave_class = -F.cross_entropy(classifier_logits, y, reduction='none')\n"
     "    look_clean = F.softplus(detector_logits)\n"
     "    return (leave_class + detector_weight * look_clean).mean()"),
    "The loss is mean(-CE(classifier_logits, y) + detector_weight * softplus(detector_logits)): check the signs and the weight.",
    forbidden=("coursekit.defenses.bypass_loss", "coursekit.defenses.adaptive_attack"),
    returns="scalar", atol=1e-5,
))


# ---- 03 exercise 2: the inner step of fast adversarial training (stochastic: bands)

def _fast_at_ref(model, x, y, eps, alpha, generator):
    from coursekit import attacks

    delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
    x_start = (x + delta).clamp(0, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_start), y), x_start)
    return attacks.project_linf(x_start.detach() + alpha * grad.sign(), x, eps).detach()


def _fast_at_wrong(start="uniform", direction=1.0, project="x", use_generator=True):
    from coursekit import attacks

    def wrong(model, x, y, eps, alpha, generator):
        if start == "none":
            delta = torch.zeros_like(x)
        else:
            u = torch.rand(x.shape, generator=generator if use_generator else None)
            delta = u * eps if start == "positive" else (u * 2 - 1) * eps
        x_start = (x + delta).clamp(0, 1).requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_start), y), x_start)
        stepped = x_start.detach() + direction * alpha * grad.sign()
        if project == "none":
            return stepped
        return attacks.project_linf(stepped, x if project == "x" else x_start.detach(), eps).detach()
    return wrong


def _fast_at_cases():
    model = _model("mnist_cnn")
    x, y = _digits(64)
    return [(model, x[:32], y[:32], 0.3, 0.375, torch.Generator().manual_seed(0)),
            (model, x[32:48], y[32:48], 0.1, 0.125, torch.Generator().manual_seed(1))]


def _fast_at_stats(fn, seed: int) -> dict:
    model = _model("mnist_cnn")
    x, y = _digits(64)
    out = _call(fn, (model, x[:32], y[:32], 0.3, 0.375, torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        loss = F.cross_entropy(model(out), y[:32]).item()
        fooled = (model(out).argmax(1) != y[:32]).float().mean().item()
    return {"adversarial_loss": loss, "fooled_fraction": fooled,
            "mean_abs_change": float((out - x[:32]).abs().mean())}


def _repeats_with_generator(fn) -> bool:
    model = _model("mnist_cnn")
    x, y = _digits(64)
    return _same_under_two_global_seeds(fn, lambda: (model, x[:8], y[:8], 0.3, 0.375, torch.Generator().manual_seed(0)))


def _within_ball(fn) -> bool:
    for model, x, y, eps, alpha, g in _fast_at_cases():
        out = _call(fn, (model, x, y, eps, alpha, g))
        if float((out - x).abs().max()) > eps + 1e-6 or float(out.min()) < 0 or float(out.max()) > 1:
            return False
    return True


register(Exercise(
    "03_defenses_transferability", "ex2-fast-at", "fast_at_batch",
    "Exercise 2 (the inner step of fast adversarial training)", _fast_at_ref, _fast_at_cases,
    [
        Misconception("no random start", _fast_at_wrong(start="none"),
                      "Start from a random point of the eps-ball: delta ~ U(-eps, eps) per pixel, drawn with the generator."),
        Misconception("one-sided random start", _fast_at_wrong(start="positive"),
                      "The random start must be uniform in [-eps, eps]: torch.rand gives [0, 1), so use (rand * 2 - 1) * eps."),
        Misconception("gradient descent", _fast_at_wrong(direction=-1.0),
                      "The step goes DOWN the loss: the attack must go UP, x' + alpha * sign(grad)."),
        Misconception("no projection", _fast_at_wrong(project="none"),
                      "Project back at the end: attacks.project_linf(x'', x, eps) keeps the eps-ball around x and [0, 1]."),
        Misconception("projected around the start", _fast_at_wrong(project="start"),
                      "Project onto the eps-ball around the CLEAN x, not around the random start."),
        Misconception("random start without the generator", _fast_at_wrong(use_generator=False),
                      "Draw the random start with torch.rand(x.shape, generator=generator), so that the same generator "
                      "gives the same batch.",
                      detect=lambda fn: not _repeats_with_generator(fn)),
    ],
    ("Three steps: a random start inside the eps-ball, one FGSM-like step of size alpha from there, "
     "and a projection back onto the eps-ball around the clean x.",
     "torch.rand(x.shape, generator=generator) is uniform in [0, 1): rescale it to [-eps, eps]. The step is "
     "an FGSM step of size alpha taken FROM the random start (the gradient there); attacks.project_linf("
     "x_new, x, eps) brings the result back around the CLEAN x.",
     "def fast_at_batch(model, x, y, eps, alpha, generator):\n"
     "    delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps\n"
     "    x_start = (x + delta).clamp(0, 1).requires_grad_(True)\n"
     "    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_start), y), x_start)\n"
     "    return attacks.project_linf(x_start.detach() + alpha * grad.sign(), x, eps).detach()"),
    "Random start U(-eps, eps) drawn with the generator, clip, one signed step of size alpha uphill, project onto the eps-ball around x.",
    forbidden=("coursekit.attacks.fgsm", "coursekit.attacks.pgd", "coursekit.defenses.make_adversarial",
               "coursekit.defenses.adversarial_training"),
    exact=False, band_stats=_fast_at_stats, band_seeds=40,
    properties=[(_within_ball, "Stay in the eps-ball around x and in [0, 1]: project with attacks.project_linf(x'', x, eps)."),
                (_repeats_with_generator, "Use the generator for the random start so that runs repeat.")],
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

    cnn = _model("mnist_cnn")
    x, y = _digits(120)
    return x, y, attacks.fgsm(cnn, x, y, 0.25), attacks.fgsm(cnn, x, y, 0.1)


def _transfer_cases():
    x, y, adv, adv_small = _transfer_data()
    return [(_model("mnist_logreg"), adv, x, y), (_model("mnist_cnn"), adv_small, x, y),
            (_model("mnist_mlp"), adv, x, y)]


def _masks(m, x_adv, x, y):
    with torch.no_grad():
        return m(x).argmax(1) == y, m(x_adv).argmax(1) != y


def _transfer_wrong(rate):
    def wrong(target_model, x_adv, x, y):
        correct, fooled = _masks(target_model, x_adv, x, y)
        return float(rate(correct, fooled))
    return wrong


register(Exercise(
    "03_defenses_transferability", "ex3-transfer", "transfer_success",
    "Exercise 3 (transfer success rate)", _transfer_ref, _transfer_cases,
    [
        Misconception("all examples", _transfer_wrong(lambda correct, fooled: fooled.float().mean()),
                      "Count only examples the TARGET gets right when clean: its own mistakes are not the attack's success."),
        Misconception("divided by all", _transfer_wrong(lambda correct, fooled: (fooled & correct).sum() / len(fooled)),
                      "Divide by the number of examples the target classifies correctly when clean, not by all examples."),
        Misconception("numerator not restricted", _transfer_wrong(lambda correct, fooled: fooled.sum() / correct.sum()),
                      "In the numerator too, count only the examples that were correct when clean (fooled & correct)."),
        Misconception("accuracy instead of success", _transfer_wrong(lambda correct, fooled: (correct & ~fooled).sum() / correct.sum()),
                      "That is the accuracy that survives the attack: the success rate counts the MISclassified adversarial examples."),
    ],
    ("Two boolean masks over the examples: correct on clean x, and wrong on x_adv. Use torch.no_grad().",
     "Two boolean masks from the target's argmax predictions: right on x, and wrong on x_adv. The rate "
     "is how many examples are in BOTH, over how many are in the first.",
     "def transfer_success(target_model, x_adv, x, y):\n"
     "    with torch.no_grad():\n"
     "        correct = target_model(x).argmax(1) == y\n"
     "        fooled = target_model(x_adv).argmax(1) != y\n"
     "    return float((fooled & correct).sum() / correct.sum())"),
    "Count only examples the TARGET gets right when clean, and divide by their number.",
    forbidden=("coursekit.transfer.transfer_matrix", "coursekit.attacks.attack_success_rate"),
    returns="float", atol=1e-6,
))



# Lecture entries kept in their own modules (they register themselves on import).
from coursekit import exercises_04  # noqa: E402,F401  (04_gan_game)
from coursekit import exercises_05  # noqa: E402,F401  (05_gan_training_tips)
from coursekit import exercises_06  # noqa: E402,F401  (06_gan_applications)
from coursekit import exercises_07  # noqa: E402,F401  (07_evaluating_gans)
from coursekit import exercises_deep_0103  # noqa: E402,F401  (deep exercises of 01-03, until the package split)
