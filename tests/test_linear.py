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
