"""The GAN game in closed form, for densities known on a grid (Goodfellow et al. 2014, section 4).

For a fixed generator with density ``p_g`` the best discriminator is

    D*(x) = p_data(x) / (p_data(x) + p_g(x)),

and the value of the game at D* is what the generator then minimises::

    C(G) = V(D*, G) = integral of  p_data log D* + p_g log(1 - D*)  dx  =  -log 4 + 2 JSD(p_data || p_g),

with the convention 0 log 0 = 0 (where a density is 0 its term is 0). C(G) reaches its minimum
-log 4 exactly when p_g = p_data (then D* = 1/2 everywhere), and 0 when the supports are disjoint.
Densities are tensors of values at the points of a regular grid with spacing ``dx`` (the integral
is a Riemann sum); for probability vectors use ``dx = 1``.
"""
from __future__ import annotations

import math

import torch

from coursekit.checks import CourseKitError, check_positive_float


def _densities(p_data: torch.Tensor, p_g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, p in (("p_data", p_data), ("p_g", p_g)):
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise CourseKitError(f"{name} must be a float tensor of density values, got {type(p).__name__}.")
        if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
            raise CourseKitError(f"{name} must hold finite values >= 0 (densities).")
    if p_data.shape != p_g.shape:
        raise CourseKitError(f"p_data and p_g must be values at the same points: shapes "
                             f"{tuple(p_data.shape)} and {tuple(p_g.shape)} differ.")
    return p_data.double(), p_g.double()


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data / (p_data + p_g), elementwise (1/2 where both densities are 0); same shape, in [0, 1]."""
    p, q = _densities(p_data, p_g)
    total = p + q
    d_star = torch.where(total > 0, p / total.clamp_min(torch.finfo(total.dtype).tiny), torch.full_like(p, 0.5))
    return d_star.to(p_data.dtype)


def value_at_optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor, dx: float = 1.0) -> float:
    """C(G) = sum over the grid of [p_data log D* + p_g log(1 - D*)] * dx, with 0 log 0 = 0 (a float)."""
    dx = check_positive_float(dx, "dx")
    p, q = _densities(p_data, p_g)
    total = p + q
    # p log D* = p log p - p log(p + q): no 1 - D* that rounds to 0 where p_g is tiny next to p_data
    terms = torch.xlogy(p, p) - torch.xlogy(p, total) + torch.xlogy(q, q) - torch.xlogy(q, total)
    return float((terms * dx).sum())


def jensen_shannon_divergence(p: torch.Tensor, q: torch.Tensor, dx: float = 1.0) -> float:
    """JSD(p || q) = (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2, in nats (between 0 and log 2
    for normalised densities); equals (C(G) + log 4) / 2."""
    dx = check_positive_float(dx, "dx")
    p, q = _densities(p, q)
    m = (p + q) / 2
    ratio = lambda a: torch.where(a > 0, a / m.clamp_min(torch.finfo(m.dtype).tiny), torch.ones_like(a))  # noqa: E731
    return float(((torch.xlogy(p, ratio(p)) + torch.xlogy(q, ratio(q))) * dx).sum() / 2)


MINIMUM_VALUE = -math.log(4.0)   # C(G) when p_g = p_data
