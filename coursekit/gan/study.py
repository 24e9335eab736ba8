"""Evidence over anecdotes: GAN training tips switched on and off over several seeds, on the ring.

One run of a GAN tells little: the same recipe can cover all 8 modes of the ring from one seed
and 2 from the next. Lecture 05 therefore compares each tip *over seeds* and plots the spread:

- :func:`ring_run`: one seeded run (``MLPGenerator``/``MLPDiscriminator`` on ``toy_2d('ring')``),
  summarised at evenly spaced snapshots: modes covered, share of high-quality samples, energy
  distance to held-out data, the smallest mode's share;
- :func:`compare`: every setting of a study over every seed (runs shared between studies are
  computed once per process);
- :data:`STUDIES`: the studies of lecture 05 (each tip; a recipe known to collapse and the tips that
  rescue it; WGAN-GP against the non-saturating cost);
- :func:`tip_study`: a study at the learner's budget (:data:`STUDY_STEPS` steps, :data:`STUDY_SEEDS`),
  computed live, or, with the fast budgets (grading, CI, the site's quick build), read from the
  stored result of that same computation (``coursekit/assets/gan_tips_study.json``, written by
  ``scripts/gan_tips_study.py``), labelled as such;
- :func:`plot_snapshots`: a run's samples at a few snapshots;
- :func:`plot_study`: the median over seeds with the [min, max] band, per setting; :func:`final`,
  :func:`first_step_reaching`, :func:`median`, :func:`spread`, :func:`collapse_signature` read the numbers the claims rest on;
- :func:`train_discriminator_alone`: a discriminator that wins against a fixed generator;
- :func:`saturation_study`: the non-saturating against the minimax cost when G starts against a
  discriminator that already wins (lecture 05's tip 1).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import torch
from tqdm.auto import tqdm

from coursekit.checks import CourseKitError

#: What a study run changes nothing else from: GANTrainer's settings of the ring runs.
RING_DEFAULTS: dict = {"lr_g": 1e-3, "lr_d": 1e-3, "k": 1, "generator_loss": "non_saturating",
                       "label_smoothing": 1.0, "betas": (0.5, 0.999), "gp_weight": 10.0}
#: The learner's budget of a study: generator steps per run, and the seeds.
STUDY_STEPS = 1000
STUDY_SEEDS = (0, 1, 2)
SNAPSHOTS = 10
METRICS = ("modes", "high_quality", "energy_distance", "min_share")
METRIC_LABELS = {"modes": "modes covered (of 8)", "high_quality": "share of samples near a mode",
                 "energy_distance": "energy distance to the data", "min_share": "share of the rarest mode"}

#: A recipe known to collapse on the ring: the generator learns 10x faster than the discriminator.
COLLAPSE = {"lr_g": 3e-3, "lr_d": 3e-4}

STUDIES: dict[str, dict[str, dict]] = {
    "k": {"k = 1 (reference)": {}, "k = 5": {"k": 5}},
    "learning_rates": {
        "1e-3 for both (reference)": {},
        "1e-4 for both": {"lr_g": 1e-4, "lr_d": 1e-4},
        "5e-3 for both": {"lr_g": 5e-3, "lr_d": 5e-3},
        "lr_g = 1e-3, lr_d = 4e-3 (two time scales)": {"lr_d": 4e-3},
    },
    "label_smoothing": {"no smoothing (reference)": {}, "real target 0.9": {"label_smoothing": 0.9}},
    "collapse": {
        "collapsing: lr_g = 3e-3, lr_d = 3e-4": COLLAPSE,
        "rescued by k = 5": {**COLLAPSE, "k": 5},
        "rescued by lr_d = 3e-3": {**COLLAPSE, "lr_d": 3e-3},
    },
    "wgan_gp": {
        "non-saturating (k = 3, lr 2e-3)": {"k": 3, "lr_g": 2e-3, "lr_d": 2e-3, "betas": (0.5, 0.9)},
        "WGAN-GP (k = 3, lr 2e-3, λ = 1)": {"k": 3, "lr_g": 2e-3, "lr_d": 2e-3, "betas": (0.5, 0.9),
                                              "generator_loss": "wasserstein", "gp_weight": 1.0},
    },
}

STORED = Path(__file__).resolve().parents[1] / "assets" / "gan_tips_study.json"


@lru_cache(maxsize=None)
def _ring_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from coursekit import data

    return data.toy_2d("ring", 2000, seed=0), data.toy_2d("ring", 1000, seed=1), data.toy_2d_centers("ring")


def ring_models(seed: int, *, z_dim: int = 4, hidden: int = 64):
    """The study's generator and discriminator, initialised from ``seed``."""
    from coursekit.gan.models import mlp_pair

    torch.manual_seed(seed)
    return mlp_pair(z_dim, hidden)


def _settings(settings: Mapping) -> dict:
    unknown = set(settings) - set(RING_DEFAULTS)
    if unknown:
        raise CourseKitError(f"Unknown settings {sorted(unknown)}: a study changes {sorted(RING_DEFAULTS)}.")
    merged = {**RING_DEFAULTS, **settings}
    merged["betas"] = tuple(merged["betas"])
    return merged


def summarise_samples(samples: torch.Tensor) -> dict:
    """The study's metrics of one set of samples ``(N, 2)`` on the ring (see :data:`METRIC_LABELS`)."""
    from coursekit.metrics.samples import energy_distance, mode_coverage

    _, held_out, centers = _ring_data()
    coverage = mode_coverage(samples, centers)
    return {"modes": coverage.modes, "high_quality": round(coverage.high_quality, 4),
            "energy_distance": round(energy_distance(samples, held_out), 4),
            "min_share": round(float(coverage.counts.min()) / len(samples), 4)}


def ring_run(settings: Mapping | None = None, *, seed: int, steps: int = STUDY_STEPS,
             snapshots: int = SNAPSHOTS, keep_samples: bool = False):
    """One seeded GAN run on the 8-Gaussian ring with ``settings`` (GANTrainer arguments that differ
    from :data:`RING_DEFAULTS`). Returns ``{"sample_steps": [...], metric: [...] for each of
    METRICS}`` at ``snapshots + 1`` evenly spaced steps (0 included); with ``keep_samples`` the
    trainer too (``(record, trainer)``), whose ``history["samples"]`` hold the snapshots."""
    from coursekit.gan.training import GANTrainer

    config = _settings(settings or {})
    if steps % snapshots:
        raise CourseKitError(f"steps ({steps}) must be a multiple of snapshots ({snapshots}).")
    ring = _ring_data()[0]
    G, D = ring_models(seed)
    trainer = GANTrainer(G, D, seed=seed, sample_every=steps // snapshots, num_samples=1000, **config)
    trainer.train(ring, steps, batch_size=128, progress=False)
    record: dict = {"sample_steps": list(trainer.history["sample_steps"])}
    for samples in trainer.history["samples"]:
        for name, value in summarise_samples(samples).items():
            record.setdefault(name, []).append(value)
    return (record, trainer) if keep_samples else record


_RUNS: dict = {}


def _key(settings: Mapping, seed: int, steps: int) -> str:
    return json.dumps({"settings": _settings(settings), "seed": seed, "steps": steps}, sort_keys=True)


def compare(settings: Mapping[str, Mapping], *, seeds: Sequence[int] = STUDY_SEEDS, steps: int = STUDY_STEPS,
            progress: bool = True) -> dict:
    """Every setting over every seed: ``{"steps", "seeds", "source": "live", "settings": {name:
    full settings}, "runs": {name: [ring_run record per seed]}}``. A run already made in this
    process (same settings, seed and steps) is reused."""
    seeds = [int(s) for s in seeds]
    if len(seeds) < 1:
        raise CourseKitError("A study needs at least one seed (three or more to show a spread).")
    jobs = [(name, s) for name in settings for s in seeds]
    result = {"steps": steps, "seeds": seeds, "source": "live",
              "settings": {name: _settings(cfg) for name, cfg in settings.items()},
              "runs": {name: [] for name in settings}}
    for name, seed in tqdm(jobs, desc="runs", disable=not progress):
        key = _key(settings[name], seed, steps)
        if key not in _RUNS:
            _RUNS[key] = ring_run(settings[name], seed=seed, steps=steps)
        result["runs"][name].append(_RUNS[key])
    return result


def _stored_studies(path: Path = STORED) -> dict:
    if not path.is_file():
        raise CourseKitError(f"The stored tip studies are missing ({path}): run scripts/gan_tips_study.py, "
                             "or run the notebook without COURSEKIT_FAST to compute them live.")
    return json.loads(path.read_text())


def stored_study(name: str, path: Path = STORED) -> dict:
    """The stored result of study ``name`` (``scripts/gan_tips_study.py``); it must match
    :data:`STUDIES`, :data:`STUDY_STEPS` and :data:`STUDY_SEEDS` (else it is stale: a clear error)."""
    stored = _stored_studies(path)
    if name not in stored.get("studies", {}):
        raise CourseKitError(f"No stored study {name!r} in {path}: run scripts/gan_tips_study.py.")
    study = stored["studies"][name]
    expected = {n: _settings(cfg) for n, cfg in STUDIES[name].items()}
    found = {n: _settings(cfg) for n, cfg in study["settings"].items()}
    if found != expected or study["steps"] != STUDY_STEPS or list(study["seeds"]) != list(STUDY_SEEDS):
        raise CourseKitError(f"The stored study {name!r} does not match its definition (stale file {path}): "
                             "run scripts/gan_tips_study.py again.")
    return {**study, "source": f"stored: {stored['made_by']}"}


def tip_study(name: str, *, progress: bool = True) -> dict:
    """Study ``name`` of :data:`STUDIES` at the learner's budget: live, or stored with the fast budgets."""
    from coursekit import runtime

    if name not in STUDIES:
        raise CourseKitError(f"Unknown study {name!r}: one of {', '.join(STUDIES)}.")
    if runtime.fast_budgets():
        return stored_study(name)
    return compare(STUDIES[name], seeds=STUDY_SEEDS, steps=STUDY_STEPS, progress=progress)


def describe_source(study: Mapping) -> str:
    """One line: which budget made the study's numbers (live, or the stored default run)."""
    seeds, steps = len(study["seeds"]), study["steps"]
    if study["source"] == "live":
        return f"computed live in this notebook: {seeds} seeds x {steps} generator steps per setting."
    return (f"stored result of the default budgets ({seeds} seeds x {steps} generator steps per setting; "
            f"{study['source']}); the fast budgets cannot train that long. Run the notebook without "
            "COURSEKIT_FAST to recompute it live.")


def final(study: Mapping, metric: str) -> dict[str, list[float]]:
    """The metric at the last snapshot, per setting: ``{name: [value per seed]}``."""
    if metric not in METRICS:
        raise CourseKitError(f"Unknown metric {metric!r}: one of {', '.join(METRICS)}.")
    return {name: [run[metric][-1] for run in runs] for name, runs in study["runs"].items()}


def first_step_reaching(study: Mapping, metric: str, value: float) -> dict[str, list[float]]:
    """Per setting and seed, the first snapshot step where ``metric >= value`` (``inf`` if never)."""
    out = {}
    for name, runs in study["runs"].items():
        out[name] = [next((step for step, v in zip(run["sample_steps"], run[metric]) if v >= value),
                          float("inf")) for run in runs]
    return out


def plot_study(study: Mapping, metrics: Sequence[str] = ("energy_distance", "modes"), *,
               title: str | None = None, axes=None):
    """Per metric, one panel: per setting the median over seeds (line) and [min, max] (band)."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.6 * len(metrics), 3.6), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, metric in zip(axes, metrics):
        for name, runs in study["runs"].items():
            values = torch.tensor([run[metric] for run in runs], dtype=torch.float64)
            steps = runs[0]["sample_steps"]
            line, = ax.plot(steps, values.median(0).values, marker="o", ms=3, label=name)
            ax.fill_between(steps, values.min(0).values, values.max(0).values, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("generator step"); ax.set_ylabel(METRIC_LABELS[metric]); ax.grid(alpha=0.3)
        if metric == "energy_distance":
            ax.set_yscale("log")
        if metric == "modes":
            ax.set_ylim(-0.3, 8.5)
    axes[-1].legend(fontsize=7)
    fig.suptitle(title or f"median and range over {len(study['seeds'])} seeds")
    fig.tight_layout()
    return fig


def median(values: Sequence[float]) -> float:
    """The median over seeds (``inf`` counts as larger than any step: "never")."""
    return float(torch.tensor([float(v) for v in values], dtype=torch.float64).median())


def step_text(step: float) -> str:
    """``"step 400"``, or ``"never (within the budget)"`` for ``inf``."""
    return "never (within the budget)" if step == float("inf") else f"step {step:.0f}"


@torch.no_grad()
def spread(samples: torch.Tensor) -> float:
    """Mean distance of the samples ``(N, d)`` to their centre: the ring's data has about 2.0, a
    collapsed generator much less."""
    return float((samples - samples.mean(0)).norm(dim=1).mean())


def plot_snapshots(history: Mapping, indices: Sequence[int], *, title: str, reference: torch.Tensor | None = None,
                   labels: Sequence[str] | None = None):
    """Scatter the generator's samples (red) over the data (blue) at snapshots ``indices`` of a
    trainer's ``history`` (``"samples"``, ``"sample_steps"``); each panel titled with its step (or its
    entry of ``labels``) and the modes it covers."""
    import matplotlib.pyplot as plt

    reference = _ring_data()[1] if reference is None else reference
    fig, axes = plt.subplots(1, len(indices), figsize=(2.8 * len(indices), 3.1), squeeze=False)
    for position, (ax, i) in enumerate(zip(axes[0], indices)):
        samples = history["samples"][i]
        ax.scatter(reference[:, 0], reference[:, 1], s=2, alpha=0.3, label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, color="tab:red", label="G(z)")
        label = labels[position] if labels else f"step {history['sample_steps'][i]}"
        ax.set_title(f"{label}: {summarise_samples(samples)['modes']}/8 modes", fontsize=9)
        # Each panel zooms to its samples (at least the ring's box): a wide early cloud must not shrink the rest.
        limit = max(3.0, 1.05 * float(samples.abs().max(1).values.quantile(0.99)))
        ax.set_xlim(-limit, limit); ax.set_ylim(-limit, limit)
        ax.set_xlabel("$x_1$"); ax.set_aspect("equal")
    axes[0][0].set_ylabel("$x_2$"); axes[0][0].legend(loc="lower left", markerscale=4, fontsize=7)
    fig.suptitle(title); fig.tight_layout()
    return fig


def collapse_signature(history: Mapping) -> dict:
    """How collapsed a run is, from its snapshots after step 0: ``spread`` (median over the snapshots
    of :func:`spread`), ``jump`` (median distance the samples' centre moves between consecutive
    snapshots: mode *hopping*) and ``data_spread`` (the ring's own spread, about 2.0)."""
    snapshots = history["samples"][1:]
    if len(snapshots) < 2:
        raise CourseKitError("A collapse signature needs at least two snapshots after step 0.")
    jumps = [float((a.mean(0) - b.mean(0)).norm()) for a, b in zip(snapshots[1:], snapshots[:-1])]
    return {"spread": median([spread(s) for s in snapshots]), "jump": median(jumps),
            "data_spread": spread(_ring_data()[0])}


# ---------------------------------------------------------------- a discriminator that wins

def train_discriminator_alone(generator, discriminator, *, steps: int, seed: int, real_label: float = 1.0):
    """``steps`` Adam steps (lr 1e-3, betas (0.5, 0.999)) of D against the *fixed* G on the ring:
    D learns to reject G's samples. Batches of 128 and the noise come from ``seed``. Returns D."""
    from coursekit.gan.training import discriminator_step

    ring = _ring_data()[0]
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    noise = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        real = ring[torch.randint(0, len(ring), (128,), generator=noise)]
        discriminator_step(generator, discriminator, d_opt, real,
                           torch.randn(128, generator.z_dim, generator=noise), real_label=real_label)
    return discriminator


# ---------------------------------------------------------------- tip 1: the saturating cost

def saturation_study(*, seeds: Sequence[int] = STUDY_SEEDS, d_steps: int = 200, steps: int = 300,
                     lr: float = 0.01) -> dict:
    """The two generator costs against a discriminator that already wins, over seeds.

    Per seed: fresh ring models; D alone takes ``d_steps`` Adam steps against the untrained G (it
    learns to reject its samples); then, from copies of that same pair, G is trained by plain SGD
    (``lr``; Adam's step normalisation would hide the gradient's size) for ``steps`` steps under
    each cost, D still trained (Adam, k = 1). Returns ``{"seeds", "d_fake_start": [mean D(G(z))
    before G moves], "grad_norm": {cost: [||grad_theta cost|| at the start]}, "d_fake": {cost:
    [[mean D(G(z)) per step] per seed]}}``.
    """
    import copy

    from coursekit.gan.losses import get_generator_loss
    from coursekit.gan.training import GANTrainer

    ring = _ring_data()[0]
    out = {"seeds": list(seeds), "steps": steps, "d_steps": d_steps, "d_fake_start": [],
           "grad_norm": {"minimax": [], "non_saturating": []}, "d_fake": {"minimax": [], "non_saturating": []}}
    for seed in seeds:
        G0, D0 = ring_models(seed)
        train_discriminator_alone(G0, D0, steps=d_steps, seed=seed)
        z = torch.randn(512, G0.z_dim, generator=torch.Generator().manual_seed(seed + 100))
        with torch.no_grad():
            out["d_fake_start"].append(float(torch.sigmoid(D0(G0(z))).mean()))
        for cost in ("minimax", "non_saturating"):
            G0.zero_grad()
            get_generator_loss(cost)(D0(G0(z))).backward()
            out["grad_norm"][cost].append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in G0.parameters()))))
            G1, D1 = copy.deepcopy(G0), copy.deepcopy(D0)
            trainer = GANTrainer(G1, D1, lr_d=1e-3, generator_loss=cost, seed=seed, sample_every=0,
                                 g_optimizer=torch.optim.SGD(G1.parameters(), lr=lr))
            trainer.train(ring, steps, batch_size=128, progress=False)
            out["d_fake"][cost].append([round(v, 5) for v in trainer.history["d_fake"]])
        G0.zero_grad()
    return out
