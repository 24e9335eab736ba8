"""Evidence over anecdotes for lecture 06: the comparisons that need several seeds, at the learner's budget.

One GAN run tells little: the same recipe can translate well from one seed and badly from the
next. The claims of lecture 06 that compare two ways of doing something therefore rest on a study
over :data:`SEEDS`, each run at the learner's (default) budget:

- :func:`cyclegan_study`: CycleGAN on the thickening domains (:data:`CYCLEGAN`); the distance of
  ``G(a)`` to the true thickening ``T(a)`` on held-out digits at evenly spaced steps, against doing
  nothing (``a`` itself), and seed 0's translations of one digit per class;
- :func:`defect_study`: the two defect painters (:data:`DEFECTS`): where the free-form painter puts
  its defects (a collapse shows as defects that all sit in one place), what each painter draws, and
  the defect classifier trained on every set of
  :data:`~coursekit.applications.manufacturing.AUGMENTATIONS` with the stroke painter's defects.

With the default budgets they are computed live; with the fast budgets (grading, CI, the site's
quick build) they are read from the stored result of the same computation
(``coursekit/assets/applications_studies.json``, written by ``scripts/applications_studies.py``),
labelled as such; a stored result that does not match the definitions here is refused. The
studies use the digits shipped with coursekit (:func:`coursekit.data.embedded_mnist`) and
scikit-image's textures, so the live and the stored numbers are the same computation everywhere.
Pictures travel as 8-bit images (:func:`pictures`).
"""
from __future__ import annotations

import base64
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
           "epochs": 10, "painter_steps": 600}
PICTURES = 8          # images kept per row of a study's pictures
STORED = Path(__file__).resolve().parents[1] / "assets" / "applications_studies.json"


# ====================================================================== pictures as plain data

def _encode(images: torch.Tensor) -> dict:
    """``(N, 1, H, W)`` in [0, 1] -> 8-bit, base64 (what a stored study keeps of its pictures)."""
    pixels = (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    return {"shape": list(pixels.shape), "uint8": base64.b64encode(pixels.numpy().tobytes()).decode("ascii")}


def _decode(encoded: Mapping) -> torch.Tensor:
    raw = torch.frombuffer(bytearray(base64.b64decode(encoded["uint8"])), dtype=torch.uint8)
    return raw.reshape(encoded["shape"]).float() / 255


def pictures(study: Mapping, name: str) -> torch.Tensor:
    """The images ``name`` kept with a study: ``(N, 1, 28, 28)`` in [0, 1] (8-bit precision)."""
    if name not in study.get("pictures", {}):
        raise CourseKitError(f"The study keeps no pictures called {name!r}: {', '.join(study.get('pictures', {}))}.")
    return _decode(study["pictures"][name])


def demo_digits() -> torch.Tensor:
    """One held-out digit of each class 0-7 (the first of its class among the shipped test digits)."""
    from coursekit import data

    x, y = data.embedded_mnist("test", limit=CYCLEGAN["n_eval"])
    return torch.stack([x[(y == digit).nonzero()[0, 0]] for digit in range(PICTURES)])


# ====================================================================== CycleGAN

def cyclegan_run(seed: int, *, progress: bool = False) -> dict:
    """One CycleGAN run of :data:`CYCLEGAN` from ``seed``: its error curve and the trained model."""
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
    return {"steps": history["snapshot_steps"], "error": error, "model": cyclegan}


def cyclegan_study(*, progress: bool = True) -> dict:
    """:data:`CYCLEGAN` over :data:`SEEDS`, live (default budgets) or stored (fast budgets).

    Returns ``{"seeds", "steps" (snapshot steps), "error": [[|G(a) - T(a)| per snapshot] per seed],
    "nothing": |a - T(a)|, "pictures": {"a", "G(a)", "F(G(a))", "T(a)"} (seed 0, :func:`demo_digits`),
    "config", "source"}``.
    """
    from coursekit import data, runtime
    from coursekit.applications import translation

    if runtime.fast_budgets():
        return _stored("cyclegan", CYCLEGAN)
    runs = [cyclegan_run(seed) for seed in tqdm(SEEDS, desc="CycleGAN, seeds", disable=not progress)]
    x_eval = data.embedded_mnist("test", limit=CYCLEGAN["n_eval"])[0]
    nothing = float(translation.l1_distance(x_eval, translation.translate_domain(x_eval, "thicken")))
    a = demo_digits()
    model = runs[0]["model"]
    g_a = translation.translate(model.g_ab, a)
    shown = {"a": a, "G(a)": g_a, "F(G(a))": translation.translate(model.g_ba, g_a),
             "T(a)": translation.translate_domain(a, "thicken")}
    return {"seeds": list(SEEDS), "steps": runs[0]["steps"], "error": [r["error"] for r in runs],
            "nothing": nothing, "pictures": {k: _encode(v) for k, v in shown.items()},
            "config": dict(CYCLEGAN), "source": "live"}


# ====================================================================== defects

def defect_data():
    """The study's imbalanced training set and balanced test set (:data:`DEFECTS`)."""
    from coursekit.applications import manufacturing

    cfg = DEFECTS
    train = manufacturing.defect_dataset(cfg["n_normal"], cfg["n_rare"], cfg["n_rare"], seed=cfg["data_seed"])
    test = manufacturing.defect_dataset(cfg["n_test"], cfg["n_test"], cfg["n_test"], seed=cfg["test_seed"])
    return train, test


def centre_spread(change: torch.Tensor) -> float:
    """How far defects sit from their average place: the mean over rows and columns of the standard
    deviation of :func:`~coursekit.applications.manufacturing.change_centres` (pixels)."""
    from coursekit.applications import manufacturing

    return float(manufacturing.change_centres(change).std(0).mean())


def defect_run(seed: int) -> dict:
    """Both painters trained from ``seed``; the free-form one's centre spread, what each paints on the
    first :data:`PICTURES` normal patches, and the classifier on every augmented set (stroke painter)."""
    from coursekit.applications import manufacturing

    cfg = DEFECTS
    train, test = defect_data()
    defective, normals = train.y > 0, train.x[train.y == 0]
    run = {"spread": {}, "pictures": {}}
    for painter in ("free", "stroke"):
        generator, _ = manufacturing.train_defect_gan(train.x[defective], train.y[defective] - 1, normals,
                                                      painter=painter, steps=cfg["painter_steps"], seed=seed,
                                                      progress=False)
        painted = {kind: manufacturing.generate_defects(generator, normals, kind, seed=3)
                   for kind in manufacturing.DEFECT_KINDS}
        run["spread"][painter] = {kind: centre_spread((x - normals).abs()) for kind, x in painted.items()}
        for kind, x in painted.items():
            run["pictures"][f"{painter} {kind}"] = _encode(x[:PICTURES])
        if painter == "stroke":
            run["reports"] = manufacturing.augmentation_study(train, test, generator, n_generated=cfg["n_generated"],
                                                              epochs=cfg["epochs"], seed=seed)
    return run


def defect_study(*, progress: bool = True) -> dict:
    """:data:`DEFECTS` over :data:`SEEDS`, live (default budgets) or stored (fast budgets).

    Returns ``{"seeds", "reports": {setting: [classification report per seed]}, "spread": {painter:
    {kind: [centre spread per seed]}}, "real_spread": {kind: centre spread of the real defects},
    "pictures": {"<painter> <kind> <seed>": images}, "config", "source"}``.
    """
    from coursekit import runtime
    from coursekit.applications import manufacturing

    if runtime.fast_budgets():
        return _stored("defects", DEFECTS)
    runs = [defect_run(seed) for seed in tqdm(SEEDS, desc="defect study, seeds", disable=not progress)]
    train, _ = defect_data()
    return {"seeds": list(SEEDS),
            "reports": {name: [run["reports"][name] for run in runs] for name in manufacturing.AUGMENTATIONS},
            "spread": {painter: {kind: [run["spread"][painter][kind] for run in runs]
                                 for kind in manufacturing.DEFECT_KINDS} for painter in ("free", "stroke")},
            "real_spread": {kind: centre_spread(train.masks[train.y == k])
                            for k, kind in enumerate(manufacturing.DEFECT_KINDS, start=1)},
            "pictures": {f"{name} {seed}": images for seed, run in zip(SEEDS, runs)
                         for name, images in run["pictures"].items()},
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
    """Compute every study with the default budgets and store it in :data:`STORED`."""
    import os
    import platform
    import time

    if "NBGRADER_EXECUTION" in os.environ:
        raise CourseKitError("Write the stored studies outside nbgrader (NBGRADER_EXECUTION is set).")
    start = time.time()
    saved = os.environ.pop("COURSEKIT_FAST", None)        # the stored result is the default budgets' computation
    try:
        studies = {"cyclegan": cyclegan_study(progress=progress), "defects": defect_study(progress=progress)}
    finally:
        if saved is not None:
            os.environ["COURSEKIT_FAST"] = saved
    for study in studies.values():
        study.pop("source")
    stored = {"made_by": f"scripts/applications_studies.py, torch {torch.__version__}, CPU ({platform.machine()}), "
                         f"{torch.get_num_threads()} thread(s), {time.time() - start:.0f} s",
              "studies": studies}
    STORED.write_text(json.dumps(stored, indent=1) + "\n")
    return STORED
