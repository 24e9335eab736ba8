"""Registry entries for lecture 05 (GAN training tips): the k-step training step, one-sided label
smoothing, virtual batch norm.

Imported at the bottom of :mod:`coursekit.exercises`; see that module for how answers are judged.
The training step acts on state (two networks, two optimisers), so its entry has a ``wrap`` that
builds fresh toy models from each probe, runs the answer and returns what changed. An answer that
draws its own noise instead of using ``noise_batches`` cannot match output for output; it is graded
against bands of one-step statistics over 40 noise seeds (``scripts/calibrate_bands.py``).
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from coursekit.exercises import AnswerFormError, Exercise, Misconception, _call, register

ASSIGNMENT = "05_gan_training_tips"


# ---- 05 exercise 1: one training step with k discriminator updates

@lru_cache(maxsize=None)
def _ring() -> torch.Tensor:
    from coursekit import data

    return data.toy_2d("ring", 2000, seed=0)


def _toy_models(seed: int):
    from coursekit import gan

    torch.manual_seed(seed)
    return gan.MLPGenerator(z_dim=4, hidden=32), gan.MLPDiscriminator(hidden=32)


def _optimisers(G, D, kind: str):
    if kind == "adam":
        return torch.optim.Adam(G.parameters(), lr=1e-3), torch.optim.Adam(D.parameters(), lr=2e-3)
    return torch.optim.SGD(G.parameters(), lr=0.05), torch.optim.SGD(D.parameters(), lr=0.1)


def _batches(seed: int, k: int, batch: int = 32, calls: int = 1):
    """``calls`` sets of (k real batches, k + 1 noise batches), drawn from ``seed``; one set if calls == 1."""
    g = torch.Generator().manual_seed(1000 + seed)
    ring = _ring()
    sets = []
    for _ in range(calls):
        reals = [ring[torch.randint(0, len(ring), (batch,), generator=g)] for _ in range(k)]
        noise = [torch.randn(batch, 4, generator=g) for _ in range(k + 1)]
        sets.append((reals, noise))
    return sets[0] if calls == 1 else sets


def _flat(module) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in module.parameters()])


def _check_losses(out, name="gan_training_step") -> tuple[float, float]:
    if not isinstance(out, dict) or not {"d_loss", "g_loss"} <= set(out):
        raise AnswerFormError(f"{name} must return a dict with the keys 'd_loss' and 'g_loss'.")
    for key in ("d_loss", "g_loss"):
        if not isinstance(out[key], float):
            raise AnswerFormError(f"{name} must return the losses as Python floats (loss.item()), "
                                  f"not {type(out[key]).__name__}.")
    return out["d_loss"], out["g_loss"]


CALLS = 2     # consecutive training steps per probe: what one step leaves behind (gradients) must not leak


def _run_step(fn, seed: int, k: int, kind: str) -> torch.Tensor:
    """Fresh toy G and D from ``seed``, two consecutive calls of the answer (as in a training loop);
    everything they changed, as one tensor: [the losses of each call, backward passes into G per
    parameter and call, G's weights, D's weights, optimiser steps]."""
    G, D = _toy_models(seed)
    opt_g, opt_d = _optimisers(G, D, kind)
    calls, losses = [], []
    hooks = [p.register_hook(lambda grad: calls.append(1)) for p in G.parameters()]
    try:
        for reals, noise in _batches(seed, k, calls=CALLS):
            losses.extend(_check_losses(fn(G, D, opt_g, opt_d, reals, noise)))
    finally:
        for hook in hooks:
            hook.remove()
    steps = [float(opt.state[next(iter(m.parameters()))].get("step", 0)) / CALLS if kind == "adam" else 0.0
             for opt, m in ((opt_d, D), (opt_g, G))]
    passes = len(calls) / (len(list(G.parameters())) * CALLS)
    return torch.cat([torch.tensor([*losses, passes], dtype=torch.float64),
                      _flat(G), _flat(D), torch.tensor(steps, dtype=torch.float64)])


def _wrap_step(fn):
    def pure(seed, k, kind):
        return _run_step(fn, seed, k, kind)
    return pure


def _step_cases():
    return [(0, 1, "sgd"), (1, 3, "sgd"), (2, 2, "adam")]


def _step_ref(G, D, opt_g, opt_d, real_batches, noise_batches):
    from coursekit import gan

    d_losses = []
    for real, z in zip(real_batches, noise_batches[:-1]):
        fake = G(z).detach()                       # G is held fixed in D's steps
        d_loss = gan.discriminator_loss(D(real), D(fake))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        d_losses.append(d_loss.item())
    g_loss = gan.non_saturating_generator_loss(D(G(noise_batches[-1])))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return {"d_loss": sum(d_losses) / len(d_losses), "g_loss": g_loss.item()}


def _step_wrong(detach=True, generator_cost="non_saturating", zero_grad=True, noise="matching",
                report="mean", order="d_first", k_steps="all", detach_in_g=False, zero_grad_g=True):
    """The reference with one known mistake switched on."""
    def wrong(G, D, opt_g, opt_d, real_batches, noise_batches):
        def d_steps():
            losses = []
            batches = real_batches if k_steps == "all" else real_batches[:1]
            for i, real in enumerate(batches):
                z = {"same": noise_batches[0], "shifted": noise_batches[i + 1]}.get(noise, noise_batches[i])
                fake = G(z).detach() if detach else G(z)
                real_logits, fake_logits = D(real), D(fake)
                loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
                if zero_grad:
                    opt_d.zero_grad()
                loss.backward()
                opt_d.step()
                losses.append(loss.item())
            return losses

        def g_step():
            fake = G(noise_batches[0] if noise == "shifted" else noise_batches[-1])
            logits = D(fake.detach() if detach_in_g else fake)
            loss = F.softplus(-logits).mean() if generator_cost == "non_saturating" else -F.softplus(logits).mean()
            if zero_grad_g:
                opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            return loss.item()

        if order == "g_first":
            g_loss = g_step()
            losses = d_steps()
        else:
            losses = d_steps()
            g_loss = g_step()
        d_loss = losses[-1] if report == "last" else sum(losses) / len(losses)
        return {"d_loss": d_loss, "g_loss": g_loss}
    return wrong


def _step_output(fn, case=(1, 3, "adam")) -> torch.Tensor:
    return _call(_wrap_step(fn), case)


def _passes_into_g(fn) -> float:
    return float(_step_output(fn)[2 * CALLS])        # backward passes that reach G, per parameter and step


def _no_gradient_from_the_d_steps(fn) -> bool:
    return _passes_into_g(fn) <= 1.0                  # only the generator step's own pass reaches G


def _gradient_reaches_g(fn) -> bool:
    return _passes_into_g(fn) >= 1.0


def _steps_k_and_one(fn) -> bool:
    return _step_output(fn)[-2:].tolist() == [3.0, 1.0]


def _one_step(fn, noise_seed: int, global_seed: int, k: int = 2):
    """One call of the answer on fixed toy models and real batches; only the noise batches change with
    ``noise_seed`` (and, for answers that draw noise themselves, the global seed). Returns the models,
    their weights before the step, and the two losses."""
    G, D = _toy_models(0)
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    reals, _ = _batches(0, k, batch=128)
    g = torch.Generator().manual_seed(noise_seed)
    noise = [torch.randn(128, 4, generator=g) for _ in range(k + 1)]
    g_before, d_before = _flat(G), _flat(D)
    torch.manual_seed(global_seed)
    losses = _check_losses(fn(G, D, opt_g, opt_d, reals, noise))
    return G, D, g_before, d_before, losses


def _step_with_noise(fn, noise_seed: int) -> torch.Tensor:
    G, D, _, _, _ = _one_step(fn, noise_seed, global_seed=0)   # own-noise answers draw the same both times
    return torch.cat([_flat(G), _flat(D)])


def _has_the_structure(fn) -> bool:
    """k discriminator steps, one generator step, and gradients into G from the generator step only."""
    return _steps_k_and_one(fn) and _passes_into_g(fn) == 1.0


def _reads_the_given_noise(fn) -> bool:
    """Whether the answer's update depends on ``noise_batches`` (an answer that draws its own noise does
    not: it is graded by the bands; one that reads them must use them as Algorithm 1 does)."""
    try:
        return not torch.equal(_step_with_noise(fn, 1), _step_with_noise(fn, 2))
    except Exception:
        return False


def _one_step_stats(fn, seed: int) -> dict:
    """The band statistics of one step (noise and global seed = ``seed``): the losses and how far each
    network moved vary little between noise draws, and every known mistake moves at least one of them."""
    G, D, g_before, d_before, (d_loss, g_loss) = _one_step(fn, seed, global_seed=seed)
    return {"d_loss": d_loss, "g_loss": g_loss, "d_weight_change": float((_flat(D) - d_before).norm()),
            "g_weight_change": float((_flat(G) - g_before).norm())}


register(Exercise(
    ASSIGNMENT, "ex1-training-step", "gan_training_step",
    "Exercise 1 (a training step with k discriminator updates)", _step_ref, _step_cases,
    [
        Misconception("fakes not detached", _step_wrong(detach=False),
                      "In the discriminator steps G is held fixed: detach the fakes (G(z).detach()), otherwise D's "
                      "loss sends gradients into G."),
        Misconception("saturating generator cost", _step_wrong(generator_cost="minimax"),
                      "The generator step must use the NON-saturating cost -mean log D(G(z)), not the minimax "
                      "mean log(1 - D(G(z)))."),
        Misconception("gradients not cleared", _step_wrong(zero_grad=False),
                      "Call opt_d.zero_grad() before each discriminator backward(): otherwise the gradients of "
                      "the k steps add up."),
        Misconception("the same noise for every step", _step_wrong(noise="same"),
                      "Each discriminator step i uses its own noise batch noise_batches[i] (and the generator "
                      "step the last one): do not reuse the first batch."),
        Misconception("generator gradients not cleared", _step_wrong(zero_grad_g=False),
                      "Call opt_g.zero_grad() before the generator's backward(): otherwise the gradients of "
                      "earlier steps (and of this one's) add up from one training step to the next."),
        Misconception("last discriminator loss", _step_wrong(report="last"),
                      "Report d_loss as the MEAN of the k discriminator losses, not the last one."),
        Misconception("generator first", _step_wrong(order="g_first"),
                      "Algorithm 1 updates D first (k steps), THEN G once, against the updated D."),
        Misconception("one discriminator step", _step_wrong(k_steps="one"),
                      "Take k discriminator steps: one per batch in real_batches."),
        Misconception("fakes detached in the generator step", _step_wrong(detach_in_g=True),
                      "In the generator step the gradient must flow THROUGH D into G: do not detach the fakes there."),
        Misconception("noise batches mixed up", _step_wrong(noise="shifted"),
                      "Use noise_batches[i] with real_batches[i] in discriminator step i, and noise_batches[-1] in "
                      "the generator step; with those, your step must give exactly Algorithm 1's update.",
                      detect=lambda fn: _reads_the_given_noise(fn) and _has_the_structure(fn)),
    ],
    ("For each real batch (with the matching noise batch) take one discriminator step with the fakes "
     "detached; then one generator step with the last noise batch and the non-saturating cost.",
     "Each step is the usual four moves: compute the loss (gan.discriminator_loss with detached fakes; "
     "gan.non_saturating_generator_loss through D), zero_grad, backward, step, each with its own optimiser. "
     "Collect the D losses with .item() and return their mean and the G loss.",
     "def gan_training_step(G, D, opt_g, opt_d, real_batches, noise_batches):\n"
     "    d_losses = []\n"
     "    for real, z in zip(real_batches, noise_batches[:-1]):\n"
     "        fake = G(z).detach()\n"
     "        d_loss = gan.discriminator_loss(D(real), D(fake))\n"
     "        opt_d.zero_grad()\n"
     "        d_loss.backward()\n"
     "        opt_d.step()\n"
     "        d_losses.append(d_loss.item())\n"
     "    g_loss = gan.non_saturating_generator_loss(D(G(noise_batches[-1])))\n"
     "    opt_g.zero_grad()\n"
     "    g_loss.backward()\n"
     "    opt_g.step()\n"
     "    return {\"d_loss\": sum(d_losses) / len(d_losses), \"g_loss\": g_loss.item()}"),
    "k discriminator steps (one per real batch, with the matching noise, fakes detached, gradients cleared), "
    "then one non-saturating generator step with the last noise batch.",
    forbidden=("coursekit.gan.training.discriminator_step", "coursekit.gan.training.generator_step",
               "coursekit.gan.training.GANTrainer.train_step", "coursekit.gan.training.GANTrainer.train"),
    atol=1e-5, exact=False, band_stats=_one_step_stats, band_seeds=40, band_min_margin=0.002,
    properties=[(_no_gradient_from_the_d_steps, "In the discriminator steps G is held fixed: detach the fakes, so "
                                                "that only the generator step sends gradients into G."),
                (_gradient_reaches_g, "No gradient reaches G in the generator step: compute D(G(z)) without "
                                      "detaching, so that the generator's loss can move G."),
                (_steps_k_and_one, "opt_d must step once per real batch (k times) and opt_g exactly once.")],
    wrap=_wrap_step,
))


# ---- 05 exercise 2: one-sided label smoothing

def _randn(seed: int, n: int, scale: float = 3.0) -> torch.Tensor:
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed))


def _bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _smoothing_ref(real_logits, fake_logits, smooth=0.9):
    return _bce(real_logits, smooth) + _bce(fake_logits, 0.0)


def _smoothing_cases():
    return [(_randn(8, 12), _randn(9, 7), 0.9), (_randn(10, 5), _randn(11, 9), 1.0),
            (_randn(12, 6), _randn(13, 6), 0.8), (torch.full((2,), 300.0), torch.full((3,), -300.0), 0.7)]


def _unstable_smoothing(real_logits, fake_logits, smooth=0.9):
    real_p, fake_p = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return (F.binary_cross_entropy(real_p, torch.full_like(real_p, smooth))
            + F.binary_cross_entropy(fake_p, torch.zeros_like(fake_p)))


register(Exercise(
    ASSIGNMENT, "ex2-smoothing", "one_sided_smoothed_d_loss",
    "Exercise 2 (one-sided label smoothing)", _smoothing_ref, _smoothing_cases,
    [
        Misconception("two-sided", lambda r, f, smooth=0.9: _bce(r, smooth) + _bce(f, 1 - smooth),
                      "One-sided: only the REAL targets become `smooth`; the fake targets stay exactly 0 "
                      "(smoothing them rewards D for believing the fakes)."),
        Misconception("smoothing on the fake labels", lambda r, f, smooth=0.9: _bce(r, 1.0) + _bce(f, 1 - smooth),
                      "The smoothing goes on the REAL labels (target `smooth` instead of 1), not on the fake ones."),
        Misconception("smooth ignored", lambda r, f, smooth=0.9: _bce(r, 0.9) + _bce(f, 0.0),
                      "Use the argument `smooth` as the real target; do not hard-code 0.9."),
        Misconception("smooth read as the amount", lambda r, f, smooth=0.9: _bce(r, 1 - smooth) + _bce(f, 0.0),
                      "`smooth` IS the real target (0.9 means 'real with 90 % confidence'), not the amount taken off 1."),
        Misconception("probabilities", _unstable_smoothing,
                      "BCE on sigmoid probabilities is clipped for confident logits: use "
                      "F.binary_cross_entropy_with_logits on the logits."),
        Misconception("one mean over real and fake",
                      lambda r, f, smooth=0.9: F.binary_cross_entropy_with_logits(
                          torch.cat([r, f]), torch.cat([torch.full_like(r, smooth), torch.zeros_like(f)])),
                      "Average the real and the fake terms SEPARATELY and add them (as in the unsmoothed loss)."),
    ],
    ("The discriminator's loss with targets: BCE(real_logits, target) + BCE(fake_logits, 0), where "
     "the real target is `smooth` instead of 1.",
     "F.binary_cross_entropy_with_logits(logits, targets) takes a target per logit: build the real targets "
     "with torch.full_like and the fake ones with torch.zeros_like, one BCE per batch.",
     "def one_sided_smoothed_d_loss(real_logits, fake_logits, smooth=0.9):\n"
     "    real_term = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, smooth))\n"
     "    fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))\n"
     "    return real_term + fake_term"),
    "BCE with logits on the real batch with target `smooth`, plus BCE with logits on the fake batch with target 0.",
    forbidden=("coursekit.gan.losses.discriminator_loss", "coursekit.gan.training.discriminator_step"),
    returns="scalar",
))


# ---- 05 exercise 3: virtual batch norm without the learned scale and shift

def _vbn_ref(x, reference, eps=1e-5):
    a = 1 / (len(reference) + 1)
    mean = a * x + (1 - a) * reference.mean(0)
    mean_sq = a * x ** 2 + (1 - a) * (reference ** 2).mean(0)
    return (x - mean) / torch.sqrt(mean_sq - mean ** 2 + eps)


def _vbn_cases():
    g = torch.Generator().manual_seed(9)
    return [(torch.randn(6, 4, generator=g) * 2, torch.randn(8, 4, generator=g) * 3 - 1),
            (torch.randn(5, 3, generator=g), torch.randn(16, 3, generator=g) * 2 + 1),
            (torch.randn(4, 2, generator=g) * 1e-3, torch.randn(10, 2, generator=g) * 1e-3)]   # eps matters


def _vbn_wrong(weight="mixed", stats="mixed", eps_inside=True):
    def wrong(x, reference, eps=1e-5):
        if stats == "batch":
            mean, var = x.mean(0), x.var(0, unbiased=False)
        else:
            a = 0.0 if weight == "zero" else 1 / len(reference) if weight == "n_ref" else 1 / (len(reference) + 1)
            mean = a * x + (1 - a) * reference.mean(0)
            if stats == "mixed_variances":
                var = (1 - a) * reference.var(0, unbiased=False)
            else:
                var = a * x ** 2 + (1 - a) * (reference ** 2).mean(0) - mean ** 2
        if not eps_inside:
            return (x - mean) / (torch.sqrt(var) + eps)
        return (x - mean) / torch.sqrt(var + eps)
    return wrong


def _vbn_unbiased(x, reference, eps=1e-5):
    rows = []
    for example in x:
        batch = torch.cat([reference, example[None]])
        rows.append((example - batch.mean(0)) / torch.sqrt(batch.var(0) + eps))      # unbiased: N - 1
    return torch.stack(rows)


register(Exercise(
    ASSIGNMENT, "ex3-vbn", "vbn_normalize",
    "Exercise 3 (virtual batch norm)", _vbn_ref, _vbn_cases,
    [
        Misconception("batch statistics", _vbn_wrong(stats="batch"),
                      "That is ordinary batch norm: the statistics must come from the REFERENCE batch (mixed with the "
                      "example itself), so an example's output does not depend on the rest of its batch."),
        Misconception("reference only", _vbn_wrong(weight="zero"),
                      "Mix the example into the statistics with weight a = 1/(N_ref + 1); the reference batch alone is "
                      "not enough."),
        Misconception("weight 1/N_ref", _vbn_wrong(weight="n_ref"),
                      "The example is one more member of the virtual batch: its weight is a = 1/(N_ref + 1), not 1/N_ref."),
        Misconception("mixed variances", _vbn_wrong(stats="mixed_variances"),
                      "Mix the second moments E[x^2] (a x^2 + (1 - a) mean(R^2)) and subtract the mixed mean squared; "
                      "mixing variances forgets the spread between x and the reference."),
        Misconception("eps outside the root", _vbn_wrong(eps_inside=False),
                      "eps goes INSIDE the square root: (x - mu) / sqrt(var + eps)."),
        Misconception("unbiased variance", _vbn_unbiased,
                      "Batch norm uses the biased variance (divide by the number of values, N_ref + 1, not N_ref): "
                      "torch.var(..., unbiased=False), or second moment - mean^2."),
    ],
    ("Treat each example x as one more member of the reference batch: its statistics are a weighted "
     "average of x and the reference batch's, with weight a = 1/(N_ref + 1) for x.",
     "Per feature: mean = a x + (1 - a) mean(R) and second moment = a x^2 + (1 - a) mean(R^2), both "
     "broadcast over x's rows; the variance is second moment - mean^2; normalise with eps inside the root.",
     "def vbn_normalize(x, reference, eps=1e-5):\n"
     "    a = 1 / (len(reference) + 1)\n"
     "    mean = a * x + (1 - a) * reference.mean(0)\n"
     "    mean_sq = a * x ** 2 + (1 - a) * (reference ** 2).mean(0)\n"
     "    return (x - mean) / torch.sqrt(mean_sq - mean ** 2 + eps)"),
    "Per example: mean and second moment mix the example (weight a = 1/(N_ref + 1)) with the reference batch "
    "(weight 1 - a); divide x - mean by sqrt(second moment - mean^2 + eps).",
    forbidden=("coursekit.gan.vbn.VirtualBatchNorm.forward", "coursekit.gan.vbn.VirtualBatchNorm.set_reference",
               "coursekit.gan.vbn.VirtualBatchNorm._normalize"),
    atol=1e-4,
))
