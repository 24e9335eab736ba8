"""Manufacturing inspection: rare defects, a defect GAN, and a classifier that needs them.

**The data (built offline).** Surfaces are 28x28 grey-scale patches cropped from
real textures that scikit-image ships (brick, grass, gravel, at half
resolution). Defects are drawn procedurally on top of them, as an alpha blend::

    x_defect = (1 - a m) * x + a m c        m: the defect's mask in [0, 1], a: strength, c: its tone

- **scratch**: a thin bright line (``m`` = an anti-aliased segment of random
  position, angle, length and width);
- **spot**: a dark stain (``m`` = a soft ellipse of random position, size and shape).

On a production line defects are *rare*: the training set has hundreds of
normal patches and a handful of each defect. A classifier trained on it learns
to say "normal".

**The defect GANs.** Normal patches are plentiful, so a generator does not draw whole patches:
given noise and a defect class it paints a defect layer (a mask ``m`` and a tone ``c``, both 28x28)
onto a *real normal patch*::

    G(z, k, x_normal) = (1 - m) * x_normal + m * c

Two painters: :class:`DefectGenerator` computes ``(m, c)`` pixel by pixel (a DCGAN generator); with
a handful of examples per class it collapses (the same blotch in the same place on every patch).
:class:`StrokeDefectGenerator` paints one brush stroke whose position and direction are drawn and
whose length, width, softness, opacity and tone are learned: what we know about defects is built in,
the rest is learned. A conditional discriminator (:class:`coursekit.gan.ConditionalDiscriminator`)
compares the composites with the few real defects of class ``k``, with the step functions of
:mod:`coursekit.gan` (:func:`train_defect_gan`).

**The classifier** is trained on the real data alone, with oversampled real defects, and with
generated ones (:func:`augmented_sets`), and scored on a *balanced* real test set by **balanced
accuracy** (the mean of the per-class recalls) and **defect recall** (the fraction of defective test
patches flagged as some defect). :func:`change_centres` shows where a painter puts its defects.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from coursekit.applications._common import adam, check_positive_float, device_of, eval_mode
from coursekit.checks import CourseKitError, check_int, check_images, check_labels, check_nonnegative

TEXTURES = ("brick", "grass", "gravel")
CLASSES = ("normal", "scratch", "spot")
DEFECT_KINDS = CLASSES[1:]
PATCH = 28


# ====================================================================== textures and defects

def load_texture(name: str = "brick") -> torch.Tensor:
    """A scikit-image texture at half resolution: float ``(256, 256)`` in [0.25, 0.75].

    The 1st-99th percentiles are mapped to [0.25, 0.75] (a matte surface, mid-grey):
    a defect is what leaves that range.
    """
    if name not in TEXTURES:
        raise CourseKitError(f"Unknown texture {name!r}. Available: {', '.join(TEXTURES)}.")
    from skimage import data as skdata

    image = torch.from_numpy(getattr(skdata, name)().astype("float32") / 255.0)
    image = F.avg_pool2d(image[None, None], 2)[0, 0]
    lo, hi = torch.quantile(image, 0.01), torch.quantile(image, 0.99)
    return (0.25 + 0.5 * (image - lo) / (hi - lo)).clamp(0.25, 0.75)


def texture_patches(n: int, *, textures: tuple[str, ...] = TEXTURES, seed: int = 0) -> torch.Tensor:
    """``n`` random 28x28 crops, each from a uniformly chosen texture: ``(n, 1, 28, 28)`` in [0, 1]."""
    n = check_int(n, "n", minimum=0)
    sources = [load_texture(t) for t in textures]
    if not sources:
        raise CourseKitError("textures is empty: name at least one of " + ", ".join(TEXTURES) + ".")
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(len(sources), (n,), generator=g)
    tops = torch.randint(256 - PATCH + 1, (n,), generator=g)
    lefts = torch.randint(256 - PATCH + 1, (n,), generator=g)
    out = torch.empty(n, 1, PATCH, PATCH)
    for i in range(n):
        src, t, l = sources[int(which[i])], int(tops[i]), int(lefts[i])
        out[i, 0] = src[t:t + PATCH, l:l + PATCH]
    return out


def _grid(size: int = PATCH) -> tuple[torch.Tensor, torch.Tensor]:
    coords = torch.arange(size, dtype=torch.float32)
    return torch.meshgrid(coords, coords, indexing="ij")  # rows (y), columns (x)


def scratch_mask(n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` anti-aliased line segments: masks ``(n, 1, 28, 28)`` in [0, 1].

    Each segment has a random centre (inside the middle of the patch), angle,
    length 10-24 px and half-width 0.6-1.2 px; ``m(p) = clip(w + 0.5 - dist(p, segment), 0, 1)``.
    """
    n = check_int(n, "n", minimum=0)
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 5, generator=g)
    cy, cx = 6 + 16 * u[:, 0], 6 + 16 * u[:, 1]
    angle, length, half_width = torch.pi * u[:, 2], 10 + 14 * u[:, 3], 0.6 + 0.6 * u[:, 4]
    dy, dx = torch.sin(angle), torch.cos(angle)
    rows, cols = _grid()
    py, px = rows[None] - cy[:, None, None], cols[None] - cx[:, None, None]
    along = (py * dy[:, None, None] + px * dx[:, None, None]).clamp(-length[:, None, None] / 2,
                                                                     length[:, None, None] / 2)
    dist = torch.sqrt((py - along * dy[:, None, None]) ** 2 + (px - along * dx[:, None, None]) ** 2)
    return (half_width[:, None, None] + 0.5 - dist).clamp(0, 1)[:, None]


def spot_mask(n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` soft ellipses (stains): masks ``(n, 1, 28, 28)`` in [0, 1].

    Random centre, semi-axes 1.5-4.5 px, rotation; ``m(p) = clip(1.5 - r(p), 0, 1)`` with
    ``r`` the elliptical radius (1 on the ellipse), so the edge fades over a few pixels.
    """
    n = check_int(n, "n", minimum=0)
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 5, generator=g)
    cy, cx = 6 + 16 * u[:, 0], 6 + 16 * u[:, 1]
    ay, ax, angle = 1.5 + 3 * u[:, 2], 1.5 + 3 * u[:, 3], torch.pi * u[:, 4]
    rows, cols = _grid()
    py, px = rows[None] - cy[:, None, None], cols[None] - cx[:, None, None]
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    v, w = c * py + s * px, -s * py + c * px
    r = torch.sqrt((v / ay[:, None, None]) ** 2 + (w / ax[:, None, None]) ** 2)
    return (1.5 - r).clamp(0, 1)[:, None]


def draw_defects(patches: torch.Tensor, kind: str, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one defect of ``kind`` ('scratch' or 'spot') on each patch.

    ``x' = (1 - a m) x + a m c`` with strength ``a`` in [0.7, 1] and tone ``c``:
    bright (0.9-1) for scratches, dark (0-0.1) for spots.
    Returns ``(defective patches, masks)``, both ``(N, 1, 28, 28)`` in [0, 1].
    """
    check_images(patches, "patches", channels=1, size=(PATCH, PATCH))
    if kind not in DEFECT_KINDS:
        raise CourseKitError(f"Unknown defect kind {kind!r}. Available: {', '.join(DEFECT_KINDS)}.")
    n = len(patches)
    mask = scratch_mask(n, seed=seed) if kind == "scratch" else spot_mask(n, seed=seed)
    g = torch.Generator().manual_seed(seed + 7919)
    strength = 0.7 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
    tone = 0.1 * torch.rand(n, 1, 1, 1, generator=g)
    if kind == "scratch":
        tone = 1.0 - tone
    alpha = strength * mask
    return ((1 - alpha) * patches + alpha * tone).clamp(0, 1), mask


@dataclass
class DefectData:
    """A labelled defect data set: ``x (N, 1, 28, 28)``, ``y (N,)`` (0 normal, 1 scratch, 2 spot), ``masks``."""

    x: torch.Tensor
    y: torch.Tensor
    masks: torch.Tensor

    def counts(self) -> dict[str, int]:
        """How many patches of each class."""
        return {name: int((self.y == k).sum()) for k, name in enumerate(CLASSES)}

    def __len__(self) -> int:
        return len(self.y)


def defect_dataset(n_normal: int, n_scratch: int, n_spot: int, *, seed: int = 0,
                   textures: tuple[str, ...] = TEXTURES) -> DefectData:
    """``n_normal`` clean patches, ``n_scratch`` scratched and ``n_spot`` stained ones, shuffled.

    Every patch has its own texture crop (defects are drawn on fresh crops).
    Deterministic for a given ``seed``; different seeds give different crops and defects.
    """
    counts = [check_int(v, name, minimum=0)
              for v, name in ((n_normal, "n_normal"), (n_scratch, "n_scratch"), (n_spot, "n_spot"))]
    total = sum(counts)
    if total == 0:
        raise CourseKitError("The data set would be empty: ask for at least one patch.")
    base = texture_patches(total, textures=textures, seed=seed)
    xs, masks, ys = [base[:counts[0]]], [torch.zeros(counts[0], 1, PATCH, PATCH)], [torch.zeros(counts[0])]
    start = counts[0]
    for k, (kind, count) in enumerate(zip(DEFECT_KINDS, counts[1:]), start=1):
        if count:
            x, m = draw_defects(base[start:start + count], kind, seed=seed * 10 + k)
            xs.append(x)
            masks.append(m)
            ys.append(torch.full((count,), float(k)))
        start += count
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed + 1))
    return DefectData(torch.cat(xs)[order], torch.cat(ys).long()[order], torch.cat(masks)[order])


# ====================================================================== the defect GAN

class DefectGenerator(nn.Module):
    """Paints a defect of class ``k`` (0 scratch, 1 spot) onto a normal patch::

        [z, e(k)] -> DCGANGenerator(out_channels=2) -> (m, c)   each (N, 1, 28, 28) in [0, 1]
        G(z, k, x_normal) = (1 - m) * x_normal + m * c

    ``z_dim``, ``num_classes`` and ``conditional`` make it look like the other
    coursekit generators; ``paint(z, k)`` returns the layer ``(m, c)`` alone.
    """

    conditional = True

    def __init__(self, z_dim: int = 16, channels: int = 32, num_classes: int = 2, embed_dim: int = 8):
        super().__init__()
        from coursekit.gan import DCGANGenerator

        self.z_dim, self.num_classes = check_int(z_dim, "z_dim"), check_int(num_classes, "num_classes")
        self.embed = nn.Embedding(num_classes, check_int(embed_dim, "embed_dim"))
        self.body = DCGANGenerator(z_dim + embed_dim, check_int(channels, "channels"), out_channels=2)

    def paint(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from coursekit.gan import check_noise

        check_noise(z, self.z_dim)
        check_labels(labels, len(z), "labels", self.num_classes)
        layer = self.body(torch.cat([z, self.embed(labels)], 1))
        return layer[:, :1], layer[:, 1:]

    def forward(self, z: torch.Tensor, labels: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        if background.shape != (len(z), 1, PATCH, PATCH):
            raise CourseKitError(f"background must be normal patches ({len(z)}, 1, 28, 28), got {tuple(background.shape)}.")
        mask, tone = self.paint(z, labels)
        return (1 - mask) * background + mask * tone


class StrokeDefectGenerator(nn.Module):
    """Paints one brush stroke of defect class ``k`` (0 scratch, 1 spot) onto a normal patch.

    With a handful of examples per class a free-form painter (:class:`DefectGenerator`)
    collapses: the same blotch in the same place on every patch. This generator has what we
    know about defects built in, and learns the rest. The noise ``z = (z_shape, z_place)``::

        [z_shape, e(k)] -> MLP -> length L in [0, 26], half-width w in [0.3, 5], edge softness
                                  s in [0.3, 3] (px), opacity a in [0, 1], tone c in [0, 1]
        (c_y, c_x, theta) = (4 + 20 u_1, 4 + 20 u_2, pi u_3),  u = Phi(z_place)   (uniform: a defect
                                  can sit anywhere, in any direction; this part is drawn, not learned)
        m(p) = a * sigmoid((w - dist(p, segment)) / s)        a capsule: the segment of length L
                                                              through (c_y, c_x) at angle theta, widened by w
        G(z, k, x_normal) = (1 - m) * x_normal + m * c

    A long thin bright capsule is a scratch, a short wide dark one a stain: which strokes
    look like which class is what the GAN has to learn from the real defects.
    ``z_dim`` counts both parts (``z_shape`` is ``z_dim - 3``); ``paint(z, k)`` returns ``(m, c)``,
    ``stroke(z, k)`` the stroke's parameters.
    """

    conditional = True

    def __init__(self, z_dim: int = 11, hidden: int = 64, num_classes: int = 2, embed_dim: int = 8):
        super().__init__()
        self.z_dim, self.num_classes = check_int(z_dim, "z_dim", minimum=4), check_int(num_classes, "num_classes")
        embed_dim, hidden = check_int(embed_dim, "embed_dim"), check_int(hidden, "hidden")
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.net = nn.Sequential(nn.Linear(self.z_dim - 3 + embed_dim, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 5))

    def stroke(self, z: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stroke of each sample: ``{"cy", "cx", "theta", "length", "width", "softness", "opacity",
        "tone"}``, each ``(N,)`` (pixels and radians)."""
        from coursekit.gan import check_noise

        check_noise(z, self.z_dim)
        check_labels(labels, len(z), "labels", self.num_classes)
        u = torch.special.ndtr(z[:, -3:])                    # Phi: a standard normal -> uniform on (0, 1)
        s = torch.sigmoid(self.net(torch.cat([z[:, :-3], self.embed(labels)], 1)))
        return {"cy": 4 + 20 * u[:, 0], "cx": 4 + 20 * u[:, 1], "theta": torch.pi * u[:, 2],
                "length": 26 * s[:, 0], "width": 0.3 + 4.7 * s[:, 1], "softness": 0.3 + 2.7 * s[:, 2],
                "opacity": s[:, 3], "tone": s[:, 4]}

    def paint(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = {name: value[:, None, None] for name, value in self.stroke(z, labels).items()}
        rows, cols = (t.to(z.device) for t in _grid())
        dy, dx = torch.sin(p["theta"]), torch.cos(p["theta"])
        py, px = rows[None] - p["cy"], cols[None] - p["cx"]
        along = torch.maximum(torch.minimum(py * dy + px * dx, p["length"] / 2), -p["length"] / 2)
        dist = torch.sqrt((py - along * dy) ** 2 + (px - along * dx) ** 2 + 1e-6)
        mask = p["opacity"] * torch.sigmoid((p["width"] - dist) / p["softness"])
        return mask[:, None], p["tone"][:, None].expand_as(mask[:, None])

    forward = DefectGenerator.forward


PAINTERS = {"stroke": StrokeDefectGenerator, "free": DefectGenerator}


def _flips_and_rotations(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random one of the 8 flips/rotations per batch (defects have no preferred orientation)."""
    k = int(torch.randint(4, (1,), generator=g))
    x = torch.rot90(x, k, dims=(2, 3))
    return x.flip(3) if bool(torch.randint(2, (1,), generator=g)) else x


def train_defect_gan(defects: torch.Tensor, defect_labels: torch.Tensor, normals: torch.Tensor, *,
                     painter: str = "stroke", steps: int = 400, batch_size: int = 16, lr_g: float = 1e-3,
                     lr_d: float = 5e-4, mask_weight: float = 0.1, label_smoothing: float = 0.9,
                     channels: int = 32, hidden: int = 64, seed: int = 0,
                     progress: bool = True) -> tuple[nn.Module, dict[str, list[float]]]:
    """Train a defect painter on the few real defects.

    defects: ``(M, 1, 28, 28)`` real defective patches, ``defect_labels`` ``(M,)`` in {0: scratch,
    1: spot}; normals: ``(N, 1, 28, 28)`` normal patches (the backgrounds). ``painter``:
    ``"stroke"`` (:class:`StrokeDefectGenerator`, an MLP of width ``hidden``) or ``"free"``
    (:class:`DefectGenerator`, a DCGAN generator of width ``channels``). Each step
    (:func:`coursekit.gan.discriminator_step`, then :func:`~coursekit.gan.generator_step`):

    - D (:class:`coursekit.gan.ConditionalDiscriminator`, layer norm) descends
      ``discriminator_loss(D(x_real, k), D(G(z, k, x_normal), k))`` (real targets ``label_smoothing``);
      real batches get a random flip/rotation (more variety from few examples);
    - G descends ``-mean log D(G(z, k, x_normal), k) + mask_weight * mean m`` (small defects).

    Returns ``(generator, history)``; history: ``{"step", "d_loss", "g_loss", "mask_area", "seconds"}``.
    """
    from coursekit.gan import ConditionalDiscriminator, discriminator_step, generator_step

    check_images(defects, "defects", channels=1, size=(PATCH, PATCH))
    check_labels(defect_labels, len(defects), "defect_labels", 2)
    check_images(normals, "normals", channels=1, size=(PATCH, PATCH))
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    lr_g, lr_d = check_positive_float(lr_g, "lr_g"), check_positive_float(lr_d, "lr_d")
    mask_weight = check_nonnegative(mask_weight, "mask_weight")
    if len(defects) == 0:
        raise CourseKitError("defects is empty: the GAN needs at least a few real defects to imitate.")
    g = torch.Generator().manual_seed(seed)
    if painter not in PAINTERS:
        raise CourseKitError(f"Unknown painter {painter!r}: 'stroke' (one brush stroke) or 'free' (a free-form layer).")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = (StrokeDefectGenerator(hidden=hidden) if painter == "stroke"
                     else DefectGenerator(channels=channels))
        discriminator = ConditionalDiscriminator(2, 16, norm="layer")
    opt_g, opt_d = adam(generator.parameters(), lr_g), adam(discriminator.parameters(), lr_d)
    history: dict[str, list[float]] = {"step": [], "d_loss": [], "g_loss": [], "mask_area": [], "seconds": []}
    start = time.perf_counter()
    generator.train()
    discriminator.train()
    try:
        for step in tqdm(range(1, steps + 1), desc="defect GAN", disable=not progress):
            real_idx = torch.randint(len(defects), (batch_size,), generator=g)
            real, k = _flips_and_rotations(defects[real_idx], g), defect_labels[real_idx]
            background = normals[torch.randint(len(normals), (batch_size,), generator=g)]
            z = torch.randn(batch_size, generator.z_dim, generator=g)

            def painted(z, k):  # G(z, k) on this batch's normal patches
                return generator(z, k, background)

            d_loss = discriminator_step(painted, discriminator, opt_d, real, z, real_label=label_smoothing,
                                        labels=k)["d_loss"]
            area = {}

            def small_defects(fake):  # the extra term of G's loss: mask_weight * mean m
                area["mask"] = generator.paint(z, k)[0].mean()
                return mask_weight * area["mask"]

            g_loss = generator_step(painted, discriminator, opt_g, z, labels=k, extra_loss=small_defects)["g_loss"]
            history["step"].append(step)
            history["d_loss"].append(d_loss)
            history["g_loss"].append(g_loss)
            history["mask_area"].append(area["mask"].item())
            history["seconds"].append(time.perf_counter() - start)
    finally:
        generator.eval()
        discriminator.eval()
        discriminator.zero_grad(set_to_none=True)
    return generator, history


@torch.no_grad()
def generate_defects(generator: nn.Module, normals: torch.Tensor, kind: str, *,
                     seed: int = 0) -> torch.Tensor:
    """Paint a generated defect of ``kind`` onto each normal patch: ``(N, 1, 28, 28)`` -> same, in [0, 1]."""
    check_images(normals, "normals", channels=1, size=(PATCH, PATCH))
    if kind not in DEFECT_KINDS:
        raise CourseKitError(f"Unknown defect kind {kind!r}. Available: {', '.join(DEFECT_KINDS)}.")
    labels = torch.full((len(normals),), DEFECT_KINDS.index(kind), dtype=torch.long)
    z = torch.randn(len(normals), generator.z_dim, generator=torch.Generator().manual_seed(seed))
    with eval_mode(generator):
        device = device_of(generator)
        return generator(z.to(device), labels.to(device), normals.to(device)).cpu().clamp(0, 1)


def change_centres(change: torch.Tensor) -> torch.Tensor:
    """Where each patch changed: the centroid ``(row, col)`` of a non-negative change map.

    ``change``: ``(N, 1, H, W)``, e.g. ``|x_defect - x_normal|`` or a defect mask. Returns ``(N, 2)``
    in pixels. The spread of the centres over a set of defects, ``centres.std(0).mean()``, shows a
    collapsed generator: defects that all sit in the same place.
    """
    check_images(change.clamp(0, 1), "change")
    rows, cols = _grid(change.shape[-1])
    weight = change[:, 0].clamp_min(0)
    total = weight.sum((1, 2)).clamp_min(1e-12)
    return torch.stack([(weight * rows).sum((1, 2)) / total, (weight * cols).sum((1, 2)) / total], 1)


# ====================================================================== the classifier

class DefectClassifier(nn.Module):
    """A small CNN: ``(N, 1, 28, 28)`` patches in [0, 1] -> logits ``(N, 3)`` (normal, scratch, spot)::

        conv 3x3 (16) -> ReLU -> maxpool 2 -> conv 3x3 (32) -> ReLU -> maxpool 2
          -> conv 3x3 (32) -> ReLU -> global max pool -> linear 3

    The global *max* pool: a defect anywhere in the patch should count.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        c = check_int(width, "width")
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
            nn.Flatten(), nn.Linear(2 * c, len(CLASSES)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - 0.5)


def classification_report(predictions: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Scores for an imbalanced problem, from predicted and true classes ``(N,)``.

    - ``recall_<class>``: ``#(pred = k and y = k) / #(y = k)`` for each class present;
    - ``balanced_accuracy``: the mean of those recalls (plain accuracy rewards saying "normal");
    - ``defect_recall``: ``#(pred != normal and y != normal) / #(y != normal)``;
    - ``accuracy``: the plain fraction correct.
    """
    check_labels(labels, len(labels), "labels", len(CLASSES))
    check_labels(predictions, len(labels), "predictions", len(CLASSES))
    report: dict[str, float] = {"accuracy": float((predictions == labels).float().mean())}
    recalls = []
    for k, name in enumerate(CLASSES):
        present = labels == k
        if present.any():
            recall = float((predictions[present] == k).float().mean())
            report[f"recall_{name}"] = recall
            recalls.append(recall)
    report["balanced_accuracy"] = sum(recalls) / len(recalls)
    defective = labels != 0
    report["defect_recall"] = float((predictions[defective] != 0).float().mean()) if defective.any() else float("nan")
    return report


def train_and_score(x_train: torch.Tensor, y_train: torch.Tensor, test: DefectData, *, epochs: int = 5,
                    seed: int = 0, progress: bool = False) -> dict[str, float]:
    """Train a fresh :class:`DefectClassifier` (same seed and schedule every time) and score it on ``test``."""
    from coursekit.training import predict, train_classifier

    check_images(x_train, "x_train", channels=1, size=(PATCH, PATCH))
    check_labels(y_train, len(x_train), "y_train", len(CLASSES))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DefectClassifier()
        train_classifier(model, x_train, y_train, epochs=check_int(epochs, "epochs"), lr=3e-3,
                         batch_size=32, seed=seed, progress=progress)
    return classification_report(predict(model, test.x), test.y)


AUGMENTATIONS = ("real only", "oversampled", "oversampled x2", "real + GAN defects", "oversampled + GAN defects")


def augmented_sets(train: DefectData, generator: nn.Module, *, n_generated: int = 200,
                   seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The training sets of :data:`AUGMENTATIONS`, each ``(x, y)``; ``n = n_generated`` per defect class:

    - ``"real only"``: the imbalanced training set as it is;
    - ``"oversampled"``: + the real defects repeated to ``n`` per class (the standard fix: no new
      information, just more weight);
    - ``"oversampled x2"``: + ``2 n`` repeats per class (as many extra defects as the last setting);
    - ``"real + GAN defects"``: + ``n`` generated defects per class, painted on the training set's
      normal patches (new examples instead of repeated ones);
    - ``"oversampled + GAN defects"``: + the ``n`` repeats of ``"oversampled"`` and the ``n`` generated
      defects of ``"real + GAN defects"``.
    """
    n = check_int(n_generated, "n_generated")
    normals = train.x[train.y == 0]
    if len(normals) == 0:
        raise CourseKitError("The training set has no normal patches to paint generated defects on.")
    g = torch.Generator().manual_seed(seed)
    extra: dict[str, list[tuple[torch.Tensor, int]]] = {name: [] for name in AUGMENTATIONS}
    for k, kind in enumerate(DEFECT_KINDS, start=1):
        real = train.x[train.y == k]
        backgrounds = normals[torch.randint(len(normals), (n,), generator=g)]
        generated = (generate_defects(generator, backgrounds, kind, seed=seed + k), k)
        if len(real):
            repeated = (real[torch.arange(n) % len(real)], k)
            extra["oversampled"].append(repeated)
            extra["oversampled x2"].append((real[torch.arange(2 * n) % len(real)], k))
            extra["oversampled + GAN defects"].append(repeated)
        extra["real + GAN defects"].append(generated)
        extra["oversampled + GAN defects"].append(generated)
    return {name: (torch.cat([train.x] + [x for x, _ in parts]),
                   torch.cat([train.y] + [torch.full((len(x),), k) for x, k in parts]).long())
            for name, parts in extra.items()}


def augmentation_study(train: DefectData, test: DefectData, generator: nn.Module, *,
                       n_generated: int = 200, epochs: int = 5, seed: int = 0,
                       progress: bool = False) -> dict[str, dict[str, float]]:
    """The same classifier (:func:`train_and_score`, ``seed``) trained on each set of
    :func:`augmented_sets`, scored on the same real test set. Returns ``{setting: classification_report}``.
    """
    sets = augmented_sets(train, generator, n_generated=n_generated, seed=seed)
    return {name: train_and_score(x, y, test, epochs=epochs, seed=seed, progress=progress)
            for name, (x, y) in sets.items()}
