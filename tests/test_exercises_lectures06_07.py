"""The deep exercises of lectures 06-07 grade fairly: correct answers written differently pass, every known
mistake gets its own hint, library shortcuts are named, and the result's form is checked. (The reference, the
ladder's solution and the misconception bank are also covered for every exercise by tests/test_exercises.py.)"""
import csv
import warnings

import pytest
import torch
import torch.nn.functional as F

from coursekit import annotation, exercises, gan
from coursekit.applications import translation

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ASSIGNMENT = {"ex-pix2pix-step": "06", "ex-annotation-accuracy": "07"}


def judged(exercise_id: str, fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")               # the probes' half-written rows make readers warn
        return exercises.diagnose(exercises.get(ASSIGNMENT[exercise_id], exercise_id), fn)


@pytest.mark.parametrize("exercise_id", list(ASSIGNMENT))
def test_every_known_mistake_gets_its_own_hint(exercise_id):
    exercise = exercises.get(ASSIGNMENT[exercise_id], exercise_id)
    assert len(exercise.misconceptions) >= 4
    assert len({m.hint for m in exercise.misconceptions}) == len(exercise.misconceptions)
    for mistake in exercise.misconceptions:
        result = judged(exercise_id, mistake.wrong)
        assert not result.ok and result.message == mistake.hint, (mistake.name, result.message)


# ---------------------------------------------------------------- 06: one pix2pix training step

def pix2pix_with_gan_losses(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
    """coursekit's GAN losses on the flattened patch logits; G's output computed twice."""
    fake = generator(source).detach()
    d_loss = gan.discriminator_loss(discriminator(target, source).flatten(), discriminator(fake, source).flatten())
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    fake = generator(source)
    g_loss = (gan.non_saturating_generator_loss(discriminator(fake, source).flatten())
              + l1_weight * F.l1_loss(fake, target))
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    return {"d_loss": float(d_loss), "g_loss": float(g_loss)}


def pix2pix_with_softplus(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
    """log D = -softplus(-l) by hand, autograd.grad instead of backward() for the discriminator."""
    fake = generator(source)
    real_logits, fake_logits = discriminator(target, source), discriminator(fake.detach(), source)
    d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    d_params = list(discriminator.parameters())
    for p, grad in zip(d_params, torch.autograd.grad(d_loss, d_params)):
        p.grad = grad
    d_optimizer.step()
    g_loss = F.softplus(-discriminator(fake, source)).mean() + l1_weight * (fake - target).abs().flatten(1).mean(1).mean()
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_optimizer.step()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}


@pytest.mark.parametrize("answer", [pix2pix_with_gan_losses, pix2pix_with_softplus])
def test_other_correct_pix2pix_steps_are_accepted(answer):
    result = judged("ex-pix2pix-step", answer)
    assert result.ok, result.message


def test_pix2pix_shortcuts_and_forms_are_named():
    def library(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
        return translation.pix2pix_step(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight)
    assert judged("ex-pix2pix-step", library).kind == "shortcut"

    def gan_steps(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
        judge = translation.patch_logits(discriminator, source)
        d = gan.discriminator_step(generator, judge, d_optimizer, target, source)
        g = gan.generator_step(generator, judge, g_optimizer, source,
                               extra_loss=lambda fake: l1_weight * (fake - target).abs().mean())
        return {"d_loss": d["d_loss"], "g_loss": g["g_loss"]}
    assert judged("ex-pix2pix-step", gan_steps).kind == "shortcut"

    def tensors(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
        out = pix2pix_with_gan_losses(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight)
        return {key: torch.tensor(value) for key, value in out.items()}
    result = judged("ex-pix2pix-step", tensors)
    assert result.kind == "type" and "float" in result.message


def test_a_pix2pix_step_that_never_reaches_g_is_named():
    def detached_everywhere(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
        fake = generator(source).detach()              # detached once, for both updates: G never learns
        d_loss = gan.discriminator_loss(discriminator(target, source).flatten(), discriminator(fake, source).flatten())
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()
        g_loss = gan.non_saturating_generator_loss(discriminator(fake, source).flatten()) + l1_weight * F.l1_loss(fake, target)
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
    result = judged("ex-pix2pix-step", detached_everywhere)
    assert not result.ok and "No gradient reaches G" in result.message, result.message


# ---------------------------------------------------------------- 07: accuracy per annotator from CSV files

def wilson_lower(k, n, z=1.96):
    """Exercise 1's answer, as a student would have written it (the library's Wilson bound is a shortcut here)."""
    p = k / n
    centre, half = p + z * z / (2 * n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return max(0.0, (centre - half) / (1 + z * z / n))


def accuracy_with_dictreader(paths, z=1.96):
    """csv.DictReader, collections.Counter, and Exercise 1's Wilson bound for both ends of the interval."""
    from collections import Counter

    right, answers = Counter(), Counter()
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if None in row.values() or None in row:      # a short row: DictReader fills None
                    continue
                answers[row["annotator"]] += 1
                right[row["annotator"]] += row["truth"].strip().lower() == row["answer"].strip().lower()
    return {name: (right[name] / n, wilson_lower(right[name], n, z), 1 - wilson_lower(n - right[name], n, z))
            for name, n in answers.items()}


def accuracy_with_lists(paths, z=1.96):
    """All rows first, then one pass per annotator; the Wilson bound written inline, both ends."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows += [r for r in list(csv.reader(f))[1:] if len(r) == 5]
    result = {}
    for name in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == name]
        k, n = sum(r[2].strip().lower() == r[3].strip().lower() for r in mine), len(mine)
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
        result[name] = (p, max(0.0, centre - half), min(1.0, centre + half))
    return result


def _counts(paths):
    """{annotator: (accuracy, n)} of the complete rows (a helper for the shortcut answers below)."""
    return {name: (acc, n) for name, (acc, n) in
            ((name, (triple[0], sum(1 for path in paths for r in csv.reader(open(path, newline=""))
                                    if len(r) == 5 and r[0] == name)))
             for name, triple in accuracy_with_lists(paths).items())}


@pytest.mark.parametrize("answer", [accuracy_with_dictreader, accuracy_with_lists])
def test_other_correct_annotation_readers_are_accepted(answer):
    result = judged("ex-annotation-accuracy", answer)
    assert result.ok, result.message


def test_annotation_shortcuts_and_forms_are_named():
    assert judged("ex-annotation-accuracy", lambda paths, z=1.96: annotation.accuracy_per_annotator(paths, z)).kind \
        == "shortcut"

    def with_the_reader(paths, z=1.96):
        summary = annotation.annotation_summary(annotation.read_annotations(paths), z)["per_annotator"]
        return {name: (s["accuracy"], *s["accuracy_ci"]) for name, s in summary.items()}
    assert judged("ex-annotation-accuracy", with_the_reader).kind == "shortcut"

    def library_wilson(paths, z=1.96):                 # the counting by hand, the interval from coursekit
        return {name: (acc, *annotation.wilson_interval(round(acc * n), n, z))
                for name, (acc, n) in _counts(paths).items()}
    assert judged("ex-annotation-accuracy", library_wilson).kind == "shortcut"

    def scipy_wilson(paths, z=1.96):                   # scipy's binomial test has a Wilson interval too
        from scipy.stats import binomtest, norm

        out = {}
        for name, (acc, n) in _counts(paths).items():
            ci = binomtest(round(acc * n), n).proportion_ci(confidence_level=2 * norm.cdf(z) - 1, method="wilson")
            out[name] = (acc, float(ci.low), float(ci.high))
        return out
    result = judged("ex-annotation-accuracy", scipy_wilson)
    assert result.kind == "shortcut" and "scipy" in result.message, result.message

    def a_list(paths, z=1.96):
        return list(accuracy_with_dictreader(paths, z).items())
    result = judged("ex-annotation-accuracy", a_list)
    assert result.kind == "type" and "dict" in result.message

    def two_numbers(paths, z=1.96):
        return {name: (acc, low) for name, (acc, low, _) in accuracy_with_dictreader(paths, z).items()}
    result = judged("ex-annotation-accuracy", two_numbers)
    assert result.kind == "type" and "(accuracy, low, high)" in result.message
