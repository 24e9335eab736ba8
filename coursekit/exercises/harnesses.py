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


# ---- 01: the fooling loop returns (images, steps); 02: robust logistic regression returns (w, b)

def fooling_pair(answer, *args) -> torch.Tensor:
    """``fooling_loop``'s ``(x, steps)`` as one tensor: the images, flattened, then the step count."""
    out = answer(*args)
    if not (type(out) is tuple and len(out) == 2):
        raise AnswerFormError("fooling_loop must return a pair (x, steps).")
    x, steps = out
    if not isinstance(x, torch.Tensor):
        raise AnswerFormError(f"fooling_loop must return the images as a torch.Tensor, not {type(x).__name__}.")
    if type(steps) is not int:
        raise AnswerFormError("fooling_loop must return the number of steps taken as a Python int.")
    return torch.cat([x.flatten(), torch.tensor([float(int.__int__(steps))], dtype=x.dtype)])


def weights_and_bias(answer, *args) -> torch.Tensor:
    """``train_robust_logistic``'s ``(w, b)`` as one tensor ``[w..., b]``."""
    out = answer(*args)
    if not (type(out) is tuple and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise AnswerFormError("train_robust_logistic must return a pair of tensors (w, b).")
    w, b = out
    if w.dim() != 1 or b.numel() != 1:
        raise AnswerFormError("train_robust_logistic must return w of shape (n,) and b with a single value.")
    return torch.cat([w.double().flatten(), b.double().reshape(1)])


# ---- 03: one epoch of adversarial training (acts on a model and its optimiser)

class TinyCNN(torch.nn.Module):
    """A small probe network for the adversarial-training epoch (fast on the grading path)."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.net = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                                 nn.Linear(4 * 7 * 7, 10))

    def forward(self, x):
        return self.net(x)


def fresh_tiny_cnn(seed: int, optimiser: str):
    """A seeded :class:`TinyCNN` and its optimiser (``"sgd"``: lr 0.05; ``"adam"``: lr 1e-3)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyCNN()
    opt = (torch.optim.SGD(model.parameters(), lr=0.05) if optimiser == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-3))
    return model, opt


def adversarial_epoch(answer, model_seed: int, optimiser: str, x, y, eps, alpha, steps, batch_size,
                      generator) -> torch.Tensor:
    """A fresh model and optimiser from ``model_seed``, one call of the answer; returns the model's
    weights after the epoch and the loss the answer returned: ``[weights..., loss]``."""
    model, opt = fresh_tiny_cnn(model_seed, optimiser)
    loss = answer(model, opt, x, y, eps, alpha, steps, batch_size, generator)
    if isinstance(loss, torch.Tensor):
        raise AnswerFormError("adversarial_training_epoch must return the mean loss as a Python float (loss.item()), "
                              "not a tensor.")
    if not isinstance(loss, float):                       # numpy's float64 is a float too
        raise AnswerFormError("adversarial_training_epoch must return the mean of the batch losses as a Python float.")
    return torch.cat([flat(model), torch.tensor([float.__float__(loss)], dtype=torch.float64)])


# ---- 04 exercise 4: the generator and the discriminator for the 2-D ring

def _reinitialise(module: torch.nn.Module, g: torch.Generator) -> int:
    """Give every nn.Linear of ``module`` (in registration order) weights drawn from ``g``: two answers
    with the same layers then compute the same function, whatever order they created their layers in.
    Returns the number of linear layers."""
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise AnswerFormError("Build G and D from nn.Linear layers (and activations between them).")
    with torch.no_grad():
        for layer in linears:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * (2.0 / layer.in_features) ** 0.5)
            if layer.bias is not None:
                layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=g))
    return len(linears)


def _pair(built, name: str = "ring_networks"):
    if not (isinstance(built, (tuple, list)) and len(built) == 2
            and all(isinstance(m, torch.nn.Module) for m in built)):
        raise AnswerFormError(f"{name} must return a pair (G, D) of torch.nn.Module objects.")
    return built


def ring_networks_signature(answer, z_dim: int, hidden: int, seed: int) -> torch.Tensor:
    """Build the answer's (G, D), give their linear layers weights drawn from ``seed``, and return what
    they compute as one tensor: [fresh modules per call, gradient reaches every G parameter through D,
    linear layers in G, in D, G on noise (64, 2), G on noise x 10 (an output head that squashes shows),
    D on points (64,)]."""
    G, D = _pair(answer(z_dim, hidden))
    again = _pair(answer(z_dim, hidden))
    fresh = float(again[0] is not G and again[1] is not D)
    if getattr(G, "z_dim", None) != z_dim:
        raise AnswerFormError("G needs the length of its noise as its attribute z_dim (a trainer reads G.z_dim to "
                              "draw noise).")
    g = torch.Generator().manual_seed(seed)
    layers = [_reinitialise(G, g), _reinitialise(D, g)]
    z = torch.randn(64, z_dim, generator=g)
    x = 2.5 * torch.randn(64, 2, generator=g)
    points = G(z)
    if not isinstance(points, torch.Tensor) or tuple(points.shape) != (64, 2):
        raise AnswerFormError("G must map noise (N, z_dim) to points (N, 2).")
    logits = D(x)
    if isinstance(logits, torch.Tensor) and tuple(logits.shape) == (64, 1):
        raise AnswerFormError("D must return one logit per example as shape (N,), not (N, 1): squeeze the last "
                              "dimension (the losses compare it with one target per example).")
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (64,):
        raise AnswerFormError("D must map points (N, 2) to one logit per example, shape (N,).")
    G.zero_grad()
    D(G(z)).mean().backward()
    reaches = float(all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in G.parameters()))
    with torch.no_grad():
        far = G(10 * z)
    head = torch.tensor([fresh, reaches, *layers], dtype=torch.float64)
    return torch.cat([head, points.detach().double().flatten(), far.double().flatten(),
                      logits.detach().double().flatten()])


# ---- 05 exercise 4: the training loop

def loop_models(model_seed: int):
    """The toy G and D of the loop exercise, initialised from ``model_seed`` without touching torch's global
    random state (so that an answer drawing from the global generator shows it under two global seeds)."""
    with torch.random.fork_rng(devices=[]):
        return toy_models(model_seed)


def training_loop(answer, model_seed: int, seed: int, steps: int, k: int, batch_size: int, lr: float) -> torch.Tensor:
    """Fresh toy G and D from ``model_seed``; the answer trains them on the ring for ``steps`` steps with
    ``seed``. Returns [the d_loss and g_loss histories, backward passes into G and into D per parameter and
    step, G's weights, D's weights, the energy distance of 500 samples to held-out ring data]."""
    from coursekit.metrics.samples import energy_distance

    G, D = loop_models(model_seed)
    passes = {"G": 0, "D": 0}
    hooks = [p.register_hook(lambda grad, who=who: passes.__setitem__(who, passes[who] + 1))
             for who, model in (("G", G), ("D", D)) for p in model.parameters()]
    try:
        history = answer(G, D, ring(), steps, k=k, batch_size=batch_size, lr=lr, seed=seed)
    finally:
        for hook in hooks:
            hook.remove()
    if not isinstance(history, dict) or not {"d_loss", "g_loss"} <= set(history):
        raise AnswerFormError("train_gan must return the history: a dict with the lists 'd_loss' and 'g_loss'.")
    for key in ("d_loss", "g_loss"):
        values = history[key]
        if not isinstance(values, list) or len(values) != steps or not all(isinstance(v, float) for v in values):
            raise AnswerFormError(f"history['{key}'] must be a list of Python floats (loss.item()), one per step.")
    per_step = [passes[who] / (len(list(model.parameters())) * steps) for who, model in (("G", G), ("D", D))]
    with torch.no_grad():
        samples = G(torch.randn(500, G.z_dim, generator=torch.Generator().manual_seed(5)))
    return torch.cat([torch.tensor(history["d_loss"] + history["g_loss"] + per_step, dtype=torch.float64),
                      flat(G), flat(D), torch.tensor([energy_distance(samples, held_out_ring())], dtype=torch.float64)])


@lru_cache(maxsize=None)
def held_out_ring() -> torch.Tensor:
    from coursekit import data

    return data.toy_2d("ring", 500, seed=1)


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
