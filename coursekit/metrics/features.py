"""Feature networks: images in [0, 1] -> features (for FID, precision/recall) and logits (for IS).

- ``"mnist_cnn"``: the zoo's MNIST classifier. Features are its penultimate 100-d activations,
  logits its 10 class scores. A *domain* score for MNIST (an IS of at most 10), always available
  offline.
- ``"inception_v3"``: torchvision's ImageNet Inception-v3 (2048-d pool features, 1000-class
  logits). Its weights are never downloaded here: they are loaded from torch's cache when present
  (see :func:`inception_v3_checkpoint`). These are torchvision's weights, not the TensorFlow
  FID-Inception weights that pytorch-fid and torch-fidelity use, so scores are comparable with
  each other but not with published FID/IS numbers.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from coursekit.checks import CourseKitError, check_images
from coursekit.models import Normalize
from coursekit.zoo import MissingWeightsError

FEATURE_NETS = ("mnist_cnn", "inception_v3")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_SIZE = 299



class FeatureExtractor(nn.Module):
    """Images in [0, 1] ``(N, C, H, W)`` -> ``.features(x)`` ``(N, feature_dim)`` and ``.logits(x)`` ``(N, num_classes)``.

    ``.logits_from_features(f)`` applies only the last layer, so one pass gives both.
    """

    name: str = "custom"
    feature_dim: int
    num_classes: int

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class MnistCNNFeatures(FeatureExtractor):
    """The zoo's MNIST CNN as a feature network: penultimate 100-d activations and 10 logits.

    ``(N, 1, 28, 28)`` in [0, 1] -> features ``(N, 100)`` (after the ReLU of the
    first dense layer), logits ``(N, 10)``.
    """

    name = "mnist_cnn"

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        head = list(model.classifier)
        self._body = nn.Sequential(*head[:-1])  # Flatten, Linear, ReLU: shares the parameters
        self._last = head[-1]
        self.feature_dim = self._last.in_features
        self.num_classes = self._last.out_features

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "images", channels=1, size=(28, 28))
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._prepare(x)
        return self._body(self.model.features(self.model.normalize(x)))

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """The last (dense) layer: features ``(N, 100)`` -> logits ``(N, 10)``."""
        return self._last(features)


class InceptionV3Features(FeatureExtractor):
    """torchvision's Inception-v3 as a feature network: 2048-d pool features and 1000 ImageNet logits.

    Inside: grayscale -> 3 channels, bilinear resize to 299x299 (as pytorch-fid),
    ImageNet normalisation, then torchvision's ``transform_input`` (which maps
    the normalised input to the [-1, 1] scaling the ported Google weights expect).
    """

    name = "inception_v3"
    feature_dim = 2048
    num_classes = 1000

    def __init__(self, net: nn.Module):
        super().__init__()
        net.transform_input = True
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.fc = net.fc
        net.fc = nn.Identity()  # net(x) now ends at the (flattened, dropout-free in eval) pool features
        self.net = net

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "images")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise CourseKitError(
                f"Inception-v3 takes grayscale (1 channel) or RGB (3 channels) images, got shape {tuple(x.shape)}."
            )
        if tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        return self.normalize(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.net.training:
            raise CourseKitError("Put the feature network in eval mode (.eval()) before extracting features.")
        return self.net(self._prepare(x))

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """The classifier layer: pool features ``(N, 2048)`` -> ImageNet logits ``(N, 1000)``."""
        return self.fc(features)


def inception_v3_checkpoint() -> Path:
    """Where torchvision's Inception-v3 ImageNet weights are expected.

    ``torch.hub.get_dir()/checkpoints/inception_v3_google-0cc3c7bd.pth`` (the file
    name of ``Inception_V3_Weights.IMAGENET1K_V1.url``); ``get_dir()`` is
    ``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``.
    """
    from torchvision.models import Inception_V3_Weights

    url = Inception_V3_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _load_inception_v3() -> InceptionV3Features:
    import torchvision
    from torchvision.models import Inception_V3_Weights

    checkpoint = inception_v3_checkpoint()
    if not checkpoint.is_file():
        raise MissingWeightsError(
            f"The Inception-v3 weights are not in torch's cache: {checkpoint} does not exist. "
            f"Download {Inception_V3_Weights.IMAGENET1K_V1.url} into {checkpoint.parent} (or set "
            "TORCH_HOME to a folder whose hub/checkpoints/ has it). coursekit never downloads "
            "weights itself; feature_net='mnist_cnn' works offline."
        )
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                          transform_input=True)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as error:  # corrupt or truncated download, wrong file
        raise CourseKitError(
            f"{checkpoint} is not a valid Inception-v3 state dict ({type(error).__name__}: "
            f"{str(error)[:200]}). Delete it and download it again."
        ) from None
    return InceptionV3Features(net)


def feature_extractor(name: str = "mnist_cnn", *, device: str | torch.device | None = None) -> FeatureExtractor:
    """A feature network by name, in eval mode: ``"mnist_cnn"`` or ``"inception_v3"``.

    The returned module has ``.features(x)`` and ``.logits(x)`` for images in [0, 1].
    ``"inception_v3"`` raises :class:`MissingWeightsError` when its weights are not
    in torch's cache (:func:`inception_v3_checkpoint`); nothing is downloaded.
    """
    if name == "mnist_cnn":
        from coursekit import zoo

        extractor: FeatureExtractor = MnistCNNFeatures(zoo.load("mnist_cnn"))
    elif name == "inception_v3":
        extractor = _load_inception_v3()
    else:
        raise CourseKitError(f"Unknown feature network {name!r}. Available: {', '.join(FEATURE_NETS)}.")
    for p in extractor.parameters():
        p.requires_grad_(False)
    if device is not None:
        extractor = extractor.to(device)
    return extractor.eval()
