"""Wrong answers that only a check of behaviour catches (issue 15, classes 3 and 6-9): no gradient, the
generator ignored, inputs changed in place, a step from the wrong point, noise drawn once, lying objects,
library shortcuts, leaky error messages; and a float32 answer that is right."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coursekit import attacks, exercises
from coursekit.exercises import probes


def diagnose(number: str, exercise_id: str, answer):
    return exercises.diagnose(exercises.get(number, exercise_id), answer)


# ---------------------------------------------------------------- losses: the gradient must flow back

def _d_loss_in_numpy(real_logits, fake_logits):
    r, f = real_logits.detach().numpy(), fake_logits.detach().numpy()
    return torch.tensor(float(np.logaddexp(0, -r).mean() + np.logaddexp(0, f).mean()))


def _ns_loss_detached(fake_logits):
    return F.softplus(-fake_logits).mean().detach()


def _bypass_loss_from_item(classifier_logits, detector_logits, y, detector_weight):
    loss = (-F.cross_entropy(classifier_logits, y, reduction="none")
            + detector_weight * F.softplus(detector_logits)).mean()
    return torch.tensor(loss.item())


def _smoothing_under_no_grad(real_logits, fake_logits, smooth=0.9):
    with torch.no_grad():
        return (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, smooth))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


@pytest.mark.parametrize("number,exercise_id,answer", [
    ("04", "ex1-d-loss", _d_loss_in_numpy),
    ("04", "ex3-ns-loss", _ns_loss_detached),
    ("03", "ex1-bypass-loss", _bypass_loss_from_item),
    ("05", "ex2-smoothing", _smoothing_under_no_grad),
], ids=["numpy", "detached", "item", "no_grad"])
def test_a_loss_with_the_right_value_but_no_gradient_is_rejected_with_its_own_message(number, exercise_id, answer):
    result = diagnose(number, exercise_id, answer)
    assert result.kind == "no-gradient" and "no gradient flows back" in result.message, result


def test_a_loss_whose_gradient_is_wrong_is_rejected():
    result = diagnose("06", "ex1-cycle-loss", lambda x, r: ((r - x) ** 2).sqrt().mean())    # nan gradient at 0
    assert not result.ok and "its gradient is not the loss's" in result.message, result


def test_losses_written_differently_keep_their_gradient_and_pass():
    assert diagnose("04", "ex1-d-loss", lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean()).ok
    assert diagnose("06", "ex1-cycle-loss", lambda x, r: (x - r).abs().sum() / x.numel()).ok


# ---------------------------------------------------------------- the generator it is given

def _fast_at(draw):
    def answer(model, x, y, eps, alpha, generator):
        start = (x + draw(x, eps, generator)).clamp(0, 1).requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(start), y), start)
        return attacks.project_linf(start.detach() + alpha * grad.sign(), x, eps)
    return answer


def _own_generator(x, eps, generator):
    return (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1) * eps


def _seeded_global_generator(x, eps, generator):
    torch.manual_seed(0)
    return (torch.rand(x.shape) * 2 - 1) * eps


@pytest.mark.parametrize("draw", [_own_generator, _seeded_global_generator])
def test_a_random_start_that_ignores_the_generator_it_is_given_is_rejected(draw):
    """Both repeat under any global seed and are right on the generator seed of the public check (0)."""
    result = diagnose("03", "ex2-fast-at", _fast_at(draw))
    assert result.misconception == "random start without the generator", result


def test_a_random_start_drawn_otherwise_from_the_generator_passes():
    draw = lambda x, eps, g: torch.empty_like(x).uniform_(-eps, eps, generator=g).flip(-1)   # noqa: E731
    assert diagnose("03", "ex2-fast-at", _fast_at(draw)).ok


# ---------------------------------------------------------------- a step from the wrong point

def _from_x_with_another_draw(shuffle):
    def answer(model, x, y, eps, alpha, generator):
        delta = shuffle((torch.rand(x.shape, generator=generator) * 2 - 1) * eps)
        start = (x + delta).clamp(0, 1).requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(start), y), start)
        return attacks.project_linf(x + alpha * grad.sign(), x, eps)         # from x, not from the start
    return answer


@pytest.mark.parametrize("shuffle", [lambda d: d.flip(-1), lambda d: d.roll(3, dims=-2)], ids=["flipped", "rolled"])
def test_a_step_from_x_instead_of_the_random_start_is_outside_the_bands(shuffle):
    result = diagnose("03", "ex2-fast-at", _from_x_with_another_draw(shuffle))
    assert not result.ok and "outside the range that correct answers reach" in result.message, result


# ---------------------------------------------------------------- noise drawn afresh

_ONCE = torch.randn(128, 4, generator=torch.Generator().manual_seed(3))


def _step_with(noise_for):
    def step(G, D, opt_g, opt_d, real_batches, noise_batches):
        z = noise_for(len(real_batches[0]))
        d_losses = []
        for real in real_batches:
            loss = F.softplus(-D(real)).mean() + F.softplus(D(G(z).detach())).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
            d_losses.append(loss.item())
        g_loss = F.softplus(-D(G(z))).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        return {"d_loss": sum(d_losses) / len(d_losses), "g_loss": g_loss.item()}
    return step


def _cached_noise():
    cache = {}
    return lambda n: cache.setdefault(n, torch.randn(n, 4))


@pytest.mark.parametrize("noise_for", [lambda n: _ONCE[:n], _cached_noise()], ids=["module-level", "cached"])
def test_a_training_step_that_reuses_noise_drawn_once_is_rejected(noise_for):
    result = diagnose("05", "ex1-training-step", _step_with(noise_for))
    assert result.misconception == "noise drawn once", result


def test_a_training_step_that_draws_fresh_noise_itself_passes():
    assert diagnose("05", "ex1-training-step", _step_with(lambda n: torch.randn(n, 4))).ok


# ---------------------------------------------------------------- the caller's tensors stay as they were

def _fgsm_in_place(model, x, y, eps):
    model.eval()
    x.requires_grad_(True)
    F.cross_entropy(model(x), y).backward()
    x.data.add_(eps * x.grad.sign()).clamp_(0, 1)
    return x.detach()


def _projection_in_place(x_adv, x, eps):
    x_adv.sub_(x).clamp_(-eps, eps).add_(x).clamp_(0, 1)
    return x_adv


def _vbn_in_place(x, reference, eps=1e-5):
    a = 1 / (len(reference) + 1)
    mean = a * x + (1 - a) * reference.mean(0)
    var = a * x ** 2 + (1 - a) * (reference ** 2).mean(0) - mean ** 2
    x.sub_(mean).div_(torch.sqrt(var + eps))
    return x


@pytest.mark.parametrize("number,exercise_id,answer", [
    ("01", "ex2-fgsm", _fgsm_in_place),
    ("01", "ex3-projection", _projection_in_place),
    ("05", "ex3-vbn", _vbn_in_place),
], ids=["fgsm", "projection", "vbn"])
def test_an_answer_that_overwrites_the_callers_tensors_is_rejected(number, exercise_id, answer):
    result = diagnose(number, exercise_id, answer)
    assert result.kind == "mutated" and "work on a copy" in result.message, result


# ---------------------------------------------------------------- the answer object cannot lie

class _Agreeable(torch.Tensor):
    """Wrong numbers that claim to equal anything they are compared with."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


class _Float(float):
    def __eq__(self, other):
        return True

    def __float__(self):
        return 0.5


def test_a_tensor_subclass_that_lies_in_comparisons_is_seen_through():
    result = diagnose("06", "ex2-psnr", lambda x, y: torch.zeros(len(x)).as_subclass(_Agreeable))
    assert not result.ok and result.kind == "type" and "plain torch.Tensor" in result.message, result


def test_a_float_subclass_is_judged_on_its_real_value():
    right = exercises.get("02", "ex3-min-flip").reference
    result = diagnose("02", "ex3-min-flip", lambda W, b, x, y, t: _Float(right(W, b, x, y, t) + 1.0))
    assert not result.ok, result


# ---------------------------------------------------------------- float32 is legitimate where it is

def _frechet_float32_eigvals(features_a, features_b):
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    s_a, s_b = torch.cov(features_a.T), torch.cov(features_b.T)
    trace_sqrt = torch.linalg.eigvals(s_a @ s_b).real.clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b) @ (mu_a - mu_b) + s_a.trace() + s_b.trace() - 2 * trace_sqrt)


def _frechet_float32_symmetric(features_a, features_b):
    a, b = features_a.float(), features_b.float()
    ca, cb = a - a.mean(0), b - b.mean(0)
    s_a, s_b = ca.T @ ca / (len(a) - 1), cb.T @ cb / (len(b) - 1)
    values, vectors = torch.linalg.eigh(s_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    trace_sqrt = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp(min=0).sqrt().sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + s_a.trace() + s_b.trace() - 2 * trace_sqrt)


@pytest.mark.parametrize("answer", [_frechet_float32_eigvals, _frechet_float32_symmetric])
def test_a_float32_frechet_distance_is_right(answer):
    assert diagnose("07", "ex3-frechet", answer).ok


def test_the_frechet_tolerance_still_names_the_population_covariance():
    def population(a, b):
        a, b = a.double(), b.double()
        s_a, s_b = torch.cov(a.T, correction=0), torch.cov(b.T, correction=0)
        trace_sqrt = torch.linalg.eigvals(s_a @ s_b).real.clamp(min=0).sqrt().sum()
        diff = a.mean(0) - b.mean(0)
        return float(diff @ diff + s_a.trace() + s_b.trace() - 2 * trace_sqrt)
    assert diagnose("07", "ex3-frechet", population).misconception == "population covariance"


# ---------------------------------------------------------------- shortcuts through other libraries

def _wilson_by_scipy(k, n, z=1.96):
    from scipy.stats import binomtest, norm

    return float(binomtest(k, n).proportion_ci(confidence_level=2 * norm.cdf(z) - 1, method="wilson").low)


def _frechet_by_pytorch_fid(features_a, features_b):
    from pytorch_fid.fid_score import calculate_frechet_distance

    a, b = features_a.double().numpy(), features_b.double().numpy()
    return float(calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))


def _psnr_by_torchmetrics(x, y):
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return torch.stack([peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(x, y)])


def _psnr_by_skimage(x, y):
    from skimage.metrics import peak_signal_noise_ratio

    return torch.tensor([peak_signal_noise_ratio(a.numpy(), b.numpy(), data_range=1.0) for a, b in zip(x, y)],
                        dtype=torch.float32)


def _nearest_by_sklearn(queries, references):
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=1).fit(references.flatten(1).numpy())
    distances, _ = index.kneighbors(queries.flatten(1).numpy())
    return torch.tensor(distances[:, 0], dtype=torch.float32)


def _fgsm_by_art(model, x, y, eps):
    from art.attacks.evasion import FastGradientMethod
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(model=model.eval(), loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                                   nb_classes=10, clip_values=(0.0, 1.0))
    return torch.from_numpy(FastGradientMethod(classifier, eps=eps).generate(x.numpy(), y=y.numpy()))


def _min_flip_by_the_registry(W, b, x, y, t):
    return exercises.get("02", "ex3-min-flip").reference(W, b, x, y, t)


def _fgsm_by_a_known_mistake(model, x, y, eps):
    wrong = exercises.get("01", "ex2-fgsm").misconceptions[0].wrong
    return wrong(model, x, y, -eps)                       # gradient descent with -eps: FGSM


@pytest.mark.parametrize("number,exercise_id,answer,called", [
    ("07", "ex1-wilson", _wilson_by_scipy, "scipy.stats._binomtest"),
    ("07", "ex3-frechet", _frechet_by_pytorch_fid, "pytorch_fid"),
    ("06", "ex2-psnr", _psnr_by_torchmetrics, "torchmetrics.functional.image.psnr"),
    ("06", "ex2-psnr", _psnr_by_skimage, "skimage.metrics.simple_metrics"),
    ("06", "ex3-nearest-neighbour", _nearest_by_sklearn, "sklearn.neighbors"),
    ("01", "ex2-fgsm", _fgsm_by_art, "the art library"),
    ("02", "ex3-min-flip", _min_flip_by_the_registry, "the grading internals"),
    ("01", "ex2-fgsm", _fgsm_by_a_known_mistake, "the grading internals"),
], ids=["scipy-binomtest", "pytorch-fid", "torchmetrics-psnr", "skimage-psnr", "sklearn-neighbors", "art",
        "registry-reference", "registry-misconception"])
def test_an_answer_that_calls_another_implementation_is_named_a_shortcut(number, exercise_id, answer, called):
    result = diagnose(number, exercise_id, answer)
    assert result.kind == "shortcut" and called in result.message, result


def test_the_registrys_reference_handed_in_as_the_answer_is_a_shortcut():
    exercise = exercises.get("06", "ex2-psnr")
    result = exercises.diagnose(exercise, exercise.reference)
    assert result.kind == "shortcut" and "grading internals" in result.message


# ---------------------------------------------------------------- messages of hidden checks

def _raises_with_sizes(x, y):
    raise RuntimeError(f"The size of tensor a ({x.shape[0]}) must match the size of tensor b ({x.shape[-1] + 1})")


@pytest.mark.parametrize("answer", [_raises_with_sizes, lambda x, y: x.view(-1, 5).mean(1)], ids=["own", "torch"])
def test_a_hidden_check_does_not_echo_the_answers_own_error_text(answer):
    with pytest.raises(AssertionError) as err:
        exercises.grade("06_gan_applications", "ex2-psnr", {"my_psnr": answer})
    message = str(err.value)
    assert "RuntimeError" in message and "hidden check" in message and not any(ch.isdigit() for ch in message)
    assert "size" in exercises.diagnose(exercises.get("06", "ex2-psnr"), answer).message   # self-study shows it


def test_probe_models_travel_by_name():
    model = probes.model("dropout_mlp")
    assert probes.model_name(model) == "dropout_mlp" and probes.model(probes.model_name(model)) is model
