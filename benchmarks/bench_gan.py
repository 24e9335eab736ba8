"""GAN benchmarks: trainer overhead and time to recognisable MNIST digits.

    .venv/bin/python benchmarks/bench_gan.py                 # both parts (minutes)
    .venv/bin/python benchmarks/bench_gan.py --skip-digits   # throughput only (~1 min)

1. Throughput (iterations/s, one iteration = one D step + one G step) of
   ``GANTrainer.train`` against two plain PyTorch loops with the same models
   (the refine recipe that was timed on the H200 with both loops: G with 128
   channels and the refine layer, D with 64, batch 128) and optimisers: the same algorithm (fresh noise for the
   G step, as in Goodfellow et al.'s Algorithm 1), and the PyTorch DCGAN
   example's loop (one generator forward per iteration, its fakes reused for
   the G step). Rounds are interleaved, so load changes hit all three alike.
2. Time to recognisable digits, estimated: the steps each loop needed to reach
   ``--target`` confident samples on the GPU run of the same recipe and seed
   (benchmarks/results/gan_recipe_search_h200.json; the number of steps does
   not depend on the hardware) times the seconds per step measured here.
3. ``--train``: train to ``--target`` here and evaluate every ``--eval-every``
   steps (1,000 samples classified by ``zoo.load('mnist_cnn')``; evaluation
   time excluded). Slow on a CPU (~0.3-0.5 s a step on 2 cores).
4. The shipped ``dcgan_mnist`` recipe (256 channels, batch 512): ``GANTrainer``'s
   seconds per step here, times the steps its H200 run needed (round 2 of the
   recipe search, evaluated every 2,500 steps).

Writes the figures to ``--out`` (JSON) when given.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from coursekit import data, gan, zoo

RESULTS = Path(__file__).resolve().parent / "results"
GPU_CURVES = RESULTS / "gan_recipe_search_h200.json"
SHIPPED_CURVE = RESULTS / "gan_recipe_search_h200_round2.json"
SHIPPED = zoo.ENTRIES["dcgan_mnist"].recipe


def _timed_recipe() -> dict:
    """The recipe whose time to recognisable digits was timed on the H200 with both loops, as that
    search recorded it (round 1's refine recipe)."""
    search = json.loads(GPU_CURVES.read_text())
    return search["variants"][search["time_to_recognisable"]["recipe"]]["recipe"]


RECIPE = _timed_recipe()
BATCH = RECIPE["batch_size"]
Z_DIM = RECIPE["z_dim"]


def make_models(seed: int = 0, recipe: dict = RECIPE):
    torch.manual_seed(seed)
    return (gan.DCGANGenerator(z_dim=Z_DIM, channels=recipe["channels"], refine=recipe["refine"]),
            gan.DCGANDiscriminator(recipe["d_channels"]))


def adam(params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def run_trainer(x: torch.Tensor, steps: int, recipe: dict = RECIPE) -> float:
    G, D = make_models(recipe=recipe)
    trainer = gan.GANTrainer(G, D, seed=0, sample_every=0)
    trainer.train(x, 2, recipe["batch_size"], progress=False)         # warm-up
    start = time.perf_counter()
    trainer.train(x, steps, recipe["batch_size"], progress=False)
    return steps / (time.perf_counter() - start)


def run_plain(x: torch.Tensor, steps: int, reuse_fake: bool) -> float:
    """A hand-written loop; ``reuse_fake`` is the PyTorch DCGAN example's variant."""
    G, D = make_models()
    opt_g, opt_d = adam(G.parameters()), adam(D.parameters())
    rng = torch.Generator().manual_seed(0)
    G.train(), D.train()

    def iteration():
        real = x[torch.randint(0, len(x), (BATCH,), generator=rng)]
        fake = G(torch.randn(BATCH, Z_DIM, generator=rng))
        d_loss = (F.binary_cross_entropy_with_logits(D(real), torch.ones(BATCH))
                  + F.binary_cross_entropy_with_logits(D(fake.detach()), torch.zeros(BATCH)))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        if not reuse_fake:
            fake = G(torch.randn(BATCH, Z_DIM, generator=rng))
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


LOOPS = ("GANTrainer.train", "plain loop, same algorithm", "plain loop, PyTorch example")


def throughput(x: torch.Tensor, steps: int, rounds: int) -> dict:
    """Median iterations/s of each loop over ``rounds`` interleaved rounds."""
    runs = {name: [] for name in LOOPS}
    for _ in range(rounds):  # interleaved, so load changes hit all three alike
        runs[LOOPS[0]].append(run_trainer(x, steps))
        runs[LOOPS[1]].append(run_plain(x, steps, reuse_fake=False))
        runs[LOOPS[2]].append(run_plain(x, steps, reuse_fake=True))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    ours = medians[LOOPS[0]]
    print(f"\nThroughput, the timed refine recipe, batch {BATCH}, {steps} iterations x {rounds} rounds (median), "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'loop':32s} {'it/s':>8s} {'s/it':>8s} {'ours / this':>12s}")
    for name, median in medians.items():
        print(f"{name:32s} {median:8.2f} {1 / median:8.3f} {ours / median:12.2f}")
    return {name: {"iterations_per_second": round(m, 3), "rounds": [round(v, 3) for v in runs[name]]}
            for name, m in medians.items()}


def steps_to_target(curve: list[dict], target: float) -> int | None:
    return next((point["step"] for point in curve if point["confident_fraction"] >= target), None)


def estimated_time_to_digits(speeds: dict, target: float) -> dict:
    """Steps to ``target`` on the GPU run (same recipe and seed) x seconds per step measured here."""
    gpu = json.loads(GPU_CURVES.read_text())["time_to_recognisable"]
    out = {}
    print(f"\nTime to recognisable digits (>= {target:.0%} of 1,000 samples confident > 0.9), estimated: "
          f"steps from the GPU run x seconds per step here")
    for loop, key in (("GANTrainer.train", "GANTrainer"), ("plain loop, PyTorch example", "pytorch_example")):
        steps = steps_to_target(gpu[key]["curve"], target)
        per_step = 1 / speeds[loop]["iterations_per_second"]
        seconds = steps * per_step if steps else None
        out[loop] = {"steps_on_gpu_run": steps, "seconds_per_step_here": round(per_step, 4),
                     "estimated_seconds_here": seconds and round(seconds, 1),
                     "gpu_seconds": next((p["seconds"] for p in gpu[key]["curve"] if p["step"] == steps), None)}
        print(f"{loop:32s} {steps or '-':>6} steps x {per_step:.3f} s = "
              f"{'%.0f s' % seconds if seconds else 'not reached in the recorded curve'}")
    return out


def shipped_recipe_time(x: torch.Tensor, steps: int, target: float) -> dict:
    """The shipped recipe: GANTrainer's seconds per step here x the steps of its H200 run to ``target``."""
    per_step = 1 / run_trainer(x, steps, recipe=SHIPPED)
    curve = [c for c in json.loads(SHIPPED_CURVE.read_text())["solo"]["variants"]["r2_b512_c256"]["curve"]
             if c["track"] == "raw"]
    needed = steps_to_target(curve, target)
    shipped_steps = SHIPPED["steps"]
    out = {"seconds_per_step_here": round(per_step, 3), "steps_to_target_on_gpu_run": needed,
           "gpu_eval_every": curve[0]["step"], "estimated_seconds_to_target_here": needed and round(needed * per_step),
           "estimated_seconds_for_the_whole_recipe_here": round(shipped_steps * per_step)}
    print(f"\nShipped recipe (batch {SHIPPED['batch_size']}, {SHIPPED['channels']} channels): {per_step:.2f} s/step here; "
          f"{needed} steps to >= {target:.0%} on the GPU run (evaluated every {curve[0]['step']}) -> about "
          f"{out['estimated_seconds_to_target_here']} s; the whole recipe ({shipped_steps:,} steps): "
          f"about {out['estimated_seconds_for_the_whole_recipe_here'] / 3600:.1f} h")
    return out


def time_to_digits(x: torch.Tensor, target: float, eval_every: int, max_steps: int) -> dict:
    """Train the zoo recipe here until ``target`` of 1,000 samples are confident (evaluation excluded)."""
    G, D = make_models(RECIPE["seed"])
    trainer = gan.GANTrainer(G, D, lr_g=RECIPE["lr_g"], lr_d=RECIPE["lr_d"], k=RECIPE["k"],
                             label_smoothing=RECIPE["label_smoothing"], seed=RECIPE["seed"], sample_every=0)
    classifier = zoo.load("mnist_cnn")
    wall = cpu = 0.0
    curve = []
    print(f"\nTime to recognisable digits ({len(x)} training images, {torch.get_num_threads()} thread(s), "
          f"target: {target:.0%} of 1,000 samples with mnist_cnn confidence > 0.9)")
    print(f"{'steps':>6s} {'train s':>8s} {'CPU s':>8s} {'confident':>10s}")
    while trainer.g_updates < max_steps:
        w, c = time.perf_counter(), time.process_time()
        trainer.train(x, eval_every, BATCH, progress=False)
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
        quality = gan.digit_quality(gan.generate(G, 1000, seed=1000), classifier)
        curve.append({"step": trainer.g_updates, "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
                      "confident_fraction": quality["confident_fraction"]})
        print(f"{trainer.g_updates:6d} {wall:8.1f} {cpu:8.1f} {quality['confident_fraction']:10.3f}", flush=True)
        if quality["confident_fraction"] >= target:
            break
    return {"curve": curve, "steps_to_target": steps_to_target(curve, target)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="iterations per throughput run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--train", action="store_true", help="also train to the target here (slow on a CPU)")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--max-steps", type=int, default=6000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, _ = data.load_mnist("train")
    result = {"threads": args.threads, "training_images": len(x), "recipe": RECIPE,
              "throughput": throughput(x, args.steps, args.rounds)}
    result["time_to_recognisable_estimated"] = estimated_time_to_digits(result["throughput"], args.target)
    result["shipped_recipe"] = shipped_recipe_time(x, max(2, args.steps // 4), args.target)
    if args.train:
        result["time_to_recognisable_measured"] = time_to_digits(x, args.target, args.eval_every, args.max_steps)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
