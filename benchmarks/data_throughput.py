"""Data-pipeline throughput: items/s of a recipe's dataset, JPEG decoding vs the decoded cache.

    python benchmarks/data_throughput.py recipes/cyclegan_selfie2anime.toml \
        --set data.root=../shared/data/selfie2anime --items 400 --workers 0 2 4

One CPU worker's items/s times the workers you can spare gives the ceiling on pairs/s that the
loader can feed the GPU; compare it with `ganforge bench` numbers.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader

from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.trainer import PositionSampler


def measure(dataset, items: int, workers: int, batch: int) -> float:
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=PositionSampler(0, items // batch, batch),
        num_workers=workers,
        generator=torch.Generator(),
    )
    it = iter(loader)
    next(it)  # start-up (worker launch) stays out of the timing
    t0 = time.perf_counter()
    n = batch
    for _ in it:
        n += batch
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
    results = []
    for cache in (False, True):
        recipe = Recipe.load(args.recipe, [*args.overrides, f"data.cache={str(cache).lower()}"])
        resolved = recipe.resolve(registry)
        t0 = time.perf_counter()
        dataset = registry.build("dataset", resolved["data"], seed=0)
        setup = time.perf_counter() - t0
        for workers in args.workers:
            rate = measure(dataset, args.items, workers, args.batch)
            results.append(
                {
                    "cache": cache,
                    "workers": workers,
                    "items_per_s": round(rate, 1),
                    "setup_s": round(setup, 1),
                }
            )
            print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
