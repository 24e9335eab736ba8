"""Evidence over anecdotes for lecture 06: the comparisons that need several seeds, at the learner's budget.

One GAN run tells little: the same recipe can translate well from one seed and badly from the
next. The claims of lecture 06 that compare two ways of doing something therefore rest on a study
over :data:`SEEDS`, each run at the learner's (default) budget:

- :func:`cyclegan_study`: CycleGAN on the thickening domains; the distance of ``G(a)`` to the true
  thickening ``T(a)`` on held-out digits at evenly spaced steps, against doing nothing (``a`` itself);
- :func:`defect_study`: the defect classifier trained on the real data alone, with oversampled real
  defects, and with GAN defects from each painter (the free-form one and the stroke one): balanced
  accuracy and defect recall on a balanced real test set.

With the default budgets they are computed live (the CycleGAN study keeps its models, for the
figures); with the fast budgets (grading, CI, the site's quick build) they are read from the stored
result of the same computation (``coursekit/assets/applications_studies.json``, written by
``scripts/applications_studies.py``), labelled as such; a stored result that does not match the
definitions here is refused. The studies use the digits shipped with coursekit
(:func:`coursekit.data.embedded_mnist`) and scikit-image's textures, so the live and the stored
numbers are the same computation on every machine.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch
from tqdm.auto import tqdm

from coursekit.checks import CourseKitError

SEEDS = (0, 1, 2)
#: CycleGAN (thin -> bold strokes): the notebook's recipe at the learner's budget.
CYCLEGAN = {"steps": 300, "snapshot_every": 25, "batch_size": 16, "lr": 1e-3, "identity_weight": 5.0,
            "channels": 8, "n_train": 4000, "n_eval": 500}
#: The defect study: data set sizes, the painters' training, the classifier.
DEFECTS = {"n_normal": 400, "n_rare": 8, "n_test": 150, "data_seed": 0, "test_seed": 1, "n_generated": 200,
           "epochs": 10, "painters": {"free": {"steps": 600}, "stroke": {"steps": 600}}}
SETTINGS = ("real only", "oversampled", "GAN defects (free-form painter)", "GAN defects (stroke painter)")
STORED = Path(__file__).resolve().parents[1] / "assets" / "applications_studies.json"


# ====================================================================== CycleGAN

def cyclegan_run(seed: int, *, progress: bool = False) -> dict:
    """One CycleGAN run of :data:`CYCLEGAN` from ``seed``: the error curve, and the trained model."""
    from coursekit import data
    from coursekit.applications import translation

    cfg = CYCLEGAN
    x_train = data.embedded_mnist("train", limit=cfg["n_train"])[0]
    x_eval = data.embedded_mnist("test", limit=cfg["n_eval"])[0]
    domain_a, domain_b = translation.unpaired_domains(x_train, "thicken", seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cyclegan = translation.CycleGAN(cfg["channels"])
        d_a, d_b = (translation.PatchDiscriminator(cfg["channels"], conditional=False) for _ in range(2))
    history = translation.train_cyclegan(
        cyclegan, d_a, d_b, domain_a, domain_b, steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        identity_weight=cfg["identity_weight"], seed=seed, progress=progress,
        snapshot_every=cfg["snapshot_every"], snapshot_inputs=x_eval)
    truth = translation.translate_domain(x_eval, "thicken")
    error = [float(translation.l1_distance(out, truth)) for out in history["snapshots"]]
    return {"steps": history["snapshot_steps"], "error": error, "cycle": history["cycle"], "model": cyclegan}


def cyclegan_study(*, progress: bool = True) -> dict:
    """:data:`CYCLEGAN` over :data:`SEEDS`, live (default budgets) or stored (fast budgets).

    Returns ``{"seeds", "steps" (snapshot steps), "error": [[|G(a) - T(a)| per snapshot] per seed],
    "nothing": |a - T(a)|, "source"}`` and, live, ``"models"`` (one CycleGAN per seed).
    """
    from coursekit import data, runtime
    from coursekit.applications import translation

    if runtime.fast_budgets():
        return _stored("cyclegan", CYCLEGAN)
    runs = [cyclegan_run(seed, progress=False) for seed in tqdm(SEEDS, desc="CycleGAN seeds", disable=not progress)]
    x_eval = data.embedded_mnist("test", limit=CYCLEGAN["n_eval"])[0]
    nothing = float(translation.l1_distance(x_eval, translation.translate_domain(x_eval, "thicken")))
    return {"seeds": list(SEEDS), "steps": runs[0]["steps"], "error": [r["error"] for r in runs],
            "nothing": nothing, "config": dict(CYCLEGAN), "source": "live", "models": [r["model"] for r in runs]}


# ====================================================================== defects

def defect_data():
    """The study's imbalanced training set and balanced test set (:data:`DEFECTS`)."""
    from coursekit.applications import manufacturing

    cfg = DEFECTS
    train = manufacturing.defect_dataset(cfg["n_normal"], cfg["n_rare"], cfg["n_rare"], seed=cfg["data_seed"])
    test = manufacturing.defect_dataset(cfg["n_test"], cfg["n_test"], cfg["n_test"], seed=cfg["test_seed"])
    return train, test


def defect_run(seed: int) -> dict:
    """Every setting of :data:`SETTINGS` from ``seed`` (painters and classifiers): ``{setting: report}``."""
    from coursekit.applications import manufacturing

    cfg = DEFECTS
    train, test = defect_data()
    defective = train.y > 0
    reports = {}
    for painter, label in (("free", SETTINGS[2]), ("stroke", SETTINGS[3])):
        generator, _ = manufacturing.train_defect_gan(train.x[defective], train.y[defective] - 1, train.x[~defective],
                                                      painter=painter, seed=seed, progress=False,
                                                      **cfg["painters"][painter])
        study = manufacturing.augmentation_study(train, test, generator, n_generated=cfg["n_generated"],
                                                 epochs=cfg["epochs"], seed=seed)
        reports.setdefault(SETTINGS[0], study["real only"])
        reports.setdefault(SETTINGS[1], study["oversampled"])
        reports[label] = study["real + GAN defects"]
    return {name: reports[name] for name in SETTINGS}


def defect_study(*, progress: bool = True) -> dict:
    """:data:`DEFECTS` over :data:`SEEDS`, live (default budgets) or stored (fast budgets).

    Returns ``{"seeds", "reports": {setting: [classification report per seed]}, "source"}``.
    """
    from coursekit import runtime

    if runtime.fast_budgets():
        return _stored("defects", DEFECTS)
    runs = [defect_run(seed) for seed in tqdm(SEEDS, desc="defect study seeds", disable=not progress)]
    return {"seeds": list(SEEDS), "reports": {name: [run[name] for run in runs] for name in SETTINGS},
            "config": json.loads(json.dumps(DEFECTS)), "source": "live"}


def scores(study: Mapping, metric: str = "balanced_accuracy") -> dict[str, list[float]]:
    """``{setting: [metric per seed]}`` of a :func:`defect_study`."""
    return {name: [report[metric] for report in reports] for name, reports in study["reports"].items()}


# ====================================================================== stored results

def _stored(name: str, config: Mapping) -> dict:
    if not STORED.is_file():
        raise CourseKitError(f"The stored studies are missing ({STORED}): run scripts/applications_studies.py, "
                             "or run the notebook without COURSEKIT_FAST to compute them live.")
    stored = json.loads(STORED.read_text())
    study = stored.get("studies", {}).get(name)
    if study is None or study.get("config") != json.loads(json.dumps(config)) or study.get("seeds") != list(SEEDS):
        raise CourseKitError(f"The stored study {name!r} does not match its definition (stale file {STORED}): "
                             "run scripts/applications_studies.py again.")
    return {**study, "source": f"stored: {stored['made_by']}"}


def describe_source(study: Mapping) -> str:
    """One line: which budget made the study's numbers (live, or the stored default run)."""
    if study["source"] == "live":
        return f"computed live in this notebook ({len(study['seeds'])} seeds, the default budgets)."
    return (f"the stored result of the default budgets ({len(study['seeds'])} seeds; {study['source']}): the fast "
            "budgets cannot train that long. Run the notebook without COURSEKIT_FAST to recompute it live.")


def write_stored(*, progress: bool = True) -> Path:
    """Compute every study live (whatever the budget mode) and store it in :data:`STORED`."""
    import platform
    import time

    from coursekit import runtime

    start = time.time()
    with _default_budgets():
        if runtime.fast_budgets():
            raise CourseKitError("Write the stored studies outside nbgrader (NBGRADER_EXECUTION is set).")
        studies = {"cyclegan": cyclegan_study(progress=progress), "defects": defect_study(progress=progress)}
    studies["cyclegan"].pop("models")
    for study in studies.values():
        study.pop("source")
    stored = {"made_by": f"scripts/applications_studies.py, torch {torch.__version__}, CPU ({platform.machine()}), "
                         f"{torch.get_num_threads()} thread(s), {time.time() - start:.0f} s",
              "studies": studies}
    STORED.write_text(json.dumps(stored, indent=1) + "\n")
    return STORED


class _default_budgets:
    """Unset ``COURSEKIT_FAST`` for a block (the stored result is the default budgets' computation)."""

    def __enter__(self):
        import os

        self.saved = os.environ.pop("COURSEKIT_FAST", None)
        return self

    def __exit__(self, *exc):
        import os

        if self.saved is not None:
            os.environ["COURSEKIT_FAST"] = self.saved
