import math

import pytest
import torch
from torch import nn

from coursekit import data, transfer, zoo
from coursekit.checks import CourseKitError

STANDARD = ["mnist_logreg", "mnist_mlp", "mnist_cnn", "mnist_cnn_wide"]


def _loadable(name):
    return name in zoo.available() and (zoo.weights_dir() / f"{name}.pt").is_file()


@pytest.fixture(scope="module")
def models():
    names = [n for n in STANDARD if _loadable(n)] + ["mnist_cnn_robust"]
    return {name: zoo.load(name) for name in names}


@pytest.fixture(scope="module")
def pgd_result(models):
    x, y = data.load_mnist("test", limit=200)
    return transfer.transfer_matrix(models, None, x, y, attack="pgd", eps=0.2, steps=10, seed=0)


def test_matrix_shape_names_and_ranges(models, pgd_result):
    names = list(models)
    assert len(names) >= 4
    assert pgd_result["sources"] == names and pgd_result["targets"] == names
    assert len(pgd_result["success"]) == len(names)
    assert all(len(row) == len(names) for row in pgd_result["success"])
    assert all(0 <= v <= 1 for row in pgd_result["success"] for v in row)
    assert len(pgd_result["accuracy"]) == len(names) and min(pgd_result["accuracy"]) > 0.85
    assert pgd_result["attack"] == "pgd" and pgd_result["eps"] == 0.2 and pgd_result["n"] == 200


def test_white_box_beats_transfer_and_robust_model_resists_transfer(models, pgd_result):
    names = list(models)
    s = pgd_result["success"]
    k = len(names)
    diagonal = [s[i][i] for i in range(k)]
    off_diagonal = [s[i][j] for i in range(k) for j in range(k) if i != j]
    assert sum(diagonal) / k > sum(off_diagonal) / len(off_diagonal) + 0.1
    robust = names.index("mnist_cnn_robust")
    for i in range(k):  # for each standard source, attacking itself works at least as well as any transfer
        if i != robust:  # (the robust model resists its own attack, yet its examples can fool weaker models)
            assert s[i][i] >= max(s[i][j] for j in range(k) if j != i) - 0.05
    for i, name in enumerate(names):
        if name != "mnist_cnn_robust":
            assert s[i][robust] < 0.1, (name, s[i][robust])   # transfer to the robust model fails
    cnn, wide = names.index("mnist_cnn"), names.index("mnist_cnn_wide")
    assert s[cnn][wide] > 0.3 and s[wide][cnn] > 0.3       # ... but works between similar CNNs


def test_success_counts_only_examples_the_target_got_right():
    class Brightness(nn.Module):  # class 1 iff the mean pixel exceeds a threshold
        def __init__(self, threshold):
            super().__init__()
            self.threshold = threshold
            self.scale = nn.Parameter(torch.ones(()))  # predict() looks up the parameters' device

        def forward(self, x):
            m = x.mean((1, 2, 3)) * self.scale
            return torch.stack([self.threshold - m, m - self.threshold], 1)

    levels = torch.tensor([0.1, 0.3, 0.45, 0.7, 0.9])
    x = levels.view(5, 1, 1, 1).expand(5, 1, 2, 2).clone()
    y = torch.tensor([0, 0, 1, 1, 1])

    def brighten(model, xb, yb):  # the "attack": +0.2 on every pixel, whatever the model
        return (xb + 0.2).clamp(0, 1)

    models = {"a": Brightness(0.4), "b": Brightness(0.6)}
    result = transfer.transfer_matrix(models, None, x, y, attack=brighten, eps=0.2)
    # a is right on 0.1, 0.3, 0.45, 0.7, 0.9 (all 5); brightened: 0.3, 0.5, 0.65, 0.9, 1.0
    #   -> a flips only 0.3 -> 0.5 (class 0 read as 1): success 1/5
    # b is right on 0.1, 0.3 (class 0), 0.7, 0.9 (class 1): 4 examples; 0.45 (class 1) is wrong
    #   -> brightened 0.3, 0.5, 0.9, 1.0: none flip: success 0/4 (0.45 -> 0.65 is not counted)
    assert result["success"] == [[0.2, 0.0], [0.2, 0.0]]
    assert result["accuracy"] == pytest.approx([1.0, 0.8])
    assert result["adversarial_accuracy"] == [pytest.approx([0.8, 1.0])] * 2
    assert result["attack"] == "brighten"
    class AlwaysTwo(nn.Module):  # never right on labels 0/1
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([0.0, 0.0, 1.0]))

        def forward(self, x):
            return self.bias.expand(len(x), 3)

    empty = transfer.transfer_matrix({"a": models["a"]}, {"never": AlwaysTwo()}, x, y,
                                     attack=brighten)
    assert math.isnan(empty["success"][0][0])


def test_fgsm_and_rectangular_matrices(models):
    x, y = data.load_mnist("test", limit=100)
    sources = {"mnist_cnn": models["mnist_cnn"]}
    targets = {"mnist_mlp": models["mnist_mlp"], "mnist_cnn": models["mnist_cnn"]}
    result = transfer.transfer_matrix(sources, targets, x, y, attack="fgsm", eps=0.25)
    assert result["sources"] == ["mnist_cnn"] and result["targets"] == ["mnist_mlp", "mnist_cnn"]
    assert len(result["success"]) == 1 and len(result["success"][0]) == 2
    assert result["success"][0][1] > result["success"][0][0] * 0.8
    zero = transfer.transfer_matrix(sources, targets, x, y, attack="fgsm", eps=0.0)
    assert zero["success"] == [[0.0, 0.0]]


def test_models_are_left_as_they_were(models):
    x, y = data.load_mnist("test", limit=20)
    model = models["mnist_cnn"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    try:
        transfer.transfer_matrix({"cnn": model}, {"mlp": models["mnist_mlp"]}, x, y, attack="pgd",
                                 eps=0.1, steps=2)
        assert model.training and all(m.training for m in model.modules())
    finally:
        model.eval()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_plot_transfer_matrix(pgd_result):
    import matplotlib
    matplotlib.use("Agg")
    fig = transfer.plot_transfer_matrix(pgd_result)
    ax = fig.axes[0]
    k = len(pgd_result["sources"])
    assert len(ax.texts) == k * k
    assert [t.get_text() for t in ax.get_yticklabels()] == pgd_result["sources"]
    with pytest.raises(CourseKitError, match="transfer_matrix"):
        transfer.plot_transfer_matrix({"success": [[0.5]]})


def test_bad_inputs_fail_with_clear_errors(models):
    x, y = data.load_mnist("test", limit=4)
    cnn = {"mnist_cnn": models["mnist_cnn"]}
    with pytest.raises(CourseKitError, match="eps must be a finite number >= 0"):
        transfer.transfer_matrix(cnn, None, x, y, eps=-0.1)
    with pytest.raises(CourseKitError, match="Unknown attack 'jsma'"):
        transfer.transfer_matrix(cnn, None, x, y, attack="jsma")
    with pytest.raises(CourseKitError, match=r"shape \(4,\)"):
        transfer.transfer_matrix(cnn, None, x, y[:2])
    with pytest.raises(CourseKitError, match="non-empty dict"):
        transfer.transfer_matrix({}, None, x, y)
    with pytest.raises(CourseKitError, match=r"target_models\['x'\] must be a torch.nn.Module"):
        transfer.transfer_matrix(cnn, {"x": "mnist_cnn"}, x, y)
    with pytest.raises(CourseKitError, match=r"\[0, 1\]"):
        transfer.transfer_matrix(cnn, None, x * 255, y)
