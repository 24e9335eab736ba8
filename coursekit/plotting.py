"""Figures used across the lectures. Every function returns the matplotlib Figure."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch


def _plt():
    import matplotlib.pyplot as plt
    return plt


def _to_hwc(img: torch.Tensor):
    img = img.detach().cpu().float()
    if img.dim() == 3 and img.shape[0] in (1, 3):
        img = img.permute(1, 2, 0)
    if img.dim() == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    return img.numpy()


def show_images(images: torch.Tensor, titles: Sequence[str] | None = None, *, ncols: int = 8,
                title: str | None = None, size: float = 1.4, cmap: str = "gray", vmin: float = 0.0,
                vmax: float = 1.0):
    """A grid of images ``(N, C, H, W)`` in [0, 1] with optional per-image titles."""
    plt = _plt()
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(_to_hwc(images[i]), cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_attack(x: torch.Tensor, x_adv: torch.Tensor, clean_label: str, adv_label: str, *,
                title: str | None = None, amplify: float | None = None, delta_range: float | None = None):
    r"""Original, perturbation and adversarial image, side by side.

    ``x``, ``x_adv``: ``(C, H, W)`` in [0, 1]. The middle panel shows :math:`\delta = x_{adv} - x`:

    - ``delta_range=r`` (what an explorer uses): a FIXED scale, :math:`\delta \in [-r, r]`, the same
      at every ε (for one channel a diverging colour map with a colour bar, labelled once; for colour
      images :math:`0.5 + \delta / (2r)`), so a larger ε shows as a stronger perturbation;
    - otherwise the perturbation is rescaled to be visible: :math:`0.5 + a\,\delta` with ``amplify``
      :math:`a` (default :math:`0.5 / \max|\delta|`, named in the panel's title).
    """
    plt = _plt()
    delta = (x_adv - x).detach().cpu()
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
    cmap = "gray" if x.shape[0] == 1 else None
    axes[0].imshow(_to_hwc(x), cmap=cmap, vmin=0, vmax=1)
    axes[0].set_title(f"original: {clean_label}")
    largest = float(delta.abs().max())
    if delta_range is not None:
        if not delta_range > 0:
            from coursekit.checks import CourseKitError

            raise CourseKitError(f"delta_range must be > 0 (the largest |δ| the scale shows), got {delta_range!r}.")
        if x.shape[0] == 1:
            shown = axes[1].imshow(delta[0].numpy(), cmap="RdBu_r", vmin=-delta_range, vmax=delta_range)
            bar = fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04, ticks=[-delta_range, 0, delta_range])
            bar.ax.tick_params(labelsize=7)
        else:
            axes[1].imshow(_to_hwc((0.5 + delta / (2 * delta_range)).clamp(0, 1)), vmin=0, vmax=1)
        axes[1].set_title(f"perturbation δ\nmax |δ| = {largest:.3f}")
    else:
        scale = amplify or (0.5 / max(largest, 1e-12))
        axes[1].imshow(_to_hwc((0.5 + scale * delta).clamp(0, 1)), cmap=cmap, vmin=0, vmax=1)
        axes[1].set_title(f"perturbation (x{scale:.0f})\nmax |δ| = {largest:.3f}")
    axes[2].imshow(_to_hwc(x_adv), cmap=cmap, vmin=0, vmax=1)
    axes[2].set_title(f"adversarial: {adv_label}")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.92) if title else None)   # room for the suptitle above the panel titles
    return fig


def plot_curves(x: Sequence[float], curves: Mapping[str, Sequence[float]], *, xlabel: str,
                ylabel: str, title: str, marker: str = "o", ylim: tuple[float, float] | None = None,
                logy: bool = False):
    """Several named curves over the same x values (e.g. accuracy vs epsilon)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, y in curves.items():
        ax.plot(list(x), [float(v) for v in y], marker=marker, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    return fig


def plot_history(history: Mapping[str, Sequence[float]], keys: Sequence[str], *, xlabel: str = "step",
                 title: str = "training history", x_key: str | None = None):
    """Curves from a history dict (what every coursekit trainer and attack returns)."""
    xs = history[x_key] if x_key else range(len(history[keys[0]]))
    return plot_curves(list(xs), {k: history[k] for k in keys}, xlabel=xlabel, ylabel="value",
                       title=title, marker="")


def plot_probabilities(probs: torch.Tensor, class_names: Sequence[str] | None = None, *,
                       title: str = "model's probabilities", highlight: int | None = None, ax=None):
    """A bar chart of one example's class probabilities ``(K,)``."""
    plt = _plt()
    probs = probs.detach().cpu().float()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 2.6))
    else:
        fig = ax.figure
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(probs))]
    colors = ["tab:red" if i == highlight else "tab:blue" for i in range(len(probs))]
    ax.bar(range(len(probs)), probs.numpy(), color=colors)
    ax.set_xticks(range(len(probs)), names, rotation=0 if len(names) <= 10 else 90, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_matrix(matrix, row_labels: Sequence[str], col_labels: Sequence[str], *, title: str,
                xlabel: str, ylabel: str, fmt: str = "{:.0%}", cmap: str = "viridis"):
    """A labelled heat map (e.g. the transferability matrix)."""
    plt = _plt()
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * len(col_labels) + 2, 1.0 * len(row_labels) + 1.5))
    im = ax.imshow(m, cmap=cmap, vmin=0, vmax=max(1.0, float(m.max())))
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, fmt.format(m[i, j]), ha="center", va="center",
                    color="white" if m[i, j] < 0.6 * max(1.0, m.max()) else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
