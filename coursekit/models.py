"""Small networks used throughout the course.

Every classifier takes images in [0, 1] and returns logits; normalisation is the
model's first layer, so attacks and plots never have to think about it.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as a layer inside the model."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MnistCNN(nn.Module):
    """Two 5x5 convolutions with max-pooling, then two dense layers.

    ``(N, 1, 28, 28)`` images in [0, 1] -> ``(N, 10)`` logits.
    ``width`` scales the channel counts (16 and 32 at width 1).
    """

    def __init__(self, width: int = 1):
        super().__init__()
        c1, c2 = 16 * width, 32 * width
        self.normalize = Normalize([MNIST_MEAN], [MNIST_STD])
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x)))


class MnistMLP(nn.Module):
    """A fully connected network: 784 -> hidden -> hidden -> 10 logits."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.normalize = Normalize([MNIST_MEAN], [MNIST_STD])
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: logits = W x + b on raw pixels in [0, 1].

    No normalisation on purpose: the linear explanation of adversarial examples
    reads directly off ``W`` (see :mod:`coursekit.linear`).
    """

    def __init__(self, in_features: int = 784, num_classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))
