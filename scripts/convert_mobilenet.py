"""Port Keras' ImageNet MobileNet v1 (alpha 0.75, 224x224) from TensorFlow.js to coursekit.

Reads the TensorFlow.js "layers" model (``model.json`` + binary shards: float32,
little-endian, concatenated in the order of ``weightsManifest``), maps every Keras
weight onto :class:`coursekit.mobilenet.MobileNetV1`, checks the result on real
photos, and writes

- ``coursekit/weights/mobilenet_v1_imagenet.pt`` (float16 storage, about 5 MB;
  ``zoo.load`` turns it back into float32), and
- its record in ``coursekit/weights/manifest.json`` (sha256, size, checks).

Usage, from the repository root::

    .venv/bin/python scripts/convert_mobilenet.py [TFJS_FOLDER]

``TFJS_FOLDER`` defaults to ``../shared/data/weights/mobilenet_v1_0.75_224_tfjs``.
The output is deterministic: rerunning it gives the same sha256.

Layout conversions: Keras kernels are HWIO ``[kh, kw, in, out]`` -> PyTorch OIHW;
depthwise kernels ``[kh, kw, C, 1]`` -> ``[C, 1, kh, kw]``; BatchNormalization
(gamma, beta, moving_mean, moving_variance) -> (weight, bias, running_mean,
running_var); the classifier "conv_preds" is a 1x1 convolution with bias.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "weights" / "mobilenet_v1_0.75_224_tfjs"
NAME = "mobilenet_v1_imagenet"
ALPHA = 0.75
NUM_BLOCKS = 13

_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
       "moving_variance": "running_var"}


def read_tfjs_weights(folder: str | Path) -> dict[str, np.ndarray]:
    """All weights of a TensorFlow.js layers model, by Keras name, in Keras layout (float32)."""
    folder = Path(folder)
    model_json = folder / "model.json"
    if not model_json.is_file():
        raise FileNotFoundError(f"No model.json in {folder}: is it a TensorFlow.js layers model?")
    spec = json.loads(model_json.read_text())
    weights: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        buffer = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            if entry.get("dtype", "float32") != "float32" or "quantization" in entry:
                raise ValueError(f"{entry['name']}: only unquantized float32 weights are supported.")
            count = int(np.prod(entry["shape"], dtype=np.int64))
            array = np.frombuffer(buffer, dtype="<f4", count=count, offset=offset)
            weights[entry["name"]] = array.reshape(entry["shape"]).astype(np.float32)
            offset += 4 * count
        if offset != len(buffer):
            raise ValueError(f"Group {group['paths']}: {len(buffer)} bytes, weights use {offset}.")
    return weights


def _hwio_to_oihw(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(3, 2, 0, 1)


def _depthwise_to_torch(kernel: np.ndarray) -> np.ndarray:
    if kernel.shape[3] != 1:
        raise ValueError(f"depth_multiplier must be 1, kernel shape {kernel.shape}.")
    return kernel.transpose(2, 3, 0, 1)  # [kh, kw, C, 1] -> [C, 1, kh, kw]


def keras_to_torch_names() -> dict[str, tuple[str, Callable]]:
    """Keras weight name -> (PyTorch state-dict key, layout conversion)."""
    same = np.asarray
    mapping: dict[str, tuple[str, Callable]] = {"conv1/kernel": ("features.0.conv.weight", _hwio_to_oihw)}
    for keras, torch_name in _BN.items():
        mapping[f"conv1_bn/{keras}"] = (f"features.0.bn.{torch_name}", same)
    for i in range(1, NUM_BLOCKS + 1):
        mapping[f"conv_dw_{i}/depthwise_kernel"] = (f"features.{i}.depthwise.conv.weight",
                                                   _depthwise_to_torch)
        mapping[f"conv_pw_{i}/kernel"] = (f"features.{i}.pointwise.conv.weight", _hwio_to_oihw)
        for keras, torch_name in _BN.items():
            mapping[f"conv_dw_{i}_bn/{keras}"] = (f"features.{i}.depthwise.bn.{torch_name}", same)
            mapping[f"conv_pw_{i}_bn/{keras}"] = (f"features.{i}.pointwise.bn.{torch_name}", same)
    mapping["conv_preds/kernel"] = ("classifier.weight", _hwio_to_oihw)
    mapping["conv_preds/bias"] = ("classifier.bias", same)
    return mapping


def load_tfjs_state_dict(folder: str | Path = DEFAULT_FOLDER) -> dict[str, torch.Tensor]:
    """The float32 state dict of ``MobileNetV1(alpha=0.75)`` from the TensorFlow.js folder.

    Every Keras weight is used exactly once and every parameter/buffer of the
    PyTorch model is filled (``num_batches_tracked`` is 0: the model is pretrained,
    not trained here).
    """
    keras = read_tfjs_weights(folder)
    mapping = keras_to_torch_names()
    unused, missing = set(keras) - set(mapping), set(mapping) - set(keras)
    if unused or missing:
        raise ValueError(f"Weights do not match MobileNet v1: unused {sorted(unused)}, "
                         f"missing {sorted(missing)}.")
    state = {}
    for name, array in keras.items():
        key, convert = mapping[name]
        state[key] = torch.from_numpy(np.ascontiguousarray(convert(array), dtype=np.float32))
    for i in range(NUM_BLOCKS + 1):
        for bn in (("features.0.bn",) if i == 0 else
                   (f"features.{i}.depthwise.bn", f"features.{i}.pointwise.bn")):
            state[f"{bn}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return state


def build_float32_model(folder: str | Path = DEFAULT_FOLDER) -> torch.nn.Module:
    """``MobileNetV1`` in eval mode with the exact float32 weights (strict loading)."""
    from coursekit.mobilenet import MobileNetV1

    model = MobileNetV1(alpha=ALPHA)
    model.load_state_dict(load_tfjs_state_dict(folder), strict=True)
    return model.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


PHOTOS = ("cat", "coffee", "astronaut", "rocket")


def _classify_photos(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from coursekit import data
    from coursekit.mobilenet import imagenet_preprocess

    with torch.no_grad():
        return {name: model(imagenet_preprocess(data.load_photo(name)))[0] for name in PHOTOS}


def convert(folder: str | Path = DEFAULT_FOLDER) -> dict:
    """Convert, check, save the float16 weights and record them in the manifest."""
    from coursekit import __version__, zoo
    from coursekit.mobilenet import top_k
    from coursekit.recipes import record_in_manifest

    folder = Path(folder)
    model32 = build_float32_model(folder)
    state16 = {k: v.half() if v.is_floating_point() else v for k, v in model32.state_dict().items()}
    path = zoo.weights_dir() / f"{NAME}.pt"
    torch.save(state16, path)

    model16 = zoo.load(NAME, verify=False)
    logits32, logits16 = _classify_photos(model32), _classify_photos(model16)
    checks = {}
    for name in PHOTOS:
        top32, top16 = top_k(logits32[name], 2), top_k(logits16[name], 1)
        if top32[0][0] != top16[0][0]:
            raise RuntimeError(f"float16 weights change the top-1 of {name}: {top32[0]} vs {top16[0]}.")
        checks[name] = {
            "top1": top32[0][0], "top1_prob": round(top32[0][1], 4),
            "top2": top32[1][0], "top2_prob": round(top32[1][1], 4),
            "float16_top1_prob": round(top16[0][1], 4),
            "float16_max_abs_logit_diff": round(float((logits32[name] - logits16[name]).abs().max()), 5),
        }
    cat = checks["cat"]["top1"]
    if cat not in ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"):
        raise RuntimeError(f"The cat photo is classified as {cat!r}: the port is broken.")

    record = {
        "description": "MobileNet v1 (width 0.75, 224x224), ImageNet, 1000 classes; "
                       "Keras weights ported to PyTorch (logits before the softmax)",
        "sha256": _sha256(path),
        "bytes": path.stat().st_size,
        "storage_dtype": "float16 (loaded as float32)",
        "parameters": sum(p.numel() for p in model32.parameters()),
        "source": "Keras applications MobileNet v1 (alpha=0.75, 224x224) ImageNet weights in "
                  "TensorFlow.js layers format (model.json + 55 float32 shards), "
                  "../shared/data/weights/mobilenet_v1_0.75_224_tfjs",
        "source_model_json_sha256": _sha256(folder / "model.json"),
        "licence": "Apache-2.0",
        "class_names": "coursekit/assets/imagenet_classes.txt (Keras' ImageNet class list)",
        "published_top1_accuracy": "about 68% on ImageNet validation (as published; not re-measured)",
        "data": "ImageNet ILSVRC-2012 training set (by the original authors)",
        "input": "RGB (N, 3, 224, 224) in [0, 1]; mobilenet.imagenet_preprocess resizes the short "
                 "side to 256 (bilinear, antialias) and center-crops 224",
        "converted_by": "scripts/convert_mobilenet.py",
        "checks": {
            "photos_top2_float32": checks,
            "tests": "tests/test_mobilenet.py: a plain-numpy forward pass of the original weights "
                     "matches the float32 port to 1e-4; float16 keeps the top-1 on 4 photos",
        },
        "built_with": {"coursekit": __version__, "torch": torch.__version__,
                       "python": platform.python_version()},
    }
    record_in_manifest(NAME, record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER),
                        help="TensorFlow.js folder with model.json (default: %(default)s)")
    args = parser.parse_args(argv)
    record = convert(args.folder)
    print(f"wrote {NAME}: {record['bytes']:,} bytes, sha256 {record['sha256']}")
    for name, check in record["checks"]["photos_top2_float32"].items():
        print(f"  {name:10s} {check['top1']} {check['top1_prob']:.3f} / {check['top2']} "
              f"{check['top2_prob']:.3f} (float16 logits within {check['float16_max_abs_logit_diff']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
