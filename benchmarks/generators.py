"""Step cost of the noise-to-image methods (DCGAN, cgan) against CycleGAN, steps interleaved.

    GANFORGE_DATA_ROOT=../shared/data python benchmarks/generators.py --cgan-root CLASS_FOLDERS \\
        --device cpu --rounds 12

Builds a trainer per method (CycleGAN and DCGAN at ``--size`` px, cgan at its recipe's 32 px:
StudioGAN's CIFAR-10 widths), all at ``--batch-size``, and times their steps round-robin: one
step of each method in turn, so that a machine other jobs load slows every method alike (on a
shared machine sequential runs drift by more than the differences measured). A cgan step is one
D update; every ``n_critic``-th (5) also updates G, so cgan's rounds run a whole cycle of 5
steps and report the D-only and the D+G step separately and their mean per step. Prints one
JSON line per method: median step time, images/s, FLOPs per step and the ratios to CycleGAN
and DCGAN.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer
from ganforge_plugins.apps.bench.bench import count_step_flops, sync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cgan-root", required=True, help="a folder of class folders")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    common = [f"train.batch_size={args.batch_size}", f"train.device={json.dumps(args.device)}"]
    common += ["train.num_workers=0", "train.max_steps=100000"]
    size = args.size
    recipes = {
        "cyclegan": (
            "recipes/cyclegan_selfie2anime.toml",
            [f"data.image_size={size}", f"data.load_size={size + 8}"],
        ),
        "dcgan": (
            "recipes/dcgan_anime.toml",
            [f"data.image_size={size}", f"generator.image_size={size}", f"discriminator.image_size={size}"],
        ),
        "cgan": ("recipes/cgan_cifar10.toml", [f"data.root={args.cgan_root}", "data.split=''"]),
    }
    registry = get_registry()
    with tempfile.TemporaryDirectory(prefix="ganforge-generators-") as tmp:
        trainers, loaders = {}, {}
        for name, (path, items) in recipes.items():
            recipe = Recipe.load(path, [*common, *items])
            recipe.data["callbacks"] = {}
            trainers[name] = Trainer(recipe.resolve(registry), f"{tmp}/{name}", registry)
            loaders[name] = iter(trainers[name]._loader(0))
        cycle = trainers["cgan"].objective.n_critic
        times: dict[str, list[float]] = {"cyclegan": [], "dcgan": [], "cgan D": [], "cgan D+G": []}

        def step(name: str) -> tuple[str, float]:
            trainer = trainers[name]
            label = name
            if name == "cgan":
                label = "cgan D+G" if trainer.objective.step_variant(trainer.step) else "cgan D"
            t0 = time.perf_counter()
            trainer.train_step(trainer.to_device(next(loaders[name])))
            sync(trainer.runtime.device)
            trainer.step += 1
            return label, time.perf_counter() - t0

        for r in range(args.warmup + args.rounds):
            for name in ("cyclegan", "dcgan", "cgan"):
                for _ in range(cycle if name == "cgan" else 1):
                    label, seconds = step(name)
                    if r >= args.warmup:
                        times[label].append(seconds)
        flops = {}
        for name in ("cyclegan", "dcgan"):
            trainer = trainers[name]
            flops[name] = count_step_flops(trainer, trainer.to_device(next(loaders[name])))
        cgan = trainers["cgan"]
        for label, at in (("cgan D+G", cycle - 1), ("cgan D", cycle)):  # a step of each variant
            cgan.step = at
            flops[label] = count_step_flops(cgan, cgan.to_device(next(loaders["cgan"])))
    median = {k: statistics.median(v) for k, v in times.items()}
    median["cgan"] = ((cycle - 1) * median["cgan D"] + median["cgan D+G"]) / cycle  # per step, on average
    flops["cgan"] = ((cycle - 1) * flops["cgan D"] + flops["cgan D+G"]) / cycle
    for name in ("cyclegan", "dcgan", "cgan", "cgan D", "cgan D+G"):
        print(
            json.dumps(
                {
                    "method": name,
                    "device": args.device,
                    "threads": torch.get_num_threads(),
                    "batch_size": args.batch_size,
                    "image_size": 32 if name.startswith("cgan") else size,
                    "step_time_median_s": median[name],
                    "samples_per_s": args.batch_size / median[name],
                    "flops_per_step": flops[name],
                    "steps_timed": len(times.get(name, times["cgan D"])),
                    "speed_vs_cyclegan": median["cyclegan"] / median[name],
                    "speed_vs_dcgan": median["dcgan"] / median[name],
                }
            )
        )


if __name__ == "__main__":
    main()
