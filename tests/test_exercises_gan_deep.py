"""The deep exercises of lectures 04 and 05: the ring's generator and discriminator (04, ex4) and the whole
GAN training loop (05, ex4). Correct answers written differently pass, known mistakes are named with their
own hint, answers of the wrong form are told what form, and the library's implementation is a shortcut."""
import pytest
import torch
from torch import nn

from coursekit import exercises, gan
from coursekit.exercises import harnesses

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RING = ("04_gan_game", "ex4-ring-networks")
LOOP = ("05_gan_training_tips", "ex4-training-loop")


def diagnose(key, answer):
    return exercises.diagnose(exercises.get(*key), answer)


# ---------------------------------------------------------------- 04: ring_networks

class _Generator(nn.Module):
    def __init__(self, z_dim, hidden):
        super().__init__()
        self.z_dim = z_dim
        self.first, self.second, self.out = nn.Linear(z_dim, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 2)

    def forward(self, z):
        return self.out(torch.relu(self.second(torch.relu(self.first(z)))))


class _Discriminator(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(2, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 1)])

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = nn.functional.leaky_relu(layer(x), 0.2)
        return self.layers[-1](x)[:, 0]


def _ring_classes(z_dim, hidden):
    return _Generator(z_dim, hidden), _Discriminator(hidden)


def _ring_sequential_view(z_dim, hidden):
    G = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    G.z_dim = z_dim
    body = nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, 1))

    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, x):
            return self.body(x).view(-1)
    return G, D()


@pytest.mark.parametrize("answer", [_ring_classes, _ring_sequential_view], ids=["classes", "sequential + view"])
def test_ring_networks_written_differently_pass(answer):
    assert diagnose(RING, answer).ok


def test_ring_networks_reference_passes():
    exercise = exercises.get(*RING)
    from coursekit.exercises.judge.verdict import judge
    from coursekit.exercises.runner import run_answer

    record = run_answer(exercise.function, exercise.reference, exercise.calls(0), ())   # no shortcut watch
    assert judge(exercise, record).ok


def _ring_with(d_tail=None, z_attr=True, reuse=False, detach=False):
    cache = {}

    def answer(z_dim, hidden):
        if reuse and (z_dim, hidden) in cache:
            return cache[(z_dim, hidden)]
        G, D = _ring_sequential_view(z_dim, hidden)
        if not z_attr:
            del G.z_dim
        if d_tail == "n1":
            D.forward = lambda x: D.body(x)
        if detach:
            forward = G.forward
            G.forward = lambda z: forward(z).detach()
        cache[(z_dim, hidden)] = (G, D)
        return G, D
    return answer


@pytest.mark.parametrize("answer, says", [
    (_ring_with(d_tail="n1"), "shape (N,), not (N, 1)"),
    (_ring_with(z_attr=False), "attribute z_dim"),
    (_ring_with(reuse=True), "NEW networks at every call"),
    (_ring_with(detach=True), "No gradient reaches G's parameters"),
    (lambda z, h: nn.Linear(z, 2), "pair (G, D)"),
])
def test_ring_networks_of_the_wrong_form_are_told_what_form(answer, says):
    result = diagnose(RING, answer)
    assert not result.ok and says in result.message, result


def test_ring_networks_from_the_library_is_a_shortcut():
    result = diagnose(RING, lambda z, h: (gan.MLPGenerator(z_dim=z, hidden=h), gan.MLPDiscriminator(hidden=h)))
    assert result.kind == "shortcut" and "MLPGenerator" in result.message
    assert diagnose(RING, lambda z, h: gan.mlp_pair(z, h)).kind == "shortcut"


def test_ring_signature_separates_a_squashing_head_from_a_linear_one():
    # The harness re-initialises both answers the same way: only the head differs, and it shows.
    tanh = exercises.get(*RING).misconceptions[0].wrong
    linear, squashed = (harnesses.ring_networks_signature(a, 4, 16, 0) for a in (_ring_classes, tanh))
    assert linear[:4].tolist() == squashed[:4].tolist()               # same layers, fresh, gradient flows
    assert float(squashed[4:].abs().max()) <= 10 and not torch.allclose(linear, squashed)


# ---------------------------------------------------------------- 05: train_gan

def _loop(order="reference", cost="non_saturating", own_rng=False, freeze_d=False, bce=False, per_step=False):
    def train_gan(G, D, data, steps, k=1, batch_size=64, lr=1e-3, seed=0):
        opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
        gen = None if own_rng else torch.Generator().manual_seed(seed)
        history = {"d_loss": [], "g_loss": []}

        def d_update(real, z):
            with torch.no_grad():
                fake = G(z)
            if bce:
                real_logits, fake_logits = D(real), D(fake)
                loss = (nn.functional.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                        + nn.functional.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            else:
                loss = gan.discriminator_loss(D(real), D(fake))
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            return loss.item()

        for _ in range(steps):
            losses = []
            for _ in range(k):
                if order == "noise first":
                    z = torch.randn(batch_size, G.z_dim, generator=gen)
                    real = data[torch.randperm(len(data), generator=gen)[:batch_size]]
                else:
                    real = data[torch.randint(len(data), (batch_size,), generator=gen)]
                    z = torch.randn(batch_size, G.z_dim, generator=gen)
                losses.append(d_update(real, z))
            if freeze_d:
                D.requires_grad_(False)
            logits = D(G(torch.randn(batch_size, G.z_dim, generator=gen)))
            g_loss = (gan.non_saturating_generator_loss(logits) if cost == "non_saturating"
                      else gan.minimax_generator_loss(logits))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            D.requires_grad_(True)
            history["d_loss"].append(float(torch.tensor(losses).mean()))
            history["g_loss"].append(g_loss.item())
        return history
    return train_gan


@pytest.mark.parametrize("answer", [
    _loop(), _loop(bce=True, freeze_d=True),              # the same draws: equal to the reference
    _loop(order="noise first", freeze_d=True),            # another order of draws: inside the bands
], ids=["reference order", "BCE and a frozen D", "noise first, randperm"])
def test_training_loops_written_differently_pass(answer):
    result = diagnose(LOOP, answer)
    assert result.ok, result


@pytest.mark.parametrize("answer, named", [
    (_loop(own_rng=True), "seed ignored"),
])
def test_training_loop_mistakes_that_cannot_be_matched_are_detected(answer, named):
    result = diagnose(LOOP, answer)
    assert not result.ok and result.misconception == named, result


def test_a_saturating_loop_in_another_order_is_caught_by_the_bands():
    result = diagnose(LOOP, _loop(order="noise first", cost="minimax"))
    assert not result.ok and "outside the range that correct answers reach" in result.message, result


@pytest.mark.parametrize("answer, called", [
    (lambda G, D, data, steps, k=1, batch_size=64, lr=1e-3, seed=0:
        gan.train_gan(G, D, data, steps, k=k, batch_size=batch_size, lr=lr, seed=seed), "train_gan"),
    (lambda G, D, data, steps, k=1, batch_size=64, lr=1e-3, seed=0:
        {key: history for key, history in gan.GANTrainer(G, D, lr_g=lr, lr_d=lr, k=k, seed=seed, sample_every=0)
         .train(data, steps, batch_size=batch_size, progress=False).items() if key in ("d_loss", "g_loss")},
     "GANTrainer"),
])
def test_a_training_loop_that_calls_the_library_is_a_shortcut(answer, called):
    result = diagnose(LOOP, answer)
    assert result.kind == "shortcut" and called in result.message, result


def test_a_history_of_the_wrong_form_is_told_what_form():
    def tensors(G, D, data, steps, k=1, batch_size=64, lr=1e-3, seed=0):
        history = _loop()(G, D, data, steps, k=k, batch_size=batch_size, lr=lr, seed=seed)
        return {key: [torch.tensor(v) for v in values] for key, values in history.items()}
    result = diagnose(LOOP, tensors)
    assert not result.ok and "Python floats" in result.message
