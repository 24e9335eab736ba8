"""Training a GAN: one discriminator step, one generator step, and a trainer around them.

Algorithm 1 of Goodfellow et al. (2014), with the practical tricks of the lecture:

    for each training step:
        for k steps:                                    # k discriminator steps
            sample real x_1..x_m and noise z_1..z_m
            update D by descending  discriminator_loss(D(x), D(G(z)))
                                    (one-sided label smoothing: real target 0.9)
        sample noise z_1..z_m
        update G by descending  -mean log D(G(z))       # non-saturating cost
                            or   mean log(1 - D(G(z)))  # minimax cost

with Adam (betas (0.5, 0.999)) and separate learning rates for G and D.

``generator_loss="wasserstein"`` plays WGAN-GP instead (Gulrajani et al. 2017): D becomes a critic
with unbounded scores, each of its k steps descends ``mean C(G(z)) - mean C(x) + lambda * GP``
(:func:`critic_step`), and G descends ``-mean C(G(z))``; the paper's settings are k = 5,
lambda = 10, Adam with lr 1e-4 and betas (0, 0.9).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from coursekit.checks import (
    CourseKitError, check_images, check_int, check_labels, check_nonnegative, check_positive_float,
)
from coursekit.gan.losses import (
    check_real_label,
    discriminator_loss,
    get_generator_loss,
    gradient_penalty,
    wgan_critic_loss,
)
from coursekit.gan.models import generate, is_conditional
from coursekit.runtime import model_device


def discriminator_step(generator: nn.Module, discriminator: nn.Module,
                       d_optimizer: torch.optim.Optimizer, real: torch.Tensor, z: torch.Tensor,
                       *, real_label: float = 1.0, labels: torch.Tensor | None = None) -> dict:
    """One update of the discriminator; G is held fixed.

    Ascends ``mean log D(x) + mean log(1 - D(G(z)))``, i.e. descends
    :func:`discriminator_loss`. ``labels`` (class-conditional GANs) go to both
    D and G. Returns ``{"d_loss", "d_real": mean D(x), "d_fake": mean D(G(z))}``.
    """
    def D(x):
        return discriminator(x) if labels is None else discriminator(x, labels)

    fake = generator(z) if labels is None else generator(z, labels)
    fake = fake.detach()  # G is held fixed: D's loss must not send gradients into G
    real_logits = D(real)
    fake_logits = D(fake)
    loss = discriminator_loss(real_logits, fake_logits, real_label)
    d_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    d_optimizer.step()
    return {
        "d_loss": loss.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
    }


def critic_step(generator: nn.Module, critic: nn.Module, c_optimizer: torch.optim.Optimizer,
                real: torch.Tensor, z: torch.Tensor, *, gp_weight: float = 10.0,
                alpha: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
    """One update of a WGAN-GP critic; G is held fixed.

    Descends ``mean C(G(z)) - mean C(x) + gp_weight * GP`` (:func:`~coursekit.gan.losses.wgan_critic_loss`,
    :func:`~coursekit.gan.losses.gradient_penalty` on interpolates with weights ``alpha`` ``(N,)``,
    drawn from torch's global RNG when not given). Returns ``{"d_loss", "d_real": mean C(x),
    "d_fake": mean C(G(z)), "gradient_penalty"}``; ``d_real - d_fake`` estimates the
    Wasserstein distance (critic scores, not probabilities).
    """
    def C(x):
        return critic(x) if labels is None else critic(x, labels)

    fake = (generator(z) if labels is None else generator(z, labels)).detach()
    real_scores, fake_scores = C(real), C(fake)
    penalty = gradient_penalty(critic, real, fake, alpha=alpha, labels=labels)
    loss = wgan_critic_loss(real_scores, fake_scores) + gp_weight * penalty
    c_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    c_optimizer.step()
    return {"d_loss": loss.item(), "d_real": real_scores.mean().item(), "d_fake": fake_scores.mean().item(),
            "gradient_penalty": penalty.item()}


def generator_step(generator: nn.Module, discriminator: nn.Module,
                   g_optimizer: torch.optim.Optimizer, z: torch.Tensor, *,
                   loss: str = "non_saturating", labels: torch.Tensor | None = None,
                   extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   adversarial_weight: float = 1.0) -> dict:
    """One update of the generator; D is held fixed (only G's optimiser steps).

    Descends ``-mean log D(G(z))`` (``loss="non_saturating"``),
    ``mean log(1 - D(G(z)))`` (``loss="minimax"``) or ``-mean C(G(z))`` (``loss="wasserstein"``). The gradient flows back
    *through* D into G; D's parameters also receive gradients, which the next
    discriminator step clears before its own update. Returns ``{"g_loss"}``.

    The GAN applications add a term of their own to the adversarial one::

        L_G = adversarial_weight * L_adv(D(G(z)))  +  extra_loss(G(z))

    (pix2pix: ``lambda * mean |G(x) - y|``; SRGAN: the content loss; CycleGAN: the
    second direction and the cycle consistency). With ``extra_loss`` the result
    also holds ``"adversarial"`` (``L_adv``, unweighted) and ``"extra"``.
    """
    generator_loss = get_generator_loss(loss)
    fake = generator(z) if labels is None else generator(z, labels)
    fake_logits = discriminator(fake) if labels is None else discriminator(fake, labels)
    adversarial = generator_loss(fake_logits)
    g_loss = adversarial
    if extra_loss is not None or adversarial_weight != 1.0:
        weight = check_nonnegative(adversarial_weight, "adversarial_weight")
        extra = extra_loss(fake) if extra_loss is not None else torch.zeros((), device=fake.device)
        if not isinstance(extra, torch.Tensor) or extra.dim() != 0:
            raise CourseKitError("extra_loss(fake) must return a scalar tensor (the term added to G's loss).")
        g_loss = weight * adversarial + extra
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_optimizer.step()
    if extra_loss is None:
        return {"g_loss": g_loss.item()}
    return {"g_loss": g_loss.item(), "adversarial": adversarial.item(), "extra": extra.item()}


def train_gan(generator: nn.Module, discriminator: nn.Module, data: torch.Tensor, steps: int, k: int = 1,
              batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> dict:
    """Algorithm 1 of Goodfellow et al. (2014) as one plain loop (lecture 05's exercise).

    Two Adam optimisers (``lr``, betas (0.5, 0.999)); every random draw comes from one
    ``torch.Generator`` seeded with ``seed``, in this order::

        for each of the steps:
            k times:  real = data[randint(len(data), (batch_size,))]; z = randn(batch_size, z_dim)
                      descend discriminator_loss(D(real), D(G(z).detach()))     # G held fixed
            once:     z = randn(batch_size, z_dim)
                      descend non_saturating_generator_loss(D(G(z)))             # through D into G

    data ``(N, d)`` (points or images); the models train in place. Returns the history
    ``{"d_loss": [mean of the k D losses per step], "g_loss": [...]}`` (Python floats).
    :class:`GANTrainer` is the full-featured version (label smoothing, WGAN-GP, samples, checkpoints).
    """
    steps, k, batch_size = check_int(steps, "steps"), check_int(k, "k"), check_int(batch_size, "batch_size")
    lr = check_positive_float(lr, "lr")
    if not isinstance(data, torch.Tensor) or len(data) < 1:
        raise CourseKitError("data must be a tensor of real examples (N, ...).")
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
    for _ in range(steps):
        d_losses = []
        for _ in range(k):
            real = data[torch.randint(len(data), (batch_size,), generator=rng)]
            z = torch.randn(batch_size, generator.z_dim, generator=rng)
            d_loss = discriminator_loss(discriminator(real), discriminator(generator(z).detach()))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            d_losses.append(d_loss.item())
        z = torch.randn(batch_size, generator.z_dim, generator=rng)
        g_loss = get_generator_loss("non_saturating")(discriminator(generator(z)))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        history["d_loss"].append(sum(d_losses) / k)
        history["g_loss"].append(g_loss.item())
    return history


class GANTrainer:
    """Trains a generator against a discriminator and records what happens.

    ``GANTrainer(G, D, lr_g=2e-4, lr_d=2e-4, k=1, generator_loss="non_saturating",
    label_smoothing=1.0, seed=0)`` then ``history = trainer.train(data, steps=1000)``.

    - ``k``: discriminator updates per generator update;
    - ``label_smoothing``: the target for *real* examples (1.0: none; 0.9: one-sided
      smoothing; fakes always 0);
    - ``generator_loss``: 'non_saturating', 'minimax' or 'wasserstein' (WGAN-GP: D is a critic
      trained by :func:`critic_step` with penalty weight ``gp_weight``; its mixing weights come
      from the trainer's seeded generator);
    - ``lr_g``, ``lr_d``, ``betas``: two Adam optimisers (``g_optimizer`` /
      ``d_optimizer`` replace them, e.g. for a private discriminator);
    - ``seed``: the noise, the order of the batches and torch's global RNG during
      training (dropout) all follow it, so a run repeats exactly given equal
      initial models (seed their construction with ``torch.manual_seed``);
    - every ``sample_every`` steps (0: never) the generator draws ``num_samples``
      samples from a fixed noise batch, kept in ``history["samples"]``.

    ``history``: lists per generator step: ``"step"``, ``"d_loss"`` (mean over the k
    D steps), ``"g_loss"``, ``"d_real"`` (mean D(x)) and ``"d_fake"`` (mean D(G(z)))
    of the last D step (for WGAN-GP: mean critic scores, whose difference estimates the
    Wasserstein distance); ``"samples"`` (CPU tensors) with their ``"sample_steps"``.
    Counters ``d_updates`` and ``g_updates`` count optimiser steps.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, *,
                 lr_g: float = 2e-4, lr_d: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
                 k: int = 1, generator_loss: str = "non_saturating", label_smoothing: float = 1.0,
                 gp_weight: float = 10.0, seed: int = 0, sample_every: int = 100, num_samples: int = 64,
                 g_optimizer: torch.optim.Optimizer | None = None,
                 d_optimizer: torch.optim.Optimizer | None = None):
        if getattr(generator, "z_dim", None) is None:
            raise CourseKitError("The generator needs a z_dim attribute (the length of its noise vectors).")
        if is_conditional(generator) != is_conditional(discriminator):
            raise CourseKitError(
                "Generator and discriminator must both be conditional (take labels) or both not."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.k = check_int(k, "k (discriminator steps per generator step)")
        get_generator_loss(generator_loss)  # validates the name
        self.generator_loss = generator_loss
        self.label_smoothing = check_real_label(label_smoothing)
        self.gp_weight = check_positive_float(gp_weight, "gp_weight (the gradient penalty's weight)")
        if generator_loss == "wasserstein" and self.label_smoothing != 1.0:
            raise CourseKitError(
                "Label smoothing is for a discriminator that outputs probabilities; a WGAN critic outputs "
                "unbounded scores and has no targets to smooth: leave label_smoothing=1.0."
            )
        self.lr_g, self.lr_d = check_positive_float(lr_g, "lr_g"), check_positive_float(lr_d, "lr_d")
        if isinstance(sample_every, bool) or not isinstance(sample_every, int) or sample_every < 0:
            raise CourseKitError(f"sample_every must be an integer >= 0, got {sample_every!r}.")
        self.sample_every = sample_every
        self.seed = int(seed)
        self.g_optimizer = g_optimizer or torch.optim.Adam(generator.parameters(), lr=self.lr_g, betas=betas)
        self.d_optimizer = d_optimizer or torch.optim.Adam(discriminator.parameters(), lr=self.lr_d, betas=betas)
        self.conditional = is_conditional(generator)
        self._rng = torch.Generator().manual_seed(self.seed)
        # The state of torch's global RNG *during training* (dropout, ...): kept
        # between calls and in checkpoints, so split runs equal uninterrupted ones.
        self._global_rng_state = torch.Generator().manual_seed(self.seed + 2).get_state()
        # The fixed noise for the sample grid has its own generator: changing
        # num_samples does not change the training run.
        fixed = torch.Generator().manual_seed(self.seed + 1)
        self.fixed_z = torch.randn(check_int(num_samples, "num_samples"), generator.z_dim,
                                   generator=fixed)
        self.fixed_labels = (torch.arange(num_samples) % generator.num_classes
                             if self.conditional else None)
        self._order: torch.Tensor | None = None  # the current epoch's permutation (tensor data)
        self._cursor = 0
        self.d_updates = 0
        self.g_updates = 0
        self.history: dict[str, list] = {
            "step": [], "d_loss": [], "g_loss": [], "d_real": [], "d_fake": [],
            "samples": [], "sample_steps": [],
        }

    # ------------------------------------------------------------ helpers

    @property
    def device(self) -> torch.device:
        return model_device(self.generator)

    def noise(self, n: int) -> torch.Tensor:
        """``n`` latent vectors ``z ~ N(0, I)`` from the trainer's seeded generator."""
        return torch.randn(n, self.generator.z_dim, generator=self._rng).to(self.device)

    def _prepare(self, data) -> tuple:
        """Split ``data`` into (x, y) tensors, or return ("loader", iterable)."""
        if isinstance(data, torch.Tensor):
            x, y = data, None
        elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
            x, y = data
        elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, tuple, list)):
            return "loader", data
        else:
            raise CourseKitError(
                "data must be a tensor of real examples, a pair (x, labels) of tensors, or a "
                f"DataLoader, got {type(data).__name__}."
            )
        if x.dim() == 4:
            check_images(x, "data")
        elif x.dim() != 2 or not x.is_floating_point():
            raise CourseKitError(
                f"data must be images (N, C, H, W) in [0, 1] or points (N, d), got {tuple(x.shape)}."
            )
        if y is not None:
            check_labels(y, len(x), "labels", getattr(self.generator, "num_classes", None))
        elif self.conditional:
            raise CourseKitError("A conditional GAN needs labels: pass data=(x, labels).")
        return x, y

    def _tensor_batch(self, x: torch.Tensor, y: torch.Tensor | None, batch_size: int):
        """The next batch of an epoch-wise shuffle (the last partial batch is dropped)."""
        if self._order is None or len(self._order) != len(x) or self._cursor + batch_size > len(x):
            self._order = torch.randperm(len(x), generator=self._rng)
            self._cursor = 0
        idx = self._order[self._cursor:self._cursor + batch_size]
        self._cursor += batch_size
        return x[idx].to(self.device), (y[idx].to(self.device) if y is not None else None)

    def _loader_batches(self, loader):
        while True:
            empty = True
            for batch in loader:
                empty = False
                if isinstance(batch, (tuple, list)):
                    x, y = batch[0], (batch[1] if len(batch) > 1 else None)
                else:
                    x, y = batch, None
                if not self.conditional:
                    y = None
                elif y is None:
                    raise CourseKitError("A conditional GAN needs a loader that yields (x, labels).")
                yield x.to(self.device), (y.to(self.device) if y is not None else None)
            if empty:
                raise CourseKitError("The data loader yielded no batches.")

    def sample(self) -> torch.Tensor:
        """The generator's samples for the fixed noise (eval mode), on the CPU."""
        return generate(self.generator, len(self.fixed_z), z=self.fixed_z, labels=self.fixed_labels)

    def _snapshot(self) -> None:
        self.history["samples"].append(self.sample())
        self.history["sample_steps"].append(self.g_updates)

    # ------------------------------------------------------------ training

    def train_step(self, next_batch: Callable[[], tuple]) -> dict:
        """k discriminator steps (each on a fresh real batch), then one generator step."""
        d_losses = []
        for _ in range(self.k):
            real, labels = next_batch()
            if self.generator_loss == "wasserstein":
                alpha = torch.rand(len(real), generator=self._rng).to(self.device)
                d_stats = critic_step(self.generator, self.discriminator, self.d_optimizer,
                                      real, self.noise(len(real)), gp_weight=self.gp_weight,
                                      alpha=alpha, labels=labels)
            else:
                d_stats = discriminator_step(self.generator, self.discriminator, self.d_optimizer,
                                             real, self.noise(len(real)),
                                             real_label=self.label_smoothing, labels=labels)
            self.d_updates += 1
            d_losses.append(d_stats["d_loss"])
        g_stats = generator_step(self.generator, self.discriminator, self.g_optimizer,
                                 self.noise(len(real)), loss=self.generator_loss, labels=labels)
        self.g_updates += 1
        return {"step": self.g_updates, "d_loss": sum(d_losses) / len(d_losses),
                "g_loss": g_stats["g_loss"], "d_real": d_stats["d_real"], "d_fake": d_stats["d_fake"]}

    def train(self, data, steps: int, batch_size: int = 64, progress: bool = True,
              callback: Callable[[dict], bool | None] | None = None) -> dict:
        """Run ``steps`` generator steps (and ``k * steps`` discriminator steps).

        ``data``: real examples ``(N, ...)``, a pair ``(x, labels)`` for a conditional
        GAN, or a DataLoader (its batch size is used). ``callback(history)`` runs after
        every step; returning True stops training. Calls continue where the last
        one stopped. Returns ``history``; the models end in eval mode.
        """
        steps = check_int(steps, "steps")
        batch_size = check_int(batch_size, "batch_size")
        prepared = self._prepare(data)
        if prepared[0] == "loader":
            batches = self._loader_batches(prepared[1])
            next_batch = lambda: next(batches)  # noqa: E731
        else:
            x, y = prepared
            if batch_size > len(x):
                raise CourseKitError(f"batch_size={batch_size} is larger than the data ({len(x)} examples).")
            next_batch = lambda: self._tensor_batch(x, y, batch_size)  # noqa: E731
        if self.sample_every and not self.history["sample_steps"]:
            self._snapshot()  # what the untrained generator draws
        # Dropout and friends use torch's global RNG: swap in the trainer's own state,
        # inside a fork so that the caller's global RNG state is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._global_rng_state.cpu())
            self.generator.train()
            self.discriminator.train()
            bar = tqdm(range(steps), desc="GAN", disable=not progress)
            try:
                for _ in bar:
                    record = self.train_step(next_batch)
                    for key, value in record.items():
                        self.history[key].append(value)
                    if self.sample_every and self.g_updates % self.sample_every == 0:
                        self._snapshot()
                    if progress and (self.g_updates % 10 == 0):
                        bar.set_postfix(d_loss=f"{record['d_loss']:.3f}", g_loss=f"{record['g_loss']:.3f}",
                                        D_x=f"{record['d_real']:.2f}", D_Gz=f"{record['d_fake']:.2f}")
                    if callback is not None and callback(self.history):
                        break
            finally:
                bar.close()
                self._global_rng_state = torch.get_rng_state()
                self.generator.eval()
                self.discriminator.eval()
        return self.history

    # ------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """Everything needed to continue training exactly: weights, optimisers, RNG, history."""
        return {
            "format": "coursekit.gan.GANTrainer/1",
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "config": {"k": self.k, "generator_loss": self.generator_loss, "gp_weight": self.gp_weight,
                       "label_smoothing": self.label_smoothing, "lr_g": self.lr_g, "lr_d": self.lr_d,
                       "seed": self.seed, "sample_every": self.sample_every},
            "rng": self._rng.get_state(),
            "global_rng": self._global_rng_state,
            "order": self._order,
            "cursor": self._cursor,
            "d_updates": self.d_updates,
            "g_updates": self.g_updates,
            "fixed_z": self.fixed_z,
            "fixed_labels": self.fixed_labels,
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("format") != "coursekit.gan.GANTrainer/1":
            raise CourseKitError("This is not a GANTrainer checkpoint (saved by GANTrainer.save).")
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
        except RuntimeError as error:
            raise CourseKitError(
                "The checkpoint's weights do not fit these models (different architecture?): "
                f"{str(error).splitlines()[0]}"
            ) from None
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        config = state["config"]
        self.k, self.generator_loss = config["k"], config["generator_loss"]
        self.gp_weight = config.get("gp_weight", 10.0)
        self.label_smoothing, self.seed = config["label_smoothing"], config["seed"]
        self.lr_g, self.lr_d, self.sample_every = config["lr_g"], config["lr_d"], config["sample_every"]
        self._rng.set_state(state["rng"].cpu())
        self._global_rng_state = state["global_rng"]
        self._order, self._cursor = state["order"], state["cursor"]
        self.d_updates, self.g_updates = state["d_updates"], state["g_updates"]
        self.fixed_z, self.fixed_labels = state["fixed_z"], state["fixed_labels"]
        self.history = state["history"]

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint to ``path`` (a ``.pt`` file); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), path)
        return path

    def load(self, path: str | Path) -> "GANTrainer":
        """Restore a checkpoint written by :meth:`save` into this trainer's models; returns self."""
        path = Path(path)
        if not path.is_file():
            raise CourseKitError(f"No checkpoint at {path}.")
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return self
