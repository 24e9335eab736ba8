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


# ---- 06: one pix2pix training step (a discriminator update, then a generator update)

def pix2pix_models(seed: int):
    """A tiny U-Net generator and a conditional patch discriminator, initialised from ``seed``."""
    from coursekit.applications import translation

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return translation.UNetGenerator(2), translation.PatchDiscriminator(2)


@lru_cache(maxsize=None)
def pix2pix_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (outline, digit) of 16 shipped test digits: the "edges -> digit" task of lecture 06."""
    from coursekit.applications import translation
    from coursekit.exercises import probes

    digits = probes.digits(16)[0]
    return translation.translate_domain(digits, "edges"), digits


def two_pix2pix_steps(answer, seed: int, l1_weight: float) -> torch.Tensor:
    """Fresh models from ``seed`` (SGD, lr 0.1 for both), two consecutive calls of the answer on two batches
    of 4 pairs; everything they changed, as one tensor: [the losses of each call, backward passes into G
    per parameter and call, G's weights, D's weights]."""
    G, D = pix2pix_models(seed)
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    source, target = pix2pix_pairs()
    order = torch.randperm(len(source), generator=torch.Generator().manual_seed(2000 + seed))
    calls, losses = [], []
    hooks = [p.register_hook(lambda grad: calls.append(1)) for p in G.parameters()]
    try:
        for i in range(CALLS):
            batch = order[4 * i:4 * i + 4]
            losses.extend(check_losses(answer(G, D, opt_g, opt_d, source[batch], target[batch], l1_weight),
                                       "my_pix2pix_step"))
    finally:
        for hook in hooks:
            hook.remove()
    passes = len(calls) / (len(list(G.parameters())) * CALLS)
    return torch.cat([torch.tensor([*losses, passes], dtype=torch.float64), flat(G), flat(D)])


# ---- 07: from human-annotation CSV files to each annotator's accuracy and interval

def annotation_files(answer, files: list, z: float) -> dict:
    """Write the CSV texts ``files`` into a fresh folder (``0.csv``, ``1.csv``, ...), call the answer with
    their paths and ``z``; its result as ``{annotator: (accuracy, low, high)}`` of floats."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="annotations_") as folder:
        paths = []
        for i, text in enumerate(files):
            path = Path(folder) / f"{i}.csv"
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        out = answer(paths, z)
    if not isinstance(out, dict):
        raise AnswerFormError(f"my_accuracy_per_annotator must return a dict {{annotator: (accuracy, low, high)}}, "
                              f"not {type(out).__name__}.")
    result = {}
    for name, value in dict.items(out):          # the base methods: a returned object cannot steer its conversion
        if not isinstance(name, str):
            raise AnswerFormError("The keys of the dict must be the annotators' names (strings, as in the CSV).")
        if not isinstance(value, (tuple, list)) or len(value) != 3:
            raise AnswerFormError("Each annotator's value must be a tuple (accuracy, low, high).")
        result[str.__str__(name)] = tuple(_number(v) for v in (tuple.__iter__(value) if isinstance(value, tuple)
                                                                 else list.__iter__(value)))
    return result


def _number(value) -> float:
    from coursekit.exercises.runner import base_tensor

    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(int.__int__(value))
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(base_tensor(value).double().reshape(()).tolist())
    raise AnswerFormError("accuracy, low and high must be numbers (Python floats).")
