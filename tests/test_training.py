import pytest
import torch

from coursekit import data, training
from coursekit.checks import CourseKitError
from coursekit.models import MnistCNN, MnistMLP


def test_seeded_training_repeats_exactly(offline):
    x, y = data.load_mnist("train", limit=256)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MnistMLP(hidden=32)
        history = training.train_classifier(model, x, y, epochs=2, seed=5, progress=False)
        runs.append((history, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][0]["loss"][1] < runs[0][0]["loss"][0]


def test_predict_restores_mode_and_accuracy_checks_labels():
    model = MnistCNN().train()
    x = torch.rand(3, 1, 28, 28)
    assert training.predict(model, x).shape == (3,)
    assert model.training
    with pytest.raises(CourseKitError, match="shape"):
        training.accuracy(model, x, torch.tensor([1, 2]))


def test_predict_works_for_models_without_parameters():
    from coursekit.linear import BinaryLogisticRegression

    model = BinaryLogisticRegression(torch.ones(4), -1.0)
    x = torch.tensor([[[[0.0, 0.0, 0.0, 0.0]]], [[[1.0, 1.0, 1.0, 1.0]]]])
    assert training.predict(model, x).tolist() == [0, 1]
