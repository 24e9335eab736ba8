import math

import pytest
import torch

from coursekit import attacks, data, defenses, training, zoo
from coursekit.checks import CourseKitError
from coursekit.models import MnistCNN


@pytest.fixture(scope="module")
def digits():
    """600 MNIST test digits: 0-299 to train detectors, 300-599 held out."""
    return data.load_mnist("test", limit=600)


@pytest.fixture(scope="module")
def cnn():
    return zoo.load("mnist_cnn")


@pytest.fixture(scope="module")
def detector_and_history(cnn, digits):
    x, y = digits
    return defenses.train_detector(cnn, x[:200], y[:200], attack="pgd", eps=0.3, steps=10,
                                   epochs=6, seed=0, progress=False)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_untouched(model, before, training_mode):
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "parameters changed"
    assert all(p.grad is None for p in model.parameters()), "a .grad was written on the model"
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training == training_mode for m in model.modules()), "mode not restored"


# ---------------------------------------------------------------- the detector

def test_detector_shapes_and_training_history(detector_and_history):
    detector, history = detector_and_history
    assert not detector.training
    assert detector(torch.rand(5, 1, 28, 28)).shape == (5,)
    assert len(history["loss"]) == len(history["accuracy"]) == 6
    assert history["loss"][-1] < history["loss"][0]
    assert history["attack_success_rate"][0] > 0.9  # PGD at 0.3 fools the plain CNN


def test_detector_catches_held_out_fgsm_and_pgd_examples(cnn, digits, detector_and_history):
    detector, _ = detector_and_history
    x, y = digits[0][300:500], digits[1][300:500]
    for attack in ("pgd", "fgsm"):
        x_adv = defenses.make_adversarial(cnn, x, y, attack=attack, eps=0.3, steps=10, seed=1)
        scores = defenses.detector_accuracy(detector, x, x_adv)
        assert scores["accuracy"] > 0.85, (attack, scores)  # chance is 0.5
        assert scores["true_positive_rate"] > 0.8 and scores["false_positive_rate"] < 0.2
        # the definition: accuracy is the mean of TPR and 1 - FPR for balanced sets
        assert scores["accuracy"] == pytest.approx(
            (scores["true_positive_rate"] + 1 - scores["false_positive_rate"]) / 2, abs=1e-6)


def test_detector_accuracy_counts_by_hand():
    class Brightness(torch.nn.Module):  # "adversarial" iff the mean pixel is above 0.5
        def forward(self, x):
            return (x.mean((1, 2, 3)) - 0.5) * 100

    clean = torch.tensor([0.1, 0.2, 0.9]).view(3, 1, 1, 1).expand(3, 1, 4, 4).clone()
    adv = torch.tensor([0.8, 0.3]).view(2, 1, 1, 1).expand(2, 1, 4, 4).clone()
    scores = defenses.detector_accuracy(Brightness(), clean, adv)
    assert scores["true_positive_rate"] == pytest.approx(1 / 2)
    assert scores["false_positive_rate"] == pytest.approx(1 / 3)
    assert scores["accuracy"] == pytest.approx(3 / 5)  # 2 clean accepted + 1 attack caught


# ---------------------------------------------------------------- the adaptive attack

def test_bypass_loss_matches_a_hand_computation():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 4.0, 1.0]])
    d = torch.tensor([1.5, -2.0, -5.0])
    y = torch.tensor([0, 2, 0])
    # margin: max(Z_y - max_other, -kappa) + w * max(d, -kappa), kappa = 1
    #   row 0: max(2 - 0, -1) = 2,      max(1.5, -1) = 1.5
    #   row 1: max(3 - 0.5, -1) = 2.5,  max(-2, -1) = -1
    #   row 2: max(0 - 4, -1) = -1,     max(-5, -1) = -1
    expected = ((2 + 0.7 * 1.5) + (2.5 + 0.7 * -1) + (-1 + 0.7 * -1)) / 3
    assert float(defenses.bypass_loss(logits, d, y, 0.7, kappa=1.0)) == pytest.approx(expected)
    # targeted at t: max(max_other - Z_t, -kappa); with t = y: row 0 -> max(0 - 2, -1) = -1, ...
    expected_targeted = ((-1 + 0.7 * 1.5) + (-1 + 0.7 * -1) + (4 + 0.7 * -1)) / 3
    assert float(defenses.bypass_loss(logits, d, y, 0.7, targeted=True, kappa=1.0)) == pytest.approx(
        expected_targeted)

    def ce(row, k):
        return -(row[k] - math.log(sum(math.exp(v) for v in row)))

    rows = logits.tolist()
    ce_terms = [ce(r, k) for r, k in zip(rows, y.tolist())]
    softplus = [math.log(1 + math.exp(v)) for v in d.tolist()]  # BCE(d, 0) = -log(1 - sigmoid(d))
    naive = sum(-c + 0.7 * s for c, s in zip(ce_terms, softplus)) / 3
    naive_targeted = sum(c + 0.7 * s for c, s in zip(ce_terms, softplus)) / 3
    assert float(defenses.bypass_loss(logits, d, y, 0.7, kind="ce")) == pytest.approx(naive, rel=1e-6)
    assert float(defenses.bypass_loss(logits, d, y, 0.7, targeted=True, kind="ce")) == pytest.approx(
        naive_targeted, rel=1e-6)
    with pytest.raises(CourseKitError, match="Unknown kind 'hinge'"):
        defenses.bypass_loss(logits, d, y, kind="hinge")


@pytest.mark.slow    # 5-15 s of training or sampling: make test-fast skips it
def test_adaptive_attack_fools_classifier_and_detector(cnn, digits, detector_and_history):
    detector, _ = detector_and_history
    x, y = digits[0][300:400], digits[1][300:400]
    cnn.train()
    detector.train()
    before_cnn, before_det = snapshot(cnn), snapshot(detector)
    try:
        plain = attacks.pgd(cnn, x, y, 0.3, 0.03, 20, seed=0)
        adaptive = defenses.adaptive_attack(cnn, detector, x, y, eps=0.3, alpha=0.03, steps=20, seed=0)
        assert_untouched(cnn, before_cnn, True)
        assert_untouched(detector, before_det, True)
    finally:
        cnn.eval()
        detector.eval()
    assert (adaptive - x).abs().max() <= 0.3 + 1e-6 and adaptive.min() >= 0 and adaptive.max() <= 1

    detected_plain = defenses.detection_rate(detector, plain)
    detected_adaptive = defenses.detection_rate(detector, adaptive)
    fooled_plain = attacks.attack_success_rate(cnn, plain, y)
    fooled_adaptive = attacks.attack_success_rate(cnn, adaptive, y)
    assert detected_plain > 0.9 and detected_adaptive < 0.1      # the safety net is bypassed
    assert fooled_adaptive > 0.9 and fooled_plain > 0.9          # ... and the classifier still fooled

    def fools_both(x_adv):
        flagged = torch.sigmoid(detector(x_adv)) > 0.5
        return float(((training.predict(cnn, x_adv) != y) & ~flagged).float().mean())

    with torch.no_grad():
        assert fools_both(plain) < 0.1 and fools_both(adaptive) > 0.85
        # the naive loss (CE + BCE) never stops pulling on either goal: it fools both less often
        naive = defenses.adaptive_attack(cnn, detector, x, y, eps=0.3, alpha=0.03, steps=20, seed=0,
                                         kind="ce")
        assert fools_both(naive) < fools_both(adaptive)


def test_adaptive_attack_is_seeded_and_eps_zero_is_identity(cnn, digits, detector_and_history):
    detector, _ = detector_and_history
    x, y = digits[0][:8], digits[1][:8]
    a = defenses.adaptive_attack(cnn, detector, x, y, 0.1, 0.02, 3, seed=5)
    b = defenses.adaptive_attack(cnn, detector, x, y, 0.1, 0.02, 3, seed=5)
    assert torch.equal(a, b)
    assert torch.equal(defenses.adaptive_attack(cnn, detector, x, y, 0.0, 0.02, 3), x)


# ---------------------------------------------------------------- adversarial training

@pytest.mark.slow    # 5-15 s of training or sampling: make test-fast skips it
def test_adversarial_training_beats_standard_training_under_pgd():
    x, y = data.load_mnist("train", limit=1000)
    x_test, y_test = data.load_mnist("test", limit=300)
    torch.manual_seed(0)
    standard = MnistCNN()
    training.train_classifier(standard, x, y, epochs=5, lr=3e-3, seed=0, progress=False)
    torch.manual_seed(0)
    robust = MnistCNN()
    history = defenses.adversarial_training(robust, x, y, method="fgsm", eps=0.15, epochs=5,
                                            lr=3e-3, seed=0, progress=False)
    assert len(history["loss"]) == 5 and history["eps"] == [0.15] * 5
    accuracy = {}
    for name, model in (("standard", standard), ("robust", robust)):
        x_adv = attacks.pgd(model, x_test, y_test, 0.15, 0.04, 10, seed=0)
        accuracy[name] = training.accuracy(model, x_adv, y_test)
    assert accuracy["robust"] > accuracy["standard"] + 0.15, accuracy
    assert training.accuracy(robust, x_test, y_test) > 0.85  # still a digit classifier


def test_pgd_adversarial_training_is_deterministic_and_warms_up():
    x, y = data.load_mnist("train", limit=128)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MnistCNN()
        history = defenses.adversarial_training(model, x, y, method="pgd", eps=0.3, steps=2,
                                                epochs=2, batch_size=64, seed=3,
                                                eps_warmup_epochs=2, progress=False)
        runs.append((snapshot(model), history))
    (a, history), (b, _) = runs
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert history["eps"] == pytest.approx([0.15, 0.3])  # linear ramp over 2 epochs of 2 batches


# ---------------------------------------------------------------- robustness curves

def test_robustness_curve_starts_at_clean_accuracy_and_decreases(cnn, digits):
    x, y = digits[0][:200], digits[1][:200]
    cnn.train()
    before = snapshot(cnn)
    try:
        curve = defenses.robustness_curve(cnn, x, y, [0.0, 0.05, 0.1, 0.2, 0.3], attack="pgd", steps=10)
        assert_untouched(cnn, before, True)
    finally:
        cnn.eval()
    assert curve["eps"] == [0.0, 0.05, 0.1, 0.2, 0.3] and curve["attack"] == "pgd"
    assert curve["accuracy"][0] == pytest.approx(training.accuracy(cnn, x, y))
    assert all(b <= a + 0.01 for a, b in zip(curve["accuracy"], curve["accuracy"][1:])), curve
    assert curve["accuracy"][-1] < 0.1
    fgsm = defenses.robustness_curve(cnn, x, y, [0.0, 0.1])
    assert fgsm["attack"] == "fgsm" and fgsm["accuracy"][0] == curve["accuracy"][0]


def test_robust_model_beats_standard_cnn_at_large_eps(cnn, digits):
    x, y = digits[0][:200], digits[1][:200]
    result = defenses.robustness_curves({"mnist_cnn": cnn, "mnist_cnn_robust": zoo.load("mnist_cnn_robust")},
                                        x, y, [0.0, 0.2, 0.3], attack="pgd", steps=10)
    standard, robust = result["accuracy"]["mnist_cnn"], result["accuracy"]["mnist_cnn_robust"]
    assert robust[0] > 0.95 and standard[0] > 0.95
    assert robust[1] > standard[1] + 0.5 and robust[2] > standard[2] + 0.5, result
    import matplotlib
    matplotlib.use("Agg")
    fig = defenses.plot_robustness_curves(result)
    assert len(fig.axes[0].lines) == 2


# ---------------------------------------------------------------- errors

def test_bad_inputs_fail_with_clear_errors(cnn, digits):
    x, y = digits[0][:4], digits[1][:4]
    detector = defenses.AdversarialDetector()
    with pytest.raises(CourseKitError, match="eps must be a finite number >= 0"):
        defenses.robustness_curve(cnn, x, y, [0.1, -0.1])
    with pytest.raises(CourseKitError, match="eps must be a finite number >= 0"):
        defenses.adaptive_attack(cnn, detector, x, y, eps=-0.1, alpha=0.01, steps=2)
    with pytest.raises(CourseKitError, match="Unknown attack 'deepfool'"):
        defenses.robustness_curve(cnn, x, y, [0.1], attack="deepfool")
    with pytest.raises(CourseKitError, match="Unknown attack"):
        defenses.train_detector(cnn, x, y, attack="cw", progress=False)
    with pytest.raises(CourseKitError, match="Unknown method 'trades'"):
        defenses.adversarial_training(MnistCNN(), x, y, method="trades", progress=False)
    with pytest.raises(CourseKitError, match=r"shape \(4,\)"):
        defenses.robustness_curve(cnn, x, y[:3], [0.1])
    with pytest.raises(CourseKitError, match=r"shape \(N, C, H, W\)"):
        defenses.adaptive_attack(cnn, detector, x[0], y, 0.1, 0.01, 2)
    with pytest.raises(CourseKitError, match="same size"):
        defenses.detector_accuracy(detector, x, torch.rand(2, 1, 14, 14))
    with pytest.raises(CourseKitError, match=r"detector_logits must have shape \(2,\)"):
        defenses.bypass_loss(torch.zeros(2, 10), torch.zeros(2, 1), torch.tensor([0, 1]))
    with pytest.raises(CourseKitError, match="eps_values must be a list"):
        defenses.robustness_curve(cnn, x, y, 0.3)
    with pytest.raises(CourseKitError, match=r"\[0, 1\]"):
        defenses.make_adversarial(cnn, x * 255, y)


# ---------------------------------------------------------------- one adversarial-training epoch, written out

def test_an_adversarial_training_epoch_is_the_min_max_loop_by_hand(digits):
    import torch.nn.functional as F

    x, y = digits[0][:48], digits[1][:48]
    keep = x.clone()

    def fresh():
        torch.manual_seed(0)
        model = MnistCNN()
        return model, torch.optim.SGD(model.parameters(), lr=0.05)

    model, opt = fresh()
    loss = defenses.adversarial_training_epoch(model, opt, x, y, eps=0.2, alpha=0.08, steps=2, batch_size=16,
                                               generator=torch.Generator().manual_seed(3))
    by_hand, by_hand_opt = fresh()
    g, losses = torch.Generator().manual_seed(3), []
    for start in range(0, 48, 16):
        xb, yb = x[start:start + 16], y[start:start + 16]
        x_adv = (xb + (2 * torch.rand(xb.shape, generator=g) - 1) * 0.2).clamp(0, 1)
        for _ in range(2):
            x_adv.requires_grad_(True)
            grad, = torch.autograd.grad(F.cross_entropy(by_hand(x_adv), yb), x_adv)
            x_adv = attacks.project_linf(x_adv.detach() + 0.08 * grad.sign(), xb, 0.2)
        batch_loss = F.cross_entropy(by_hand(x_adv), yb)
        by_hand_opt.zero_grad()
        batch_loss.backward()
        by_hand_opt.step()
        losses.append(batch_loss.item())
    assert isinstance(loss, float) and loss == pytest.approx(sum(losses) / 3, rel=1e-5)
    assert all(torch.allclose(p, q, atol=1e-5) for p, q in zip(model.parameters(), by_hand.parameters()))
    assert torch.equal(x, keep)
    with pytest.raises(CourseKitError, match="optimizer"):
        defenses.adversarial_training_epoch(model, "sgd", x, y, eps=0.2, alpha=0.08, steps=2, batch_size=16,
                                            generator=torch.Generator())


def test_fgsm_training_overfits_to_fgsm_while_pgd_still_breaks_it(cnn, digits):
    """Lecture 3's demo at a small size: one-step training raises FGSM accuracy, PGD accuracy stays near 0."""
    x_train, y_train = data.load_mnist("train", limit=1000)
    x_eval, y_eval = digits[0][300:400], digits[1][300:400]
    model = zoo.load("mnist_cnn")
    defenses.adversarial_training(model, x_train, y_train, method="fgsm", eps=0.3, alpha=0.3, random_start=False,
                                  epochs=5, lr=3e-3, batch_size=50, seed=0, progress=False)
    fgsm_before = training.accuracy(cnn, attacks.fgsm(cnn, x_eval, y_eval, 0.3), y_eval)
    fgsm_after = training.accuracy(model, attacks.fgsm(model, x_eval, y_eval, 0.3), y_eval)
    pgd_after = training.accuracy(model, attacks.pgd(model, x_eval, y_eval, 0.3, 0.03, 20, seed=0), y_eval)
    assert fgsm_after >= fgsm_before + 0.2 and pgd_after <= 0.05
