"""FID and Inception Score: coursekit.metrics against pytorch-fid, torch-fidelity, torchmetrics.

Same inputs for everyone: two sets of 5,000 feature vectors of dimension 2,048
(the size of Inception-v3 pool features) for FID, and 5,000 x 1,000 logits for
IS. Times start from the features/logits (the feature network is not timed: it
is the same for all). Each time is the best of ``--repeats`` runs.

    .venv/bin/python benchmarks/bench_metrics.py [--n 5000] [--dim 2048] [--repeats 3]

pytorch-fid, torch-fidelity and torchmetrics are test-only packages; coursekit
never imports them.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import torch

from coursekit import metrics


def best_time(fn, repeats):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def make_features(n, dim, seed):
    """Nonnegative, correlated features with a decaying spectrum (a stand-in for Inception pool features)."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(1.0, 0.05, dim)
    mixing = torch.randn(dim, dim, generator=g) / dim ** 0.5 * scales
    return torch.relu(torch.randn(n, dim, generator=g) @ mixing + 0.1 * torch.randn(dim, generator=g))


class Identity(torch.nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features

    def forward(self, x):
        return x


def bench_fid(a, b, repeats):
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torchmetrics.image.fid import FrechetInceptionDistance

    def pytorch_fid():
        A, B = a.numpy(), b.numpy()  # float32 features, as pytorch-fid gets them from the network
        return calculate_frechet_distance(A.mean(0), np.cov(A, rowvar=False), B.mean(0), np.cov(B, rowvar=False))

    def torch_fidelity():
        return fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b),
                                        verbose=False)["frechet_inception_distance"]

    def torchmetrics():
        metric = FrechetInceptionDistance(feature=Identity(a.shape[1]))
        for chunk in a.split(500):
            metric.update(chunk, real=True)
        for chunk in b.split(500):
            metric.update(chunk, real=False)
        return float(metric.compute())

    def coursekit_streamed():
        stats = [metrics.FeatureStatistics() for _ in range(2)]
        for s, x in zip(stats, (a, b)):
            for chunk in x.split(500):
                s.update(chunk)
        return stats[0].frechet_distance(stats[1])

    rows = {}
    rows["coursekit frechet_distance (eigh)"] = best_time(lambda: metrics.frechet_distance(a, b), repeats)
    rows["coursekit FeatureStatistics, streamed in 500s"] = best_time(coursekit_streamed, repeats)
    rows["coursekit frechet_distance (method='sqrtm')"] = best_time(
        lambda: metrics.frechet_distance(a, b, method="sqrtm"), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows["pytorch-fid (scipy sqrtm)"] = best_time(pytorch_fid, 1)
        rows["torch-fidelity (numpy eigvals)"] = best_time(torch_fidelity, max(1, repeats // 2))
        rows["torchmetrics (torch eigvals, streamed in 500s)"] = best_time(torchmetrics, max(1, repeats // 2))
    return rows


def bench_is(logits, repeats):
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torchmetrics.image.inception import InceptionScore

    def torchmetrics():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metric = InceptionScore(feature=torch.nn.Identity(), splits=10)
        metric.update(logits)
        mean, std = metric.compute()
        return float(mean)

    return {
        "coursekit inception_score": best_time(lambda: metrics.inception_score(logits)[0], repeats),
        "torch-fidelity isc_features_to_metric": best_time(
            lambda: isc_features_to_metric(logits)["inception_score_mean"], repeats),
        "torchmetrics InceptionScore (own random split)": best_time(torchmetrics, repeats),
    }


def table(title, rows, reference_key):
    base_time, base_value = rows[reference_key]
    lines = [f"| {title} | time (s) | time / coursekit | value | rel. diff. to coursekit |",
             "|---|---:|---:|---:|---:|"]
    for name, (seconds, value) in rows.items():
        rel = abs(value - base_value) / abs(base_value)
        lines.append(f"| {name} | {seconds:.3f} | {seconds / base_time:.2f} | {value:.6f} | {rel:.1e} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    a, b = make_features(args.n, args.dim, 0), make_features(args.n, args.dim, 1)
    print(f"\nFID: two sets of {args.n} x {args.dim} float32 features\n")
    print(table("FID", bench_fid(a, b, args.repeats), "coursekit frechet_distance (eigh)"))

    logits = 4 * torch.randn(args.n, args.classes, generator=torch.Generator().manual_seed(2))
    print(f"\nIS: {args.n} x {args.classes} logits, 10 splits\n")
    print(table("Inception Score", bench_is(logits, args.repeats), "coursekit inception_score"))
    print("\n(torchmetrics draws its own random split with torch.randperm, so its IS differs slightly.)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
