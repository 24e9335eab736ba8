"""coursekit.metrics: FID, Inception Score, precision/recall, feature networks.

The formulas are checked against pytorch-fid, torch-fidelity and torchmetrics on
identical features/logits, and against closed forms.
"""
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from coursekit import data, metrics
from coursekit.checks import CourseKitError
from coursekit.zoo import MissingWeightsError


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def _correlated(n, d, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.eye(d) + 0.3 * torch.randn(d, d, generator=g)
    return torch.randn(n, d, generator=g) @ mixing + shift


@pytest.fixture(scope="module")
def feature_pair():
    return _correlated(400, 32, 0), _correlated(300, 32, 1, shift=0.2)


@pytest.fixture(scope="module")
def mnist():
    """Random subsets of the embedded digits: 1,000 train and 500 test digits."""
    x_train, _ = data.embedded_mnist("train")
    x_test, _ = data.embedded_mnist("test")
    g = torch.Generator().manual_seed(0)
    return (x_train[torch.randperm(len(x_train), generator=g)[:1000]],
            x_test[torch.randperm(len(x_test), generator=g)[:500]])


@pytest.fixture(scope="module")
def train_statistics(mnist):
    return metrics.feature_statistics(mnist[0], progress=False)


def _shuffle_pixels(x, seed=0):
    perm = torch.randperm(x[0].numel(), generator=torch.Generator().manual_seed(seed))
    return x.flatten(1)[:, perm].view_as(x)


# ============================================================ Fréchet distance: references

@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")
def test_frechet_distance_matches_pytorch_fid(feature_pair):
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = feature_pair
    A, B = a.double().numpy(), b.double().numpy()
    reference = calculate_frechet_distance(A.mean(0), np.cov(A, rowvar=False), B.mean(0), np.cov(B, rowvar=False))
    assert _rel(metrics.frechet_distance(a, b), reference) < 1e-4
    assert _rel(metrics.frechet_distance(a, b, method="sqrtm"), reference) < 1e-6


def test_frechet_distance_matches_torch_fidelity(feature_pair):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = feature_pair
    stats = [fid_features_to_statistics(x.double()) for x in (a, b)]
    reference = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert _rel(metrics.frechet_distance(a, b), reference) < 1e-4


def test_frechet_distance_matches_torchmetrics(feature_pair):
    from torchmetrics.image.fid import _compute_fid

    a, b = (x.double() for x in feature_pair)
    reference = float(_compute_fid(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T)))
    assert _rel(metrics.frechet_distance(*feature_pair), reference) < 1e-4


def test_frechet_distance_rank_deficient_matches_torch_fidelity():
    # N < d: singular covariances (the case pytorch-fid needs its epsilon for)
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = _correlated(40, 64, 2), _correlated(50, 64, 3, shift=0.1)
    stats = [fid_features_to_statistics(x.double()) for x in (a, b)]
    reference = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert _rel(metrics.frechet_distance(a, b), reference) < 1e-4


def test_frechet_distance_with_constant_features_matches_torch_fidelity():
    # dead ReLU units: a feature that is constant in a set gives a singular covariance
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = _correlated(400, 32, 4), _correlated(300, 32, 5, shift=0.2)
    a[:, 3], b[:, 3], b[:, 7] = 0.3, 0.7, 0.0
    stats = [fid_features_to_statistics(x.double()) for x in (a, b)]
    reference = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert _rel(metrics.frechet_distance(a, b), reference) < 1e-4
    assert _rel(metrics.frechet_distance(b, a), reference) < 1e-4


# ============================================================ Fréchet distance: properties

def test_frechet_distance_one_dimensional_closed_form():
    # d = 1: FD = (m_a - m_b)^2 + (s_a - s_b)^2 with sample standard deviations
    a = torch.tensor([[0.0], [1.0], [3.0], [4.0]])
    b = torch.tensor([[5.0], [7.0], [6.0]])
    m_a, m_b = 2.0, 6.0
    s_a, s_b = math.sqrt(10 / 3), 1.0  # sum of squares 10 over N-1 = 3; 2 over 2
    assert metrics.frechet_distance(a, b) == pytest.approx((m_a - m_b) ** 2 + (s_a - s_b) ** 2, rel=1e-12)


def test_frechet_distance_of_a_set_with_itself_is_zero(feature_pair):
    a, _ = feature_pair
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert metrics.frechet_distance(a, a.clone()) >= 0.0


def test_frechet_distance_is_symmetric(feature_pair):
    a, b = feature_pair
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a), rel=1e-10)


def test_frechet_distance_of_a_mean_shift_is_its_squared_norm(feature_pair):
    a, _ = feature_pair
    shift = torch.linspace(-1, 1, a.shape[1])
    expected = float((shift.double() ** 2).sum())
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(expected, rel=1e-6)
    # and grows with the shift
    assert metrics.frechet_distance(a, a + 2 * shift) == pytest.approx(4 * expected, rel=1e-6)


def test_frechet_distance_accepts_numpy_and_is_float(feature_pair):
    a, b = feature_pair
    value = metrics.frechet_distance(a.numpy(), b.numpy())
    assert isinstance(value, float)
    assert value == pytest.approx(metrics.frechet_distance(a, b), rel=1e-12)


@pytest.mark.parametrize("a, b, match", [
    (torch.randn(10, 3), torch.randn(10, 4), "same dimension"),
    (torch.randn(1, 3), torch.randn(10, 3), "at least 2"),
    (torch.randn(10, 3), torch.full((10, 3), float("nan")), "NaN"),
    (torch.randn(10), torch.randn(10, 1), r"shape \(N, d\)"),
    ([[1.0, 2.0]], torch.randn(10, 2), "torch.Tensor"),
])
def test_frechet_distance_bad_input(a, b, match):
    with pytest.raises(CourseKitError, match=match):
        metrics.frechet_distance(a, b)


def test_frechet_distance_unknown_method(feature_pair):
    with pytest.raises(CourseKitError, match="method"):
        metrics.frechet_distance(*feature_pair, method="magic")


def test_feature_statistics_streams_like_numpy(feature_pair):
    a, b = feature_pair
    stats = metrics.FeatureStatistics()
    for chunk in (a + 100.0).split(37):  # a large offset: the shifted sums keep precision
        stats.update(chunk)
    A = (a + 100.0).double().numpy()
    assert stats.n == len(a)
    np.testing.assert_allclose(stats.mean.numpy(), A.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance.numpy(), np.cov(A, rowvar=False), rtol=1e-9, atol=1e-9)
    streamed = stats.frechet_distance(metrics.FeatureStatistics.from_features(b + 100.0))
    assert streamed == pytest.approx(metrics.frechet_distance(a + 100.0, b + 100.0), rel=1e-8)
    with pytest.raises(CourseKitError, match="dimension"):
        stats.update(torch.randn(4, 5))
    with pytest.raises(CourseKitError, match="covariance"):
        metrics.FeatureStatistics.from_features(torch.randn(1, 3)).covariance


# ============================================================ Inception Score

def test_inception_score_matches_torch_fidelity_default():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = 3 * torch.randn(1003, 10, generator=torch.Generator().manual_seed(0))
    reference = isc_features_to_metric(logits, splits=10)  # shuffles with seed 2020, np.std
    mean, std = metrics.inception_score(logits, splits=10)
    assert _rel(mean, reference["inception_score_mean"]) < 1e-4
    assert _rel(std, reference["inception_score_std"]) < 1e-4


def test_inception_score_matches_torch_fidelity_unshuffled():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = 2 * torch.randn(997, 50, generator=torch.Generator().manual_seed(1))
    reference = isc_features_to_metric(logits, splits=7, shuffle=False)
    mean, std = metrics.inception_score(logits, splits=7, shuffle_seed=None)
    assert _rel(mean, reference["inception_score_mean"]) < 1e-4
    assert _rel(std, reference["inception_score_std"]) < 1e-4


def test_inception_score_matches_torchmetrics_with_its_permutation_and_ddof1():
    import warnings

    from torchmetrics.image.inception import InceptionScore

    logits = 3 * torch.randn(1000, 10, generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "will save all extracted features"
        metric = InceptionScore(feature=torch.nn.Identity(), splits=10)
    metric.update(logits)
    torch.manual_seed(5)
    order = torch.randperm(len(logits))  # the permutation torchmetrics draws in compute()
    torch.manual_seed(5)
    ref_mean, ref_std = (float(v) for v in metric.compute())
    mean, std = metrics.inception_score(logits[order], splits=10, ddof=1, shuffle_seed=None)
    assert _rel(mean, ref_mean) < 1e-4
    assert _rel(std, ref_std) < 1e-4
    # the two std conventions differ by sqrt(splits / (splits - 1))
    _, std0 = metrics.inception_score(logits[order], splits=10, ddof=0, shuffle_seed=None)
    assert std == pytest.approx(std0 * math.sqrt(10 / 9), rel=1e-12)


def test_inception_score_of_confident_uniform_predictions_is_the_number_of_classes():
    classes = 10
    labels = torch.arange(classes * 50) % classes
    logits = 100.0 * torch.nn.functional.one_hot(labels, classes).double()
    mean, std = metrics.inception_score(logits, splits=1)
    assert (mean, std) == (pytest.approx(classes, rel=1e-12), 0.0)
    # unshuffled, each split sees every class equally often: exact in every split
    mean, std = metrics.inception_score(logits, splits=5, shuffle_seed=None)
    assert mean == pytest.approx(classes, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_of_identical_predictions_is_one():
    logits = torch.tensor([[2.0, -1.0, 0.5]]).repeat(100, 1)
    mean, std = metrics.inception_score(logits, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_handles_extreme_logits():
    # probabilities that underflow to exactly 0 must not give NaN (0 * log 0 = 0)
    labels = torch.arange(40) % 4
    logits = 1e4 * torch.nn.functional.one_hot(labels, 4).float()
    mean, _ = metrics.inception_score(logits, splits=2, shuffle_seed=None)
    assert mean == pytest.approx(4.0, rel=1e-9)


def test_inception_score_lies_between_one_and_the_number_of_classes():
    logits = torch.randn(500, 7, generator=torch.Generator().manual_seed(3))
    mean, _ = metrics.inception_score(logits, splits=5)
    assert 1.0 <= mean <= 7.0


@pytest.mark.parametrize("logits, kwargs, match", [
    (torch.randn(5, 3), {"splits": 10}, "at least one sample per split"),
    (torch.randn(20, 3), {"splits": 0}, "splits"),
    (torch.randn(20, 3), {"splits": 2.5}, "splits"),
    (torch.randn(20), {}, r"shape \(N, d\)"),
    (torch.full((20, 3), float("nan")), {}, "NaN"),
    (torch.randn(20, 3), {"ddof": 2}, "ddof"),
    (torch.randn(20, 3), {"splits": 1, "ddof": 1}, "splits >= 2"),
])
def test_inception_score_bad_input(logits, kwargs, match):
    with pytest.raises(CourseKitError, match=match):
        metrics.inception_score(logits, **kwargs)


# ============================================================ precision / recall

def test_precision_recall_of_a_set_with_itself_is_one():
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    assert metrics.precision_recall(x, x, k=3) == (1.0, 1.0)


def test_precision_recall_of_disjoint_far_sets_is_zero():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(150, 8, generator=g)
    fake = torch.randn(120, 8, generator=g) + 100.0
    assert metrics.precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_recall_of_mode_dropping_and_noisy_generators():
    # a generator that covers half the real modes: precision high, recall about half
    g = torch.Generator().manual_seed(1)
    centres = 10 * torch.randn(10, 4, generator=g)
    real = centres[torch.arange(1000) % 10] + torch.randn(1000, 4, generator=g)
    half = centres[torch.arange(500) % 5] + torch.randn(500, 4, generator=g)
    precision, recall = metrics.precision_recall(real, half, k=3)
    assert precision > 0.85 and 0.4 < recall < 0.6


def test_precision_recall_matches_torch_fidelity():
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    g = torch.Generator().manual_seed(2)
    real = torch.randn(300, 6, generator=g)
    fake = 1.3 * torch.randn(250, 6, generator=g) + 0.5
    for k in (1, 3, 5):
        # torch-fidelity's convention: features_1 = generated, features_2 = real
        ref_precision, ref_recall = calculate_precision_recall_full(fake.double(), real.double(), neighborhood=k)
        precision, recall = metrics.precision_recall(real, fake, k=k, batch_size=64)
        assert precision == pytest.approx(ref_precision, abs=1e-6)  # theirs is a float32 mean
        assert recall == pytest.approx(ref_recall, abs=1e-6)


@pytest.mark.parametrize("real, fake, k, match", [
    (torch.randn(10, 3), torch.randn(10, 4), 3, "same dimension"),
    (torch.randn(3, 3), torch.randn(10, 3), 3, "more than k"),
    (torch.randn(10, 3), torch.randn(10, 3), 0, "k must be"),
    (torch.randn(10, 3), torch.full((10, 3), float("inf")), 3, "infinite"),
])
def test_precision_recall_bad_input(real, fake, k, match):
    with pytest.raises(CourseKitError, match=match):
        metrics.precision_recall(real, fake, k=k)



def test_density_coverage_matches_prdc():
    prdc = pytest.importorskip("prdc", reason="prdc (Naeem et al.'s reference code) is a test-only reference")
    g = torch.Generator().manual_seed(4)
    real = torch.randn(300, 6, generator=g)
    fake = 1.3 * torch.randn(250, 6, generator=g) + 0.5
    for k in (1, 3, 5):
        ref = prdc.compute_prdc(real.double().numpy(), fake.double().numpy(), nearest_k=k)
        density, coverage = metrics.density_coverage(real, fake, k=k, batch_size=64)
        assert density == pytest.approx(ref["density"], rel=1e-12)
        assert coverage == pytest.approx(ref["coverage"], rel=1e-12)
        precision, recall = metrics.precision_recall(real, fake, k=k)
        assert precision == pytest.approx(ref["precision"], abs=1e-12)
        assert recall == pytest.approx(ref["recall"], abs=1e-12)


def test_density_is_not_fooled_by_a_real_outlier_but_precision_is():
    g = torch.Generator().manual_seed(0)
    real = torch.cat([torch.randn(200, 2, generator=g), torch.tensor([[50.0, 0.0]])])  # one outlier
    fake = torch.tensor([60.0, 0.0]) + 0.01 * torch.randn(100, 2, generator=g)  # all bad, inside its ball
    precision, _ = metrics.precision_recall(real, fake, k=5)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    assert precision == 1.0
    assert density == pytest.approx(1 / 5)          # each fake sits in one ball out of the k it should
    assert coverage == pytest.approx(1 / 201)       # only the outlier's ball is hit


def test_density_coverage_of_mode_dropping():
    g = torch.Generator().manual_seed(1)
    centres = 10 * torch.randn(10, 4, generator=g)
    real = centres[torch.arange(1000) % 10] + torch.randn(1000, 4, generator=g)
    half = centres[torch.arange(500) % 5] + torch.randn(500, 4, generator=g)
    density, coverage = metrics.density_coverage(real, half, k=5)
    assert 0.8 < density < 1.2 and 0.4 < coverage < 0.55
    far_density, far_coverage = metrics.density_coverage(real, half + 100.0, k=5)
    assert far_density == 0.0 and far_coverage == 0.0


@pytest.mark.parametrize("real, fake, k, match", [
    (torch.randn(10, 3), torch.randn(10, 4), 3, "same dimension"),
    (torch.randn(3, 3), torch.randn(10, 3), 3, "more than k"),
    (torch.randn(10, 3), torch.randn(0, 3), 3, "empty"),
    (torch.randn(10, 3), torch.randn(10, 3), 0, "k must be"),
])
def test_density_coverage_bad_input(real, fake, k, match):
    with pytest.raises(CourseKitError, match=match):
        metrics.density_coverage(real, fake, k=k)

# ============================================================ images through mnist_cnn

def test_mnist_cnn_extractor_features_and_logits(mnist):
    from coursekit import zoo

    x = mnist[1][:16]
    extractor = metrics.feature_extractor("mnist_cnn")
    with torch.no_grad():
        features, logits = extractor.features(x), extractor.logits(x)
        reference = zoo.load("mnist_cnn")(x)
    assert features.shape == (16, 100) and logits.shape == (16, 10)
    assert (features >= 0).all()  # after the ReLU
    torch.testing.assert_close(logits, reference)
    with torch.no_grad():
        torch.testing.assert_close(extractor.logits_from_features(features), reference)  # one pass, both outputs
    assert not extractor.training
    assert not any(p.requires_grad for p in extractor.parameters())


def test_mnist_fid_real_vs_real_is_smaller_than_real_vs_shuffled_pixels(mnist, train_statistics):
    _, x_test = mnist
    real_vs_real = metrics.fid(train_statistics, x_test, progress=False)
    real_vs_shuffled = metrics.fid(train_statistics, _shuffle_pixels(x_test), progress=False)
    assert 0 < real_vs_real < real_vs_shuffled
    assert real_vs_shuffled > 10 * real_vs_real



def test_corrupt_noise_is_seeded_clipped_and_grows_with_the_level():
    x = torch.rand(4, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    a = metrics.corrupt(x, "noise", 0.2, seed=1)
    assert torch.equal(a, metrics.corrupt(x, "noise", 0.2, seed=1))
    assert not torch.equal(a, metrics.corrupt(x, "noise", 0.2, seed=2))
    assert a.shape == x.shape and a.dtype == x.dtype and 0 <= float(a.min()) and float(a.max()) <= 1
    expected = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    torch.testing.assert_close(a, expected)
    strong = metrics.corrupt(x, "noise", 0.5, seed=1)
    assert float((strong - x).abs().mean()) > float((a - x).abs().mean())
    copy = metrics.corrupt(x, "noise", 0)
    assert torch.equal(copy, x) and copy.data_ptr() != x.data_ptr()


def test_corrupt_blur_is_a_normalised_gaussian_filter():
    x = torch.zeros(1, 1, 15, 15)
    x[0, 0, 7, 7] = 1.0
    b = metrics.corrupt(x, "blur", 1.0)
    t = torch.arange(-3, 4, dtype=torch.float64)
    g = torch.exp(-t * t / 2)
    g = g / g.sum()
    expected = torch.zeros(15, 15, dtype=torch.float64)
    expected[4:11, 4:11] = torch.outer(g, g)
    torch.testing.assert_close(b[0, 0].double(), expected, atol=1e-6, rtol=0)
    flat = torch.full((2, 3, 12, 12), 0.4)
    torch.testing.assert_close(metrics.corrupt(flat, "blur", 2.0), flat)  # reflect borders keep constants
    digits = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert metrics.corrupt(digits, "blur", 2.0).std() < metrics.corrupt(digits, "blur", 0.5).std() < digits.std()


@pytest.mark.parametrize("kind, level, match", [
    ("jpeg", 0.1, "Unknown corruption"), ("noise", -0.1, ">= 0"), ("noise", float("nan"), ">= 0"),
    ("noise", "a lot", "number"), ("blur", 20.0, "larger than"),
])
def test_corrupt_bad_input(kind, level, match):
    with pytest.raises(CourseKitError, match=match):
        metrics.corrupt(torch.rand(2, 1, 28, 28), kind, level)


def test_mnist_fid_rises_and_inception_score_falls_with_corruption(mnist, train_statistics):
    _, x_test = mnist
    fids = [metrics.fid(train_statistics, metrics.corrupt(x_test, "noise", s), progress=False)
            for s in (0.0, 0.2, 0.5)]
    scores = [metrics.inception_score_of_images(metrics.corrupt(x_test, "blur", s), progress=False)[0]
              for s in (0.0, 1.0, 2.0)]
    assert fids[0] < fids[1] < fids[2]
    assert scores[0] > scores[1] > scores[2]

def test_mnist_inception_score_of_real_digits_is_high(mnist):
    _, x_test = mnist
    mean, std = metrics.inception_score_of_images(x_test, progress=False)
    assert 9.0 < mean <= 10.0 and std >= 0
    shuffled_mean, _ = metrics.inception_score_of_images(_shuffle_pixels(x_test), progress=False)
    assert shuffled_mean < 3.0


def test_inception_score_of_class_sorted_images_needs_the_shuffle():
    x, y = data.embedded_mnist("test")
    x_sorted = x[torch.argsort(y, stable=True)][::2]  # 500 digits, all 0s first, then all 1s, ...
    logits = metrics.extract_features(x_sorted, kind="logits", progress=False)
    assert logits.shape == (500, 10)
    shuffled_mean, _ = metrics.inception_score(logits)  # default: torch-fidelity's shuffle
    unshuffled_mean, _ = metrics.inception_score(logits, shuffle_seed=None)
    assert shuffled_mean > 9.0
    assert unshuffled_mean < 2.5  # each split sees one or two classes: p(y) is sharp


def test_fid_streamed_from_a_dataloader_equals_fid_of_tensors(mnist):
    x_train, x_test = mnist
    a, b = x_train[:300], x_test[:200]
    from_tensors = metrics.fid(a, b, batch_size=128, progress=False)
    loader_a = DataLoader(TensorDataset(a, torch.zeros(len(a))), batch_size=77)  # (images, labels) batches
    generator_b = (b[i:i + 64] for i in range(0, len(b), 64))  # a plain generator, no len()
    from_iterables = metrics.fid(loader_a, generator_b, progress=False)
    # float32 convolutions may round differently with the batch size: agree to 1e-6, not bits
    assert from_iterables == pytest.approx(from_tensors, rel=1e-6)
    # precomputed statistics of the real set can be reused
    stats = metrics.feature_statistics(a, batch_size=128, progress=False)
    assert metrics.fid(stats, b, batch_size=128, progress=False) == pytest.approx(from_tensors, rel=1e-12)
    features = [metrics.extract_features(x, progress=False).double() for x in (a, b)]
    assert metrics.frechet_distance(*features) == pytest.approx(from_tensors, rel=1e-6)


def test_inception_score_of_images_from_a_dataloader(mnist):
    _, x_test = mnist
    loader = DataLoader(TensorDataset(x_test[:200]), batch_size=50)
    assert metrics.inception_score_of_images(loader, splits=3, progress=False) == pytest.approx(
        metrics.inception_score_of_images(x_test[:200], splits=3, progress=False), rel=1e-6)


def test_precision_recall_of_images(mnist):
    x_train, x_test = mnist
    extractor = metrics.feature_extractor("mnist_cnn")
    precision, recall = metrics.precision_recall_of_images(x_train[:300], _shuffle_pixels(x_test[:300]),
                                                           extractor, progress=False)
    assert recall == 0.0  # no real digit lies among the scrambled images' features
    real_precision, real_recall = metrics.precision_recall_of_images(x_train[:300], x_test[:300], extractor,
                                                                     progress=False)
    assert real_recall > 0.5 and real_precision > 0.5


def test_fid_restores_the_mode_of_a_given_extractor_and_leaves_its_parameters(mnist):
    extractor = metrics.feature_extractor("mnist_cnn").train()
    before = {k: v.clone() for k, v in extractor.state_dict().items()}
    metrics.fid(mnist[0][:50], mnist[1][:50], feature_net=extractor, progress=False)
    assert extractor.training
    for key, value in extractor.state_dict().items():
        assert torch.equal(value, before[key])


@pytest.mark.parametrize("images, match", [
    (np.zeros((4, 1, 28, 28), dtype=np.float32), "torch.as_tensor"),
    ("images/", "iterable"),
    (torch.rand(4, 1, 28, 28) * 255, r"\[0, 1\]"),
    (torch.rand(4, 3, 28, 28), "channel"),
    (torch.rand(4, 1, 32, 32), "28x28"),
    (torch.rand(1, 1, 28, 28), "at least 2"),
    ([torch.rand(3, 1, 28, 28), torch.rand(3, 1, 27, 27)], "same image shape"),
    ([], "at least 2"),
])
def test_fid_bad_images(mnist, images, match):
    with pytest.raises(CourseKitError, match=match):
        metrics.fid(images, mnist[1][:10], progress=False)


def test_unknown_feature_network():
    with pytest.raises(CourseKitError, match="Unknown feature network"):
        metrics.feature_extractor("resnet")
    with pytest.raises(CourseKitError, match="feature_net"):
        metrics.fid(torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28), feature_net=42, progress=False)


# ============================================================ inception_v3 (weights the test makes)

def test_inception_v3_without_weights_explains_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "inception_v3_google-0cc3c7bd.pth"
    assert metrics.inception_v3_checkpoint() == expected
    with pytest.raises(MissingWeightsError, match="never downloads") as error:
        metrics.feature_extractor("inception_v3")
    assert str(expected) in str(error.value)
    assert "download.pytorch.org" in str(error.value)
    with pytest.raises(MissingWeightsError):
        metrics.fid(torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28), feature_net="inception_v3", progress=False)


def test_inception_v3_rejects_a_corrupt_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = metrics.inception_v3_checkpoint()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a state dict")
    with pytest.raises(CourseKitError, match="not a valid Inception-v3"):
        metrics.feature_extractor("inception_v3")


def test_inception_v3_loads_weights_from_torch_cache(monkeypatch, tmp_path):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = metrics.inception_v3_checkpoint()
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)

    extractor = metrics.feature_extractor("inception_v3")
    assert isinstance(extractor, metrics.InceptionV3Features) and not extractor.training
    x = torch.rand(2, 1, 20, 24, generator=torch.Generator().manual_seed(1))  # grayscale, any size
    with torch.no_grad():
        features = extractor.features(x)
        logits = extractor.fc(features)
        assert torch.equal(extractor.logits(x[:1]), logits[:1])
        # reference: torchvision's net on the [-1, 1]-scaled 299x299 RGB image, which is what
        # ImageNet normalisation followed by transform_input amounts to
        net.eval()
        resized = torch.nn.functional.interpolate(x[:1].expand(-1, 3, -1, -1), size=(299, 299),
                                                  mode="bilinear", align_corners=False)
        reference = net(2 * resized - 1)
    assert features.shape == (2, 2048) and logits.shape == (2, 1000)
    assert torch.isfinite(features).all()
    torch.testing.assert_close(logits[:1], reference, rtol=1e-4, atol=1e-4)
    with pytest.raises(CourseKitError, match="1 channel"):
        extractor.features(torch.rand(1, 2, 8, 8))


def test_inception_v3_real_weights_if_cached():
    """With torchvision's real ImageNet weights in the cache: the cat photo is a cat."""
    if not metrics.inception_v3_checkpoint().is_file():
        pytest.skip(f"torchvision's Inception-v3 weights are not in {metrics.inception_v3_checkpoint().parent} "
                    "(they are not on these machines; coursekit never downloads them)")
    extractor = metrics.feature_extractor("inception_v3")
    cat = data.load_cat_photo().unsqueeze(0)
    with torch.no_grad():
        logits = extractor.logits(cat)
        features = extractor.features(cat)
    assert features.shape == (1, 2048)
    assert int(logits.argmax()) in range(281, 286)  # ImageNet's domestic cats (tabby ... Egyptian cat)


def test_the_metrics_package_keeps_every_public_name_and_no_module_shadows_one():
    """`coursekit.metrics.<name>` for every name of __all__, and the GAN checks also from coursekit.gan.

    No submodule is named after a function: the exercises resolve forbidden names such as
    "coursekit.metrics.inception_score" by importing the longest importable prefix, so a module of
    that name would silently turn the function into a module.
    """
    import importlib

    from coursekit import gan

    for name in metrics.__all__:
        assert getattr(metrics, name) is not None
        with pytest.raises(ImportError):
            importlib.import_module(f"coursekit.metrics.{name}")
    assert callable(metrics.inception_score) and callable(metrics.fid)
    for name in ("digit_quality", "mode_coverage", "energy_distance", "ModeCoverage"):
        assert getattr(gan, name) is getattr(metrics, name)
