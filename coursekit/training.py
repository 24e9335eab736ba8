"""Plain supervised training and evaluation, used by the zoo's build command."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from coursekit.checks import check_images, check_labels
from coursekit.runtime import evaluating, model_device


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator and return a dedicated generator for shuffling."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes ``(N,)`` for images ``(N, C, H, W)`` in [0, 1]."""
    check_images(x)
    device = model_device(model)
    with evaluating(model):
        return torch.cat([model(x[i:i + batch_size].to(device)).argmax(1).cpu()
                          for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    check_labels(y, len(x))
    return float((predict(model, x, batch_size) == y).float().mean())


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 3,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    perturb: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train with Adam and cross-entropy; the learning rate decays linearly to 0.

    ``perturb(model, xb, yb)`` (optional) replaces each batch before the step,
    e.g. by adversarial examples for adversarial training.
    Returns a history dict: ``{"loss": [...], "train_accuracy": [...]}`` per epoch.
    """
    check_images(x)
    check_labels(y, len(x))
    generator = seed_everything(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)
    loss_fn = nn.CrossEntropyLoss()
    history: dict[str, list[float]] = {"loss": [], "train_accuracy": []}
    device = model_device(model)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total_loss, correct = 0.0, 0
        bar = tqdm(range(0, len(x), batch_size), desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False)
        for start in bar:
            idx = order[start:start + batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            if perturb is not None:
                xb = perturb(model, xb, yb)
            model.train()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        history["loss"].append(total_loss / len(x))
        history["train_accuracy"].append(correct / len(x))
    model.eval()
    return history
