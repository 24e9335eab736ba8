"""Defences against adversarial examples, and how to measure (and break) them.

- :class:`AdversarialDetector`, :func:`train_detector`, :func:`detector_accuracy`:
  a "safety net", a second network trained to tell clean images from
  adversarial ones (Metzen et al. 2017; Grosse et al. 2017);
- :func:`bypass_loss`, :func:`adaptive_attack`: the attacker who knows about the
  safety net fools the classifier *and* the detector at once (Carlini & Wagner
  2017, "Adversarial examples are not easily detected");
- :func:`adversarial_training`: train on adversarial examples instead of clean
  ones (Goodfellow et al. 2015; Madry et al. 2018; "fast" FGSM training with a
  random start, Wong, Rice & Kolter 2020);
- :func:`robustness_curve`, :func:`robustness_curves`: accuracy as a function of
  the attacker's budget epsilon.

Images are ``(N, 1, 28, 28)`` (any ``(N, C, H, W)`` for the classifiers) with
values in [0, 1]. Every function puts the models it attacks or evaluates in
eval mode, restores their modes afterwards, and never changes their parameters
(gradients are taken with respect to the input only).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from coursekit import attacks
from coursekit.checks import CourseKitError, check_images, check_int, check_labels, check_nonnegative
from coursekit.models import MNIST_MEAN, MNIST_STD, Normalize
from coursekit.runtime import model_device

__all__ = [
    "AttackSpec", "AdversarialDetector", "make_adversarial", "train_detector", "detector_accuracy",
    "detection_rate", "bypass_loss", "adaptive_attack", "adversarial_training",
    "robustness_curve", "robustness_curves", "plot_robustness_curves", "ATTACKS",
]

ATTACKS = ("fgsm", "pgd")
AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------- helpers

def _check_model(model: nn.Module, name: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module):
        raise CourseKitError(f"{name} must be a torch.nn.Module, got {type(model).__name__}.")
    return model


def _check_attack(attack: str | AttackFn) -> str | AttackFn:
    if callable(attack):
        return attack
    if not isinstance(attack, str) or attack.lower() not in ATTACKS:
        raise CourseKitError(
            f"Unknown attack {attack!r}: use 'fgsm', 'pgd', or a function "
            "attack(model, x, y) -> x_adv."
        )
    return attack.lower()


def _default_alpha(eps: float, steps: int) -> float:
    """Madry et al.'s rule of thumb: a step of 2.5 * eps / steps reaches the ball's edge."""
    return 2.5 * eps / max(steps, 1)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    check_images(x)
    check_labels(y, len(x))
    if len(x) == 0:
        raise CourseKitError("x is empty: give at least one image.")


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """The attack that crafts adversarial examples, and its budget.

    The one definition of the parameter group that :func:`make_adversarial`,
    :func:`train_detector`, :func:`robustness_curve` and
    :func:`coursekit.transfer.transfer_matrix` take as keyword arguments (validated here, once):

    - ``attack``: ``"fgsm"`` (:func:`coursekit.attacks.fgsm`), ``"pgd"``
      (:func:`coursekit.attacks.pgd`, L-infinity, random start) or any function
      ``attack(model, x, y) -> x_adv``;
    - ``eps``: the L-infinity budget (>= 0);
    - ``alpha``: the PGD step; ``None``: ``2.5 * eps / steps`` (Madry et al.'s rule of thumb);
    - ``steps``: PGD steps (>= 0);
    - ``seed``: PGD's random start, batch ``i`` seeded with ``seed + i`` (``None``: unseeded).
    """

    attack: str | AttackFn = "pgd"
    eps: float = 0.3
    alpha: float | None = None
    steps: int = 10
    seed: int | None = 0

    def __post_init__(self) -> None:
        set_field = object.__setattr__.__get__(self)     # frozen: validated values replace the given ones
        set_field("attack", _check_attack(self.attack))
        set_field("eps", check_nonnegative(self.eps, "eps"))
        set_field("steps", check_int(self.steps, "steps", minimum=0))
        if self.alpha is not None:
            set_field("alpha", check_nonnegative(self.alpha, "alpha"))

    @property
    def name(self) -> str:
        """``"fgsm"``, ``"pgd"``, or the function's name (for reports and plot titles)."""
        return self.attack if isinstance(self.attack, str) else getattr(self.attack, "__name__", "custom")

    @property
    def step_size(self) -> float:
        return _default_alpha(self.eps, self.steps) if self.alpha is None else self.alpha

    def with_eps(self, eps: float) -> "AttackSpec":
        """The same attack at another budget (a default ``alpha`` follows ``eps``)."""
        return dataclasses.replace(self, eps=eps)

    def craft(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500,
              targeted: bool = False) -> torch.Tensor:
        """Adversarial versions ``(N, C, H, W)`` of ``x``, batch by batch on the model's device, on x's device."""
        device = model_device(model)
        out = []
        for i, start in enumerate(range(0, len(x), batch_size)):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            if callable(self.attack):
                xb_adv = self.attack(model, xb, yb)
            elif self.attack == "fgsm":
                xb_adv = attacks.fgsm(model, xb, yb, self.eps, targeted=targeted)
            else:
                xb_adv = attacks.pgd(model, xb, yb, self.eps, self.step_size, self.steps, targeted=targeted,
                                     seed=None if self.seed is None else self.seed + i)
            out.append(xb_adv.detach().to(x.device))
        return torch.cat(out)


def make_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                     attack: str | AttackFn = "pgd", eps: float = 0.3, alpha: float | None = None,
                     steps: int = 10, seed: int | None = 0, batch_size: int = 500,
                     targeted: bool = False) -> torch.Tensor:
    """Adversarial examples crafted on ``model``, batch by batch.

    ``attack``, ``eps``, ``alpha``, ``steps``, ``seed``: the attack and its budget
    (:class:`AttackSpec`: ``"fgsm"``, ``"pgd"`` with ``alpha`` defaulting to
    ``2.5 * eps / steps``, or any function ``attack(model, x, y) -> x_adv``).
    x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)``; returns ``(N, C, H, W)`` on x's device.
    """
    _check_model(model)
    spec = AttackSpec(attack, eps, alpha, steps, seed)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    _check_pair(x, y)
    return spec.craft(model, x, y, batch_size=batch_size, targeted=targeted)


# ---------------------------------------------------------------- the safety net

class AdversarialDetector(nn.Module):
    """A small CNN that answers "is this image adversarial?".

    ``(N, 1, 28, 28)`` images in [0, 1] -> ``(N,)`` logits ``d(x)``;
    ``sigmoid(d(x))`` is the detector's probability that ``x`` is adversarial.
    """

    def __init__(self, channels: int = 1, width: int = 16):
        super().__init__()
        self.normalize = Normalize([MNIST_MEAN] * channels, [MNIST_STD] * channels)
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(2 * width * 16, 64), nn.ReLU(),
            nn.Linear(64, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize(x))).squeeze(1)


def train_detector(
    classifier: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    attack: str | AttackFn = "pgd",
    eps: float = 0.3,
    alpha: float | None = None,
    steps: int = 10,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    detector: nn.Module | None = None,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, list[float]]]:
    r"""Train a detector on a balanced set: ``x`` (label 0, clean) and attacked ``x`` (label 1).

    The adversarial half is crafted once on ``classifier`` with ``attack``
    (see :func:`make_adversarial`); the detector ``d`` minimises the binary
    cross-entropy

    .. math:: \mathcal{L} = -\tfrac{1}{2N}\textstyle\sum_i \big[\log(1 - \sigma(d(x_i)))
              + \log \sigma(d(x^{adv}_i))\big]

    with Adam (``lr``). The classifier is not changed.

    x: ``(N, 1, 28, 28)`` in [0, 1]; y: ``(N,)`` true labels.
    Returns ``(detector, history)`` with the detector in eval mode and
    ``history = {"loss", "accuracy"}`` per epoch (on the training set) and
    ``"attack_success_rate"`` (how often the crafted examples fool the classifier).
    """
    _check_model(classifier, "classifier")
    spec = AttackSpec(attack, eps, alpha, steps, seed)
    epochs = check_int(epochs, "epochs", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_nonnegative(lr, "lr")
    _check_pair(x, y)
    x_adv = spec.craft(classifier, x, y)
    success = attacks.attack_success_rate(classifier, x_adv, y)

    generator = torch.Generator().manual_seed(seed)
    if detector is None:
        torch.manual_seed(seed)
        detector = AdversarialDetector(channels=x.shape[1])
    _check_model(detector, "detector")
    device = model_device(detector)
    inputs = torch.cat([x.detach(), x_adv])                                 # (2N, C, H, W)
    is_adversarial = torch.cat([torch.zeros(len(x)), torch.ones(len(x))])  # (2N,)
    optimizer = torch.optim.Adam(detector.parameters(), lr=lr)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "attack_success_rate": [success]}
    for _ in tqdm(range(epochs), desc="training the detector", disable=not progress, leave=False):
        detector.train()
        order = torch.randperm(len(inputs), generator=generator)
        total_loss, correct = 0.0, 0
        for start in range(0, len(inputs), batch_size):
            idx = order[start:start + batch_size]
            xb, tb = inputs[idx].to(device), is_adversarial[idx].to(device)
            logits = detector(xb)
            loss = F.binary_cross_entropy_with_logits(logits, tb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int(((logits > 0).float() == tb).sum())
        history["loss"].append(total_loss / len(inputs))
        history["accuracy"].append(correct / len(inputs))
    optimizer.zero_grad(set_to_none=True)  # leave no .grad behind on the detector
    detector.eval()
    return detector, history


@torch.no_grad()
def _detector_says_adversarial(detector: nn.Module, x: torch.Tensor, threshold: float,
                               batch_size: int = 1000) -> torch.Tensor:
    """Boolean ``(N,)``: ``sigmoid(d(x)) > threshold``."""
    with attacks.evaluating(detector), torch.no_grad():
        device = model_device(detector)
        probs = torch.cat([torch.sigmoid(detector(x[i:i + batch_size].to(device))).cpu()
                           for i in range(0, len(x), batch_size)])
    if probs.dim() != 1:
        raise CourseKitError(
            f"The detector must return one logit per image, shape (N,), got {tuple(probs.shape)}."
        )
    return probs > threshold


def detection_rate(detector: nn.Module, x: torch.Tensor, threshold: float = 0.5) -> float:
    """Fraction of ``x`` (``(N, C, H, W)`` in [0, 1]) that the detector flags as adversarial."""
    _check_model(detector, "detector")
    check_images(x)
    if len(x) == 0:
        raise CourseKitError("x is empty: give at least one image.")
    return float(_detector_says_adversarial(detector, x, threshold).float().mean())


def detector_accuracy(detector: nn.Module, x_clean: torch.Tensor, x_adv: torch.Tensor,
                      threshold: float = 0.5) -> dict[str, float]:
    r"""How well the detector separates clean from adversarial images.

    With "adversarial" the positive class and ``flag(x) = sigmoid(d(x)) > threshold``:

    - ``true_positive_rate``  = mean of flag over ``x_adv``   (attacks caught);
    - ``false_positive_rate`` = mean of flag over ``x_clean`` (clean images rejected);
    - ``accuracy`` = (caught attacks + accepted clean images) / (N_clean + N_adv).

    x_clean: ``(N, C, H, W)``, x_adv: ``(M, C, H, W)``, both in [0, 1].
    """
    _check_model(detector, "detector")
    check_images(x_clean, "x_clean")
    check_images(x_adv, "x_adv")
    if len(x_clean) == 0 or len(x_adv) == 0:
        raise CourseKitError("x_clean and x_adv must each hold at least one image.")
    if x_clean.shape[1:] != x_adv.shape[1:]:
        raise CourseKitError(f"x_clean and x_adv must hold images of the same size, got "
                             f"{tuple(x_clean.shape)} and {tuple(x_adv.shape)}.")
    threshold = check_nonnegative(threshold, "threshold")
    flagged_clean = _detector_says_adversarial(detector, x_clean, threshold).float()
    flagged_adv = _detector_says_adversarial(detector, x_adv, threshold).float()
    correct = (1 - flagged_clean).sum() + flagged_adv.sum()
    return {
        "accuracy": float(correct / (len(x_clean) + len(x_adv))),
        "true_positive_rate": float(flagged_adv.mean()),
        "false_positive_rate": float(flagged_clean.mean()),
    }


# ---------------------------------------------------------------- fooling both

def bypass_loss(classifier_logits: torch.Tensor, detector_logits: torch.Tensor, y: torch.Tensor,
                detector_weight: float = 1.0, targeted: bool = False, *, kappa: float = 2.0,
                kind: str = "margin") -> torch.Tensor:
    r"""The loss an attacker *minimises* to fool the classifier and the detector at once.

    ``kind="margin"`` (default; Carlini & Wagner's way of beating detectors), with
    ``Z = classifier_logits`` and ``d = detector_logits``:

    .. math:: \mathcal{L} = \tfrac1N \textstyle\sum_i \Big[\max\big(Z_{i,y_i} - \max_{k \ne y_i} Z_{i,k},
              \,-\kappa\big) + \lambda \max\big(d_i, -\kappa\big)\Big]

    The first term is below 0 once the classifier no longer says ``y_i``, the
    second once the detector says "clean" (``d_i < 0``); the floor ``-kappa``
    stops a term from pulling once its goal is met with margin ``kappa``, so the
    steps go to the goal not yet reached. Targeted (``y`` holds the targets):
    ``max(max_{k != t} Z_k - Z_t, -kappa)`` instead.

    ``kind="ce"``: the naive version, cross-entropy and binary cross-entropy,
    ``-CE(Z_i, y_i) + lambda * BCE(d_i, 0)`` (``+CE`` when targeted), with
    ``BCE(d, 0) = -log(1 - sigmoid(d)) = softplus(d)``. Neither term ever stops
    pulling, and the attack that uses it fools both models far less often.

    ``lambda = detector_weight``. classifier_logits: ``(N, K)``; detector_logits:
    ``(N,)``; y: ``(N,)``. Returns a scalar (the mean over the batch).
    """
    if classifier_logits.dim() != 2:
        raise CourseKitError(f"classifier_logits must have shape (N, K), got "
                             f"{tuple(classifier_logits.shape)}.")
    n = classifier_logits.shape[0]
    if detector_logits.shape != (n,):
        raise CourseKitError(f"detector_logits must have shape ({n},) (one logit per image), "
                             f"got {tuple(detector_logits.shape)}.")
    check_labels(y, n)
    detector_weight = check_nonnegative(detector_weight, "detector_weight")
    kappa = check_nonnegative(kappa, "kappa")
    if kind == "margin":
        own = classifier_logits.gather(1, y[:, None]).squeeze(1)                       # Z_y
        others = classifier_logits.scatter(1, y[:, None], float("-inf")).amax(1)       # max_{k != y} Z_k
        margin = others - own if targeted else own - others
        fool_classifier = margin.clamp(min=-kappa)
        look_clean = detector_logits.clamp(min=-kappa)
    elif kind == "ce":
        cross_entropy = F.cross_entropy(classifier_logits, y, reduction="none")
        fool_classifier = cross_entropy if targeted else -cross_entropy
        look_clean = F.softplus(detector_logits)                                       # BCE(d, 0)
    else:
        raise CourseKitError(f"Unknown kind {kind!r}: use 'margin' or 'ce'.")
    return (fool_classifier + detector_weight * look_clean).mean()


def adaptive_attack(classifier: nn.Module, detector: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    eps: float, alpha: float, steps: int, detector_weight: float = 1.0,
                    targeted: bool = False, seed: int | None = None, *,
                    random_start: bool = True, kappa: float = 2.0, kind: str = "margin",
                    progress: bool = False) -> torch.Tensor:
    r"""PGD on :func:`bypass_loss`: fool the classifier while the detector sees "clean".

    .. math:: x^{t+1} = \Pi_{B_\epsilon(x)}\Big(x^t - \alpha\,
              \mathrm{sign}\,\nabla_x \mathcal{L}_{bypass}\big(f(x^t), d(x^t), y\big)\Big)

    with ``Pi`` the projection onto the L-infinity ball and [0, 1]
    (:func:`coursekit.attacks.project_linf`); ``kappa`` and ``kind`` choose the
    loss (see :func:`bypass_loss`). ``x^0`` is ``x`` plus uniform noise
    in the ball (``random_start``, repeatable with ``seed``). Per example the
    attack returns the last iterate that fooled both models (classifier wrong
    or on target, detector below 0.5), else the final iterate.

    x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)`` (targets when ``targeted``);
    returns ``(N, C, H, W)`` in [0, 1].
    """
    _check_model(classifier, "classifier")
    _check_model(detector, "detector")
    eps = check_nonnegative(eps, "eps")
    alpha = check_nonnegative(alpha, "alpha")
    steps = check_int(steps, "steps", minimum=0)
    detector_weight = check_nonnegative(detector_weight, "detector_weight")
    _check_pair(x, y)
    y = y.to(x.device)
    x = x.detach()
    if eps == 0:
        return x.clone()
    generator = torch.Generator(device=x.device).manual_seed(seed) if seed is not None else None
    with attacks.evaluating(classifier), attacks.evaluating(detector):
        if random_start:
            noise = torch.empty_like(x).uniform_(-eps, eps, generator=generator)
            x_adv = (x + noise).clamp(0, 1)
        else:
            x_adv = x.clone()
        best = x_adv.clone()
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for step in tqdm(range(steps + 1), desc="adaptive attack", disable=not progress, leave=False):
            x_adv = x_adv.detach().requires_grad_(True)
            class_logits, detector_logits = classifier(x_adv), detector(x_adv)
            with torch.no_grad():                             # remember iterates that fool both
                prediction = class_logits.argmax(1)
                fooled = (prediction == y) if targeted else (prediction != y)
                both = fooled & (detector_logits < 0)
                best = torch.where(_per_example(both, x), x_adv, best)
                found |= both
            if step == steps:
                break
            loss = bypass_loss(class_logits, detector_logits, y, detector_weight, targeted,
                               kappa=kappa, kind=kind)
            grad, = torch.autograd.grad(loss, x_adv)          # the input's gradient only
            x_adv = attacks.project_linf(x_adv.detach() - alpha * grad.sign(), x, eps)
    return torch.where(_per_example(found, x), best, x_adv).detach()


def _per_example(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(N,)`` -> ``(N, 1, 1, 1)`` to broadcast over images."""
    return mask.view(-1, *[1] * (like.dim() - 1))


# ---------------------------------------------------------------- adversarial training

def adversarial_training(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    method: str = "pgd",
    eps: float = 0.3,
    alpha: float | None = None,
    steps: int = 7,
    epochs: int = 3,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    random_start: bool = True,
    eps_warmup_epochs: float = 0.0,
    progress: bool = True,
) -> dict[str, list[float]]:
    r"""Adversarial training: minimise the loss on the worst case in the eps-ball.

    .. math:: \min_\theta \; \mathbb{E}_{(x, y)} \Big[\max_{\|\delta\|_\infty \le \epsilon}
              \mathrm{CE}\big(f_\theta(x + \delta), y\big)\Big]

    The inner max is approximated on every batch, then the batch is replaced by
    its adversarial version (:func:`coursekit.training.train_classifier` with
    ``perturb=``):

    - ``method="pgd"``: PGD with ``steps`` steps of size ``alpha`` (default
      ``2.5 * eps / steps``) from a random start (Madry et al. 2018);
    - ``method="fgsm"``: one FGSM step of size ``alpha`` from a random start,
      default ``alpha = 1.25 * eps`` ("fast adversarial training", Wong et al.
      2020); with ``random_start=False`` and ``alpha=eps`` it is the original
      FGSM training of Goodfellow et al. 2015.

    ``eps_warmup_epochs`` ramps eps (and alpha) linearly from 0 over that many
    epochs, which helps large budgets such as 0.3 on MNIST get started.
    Trains ``model`` in place (Adam, ``lr`` decaying linearly to 0) and returns
    its history: ``"loss"`` and ``"train_accuracy"`` per epoch, both on the
    *adversarial* training batches, and ``"eps"``, the budget at each epoch's end.
    x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)``.
    """
    from coursekit.training import train_classifier

    _check_model(model)
    if not isinstance(method, str) or method.lower() not in ATTACKS:
        raise CourseKitError(f"Unknown method {method!r}: use 'pgd' or 'fgsm'.")
    method = method.lower()
    eps = check_nonnegative(eps, "eps")
    epochs = check_int(epochs, "epochs", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    eps_warmup_epochs = check_nonnegative(eps_warmup_epochs, "eps_warmup_epochs")
    if method == "pgd":
        steps = check_int(steps, "steps", minimum=1)
        alpha = _default_alpha(eps, steps) if alpha is None else check_nonnegative(alpha, "alpha")
    else:
        steps = 1
        default = 1.25 * eps if random_start else eps
        alpha = default if alpha is None else check_nonnegative(alpha, "alpha")
    _check_pair(x, y)

    batches_per_epoch = math.ceil(len(x) / batch_size)
    warmup_batches = eps_warmup_epochs * batches_per_epoch
    seeds = torch.Generator().manual_seed(seed)
    batch = {"index": 0}
    eps_at_epoch_end: list[float] = []

    def budget(index: int) -> float:
        return 1.0 if warmup_batches <= 0 else min(1.0, (index + 1) / warmup_batches)

    def perturb(net: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        scale = budget(batch["index"])
        batch["index"] += 1
        if batch["index"] % batches_per_epoch == 0:
            eps_at_epoch_end.append(eps * scale)
        if eps * scale == 0:
            return xb
        batch_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=seeds))
        return attacks.pgd(net, xb, yb, eps * scale, alpha * scale, steps,
                           random_start=random_start, seed=batch_seed)

    history = train_classifier(model, x, y, epochs=epochs, lr=lr, batch_size=batch_size,
                               seed=seed, perturb=perturb, progress=progress)
    history["eps"] = eps_at_epoch_end
    return history


# ---------------------------------------------------------------- robustness curves

def robustness_curve(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     eps_values: Sequence[float], attack: str | AttackFn = "fgsm", *,
                     alpha: float | None = None, steps: int = 10, seed: int | None = 0,
                     batch_size: int = 500, progress: bool = False) -> dict:
    r"""Accuracy under attack as a function of the budget: ``acc(eps) = mean[f(x_adv(eps)) == y]``.

    Each eps gets a fresh attack on ``model`` (white box; see :func:`make_adversarial`;
    for PGD ``alpha`` defaults to ``2.5 * eps / steps`` per eps). ``acc(0)`` is the
    clean accuracy. x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)``.
    Returns ``{"eps": [...], "accuracy": [...], "attack": name}``.
    """
    from coursekit.training import accuracy

    _check_model(model)
    spec = AttackSpec(attack, 0.0, alpha, steps, seed)
    eps_list = _check_eps_values(eps_values)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    _check_pair(x, y)
    result: dict = {"eps": eps_list, "accuracy": [], "attack": spec.name}
    for eps in tqdm(eps_list, desc="robustness curve", disable=not progress, leave=False):
        x_adv = x if eps == 0 else spec.with_eps(eps).craft(model, x, y, batch_size=batch_size)
        result["accuracy"].append(accuracy(model, x_adv, y))
    return result


def _check_eps_values(eps_values: Sequence[float]) -> list[float]:
    if isinstance(eps_values, (int, float)) or not hasattr(eps_values, "__iter__"):
        raise CourseKitError(f"eps_values must be a list of budgets, e.g. [0, 0.1, 0.2], got {eps_values!r}.")
    values = [check_nonnegative(e, "each eps") for e in eps_values]
    if not values:
        raise CourseKitError("eps_values is empty: give at least one budget.")
    return values


def robustness_curves(models: Mapping[str, nn.Module], x: torch.Tensor, y: torch.Tensor,
                      eps_values: Sequence[float], attack: str | AttackFn = "fgsm",
                      **kwargs) -> dict:
    """:func:`robustness_curve` for several named models (each attacked white box).

    Returns ``{"eps": [...], "accuracy": {name: [...]}, "attack": name}``.
    """
    if not isinstance(models, Mapping) or not models:
        raise CourseKitError("models must be a non-empty dict {name: model}.")
    curves = {name: robustness_curve(_check_model(m, f"models[{name!r}]"), x, y, eps_values,
                                     attack, **kwargs) for name, m in models.items()}
    first = next(iter(curves.values()))
    return {"eps": first["eps"], "attack": first["attack"],
            "accuracy": {name: c["accuracy"] for name, c in curves.items()}}


def plot_robustness_curves(result: dict, *, title: str | None = None):
    """Accuracy vs eps, one curve per model (from :func:`robustness_curve(s)`)."""
    from coursekit.plotting import plot_curves

    curves = result["accuracy"]
    if not isinstance(curves, Mapping):
        curves = {"model": curves}
    return plot_curves(result["eps"], curves, xlabel="epsilon (L-infinity budget)",
                       ylabel="accuracy under attack", ylim=(0, 1.02),
                       title=title or f"robustness to {result['attack'].upper()}")
