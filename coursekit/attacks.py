"""Adversarial attacks, each written the way the lecture writes it.

Every attack takes images ``x`` of shape ``(N, C, H, W)`` with values in [0, 1]
(normalisation lives inside the model) and integer labels ``y`` of shape
``(N,)``, and returns detached adversarial images of the same shape, in [0, 1].

- :func:`fgsm`: one step along the sign of the gradient (Goodfellow et al. 2015);
- :func:`pgd`: many small steps, each followed by a projection onto the
  eps-ball (:func:`project_linf`, :func:`project_l2`) (Madry et al. 2018);
- :func:`carlini_wagner_l2`: the smallest L2 change that flips the decision
  (Carlini & Wagner 2017);
- :func:`fooling_image`: "an iguana from noise": optimise the *input* until the
  model is confident, whatever the image looks like;
- :func:`targeted_close_attack`: "cat -> iguana": reach a target class while
  staying close to the original image.

All attacks run on ``x.device`` (the model must be there too), put the model in
eval mode and restore every module's mode afterwards, and never touch the
model's parameters: gradients are taken with ``torch.autograd.grad`` with
respect to the input only, so no ``.grad`` is written on the model.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from coursekit import runtime
from coursekit.checks import CourseKitError, check_images, check_int, check_labels, check_nonnegative

__all__ = [
    "fgsm", "pgd", "project_linf", "project_l2", "carlini_wagner_l2",
    "fooling_image", "targeted_close_attack", "attack_success_rate",
    "perturbation_norms", "evaluating",
]

NORMS = ("linf", "l2")


# ---------------------------------------------------------------- plumbing

@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``model`` in eval mode (every submodule's mode restored afterwards,
    :func:`coursekit.runtime.evaluating`) and gradients on: an attack needs them even when
    called under ``torch.no_grad()``."""
    with runtime.evaluating(model), torch.enable_grad():
        yield model


def _model_parameter(model: nn.Module) -> torch.Tensor | None:
    if not isinstance(model, nn.Module):
        raise CourseKitError(
            f"model must be a torch.nn.Module (images -> logits), got {type(model).__name__}."
        )
    for tensor in model.parameters():
        return tensor
    for tensor in model.buffers():
        return tensor
    return None


def _check_model_matches(model: nn.Module, x: torch.Tensor, name: str = "x") -> None:
    """The model's weights must live on x's device and share its dtype."""
    reference = _model_parameter(model)
    if reference is None:
        return
    if reference.device != x.device:
        raise CourseKitError(
            f"{name} is on {x.device} but the model is on {reference.device}. Move one of "
            f"them, e.g. {name} = {name}.to(next(model.parameters()).device)."
        )
    if reference.is_floating_point() and reference.dtype != x.dtype:
        raise CourseKitError(
            f"{name} has dtype {x.dtype} but the model computes in {reference.dtype}. "
            f"Convert with {name}.to({reference.dtype})."
        )


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    """How many logits the model returns (one forward pass on a single image)."""
    with evaluating(model), torch.no_grad():
        logits = model(x[:1])
    if logits.dim() != 2:
        raise CourseKitError(
            f"The model must return logits of shape (N, num_classes), got {tuple(logits.shape)}."
        )
    return logits.shape[1]


def _validated(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               labels: str = "y") -> tuple[torch.Tensor, torch.Tensor]:
    """Check images and labels; return ``(x, y)`` detached, with ``y`` on ``x.device``."""
    check_images(x)
    _check_model_matches(model, x)
    if isinstance(y, torch.Tensor):
        y = y.to(x.device)
    n = len(x)
    check_labels(y, n, labels)
    if n:
        check_labels(y, n, labels, num_classes=_num_classes(model, x))
    return x.detach(), y.detach()


def _batch_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example values ``(N,)`` -> ``(N, 1, 1, 1)`` to broadcast over images."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def _l2_norms(t: torch.Tensor) -> torch.Tensor:
    """||t_i||_2 per example: ``(N, ...)`` -> ``(N,)``."""
    return t.flatten(1).norm(p=2, dim=1)


def _steepest_ascent(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The unit step that raises a linearised loss most: sign(g) (linf) or g / ||g||_2 (l2)."""
    if norm == "linf":
        return grad.sign()
    return grad / _batch_view(_l2_norms(grad) + 1e-10, grad)


# ---------------------------------------------------------------- FGSM

def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
         targeted: bool = False) -> torch.Tensor:
    r"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy 2015).

    .. math:: x_{adv} = \mathrm{clip}_{[0,1]}\big(x + \epsilon\,\mathrm{sign}(\nabla_x L(f(x), y))\big)

    with ``L`` the cross-entropy. Targeted (``targeted=True``, ``y`` holds the
    target classes): step *down* the loss of the target,
    ``x - eps * sign(grad_x L(f(x), y_target))``.

    x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)`` class indices; returns ``(N, C, H, W)``.
    Every pixel moves by at most ``eps`` (L-infinity budget).
    """
    eps = check_nonnegative(eps, "eps")
    x, y = _validated(model, x, y)
    if eps == 0:
        return x.clone()
    direction = -1.0 if targeted else 1.0                     # targeted: go down the loss
    with evaluating(model):
        x_ = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x_), y, reduction="sum")   # L(f(x), y), summed over the batch
        grad, = torch.autograd.grad(loss, x_)                   # grad_x L (no .grad on the model)
        return (x + direction * eps * grad.sign()).clamp(0, 1)  # step, then stay an image


# ---------------------------------------------------------------- PGD

def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    r"""Project onto the L-infinity ball around ``x`` and the image box [0, 1].

    .. math:: \Pi(x_{adv}) = \mathrm{clip}_{[0,1]}\big(x + \mathrm{clip}_{[-\epsilon,\epsilon]}(x_{adv} - x)\big)

    Clipping each coordinate is the exact Euclidean projection onto
    ``{x' : ||x' - x||_inf <= eps, 0 <= x' <= 1}``. Shapes: ``(N, C, H, W)`` -> same.
    """
    delta = (x_adv - x).clamp(-eps, eps)
    return (x + delta).clamp(0, 1)


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    r"""Project onto the L2 ball of radius ``eps`` around ``x``, then clip to [0, 1].

    .. math:: \delta = x_{adv} - x, \quad
              \Pi(x_{adv}) = \mathrm{clip}_{[0,1]}\Big(x + \delta \cdot \min\big(1, \tfrac{\epsilon}{\|\delta\|_2}\big)\Big)

    The norm is per example (over all of C, H, W). Shapes: ``(N, C, H, W)`` -> same.
    """
    delta = x_adv - x
    norms = _l2_norms(delta).clamp_min(1e-12)          # no 0/0 where delta == 0
    factor = (eps / norms).clamp(max=1.0)
    return (x + delta * _batch_view(factor, delta)).clamp(0, 1)


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None
                  ) -> torch.Tensor:
    """A random point of the eps-ball around ``x`` (torchattacks' PGD and PGDL2 recipes)."""
    if norm == "linf":   # uniform in the cube [-eps, eps]^n
        noise = torch.empty_like(x).uniform_(-eps, eps, generator=generator)
    else:                # a uniformly random direction, radius eps * U(0, 1)
        noise = torch.empty_like(x).normal_(generator=generator)
        norms = _batch_view(_l2_norms(noise), x)
        radius = torch.zeros_like(norms).uniform_(0, 1, generator=generator)
        noise *= radius / norms * eps
    return (x + noise).clamp(0, 1)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float,
        steps: int, norm: str = "linf", random_start: bool = True, targeted: bool = False,
        *, early_stop: bool = False, seed: int | None = None, progress: bool = False
        ) -> torch.Tensor:
    r"""Projected Gradient Descent (Madry et al. 2018): iterated FGSM, projected back.

    .. math:: x^{t+1} = \Pi_{B_\epsilon(x)}\big(x^t + \alpha\, d(\nabla_x L(f(x^t), y))\big)

    with ``L`` the cross-entropy, ``d(g) = sign(g)`` for ``norm="linf"`` and
    ``d(g) = g / ||g||_2`` for ``norm="l2"``, and ``Pi`` the projection onto the
    eps-ball and the box [0, 1] (:func:`project_linf`, :func:`project_l2`).
    ``x^0`` is ``x``, or a random point of the ball when ``random_start``
    (uniform in the cube for linf; for l2 a random direction at radius eps*U(0,1),
    as torchattacks' PGDL2). ``seed`` makes the random start repeatable.

    Targeted (``y`` holds target classes): steps go *down* the target's loss.
    ``early_stop``: stop updating examples that are already misclassified
    (untargeted) or classified as their target (targeted).

    x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)``; returns ``(N, C, H, W)`` in [0, 1].
    """
    eps = check_nonnegative(eps, "eps")
    alpha = check_nonnegative(alpha, "alpha")
    steps = check_int(steps, "steps", minimum=0)
    if not isinstance(norm, str) or norm.lower() not in NORMS:
        raise CourseKitError(f"Unknown norm {norm!r}: use 'linf' or 'l2'.")
    norm = norm.lower()
    if seed is not None:
        check_int(seed, "seed", minimum=0)
    x, y = _validated(model, x, y)
    if eps == 0:
        return x.clone()
    project = project_linf if norm == "linf" else project_l2
    direction = -1.0 if targeted else 1.0
    generator = None
    if random_start and seed is not None:
        generator = torch.Generator(device=x.device).manual_seed(seed)

    with evaluating(model):
        x_adv = _random_start(x, eps, norm, generator) if random_start else x
        for _ in tqdm(range(steps), desc="PGD", disable=not progress, leave=False):
            x_adv = x_adv.detach().requires_grad_(True)
            logits = model(x_adv)
            loss = F.cross_entropy(logits, y, reduction="sum")       # L(f(x^t), y)
            grad, = torch.autograd.grad(loss, x_adv)                 # grad_x L, input only
            step = _steepest_ascent(grad, norm)
            x_next = project(x_adv.detach() + (direction * alpha) * step, x, eps)
            if early_stop:
                prediction = logits.detach().argmax(1)
                fooled = prediction == y if targeted else prediction != y
                if bool(fooled.all()):                               # one sync per step
                    break
                x_next = torch.where(_batch_view(fooled, x), x_adv.detach(), x_next)
            x_adv = x_next
        x_adv = x_adv.detach()
        return x_adv.clone() if x_adv.data_ptr() == x.data_ptr() else x_adv   # never alias x


# ---------------------------------------------------------------- Carlini & Wagner

def _cw_margin(logits: torch.Tensor, y: torch.Tensor, kappa: float, targeted: bool) -> torch.Tensor:
    r"""C&W's ``f``: how far the decision is from flipping, floored at ``-kappa``.

    untargeted: ``max(Z_y - max_{i != y} Z_i, -kappa)``;
    targeted:   ``max(max_{i != t} Z_i - Z_t, -kappa)``. ``(N, K), (N,) -> (N,)``.
    """
    own = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    margin = others - own if targeted else own - others
    return margin.clamp(min=-kappa)


def carlini_wagner_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, c: float = 1.0,
                      kappa: float = 0.0, steps: int = 100, lr: float = 0.1,
                      targeted: bool = False, *, progress: bool = False) -> torch.Tensor:
    r"""Carlini & Wagner's L2 attack (2017), as in torchattacks' ``CW`` (no search over ``c``).

    .. math:: \min_w \; \|x' - x\|_2^2 + c\, f(x'), \qquad x' = \tfrac12(\tanh w + 1)

    The tanh change of variables keeps ``x'`` in [0, 1] without clipping; ``f``
    is the logit margin (see :func:`_cw_margin`), floored at ``-kappa``
    (``kappa > 0`` asks for confident adversarial examples). ``w`` is optimised
    with Adam (``lr``) for ``steps`` steps. For each example the attack returns
    the successful ``x'`` with the smallest L2 distance seen, or ``x`` itself if
    it never succeeded.

    ``lr`` defaults to 0.1, not torchattacks' 0.01: pixels at exactly 0 or 1
    (most of an MNIST digit) start deep in tanh's flat tails (``|w| ~ 7``), and
    at 0.01 they barely move in 100 steps (about 15% success on mnist_cnn
    against 100% at 0.1). Targeted attacks need a larger ``c`` (e.g. 5).

    x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)`` true labels (targets when
    ``targeted``); returns ``(N, C, H, W)``.
    """
    c = check_nonnegative(c, "c")
    kappa = check_nonnegative(kappa, "kappa")
    lr = check_nonnegative(lr, "lr")
    steps = check_int(steps, "steps", minimum=0)
    x, y = _validated(model, x, y)
    # atanh(2x - 1), shrunk a hair so that pixels at exactly 0 or 1 stay finite
    w = torch.atanh((2 * x - 1) * (1 - 1e-6)).requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=lr)
    best = x.clone()
    best_l2 = torch.full((len(x),), float("inf"), device=x.device)

    with evaluating(model):
        for _ in tqdm(range(steps), desc="C&W", disable=not progress, leave=False):
            x_adv = (torch.tanh(w) + 1) / 2
            distance = (x_adv - x).flatten(1).pow(2).sum(1)              # ||x' - x||_2^2
            logits = model(x_adv)
            loss = distance.sum() + c * _cw_margin(logits, y, kappa, targeted).sum()
            w.grad, = torch.autograd.grad(loss, w)                        # only w gets a grad
            optimizer.step()

            prediction = logits.detach().argmax(1)
            success = prediction == y if targeted else prediction != y
            improved = success & (distance.detach() < best_l2)
            best_l2 = torch.where(improved, distance.detach(), best_l2)
            best = torch.where(_batch_view(improved, x), x_adv.detach(), best)
    return best.clamp(0, 1)


# ---------------------------------------------------------------- optimising the input

def _targets(target: int | torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    if isinstance(target, torch.Tensor):
        target = target.to(device)
        if target.dim() == 0:
            target = target.expand(n)
        return check_labels(target, n, "target")
    if isinstance(target, bool) or not isinstance(target, int):
        raise CourseKitError(f"target must be a class index (int) or a tensor of them, got {target!r}.")
    return torch.full((n,), target, dtype=torch.long, device=device)


def _record(history: dict, n: int, **values: torch.Tensor) -> None:
    """Append this step's values: a number when n == 1, else a list per example."""
    for key, value in values.items():
        value = value.detach().cpu()
        history[key].append(value.item() if n == 1 else value.tolist())


def fooling_image(
    model: nn.Module,
    target: int | torch.Tensor,
    *,
    shape: tuple[int, ...] = (1, 1, 28, 28),
    confidence: float = 0.99,
    lr: float = 0.1,
    max_steps: int = 1000,
    seed: int = 0,
    start: torch.Tensor | None = None,
    progress: bool = False,
    snapshot_every: int | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, dict]:
    r"""An image the model is sure shows ``target``, grown from noise ("an iguana from noise").

    Gradient descent on the *input*, not the weights:

    .. math:: \min_x \; -\log p_\theta(\text{target} \mid x), \qquad x = \sigma(w) \in [0, 1]

    starting from uniform noise (``seed``) or from ``start``, with Adam (``lr``)
    on ``w``, until ``p(target | x) >= confidence`` (or ``max_steps``). Nothing
    asks the image to *look* like the class: it usually still looks like noise.

    target: an int, or ``(N,)`` class indices for a batch of ``shape[0] == N`` images.
    Returns ``(x, history)``: ``x`` of ``shape`` in [0, 1] (each example as
    it was when it first reached ``confidence``); ``history`` holds per step
    ``"loss"`` (cross-entropy), ``"target_prob"`` and ``"prediction"``
    (a number for one image, a list per example for a batch), ``"reached"``,
    ``"steps"``, and every ``snapshot_every`` steps a CPU copy of the images in
    ``"snapshots"`` (steps in ``"snapshot_steps"``). ``callback(step, x, probs)``
    is called each step, e.g. to draw a live view.
    """
    confidence = check_nonnegative(confidence, "confidence")
    if not 0 < confidence < 1:
        raise CourseKitError(f"confidence must be a probability in (0, 1), got {confidence!r}.")
    lr = check_nonnegative(lr, "lr")
    max_steps = check_int(max_steps, "max_steps", minimum=0)
    if snapshot_every is not None:
        check_int(snapshot_every, "snapshot_every", minimum=1)
    reference = _model_parameter(model)
    device = reference.device if reference is not None else torch.device("cpu")
    if start is None:
        if not (isinstance(shape, (tuple, list)) and len(shape) == 4
                and all(isinstance(s, int) and s > 0 for s in shape)):
            raise CourseKitError(f"shape must be (N, C, H, W) of positive ints, got {shape!r}.")
        generator = torch.Generator().manual_seed(seed)
        start = torch.rand(tuple(shape), generator=generator).to(device)
    else:
        check_images(start, "start")
        _check_model_matches(model, start, "start")
    n = len(start)
    target = _targets(target, n, start.device)
    check_labels(target, n, "target", num_classes=_num_classes(model, start))

    w = torch.logit(start.detach().clamp(1e-3, 1 - 1e-3)).requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=lr)
    result = start.detach().clone()
    reached = torch.zeros(n, dtype=torch.bool, device=start.device)
    history: dict = {"loss": [], "target_prob": [], "prediction": [],
                     "snapshots": [], "snapshot_steps": []}
    rows = torch.arange(n, device=start.device)
    step = 0
    with evaluating(model):
        for step in tqdm(range(max_steps + 1), desc="fooling image", disable=not progress, leave=False):
            x = torch.sigmoid(w)
            logits = model(x)
            losses = F.cross_entropy(logits, target, reduction="none")   # -log p(target | x)
            probs = logits.detach().softmax(1)[rows, target]
            _record(history, n, loss=losses, target_prob=probs, prediction=logits.argmax(1))
            if snapshot_every and step % snapshot_every == 0:
                history["snapshots"].append(x.detach().cpu())
                history["snapshot_steps"].append(step)
            if callback is not None:
                callback(step, x.detach(), probs)
            newly = (probs >= confidence) & ~reached
            result = torch.where(_batch_view(newly, result), x.detach(), result)
            reached |= newly
            if bool(reached.all()) or step == max_steps:
                break
            w.grad, = torch.autograd.grad(losses.sum(), w)
            optimizer.step()
        result = torch.where(_batch_view(reached, result), result, x.detach())
    if snapshot_every and history["snapshot_steps"][-1] != step:     # always show the last frame
        history["snapshots"].append(x.detach().cpu())
        history["snapshot_steps"].append(step)
    history["reached"] = reached.item() if n == 1 else reached.tolist()
    history["steps"] = step
    return result.clamp(0, 1), history


def targeted_close_attack(
    model: nn.Module,
    x0: torch.Tensor,
    target: int | torch.Tensor,
    *,
    lam: float = 0.1,
    lr: float = 0.01,
    steps: int = 200,
    confidence: float | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, dict]:
    r"""Turn ``x0`` into a ``target`` while staying close to it ("cat -> iguana").

    .. math:: \min_{x \in [0,1]^n} \; L(f(x), \text{target}) + \lambda \|x - x_0\|_2^2

    with ``L`` the cross-entropy: Adam (``lr``) on the pixels for ``steps``
    steps, starting at ``x0``, projected back onto [0, 1] after each step. A
    larger ``lam`` keeps ``x`` closer to ``x0`` at the price of a less confident
    target. Adam moves each pixel by about ``lr`` per step: for photos take a
    small ``lr`` (1e-3 turns the cat into an iguana in a few steps, within 4/255). For each example the result is the closest iterate (in L2) that the
    model classifies as ``target`` (with ``p(target | x) >= confidence`` when
    ``confidence`` is given); the last iterate where none was.

    x0: ``(N, C, H, W)`` in [0, 1]; target: an int or ``(N,)`` class indices.
    Returns ``(x, history)``: ``x`` like ``x0``; ``history`` per step holds
    ``"loss"``, ``"cross_entropy"``, ``"distance"`` (``||x - x0||_2``),
    ``"target_prob"`` and ``"prediction"`` (numbers for one image, lists per
    example for a batch), and ``"reached"`` (per example: did any iterate succeed).
    """
    lam = check_nonnegative(lam, "lam")
    lr = check_nonnegative(lr, "lr")
    steps = check_int(steps, "steps", minimum=0)
    if confidence is not None:
        confidence = check_nonnegative(confidence, "confidence")
        if not 0 < confidence < 1:
            raise CourseKitError(f"confidence must be a probability in (0, 1), got {confidence!r}.")
    check_images(x0, "x0")
    _check_model_matches(model, x0, "x0")
    n = len(x0)
    target = _targets(target, n, x0.device)
    x0 = x0.detach()
    if n:
        check_labels(target, n, "target", num_classes=_num_classes(model, x0))

    x = x0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    best = x0.clone()
    best_distance = torch.full((n,), float("inf"), device=x0.device)
    history: dict = {"loss": [], "cross_entropy": [], "distance": [], "target_prob": [],
                     "prediction": []}
    rows = torch.arange(n, device=x0.device)
    with evaluating(model):
        for step in tqdm(range(steps + 1), desc="targeted attack", disable=not progress, leave=False):
            logits = model(x)
            cross_entropy = F.cross_entropy(logits, target, reduction="none")
            distance = (x - x0).flatten(1).pow(2).sum(1)                  # ||x - x0||_2^2
            losses = cross_entropy + lam * distance
            probs = logits.detach().softmax(1)[rows, target]
            success = logits.detach().argmax(1) == target
            if confidence is not None:
                success &= probs >= confidence
            _record(history, n, loss=losses, cross_entropy=cross_entropy,
                    distance=distance.detach().sqrt(), target_prob=probs,
                    prediction=logits.argmax(1))
            closer = success & (distance.detach() < best_distance)
            best_distance = torch.where(closer, distance.detach(), best_distance)
            best = torch.where(_batch_view(closer, best), x.detach(), best)
            if step == steps:
                break
            x.grad, = torch.autograd.grad(losses.sum(), x)
            optimizer.step()
            with torch.no_grad():
                x.clamp_(0, 1)                                            # stay an image
    reached = best_distance < float("inf")
    best = torch.where(_batch_view(reached, best), best, x.detach())
    history["reached"] = reached.item() if n == 1 else reached.tolist()
    return best, history


# ---------------------------------------------------------------- measuring

def attack_success_rate(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor,
                        targeted: bool = False, batch_size: int = 1000) -> float:
    r"""Fraction of adversarial examples that fool the model.

    untargeted: ``mean(f(x_adv) != y)`` with ``y`` the true labels (inputs the
    model got wrong already count as successes; compare with clean accuracy);
    targeted: ``mean(f(x_adv) == y)`` with ``y`` the targets.
    x_adv: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)``.
    """
    check_images(x_adv, "x_adv")
    _check_model_matches(model, x_adv, "x_adv")
    check_labels(y, len(x_adv))
    if len(x_adv) == 0:
        raise CourseKitError("x_adv is empty: a success rate needs at least one example.")
    with evaluating(model), torch.no_grad():
        prediction = torch.cat([model(x_adv[i:i + batch_size]).argmax(1)
                                for i in range(0, len(x_adv), batch_size)])
    y = y.to(prediction.device)
    hits = prediction == y if targeted else prediction != y
    return float(hits.float().mean())


def perturbation_norms(x: torch.Tensor, x_adv: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""Size of each perturbation ``delta = x_adv - x``, per example.

    Returns ``{"linf": max_i |delta_i|, "l2": sqrt(sum_i delta_i^2)}``, each ``(N,)``.
    """
    check_images(x, "x")
    check_images(x_adv, "x_adv")
    if x.shape != x_adv.shape:
        raise CourseKitError(f"x and x_adv must have the same shape, got {tuple(x.shape)} "
                             f"and {tuple(x_adv.shape)}.")
    delta = (x_adv.detach() - x.detach().to(x_adv.device)).flatten(1)
    return {"linf": delta.abs().amax(1), "l2": delta.norm(p=2, dim=1)}
