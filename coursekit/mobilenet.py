"""MobileNet v1: a real ImageNet classifier that ships with coursekit.

The weights are Keras' ImageNet MobileNet v1 (width multiplier ``alpha = 0.75``,
224x224 inputs, 1000 classes; about 68% top-1 as published), ported to PyTorch
by ``scripts/convert_mobilenet.py`` and loaded offline with::

    from coursekit import data, mobilenet, zoo
    model = zoo.load("mobilenet_v1_imagenet")                 # eval mode, float32
    x = mobilenet.imagenet_preprocess(data.load_cat_photo())  # (1, 3, 224, 224) in [0, 1]
    mobilenet.top_k(model(x), 2)          # [('Egyptian cat', 0.56...), ('tabby', 0.23...)]

Like every coursekit classifier the model takes images in [0, 1] and returns
logits (the network's scores *before* its final softmax, which is what attacks
differentiate). The scaling the network was trained with, ``x / 127.5 - 1`` on
0-255 pixels, equals ``2 x - 1`` on [0, 1] pixels and happens inside the model.

Architecture (Howard et al., 2017, "MobileNets"): a 3x3 convolution with stride
2, then 13 depthwise-separable blocks, each

    x -> ReLU6(BN(depthwise 3x3 conv(x))) -> ReLU6(BN(pointwise 1x1 conv(.)))

then global average pooling and a 1x1 convolution to the 1000 logits.
Convolutions pad like TensorFlow's ``padding="same"``: a stride-2 convolution on
an even-sized input pads one row/column at the bottom/right only.
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from coursekit.checks import CourseKitError, check_images

IMAGE_SIZE = 224
NUM_CLASSES = 1000

# (output channels at alpha = 1, stride of the depthwise convolution) of the 13 blocks.
BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)
STEM_CHANNELS = 32
BN_EPS = 1e-3          # Keras' BatchNormalization epsilon
BN_MOMENTUM = 0.01     # Keras' momentum 0.99 (running = 0.99 running + 0.01 batch)
DROPOUT = 1e-3         # Keras' Dropout before the classifier (identity in eval mode)


def _width(channels: int, alpha: float) -> int:
    """Channels of a layer at width multiplier ``alpha`` (Keras: ``int(channels * alpha)``)."""
    return int(channels * alpha)


class TFSamePad2d(nn.Module):
    """Zero padding equal to TensorFlow's ``padding="same"`` for a ``kernel``/``stride`` conv.

    Output size is ``ceil(in / stride)``; the total padding
    ``max((out - 1) * stride + kernel - in, 0)`` is split with the extra pixel at the
    bottom/right. For stride 2, kernel 3 and an even input this is (0, 1, 0, 1).
    """

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    @staticmethod
    def amounts(size: int, kernel: int, stride: int) -> tuple[int, int]:
        """(before, after) padding of one spatial axis of length ``size``."""
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self.amounts(x.shape[-2], self.kernel, self.stride)
        left, right = self.amounts(x.shape[-1], self.kernel, self.stride)
        return F.pad(x, (left, right, top, bottom))

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


class ConvBNReLU6(nn.Module):
    """``ReLU6(BN(conv(pad(x))))``, where ``ReLU6(z) = min(max(z, 0), 6)``.

    ``kind`` is 'full' (3x3, the stem), 'depthwise' (3x3, one filter per channel)
    or 'pointwise' (1x1, mixes channels). Convolutions have no bias: BN has one.
    """

    def __init__(self, in_channels: int, out_channels: int, kind: str, stride: int = 1):
        super().__init__()
        if kind not in ("full", "depthwise", "pointwise"):
            raise CourseKitError(f"kind must be 'full', 'depthwise' or 'pointwise', got {kind!r}.")
        kernel = 1 if kind == "pointwise" else 3
        groups = in_channels if kind == "depthwise" else 1
        if kernel == 1 and stride == 1:
            self.pad, padding = nn.Identity(), 0
        elif kernel == 3 and stride == 1:
            # symmetric padding 1 is exactly TensorFlow's "same" for a 3x3 kernel at stride 1
            self.pad, padding = nn.Identity(), 1
        else:
            self.pad, padding = TFSamePad2d(kernel, stride), 0
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.pad(x))))


class DepthwiseSeparable(nn.Module):
    """One MobileNet block: a depthwise 3x3 conv (stride 1 or 2), then a pointwise 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.depthwise = ConvBNReLU6(in_channels, in_channels, "depthwise", stride)
        self.pointwise = ConvBNReLU6(in_channels, out_channels, "pointwise")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    """MobileNet v1 for ImageNet: ``(N, 3, H, W)`` RGB in [0, 1] -> ``(N, num_classes)`` logits.

    ``logits = W · avgpool(features(2 x - 1)) + b`` where ``features`` is the stem
    and the 13 depthwise-separable blocks; ``softmax(logits)`` are the class
    probabilities of the original Keras model. It was trained on 224x224 inputs
    (use :func:`imagenet_preprocess`); thanks to the global average pooling other
    sizes run too. The pretrained weights: ``zoo.load("mobilenet_v1_imagenet")``.
    """

    def __init__(self, alpha: float = 0.75, num_classes: int = NUM_CLASSES):
        super().__init__()
        if not alpha > 0:
            raise CourseKitError(f"alpha (the width multiplier) must be > 0, got {alpha!r}.")
        self.alpha, self.num_classes = alpha, num_classes
        channels = _width(STEM_CHANNELS, alpha)
        layers: list[nn.Module] = [ConvBNReLU6(3, channels, "full", stride=2)]
        for out, stride in BLOCKS:
            layers.append(DepthwiseSeparable(channels, _width(out, alpha), stride))
            channels = _width(out, alpha)
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(DROPOUT)
        self.classifier = nn.Conv2d(channels, num_classes, 1)  # Keras' "conv_preds"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
            raise CourseKitError(
                f"MobileNetV1 takes RGB images of shape (N, 3, H, W) in [0, 1], got "
                f"{tuple(x.shape)}.{hint} mobilenet.imagenet_preprocess(photo) makes one."
            )
        h = self.features(x * 2 - 1)              # [0, 1] -> [-1, 1], as x / 127.5 - 1 on 0-255
        h = h.mean(dim=(2, 3), keepdim=True)      # global average pooling -> (N, C, 1, 1)
        return self.classifier(self.dropout(h)).flatten(1)


# ---------------------------------------------------------------- class names

@lru_cache(maxsize=1)
def _class_names() -> tuple[str, ...]:
    path = Path(str(resources.files("coursekit") / "assets" / "imagenet_classes.txt"))
    names = tuple(path.read_text(encoding="utf-8").splitlines())
    if len(names) != NUM_CLASSES:
        raise CourseKitError(f"{path} should list {NUM_CLASSES} class names, found {len(names)}.")
    return names


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names in index order (Keras' list): ``[0] == 'tench'``."""
    return list(_class_names())


# ---------------------------------------------------------------- pre/post-processing

def imagenet_preprocess(x: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Resize and center-crop photos the way ImageNet classifiers are evaluated.

    The short side is resized to ``round(256 * size / 224)`` pixels (bilinear with
    antialiasing; the aspect ratio is kept), then the central ``size x size``
    square is cropped. ``x``: ``(3, H, W)`` or ``(N, 3, H, W)`` in [0, 1] ->
    ``(N, 3, size, size)`` in [0, 1]. Differentiable with respect to ``x``.
    """
    if isinstance(x, torch.Tensor) and x.dim() == 3:
        x = x.unsqueeze(0)
    check_images(x, "x", channels=3)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise CourseKitError(f"size must be a positive integer (224 for MobileNet), got {size!r}.")
    height, width = x.shape[-2:]
    if min(height, width) < 1:
        raise CourseKitError(f"x has an empty image: shape {tuple(x.shape)}.")
    short = round(256 * size / 224)
    if height <= width:
        new_h, new_w = short, max(int(short * width / height), short)
    else:
        new_h, new_w = max(int(short * height / width), short), short
    resized = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False,
                            antialias=True)
    top, left = int(round((new_h - size) / 2)), int(round((new_w - size) / 2))
    return resized[..., top:top + size, left:left + size].clamp(0, 1)


def top_k(logits: torch.Tensor, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one image: ``[(name, softmax(logits)[c]), ...]``.

    ``logits``: ``(1000,)`` or ``(1, 1000)``, e.g. ``model(x)`` for a single image.
    """
    if not isinstance(logits, torch.Tensor):
        raise CourseKitError(f"logits must be a torch.Tensor, got {type(logits).__name__}.")
    if logits.dim() == 2 and logits.shape[0] == 1:
        logits = logits[0]
    if logits.dim() != 1 or logits.shape[0] != NUM_CLASSES:
        raise CourseKitError(
            f"top_k takes the {NUM_CLASSES} logits of one image, shape ({NUM_CLASSES},) or "
            f"(1, {NUM_CLASSES}), got {tuple(logits.shape)}. For a batch, call it per image: "
            "top_k(logits[i])."
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= NUM_CLASSES:
        raise CourseKitError(f"k must be an integer between 1 and {NUM_CLASSES}, got {k!r}.")
    probs = torch.softmax(logits.detach().float(), dim=0)
    values, indices = probs.topk(k)
    names = _class_names()
    return [(names[i], float(p)) for p, i in zip(values.tolist(), indices.tolist())]
