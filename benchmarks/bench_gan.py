"""GAN benchmarks: trainer overhead and time to recognisable MNIST digits.

    .venv/bin/python benchmarks/bench_gan.py                 # both parts (minutes)
    .venv/bin/python benchmarks/bench_gan.py --skip-digits   # throughput only (~1 min)

1. Throughput (iterations/s, one iteration = one D step + one G step, batch 64)
   of ``GANTrainer.train`` against two plain PyTorch loops with the same models
   and optimisers: the same algorithm (fresh noise for the G step, as in
   Goodfellow et al.'s Algorithm 1), and the PyTorch DCGAN example's loop (one
   generator forward per iteration, its fakes reused for the G step).
2. Time to recognisable digits: train the zoo recipe's DCGAN and, every
   ``--eval-every`` steps, classify 1,000 samples with ``zoo.load('mnist_cnn')``;
   digits count as recognisable once ``--target`` of them are classified with
   confidence > 0.9. Evaluation time is excluded. Full MNIST via COURSEKIT_DATA,
   else the embedded 4,000 digits.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from coursekit import data, gan, zoo

BATCH = 64


def make_models(seed: int = 0):
    torch.manual_seed(seed)
    return gan.DCGANGenerator(z_dim=64, channels=64), gan.DCGANDiscriminator(32)


def adam(params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def run_trainer(x: torch.Tensor, steps: int) -> float:
    G, D = make_models()
    trainer = gan.GANTrainer(G, D, seed=0, sample_every=0)
    trainer.train(x, 5, BATCH, progress=False)                       # warm-up
    start = time.perf_counter()
    trainer.train(x, steps, BATCH, progress=False)
    return steps / (time.perf_counter() - start)


def run_plain(x: torch.Tensor, steps: int, reuse_fake: bool) -> float:
    """A hand-written loop; ``reuse_fake`` is the PyTorch DCGAN example's variant."""
    G, D = make_models()
    opt_g, opt_d = adam(G.parameters()), adam(D.parameters())
    rng = torch.Generator().manual_seed(0)
    G.train(), D.train()

    def iteration():
        real = x[torch.randint(0, len(x), (BATCH,), generator=rng)]
        fake = G(torch.randn(BATCH, 64, generator=rng))
        d_loss = (F.binary_cross_entropy_with_logits(D(real), torch.ones(BATCH))
                  + F.binary_cross_entropy_with_logits(D(fake.detach()), torch.zeros(BATCH)))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        if not reuse_fake:
            fake = G(torch.randn(BATCH, 64, generator=rng))
        g_loss = F.binary_cross_entropy_with_logits(D(fake), torch.ones(BATCH))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        return d_loss.item(), g_loss.item()

    for _ in range(5):
        iteration()
    start = time.perf_counter()
    for _ in range(steps):
        iteration()
    return steps / (time.perf_counter() - start)


def throughput(x: torch.Tensor, steps: int, rounds: int) -> None:
    runs = {"GANTrainer.train": [], "plain loop, same algorithm": [], "plain loop, PyTorch example": []}
    for _ in range(rounds):  # interleaved, so load changes hit all three alike
        runs["GANTrainer.train"].append(run_trainer(x, steps))
        runs["plain loop, same algorithm"].append(run_plain(x, steps, reuse_fake=False))
        runs["plain loop, PyTorch example"].append(run_plain(x, steps, reuse_fake=True))
    ours = statistics.median(runs["GANTrainer.train"])
    print(f"\nThroughput, batch {BATCH}, {steps} iterations x {rounds} rounds (median), "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'loop':32s} {'it/s':>8s} {'ours / this':>12s}")
    for name, values in runs.items():
        median = statistics.median(values)
        print(f"{name:32s} {median:8.2f} {ours / median:12.2f}")


def time_to_digits(x: torch.Tensor, target: float, eval_every: int, max_steps: int) -> None:
    recipe = zoo.ENTRIES["dcgan_mnist"].recipe
    torch.manual_seed(recipe["seed"])
    G = zoo.ENTRIES["dcgan_mnist"].build()
    torch.manual_seed(recipe["seed"] + 1)
    D = gan.DCGANDiscriminator(recipe["d_channels"])
    trainer = gan.GANTrainer(G, D, lr_g=recipe["lr_g"], lr_d=recipe["lr_d"], k=recipe["k"],
                             label_smoothing=recipe["label_smoothing"], seed=recipe["seed"], sample_every=0)
    classifier = zoo.load("mnist_cnn")
    wall = cpu = 0.0
    reached = None
    print(f"\nTime to recognisable digits ({len(x)} training images, {torch.get_num_threads()} thread(s), "
          f"target: {target:.0%} of 1,000 samples with mnist_cnn confidence > 0.9)")
    print(f"{'steps':>6s} {'train s':>8s} {'CPU s':>8s} {'confident':>10s}")
    while trainer.g_updates < max_steps:
        w, c = time.perf_counter(), time.process_time()
        trainer.train(x, eval_every, recipe["batch_size"], progress=False)
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
        quality = gan.digit_quality(gan.generate(G, 1000, seed=1000), classifier)
        print(f"{trainer.g_updates:6d} {wall:8.1f} {cpu:8.1f} {quality['confident_fraction']:10.3f}", flush=True)
        if quality["confident_fraction"] >= target:
            reached = (trainer.g_updates, wall, cpu)
            break
    if reached:
        print(f"recognisable after {reached[0]} steps: {reached[1]:.0f} s wall, {reached[2]:.0f} s CPU")
    else:
        print(f"target not reached within {max_steps} steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100, help="iterations per throughput run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--max-steps", type=int, default=6000)
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, _ = data.load_mnist("train")
    if not args.skip_throughput:
        throughput(x, args.steps, args.rounds)
    if not args.skip_digits:
        time_to_digits(x, args.target, args.eval_every, args.max_steps)


if __name__ == "__main__":
    main()
