#!/usr/bin/env python3
"""Search for the zoo's GAN recipes, and time "steps to recognisable digits".

Runs every variant below (one process each, in parallel: on a GPU they share the card),
evaluating the generator every ``--every`` steps with ``coursekit.recipes.gan.evaluate_digit_generator``
(float16-rounded weights, 2,000 samples, mnist_cnn). Writes ``search.json`` (every curve) and,
per variant, the float16 generator weights at each checkpoint into ``--out``. Then, alone on the
machine, times the winning recipe with ``GANTrainer`` against the PyTorch DCGAN example's loop
(same models, same data) to the first checkpoint with >= 80% confident samples.

    COURSEKIT_DATA=../shared/data python scripts/gan_recipe_search.py --out build/gan_search
    python scripts/gan_recipe_search.py --variant c128 --steps 200 --every 100 --out /tmp/x  # smoke test

Results are recorded in docs/benchmarks.md ("GAN: the dcgan_mnist recipe").
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BASE = {"z_dim": 64, "channels": 64, "refine": False, "d_channels": 32, "d_dropout": 0.0,
        "steps": 10000, "batch_size": 128, "lr_g": 2e-4, "lr_d": 2e-4, "k": 1,
        "label_smoothing": 1.0, "seed": 0, "storage_dtype": "float16"}
VARIANTS = {
    "old_recipe": {"steps": 3000, "batch_size": 64},                       # what shipped before
    "c64_long": {},                                                        # same models, 21 epochs
    "c128": {"channels": 128, "d_channels": 64},
    "c128_refine": {"channels": 128, "refine": True, "d_channels": 64},
    "c128_dropout": {"channels": 128, "d_channels": 64, "d_dropout": 0.3},
    "c128_refine_dropout": {"channels": 128, "refine": True, "d_channels": 64, "d_dropout": 0.3},
    "c256": {"channels": 256, "d_channels": 64},
    "c128_refine_smooth": {"channels": 128, "refine": True, "d_channels": 64, "label_smoothing": 0.9},
    "cond_c128_refine": {"channels": 128, "refine": True, "d_channels": 64, "conditional": True},
    "cond_c128_refine_dropout": {"channels": 128, "refine": True, "d_channels": 64, "d_dropout": 0.3,
                                 "conditional": True},
}
# Round 2 (session of 2026-11-28 afternoon): from the shipped refine recipe, longer runs with G's
# moving averages tracked (TRACKED decays, evaluated beside the raw weights at every checkpoint),
# larger batches (a launch-bound GPU step costs about the same at 512 as at 128) and a stronger D.
SHIPPED = {"channels": 128, "refine": True, "d_channels": 64}
TRACKED = (0.999, 0.9999)
VARIANTS.update({
    "r2_b128": {**SHIPPED, "steps": 30000},
    "r2_b512": {**SHIPPED, "steps": 30000, "batch_size": 512},
    "r2_b256_ttur": {**SHIPPED, "steps": 30000, "batch_size": 256, "lr_g": 1e-4, "lr_d": 4e-4},
    "r2_b512_d128": {**SHIPPED, "steps": 30000, "batch_size": 512, "d_channels": 128},
    "r2_b512_c256": {**SHIPPED, "steps": 30000, "batch_size": 512, "channels": 256},
})


def _rank(figures: dict) -> tuple:
    """Fewest misses of the quality bar, then (conditional) best label agreement, then lowest FID."""
    return (len(figures["misses"]), -figures.get("label_agreement", 0.0), figures["fid_mnist"])


def select(out: Path, keep: int = 3) -> dict:
    """The best checkpoint of each variant, then the ``keep`` best unconditional and 2 conditional
    variants: their weights go to out/selected.pt (small enough to copy back from a GPU machine)."""
    import torch

    best = {}
    for path in sorted(out.glob("*.json")):
        if path.name in ("time_to_recognisable.json", "selected.json"):
            continue
        record = json.loads(path.read_text())
        if record.get("curve"):
            best[path.stem] = min(record["curve"], key=_rank)
    plain = sorted((n for n in best if not VARIANTS[n].get("conditional")), key=lambda n: _rank(best[n]))
    cond = sorted((n for n in best if VARIANTS[n].get("conditional")), key=lambda n: _rank(best[n]))
    chosen = plain[:keep] + cond[:2]
    weights = {}
    for name in chosen:
        key = f"{best[name].get('track', 'raw')}@{best[name]['step']}"
        weights[f"{name}:{key}"] = torch.load(out / f"{name}.pt")[key]
    torch.save(weights, out / "selected.pt")
    summary = {name: {k: best[name].get(k) for k in ("step", "track", "confident_fraction", "fid_mnist", "fid_mnist_real",
                                                  "class_shares", "misses") + (("label_agreement",)
                                                  if "label_agreement" in best[name] else ())}
               for name in best}
    (out / "selected.json").write_text(json.dumps({"chosen": chosen, "best": summary}, indent=1))
    print(json.dumps({"chosen": chosen}, indent=1), flush=True)
    return summary


def recipe_of(name: str, steps: int | None) -> dict:
    recipe = {**BASE, **VARIANTS[name]}
    if steps:
        recipe["steps"] = steps
    return recipe


def build_models(recipe: dict):
    import torch
    from coursekit.gan.models import ConditionalGenerator, DCGANGenerator
    from coursekit.recipes.gan import conditional_discriminator, dcgan_discriminator

    torch.manual_seed(recipe["seed"])
    if recipe.get("conditional"):
        generator = ConditionalGenerator(recipe["z_dim"], 10, recipe["channels"], refine=recipe["refine"])
    else:
        generator = DCGANGenerator(recipe["z_dim"], recipe["channels"], refine=recipe["refine"])
    torch.manual_seed(recipe["seed"] + 1)
    make_d = conditional_discriminator if recipe.get("conditional") else dcgan_discriminator
    return generator, make_d(recipe)


def run_variant(name: str, steps: int | None, every: int, out: Path) -> None:
    """Train one variant, evaluating at each checkpoint; write out/<name>.json and weights."""
    import copy
    import platform

    import torch
    from coursekit import data, runtime
    from coursekit.recipes.gan import evaluate_digit_generator, meets_quality_bar, train_gan_recipe
    from coursekit.zoo import round_to_float16

    torch.set_num_threads(1)
    torch.backends.cudnn.benchmark = True
    recipe = recipe_of(name, steps)
    generator, discriminator = build_models(recipe)
    real_test = data.load_mnist("test")[0]
    real_train = data.load_mnist("train")[0]
    curve, weights = [], {}

    def on_checkpoint(step: int, seconds: float, averages: dict) -> None:
        for track, model in [("raw", generator)] + [(f"ema{d}", m) for d, m in averages.items()]:
            shipped = copy.deepcopy(model).eval()
            round_to_float16(shipped)
            figures = evaluate_digit_generator(shipped, seed=recipe["seed"] + 1000,
                                               real_test=real_test, real_train=real_train)
            figures.update(step=step, track=track, train_seconds=round(seconds, 1),
                           misses=meets_quality_bar(figures))
            curve.append(figures)
            # Only the best checkpoint of each track is kept: what select() can choose.
            best_so_far = min((c for c in curve if c["track"] == track), key=_rank)
            if best_so_far is figures:
                for key in [k for k in weights if k.startswith(f"{track}@")]:
                    del weights[key]
                weights[f"{track}@{step}"] = {k: v.detach().half().cpu() if v.is_floating_point() else v.cpu()
                                              for k, v in shipped.state_dict().items()}
            print(f"[{name}] step {step} {track} {seconds:.0f}s conf {figures['confident_fraction']:.3f} "
                  f"fid {figures['fid_mnist']:.1f}/{figures['fid_mnist_real']:.1f} "
                  f"shares {min(figures['class_shares']):.3f}-{max(figures['class_shares']):.3f}", flush=True)
        # Written aside, then renamed: a variant stopped at the deadline leaves whole files.
        torch.save(weights, out / f"{name}.pt.part")
        os.replace(out / f"{name}.pt.part", out / f"{name}.pt")
        (out / f"{name}.json.part").write_text(json.dumps({"recipe": recipe, "curve": curve,
                                                           "device": runtime.describe_device(),
                                                           "torch": torch.__version__,
                                                           "python": platform.python_version()}, indent=1))
        os.replace(out / f"{name}.json.part", out / f"{name}.json")

    train_gan_recipe(generator, discriminator, recipe, conditional=bool(recipe.get("conditional")),
                     checkpoint_every=every, on_checkpoint=on_checkpoint, progress=False,
                     track_decays=TRACKED if name.startswith("r2_") else ())


def pytorch_example_loop(recipe: dict, steps: int, every: int, on_checkpoint) -> None:
    """The training loop of the PyTorch DCGAN example (examples/dcgan/main.py), on our models.

    D: BCE on real (label 1) then on G(z).detach() (label 0), one optimiser step; G: BCE of
    D(G(z)) against label 1 on the *same* fakes. (BCEWithLogits: our D returns logits.)
    """
    import torch
    from torch import nn

    from coursekit import data, runtime

    device = runtime.device()
    generator, discriminator = build_models(recipe)
    generator.to(device).train()
    discriminator.to(device).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=recipe["lr_g"], betas=(0.5, 0.999),
                             fused=device.type == "cuda")
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=recipe["lr_d"], betas=(0.5, 0.999),
                             fused=device.type == "cuda")
    criterion = nn.BCEWithLogitsLoss()
    x = data.load_mnist("train")[0].to(device)
    batch = recipe["batch_size"]
    seconds, step = 0.0, 0
    torch.manual_seed(recipe["seed"])
    while step < steps:
        start = time.perf_counter()
        for _ in range(every):
            idx = torch.randint(len(x), (batch,), device=device)
            real = x[idx]
            ones = torch.ones(batch, device=device)
            zeros = torch.zeros(batch, device=device)
            discriminator.zero_grad()
            err_real = criterion(discriminator(real), ones)
            err_real.backward()
            fake = generator(torch.randn(batch, recipe["z_dim"], device=device))
            err_fake = criterion(discriminator(fake.detach()), zeros)
            err_fake.backward()
            opt_d.step()
            generator.zero_grad()
            err_g = criterion(discriminator(fake), ones)
            err_g.backward()
            opt_g.step()
            step += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start
        on_checkpoint(step, seconds, generator)
        generator.train()


def time_to_recognisable(name: str, steps: int, every: int, out: Path) -> dict:
    """GANTrainer vs the PyTorch example loop: training seconds to >= 80% confident samples."""
    import copy

    import torch
    from coursekit import data, runtime
    from coursekit.recipes.gan import evaluate_digit_generator, train_gan_recipe
    from coursekit.zoo import round_to_float16

    recipe = recipe_of(name, steps)
    real_test, real_train = data.load_mnist("test")[0], data.load_mnist("train")[0]
    result = {"recipe": name, "device": runtime.describe_device(), "threads": torch.get_num_threads()}
    for loop in ("GANTrainer", "pytorch_example"):
        curve = []

        def record(step, seconds, generator):
            shipped = copy.deepcopy(generator).eval()
            round_to_float16(shipped)
            figures = evaluate_digit_generator(shipped, n=1000, seed=1000, real_test=real_test,
                                               real_train=real_train)
            curve.append({"step": step, "seconds": round(seconds, 1),
                          "confident_fraction": figures["confident_fraction"], "fid": figures["fid_mnist"]})
            print(f"[{loop}] {step} {seconds:.1f}s {figures['confident_fraction']:.3f}", flush=True)

        if loop == "GANTrainer":
            generator, discriminator = build_models(recipe)
            train_gan_recipe(generator, discriminator, recipe, checkpoint_every=every, progress=False,
                             on_checkpoint=lambda s, t, _: record(s, t, generator))
        else:
            pytorch_example_loop(recipe, steps, every, record)
        first = next((c for c in curve if c["confident_fraction"] >= 0.8), None)
        result[loop] = {"curve": curve, "seconds_to_80pct": first and first["seconds"],
                        "steps_to_80pct": first and first["step"]}
    (out / "time_to_recognisable.json").write_text(json.dumps(result, indent=1))
    return result


def install(selected: Path, key: str, name: str, *, curves: Path, trained_on: str) -> dict:
    """Ship ``selected[key]`` (weights from a search's selected.pt) as the zoo's ``name``.

    The zoo entry's recipe must already describe the run (so ``coursekit zoo build name``
    repeats it); the weights are saved in float16, evaluated on this machine exactly as
    ``coursekit zoo build`` would, and recorded in the manifest with the run's train seconds.
    """
    import platform

    import torch
    from coursekit import __version__, zoo
    from coursekit.recipes.build import record_in_manifest
    from coursekit.recipes.gan import QUALITY_BAR, evaluate_digit_generator, meets_quality_bar

    entry = zoo.ENTRIES[name]
    model = entry.build()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in torch.load(selected)[key].items()})
    model.eval()
    path = zoo.weights_dir() / f"{name}.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    track, step = key.split(":")[-1].split("@")
    run = json.loads(curves.read_text())
    point = next(c for c in run["curve"] if c["track"] == track and c["step"] == int(step))
    # The training machine's versions, as the search recorded them (runs before it did: not recorded).
    trained_with = {k: run.get(k, "not recorded") for k in ("python", "torch")}
    quality = evaluate_digit_generator(model, n=2000, seed=entry.recipe["seed"] + 1000)
    misses = meets_quality_bar(quality)
    record = {"description": entry.description, "sha256": zoo.sha256_of(path), "bytes": path.stat().st_size,
              "parameters": sum(p.numel() for p in model.parameters()), "recipe": entry.recipe,
              "data": "MNIST training set (60,000 images)", "train_seconds": point["train_seconds"],
              "trained_on": trained_on, **quality, "quality_bar": QUALITY_BAR,
              "meets_quality_bar": not misses, "misses": misses,
              "evaluated_on": "2,000 samples (noise seed = recipe seed + 1000) classified by mnist_cnn "
                              "(evaluated on the CPU)",
              "built_with": {"coursekit": __version__,
                             **{k: f"{trained_with[k]} (training), {here} (evaluation)"
                                for k, here in (("python", platform.python_version()), ("torch", torch.__version__))}}}
    record_in_manifest(name, record)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="run this one variant here")
    parser.add_argument("--only", nargs="*", help="variants to search (default: all)")
    parser.add_argument("--steps", type=int, help="override every recipe's steps")
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--deadline", type=float, default=0, help="seconds after which variants are stopped")
    parser.add_argument("--bench", help="after the search, time this variant (GANTrainer vs the example "
                                        "loop); 'auto': the best unconditional one")
    parser.add_argument("--bench-steps", type=int, default=4000)
    parser.add_argument("--bench-every", type=int, default=500)
    parser.add_argument("--install", nargs=2, metavar=("KEY", "NAME"),
                        help="ship KEY of OUT/selected.pt as the zoo's NAME (curves from OUT/<variant>.json)")
    parser.add_argument("--trained-on", default="cuda (NVIDIA H200), fused Adam, alone on the GPU")
    args = parser.parse_args()
    if args.install:
        key, name = args.install
        variant = key.split(":")[0]
        record = install(args.out / "selected.pt", key, name, curves=args.out / f"{variant}.json",
                         trained_on=args.trained_on)
        print(json.dumps({k: record[k] for k in ("confident_fraction", "fid_mnist", "fid_mnist_real",
                                                 "class_shares", "misses")}, indent=1))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.variant:
        run_variant(args.variant, args.steps, args.every, args.out)
        return
    names = args.only or list(VARIANTS)
    start = time.time()
    processes = {}
    for name in names:
        command = [sys.executable, __file__, "--variant", name, "--out", str(args.out), "--every", str(args.every)]
        if args.steps:
            command += ["--steps", str(args.steps)]
        log = open(args.out / f"{name}.log", "w")
        processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    while any(p.poll() is None for p in processes.values()):
        time.sleep(2)
        if args.deadline and time.time() - start > args.deadline:
            for name, p in processes.items():
                if p.poll() is None:
                    print(f"deadline: stopping {name}", flush=True)
                    p.kill()
            break
    for name, p in processes.items():
        print(f"{name}: exit {p.wait()}", flush=True)
    print(f"search took {time.time() - start:.0f} s", flush=True)
    chosen = select(args.out)
    if args.bench:
        bench = args.bench
        if bench == "auto":  # the best unconditional variant of this search
            bench = min((n for n in chosen if not VARIANTS[n].get("conditional")), key=lambda n: _rank(chosen[n]))
        time_to_recognisable(bench, args.bench_steps, args.bench_every, args.out)


if __name__ == "__main__":
    main()
