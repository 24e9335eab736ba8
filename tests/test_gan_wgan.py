"""WGAN-GP in coursekit.gan: the critic and generator losses, the gradient penalty, the critic step and
the trainer's 'wasserstein' option, each against its formula or a hand computation."""
import math

import pytest
import torch
from torch import nn

from coursekit import data, gan
from coursekit.checks import CourseKitError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_critic_and_generator_losses_match_their_formulas():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 1.5])
    # L_C = mean C(G(z)) - mean C(x);  L_G = -mean C(G(z))
    assert gan.wgan_critic_loss(real, fake).item() == pytest.approx((-3.0 + 1.5) / 2 - (2.0 - 1.0 + 0.5) / 3)
    assert gan.wgan_generator_loss(fake).item() == pytest.approx(-(-3.0 + 1.5) / 2)
    # Unbounded scores, no saturation: the generator's gradient per score is -1/M wherever the score is.
    scores = torch.tensor([-1e4, 0.0, 1e4], requires_grad=True)
    (grad,) = torch.autograd.grad(gan.wgan_generator_loss(scores), scores)
    assert torch.allclose(grad, torch.full((3,), -1 / 3))
    assert gan.get_generator_loss("wasserstein") is gan.wgan_generator_loss
    with pytest.raises(CourseKitError):
        gan.wgan_critic_loss(torch.zeros(3, 2), torch.zeros(3))     # one score per example


class _Linear(nn.Module):
    """C(x) = w . x + b: its gradient is w everywhere, so GP = (||w|| - 1)^2 exactly."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_and_trains_it():
    critic = _Linear([3.0, 4.0])                       # ||w|| = 5
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    penalty = gan.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx((5.0 - 1.0) ** 2, rel=1e-5)
    # The penalty is differentiable in the critic's weights (create_graph): d/dw (||w|| - 1)^2 = 2(||w|| - 1) w/||w||
    penalty.backward()
    assert torch.allclose(critic.w.grad, 2 * (5.0 - 1.0) * torch.tensor([3.0, 4.0]) / 5.0, atol=1e-4)


def test_gradient_penalty_against_a_hand_computation_on_the_interpolates():
    # C(x) = sum of squares over an example's values: grad C(x_hat) = 2 x_hat, ||.|| = 2 ||x_hat||.
    critic = lambda x: (x ** 2).flatten(1).sum(1)     # noqa: E731
    g = torch.Generator().manual_seed(3)
    real, fake = torch.rand(5, 1, 2, 3, generator=g), torch.rand(5, 1, 2, 3, generator=g)   # images: norm over C, H, W
    alpha = torch.tensor([0.0, 0.25, 0.5, 0.9, 1.0])
    x_hat = alpha.view(5, 1, 1, 1) * real + (1 - alpha.view(5, 1, 1, 1)) * fake
    norms = [2 * math.sqrt(float((x_hat[i] ** 2).sum())) for i in range(5)]
    expected = sum((n - 1) ** 2 for n in norms) / 5
    assert gan.gradient_penalty(critic, real, fake, alpha=alpha).item() == pytest.approx(expected, rel=1e-5)
    # alpha = 1: the penalty sits on the real points, alpha = 0 on the fakes.
    on_real = gan.gradient_penalty(critic, real, fake, alpha=torch.ones(5)).item()
    assert on_real == pytest.approx(sum((2 * float(r.norm()) - 1) ** 2 for r in real) / 5, rel=1e-5)


def test_gradient_penalty_of_an_mlp_critic_matches_per_example_autograd():
    torch.manual_seed(0)
    critic = gan.MLPDiscriminator(hidden=16)
    real, fake = data.toy_2d("ring", 8, seed=0), torch.randn(8, 2)
    alpha = torch.rand(8, generator=torch.Generator().manual_seed(1))
    expected = 0.0
    for i in range(8):
        point = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).reshape(1, 2).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(point).sum(), point)
        expected += (float(grad.norm()) - 1) ** 2 / 8
    assert gan.gradient_penalty(critic, real, fake, alpha=alpha).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_is_seeded_conditional_aware_and_rejects_bad_input():
    torch.manual_seed(0)
    critic = gan.MLPDiscriminator(hidden=16)
    real, fake = torch.randn(10, 2), torch.randn(10, 2)
    a = gan.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    b = gan.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    c = gan.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(6))
    assert a.item() == b.item() != c.item()
    conditional = gan.ConditionalDiscriminator(channels=4)
    images = torch.rand(3, 1, 28, 28)
    penalty = gan.gradient_penalty(conditional, images, torch.rand(3, 1, 28, 28), labels=torch.tensor([1, 2, 3]))
    assert penalty.dim() == 0 and torch.isfinite(penalty)
    for bad in [dict(fake=torch.randn(9, 2)), dict(alpha=torch.rand(10, 1)), dict(alpha=torch.full((10,), 1.5))]:
        with pytest.raises(CourseKitError):
            gan.gradient_penalty(critic, real, bad.get("fake", fake), alpha=bad.get("alpha"))


def test_critic_step_descends_the_penalised_critic_loss_and_leaves_g_alone():
    torch.manual_seed(0)
    G, C = gan.MLPGenerator(z_dim=4, hidden=16), gan.MLPDiscriminator(hidden=16)
    opt = torch.optim.SGD(C.parameters(), lr=0.05)
    real, z, alpha = data.toy_2d("ring", 64, seed=0), torch.randn(64, 4), torch.rand(64)
    g_before = [p.clone() for p in G.parameters()]
    with torch.no_grad():
        fake = G(z)
    expected = (gan.wgan_critic_loss(C(real), C(fake)) + 10.0 * gan.gradient_penalty(C, real, fake, alpha=alpha)).item()
    stats = gan.critic_step(G, C, opt, real, z, gp_weight=10.0, alpha=alpha)
    assert set(stats) == {"d_loss", "d_real", "d_fake", "gradient_penalty"}
    assert stats["d_loss"] == pytest.approx(expected, rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    assert all(p.grad is None for p in G.parameters())
    with torch.no_grad():
        after = (gan.wgan_critic_loss(C(real), C(fake)) + 10.0 * gan.gradient_penalty(C, real, fake, alpha=alpha)).item()
    assert after < expected                              # one SGD step went downhill


def test_trainer_plays_wgan_gp_on_the_ring():
    torch.manual_seed(0)
    G, C = gan.MLPGenerator(z_dim=4, hidden=64), gan.MLPDiscriminator(hidden=64)
    held_out = data.toy_2d("ring", 1000, seed=1)
    before = gan.energy_distance(gan.generate(G, 1000, seed=5), held_out)
    trainer = gan.GANTrainer(G, C, lr_g=2e-3, lr_d=2e-3, betas=(0.5, 0.9), k=3, generator_loss="wasserstein",
                             gp_weight=1.0, seed=0, sample_every=0)
    history = trainer.train(data.toy_2d("ring", 2000, seed=0), steps=300, batch_size=128, progress=False)
    after = gan.energy_distance(gan.generate(G, 1000, seed=5), held_out)
    assert after < before / 5
    assert trainer.d_updates == 900 and trainer.g_updates == 300
    # History records critic scores: their difference estimates the Wasserstein distance (>= 0 once trained).
    assert sum(r - f for r, f in zip(history["d_real"][-50:], history["d_fake"][-50:])) > 0
    assert trainer.state_dict()["config"]["gp_weight"] == 1.0


def test_wgan_trainer_refuses_label_smoothing_and_a_bad_penalty_weight():
    torch.manual_seed(0)
    G, C = gan.MLPGenerator(z_dim=4, hidden=8), gan.MLPDiscriminator(hidden=8)
    with pytest.raises(CourseKitError, match="critic"):
        gan.GANTrainer(G, C, generator_loss="wasserstein", label_smoothing=0.9)
    with pytest.raises(CourseKitError):
        gan.GANTrainer(G, C, generator_loss="wasserstein", gp_weight=0)
