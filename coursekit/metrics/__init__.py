"""Evaluating generative models: Inception Score, FID, precision/recall, and checks on samples.

Each idea of the lecture is a function that reads like its formula, in a module of its own:

- :mod:`~coursekit.metrics.inception`: the **Inception Score** (Salimans et al. 2016), from class
  logits ``(N, C)``: ``IS = exp( E_x KL( p(y|x) || p(y) ) )``, ``p(y) = E_x p(y|x)``; high when
  each sample is confidently classified *and* the classes are diverse. Between 1 and ``C``.
- :mod:`~coursekit.metrics.frechet`: the **Fréchet distance** (Heusel et al. 2017), from features
  ``(N, d)``: ``FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``; with Inception-v3
  pool features it is the FID; lower is better. :class:`FeatureStatistics` streams.
- :mod:`~coursekit.metrics.neighbours`: **precision and recall** (Kynkäänniemi et al. 2019) and
  **density and coverage** (Naeem et al. 2020), kernel-free, from k-NN balls of features.
- :mod:`~coursekit.metrics.corruptions`: :func:`corrupt` (noise, blur): a metric must notice.
- :mod:`~coursekit.metrics.features`: the *feature networks*, by name: ``"mnist_cnn"`` (the zoo's
  MNIST classifier: 100-d features, 10 logits, offline) and ``"inception_v3"`` (torchvision's, from
  torch's cache, never downloaded).
- :mod:`~coursekit.metrics.images`: from images (a tensor or an iterable of batches) to the
  scores: :func:`fid`, :func:`inception_score_of_images`, :func:`precision_recall_of_images`.
- :mod:`~coursekit.metrics.samples`: checks on a generator's samples: :func:`energy_distance`
  and :func:`mode_coverage` for 2-D toys, :func:`digit_quality` for digits (also importable
  from :mod:`coursekit.gan`), from a classifier's :func:`class_probabilities`.
"""
from coursekit.metrics.corruptions import CORRUPTIONS, corrupt
from coursekit.metrics.features import (
    FEATURE_NETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_SIZE,
    FeatureExtractor,
    InceptionV3Features,
    MissingWeightsError,
    MnistCNNFeatures,
    feature_extractor,
    inception_v3_checkpoint,
)
from coursekit.metrics.frechet import FeatureStatistics, frechet_distance, frechet_distance_from_statistics
from coursekit.metrics.images import (
    Images,
    extract_features,
    feature_statistics,
    fid,
    inception_score_of_images,
    precision_recall_of_images,
)
from coursekit.metrics.inception import TORCH_FIDELITY_SEED, inception_score
from coursekit.metrics.neighbours import density_coverage, precision_recall
from coursekit.metrics.samples import ModeCoverage, class_probabilities, digit_quality, energy_distance, mode_coverage

__all__ = [
    "CORRUPTIONS", "FEATURE_NETS", "FeatureExtractor", "corrupt", "FeatureStatistics", "MissingWeightsError",
    "MnistCNNFeatures", "InceptionV3Features", "extract_features", "feature_extractor",
    "feature_statistics", "fid", "frechet_distance", "frechet_distance_from_statistics",
    "inception_score", "inception_score_of_images", "inception_v3_checkpoint",
    "precision_recall", "precision_recall_of_images", "density_coverage",
    "ModeCoverage", "class_probabilities", "digit_quality", "energy_distance", "mode_coverage",
]
