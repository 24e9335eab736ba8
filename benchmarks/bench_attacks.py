"""FGSM and PGD-40: coursekit.attacks against torchattacks and ART (Adversarial Robustness Toolbox).

Same model (``zoo.load('mnist_cnn')``), same 1,000 MNIST test images, same
budgets for everyone: FGSM at eps 0.3; PGD L-inf eps 0.3, step 0.01, 40 steps,
no random start (so the results can be compared image for image). The "floor"
is 40 bare forward + backward passes with respect to the input: no PGD loop can
beat it. Runs are interleaved (ours, torchattacks, ART, floor, ours, ...) so a
busy machine slows everyone alike; each time is the best of ``--repeats``.

    .venv/bin/python benchmarks/bench_attacks.py [--n 1000] [--repeats 5] [--threads N]

torchattacks and ART (``adversarial-robustness-toolbox``) are test-only
packages; coursekit never imports them.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from coursekit import attacks, data, zoo

EPS, ALPHA, STEPS = 0.3, 0.01, 40


def make_contenders(model, x, y, steps):
    import torchattacks
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(),
                                   input_shape=tuple(x.shape[1:]), nb_classes=10,
                                   clip_values=(0.0, 1.0), device_type="cpu")
    x_np, y_np = x.numpy(), y.numpy()
    art_pgd = ProjectedGradientDescentPyTorch(classifier, norm=np.inf, eps=EPS, eps_step=ALPHA,
                                              max_iter=steps, num_random_init=0,
                                              batch_size=len(x), verbose=False)
    art_fgsm = FastGradientMethod(classifier, norm=np.inf, eps=EPS, batch_size=len(x))
    ta_pgd = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=steps, random_start=False)
    ta_fgsm = torchattacks.FGSM(model, eps=EPS)

    def floor():
        for _ in range(steps):
            xx = x.detach().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xx), y), xx)
        return x

    pgd = {
        "coursekit": lambda: attacks.pgd(model, x, y, EPS, ALPHA, steps, random_start=False),
        "torchattacks": lambda: ta_pgd(x, y),
        "ART": lambda: torch.from_numpy(art_pgd.generate(x_np, y_np)),
        f"floor ({steps} fwd+bwd)": floor,
    }
    fgsm = {
        "coursekit": lambda: attacks.fgsm(model, x, y, EPS),
        "torchattacks": lambda: ta_fgsm(x, y),
        "ART": lambda: torch.from_numpy(art_fgsm.generate(x_np, y_np)),
    }
    return {f"PGD-{steps}": pgd, "FGSM": fgsm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    model = zoo.load("mnist_cnn")
    x, y = data.load_mnist("test")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:args.n]
    x, y = x[idx].contiguous(), y[idx].contiguous()
    contenders = make_contenders(model, x, y, args.steps)

    print(f"{args.n} MNIST test images, mnist_cnn, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; best (median) of {args.repeats}")
    for attack, runs in contenders.items():
        times = {name: [] for name in runs}
        outputs = {}
        for name, run in runs.items():          # warm-up, and keep each result
            outputs[name] = run()
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        ours = min(times["coursekit"])
        print(f"\n{attack}: eps={EPS}" + (f", alpha={ALPHA}" if attack != "FGSM" else ""))
        print(f"  {'':24s} {'best s':>8s} {'median s':>9s} {'/ ours':>7s} {'success':>8s} {'max |diff| vs ours':>19s}")
        for name, ts in times.items():
            line = f"  {name:24s} {min(ts):8.3f} {statistics.median(ts):9.3f} {min(ts) / ours:7.2f}"
            if not name.startswith("floor"):
                rate = attacks.attack_success_rate(model, outputs[name], y)
                diff = (outputs[name] - outputs["coursekit"]).abs().max().item()
                line += f" {rate:8.3f} {diff:19.2e}"
            print(line)


if __name__ == "__main__":
    main()
