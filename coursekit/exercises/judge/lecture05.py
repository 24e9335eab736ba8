"""Registry entries for lecture 05 (GAN training tips): the k-step training step, one-sided label
smoothing, virtual batch norm.

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
The training step acts on state (two networks, two optimisers), so its entry has a harness
(:func:`coursekit.exercises.harnesses.two_training_steps`) that builds fresh toy models from each
probe, runs the answer and returns what changed. An answer that
draws its own noise instead of using ``noise_batches`` cannot match output for output; it is graded
against bands of one-step statistics over 40 noise seeds (``scripts/calibrate_bands.py``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from coursekit.exercises import harnesses, probes
from coursekit.exercises.judge.exercise import Answer, Bands, Exercise, Misconception, Probe, Property

ASSIGNMENT = "05_gan_training_tips"
EXERCISES: list[Exercise] = []


# ---- 05 exercise 1: one training step with k discriminator updates

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


ADAM_CASE = "adam-k3"     # two calls with k = 3 and Adam (which counts its steps): every count below shows


def _passes_into_g(answer: Answer) -> float:
    # backward passes that reach G, per parameter and step
    return float(answer.on(ADAM_CASE)[2 * harnesses.CALLS])


def _no_gradient_from_the_d_steps(answer: Answer) -> bool:
    return _passes_into_g(answer) <= 1.0                  # only the generator step's own pass reaches G


def _gradient_reaches_g(answer: Answer) -> bool:
    return _passes_into_g(answer) >= 1.0


def _steps_k_and_one(answer: Answer) -> bool:
    return answer.on(ADAM_CASE)[-2:].tolist() == [3.0, 1.0]


def _noise_probe(noise_seed: int, global_seed: int = 0) -> Probe:
    """One step with the noise batches of ``noise_seed``; with the same global seed, an answer that draws
    its own noise draws the same both times."""
    return Probe(args=lambda: (noise_seed, global_seed), harness=harnesses.one_training_step)


def _draws_the_same_noise_every_time(answer: Answer) -> bool:
    """An answer that ignores ``noise_batches`` AND gives the same step under another global seed: its
    noise was drawn once (at definition, or cached) and is reused at every step."""
    return not _reads_the_given_noise(answer) and answer.same("noise-seed-1", "noise-seed-1-global-7")


def _fixed_noise_step(G, D, opt_g, opt_d, real_batches, noise_batches):
    """Algorithm 1 with its own noise, drawn once (for the first batch size seen) and reused at every step."""
    from coursekit import gan

    n = len(real_batches[0])
    if n not in _FIXED_NOISE:
        _FIXED_NOISE[n] = torch.randn(n, 4, generator=torch.Generator().manual_seed(99))
    z = _FIXED_NOISE[n]
    d_losses = []
    for real in real_batches:
        d_loss = gan.discriminator_loss(D(real), D(G(z).detach()))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        d_losses.append(d_loss.item())
    g_loss = gan.non_saturating_generator_loss(D(G(z)))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return {"d_loss": sum(d_losses) / len(d_losses), "g_loss": g_loss.item()}


_FIXED_NOISE: dict[int, torch.Tensor] = {}


def _has_the_structure(answer: Answer) -> bool:
    """k discriminator steps, one generator step, and gradients into G from the generator step only."""
    return _steps_k_and_one(answer) and _passes_into_g(answer) == 1.0


def _reads_the_given_noise(answer: Answer) -> bool:
    """Whether the answer's update depends on ``noise_batches`` (an answer that draws its own noise does
    not: it is graded by the bands; one that reads them must use them as Algorithm 1 does)."""
    return not answer.same("noise-seed-1", "noise-seed-2")


def _one_step_stats(out, args) -> dict:
    """The band statistics of one step (noise and global seed = the band's seed): the losses and how far
    each network moved vary little between noise draws, and every known mistake moves at least one of them."""
    d_loss, g_loss, d_moved, g_moved = out[:4].tolist()
    return {"d_loss": d_loss, "g_loss": g_loss, "d_weight_change": d_moved, "g_weight_change": g_moved}


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex1-training-step", function="gan_training_step",
    title="Exercise 1 (a training step with k discriminator updates)", reference=_step_ref, cases=_step_cases,
    misconceptions=[
        Misconception(name="fakes not detached", wrong=_step_wrong(detach=False),
                      hint="In the discriminator steps G is held fixed: detach the fakes (G(z).detach()), otherwise D's "
                      "loss sends gradients into G."),
        Misconception(name="saturating generator cost", wrong=_step_wrong(generator_cost="minimax"),
                      hint="The generator step must use the NON-saturating cost -mean log D(G(z)), not the minimax "
                      "mean log(1 - D(G(z)))."),
        Misconception(name="gradients not cleared", wrong=_step_wrong(zero_grad=False),
                      hint="Clear D's gradients (opt_d's zero_grad) before each discriminator backward(): otherwise the gradients of "
                      "the k steps add up."),
        Misconception(name="the same noise for every step", wrong=_step_wrong(noise="same"),
                      hint="Each discriminator step i uses its own noise batch noise_batches[i] (and the generator "
                      "step the last one): do not reuse the first batch."),
        Misconception(name="generator gradients not cleared", wrong=_step_wrong(zero_grad_g=False),
                      hint="Clear G's gradients (opt_g's zero_grad) before the generator's backward(): otherwise the gradients of "
                      "earlier steps (and of this one's) add up from one training step to the next."),
        Misconception(name="last discriminator loss", wrong=_step_wrong(report="last"),
                      hint="Report d_loss as the MEAN of the k discriminator losses, not the last one."),
        Misconception(name="generator first", wrong=_step_wrong(order="g_first"),
                      hint="Algorithm 1 updates D first (k steps), THEN G once, against the updated D."),
        Misconception(name="one discriminator step", wrong=_step_wrong(k_steps="one"),
                      hint="Take k discriminator steps: one per batch in real_batches."),
        Misconception(name="fakes detached in the generator step", wrong=_step_wrong(detach_in_g=True),
                      hint="In the generator step the gradient must flow THROUGH D into G: do not detach the fakes there."),
        Misconception(name="noise batches mixed up", wrong=_step_wrong(noise="shifted"),
                      hint="Use noise_batches[i] with real_batches[i] in discriminator step i, and noise_batches[-1] in "
                      "the generator step; with those, your step must give exactly Algorithm 1's update.",
                      detect=lambda answer: _reads_the_given_noise(answer) and _has_the_structure(answer)),
        Misconception(name="noise drawn once", wrong=_fixed_noise_step,
                      hint="Draw fresh noise at every step (or use noise_batches): noise drawn once and reused shows "
                      "the discriminator the same few fakes and trains G on a handful of points.",
                      detect=_draws_the_same_noise_every_time),
    ],
    hints=("For each real batch (with the matching noise batch) take one discriminator step with the fakes "
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
    fallback="k discriminator steps (one per real batch, with the matching noise, fakes detached, gradients cleared), "
    "then one non-saturating generator step with the last noise batch.",
    forbidden=("coursekit.gan.training.discriminator_step", "coursekit.gan.training.generator_step",
               "coursekit.gan.training.GANTrainer.train_step", "coursekit.gan.training.GANTrainer.train"),
    atol=1e-5,
    harness=harnesses.two_training_steps,
    bands=Bands(args=lambda seed: (seed, seed), stats=_one_step_stats, seeds=40, min_margin=0.002,
                harness=harnesses.one_training_step),
    probes={ADAM_CASE: Probe(args=lambda: (1, 3, "adam")),
            "noise-seed-1": _noise_probe(1), "noise-seed-2": _noise_probe(2),
            "noise-seed-1-global-7": _noise_probe(1, global_seed=7)},
    properties=[Property(holds=_no_gradient_from_the_d_steps,
                         message="In the discriminator steps G is held fixed: detach the fakes, so that only the "
                                 "generator step sends gradients into G."),
                Property(holds=_gradient_reaches_g,
                         message="No gradient reaches G in the generator step: compute D(G(z)) without detaching, "
                                 "so that the generator's loss can move G."),
                Property(holds=_steps_k_and_one,
                         message="opt_d must step once per real batch (k times) and opt_g exactly once.")],
))


# ---- 05 exercise 2: one-sided label smoothing

def _bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _smoothing_ref(real_logits, fake_logits, smooth=0.9):
    return _bce(real_logits, smooth) + _bce(fake_logits, 0.0)


def _smoothing_cases():
    def logits(seed: int, n: int) -> torch.Tensor:
        return probes.randn(seed, n, scale=3.0)
    return [(logits(8, 12), logits(9, 7), 0.9), (logits(10, 5), logits(11, 9), 1.0),
            (logits(12, 6), logits(13, 6), 0.8), (torch.full((2,), 300.0), torch.full((3,), -300.0), 0.7)]


def _unstable_smoothing(real_logits, fake_logits, smooth=0.9):
    real_p, fake_p = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return (F.binary_cross_entropy(real_p, torch.full_like(real_p, smooth))
            + F.binary_cross_entropy(fake_p, torch.zeros_like(fake_p)))


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex2-smoothing", function="one_sided_smoothed_d_loss",
    title="Exercise 2 (one-sided label smoothing)", reference=_smoothing_ref, cases=_smoothing_cases,
    misconceptions=[
        Misconception(name="two-sided", wrong=lambda r, f, smooth=0.9: _bce(r, smooth) + _bce(f, 1 - smooth),
                      hint="One-sided: only the REAL targets become `smooth`; the fake targets stay exactly 0 "
                      "(smoothing them rewards D for believing the fakes)."),
        Misconception(name="smoothing on the fake labels", wrong=lambda r, f, smooth=0.9: _bce(r, 1.0) + _bce(f, 1 - smooth),
                      hint="The smoothing goes on the REAL labels (target `smooth` instead of 1), not on the fake ones."),
        Misconception(name="smooth ignored", wrong=lambda r, f, smooth=0.9: _bce(r, 0.9) + _bce(f, 0.0),
                      hint="Use the argument `smooth` as the real target; do not hard-code 0.9."),
        Misconception(name="smooth read as the amount", wrong=lambda r, f, smooth=0.9: _bce(r, 1 - smooth) + _bce(f, 0.0),
                      hint="`smooth` IS the real target (0.9 means 'real with 90 % confidence'), not the amount taken off 1."),
        Misconception(name="probabilities", wrong=_unstable_smoothing,
                      hint="BCE on sigmoid probabilities is clipped for confident logits: use "
                      "F.binary_cross_entropy_with_logits on the logits."),
        Misconception(name="one mean over real and fake",
                      wrong=lambda r, f, smooth=0.9: F.binary_cross_entropy_with_logits(
                          torch.cat([r, f]), torch.cat([torch.full_like(r, smooth), torch.zeros_like(f)])),
                      hint="Average the real and the fake terms SEPARATELY and add them (as in the unsmoothed loss)."),
    ],
    hints=("The discriminator's loss with targets: BCE(real_logits, target) + BCE(fake_logits, 0), where "
           "the real target is `smooth` instead of 1.",
           "F.binary_cross_entropy_with_logits(logits, targets) takes a target per logit: build the real targets "
           "with torch.full_like and the fake ones with torch.zeros_like, one BCE per batch.",
           "def one_sided_smoothed_d_loss(real_logits, fake_logits, smooth=0.9):\n"
           "    real_term = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, smooth))\n"
           "    fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))\n"
           "    return real_term + fake_term"),
    fallback="BCE with logits on the real batch with target `smooth`, plus BCE with logits on the fake batch with target 0.",
    forbidden=("coursekit.gan.losses.discriminator_loss", "coursekit.gan.training.discriminator_step"),
    returns="scalar", gradient=True,
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


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex3-vbn", function="vbn_normalize",
    title="Exercise 3 (virtual batch norm)", reference=_vbn_ref, cases=_vbn_cases,
    misconceptions=[
        Misconception(name="batch statistics", wrong=_vbn_wrong(stats="batch"),
                      hint="That is ordinary batch norm: the statistics must come from the REFERENCE batch (mixed with the "
                      "example itself), so an example's output does not depend on the rest of its batch."),
        Misconception(name="reference only", wrong=_vbn_wrong(weight="zero"),
                      hint="Mix the example into the statistics with weight a = 1/(N_ref + 1); the reference batch alone is "
                      "not enough."),
        Misconception(name="weight 1/N_ref", wrong=_vbn_wrong(weight="n_ref"),
                      hint="The example is one more member of the virtual batch: its weight is a = 1/(N_ref + 1), not 1/N_ref."),
        Misconception(name="mixed variances", wrong=_vbn_wrong(stats="mixed_variances"),
                      hint="Mix the second moments E[x^2] (a x^2 + (1 - a) mean(R^2)) and subtract the mixed mean squared; "
                      "mixing variances forgets the spread between x and the reference."),
        Misconception(name="eps outside the root", wrong=_vbn_wrong(eps_inside=False),
                      hint="eps goes INSIDE the square root: (x - mu) / sqrt(var + eps)."),
        Misconception(name="unbiased variance", wrong=_vbn_unbiased,
                      hint="Batch norm uses the biased variance (divide by the number of values, N_ref + 1, not N_ref): "
                      "torch.var(..., unbiased=False), or second moment - mean^2."),
    ],
    hints=("Treat each example x as one more member of the reference batch: its statistics are a weighted "
           "average of x and the reference batch's, with weight a = 1/(N_ref + 1) for x.",
           "Per feature: mean = a x + (1 - a) mean(R) and second moment = a x^2 + (1 - a) mean(R^2), both "
           "broadcast over x's rows; the variance is second moment - mean^2; normalise with eps inside the root.",
           "def vbn_normalize(x, reference, eps=1e-5):\n"
           "    a = 1 / (len(reference) + 1)\n"
           "    mean = a * x + (1 - a) * reference.mean(0)\n"
           "    mean_sq = a * x ** 2 + (1 - a) * (reference ** 2).mean(0)\n"
           "    return (x - mean) / torch.sqrt(mean_sq - mean ** 2 + eps)"),
    fallback="Per example: mean and second moment mix the example (weight a = 1/(N_ref + 1)) with the reference batch "
    "(weight 1 - a); divide x - mean by sqrt(second moment - mean^2 + eps).",
    forbidden=("coursekit.gan.vbn.VirtualBatchNorm.forward", "coursekit.gan.vbn.VirtualBatchNorm.set_reference",
               "coursekit.gan.vbn.VirtualBatchNorm._normalize"),
    atol=1e-4,
))


# ---- 05 exercise 4: the whole training loop (Algorithm 1 with its optimisers, batches and noise)

def _loop_ref(G, D, data, steps, k=1, batch_size=64, lr=1e-3, seed=0):
    from coursekit import gan

    return gan.train_gan(G, D, data, steps, k=k, batch_size=batch_size, lr=lr, seed=seed)


def _loop_cases():          # (model seed, seed, steps, k, batch size, lr)
    return [(0, 0, 3, 1, 32, 2e-3), (1, 1, 2, 3, 16, 1e-3), (2, 2, 4, 2, 32, 5e-3)]


def _loop_wrong(detach=True, cost="non_saturating", optimiser="adam", optimisers_once=True, g_noise="fresh",
                real="random", zero_grad_d=True, order="d_first", own_lr=None, own_k=None, noise_once=False,
                seeded=True):
    """The reference loop with one known mistake switched on (the same order of random draws)."""
    def wrong(G, D, data, steps, k=1, batch_size=64, lr=1e-3, seed=0):
        from coursekit import gan

        lr, k = own_lr or lr, own_k or k

        def make():
            if optimiser == "sgd":
                return torch.optim.SGD(G.parameters(), lr=lr), torch.optim.SGD(D.parameters(), lr=lr)
            return (torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999)),
                    torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999)))

        opt_g, opt_d = make()
        rng = torch.Generator().manual_seed(seed) if seeded else None      # None: torch's global generator
        fixed = torch.randn(batch_size, G.z_dim, generator=rng) if noise_once else None
        history = {"d_loss": [], "g_loss": []}
        for _ in range(steps):
            if not optimisers_once:
                opt_g, opt_d = make()

            def d_steps():
                losses, z = [], None
                for _ in range(k):
                    batch = (data[torch.randint(len(data), (batch_size,), generator=rng)] if real == "random"
                             else data[:batch_size])
                    z = fixed if noise_once else torch.randn(batch_size, G.z_dim, generator=rng)
                    fake = G(z).detach() if detach else G(z)
                    loss = gan.discriminator_loss(D(batch), D(fake))
                    if zero_grad_d:
                        opt_d.zero_grad()
                    loss.backward()
                    opt_d.step()
                    losses.append(loss.item())
                return losses, z

            def g_step(last_z):
                z = (fixed if noise_once else last_z if g_noise == "reused" and last_z is not None
                     else torch.randn(batch_size, G.z_dim, generator=rng))
                logits = D(G(z))
                loss = (gan.non_saturating_generator_loss(logits) if cost == "non_saturating"
                        else gan.minimax_generator_loss(logits))
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()
                return loss.item()

            if order == "g_first":
                g_loss = g_step(None)
                d_losses, _ = d_steps()
            else:
                d_losses, last_z = d_steps()
                g_loss = g_step(last_z)
            history["d_loss"].append(sum(d_losses) / len(d_losses))
            history["g_loss"].append(g_loss)
        return history
    return wrong


def _loop_args(seed: int):
    return (0, seed, 60, 1, 64, 2e-3)           # the same models every time: only the random draws change


def _loop_stats(out, args) -> dict:
    """Band statistics of a seeded 60-step run from fixed models: the mean losses and how far each network
    moved. An answer that draws its random numbers in another order lands inside."""
    model_seed, steps = args[0], args[2]
    G, D = harnesses.loop_models(model_seed)
    g0, d0 = harnesses.flat(G), harnesses.flat(D)
    d_losses, g_losses = out[:steps], out[steps:2 * steps]
    weights = out[2 * steps + 2:-1]
    return {"d_loss_mean": float(d_losses.mean()), "g_loss_mean": float(g_losses.mean()),
            "g_weight_change": float((weights[:len(g0)] - g0).norm()),
            "d_weight_change": float((weights[len(g0):] - d0).norm())}


def _passes_into_g_per_step(answer: Answer) -> float:
    steps = _loop_cases()[1][2]
    return float(answer.on("case-1")[2 * steps])      # case 1: k = 3, so undetached fakes show


def _uses_the_global_generator(answer: Answer) -> bool:
    """The same seed under two global seeds gives two different runs: the answer draws from torch's global
    random generator instead of a torch.Generator seeded with ``seed``."""
    return not answer.same("seed-3-global-1", "seed-3-global-2")


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex4-training-loop", function="train_gan",
    title="Exercise 4 (the training loop)", reference=_loop_ref, cases=_loop_cases,
    misconceptions=[
        Misconception(name="seed ignored", depth=0, wrong=_loop_wrong(seeded=False),
                      hint="Draw every random number (batch indices, noise) from ONE torch.Generator seeded with `seed` "
                      "(generator=... in torch.randint and torch.randn), not from torch's global generator: the same "
                      "seed must give the same run.",
                      detect=_uses_the_global_generator),
        Misconception(name="fakes not detached", wrong=_loop_wrong(detach=False),
                      hint="In the discriminator steps G is held fixed: detach the fakes (G(z).detach()), otherwise D's "
                      "loss sends gradients into G."),
        Misconception(name="saturating generator cost", wrong=_loop_wrong(cost="minimax"),
                      hint="The generator step must use the NON-saturating cost -mean log D(G(z)) "
                      "(gan.non_saturating_generator_loss), not the minimax one."),
        Misconception(name="optimisers rebuilt every step", wrong=_loop_wrong(optimisers_once=False),
                      hint="Create the two Adam optimisers ONCE, before the loop: rebuilt at every step they forget "
                      "their running averages and every step becomes Adam's first."),
        Misconception(name="generator reuses the last noise batch", wrong=_loop_wrong(g_noise="reused"),
                      hint="Draw a FRESH noise batch for the generator step; reusing the discriminator's last batch "
                      "trains G on the very fakes D just learned to reject."),
        Misconception(name="the same real batch every step", wrong=_loop_wrong(real="first"),
                      hint="Draw a random real batch at every discriminator step (torch.randint over len(data)), not "
                      "the first batch_size examples every time."),
        Misconception(name="discriminator gradients not cleared", wrong=_loop_wrong(zero_grad_d=False),
                      hint="Clear D's gradients (its optimiser's zero_grad) before each discriminator backward(): "
                      "otherwise the gradients pile up from step to step."),
        Misconception(name="generator first", wrong=_loop_wrong(order="g_first"),
                      hint="Algorithm 1 updates D first (k steps), THEN G once, against the updated D."),
        Misconception(name="k ignored", wrong=_loop_wrong(own_k=1),
                      hint="Take k discriminator steps per generator step (the argument k), each on its own batch."),
        Misconception(name="lr ignored", wrong=_loop_wrong(own_lr=1e-3),
                      hint="Give both optimisers the learning rate `lr` (the argument), not a fixed number."),
        Misconception(name="plain SGD", wrong=_loop_wrong(optimiser="sgd"),
                      hint="Use Adam with betas (0.5, 0.999) for both networks, as DCGAN does (plain SGD is another recipe)."),
        Misconception(name="noise drawn once", wrong=_loop_wrong(noise_once=True),
                      hint="Draw fresh noise for every update: one noise batch drawn before the loop shows D the same few "
                      "fakes and trains G on a handful of points."),
    ],
    hints=("Set up once: two Adam optimisers (lr, betas (0.5, 0.999)) and one torch.Generator seeded with seed. "
           "Then, at each step: k discriminator updates, each on a fresh real batch and fresh noise with the fakes "
           "detached; one generator update on fresh noise with the non-saturating cost; record the losses.",
           "Draw with generator=gen, in this order: for each discriminator update the real indices "
           "(torch.randint over len(data)) then its noise (torch.randn with G.z_dim columns); then one more noise "
           "batch for the generator. Each update is zero_grad, backward, step of its own optimiser. Append the mean "
           "of the k discriminator losses and the generator loss (.item()) to the two lists of the history.",
           "def train_gan(G, D, data, steps, k=1, batch_size=64, lr=1e-3, seed=0):\n"
           "    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))\n"
           "    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))\n"
           "    gen = torch.Generator().manual_seed(seed)\n"
           "    history = {\"d_loss\": [], \"g_loss\": []}\n"
           "    for _ in range(steps):\n"
           "        d_losses = []\n"
           "        for _ in range(k):\n"
           "            real = data[torch.randint(len(data), (batch_size,), generator=gen)]\n"
           "            z = torch.randn(batch_size, G.z_dim, generator=gen)\n"
           "            d_loss = gan.discriminator_loss(D(real), D(G(z).detach()))\n"
           "            opt_d.zero_grad()\n"
           "            d_loss.backward()\n"
           "            opt_d.step()\n"
           "            d_losses.append(d_loss.item())\n"
           "        z = torch.randn(batch_size, G.z_dim, generator=gen)\n"
           "        g_loss = gan.non_saturating_generator_loss(D(G(z)))\n"
           "        opt_g.zero_grad()\n"
           "        g_loss.backward()\n"
           "        opt_g.step()\n"
           "        history[\"d_loss\"].append(sum(d_losses) / k)\n"
           "        history[\"g_loss\"].append(g_loss.item())\n"
           "    return history"),
    fallback="Two Adam optimisers made once; per step k discriminator updates (fresh real batch and noise from the "
    "seeded generator, fakes detached, gradients cleared) then one non-saturating generator update on fresh noise; "
    "the history holds the mean discriminator loss and the generator loss of every step.",
    forbidden=("coursekit.gan.training.train_gan", "coursekit.gan.training.GANTrainer",
               "coursekit.gan.training.discriminator_step", "coursekit.gan.training.generator_step",
               "coursekit.gan.training.critic_step", "coursekit.gan.study", "torchgan"),
    returns="any", atol=1e-5,
    harness=harnesses.training_loop,
    probes={"seed-3-global-1": Probe(args=lambda: (3, 3, 3, 1, 16, 2e-3), global_seed=1),
            "seed-3-global-2": Probe(args=lambda: (3, 3, 3, 1, 16, 2e-3), global_seed=2)},
    properties=[Property(holds=lambda answer: _passes_into_g_per_step(answer) <= 1.0, depth=0,
                         message="In the discriminator steps G is held fixed: detach the fakes, so that only the "
                                 "generator step sends gradients into G."),
                Property(holds=lambda answer: _passes_into_g_per_step(answer) >= 1.0,
                         message="No gradient reaches G in the generator step: compute D(G(z)) without detaching, "
                                 "so that the generator's loss can move G.")],
    bands=Bands(args=_loop_args, stats=_loop_stats, seeds=40, min_margin=0.02,
                min_margins={"d_loss_mean": 0.01, "g_loss_mean": 0.01}),
))
