"""MobileNet v1 (ImageNet): the PyTorch port against the original Keras weights.

With ../shared: a plain-numpy forward pass that follows model.json layer by layer
(NHWC, float64, the original tfjs weights read by its own reader) is the reference
for the float32 port; the shipped float16 weights must keep its predictions.
Without ../shared: the shipped model classifies real photos as recorded.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coursekit import data, zoo
from coursekit.checks import CourseKitError
from coursekit.mobilenet import (MobileNetV1, TFSamePad2d, imagenet_classes,
                                 imagenet_preprocess, top_k)

ROOT = Path(__file__).resolve().parents[1]
TFJS = Path("data") / "weights" / "mobilenet_v1_0.75_224_tfjs"
PHOTOS = ("cat", "coffee", "astronaut", "rocket")


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def tfjs_folder(shared_dir) -> Path:
    folder = shared_dir / TFJS
    if not (folder / "model.json").is_file():
        pytest.skip(f"no MobileNet tfjs model in {folder}")
    return folder


@pytest.fixture(scope="module")
def converter():
    """scripts/convert_mobilenet.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("convert_mobilenet", ROOT / "scripts" / "convert_mobilenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model32(tfjs_folder, converter):
    """The port with the exact float32 weights of the tfjs model."""
    model = MobileNetV1(alpha=0.75)
    model.load_state_dict(converter.load_tfjs_state_dict(tfjs_folder), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def shipped():
    return zoo.load("mobilenet_v1_imagenet")


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """The four photos, preprocessed: (4, 3, 224, 224) in [0, 1]."""
    return torch.cat([imagenet_preprocess(data.load_photo(name)) for name in PHOTOS])


@pytest.fixture(scope="module")
def shipped_logits(shipped, photos) -> torch.Tensor:
    with torch.no_grad():
        return shipped(photos)


# ---------------------------------------------------------------- numpy reference

def read_tfjs(folder: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """model.json's layers and its weights (Keras layout, float64), read independently of coursekit."""
    spec = json.loads((folder / "model.json").read_text())
    weights = {}
    for group in spec["weightsManifest"]:
        raw = np.frombuffer(b"".join((folder / p).read_bytes() for p in group["paths"]), dtype="<f4")
        start = 0
        for entry in group["weights"]:
            size = int(np.prod(entry["shape"]))
            weights[entry["name"]] = raw[start:start + size].reshape(entry["shape"]).astype(np.float64)
            start += size
        assert start == raw.size
    return spec["modelTopology"]["model_config"]["config"]["layers"], weights


def windows(x: np.ndarray, kernel: int, stride: int):
    """TensorFlow "same" padding, then the kernel*kernel strided windows of x (N, H, W, C)."""
    _, height, width, _ = x.shape
    pads = []
    for size in (height, width):
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads.append((total // 2, total - total // 2, out))
    (top, bottom, out_h), (left, right, out_w) = pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    for dy in range(kernel):
        for dx in range(kernel):
            yield dy, dx, padded[:, dy:dy + stride * (out_h - 1) + 1:stride,
                                 dx:dx + stride * (out_w - 1) + 1:stride]


def numpy_mobilenet(images: torch.Tensor, layers: list[dict], w: dict) -> tuple[np.ndarray, np.ndarray]:
    """The Keras model in plain numpy: (N, 3, H, W) in [0, 1] -> (logits, softmax probabilities)."""
    x = images.double().permute(0, 2, 3, 1).numpy() * 255.0 / 127.5 - 1.0  # Keras: x / 127.5 - 1
    logits = None
    previous = None
    for layer in layers:
        kind, cfg, name = layer["class_name"], layer["config"], layer["config"]["name"]
        if layer.get("inbound_nodes"):
            assert layer["inbound_nodes"][0][0][0] == previous, "the model is a plain chain"
        previous = name
        if kind == "InputLayer":
            continue
        if kind in ("Conv2D", "DepthwiseConv2D"):
            assert cfg["padding"] == "same" and cfg["activation"] == "linear"
            assert cfg["dilation_rate"] == [1, 1] and cfg["kernel_size"][0] == cfg["kernel_size"][1]
            stride = cfg["strides"][0]
            out = 0.0
            if kind == "Conv2D":  # sum over the window of (N, h, w, Cin) @ (Cin, Cout)
                kernel = w[f"{name}/kernel"]
                for dy, dx, window in windows(x, kernel.shape[0], stride):
                    out = out + window @ kernel[dy, dx]
            else:                 # each channel with its own 3x3 filter
                kernel = w[f"{name}/depthwise_kernel"]
                for dy, dx, window in windows(x, kernel.shape[0], stride):
                    out = out + window * kernel[dy, dx, :, 0]
            x = out + w[f"{name}/bias"] if cfg["use_bias"] else out
        elif kind == "BatchNormalization":
            mean, var = w[f"{name}/moving_mean"], w[f"{name}/moving_variance"]
            x = (x - mean) / np.sqrt(var + cfg["epsilon"]) * w[f"{name}/gamma"] + w[f"{name}/beta"]
        elif kind == "Activation" and cfg["activation"] == "relu6":
            x = np.clip(x, 0.0, 6.0)
        elif kind == "Activation" and cfg["activation"] == "softmax":
            logits = x.reshape(len(x), -1)
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            x = e / e.sum(axis=-1, keepdims=True)
        elif kind == "GlobalAveragePooling2D":
            x = x.mean(axis=(1, 2))
        elif kind == "Reshape":
            x = x.reshape((len(x), *cfg["target_shape"]))
        elif kind == "Dropout":
            pass  # identity at inference
        else:
            raise AssertionError(f"layer {name}: {kind} not handled by the reference")
    return logits, x.reshape(len(x), -1)


# ---------------------------------------------------------------- (a) port == original weights

def test_float32_port_matches_numpy_forward_of_original_weights(tfjs_folder, model32, photos):
    layers, weights = read_tfjs(tfjs_folder)
    x = photos[:2]  # the cat and the coffee, 224x224
    ref_logits, ref_probs = numpy_mobilenet(x, layers, weights)
    with torch.no_grad():
        logits = model32(x).double().numpy()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert logits.shape == ref_logits.shape == (2, 1000)
    assert np.abs(logits - ref_logits).max() < 1e-4
    assert np.abs(probs - ref_probs).max() < 1e-4
    assert ref_probs[0].argmax() == 285 and ref_probs[1].argmax() == 967  # Egyptian cat, espresso


def test_same_padding_matches_tensorflow_on_odd_sizes(tfjs_folder, model32):
    """At 97x131 the stride-2 layers see odd sizes, where "same" pads both sides."""
    layers, weights = read_tfjs(tfjs_folder)
    x = F.interpolate(data.load_photo("rocket")[None], size=(97, 131), mode="bilinear",
                      antialias=True).clamp(0, 1)
    ref_logits, _ = numpy_mobilenet(x, layers, weights)
    with torch.no_grad():
        logits = model32(x).double().numpy()
    assert np.abs(logits - ref_logits).max() < 1e-4


def test_every_tfjs_weight_is_used_once(tfjs_folder, converter):
    _, weights = read_tfjs(tfjs_folder)
    state = converter.load_tfjs_state_dict(tfjs_folder)
    assert set(converter.keras_to_torch_names()) == set(weights)
    assert set(state) == set(MobileNetV1().state_dict())
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    # layouts: HWIO -> OIHW and [3, 3, C, 1] -> [C, 1, 3, 3]
    assert torch.equal(state["features.0.conv.weight"][5, 2, 0, 1],
                       torch.tensor(weights["conv1/kernel"][0, 1, 2, 5], dtype=torch.float32))
    assert torch.equal(state["features.4.depthwise.conv.weight"][7, 0, 2, 1],
                       torch.tensor(weights["conv_dw_4/depthwise_kernel"][2, 1, 7, 0], dtype=torch.float32))
    assert torch.equal(state["classifier.weight"][39, 100, 0, 0],
                       torch.tensor(weights["conv_preds/kernel"][0, 0, 100, 39], dtype=torch.float32))


# ---------------------------------------------------------------- (b) shipped float16 weights

def test_shipped_weights_are_the_converted_weights_in_float16(tfjs_folder, converter):
    shipped_state = torch.load(zoo.weights_dir() / "mobilenet_v1_imagenet.pt", weights_only=True)
    converted = converter.load_tfjs_state_dict(tfjs_folder)
    assert set(shipped_state) == set(converted)
    for key, value in converted.items():
        expected = value.half() if value.is_floating_point() else value
        assert torch.equal(shipped_state[key], expected), key


def test_shipped_model_agrees_with_float32_model(model32, photos, shipped_logits):
    with torch.no_grad():
        logits32 = model32(photos)
    assert torch.equal(logits32.argmax(1), shipped_logits.argmax(1))
    assert (logits32 - shipped_logits).abs().max() < 0.25  # logits span about 30
    probs_gap = (logits32.softmax(1) - shipped_logits.softmax(1)).abs().max()
    assert probs_gap < 0.02


def test_manifest_records_the_shipped_file():
    record = zoo.manifest()["mobilenet_v1_imagenet"]
    path = zoo.weights_dir() / "mobilenet_v1_imagenet.pt"
    assert record["sha256"] == zoo.sha256_of(path)
    assert record["bytes"] == path.stat().st_size < 6_000_000
    assert record["parameters"] == sum(p.numel() for p in MobileNetV1().parameters()) == 2_585_560
    assert record["licence"] == "Apache-2.0"


# ---------------------------------------------------------------- (c) offline: real photos

def test_zoo_entry_loads_in_eval_mode(shipped):
    assert "mobilenet_v1_imagenet" in zoo.available()
    assert zoo.ENTRIES["mobilenet_v1_imagenet"].trainer is None
    assert not shipped.training
    assert all(p.dtype == torch.float32 for p in shipped.parameters())


def test_cat_photo_is_an_egyptian_cat(shipped_logits):
    top = top_k(shipped_logits[0], 3)
    names = imagenet_classes()
    assert 281 <= int(shipped_logits[0].argmax()) <= 285  # a domestic cat class
    assert top[0][0] == "Egyptian cat" and 0.50 < top[0][1] < 0.63
    assert top[1][0] == "tabby" and 0.18 < top[1][1] < 0.29
    assert {name for name, _ in top} <= {names[i] for i in range(281, 286)}


def test_cat_probabilities_recorded_in_shared_readme(shipped):
    """README of ../shared: Egyptian_cat 0.39 / tabby 0.26 (short side resized to 224, center crop)."""
    cat = data.load_cat_photo()[None]
    resized = F.interpolate(cat, size=(224, round(224 * 451 / 300)), mode="bilinear", antialias=True)
    left = (resized.shape[-1] - 224) // 2
    with torch.no_grad():
        top = top_k(shipped(resized[..., left:left + 224].clamp(0, 1)), 2)
    assert top[0][0] == "Egyptian cat" and abs(top[0][1] - 0.39) < 0.03
    assert top[1][0] == "tabby" and abs(top[1][1] - 0.26) < 0.03


def test_coffee_is_espresso(shipped_logits):
    name, prob = top_k(shipped_logits[1], 1)[0]
    assert name == "espresso" and prob > 0.9


def test_class_names():
    names = imagenet_classes()
    assert len(names) == 1000
    assert names[0] == "tench" and names[39] == "common iguana" and names[967] == "espresso"
    assert names[281] == "tabby" and names[285] == "Egyptian cat"
    names[0] = "changed"
    assert imagenet_classes()[0] == "tench"  # a copy each time


def test_top_k_is_sorted_softmax():
    logits = torch.zeros(1000)
    logits[39], logits[7] = 3.0, 2.0
    top = top_k(logits[None], 3)
    z = 998 + np.e ** 3 + np.e ** 2  # 998 logits at 0
    assert [n for n, _ in top[:2]] == ["common iguana", imagenet_classes()[7]]
    assert top[0][1] == pytest.approx(np.e ** 3 / z, rel=1e-5)
    assert top[2][1] == pytest.approx(1 / z, rel=1e-5)


def test_gradient_reaches_the_input(shipped, photos):
    x = photos[:1].clone().requires_grad_(True)
    shipped(x)[0, 285].backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    shipped.zero_grad(set_to_none=True)


def test_dropout_and_batchnorm_as_keras():
    model = MobileNetV1()
    assert model.dropout.p == pytest.approx(1e-3)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 27 and all(m.eps == 1e-3 for m in bns)
    assert model.classifier.kernel_size == (1, 1) and model.classifier.bias is not None


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (224, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (14, 3, 1, (1, 1)), (5, 1, 1, (0, 0)), (8, 1, 2, (0, 0)),
])
def test_tf_same_padding_amounts(size, kernel, stride, expected):
    assert TFSamePad2d.amounts(size, kernel, stride) == expected


# ---------------------------------------------------------------- preprocessing

def test_preprocess_shapes_and_range():
    cat = data.load_cat_photo()
    x = imagenet_preprocess(cat)
    assert x.shape == (1, 3, 224, 224) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert imagenet_preprocess(torch.stack([cat, cat])).shape == (2, 3, 224, 224)
    assert imagenet_preprocess(cat, size=112).shape == (1, 3, 112, 112)
    tall = imagenet_preprocess(cat.transpose(1, 2))  # 451 x 300
    assert tall.shape == (1, 3, 224, 224)


def test_preprocess_matches_torchvision_resize_and_center_crop():
    from torchvision.transforms.v2 import functional as TF

    for photo in (data.load_cat_photo(), data.load_photo("rocket").transpose(1, 2)):
        expected = TF.center_crop(TF.resize(photo, 256, antialias=True), 224)
        assert torch.allclose(imagenet_preprocess(photo)[0], expected.clamp(0, 1), atol=1e-6)


def test_preprocess_crops_the_center():
    ramp = torch.linspace(0, 1, 400).expand(3, 200, 400)  # left 0 ... right 1
    x = imagenet_preprocess(ramp)
    # short side 200 -> 256 (long side 512), crop columns 144..367 of 512
    assert float(x[0, 0, 0, :].mean()) == pytest.approx(0.5, abs=0.01)
    assert float(x[0, 0, 0, 0]) == pytest.approx(144 / 511, abs=0.01)
    constant = imagenet_preprocess(torch.full((3, 300, 500), 0.3))
    assert torch.allclose(constant, torch.tensor(0.3), atol=1e-6)


# ---------------------------------------------------------------- (d) bad input

@pytest.mark.parametrize("make_bad, message", [
    (lambda cat: cat * 255, r"\[0, 1\]"),
    (lambda cat: cat.numpy(), "torch.Tensor"),
    (lambda cat: cat[:1], "3 channel"),
    (lambda cat: cat[0], r"\(N, C, H, W\)"),
    (lambda cat: (cat * 255).to(torch.uint8), "x.float\\(\\) / 255"),
], ids=["0-255 range", "numpy", "grayscale", "2-D", "uint8"])
def test_preprocess_rejects_bad_images(make_bad, message):
    with pytest.raises(CourseKitError, match=message):
        imagenet_preprocess(make_bad(data.load_cat_photo()))


@pytest.mark.parametrize("size", [0, -3, 2.5, "224", True])
def test_preprocess_rejects_bad_size(size):
    with pytest.raises(CourseKitError, match="size"):
        imagenet_preprocess(data.load_cat_photo(), size=size)


def test_model_rejects_wrong_shapes(shipped):
    with pytest.raises(CourseKitError, match="unsqueeze"):
        shipped(torch.rand(3, 224, 224))
    with pytest.raises(CourseKitError, match=r"\(N, 3, H, W\)"):
        shipped(torch.rand(1, 1, 224, 224))


def test_top_k_rejects_bad_input():
    with pytest.raises(CourseKitError, match="per image"):
        top_k(torch.zeros(2, 1000))
    with pytest.raises(CourseKitError, match="1000"):
        top_k(torch.zeros(10))
    with pytest.raises(CourseKitError, match="k must"):
        top_k(torch.zeros(1000), k=0)
    with pytest.raises(CourseKitError, match="torch.Tensor"):
        top_k([0.0] * 1000)
