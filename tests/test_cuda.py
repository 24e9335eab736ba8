"""The CUDA path: the same attacks, metrics and GAN steps on a GPU as on the CPU.

Skips (with its reason) on machines without CUDA, i.e. in CI; run on a GPU machine with
``python -m pytest tests/test_cuda.py``.
"""
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@pytest.fixture(scope="module")
def digits():
    from coursekit import data

    x, y = data.embedded_mnist("test", limit=1000)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:200]
    return x[idx], y[idx]


def test_runtime_picks_cuda_and_names_it(monkeypatch):
    from coursekit import runtime

    monkeypatch.delenv("COURSEKIT_DEVICE", raising=False)
    monkeypatch.delenv("COURSEKIT_FAST", raising=False)
    monkeypatch.delenv("COURSEKIT_FULL", raising=False)
    assert runtime.device().type == "cuda"
    assert runtime.describe_device().startswith("cuda (")
    assert runtime.mode() == "large"


def test_attacks_agree_between_cpu_and_cuda(digits):
    from coursekit import attacks, zoo

    x, y = digits
    cpu_model, gpu_model = zoo.load("mnist_cnn"), zoo.load("mnist_cnn", device="cuda")
    fgsm_cpu = attacks.fgsm(cpu_model, x, y, 0.1)
    fgsm_gpu = attacks.fgsm(gpu_model, x.cuda(), y.cuda(), 0.1)
    assert fgsm_gpu.is_cuda
    # sign() of a gradient can flip where it is ~0; almost every pixel must agree exactly.
    assert (fgsm_gpu.cpu() - fgsm_cpu).abs().gt(1e-4).float().mean() < 0.01
    pgd_gpu = attacks.pgd(gpu_model, x.cuda(), y.cuda(), 0.3, 0.01, 20, seed=0)
    pgd_cpu = attacks.pgd(cpu_model, x, y, 0.3, 0.01, 20, seed=0)
    assert (pgd_gpu.cpu() - x).abs().max() <= 0.3 + 1e-6
    acc = lambda m, a, t: (m(a).argmax(1) == t).float().mean().item()  # noqa: E731
    assert abs(acc(gpu_model, pgd_gpu, y.cuda()) - acc(cpu_model, pgd_cpu, y)) <= 0.03


def test_fid_and_inception_score_agree_between_cpu_and_cuda(digits):
    from coursekit import metrics

    x, _ = digits
    noisy = metrics.corrupt(x, "noise", 0.2, seed=0)
    fid_cpu = metrics.fid(x, noisy, device="cpu", progress=False)
    fid_gpu = metrics.fid(x, noisy, device="cuda", progress=False)
    assert fid_gpu == pytest.approx(fid_cpu, rel=1e-3)
    is_cpu = metrics.inception_score_of_images(x, device="cpu", progress=False)
    is_gpu = metrics.inception_score_of_images(x, device="cuda", progress=False)
    assert is_gpu[0] == pytest.approx(is_cpu[0], rel=1e-3)


def test_gan_trainer_runs_on_cuda_and_learns_the_ring():
    from coursekit import data, gan

    torch.manual_seed(0)
    G, D = gan.MLPGenerator(z_dim=8).cuda(), gan.MLPDiscriminator().cuda()
    real = data.toy_2d("ring", 4000, seed=0)
    trainer = gan.GANTrainer(G, D, lr_g=1e-3, lr_d=1e-3, seed=0, sample_every=0)
    trainer.train(real.cuda(), 600, 128, progress=False)
    samples = gan.generate(G, 1000, seed=1)
    assert not samples.is_cuda  # generate returns CPU samples
    before = gan.energy_distance(torch.randn(1000, 2) * 0.02, real[:1000])
    assert gan.energy_distance(samples, real[:1000]) < 0.5 * before


def test_zoo_generators_sample_on_cuda():
    from coursekit import gan, zoo

    G = zoo.load("dcgan_mnist", device="cuda")
    images = gan.generate(G, 16, seed=0)
    assert images.shape == (16, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert torch.allclose(images, gan.generate(zoo.load("dcgan_mnist"), 16, seed=0), atol=1e-4)
