"""coursekit.linear: the linear explanation, logistic regression, closed-form FGSM."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coursekit import attacks, data, linear, zoo
from coursekit.checks import CourseKitError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def logreg():
    return zoo.load("mnist_logreg")


@pytest.fixture(scope="module")
def digits(shuffled_test_digits):
    return shuffled_test_digits(200)


# ---------------------------------------------------------------- the experiment

def test_response_grows_linearly_while_pixels_move_by_eps():
    result = linear.linear_response_growth((10, 100, 1_000, 10_000, 100_000), eps=0.01, seed=0)
    assert set(result) >= {"dims", "max_pixel_change", "activation_change", "eps_l1_norm"}
    assert all(isinstance(v, np.ndarray) and len(v) == 5 for v in result.values())
    np.testing.assert_array_equal(result["dims"], [10, 100, 1_000, 10_000, 100_000])
    np.testing.assert_allclose(result["max_pixel_change"], 0.01)
    # the measured change is the formula eps * ||w||_1 ...
    np.testing.assert_allclose(result["activation_change"], result["eps_l1_norm"], rtol=1e-9)
    # ... which grows linearly: per dimension it is eps * E|w| = eps * sqrt(2 / pi) for N(0, 1)
    per_dim = result["activation_change"][2:] / result["dims"][2:]
    np.testing.assert_allclose(per_dim, 0.01 * math.sqrt(2 / math.pi), rtol=0.05)
    assert result["activation_change"][-1] > 5000 * result["activation_change"][0]
    # random signs of the same size add up only like sqrt(n)
    assert result["random_sign_change"][-1] < 0.02 * result["activation_change"][-1]


def test_response_growth_is_seeded():
    a = linear.linear_response_growth((5, 50), eps=0.1, seed=3)
    b = linear.linear_response_growth((5, 50), eps=0.1, seed=3)
    c = linear.linear_response_growth((5, 50), eps=0.1, seed=4)
    np.testing.assert_array_equal(a["activation_change"], b["activation_change"])
    assert not np.array_equal(a["activation_change"], c["activation_change"])


def test_response_growth_on_trained_weights(logreg):
    w = logreg.linear.weight[3].detach()
    dims = (49, 196, 392, 784)
    result = linear.linear_response_growth(dims, eps=0.1, weights=w)
    np.testing.assert_allclose(result["activation_change"], result["eps_l1_norm"], rtol=1e-9)
    assert np.all(np.diff(result["activation_change"]) > 0)
    # all 784 pixels: exactly eps * ||w_3||_1 of the trained model
    assert result["eps_l1_norm"][-1] == pytest.approx(0.1 * float(w.double().abs().sum()), rel=1e-9)
    # and the real score moves by that much when the image can absorb the step
    x = torch.full((1, 1, 28, 28), 0.5)
    eta = 0.1 * torch.sign(w).view(1, 1, 28, 28)
    change = (logreg(x + eta) - logreg(x))[0, 3].item()
    assert change == pytest.approx(result["eps_l1_norm"][-1], rel=1e-4)
    with pytest.raises(CourseKitError, match="only 784"):
        linear.linear_response_growth((1000,), weights=w)


def test_response_growth_errors():
    with pytest.raises(CourseKitError, match="eps"):
        linear.linear_response_growth((10,), eps=-1)
    with pytest.raises(CourseKitError, match="dims"):
        linear.linear_response_growth((0, 10))
    with pytest.raises(CourseKitError, match="weights"):
        linear.linear_response_growth((10,), weights=[1.0, 2.0])


# ---------------------------------------------------------------- logistic regression

def test_mnist_logreg_in_the_zoo(logreg, digits):
    x, y = digits
    assert type(logreg).__name__ == "LogisticRegression" and not logreg.training
    assert logreg.linear.weight.shape == (10, 784)
    assert zoo.manifest()["mnist_logreg"]["accuracy"] >= 0.91
    assert (logreg(x).argmax(1) == y).float().mean() >= 0.85
    # linear models are easy prey: FGSM at eps 0.1 already breaks most of them
    assert attacks.attack_success_rate(logreg, attacks.fgsm(logreg, x, y, 0.1), y) >= 0.5


def test_train_logistic_regression_learns_and_is_seeded():
    x, y = data.load_mnist("train")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))[:2000]
    x, y = x[idx], y[idx]
    model, history = linear.train_logistic_regression(x, y, epochs=2, lr=5e-3, seed=0)
    assert not model.training and model.linear.weight.shape == (10, 784)
    assert len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
    assert history["train_accuracy"][-1] >= 0.85
    again, _ = linear.train_logistic_regression(x, y, epochs=2, lr=5e-3, seed=0)
    assert torch.equal(model.linear.weight, again.linear.weight)
    small, _ = linear.train_logistic_regression(linear.downsample(x, 7), y, epochs=1, seed=0)
    assert small.linear.weight.shape == (10, 49)


def test_downsample_averages_blocks():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    half = linear.downsample(x, 14)
    assert half.shape == (3, 1, 14, 14)
    assert torch.allclose(half[0, 0, 0, 0], x[0, 0, :2, :2].mean())
    assert torch.allclose(linear.downsample(x, 7).mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-6)
    assert linear.downsample(x, 28) is x
    with pytest.raises(CourseKitError, match="size"):
        linear.downsample(x, 0)


def test_linear_response_by_resolution():
    x, y = data.load_mnist("train")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(2))[:1000]
    xt, yt = data.load_mnist("test")
    result = linear.linear_response_by_resolution(x[idx], y[idx], xt[:200], yt[:200],
                                                  sizes=(7, 14), eps=0.1, epochs=1, lr=1e-2)
    np.testing.assert_array_equal(result["dims"], [49, 196])
    assert np.all(result["fgsm_accuracy"] <= result["accuracy"])
    assert np.all(result["eps_l1_norm"] > 0) and np.all(result["mean_abs_weight"] > 0)
    # eps * ||w||_1 is eps * n * mean|w|
    np.testing.assert_allclose(result["eps_l1_norm"],
                               0.1 * result["dims"] * result["mean_abs_weight"], rtol=1e-6)


# ---------------------------------------------------------------- FGSM in closed form

@pytest.fixture(scope="module")
def three_vs_seven(logreg, digits):
    """A binary 7-vs-3 logistic regression read off the 10-class model: w = w_7 - w_3."""
    weight, bias = logreg.linear.weight.detach(), logreg.linear.bias.detach()
    w, b = weight[7] - weight[3], float(bias[7] - bias[3])
    x, y = digits
    keep = (y == 3) | (y == 7)
    return w, b, x[keep], (y[keep] == 7).long()


def test_binary_logistic_regression_is_sigmoid_and_log_loss(three_vs_seven):
    w, b, x, y = three_vs_seven
    model = linear.BinaryLogisticRegression(w, b)
    logits = model(x)
    p = torch.sigmoid(x.flatten(1) @ w + b)
    assert torch.allclose(logits.softmax(1)[:, 1], p, atol=1e-6)
    assert torch.allclose(F.cross_entropy(logits, y), F.binary_cross_entropy(p, y.float()), atol=1e-5)
    assert (logits.argmax(1) == y).float().mean() >= 0.9


def test_fgsm_linear_equals_the_gradient_sign_step(three_vs_seven):
    w, b, x, y = three_vs_seven
    assert 0 < y.sum() < len(y)
    closed_form = linear.fgsm_linear(w, b, x, y, 0.2)
    by_gradient = attacks.fgsm(linear.BinaryLogisticRegression(w, b), x, y, 0.2)
    assert torch.equal(closed_form, by_gradient)
    # the flattened (N, n) layout gives the same images
    flat = linear.fgsm_linear(w, b, x.flatten(1), y, 0.2)
    assert torch.equal(flat, closed_form.flatten(1))


def test_fgsm_linear_moves_the_score_by_eps_l1():
    w = torch.tensor([0.5, -2.0, 0.0, 1.0])
    x = torch.full((2, 4), 0.5)
    y = torch.tensor([1, 0])
    x_adv = linear.fgsm_linear(w, 0.3, x, y, 0.1)
    assert torch.allclose(x_adv[0], torch.tensor([0.4, 0.6, 0.5, 0.4]))   # y = 1: against w
    assert torch.allclose(x_adv[1], torch.tensor([0.6, 0.4, 0.5, 0.6]))   # y = 0: along w
    change = x_adv @ w - x @ w
    assert torch.allclose(change, torch.tensor([-0.35, 0.35]))            # eps * ||w||_1 = 0.35
    assert torch.equal(linear.fgsm_linear(w, 0.3, x, y, 0.0), x)


def test_fgsm_linear_errors():
    w = torch.ones(4)
    x = torch.full((2, 4), 0.5)
    with pytest.raises(CourseKitError, match=r"\[0, 1\]"):
        linear.fgsm_linear(w, 0.0, x, torch.tensor([0, 2]), 0.1)
    with pytest.raises(CourseKitError, match="entries"):
        linear.fgsm_linear(torch.ones(5), 0.0, x, torch.tensor([0, 1]), 0.1)
    with pytest.raises(CourseKitError, match="eps"):
        linear.fgsm_linear(w, 0.0, x, torch.tensor([0, 1]), -0.1)
    with pytest.raises(CourseKitError, match=r"\[0, 1\]"):
        linear.fgsm_linear(w, 0.0, x * 4, torch.tensor([0, 1]), 0.1)


# ---------------------------------------------------------------- random signs, exact flipping budgets, robust training

def test_worst_perturbation_reaches_eps_l1_and_random_signs_scale_like_eps_l2():
    w = torch.randn(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eta = linear.worst_perturbation(w, 0.05)
    assert float(eta.abs().max()) == pytest.approx(0.05) and float(w @ eta) == pytest.approx(0.05 * float(w.abs().sum()))
    result = linear.linear_response_growth((100, 10_000), eps=0.01, seed=0, draws=400)
    # |w^T (eps s)| for random signs: its root-mean-square is eps ||w||_2; the median of |N(0, s^2)| is 0.674 s
    ratio = result["random_sign_change"] / result["eps_l2_norm"]
    assert np.all((ratio > 0.55) & (ratio < 0.8))
    assert np.all(result["random_sign_low"] < result["random_sign_change"])
    assert np.all(result["random_sign_change"] < result["random_sign_high"])
    with pytest.raises(CourseKitError, match="draws"):
        linear.linear_response_growth((10,), draws=0)


def _flips_by_bisection(W, b, x, y, t):
    """The smallest eps that flips y -> t with the clip, by bisection on the attack itself."""
    d = (W[y] - W[t]).double()
    margin = lambda eps: float(((x.double() - eps * d.sign()).clamp(0, 1) @ d) + (b[y] - b[t]).double())
    if margin(1.0) > 0:
        return math.inf
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if margin(mid) > 0 else (lo, mid)
    return hi


def test_smallest_flipping_eps_with_the_clip_matches_bisection_and_bounds_the_formula(logreg, digits):
    W, b = logreg.linear.weight.detach(), logreg.linear.bias.detach()
    x, y = digits[0][:30].flatten(1), digits[1][:30]
    right = (x @ W.T + b).argmax(1) == y
    exact = linear.smallest_flipping_eps(W, b, x[right], y[right])
    formula = linear.smallest_flipping_eps(W, b, x[right], y[right], clip=False)
    assert bool((exact >= formula - 1e-9).all()) and bool((exact > formula).any())   # the clip only makes it harder
    for i in range(10):
        xi, yi = x[right][i], int(y[right][i])
        by_bisection = min(_flips_by_bisection(W, b, xi, yi, t) for t in range(10) if t != yi)
        assert float(exact[i]) == pytest.approx(by_bisection, abs=1e-6)
        margins = [float(((W[yi] - W[t]) @ xi + b[yi] - b[t]) / (W[yi] - W[t]).abs().sum()) for t in range(10) if t != yi]
        assert float(formula[i]) == pytest.approx(min(margins), rel=1e-5)
    assert bool(linear.flipped_at(W, b, x[right], y[right], 0.0).logical_not().all())
    above = linear.flipped_at(W, b, x[right][:10], y[right][:10], 0.0)
    for i in range(10):
        e = float(exact[i])
        assert bool(linear.flipped_at(W, b, x[right][i:i + 1], y[right][i:i + 1], e * (1 + 1e-6)))
        assert not bool(linear.flipped_at(W, b, x[right][i:i + 1], y[right][i:i + 1], e * (1 - 1e-6)))
    assert not bool(above.any())
    wrong = ~right
    if bool(wrong.any()):
        assert bool((linear.smallest_flipping_eps(W, b, x[wrong], y[wrong]) == 0).all())


def test_the_robust_logistic_loss_is_the_loss_under_the_worst_perturbation():
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(6, generator=g), torch.tensor(0.3)
    x, y = torch.rand(5, 6, generator=g), torch.tensor([0, 1, 1, 0, 1])
    s = 2 * y.float() - 1
    worst = (x - 0.1 * s[:, None] * w.sign()[None, :])              # delta = -eps * s * sign(w)
    by_hand = F.softplus(-s * (worst @ w + b)).mean()
    assert float(linear.robust_logistic_loss(w, b, x, y, 0.1)) == pytest.approx(float(by_hand), rel=1e-6)
    corners = torch.tensor([[a, c] for a in (-0.1, 0.1) for c in (-0.1, 0.1)])   # every corner of the box, n = 2
    w2, x2, y2 = w[:2], x[:1, :2], y[:1]
    brute = max(float(linear.robust_logistic_loss(w2, b, x2 + delta, y2, 0.0)) for delta in corners)
    assert float(linear.robust_logistic_loss(w2, b, x2, y2, 0.1)) == pytest.approx(brute, rel=1e-6)


def test_binary_logistic_training_is_deterministic_and_robust_training_keeps_w_small():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(80, 10, generator=g)
    y = (x[:, 0] + 0.1 * torch.randn(80, generator=g) > x[:, 1]).long()
    w, b = linear.train_binary_logistic(x, y, steps=200, lr=1.0)
    assert w.shape == (10,) and b.shape == () and not w.requires_grad
    assert torch.equal(w, linear.train_binary_logistic(x, y, steps=200, lr=1.0)[0])
    assert float(w[0]) > 0 > float(w[1])
    by_hand_w, by_hand_b = torch.zeros(10, requires_grad=True), torch.zeros((), requires_grad=True)
    for _ in range(200):                                             # plain gradient descent, by hand
        loss = F.softplus(-(2 * y - 1) * (x @ by_hand_w + by_hand_b)).mean()
        gw, gb = torch.autograd.grad(loss, [by_hand_w, by_hand_b])
        with torch.no_grad():
            by_hand_w -= 1.0 * gw
            by_hand_b -= 1.0 * gb
    assert torch.allclose(w, by_hand_w, atol=1e-5) and float(b) == pytest.approx(float(by_hand_b.detach()), abs=1e-5)
    robust_w, _ = linear.train_binary_logistic(x, y, eps=0.05, steps=200, lr=1.0)
    assert float(robust_w.abs().sum()) < float(w.abs().sum())
    with pytest.raises(CourseKitError, match="labels|num_classes|\\[0, 1\\]"):
        linear.train_binary_logistic(x, y + 1, steps=1)
    with pytest.raises(CourseKitError, match="shape"):
        linear.train_binary_logistic(x.view(80, 1, 2, 5), y, steps=1)
