"""Transferability: adversarial examples crafted on one model, tested on another.

The attacker has model A (the *source*, white box) but wants to fool model B
(the *target*, a black box). :func:`transfer_matrix` crafts adversarial examples
on every source and measures how often they fool every target (Papernot et al.
2016; Tramèr et al. 2017). The diagonal is the white-box attack; the rest is the
black-box attack "for free".
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from coursekit.checks import CourseKitError, check_images, check_int, check_labels
from coursekit.defenses import AttackSpec
from coursekit.training import predict

__all__ = ["transfer_matrix", "plot_transfer_matrix"]


def _check_models(models: Mapping[str, nn.Module], name: str) -> dict[str, nn.Module]:
    if not isinstance(models, Mapping) or not models:
        raise CourseKitError(f"{name} must be a non-empty dict {{name: model}}, got {type(models).__name__}.")
    for key, model in models.items():
        if not isinstance(model, nn.Module):
            raise CourseKitError(f"{name}[{key!r}] must be a torch.nn.Module, got {type(model).__name__}.")
    return dict(models)


def transfer_matrix(
    source_models: Mapping[str, nn.Module],
    target_models: Mapping[str, nn.Module] | None,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: str | Callable = "fgsm",
    eps: float = 0.2,
    *,
    alpha: float | None = None,
    steps: int = 10,
    seed: int | None = 0,
    batch_size: int = 500,
    progress: bool = False,
) -> dict:
    r"""How often adversarial examples crafted on each source fool each target.

    For source ``s`` with adversarial examples ``x_adv^s = attack(s, x, y)`` and
    target ``t``, over the examples ``t`` classifies correctly when clean
    (``C_t = {i : t(x_i) = y_i}``):

    .. math:: \mathrm{success}[s][t] = \frac{1}{|C_t|} \sum_{i \in C_t}
              \mathbb{1}\big[t(x^{s}_{adv,i}) \ne y_i\big]

    so a target's own mistakes never count as successes. ``target_models=None``
    uses the sources as targets (a square matrix whose diagonal is white box).
    ``attack``, ``eps``, ``alpha``, ``steps``, ``seed``: the attack and its budget
    (:class:`coursekit.defenses.AttackSpec`): ``"fgsm"``, ``"pgd"`` or ``attack(model, x, y) -> x_adv``.

    x: ``(N, C, H, W)`` in [0, 1]; y: ``(N,)``. Returns a dict with
    ``sources``, ``targets`` (names), ``success`` (``len(sources) x len(targets)``
    nested lists, ``nan`` when a target gets no example right), ``adversarial_accuracy``
    (same shape: the target's accuracy on the source's examples), ``accuracy``
    (each target's clean accuracy, aligned with ``targets``), ``attack``, ``eps``, ``n``.
    """
    sources = _check_models(source_models, "source_models")
    targets = sources if target_models is None else _check_models(target_models, "target_models")
    spec = AttackSpec(attack, eps, alpha, steps, seed)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_images(x)
    check_labels(y, len(x))
    if len(x) == 0:
        raise CourseKitError("x is empty: give at least one image.")
    y = y.cpu()

    clean_correct = {name: predict(model, x) == y for name, model in targets.items()}
    success, adversarial_accuracy = [], []
    for source_name, source in tqdm(sources.items(), desc="transfer matrix", disable=not progress,
                                    leave=False):
        x_adv = spec.craft(source, x, y.to(x.device), batch_size=batch_size)
        row, acc_row = [], []
        for target_name, target in targets.items():
            correct_adv = predict(target, x_adv) == y
            was_correct = clean_correct[target_name]
            n_correct = int(was_correct.sum())
            fooled = int((was_correct & ~correct_adv).sum())
            row.append(fooled / n_correct if n_correct else float("nan"))
            acc_row.append(float(correct_adv.float().mean()))
        success.append(row)
        adversarial_accuracy.append(acc_row)
    return {
        "sources": list(sources),
        "targets": list(targets),
        "success": success,
        "adversarial_accuracy": adversarial_accuracy,
        "accuracy": [float(c.float().mean()) for c in clean_correct.values()],
        "attack": spec.name,
        "eps": spec.eps,
        "n": len(x),
    }


def plot_transfer_matrix(result: dict, *, title: str | None = None):
    """Heat map of :func:`transfer_matrix`'s success rates: rows crafted on, columns tested on."""
    from coursekit.plotting import plot_matrix

    for key in ("sources", "targets", "success"):
        if key not in result:
            raise CourseKitError(f"result must come from transfer_matrix (missing {key!r}).")
    name = str(result.get("attack", "attack")).upper()
    eps = result.get("eps")
    return plot_matrix(
        result["success"], result["sources"], result["targets"],
        title=title or f"{name} transfer, eps = {eps}: fraction of correct predictions flipped",
        xlabel="target model (attacked, black box off the diagonal)",
        ylabel="source model (examples crafted on)",
    )
