"""Tests for coursekit.gan: losses, virtual batch norm, models, trainer, metrics, zoo model."""
import math

import pytest
import torch
import torch.nn.functional as F

from coursekit import data, gan
from coursekit.checks import CourseKitError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


# ---------------------------------------------------------------- losses

def test_losses_at_logit_zero_are_log_2():
    zeros = torch.zeros(5)
    log2 = math.log(2.0)
    assert gan.discriminator_loss(zeros, zeros).item() == pytest.approx(2 * log2, rel=1e-6)
    assert gan.minimax_generator_loss(zeros).item() == pytest.approx(-log2, rel=1e-6)
    assert gan.non_saturating_generator_loss(zeros).item() == pytest.approx(log2, rel=1e-6)


def test_losses_match_their_formulas_on_hand_values():
    real, fake = [2.0, -1.0, 0.5], [-3.0, 1.5]
    expected_d = (-sum(math.log(sigmoid(l)) for l in real) / 3
                  - sum(math.log(1 - sigmoid(l)) for l in fake) / 2)
    expected_minimax = sum(math.log(1 - sigmoid(l)) for l in fake) / 2
    expected_ns = -sum(math.log(sigmoid(l)) for l in fake) / 2
    r, f = torch.tensor(real), torch.tensor(fake)
    assert gan.discriminator_loss(r, f).item() == pytest.approx(expected_d, rel=1e-6)
    assert gan.minimax_generator_loss(f).item() == pytest.approx(expected_minimax, rel=1e-6)
    assert gan.non_saturating_generator_loss(f).item() == pytest.approx(expected_ns, rel=1e-6)
    # Same as torch's BCE with logits (mean over each batch, then summed).
    reference = (F.binary_cross_entropy_with_logits(r, torch.ones(3))
                 + F.binary_cross_entropy_with_logits(f, torch.zeros(2)))
    assert gan.discriminator_loss(r, f).item() == pytest.approx(reference.item(), rel=1e-6)


def test_losses_stable_at_large_logits():
    big = torch.tensor([100.0, -100.0], requires_grad=True)
    losses = [
        gan.discriminator_loss(big, big),
        gan.minimax_generator_loss(big),
        gan.non_saturating_generator_loss(big),
    ]
    for loss in losses:
        (grad,) = torch.autograd.grad(loss, big)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
    # D sure and right: loss ~ 0; D sure and wrong: loss ~ |logit|.
    assert gan.discriminator_loss(torch.tensor([100.0]), torch.tensor([-100.0])).item() == pytest.approx(0.0, abs=1e-6)
    assert gan.discriminator_loss(torch.tensor([-100.0]), torch.tensor([100.0])).item() == pytest.approx(200.0)
    assert gan.non_saturating_generator_loss(torch.tensor([-100.0])).item() == pytest.approx(100.0)
    assert gan.minimax_generator_loss(torch.tensor([100.0])).item() == pytest.approx(-100.0)
    assert gan.minimax_generator_loss(torch.tensor([-100.0])).item() == pytest.approx(0.0, abs=1e-6)


def test_minimax_saturates_where_non_saturating_does_not():
    # Early in training D rejects the fakes: D(G(z)) = sigmoid(-10) ~ 4.5e-5.
    logit = torch.tensor([-10.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(gan.minimax_generator_loss(logit), logit)
    (g_ns,) = torch.autograd.grad(gan.non_saturating_generator_loss(logit), logit)
    assert g_minimax.item() == pytest.approx(-sigmoid(-10.0), rel=1e-4)   # ~ -4.5e-5: vanishes
    assert g_ns.item() == pytest.approx(-(1 - sigmoid(-10.0)), rel=1e-4)  # ~ -1: full signal
    assert abs(g_ns.item()) / abs(g_minimax.item()) > 1e4
    # Both push the logit up (G wants D(G(z)) larger) and agree in direction everywhere.
    logits = torch.linspace(-8, 8, 9, requires_grad=True)
    (a,) = torch.autograd.grad(gan.minimax_generator_loss(logits), logits)
    (b,) = torch.autograd.grad(gan.non_saturating_generator_loss(logits), logits)
    assert (a < 0).all() and (b < 0).all()


def test_one_sided_label_smoothing_only_touches_real_labels():
    real = torch.tensor([0.3, 2.0, -1.0], requires_grad=True)
    fake = torch.tensor([1.0, -0.5], requires_grad=True)
    smooth = gan.discriminator_loss(real, fake, real_label=0.9)
    plain = gan.discriminator_loss(real, fake)
    g_real_s, g_fake_s = torch.autograd.grad(smooth, (real, fake))
    g_real_p, g_fake_p = torch.autograd.grad(plain, (real, fake))
    assert torch.allclose(g_fake_s, g_fake_p)          # fakes: target stays 0
    assert not torch.allclose(g_real_s, g_real_p)      # reals: target moved to 0.9
    # Real term by hand: -(0.9 log D + 0.1 log(1 - D)).
    r = [0.3, 2.0, -1.0]
    real_term = -sum(0.9 * math.log(sigmoid(l)) + 0.1 * math.log(1 - sigmoid(l)) for l in r) / 3
    fake_term = -sum(math.log(1 - sigmoid(l)) for l in [1.0, -0.5]) / 2
    assert smooth.item() == pytest.approx(real_term + fake_term, rel=1e-6)
    # The optimal real logit is now logit(0.9) = log 9, not +infinity.
    at_optimum = torch.tensor([math.log(9.0)], requires_grad=True)
    (g,) = torch.autograd.grad(gan.discriminator_loss(at_optimum, torch.zeros(1), real_label=0.9), at_optimum)
    assert abs(g.item()) < 1e-6


@pytest.mark.parametrize("bad", [
    torch.zeros(4, 2), torch.zeros(2, 1, 28, 28), torch.zeros(()), torch.zeros(0),
    torch.zeros(4, dtype=torch.long), [0.0, 1.0],
])
def test_losses_reject_bad_logits(bad):
    with pytest.raises(CourseKitError):
        gan.non_saturating_generator_loss(bad)
    with pytest.raises(CourseKitError):
        gan.minimax_generator_loss(bad)
    with pytest.raises(CourseKitError):
        gan.discriminator_loss(bad, torch.zeros(3))


def test_logits_of_shape_n_by_1_are_accepted():
    assert gan.non_saturating_generator_loss(torch.zeros(3, 1)).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("label", [0.0, -0.1, 1.1, float("nan"), "high"])
def test_label_smoothing_outside_unit_interval_is_rejected(label):
    with pytest.raises(CourseKitError):
        gan.discriminator_loss(torch.zeros(2), torch.zeros(2), real_label=label)


# ---------------------------------------------------------------- virtual batch norm

def test_vbn_matches_formula_on_vectors():
    torch.manual_seed(0)
    vbn = gan.VirtualBatchNorm(3)
    reference = torch.randn(4, 3)
    normalised_reference = vbn.set_reference(reference)
    x = torch.randn(2, 3)
    out = vbn(x)
    a = 1 / 5
    for i in range(2):
        mean = a * x[i] + (1 - a) * reference.mean(0)
        mean_sq = a * x[i] ** 2 + (1 - a) * (reference ** 2).mean(0)
        expected = (x[i] - mean) / torch.sqrt(mean_sq - mean ** 2 + 1e-5)
        assert torch.allclose(out[i], expected, atol=1e-5)
    # The reference batch is normalised with its own statistics (like batch norm).
    expected_ref = (reference - reference.mean(0)) / torch.sqrt(reference.var(0, unbiased=False) + 1e-5)
    assert torch.allclose(normalised_reference, expected_ref, atol=1e-5)


@pytest.mark.parametrize("shape", [(6, 4), (6, 4, 5, 5)])
def test_vbn_output_of_an_example_does_not_depend_on_the_batch(shape):
    torch.manual_seed(0)
    vbn = gan.VirtualBatchNorm(4)
    with torch.no_grad():
        vbn.weight.uniform_(0.5, 2)
        vbn.bias.uniform_(-1, 1)
    vbn.set_reference(torch.randn(*shape))
    x = torch.randn(*shape)
    alone = vbn(x[:1])
    in_batch = vbn(x)[:1]
    with_others = vbn(torch.cat([x[:1], 10 * torch.randn(*shape) + 3]))[:1]
    assert torch.allclose(alone, in_batch, atol=1e-6)
    assert torch.allclose(alone, with_others, atol=1e-6)


def test_vbn_generator_is_batch_independent_in_training_mode_batch_norm_is_not():
    torch.manual_seed(0)
    z = torch.randn(8, 64)
    others = torch.randn(8, 64) * 3
    vbn_g = gan.DCGANGenerator(use_vbn=True).train()
    a = vbn_g(z)[:2]
    b = vbn_g(torch.cat([z[:2], others]))[:2]
    assert torch.allclose(a, b, atol=1e-5)
    bn_g = gan.DCGANGenerator().train()
    assert not torch.allclose(bn_g(z)[:2], bn_g(torch.cat([z[:2], others]))[:2], atol=1e-3)


def test_vbn_needs_a_reference_and_the_right_shape():
    vbn = gan.VirtualBatchNorm(3)
    with pytest.raises(CourseKitError, match="reference"):
        vbn(torch.randn(2, 3))
    with pytest.raises(CourseKitError):
        vbn.set_reference(torch.randn(2, 5))


# ---------------------------------------------------------------- models

def test_dcgan_shapes_range_and_size():
    torch.manual_seed(0)
    G, D = gan.DCGANGenerator(z_dim=32), gan.DCGANDiscriminator()
    images = G(torch.randn(5, 32))
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1
    assert D(images).shape == (5,)
    assert sum(p.numel() for p in gan.DCGANGenerator().parameters()) * 4 < 1_000_000  # < 1 MB
    with pytest.raises(CourseKitError, match=r"\(N, 32\)"):
        G(torch.randn(5, 64))
    with pytest.raises(CourseKitError):
        D(torch.rand(5, 28, 28))


def test_conditional_models_use_the_labels():
    torch.manual_seed(0)
    G, D = gan.ConditionalGenerator(z_dim=16), gan.ConditionalDiscriminator()
    G.eval()
    z = torch.randn(1, 16).repeat(2, 1)
    images = G(z, torch.tensor([3, 7]))
    assert images.shape == (2, 1, 28, 28)
    assert not torch.allclose(images[0], images[1])  # same noise, different digit
    assert D(images, torch.tensor([3, 7])).shape == (2,)
    with pytest.raises(CourseKitError):
        G(z, torch.tensor([3, 10]))                  # no class 10
    with pytest.raises(CourseKitError):
        D(images, torch.tensor([1.0, 2.0]))          # float labels


def test_generate_is_seeded_and_restores_the_mode():
    torch.manual_seed(0)
    G = gan.DCGANGenerator(z_dim=8).train()
    a, b = gan.generate(G, 10, seed=3), gan.generate(G, 10, seed=3)
    assert torch.equal(a, b) and a.shape == (10, 1, 28, 28)
    assert G.training
    with pytest.raises(CourseKitError):
        gan.generate(G, 4, labels=torch.arange(4))    # unconditional G takes no labels


# ---------------------------------------------------------------- one step each

def _toy_models(seed=0):
    torch.manual_seed(seed)
    return gan.MLPGenerator(z_dim=8, hidden=64), gan.MLPDiscriminator(hidden=64)


def test_discriminator_step_updates_only_d_and_generator_step_only_g():
    G, D = _toy_models()
    opt_g = torch.optim.SGD(G.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.1)
    g0 = [p.clone() for p in G.parameters()]
    d0 = [p.clone() for p in D.parameters()]
    real = data.toy_2d("ring", 32)
    stats = gan.discriminator_step(G, D, opt_d, real, torch.randn(32, 8))
    assert set(stats) == {"d_loss", "d_real", "d_fake"} and 0 < stats["d_real"] < 1
    assert all(torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(p.grad is None for p in G.parameters())   # fake.detach(): no gradient into G
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))
    d1 = [p.clone() for p in D.parameters()]
    stats = gan.generator_step(G, D, opt_g, torch.randn(32, 8), loss="minimax")
    assert set(stats) == {"g_loss"} and stats["g_loss"] < 0   # log(1 - D) < 0
    assert all(torch.equal(a, b) for a, b in zip(d1, D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))


# ---------------------------------------------------------------- trainer

def test_trainer_learns_the_ring():
    G, D = _toy_models()
    real = data.toy_2d("ring", 2000, seed=0)
    held_out = data.toy_2d("ring", 1000, seed=1)
    before = gan.energy_distance(gan.generate(G, 1000, seed=5), held_out)
    trainer = gan.GANTrainer(G, D, lr_g=1e-3, lr_d=1e-3, seed=0, sample_every=250, num_samples=500)
    history = trainer.train(real, steps=1000, batch_size=128, progress=False)
    samples = gan.generate(G, 1000, seed=5)
    after = gan.energy_distance(samples, held_out)
    assert before > 1.0 and after < 0.1 and after < before / 10
    coverage = gan.mode_coverage(samples, data.toy_2d_centers("ring"))
    assert coverage.modes >= 4
    assert len(history["d_loss"]) == 1000 and history["step"][-1] == 1000
    assert history["sample_steps"] == [0, 250, 500, 750, 1000]
    assert history["samples"][-1].shape == (500, 2)
    assert all(0 < v < 1 for v in history["d_real"] + history["d_fake"])
    assert not G.training and not D.training


def _short_run(seed, steps=30, **kwargs):
    G, D = _toy_models()
    trainer = gan.GANTrainer(G, D, lr_g=1e-3, lr_d=1e-3, seed=seed, sample_every=10, **kwargs)
    trainer.train(data.toy_2d("ring", 500), steps=steps, batch_size=32, progress=False)
    return trainer


def test_seeded_runs_repeat_exactly():
    a, b, c = _short_run(seed=1), _short_run(seed=1), _short_run(seed=2)
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "step", "sample_steps"):
        assert a.history[key] == b.history[key]
    assert all(torch.equal(x, y) for x, y in zip(a.history["samples"], b.history["samples"]))
    assert a.history["d_loss"] != c.history["d_loss"]
    # Training leaves the caller's global RNG alone.
    G, D = _toy_models()
    trainer = gan.GANTrainer(G, D, seed=1)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    trainer.train(data.toy_2d("ring", 100), steps=2, batch_size=32, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_k_discriminator_steps_per_generator_step():
    trainer = _short_run(seed=0, steps=5, k=3)
    assert trainer.d_updates == 15 and trainer.g_updates == 5
    assert len(trainer.history["d_loss"]) == 5
    d_param = next(trainer.discriminator.parameters())
    g_param = next(trainer.generator.parameters())
    assert trainer.d_optimizer.state[d_param]["step"].item() == 15
    assert trainer.g_optimizer.state[g_param]["step"].item() == 5


def test_separate_learning_rates_and_minimax_option():
    trainer = _short_run(seed=0, steps=3, generator_loss="minimax", label_smoothing=0.9)
    assert trainer.g_optimizer.param_groups[0]["lr"] == 1e-3
    assert all(v < 0 for v in trainer.history["g_loss"])   # log(1 - D(G(z))) < 0
    G, D = _toy_models()
    t = gan.GANTrainer(G, D, lr_g=1e-4, lr_d=4e-4)
    assert t.g_optimizer.param_groups[0]["lr"] == 1e-4 and t.d_optimizer.param_groups[0]["lr"] == 4e-4
    assert t.d_optimizer.param_groups[0]["betas"] == (0.5, 0.999)


def test_callback_can_stop_training():
    G, D = _toy_models()
    trainer = gan.GANTrainer(G, D, seed=0, sample_every=0)
    seen = []

    def callback(history):
        seen.append(history["step"][-1])
        return len(history["step"]) >= 7

    history = trainer.train(data.toy_2d("ring", 200), steps=50, batch_size=16, progress=False,
                            callback=callback)
    assert len(history["step"]) == 7 and seen == list(range(1, 8))


def test_checkpoint_round_trip_continues_exactly(tmp_path):
    real = data.toy_2d("ring", 500)  # the data of _short_run
    uninterrupted = _short_run(seed=4, steps=40)
    G, D = _toy_models()
    first = gan.GANTrainer(G, D, lr_g=1e-3, lr_d=1e-3, seed=4, sample_every=10)
    first.train(real, steps=20, batch_size=32, progress=False)
    path = first.save(tmp_path / "gan.pt")
    G2, D2 = _toy_models(seed=99)                                # different weights, overwritten
    resumed = gan.GANTrainer(G2, D2, lr_g=1e-3, lr_d=1e-3, seed=0).load(path)
    assert resumed.g_updates == 20 and resumed.history["d_loss"] == first.history["d_loss"]
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G2.state_dict().values()))
    resumed.train(real, steps=20, batch_size=32, progress=False)
    assert resumed.history["d_loss"] == uninterrupted.history["d_loss"]
    assert all(torch.equal(a, b) for a, b in
               zip(uninterrupted.generator.state_dict().values(), G2.state_dict().values()))
    with pytest.raises(CourseKitError):
        gan.GANTrainer(gan.MLPGenerator(z_dim=8, hidden=32), gan.MLPDiscriminator(hidden=32)).load(path)


def test_conditional_gan_trains_on_images_with_labels():
    torch.manual_seed(0)
    G, D = gan.ConditionalGenerator(z_dim=16, channels=16), gan.ConditionalDiscriminator(channels=8)
    x, y = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    trainer = gan.GANTrainer(G, D, seed=0, sample_every=2, num_samples=20)
    history = trainer.train((x, y), steps=2, batch_size=16, progress=False)
    assert len(history["g_loss"]) == 2 and history["samples"][-1].shape == (20, 1, 28, 28)
    assert torch.equal(trainer.fixed_labels, torch.arange(20) % 10)
    with pytest.raises(CourseKitError, match="labels"):
        trainer.train(x, steps=1, batch_size=16, progress=False)


def test_trainer_accepts_a_data_loader():
    G, D = _toy_models()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.toy_2d("ring", 64)), batch_size=16)
    trainer = gan.GANTrainer(G, D, seed=0, sample_every=0)
    trainer.train(loader, steps=6, batch_size=16, progress=False)   # 4 batches per pass: wraps around
    assert trainer.g_updates == 6


@pytest.mark.parametrize("kwargs", [
    {"k": 0}, {"k": 1.5}, {"label_smoothing": 0.0}, {"label_smoothing": 1.2},
    {"generator_loss": "hinge"}, {"lr_g": 0}, {"lr_d": -1e-3}, {"sample_every": -1},
])
def test_trainer_rejects_bad_settings(kwargs):
    G, D = _toy_models()
    with pytest.raises(CourseKitError):
        gan.GANTrainer(G, D, **kwargs)


def test_trainer_rejects_bad_data():
    G, D = _toy_models()
    trainer = gan.GANTrainer(G, D)
    with pytest.raises(CourseKitError):
        trainer.train(data.toy_2d("ring", 10), steps=1, batch_size=64, progress=False)  # batch > data
    with pytest.raises(CourseKitError):
        trainer.train(torch.rand(10, 1, 28, 28) * 255, steps=1, batch_size=4, progress=False)
    with pytest.raises(CourseKitError):
        trainer.train("ring", steps=1, progress=False)
    with pytest.raises(CourseKitError):
        trainer.train(data.toy_2d("ring", 10), steps=0, batch_size=4, progress=False)
    with pytest.raises(CourseKitError):
        gan.GANTrainer(G, gan.ConditionalDiscriminator())   # one conditional, one not


# ---------------------------------------------------------------- metrics

def test_energy_distance_matches_scipy_in_one_dimension():
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 1, generator=g), torch.randn(70, 1, generator=g) + 0.5
    expected = scipy_stats.energy_distance(a[:, 0].numpy(), b[:, 0].numpy()) ** 2
    assert gan.energy_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert gan.energy_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    assert gan.energy_distance(a, b) == pytest.approx(gan.energy_distance(b, a))


def test_energy_distance_hand_value_and_errors():
    # Two single points at distance 3: 2*3 - 0 - 0.
    assert gan.energy_distance(torch.zeros(1, 2), torch.tensor([[3.0, 0.0]])) == pytest.approx(6.0)
    with pytest.raises(CourseKitError):
        gan.energy_distance(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(CourseKitError):
        gan.energy_distance(torch.zeros(4), torch.zeros(4))


def test_mode_coverage_counts_modes_and_quality():
    centers = data.toy_2d_centers("ring")
    collapsed = centers[:1].repeat(100, 1) + 0.01
    result = gan.mode_coverage(collapsed, centers)
    assert result.modes == 1 and result.high_quality == pytest.approx(1.0)
    spread = torch.cat([centers.repeat(10, 1), torch.zeros(20, 2)])  # 80 on the modes, 20 at the origin
    result = gan.mode_coverage(spread, centers)
    assert result.modes == 8 and result.high_quality == pytest.approx(0.8)
    assert result.counts.tolist() == [10] * 8
    assert gan.mode_coverage(data.toy_2d("ring", 2000), centers).high_quality > 0.95


# ---------------------------------------------------------------- the zoo's DCGAN

def _quality_against_the_embedded_digits(name: str) -> dict:
    """The bar's figures for a shipped generator, against the shipped digits (the same everywhere)."""
    from coursekit import data, zoo
    from coursekit.recipes.gan import evaluate_digit_generator

    return evaluate_digit_generator(zoo.load(name), n=2000, seed=1000,
                                    real_test=data.embedded_mnist("test")[0],
                                    real_train=data.embedded_mnist("train")[0])


def test_moving_average_follows_its_formula_and_copies_integer_buffers():
    """recipes.gan.moving_average: avg <- decay * avg + (1 - decay) * theta, per float tensor (batch-norm
    statistics too); integer buffers (the batch counter) are copied; the model itself is untouched."""
    from coursekit.recipes.gan import moving_average

    torch.manual_seed(0)
    model = gan.DCGANGenerator(z_dim=8, channels=8)
    average, update = moving_average(model, 0.9)
    latest, follow = moving_average(model, 0.0)       # decay 0: the copy becomes the model
    start = {k: v.clone() for k, v in average.state_dict().items()}
    model.train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model(torch.randn(16, 8))                     # moves the batch-norm statistics, counts a batch
    theta = {k: v.clone() for k, v in model.state_dict().items()}
    update()
    for key, value in average.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.9 * start[key] + 0.1 * theta[key], atol=1e-6), key
        else:
            assert torch.equal(value, theta[key]), key
    assert any("num_batches_tracked" in k for k in start) and not any(p.requires_grad for p in average.parameters())
    assert all(torch.equal(v, theta[k]) for k, v in model.state_dict().items())
    follow()
    assert all(torch.equal(v, theta[k]) for k, v in latest.state_dict().items())


def test_shipped_cgan_meets_the_quality_bar():
    """Issue 17's bar: >= 90% confident under mnist_cnn, every class 5-15%, FID <= 2x real digits."""
    from coursekit import zoo
    from coursekit.recipes.gan import meets_quality_bar

    G = zoo.load("cgan_mnist")
    assert not G.training and G.z_dim == 64 and gan.is_conditional(G)
    figures = _quality_against_the_embedded_digits("cgan_mnist")
    assert meets_quality_bar(figures) == []
    assert figures["label_agreement"] > 0.9 and min(figures["label_agreement_per_class"]) > 0.8
    record = zoo.manifest()["cgan_mnist"]          # the manifest states what it measured (full MNIST)
    assert record["meets_quality_bar"] and record["confident_fraction"] >= 0.9


@pytest.mark.slow    # 5-15 s of training or sampling: make test-fast skips it
def test_shipped_dcgan_draws_recognisable_digits_of_every_class():
    """The unconditional DCGAN: every class 5-15% of samples, FID <= 2x real digits, ~87% confident.

    It meets issue 17's bar except the confident share (87% of 90%); the manifest says so and the
    search behind it is in docs/benchmarks.md. This test holds what it does reach, so a worse
    rebuild fails."""
    from coursekit import zoo
    from coursekit.recipes.gan import QUALITY_BAR, meets_quality_bar

    G = zoo.load("dcgan_mnist")
    assert not G.training and G.z_dim == 64
    images = gan.generate(G, 500, seed=0)
    assert images.shape == (500, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    figures = _quality_against_the_embedded_digits("dcgan_mnist")
    assert figures["confident_fraction"] > 0.85
    assert all(0.05 <= share <= 0.15 for share in figures["class_shares"])          # no collapse
    assert figures["fid_mnist"] <= QUALITY_BAR["fid_ratio_max"] * figures["fid_mnist_real"]
    record = zoo.manifest()["dcgan_mnist"]          # full MNIST: FID 18.2 vs 11.0 real
    assert record["fid_mnist"] <= QUALITY_BAR["fid_ratio_max"] * record["fid_mnist_real"]
    assert record["misses"] == meets_quality_bar(record) == [
        f"confident fraction {record['confident_fraction']:.3f} < {QUALITY_BAR['confident_fraction']}"]
    assert zoo.weights_dir().joinpath("dcgan_mnist.pt").stat().st_size < 8e6      # "a few MB"


# ---------------------------------------------------------------- the game in closed form (gan.theory)

def test_jsd_agrees_with_scipy_and_the_value_is_minus_log4_plus_twice_it():
    from scipy.spatial.distance import jensenshannon

    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        p, q = torch.rand(12, generator=g), torch.rand(12, generator=g)
        p[:3] = 0                                         # zeros on one side only, and...
        q[2:4] = 0                                        # ...a point where both vanish
        p, q = p / p.sum(), q / q.sum()
        jsd = gan.jensen_shannon_divergence(p, q)
        assert abs(jsd - float(jensenshannon(p.numpy(), q.numpy())) ** 2) < 1e-6   # scipy: sqrt of JSD, nats
        assert abs(gan.value_at_optimal_discriminator(p, q) - (-math.log(4) + 2 * jsd)) < 1e-6  # float32 sums


def test_value_at_the_optimum_ranges_from_minus_log4_to_zero_and_falls_as_p_g_nears_the_data():
    xs = torch.linspace(-8, 10, 3601)
    dx = float(xs[1] - xs[0])
    normal = lambda x, mu, sd: torch.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))  # noqa: E731
    data = normal(xs, 2.0, 0.5)
    assert abs(gan.value_at_optimal_discriminator(data, data, dx) + math.log(4)) < 1e-4
    values = [gan.value_at_optimal_discriminator(data, normal(xs, mu, 0.5), dx) for mu in (-4.0, -1.0, 0.5, 1.5, 2.0)]
    assert all(a > b for a, b in zip(values, values[1:])) and abs(values[0]) < 1e-3     # disjoint: about 0
    d_star = gan.optimal_discriminator(data, normal(xs, 0.0, 1.0))
    assert d_star.shape == xs.shape and float(d_star.min()) >= 0 and float(d_star.max()) <= 1
    both_zero = gan.optimal_discriminator(torch.zeros(2), torch.zeros(2))
    assert torch.equal(both_zero, torch.full((2,), 0.5))


def test_theory_rejects_bad_densities_clearly():
    with pytest.raises(CourseKitError, match="p_g must hold finite values >= 0"):
        gan.value_at_optimal_discriminator(torch.ones(3), torch.tensor([0.5, -0.1, 0.2]))
    with pytest.raises(CourseKitError, match="same points"):
        gan.jensen_shannon_divergence(torch.ones(3), torch.ones(4))
    with pytest.raises(CourseKitError, match="dx must be a positive number"):
        gan.value_at_optimal_discriminator(torch.ones(3), torch.ones(3), dx=0)
    with pytest.raises(CourseKitError, match="float tensor"):
        gan.optimal_discriminator(torch.ones(3, dtype=torch.long), torch.ones(3))
