"""The exercise registry grades fairly: the reference passes, every known mistake is rejected with its
own hint, shortcuts are named, nothing hidden reaches students, stochastic bands are reproducible."""
import math
import re
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from coursekit import attacks, defenses, exercises, feedback, gan, linear, transfer, zoo
from coursekit.exercises import runner
from coursekit.applications import private, superres, translation

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ["01_adversarial_examples", "02_linear_explanation", "03_defenses_transferability", "04_gan_game",
            "05_gan_training_tips", "06_gan_applications", "07_evaluating_gans"]
sys.path.insert(0, str(ROOT / "scripts"))
import calibrate_bands  # noqa: E402
import make_example_submissions  # noqa: E402

KEYS = sorted(k for k in exercises.EXERCISES if k[0] in LECTURES)
MISCONCEPTIONS = [(k, m.name) for k in KEYS for m in exercises.EXERCISES[k].misconceptions]


def source_notebook(assignment):
    return nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)


def released_notebook(assignment):
    return nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)


def define(source: str, name: str, earlier: dict | None = None):
    """Run an answer cell's source the way a notebook would and return the function it defines.
    ``earlier``: {grade id: source} of the notebook's other answers, run first (in the notebook an
    answer may call another one)."""
    namespace = {"torch": torch, "nn": torch.nn, "F": F, "attacks": attacks, "defenses": defenses, "linear": linear,
                 "transfer": transfer, "zoo": zoo, "gan": gan}
    for grade_id, other in (earlier or {}).items():
        exec(compile(other, f"<answer {grade_id}>", "exec"), namespace)
    exec(compile(source, f"<answer {name}>", "exec"), namespace)
    return namespace[name]


def solutions(assignment) -> dict:
    return make_example_submissions.solution_sources(source_notebook(assignment))


def test_every_graded_exercise_of_every_lecture_is_registered_and_graded_by_the_registry():
    graded = sorted(p.parent.name for p in ROOT.glob("solutions/*/*.ipynb")
                    if any(c.metadata.get("nbgrader", {}).get("solution")
                           for c in nbformat.read(p, as_version=4).cells))
    assert graded == LECTURES
    for assignment in LECTURES:
        nb = source_notebook(assignment)
        ids = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if c.metadata.get("nbgrader")}
        answers = [g for g, c in ids.items() if c.metadata["nbgrader"].get("solution")]
        assert len(answers) >= 3
        for grade_id in answers:
            assert (assignment, grade_id) in exercises.EXERCISES, f"{assignment}/{grade_id} is not in the registry"
            hidden = ids[f"{grade_id}-hidden"].source
            assert f'_exercises.grade("{assignment}", "{grade_id}", globals())' in hidden
            assert hidden.index("### BEGIN HIDDEN TESTS") < hidden.index("grade(") < hidden.index("### END HIDDEN TESTS")


@pytest.mark.parametrize("key", KEYS, ids="/".join)
def test_the_notebook_solution_and_the_ladder_solution_pass(key):
    exercise = exercises.EXERCISES[key]
    answers = solutions(key[0])
    others = {k: v for k, v in answers.items() if k != key[1]}
    from_notebook = define(answers[key[1]], exercise.function, others)
    assert exercises.diagnose(exercise, from_notebook).ok, exercises.diagnose(exercise, from_notebook).message
    exercises.grade(*key, {exercise.function: from_notebook})            # no AssertionError
    from_ladder = define(exercise.hints[2], exercise.function, others)
    assert exercises.diagnose(exercise, from_ladder).ok


@pytest.mark.parametrize("key,name", MISCONCEPTIONS, ids=lambda v: "/".join(v) if isinstance(v, tuple) else v)
def test_every_known_mistake_is_rejected_with_its_own_hint(key, name):
    exercise = exercises.EXERCISES[key]
    misconception = next(m for m in exercise.misconceptions if m.name == name)
    result = exercises.diagnose(exercise, misconception.wrong)
    assert not result.ok and result.kind == "misconception" and result.misconception == name, result
    with pytest.raises(AssertionError) as err:
        exercises.grade(*key, {exercise.function: misconception.wrong})
    message = str(err.value)
    assert message == misconception.hint and "\n" not in message and "Traceback" not in message


def test_hints_are_distinct_and_the_ladder_has_three_rungs():
    for key in KEYS:
        exercise = exercises.EXERCISES[key]
        hints = [m.hint for m in exercise.misconceptions]
        assert len(hints) >= 3 and len(set(hints)) == len(hints), key
        assert len(exercise.hints) == 3 and f"def {exercise.function}(" in exercise.hints[2], key
        assert f"def {exercise.function}(" not in exercise.hints[0] + exercise.hints[1], key


def test_the_example_mistakes_are_named_as_misconceptions():
    """carol_wrong's answers (scripts/make_example_submissions.py) get a hint, not a generic failure. The
    edits of one answer apply together, as the script applies them (06's pix2pix step swaps the pair in
    all three calls of D: one mistake)."""
    for assignment, mistakes in make_example_submissions.MISTAKES.items():
        if assignment not in LECTURES:
            continue
        answers = solutions(assignment)
        carol = dict(answers)
        for grade_id, good, bad in mistakes:
            assert good in carol[grade_id], (grade_id, good)
            carol[grade_id] = carol[grade_id].replace(good, bad)
        for grade_id in dict.fromkeys(grade_id for grade_id, _, _ in mistakes):
            exercise = exercises.get(assignment, grade_id)
            others = {k: v for k, v in answers.items() if k != grade_id}
            wrong = define(carol[grade_id], exercise.function, others)
            result = exercises.diagnose(exercise, wrong)
            assert result.kind == "misconception", (assignment, grade_id, result)


# ---------------------------------------------------------------- fair: other correct answers pass

def _projection_clip_first(x_adv, x, eps):
    return x + (x_adv.clamp(0, 1) - x).clamp(-eps, eps)


def _projection_min_max(x_adv, x, eps):
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)


def _fgsm_summed(model, x, y, eps):
    model.eval()
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), y, reduction="sum").backward()
    return torch.clamp(x.detach() + eps * torch.sign(x.grad), 0, 1)


def _fast_at_other_draw(model, x, y, eps, alpha, generator):
    start = (x + torch.empty_like(x).uniform_(-eps, eps, generator=generator)).clamp(0, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(start), y, reduction="sum"), start)
    return torch.min(torch.max(start.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)


def _flip_numpy_style(W, b, x, y, t):
    diff = (W[y] - W[t]).numpy()
    return float((diff @ x.numpy() + float(b[y] - b[t])) / abs(diff).sum())


def _transfer_masked_mean(target_model, x_adv, x, y):
    correct = target_model(x).argmax(1).eq(y)
    return target_model(x_adv[correct]).argmax(1).ne(y[correct]).float().mean().item()


def _value_with_masks(p_data, p_g, dx):
    value = 0.0
    for p, q in zip(p_data.tolist(), p_g.tolist()):      # point by point, skipping the zero terms
        if p > 0:
            value += p * math.log(p / (p + q)) * dx
        if q > 0:
            value += q * math.log(q / (p + q)) * dx
    return value


def _value_with_eps_and_nansum(p_data, p_g, dx):
    d = p_data / (p_data + p_g)
    return float(((p_data * torch.log(d + 1e-30) + p_g * torch.log(1 - d + 1e-30)) * dx).nansum())


def _d_loss_with_bce(real_logits, fake_logits):
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def _training_step_own_noise(G, D, opt_g, opt_d, real_batches, noise_batches):
    """Draws its own noise (not the batches given): judged by the calibrated bands, not output for output."""
    d_losses = []
    for real in real_batches:
        fake = G(torch.randn(len(real), 4)).detach()
        loss = _d_loss_with_bce(D(real), D(fake))
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        d_losses.append(loss.item())
    g_loss = -F.logsigmoid(D(G(torch.randn(len(real_batches[0]), 4)))).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return {"d_loss": sum(d_losses) / len(d_losses), "g_loss": g_loss.item()}


def _training_step_no_grad_fakes(G, D, opt_g, opt_d, real_batches, noise_batches):
    k = len(real_batches)
    with torch.no_grad():                           # another way to hold G fixed
        fakes = [G(z) for z in noise_batches[:k]]
    d_losses = []
    for real, fake in zip(real_batches, fakes):
        opt_d.zero_grad(set_to_none=False)
        loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        loss.backward()
        opt_d.step()
        d_losses.append(loss.item())
    opt_g.zero_grad()
    g_loss = F.softplus(-D(G(noise_batches[k]))).mean()
    g_loss.backward()
    opt_g.step()
    return {"d_loss": sum(d_losses) / k, "g_loss": g_loss.item()}


def _smoothing_by_hand(real_logits, fake_logits, smooth=0.9):
    real = smooth * F.softplus(-real_logits) + (1 - smooth) * F.softplus(real_logits)
    return real.mean() + F.softplus(fake_logits).mean()


def _vbn_by_concatenation(x, reference, eps=1e-5):
    rows = []
    for example in x:
        batch = torch.cat([reference, example[None]])        # the example joins the reference batch
        rows.append((example - batch.mean(0)) / torch.sqrt(batch.var(0, unbiased=False) + eps))
    return torch.stack(rows)


def _psnr_per_image_loop(x, y):
    return torch.stack([-10 * torch.log10(F.mse_loss(a, b)) for a, b in zip(x, y)])


def _nearest_by_broadcasting(queries, references):
    q, r = queries.flatten(1), references.flatten(1)
    return ((q[:, None, :] - r[None, :, :]) ** 2).sum(-1).sqrt().min(1).values


@pytest.mark.parametrize("key,answer", [
    (("01_adversarial_examples", "ex3-projection"), _projection_clip_first),
    (("01_adversarial_examples", "ex3-projection"), _projection_min_max),
    (("01_adversarial_examples", "ex2-fgsm"), _fgsm_summed),
    (("02_linear_explanation", "ex1-worst-perturbation"), lambda w, eps: torch.where(w > 0, eps, -eps) * (w != 0)),
    (("02_linear_explanation", "ex3-min-flip"), _flip_numpy_style),
    (("03_defenses_transferability", "ex2-fast-at"), _fast_at_other_draw),
    (("03_defenses_transferability", "ex3-transfer"), _transfer_masked_mean),
    (("04_gan_game", "ex1-d-loss"), _d_loss_with_bce),
    (("04_gan_game", "ex2-value-at-optimum"), _value_with_masks),
    (("04_gan_game", "ex2-value-at-optimum"), _value_with_eps_and_nansum),
    (("04_gan_game", "ex3-ns-loss"), lambda l: -F.logsigmoid(l).mean()),
    (("05_gan_training_tips", "ex1-training-step"), _training_step_own_noise),
    (("05_gan_training_tips", "ex1-training-step"), _training_step_no_grad_fakes),
    (("05_gan_training_tips", "ex2-smoothing"), _smoothing_by_hand),
    (("05_gan_training_tips", "ex3-vbn"), _vbn_by_concatenation),
    (("06_gan_applications", "ex1-cycle-loss"), lambda x, r: F.l1_loss(r, x)),
    (("06_gan_applications", "ex2-psnr"), _psnr_per_image_loop),
    (("06_gan_applications", "ex3-nearest-neighbour"), _nearest_by_broadcasting),
], ids=lambda v: v.__name__ if callable(v) else v[1])
def test_other_correct_answers_are_accepted(key, answer):
    result = exercises.diagnose(exercises.EXERCISES[key], answer)
    assert result.ok, result.message


def test_a_stochastic_answer_outside_the_bands_is_rejected_and_the_bands_are_stored():
    exercise = exercises.get("03", "ex2-fast-at")

    def random_start_only(model, x, y, eps, alpha, generator):
        return (x + (torch.rand(x.shape, generator=generator) * 2 - 1) * eps).clamp(0, 1)

    result = exercises.diagnose(exercise, random_start_only)
    assert not result.ok and "outside the range" in result.message
    stored = exercises.bands(exercise)
    assert stored["seeds"] == exercise.bands.seeds >= 20
    assert (ROOT / "solutions" / exercise.assignment / "bands.json").is_file()


def test_a_training_step_is_judged_on_fresh_state_with_clear_messages_for_its_form():
    exercise = exercises.get("05", "ex1-training-step")

    def tensors_not_floats(G, D, opt_g, opt_d, real_batches, noise_batches):
        out = _training_step_no_grad_fakes(G, D, opt_g, opt_d, real_batches, noise_batches)
        return {key: torch.tensor(value) for key, value in out.items()}

    result = exercises.diagnose(exercise, tensors_not_floats)
    assert result.kind == "type" and "Python floats (loss.item())" in result.message
    result = exercises.diagnose(exercise, lambda G, D, opt_g, opt_d, reals, noise: (1.0, 2.0))
    assert result.kind == "type" and "dict with the keys 'd_loss' and 'g_loss'" in result.message

    def own_noise_minimax(G, D, opt_g, opt_d, real_batches, noise_batches):
        out = _training_step_own_noise(G, D, opt_g, opt_d, real_batches[:-1] or real_batches, noise_batches)
        return out

    # its own noise AND one D step too few: no misconception matches output for output, the bands catch it
    three = exercises.diagnose(exercise, own_noise_minimax)
    assert not three.ok, three
    # the probes are rebuilt for every answer: running the reference twice gives the same outputs
    probe = runner.Call(name="adam", args=(1, 3, "adam"), harness=exercise.harness)
    first = runner.call_once(exercise.reference, probe)
    assert first.status == "ok" and (first.output == runner.call_once(exercise.reference, probe).output).all()


def _step_variant(noise_for_d, noise_for_g, zero_grad_g=True, clear_after=False):
    def step(G, D, opt_g, opt_d, real_batches, noise_batches):
        d_losses = []
        for i, real in enumerate(real_batches):
            fake = G(noise_for_d(noise_batches, i)).detach()
            loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
            if not clear_after:
                opt_d.zero_grad()
            loss.backward()
            opt_d.step()
            if clear_after:
                opt_d.zero_grad()
            d_losses.append(loss.item())
        g_loss = F.softplus(-D(G(noise_for_g(noise_batches)))).mean()
        if zero_grad_g and not clear_after:
            opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if clear_after:
            opt_g.zero_grad()
        return {"d_loss": sum(d_losses) / len(d_losses), "g_loss": g_loss.item()}
    return step


@pytest.mark.parametrize("answer,named", [
    (_step_variant(lambda n, i: n[-1], lambda n: n[-1]), "noise batches mixed up"),
    (_step_variant(lambda n, i: n[i], lambda n: n[0]), "noise batches mixed up"),
    (_step_variant(lambda n, i: n[i], lambda n: n[-2]), "noise batches mixed up"),
    (_step_variant(lambda n, i: n[i], lambda n: n[-1], zero_grad_g=False), "generator gradients not cleared"),
    # zero_grad AFTER step: the generator step's gradients in D leak into the next call's first D step
    (_step_variant(lambda n, i: n[i], lambda n: n[-1], clear_after=True), None),
], ids=["d-last-noise", "g-first-noise", "g-reuses-d-noise", "no-opt-g-zero-grad", "zero-grad-after-step"])
def test_training_step_answers_that_misuse_the_noise_or_the_gradients_are_rejected(answer, named):
    """Two consecutive steps per probe (as in a training loop), so leftover gradients show; an answer
    that reads noise_batches must use them exactly as Algorithm 1 does (the bands are only for answers
    that draw their own noise)."""
    result = exercises.diagnose(exercises.get("05", "ex1-training-step"), answer)
    assert not result.ok, result
    if named:
        assert result.misconception == named, result


def test_a_check_leaves_the_notebooks_random_state_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    exercises.diagnose(exercises.get("05", "ex1-training-step"), _training_step_own_noise)
    exercises.diagnose(exercises.get("01", "ex2-fgsm"), exercises.get("01", "ex2-fgsm").misconceptions[-1].wrong)
    assert torch.equal(torch.rand(3), expected)


def test_shape_messages_do_not_quote_the_hidden_probes():
    result = exercises.diagnose(exercises.get("06", "ex2-psnr"), lambda x, y: 10 * torch.log10(1 / ((x - y) ** 2).mean()))
    assert result.kind == "type" and "one PSNR per image" in result.message
    assert not re.search(r"\(\d+,", result.message)


@pytest.mark.slow    # recalibrates every exercise's bands (~8 s): make test-fast skips it
def test_regenerating_the_bands_gives_the_stored_file():
    assert calibrate_bands.main(["--check"]) == 0, "solutions/*/bands.json is stale: run scripts/calibrate_bands.py"


# ---------------------------------------------------------------- shortcuts

def _alias_fgsm(model, x, y, eps):
    from coursekit.attacks import fgsm as helper
    return helper(model, x, y, eps)


def _torchattacks_fgsm(model, x, y, eps):
    import torchattacks
    return torchattacks.FGSM(model, eps=eps)(x, y)


def _fast_at_via_fgsm(model, x, y, eps, alpha, generator):
    start = (x + (torch.rand(x.shape, generator=generator) * 2 - 1) * eps).clamp(0, 1)
    return attacks.project_linf(attacks.fgsm(model, start, y, alpha), x, eps)


def _transfer_via_matrix(target_model, x_adv, x, y):
    result = transfer.transfer_matrix({"s": target_model}, {"t": target_model}, x, y, attack=lambda m, a, b: x_adv)
    return float(result["success"][0][0])


def _step_via_library(G, D, opt_g, opt_d, real_batches, noise_batches):
    d = [gan.discriminator_step(G, D, opt_d, r, z)["d_loss"] for r, z in zip(real_batches, noise_batches)]
    return {"d_loss": sum(d) / len(d), "g_loss": gan.generator_step(G, D, opt_g, noise_batches[-1])["g_loss"]}


def _vbn_via_layer(x, reference, eps=1e-5):
    layer = gan.VirtualBatchNorm(x.shape[1], eps)
    layer.set_reference(reference)
    return layer(x).detach()


@pytest.mark.parametrize("key,answer,called", [
    (("01_adversarial_examples", "ex2-fgsm"), lambda m, x, y, e: attacks.fgsm(m, x, y, e), "coursekit.attacks.fgsm"),
    (("01_adversarial_examples", "ex2-fgsm"), _alias_fgsm, "coursekit.attacks.fgsm"),
    (("01_adversarial_examples", "ex2-fgsm"), _torchattacks_fgsm, "torchattacks"),
    (("01_adversarial_examples", "ex3-projection"), attacks.project_linf, "coursekit.attacks.project_linf"),
    (("02_linear_explanation", "ex2-fgsm-logistic"), lambda w, x, y, e: linear.fgsm_linear(w, 0.0, x, y.long(), e),
     "coursekit.linear.fgsm_linear"),
    (("03_defenses_transferability", "ex1-bypass-loss"),
     lambda z, d, y, lam: defenses.bypass_loss(z, d, y, lam, kind="ce"), "coursekit.defenses.bypass_loss"),
    (("03_defenses_transferability", "ex2-fast-at"), _fast_at_via_fgsm, "coursekit.attacks.fgsm"),
    (("03_defenses_transferability", "ex3-transfer"), _transfer_via_matrix, "coursekit.transfer.transfer_matrix"),
    (("04_gan_game", "ex1-d-loss"), lambda r, f: gan.discriminator_loss(r, f), "coursekit.gan.losses.discriminator_loss"),
    (("04_gan_game", "ex2-value-at-optimum"), lambda p, q, dx: gan.value_at_optimal_discriminator(p, q, dx),
     "coursekit.gan.theory.value_at_optimal_discriminator"),
    (("04_gan_game", "ex3-ns-loss"), lambda l: gan.non_saturating_generator_loss(l),
     "coursekit.gan.losses.non_saturating_generator_loss"),
    (("05_gan_training_tips", "ex1-training-step"), _step_via_library, "coursekit.gan.training.discriminator_step"),
    (("05_gan_training_tips", "ex2-smoothing"), lambda r, f, smooth=0.9: gan.discriminator_loss(r, f, real_label=smooth),
     "coursekit.gan.losses.discriminator_loss"),
    (("05_gan_training_tips", "ex3-vbn"), _vbn_via_layer, "coursekit.gan.vbn.VirtualBatchNorm"),
    (("06_gan_applications", "ex1-cycle-loss"), translation.cycle_consistency_loss,
     "coursekit.applications.translation.cycle_consistency_loss"),
    (("06_gan_applications", "ex2-psnr"), lambda x, y: superres.psnr(x, y), "coursekit.applications.superres.psnr"),
    (("06_gan_applications", "ex3-nearest-neighbour"), private.nearest_neighbour_distances,
     "coursekit.applications.private.nearest_neighbour_distances"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_an_answer_that_calls_the_library_is_named_a_shortcut(key, answer, called):
    pytest.importorskip("torchattacks") if called == "torchattacks" else None
    exercise = exercises.EXERCISES[key]
    result = exercises.diagnose(exercise, answer)
    assert result.kind == "shortcut" and called in result.message, result
    assert f"write {exercise.function} yourself" in result.message


# ---------------------------------------------------------------- clear messages, never a traceback

def test_an_fgsm_that_leaves_a_dropout_model_in_train_mode_is_named():
    exercise = exercises.get("01", "ex2-fgsm")

    def no_eval(model, x, y, eps):
        x = x.clone().requires_grad_(True)
        F.cross_entropy(model(x), y).backward()
        return (x + eps * x.grad.sign()).clamp(0, 1).detach()

    result = exercises.diagnose(exercise, no_eval)
    assert result.misconception == "model left in train mode" and "eval()" in result.message


def test_missing_unanswered_crashing_and_mistyped_answers_get_clear_messages():
    key = ("01_adversarial_examples", "ex2-fgsm")
    with pytest.raises(AssertionError, match="my_fgsm is not defined: run the cell with your answer"):
        exercises.grade(*key, {"something_else": 1})           # deleted or moved below the check

    def unanswered(model, x, y, eps):
        raise NotImplementedError()

    def crashes(model, x, y, eps):
        return x + eps * undefined_name  # noqa: F821

    def returns_numpy(model, x, y, eps):
        return x.numpy()

    messages = {f.__name__: exercises.diagnose(exercises.EXERCISES[key], f).message
                for f in (unanswered, crashes, returns_numpy)}
    assert "not answered yet" in messages["unanswered"]
    assert messages["crashes"] == "my_fgsm raised NameError: name 'undefined_name' is not defined"
    assert "must return a torch.Tensor, not ndarray" in messages["returns_numpy"]
    with pytest.raises(AssertionError, match="must be a function"):
        exercises.grade(*key, {"my_fgsm": 3})


def test_the_answer_cannot_change_the_models_mode_for_the_rest_of_the_notebook():
    model = zoo.load("mnist_cnn").train()

    def sets_eval(m, x, y, eps):
        m.eval()
        return x

    run = runner.call_once(sets_eval, runner.Call(name="probe", args=(model, torch.zeros(1, 1, 28, 28),
                                                                         torch.zeros(1, dtype=torch.long), 0.1)))
    assert run.status == "ok" and model.training


def test_a_failed_hidden_check_reaches_the_feedback_as_its_hint_only():
    exercise = exercises.get("01", "ex2-fgsm")
    wrong = exercise.misconceptions[0]
    try:
        exercises.grade("01_adversarial_examples", "ex2-fgsm", {"my_fgsm": wrong.wrong})
    except AssertionError as err:
        evalue = str(err)
    hidden = source_notebook("01_adversarial_examples")
    cell = next(c for c in hidden.cells if c.get("id") == "ex2-fgsm-hidden").copy()
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue=evalue,
                                           traceback=["---", "exercises.grade(...)", "raise AssertionError"])]
    cell, _ = feedback.HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert cell.outputs[0]["traceback"] == [f"AssertionError: {wrong.hint}"]
    assert "grade(" not in cell.source


# ---------------------------------------------------------------- what students receive

@pytest.mark.parametrize("assignment", LECTURES)
def test_released_notebooks_hold_no_hidden_checks_no_solutions_and_honest_public_messages(assignment):
    released = released_notebook(assignment)
    text = "\n".join(c.source for c in released.cells)
    assert "BEGIN HIDDEN TESTS" not in text and "_exercises.grade" not in text and "BEGIN SOLUTION" not in text
    for grade_id, answer in solutions(assignment).items():
        body = [line.strip() for line in answer.splitlines()[1:] if line.strip()]
        for line in body:
            assert line not in text, f"{assignment}/{grade_id}: the solution line {line!r} is in the released notebook"
    assert "all tests passed" not in text.lower()
    for cell in released.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.get("id", "").endswith("-tests"):
            points = meta["points"]
            unit = "point" if points == 1 else "points"
            assert re.search(rf'print\("public checks passed \({points} {unit}\); \d+ hidden checks? run at grading"\)',
                             cell.source), cell.get("id")


@pytest.mark.parametrize("assignment", LECTURES)
def test_each_exercise_has_a_self_check_cell_that_runs_nothing_while_grading(assignment):
    nb = released_notebook(assignment)
    ids = [c.get("id") for c in nb.cells]
    for grade_id in solutions(assignment):
        cell_id = f"{grade_id}-selfcheck"
        assert cell_id in ids and ids.index(cell_id) == ids.index(f"{grade_id}-hidden") + 1
        source = nb.cells[ids.index(cell_id)].source
        assert all(line.startswith("#") for line in source.splitlines())
        assert f'check("{assignment[:2]}", "{grade_id}",' in source and f'hint("{assignment[:2]}", "{grade_id}", 1)' in source


def test_self_learner_check_and_hint_ladder(capsys, monkeypatch):
    monkeypatch.delenv("COURSEKIT_GRADED", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    exercise = exercises.get("02", "ex3-min-flip")
    assert not exercises.check("02", "ex3-min-flip", exercise.misconceptions[0].wrong)
    out = capsys.readouterr().out
    assert "not yet" in out and exercise.misconceptions[0].hint in out
    assert exercises.check("02_linear_explanation", "ex3-min-flip", {"min_flip_eps": _flip_numpy_style})
    capsys.readouterr()
    # each rung is printed once and not returned (a notebook would show a returned string a second time)
    for level in (1, 2, 3):
        assert exercises.hint("02", "ex3-min-flip", level) is None
        assert capsys.readouterr().out == exercise.hints[level - 1] + "\n"
    with pytest.raises(ValueError, match="level must be 1"):
        exercises.hint("02", "ex3-min-flip", 4)
    with pytest.raises(ValueError, match="No exercise 02/ex9"):
        exercises.get("02", "ex9")


def test_every_explorer_has_a_static_fallback_used_while_grading():
    from coursekit import widgets

    explorers = [obj for obj in vars(widgets).values()
                 if isinstance(obj, type) and obj.__module__ == widgets.__name__ and hasattr(obj, "widget")]
    assert explorers
    for cls in explorers:
        assert callable(getattr(cls, "static", None)), f"{cls.__name__} has no static fallback"

    class Probe:
        def static(self, **kw):
            return "static figure"

        def widget(self):
            raise AssertionError("no widget while grading")

    assert widgets.show(Probe()) == "static figure"        # tests run with COURSEKIT_FAST=1


def test_duplicated_cells_keep_one_graded_copy_and_a_moved_answer_gets_a_clear_message():
    """nbgrader's DeduplicateIds keeps the LAST cell of a grade id graded (earlier copies become plain
    cells that still run, so the last definition of the answer is the one graded); an answer cell moved
    below its check leaves the name undefined there, and the check says so instead of a NameError."""
    from nbgrader.preprocessors import DeduplicateIds

    nb = released_notebook("01_adversarial_examples")
    index = next(i for i, c in enumerate(nb.cells) if c.get("id") == "ex2-fgsm-tests")
    nb.cells.insert(index + 1, nbformat.from_dict(nb.cells[index]))            # the public check, duplicated
    nb, _ = DeduplicateIds().preprocess(nb, {})
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex2-fgsm-tests"]
    assert len(graded) == 1 and nb.cells.index(graded[0]) == index + 1
    with pytest.raises(AssertionError, match="if you deleted or moved that cell, restore it above this one"):
        exercises.grade("01_adversarial_examples", "ex2-fgsm", {})
