"""Harnesses: how an answer that acts on state is run on a probe.

A harness is ``harness(answer, *probe_args) -> output``: it builds fresh state from the probe's
arguments (models, optimisers, batches), runs the answer, and returns what the answer changed as
plain data (one tensor), so that it can be compared with what the reference changes. It raises
:class:`~coursekit.exercises.runner.AnswerFormError` for a result of the wrong form. Harnesses run in
the student's kernel when grading, so they are public and know no expected value; they are named
in an exercise's declaration (``harness=harnesses.two_training_steps``).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from coursekit.exercises.runner import AnswerFormError


# ---- 05 exercise 1: one GAN training step with k discriminator updates

CALLS = 2     # consecutive training steps per probe: what one step leaves behind (gradients) must not leak


@lru_cache(maxsize=None)
def ring() -> torch.Tensor:
    from coursekit import data

    return data.toy_2d("ring", 2000, seed=0)


def toy_models(seed: int):
    from coursekit import gan

    torch.manual_seed(seed)
    return gan.MLPGenerator(z_dim=4, hidden=32), gan.MLPDiscriminator(hidden=32)


def _optimisers(G, D, kind: str):
    if kind == "adam":
        return torch.optim.Adam(G.parameters(), lr=1e-3), torch.optim.Adam(D.parameters(), lr=2e-3)
    return torch.optim.SGD(G.parameters(), lr=0.05), torch.optim.SGD(D.parameters(), lr=0.1)


def ring_batches(seed: int, k: int, batch: int = 32, calls: int = 1):
    """``calls`` sets of (k real batches, k + 1 noise batches), drawn from ``seed``; one set if calls == 1."""
    g = torch.Generator().manual_seed(1000 + seed)
    points = ring()
    sets = []
    for _ in range(calls):
        reals = [points[torch.randint(0, len(points), (batch,), generator=g)] for _ in range(k)]
        noise = [torch.randn(batch, 4, generator=g) for _ in range(k + 1)]
        sets.append((reals, noise))
    return sets[0] if calls == 1 else sets


def flat(module) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in module.parameters()])


def check_losses(out, name: str = "gan_training_step") -> tuple[float, float]:
    if not isinstance(out, dict) or not {"d_loss", "g_loss"} <= set(out):
        raise AnswerFormError(f"{name} must return a dict with the keys 'd_loss' and 'g_loss'.")
    for key in ("d_loss", "g_loss"):
        if not isinstance(out[key], float):
            raise AnswerFormError(f"{name} must return the losses as Python floats (loss.item()), "
                                  f"not {type(out[key]).__name__}.")
    return float.__float__(out["d_loss"]), float.__float__(out["g_loss"])


def two_training_steps(answer, seed: int, k: int, kind: str) -> torch.Tensor:
    """Fresh toy G and D from ``seed``, two consecutive calls of the answer (as in a training loop);
    everything they changed, as one tensor: [the losses of each call, backward passes into G per
    parameter and call, G's weights, D's weights, optimiser steps]."""
    G, D = toy_models(seed)
    opt_g, opt_d = _optimisers(G, D, kind)
    calls, losses = [], []
    hooks = [p.register_hook(lambda grad: calls.append(1)) for p in G.parameters()]
    try:
        for reals, noise in ring_batches(seed, k, calls=CALLS):
            losses.extend(check_losses(answer(G, D, opt_g, opt_d, reals, noise)))
    finally:
        for hook in hooks:
            hook.remove()
    steps = [float(opt.state[next(iter(m.parameters()))].get("step", 0)) / CALLS if kind == "adam" else 0.0
             for opt, m in ((opt_d, D), (opt_g, G))]
    passes = len(calls) / (len(list(G.parameters())) * CALLS)
    return torch.cat([torch.tensor([*losses, passes], dtype=torch.float64),
                      flat(G), flat(D), torch.tensor(steps, dtype=torch.float64)])


def one_training_step(answer, noise_seed: int, global_seed: int, k: int = 2) -> torch.Tensor:
    """One call of the answer on fixed toy models and real batches; only the noise batches change with
    ``noise_seed`` (and, for answers that draw noise themselves, torch's global seed ``global_seed``).
    Returns [d_loss, g_loss, how far D's weights moved, how far G's moved, G's weights, D's weights]."""
    G, D = toy_models(0)
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    reals, _ = ring_batches(0, k, batch=128)
    g = torch.Generator().manual_seed(noise_seed)
    noise = [torch.randn(128, 4, generator=g) for _ in range(k + 1)]
    g_before, d_before = flat(G), flat(D)
    torch.manual_seed(global_seed)
    d_loss, g_loss = check_losses(answer(G, D, opt_g, opt_d, reals, noise))
    moved = [float((flat(D) - d_before).norm()), float((flat(G) - g_before).norm())]
    return torch.cat([torch.tensor([d_loss, g_loss, *moved], dtype=torch.float64), flat(G), flat(D)])
