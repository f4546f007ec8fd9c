"""Data-pipeline throughput: items/s of a recipe's dataset, JPEG decoding vs the decoded cache
on disk (``cache = true``) vs the cache on the device (``cache = "device"``).

    python benchmarks/data_throughput.py recipes/cyclegan_selfie2anime.toml \
        --set data.root=../shared/data/selfie2anime --items 400 --workers 0 2 4

One CPU worker's items/s times the workers you can spare gives the ceiling on pairs/s that the
loader can feed the GPU; compare it with `ganforge bench` numbers. Every mode is timed up to
uint8 images on the device (CUDA when present), synchronised at the end.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader

from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import PositionSampler
from ganforge_plugins.apps.bench.bench import sync


def measure(dataset, items: int, workers: int, batch: int, device: torch.device) -> float:
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=PositionSampler(0, items // batch, batch),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),
    )
    on_device = getattr(dataset, "on_device", lambda b, d: b)

    def to_device(b):
        b = on_device(b, device)
        return {k: v.to(device, non_blocking=True) for k, v in b.items()}

    it = iter(loader)
    to_device(next(it))  # start-up (worker launch, the cache's upload) stays out of the timing
    sync(device)
    t0 = time.perf_counter()
    n = batch
    for b in it:
        to_device(b)
        n += batch
    sync(device)
    return (n - batch) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    registry = get_registry()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = []
    for cache in ("false", "true", '"device"'):
        recipe = Recipe.load(args.recipe, [*args.overrides, f"data.cache={cache}"])
        resolved = recipe.resolve(registry)
        t0 = time.perf_counter()
        dataset = registry.build("dataset", resolved["data"], seed=0)
        setup = time.perf_counter() - t0
        for workers in args.workers:
            rate = measure(dataset, args.items, workers, args.batch, device)
            results.append(
                {
                    "cache": cache.strip('"'),
                    "device": str(device),
                    "workers": workers,
                    "items_per_s": round(rate, 1),
                    "setup_s": round(setup, 1),
                }
            )
            print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
