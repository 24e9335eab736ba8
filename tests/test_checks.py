"""The shared argument checks (coursekit.checks): one wording for each kind of bad number."""
import numpy as np
import pytest
import torch

from coursekit import attacks, checks, gan, metrics
from coursekit.checks import CourseKitError


@pytest.mark.parametrize("value,minimum,message", [
    (0, 1, "steps must be a positive integer, got 0."),
    (-1, 0, "steps must be an integer >= 0, got -1."),
    (2.0, 1, "steps must be a positive integer, got 2.0."),
    (True, 0, "steps must be an integer >= 0, got True."),        # a bool is not a count
    ("3", 1, "steps must be a positive integer, got '3'."),
])
def test_check_int_rejects_with_one_wording(value, minimum, message):
    with pytest.raises(CourseKitError) as err:
        checks.check_int(value, "steps", minimum)
    assert str(err.value) == message


def test_check_int_accepts_python_and_numpy_integers():
    assert checks.check_int(0, "n", minimum=0) == 0
    out = checks.check_int(np.int64(5), "n")
    assert out == 5 and type(out) is int


@pytest.mark.parametrize("value", [0, -1.5, float("inf"), float("nan"), "x", None])
def test_check_positive_float_rejects(value):
    with pytest.raises(CourseKitError, match="lr must be a positive number"):
        checks.check_positive_float(value, "lr")


def test_the_library_uses_the_shared_checks():
    """Attacks, metrics and the GAN trainer report the same kind of mistake the same way."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    with pytest.raises(CourseKitError, match=r"^steps must be an integer >= 0, got -2\.$"):
        attacks.pgd(model, x, y, eps=0.1, alpha=0.01, steps=-2)
    with pytest.raises(CourseKitError, match=r"^splits must be a positive integer, got 0\.$"):
        metrics.inception_score(torch.randn(10, 3), splits=0)
    with pytest.raises(CourseKitError, match=r"^k \(discriminator steps per generator step\) must be a positive integer"):
        gan.GANTrainer(gan.MLPGenerator(), gan.MLPDiscriminator(), k=0)
    with pytest.raises(CourseKitError, match=r"^lr_g must be a positive number"):
        gan.GANTrainer(gan.MLPGenerator(), gan.MLPDiscriminator(), lr_g=-1)


def test_the_attack_parameter_group_is_checked_in_one_place():
    """make_adversarial, train_detector, robustness_curve and transfer_matrix share defenses.AttackSpec."""
    from coursekit import defenses, transfer

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, y = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0])
    calls = {
        "make_adversarial": lambda **kw: defenses.make_adversarial(model, x, y, **kw),
        "train_detector": lambda **kw: defenses.train_detector(model, x, y, progress=False, **kw),
        "robustness_curve": lambda **kw: defenses.robustness_curve(model, x, y, [0.1], **kw),
        "transfer_matrix": lambda **kw: transfer.transfer_matrix({"m": model}, None, x, y, **kw),
    }
    for name, call in calls.items():
        with pytest.raises(CourseKitError, match=r"^Unknown attack 'jsma'"):
            call(attack="jsma")
        with pytest.raises(CourseKitError, match=r"^steps must be an integer >= 0, got -1\.$"):
            call(steps=-1)
        with pytest.raises(CourseKitError, match=r"^alpha must be"):
            call(alpha=-0.1)
    spec = defenses.AttackSpec("PGD", eps=0.3, steps=10)
    assert spec.attack == "pgd" and spec.step_size == pytest.approx(0.075)
    assert spec.with_eps(0.1).step_size == pytest.approx(0.025), "a default step follows the budget"
    assert defenses.AttackSpec(lambda m, a, b: a, alpha=0.5).with_eps(0.1).step_size == 0.5
