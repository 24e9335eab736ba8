"""Virtual batch normalisation (Salimans et al. 2016, "Improved techniques for training GANs").

Batch norm makes the output for one example depend on the other examples in its
minibatch, which shows up as correlated samples within a batch. Virtual batch
norm instead normalises each example ``x`` with the statistics of a *fixed
reference batch* ``R`` (chosen once, at the start of training) together with
``x`` itself::

    mu(x)   = a * mean(x) + (1 - a) * mean(R)            a = 1 / (N_ref + 1)
    m2(x)   = a * mean(x^2) + (1 - a) * mean(R^2)
    var(x)  = m2(x) - mu(x)^2
    VBN(x)  = gamma * (x - mu(x)) / sqrt(var(x) + eps) + beta

per channel; means run over the batch (for R) and over the spatial positions
(for ``(N, C, H, W)``). The reference batch itself is normalised with its own
statistics only. Inside a network the reference batch is propagated through the
layers at every forward pass (twice the cost of a forward pass), so its
statistics follow the current weights: see ``DCGANGenerator(use_vbn=True)``.
"""
from __future__ import annotations

import torch
from torch import nn

from coursekit.checks import CourseKitError


class VirtualBatchNorm(nn.Module):
    """Virtual batch norm over ``(N, C)`` or ``(N, C, H, W)`` inputs, ``num_features = C``.

    Call :meth:`set_reference` with the reference batch (its activations at this
    layer) before calling the layer on other batches.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise CourseKitError(f"num_features must be a positive integer, got {num_features!r}.")
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))   # gamma
        self.bias = nn.Parameter(torch.zeros(num_features))    # beta
        self.reference_mean: torch.Tensor | None = None
        self.reference_mean_sq: torch.Tensor | None = None
        self.reference_size: int = 0

    def _check(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 4) or x.shape[1] != self.num_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise CourseKitError(
                f"{name} must have shape (N, {self.num_features}) or (N, {self.num_features}, H, W), "
                f"got {shape}."
            )

    def _per_channel(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with the channel axis last, everything else flattened: ``(..., C)``."""
        return x if x.dim() == 2 else x.permute(0, 2, 3, 1)

    def _normalize(self, x: torch.Tensor, mean: torch.Tensor, mean_sq: torch.Tensor) -> torch.Tensor:
        """``gamma * (x - mean) / sqrt(mean_sq - mean^2 + eps) + beta``; stats broadcast over x."""
        shape = (-1, self.num_features) if x.dim() == 2 else (-1, self.num_features, 1, 1)
        mean, mean_sq = mean.reshape(shape), mean_sq.reshape(shape)
        var = (mean_sq - mean ** 2).clamp_min(0.0)
        x_hat = (x - mean) / torch.sqrt(var + self.eps)
        return x_hat * self.weight.reshape(shape[1:]) + self.bias.reshape(shape[1:])

    def set_reference(self, reference: torch.Tensor) -> torch.Tensor:
        """Store the statistics of the reference batch ``(N_ref, C[, H, W])``.

        Returns the reference batch normalised with its own statistics (what the
        next layer receives for it). Gradients flow through the stored statistics.
        """
        self._check(reference, "reference")
        if reference.shape[0] < 1:
            raise CourseKitError("The reference batch is empty.")
        values = self._per_channel(reference).reshape(-1, self.num_features)
        self.reference_mean = values.mean(0)
        self.reference_mean_sq = (values ** 2).mean(0)
        self.reference_size = reference.shape[0]
        return self._normalize(reference, self.reference_mean, self.reference_mean_sq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reference_mean is None:
            raise CourseKitError(
                "VirtualBatchNorm has no reference batch yet: call layer.set_reference(x_ref) "
                "first (a fixed batch chosen once, at the start of training)."
            )
        self._check(x, "x")
        a = 1.0 / (self.reference_size + 1)
        # Per-example statistics: over the spatial positions of that example only.
        if x.dim() == 2:
            example_mean, example_mean_sq = x, x ** 2
        else:
            example_mean, example_mean_sq = x.mean((2, 3)), (x ** 2).mean((2, 3))
        mean = a * example_mean + (1 - a) * self.reference_mean
        mean_sq = a * example_mean_sq + (1 - a) * self.reference_mean_sq
        return self._normalize(x, mean, mean_sq)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, reference_size={self.reference_size}"
