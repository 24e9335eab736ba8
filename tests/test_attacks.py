"""coursekit.attacks: agreement with torchattacks, budgets, success rates, hygiene, errors."""
import copy
import math

import pytest
import torch
from torch import nn

from coursekit import attacks, data, zoo
from coursekit.checks import CourseKitError

torchattacks = pytest.importorskip("torchattacks")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cnn():
    return zoo.load("mnist_cnn")


@pytest.fixture(scope="module")
def digits(shuffled_test_digits):
    return shuffled_test_digits(64)


def shifted(y):
    return (y + 1) % 10


def assert_close(a, b, atol=1e-6):
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= atol


# ---------------------------------------------------------------- agreement with torchattacks

@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_matches_torchattacks(cnn, digits, targeted):
    x, y = digits
    reference = torchattacks.FGSM(cnn, eps=0.2)
    labels = y
    if targeted:
        reference.set_mode_targeted_by_function(lambda images, labels: shifted(labels))
        labels = shifted(y)
    ours = attacks.fgsm(cnn, x, labels, 0.2, targeted=targeted)
    assert_close(ours, reference(x, y))


@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_linf_matches_torchattacks(cnn, digits, targeted):
    x, y = digits
    reference = torchattacks.PGD(cnn, eps=0.3, alpha=0.03, steps=10, random_start=False)
    labels = y
    if targeted:
        reference.set_mode_targeted_by_function(lambda images, labels: shifted(labels))
        labels = shifted(y)
    ours = attacks.pgd(cnn, x, labels, 0.3, 0.03, 10, random_start=False, targeted=targeted)
    assert_close(ours, reference(x, y))


@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_l2_matches_torchattacks(cnn, digits, targeted):
    # torchattacks averages the loss over the batch and divides the gradient by
    # ||g|| + 1e-10; we sum the loss (per-example gradients), so the same step
    # needs its constant scaled by 1/N. With N a power of two both agree exactly.
    x, y = digits
    n = len(x)
    reference = torchattacks.PGDL2(cnn, eps=2.0, alpha=0.25, steps=10, random_start=False,
                                   eps_for_division=1e-10 / n)
    labels = y
    if targeted:
        reference.set_mode_targeted_by_function(lambda images, labels: shifted(labels))
        labels = shifted(y)
    ours = attacks.pgd(cnn, x, labels, 2.0, 0.25, 10, norm="l2", random_start=False,
                       targeted=targeted)
    assert_close(ours, reference(x, y))


# ---------------------------------------------------------------- agreement with ART

def _art_classifier(model):
    art = pytest.importorskip("art.estimators.classification")
    return art.PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                                 nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")


@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_matches_art(cnn, digits, targeted):
    evasion = pytest.importorskip("art.attacks.evasion")
    x, y = digits
    labels = shifted(y) if targeted else y
    attack = evasion.FastGradientMethod(_art_classifier(cnn), norm=float("inf"), eps=0.2,
                                        targeted=targeted, batch_size=64)
    reference = attack.generate(x.numpy(), y=torch.nn.functional.one_hot(labels, 10).numpy())
    assert_close(attacks.fgsm(cnn, x, labels, 0.2, targeted=targeted), torch.from_numpy(reference))


def test_pgd_linf_matches_art(cnn, digits):
    evasion = pytest.importorskip("art.attacks.evasion")
    x, y = digits
    attack = evasion.ProjectedGradientDescentPyTorch(
        _art_classifier(cnn), norm=float("inf"), eps=0.3, eps_step=0.03, max_iter=10,
        num_random_init=0, batch_size=64, verbose=False)
    reference = torch.from_numpy(attack.generate(x.numpy(), y=torch.nn.functional.one_hot(y, 10).numpy()))
    ours = attacks.pgd(cnn, x, y, 0.3, 0.03, 10, random_start=False)
    assert_close(ours, reference, atol=1e-5)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_torchattacks_recipe(cnn, digits, norm):
    """Without a seed the random start draws from torch's global RNG exactly like torchattacks."""
    x, y = digits
    x, y = x[:32], y[:32]
    if norm == "linf":
        reference = torchattacks.PGD(cnn, eps=0.3, alpha=0.05, steps=3)
        eps, alpha = 0.3, 0.05
    else:
        reference = torchattacks.PGDL2(cnn, eps=2.0, alpha=0.5, steps=3, eps_for_division=1e-10 / 32)
        eps, alpha = 2.0, 0.5
    torch.manual_seed(123)
    expected = reference(x, y)
    torch.manual_seed(123)
    ours = attacks.pgd(cnn, x, y, eps, alpha, 3, norm=norm)
    assert_close(ours, expected)


# ---------------------------------------------------------------- budgets and no-ops

@pytest.mark.parametrize("norm,eps,alpha", [("linf", 0.1, 0.02), ("l2", 1.5, 0.3)])
def test_pgd_stays_in_budget_and_in_range(cnn, digits, norm, eps, alpha):
    x, y = digits
    x_adv = attacks.pgd(cnn, x, y, eps, alpha, 8, norm=norm, seed=0)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    norms = attacks.perturbation_norms(x, x_adv)
    if norm == "linf":
        assert norms["linf"].max() <= eps + 1e-6
    else:
        assert norms["l2"].max() <= eps + 1e-5
        assert norms["l2"].max() > 0.9 * eps  # the ball is actually used


def test_fgsm_moves_every_pixel_by_eps_or_to_the_border(cnn, digits):
    x, y = digits
    x_adv = attacks.fgsm(cnn, x, y, 0.1)
    delta = (x_adv - x).abs()
    assert delta.max() <= 0.1 + 1e-6 and not x_adv.requires_grad
    clipped = (x_adv == 0) | (x_adv == 1)
    assert torch.all(((delta - 0.1).abs() < 1e-6) | clipped)


def test_eps_zero_is_a_no_op(cnn, digits):
    x, y = digits
    assert torch.equal(attacks.fgsm(cnn, x, y, 0.0), x)
    assert torch.equal(attacks.pgd(cnn, x, y, 0, 0.01, 5), x)
    assert torch.equal(attacks.pgd(cnn, x, y, 0, 0.01, 5, norm="l2"), x)


def test_projections_by_hand():
    x = torch.full((2, 1, 2, 2), 0.5)
    far = x + torch.tensor([0.3, -0.3, 0.05, 0.7]).view(1, 1, 2, 2)
    assert torch.allclose(attacks.project_linf(far, x, 0.1)[0].flatten(),
                          torch.tensor([0.6, 0.4, 0.55, 0.6]))
    delta = torch.zeros(2, 1, 2, 2)
    delta[0, 0, 0, 0], delta[0, 0, 0, 1] = 0.3, 0.4          # ||delta|| = 0.5 -> scaled to 0.25
    projected = attacks.project_l2(x + delta, x, 0.25)
    assert torch.allclose(projected[0, 0, 0], torch.tensor([0.65, 0.7]))
    assert torch.equal(projected[1], x[1])                   # zero perturbation: untouched, no NaN
    inside = x + 0.01
    assert torch.allclose(attacks.project_l2(inside, x, 1.0), inside)


# ---------------------------------------------------------------- success rates

def test_success_rates_on_mnist_cnn(cnn, digits):
    x, y = digits
    assert attacks.attack_success_rate(cnn, x, y) <= 0.03     # clean: ~99% accurate
    fgsm_rate = attacks.attack_success_rate(cnn, attacks.fgsm(cnn, x, y, 0.3), y)
    pgd_rate = attacks.attack_success_rate(cnn, attacks.pgd(cnn, x, y, 0.3, 0.01, 40, seed=0), y)
    assert fgsm_rate >= 0.6
    assert pgd_rate >= 0.98
    assert pgd_rate >= fgsm_rate


def test_targeted_success(cnn, digits):
    x, y = digits
    target = shifted(y)
    x_adv = attacks.pgd(cnn, x, target, 0.3, 0.03, 20, seed=0, targeted=True)
    assert attacks.attack_success_rate(cnn, x_adv, target, targeted=True) >= 0.95
    one_step = attacks.fgsm(cnn, x, target, 0.3, targeted=True)
    assert attacks.attack_success_rate(cnn, one_step, target, targeted=True) >= 0.2


def test_early_stop_leaves_fooled_examples_alone(cnn, digits):
    x, y = digits
    start = attacks.fgsm(cnn, x, y, 0.15)                      # some fooled, some not
    fooled = cnn(start).argmax(1) != y
    assert 0 < fooled.sum() < len(y)
    x_adv = attacks.pgd(cnn, start, y, 0.3, 0.02, 20, random_start=False, early_stop=True)
    assert torch.equal(x_adv[fooled], start[fooled])
    assert attacks.attack_success_rate(cnn, x_adv, y) >= 0.95
    # targeted: examples already at their target stay where they are
    target = cnn(start).argmax(1)
    assert torch.equal(attacks.pgd(cnn, start, target, 0.3, 0.02, 5, random_start=False,
                                   targeted=True, early_stop=True), start)


def test_seeded_random_start_is_repeatable(cnn, digits):
    x, y = digits
    x, y = x[:32], y[:32]
    state = torch.get_rng_state()
    a = attacks.pgd(cnn, x, y, 0.3, 0.05, 2, seed=7)
    assert torch.equal(torch.get_rng_state(), state)           # the global RNG is left alone
    assert torch.equal(a, attacks.pgd(cnn, x, y, 0.3, 0.05, 2, seed=7))
    assert not torch.equal(a, attacks.pgd(cnn, x, y, 0.3, 0.05, 2, seed=8))
    b = attacks.pgd(cnn, x, y, 2.0, 0.3, 2, norm="l2", seed=7)
    assert torch.equal(b, attacks.pgd(cnn, x, y, 2.0, 0.3, 2, norm="l2", seed=7))


# ---------------------------------------------------------------- Carlini & Wagner

def test_carlini_wagner_finds_small_l2_perturbations(cnn, digits):
    x, y = digits
    x, y = x[:16], y[:16]
    x_adv = attacks.carlini_wagner_l2(cnn, x, y, steps=100)
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and not x_adv.requires_grad
    fooled = cnn(x_adv).argmax(1) != y
    assert fooled.float().mean() >= 0.9
    l2 = attacks.perturbation_norms(x, x_adv)["l2"]
    assert l2[fooled].median() < 2.2
    assert torch.equal(x_adv[~fooled], x[~fooled])            # failures come back unchanged
    # PGD-L2 with a budget of that median L2 fools far fewer: C&W's perturbations are small
    budget = float(l2[fooled].median())
    pgd_rate = attacks.attack_success_rate(cnn, attacks.pgd(cnn, x, y, budget, budget / 8, 20,
                                                            norm="l2", seed=0), y)
    assert pgd_rate < 0.75


def test_carlini_wagner_targeted(cnn, digits):
    x, y = digits
    x, target = x[:8], shifted(y[:8])
    x_adv = attacks.carlini_wagner_l2(cnn, x, target, c=5, steps=100, targeted=True)
    assert attacks.attack_success_rate(cnn, x_adv, target, targeted=True) >= 0.9


def test_cw_margin_by_hand():
    logits = torch.tensor([[3.0, 1.0, 2.5], [0.0, 4.0, -1.0]])
    y = torch.tensor([0, 2])
    assert torch.allclose(attacks._cw_margin(logits, y, 0.0, False), torch.tensor([0.5, 0.0]))
    assert torch.allclose(attacks._cw_margin(logits, y, 10.0, False), torch.tensor([0.5, -5.0]))
    assert torch.allclose(attacks._cw_margin(logits, y, 10.0, True), torch.tensor([-0.5, 5.0]))


# ---------------------------------------------------------------- optimising the input

def test_fooling_images_from_noise_for_every_digit(cnn):
    target = torch.arange(10)
    x, history = attacks.fooling_image(cnn, target, shape=(10, 1, 28, 28), confidence=0.99,
                                       snapshot_every=5)
    assert x.shape == (10, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    probs = cnn(x).softmax(1)[torch.arange(10), target]
    assert probs.min() >= 0.99
    assert history["reached"] == [True] * 10
    steps = history["steps"]
    assert len(history["loss"]) == len(history["target_prob"]) == len(history["prediction"]) == steps + 1
    assert len(history["loss"][0]) == 10
    assert history["snapshot_steps"][0] == 0 and history["snapshot_steps"][-1] == steps
    assert history["snapshots"][0].shape == (10, 1, 28, 28)
    # it starts from noise the model does not find convincing
    assert min(history["target_prob"][0]) < 0.99
    again, _ = attacks.fooling_image(cnn, target, shape=(10, 1, 28, 28), confidence=0.99)
    assert torch.equal(x, again)                               # seeded


def test_fooling_image_single_and_from_start(cnn, digits):
    x, y = digits
    seven = x[y == 7][:1]
    image, history = attacks.fooling_image(cnn, 3, start=seven, confidence=0.95)
    assert cnn(image).softmax(1)[0, 3] >= 0.95
    assert isinstance(history["target_prob"][0], float) and history["reached"] is True
    assert history["target_prob"][-1] >= 0.95 > history["target_prob"][0]
    seen = []
    attacks.fooling_image(cnn, 5, max_steps=3, confidence=0.999999,
                          callback=lambda step, img, p: seen.append(step))
    assert seen == [0, 1, 2, 3]


def test_targeted_close_attack_turns_digits_into_others(cnn, digits):
    x, y = digits
    x0, target = x[:8], shifted(y[:8])
    x_adv, history = attacks.targeted_close_attack(cnn, x0, target, steps=150)
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and not x_adv.requires_grad
    assert attacks.attack_success_rate(cnn, x_adv, target, targeted=True) == 1.0
    l2 = attacks.perturbation_norms(x0, x_adv)["l2"]
    assert l2.median() < 3.5                                   # a digit has ||x||_2 ~ 9
    assert history["reached"] == [True] * 8
    assert history["distance"][0] == [0.0] * 8
    with_confidence, _ = attacks.targeted_close_attack(cnn, x0, target, steps=150, confidence=0.9)
    assert cnn(with_confidence).softmax(1)[torch.arange(8), target].min() >= 0.9


def test_cat_becomes_an_iguana():
    """The lecture's demo on MobileNet v1: 'common iguana' (39) within 4/255 per pixel."""
    try:
        model = zoo.load("mobilenet_v1_imagenet")
    except (CourseKitError, FileNotFoundError) as error:  # pragma: no cover - weights missing
        pytest.skip(f"mobilenet_v1_imagenet unavailable: {error}")
    from coursekit.mobilenet import imagenet_preprocess

    cat = imagenet_preprocess(data.load_cat_photo())
    assert model(cat).argmax(1).item() != 39
    budget = 4 / 255
    x_pgd = attacks.pgd(model, cat, torch.tensor([39]), budget, 1 / 255, 5,
                        random_start=False, targeted=True)
    assert model(x_pgd).argmax(1).item() == 39
    assert attacks.perturbation_norms(cat, x_pgd)["linf"].item() <= budget + 1e-6
    x_close, history = attacks.targeted_close_attack(model, cat, 39, lr=1e-3, steps=5,
                                                     confidence=0.5)
    assert history["reached"] is True
    assert model(x_close).softmax(1)[0, 39] >= 0.5
    assert attacks.perturbation_norms(cat, x_close)["linf"].item() <= budget


# ---------------------------------------------------------------- hygiene

ALL_ATTACKS = {
    "fgsm": lambda m, x, y: attacks.fgsm(m, x, y, 0.1),
    "pgd": lambda m, x, y: attacks.pgd(m, x, y, 0.1, 0.02, 3, seed=0),
    "pgd_l2": lambda m, x, y: attacks.pgd(m, x, y, 1.0, 0.2, 3, norm="l2", seed=0, early_stop=True),
    "cw": lambda m, x, y: attacks.carlini_wagner_l2(m, x, y, steps=3),
    "fooling": lambda m, x, y: attacks.fooling_image(m, 1, max_steps=3),
    "close": lambda m, x, y: attacks.targeted_close_attack(m, x, 1, steps=3),
    "rate": lambda m, x, y: attacks.attack_success_rate(m, x, y),
}


class DropoutNet(nn.Module):
    """A model whose output depends on its mode: dropout must be off during attacks."""

    def __init__(self):
        super().__init__()
        self.body = zoo.load("mnist_mlp")
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(10, 10)

    def forward(self, x):
        return self.head(self.drop(self.body(x)))


@pytest.mark.parametrize("name", sorted(ALL_ATTACKS))
def test_model_mode_and_parameters_are_untouched(name, digits):
    x, y = digits
    x, y = x[:8], y[:8]
    model = DropoutNet().train()
    model.body.eval()                                          # mixed modes come back as they were
    before = copy.deepcopy(model.state_dict())
    ALL_ATTACKS[name](model, x, y)
    assert model.training and model.drop.training and model.head.training
    assert not model.body.training and not model.body.net.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_attacks_are_deterministic_in_eval_mode(digits):
    x, y = digits
    model = DropoutNet().train()
    assert torch.equal(attacks.fgsm(model, x[:8], y[:8], 0.1), attacks.fgsm(model, x[:8], y[:8], 0.1))


def test_mode_restored_when_the_model_fails(digits):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(784, 10)

        def forward(self, x):
            raise RuntimeError("boom")

    model = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        attacks.pgd(model, digits[0][:4], digits[1][:4], 0.1, 0.01, 2)
    assert model.training


def test_attacks_work_under_no_grad(cnn, digits):
    x, y = digits
    with torch.no_grad():
        x_adv = attacks.pgd(cnn, x[:16], y[:16], 0.3, 0.05, 3, random_start=False)
    assert not torch.equal(x_adv, x[:16])


# ---------------------------------------------------------------- helpers

def test_success_rate_and_norms_by_hand():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]))
        model[1].bias.zero_()
    x = torch.eye(4)[:3].view(3, 1, 2, 2)                      # predicted classes 0, 1, 2
    assert attacks.attack_success_rate(model, x, torch.tensor([0, 1, 0])) == pytest.approx(1 / 3)
    assert attacks.attack_success_rate(model, x, torch.tensor([0, 1, 0]), targeted=True) == pytest.approx(2 / 3)
    x_adv = x.clone()
    x_adv[0, 0, 0, 1] = 0.3
    x_adv[0, 0, 1, 0] = 0.4
    norms = attacks.perturbation_norms(x, x_adv)
    assert torch.allclose(norms["linf"], torch.tensor([0.4, 0.0, 0.0]))
    assert torch.allclose(norms["l2"], torch.tensor([0.5, 0.0, 0.0]))


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("call,match", [
    (lambda m, x, y: attacks.fgsm(m, x, y, -0.1), "eps"),
    (lambda m, x, y: attacks.fgsm(m, x, y, float("nan")), "eps"),
    (lambda m, x, y: attacks.fgsm(m, x[0], y, 0.1), "unsqueeze"),
    (lambda m, x, y: attacks.fgsm(m, x * 255, y, 0.1), r"\[0, 1\]"),
    (lambda m, x, y: attacks.fgsm(m, (x * 255).to(torch.uint8), y, 0.1), "float"),
    (lambda m, x, y: attacks.fgsm(m, x.double(), y, 0.1), "dtype"),
    (lambda m, x, y: attacks.fgsm(m, x, y[:-1], 0.1), "shape"),
    (lambda m, x, y: attacks.fgsm(m, x, y.float(), 0.1), "integer"),
    (lambda m, x, y: attacks.fgsm(m, x, y + 10, 0.1), r"\[0, 9\]"),
    (lambda m, x, y: attacks.fgsm("model", x, y, 0.1), "nn.Module"),
    (lambda m, x, y: attacks.pgd(m, x, y, 0.1, 0.01, 3, norm="l1"), "norm"),
    (lambda m, x, y: attacks.pgd(m, x, y, 0.1, -0.01, 3), "alpha"),
    (lambda m, x, y: attacks.pgd(m, x, y, 0.1, 0.01, -1), "steps"),
    (lambda m, x, y: attacks.pgd(m, x, y, 0.1, 0.01, 2.5), "steps"),
    (lambda m, x, y: attacks.carlini_wagner_l2(m, x, y, c=-1), "c"),
    (lambda m, x, y: attacks.fooling_image(m, 12), r"\[0, 9\]"),
    (lambda m, x, y: attacks.fooling_image(m, 1, confidence=1.5), "confidence"),
    (lambda m, x, y: attacks.fooling_image(m, 1, shape=(28, 28)), "shape"),
    (lambda m, x, y: attacks.targeted_close_attack(m, x, torch.tensor([1, 2])), "shape"),
    (lambda m, x, y: attacks.perturbation_norms(x, x[:2]), "same shape"),
])
def test_clear_errors(cnn, digits, call, match):
    x, y = digits
    with pytest.raises(CourseKitError, match=match):
        call(cnn, x[:4], y[:4])


def test_outputs_never_alias_the_input(cnn, digits):
    x, y = digits
    x = x[:4].clone()
    for out in (attacks.pgd(cnn, x, y[:4], 0.1, 0.01, 0, random_start=False),
                attacks.pgd(cnn, x, cnn(x).argmax(1), 0.1, 0.01, 3, random_start=False,
                            targeted=True, early_stop=True),
                attacks.fgsm(cnn, x, y[:4], 0.0)):
        assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


# ---------------------------------------------------------------- lecture 1's loops and demo inputs

def test_the_signed_fooling_loop_freezes_confident_images_and_counts_its_steps(cnn):
    x0 = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 3, 5, 9])
    x, steps = attacks.fooling_loop(cnn, x0, target, 0.02, 100, 0.99)
    probs = cnn(x).softmax(1)[torch.arange(4), target]
    assert isinstance(steps, int) and 0 < steps < 100 and bool((probs >= 0.99).all())
    assert float((x - x0).abs().max()) <= 0.02 * steps + 1e-6          # signed steps of alpha, per pixel
    # the loop by hand: stop BEFORE a step when every image is confident; confident images stay put
    by_hand, rows = x0.clone(), torch.arange(4)
    for _ in range(steps):
        xg = by_hand.clone().requires_grad_(True)
        logits = cnn(xg)
        done = logits.softmax(1)[rows, target] >= 0.99
        grad, = torch.autograd.grad(nn.functional.cross_entropy(logits, target), xg)
        by_hand = torch.where(done.view(-1, 1, 1, 1), by_hand, (by_hand - 0.02 * grad.sign()).clamp(0, 1))
    assert_close(x, by_hand)
    again, again_steps = attacks.fooling_loop(cnn, x0, target, 0.02, 100, 0.99)
    assert torch.equal(again, x) and again_steps == steps
    _, none = attacks.fooling_loop(cnn, x0, target, 0.02, 0, 0.99)
    assert none == 0


def test_the_fooling_image_sign_method_reaches_the_target_from_a_real_digit(cnn, digits):
    x, y = digits
    start = x[:2]
    image, history = attacks.fooling_image(cnn, shifted(y[:2]), start=start, lr=0.02, max_steps=200,
                                           confidence=0.9, method="sign")
    assert all(history["reached"]) and history["steps"] < 200
    assert bool((cnn(image).argmax(1) == shifted(y[:2])).all())
    with pytest.raises(CourseKitError, match="method"):
        attacks.fooling_image(cnn, 1, method="adagrad")


def test_pgd_draws_its_random_start_from_the_generator_it_is_given(cnn, digits):
    x, y = digits
    with_generator = attacks.pgd(cnn, x[:8], y[:8], 0.3, 0.05, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(with_generator, attacks.pgd(cnn, x[:8], y[:8], 0.3, 0.05, 3, seed=7))
    torch.manual_seed(1)
    again = attacks.pgd(cnn, x[:8], y[:8], 0.3, 0.05, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(with_generator, again)                        # the global seed plays no part
    # the start is (2 * rand - 1) * eps from that generator: with 0 steps it is returned as it is
    start = attacks.pgd(cnn, x[:8], y[:8], 0.3, 0.05, 0, generator=torch.Generator().manual_seed(7))
    by_hand = (x[:8] + (2 * torch.rand(x[:8].shape, generator=torch.Generator().manual_seed(7)) - 1) * 0.3).clamp(0, 1)
    assert torch.equal(start, by_hand)
    with pytest.raises(CourseKitError, match="either seed or generator"):
        attacks.pgd(cnn, x[:8], y[:8], 0.3, 0.05, 3, seed=1, generator=torch.Generator())
    with pytest.raises(CourseKitError, match="generator"):
        attacks.pgd(cnn, x[:8], y[:8], 0.3, 0.05, 3, generator=7)


def test_smallest_flipping_eps_is_the_first_budget_of_the_grid_that_flips(cnn, digits):
    x, y = digits
    grid = [0.02 * k for k in range(1, 16)]
    found = attacks.smallest_flipping_eps(cnn, x[:20], y[:20], grid)
    assert found.shape == (20,)
    predict = lambda images: cnn(images).argmax(1)
    for i in range(20):
        eps = float(found[i])
        if eps == 0:
            assert int(predict(x[i:i + 1])) != int(y[i])
            continue
        flips = [int(predict(attacks.fgsm(cnn, x[i:i + 1], y[i:i + 1], e))) != int(y[i]) for e in grid]
        if math.isinf(eps):
            assert not any(flips)
        else:
            assert flips[grid.index(eps)] and not any(flips[:grid.index(eps)])
    with pytest.raises(CourseKitError, match="empty"):
        attacks.smallest_flipping_eps(cnn, x[:2], y[:2], [])
