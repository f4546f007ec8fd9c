"""``ganforge bench``: time training steps of a recipe on real data.

Warm-up steps first (allocation, cudnn autotuning, compilation), then timed steps. Each timed
step is synchronised (benchmarks may sync; the trainer never does) so step times are exact.
The data-wait share is the time spent waiting for the next batch over the whole step time.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.recipe import Recipe
from ganforge.registry import Registry


def baseline(recipe: Recipe, registry: Registry) -> tuple[str, list[str]]:
    """(name, ``--set`` items) of the recipe's ``[baseline]``: how a reference implementation
    trains the same model on the same data (e.g. fp32, NCHW, eager, unfused Adam)."""
    resolved = recipe.resolve(registry)
    table = resolved.get("baseline")
    if not table or not table["set"]:
        raise GanforgeError(
            f"{recipe.source}: --baseline needs a [baseline] table in the recipe (name = what it "
            "reproduces, set = the --set items that turn the recipe into it)"
        )
    return table["name"], list(table["set"])


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (benchmarks time finished work; training never waits)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _TotalOnly:
    """FlopCounterMode's module tracker reduced to the total, all bench reports: the tracker's
    per-module backward hooks cannot follow ``torch.autograd.grad`` (a gradient penalty's double
    backward fails under them), and its global module hooks make compiled networks warn."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _TotalOnly:
        return self

    def __exit__(self, *args: Any) -> None:
        return None


def count_step_flops(trainer: Any, batch: dict[str, Any]) -> float:
    """FLOPs of one training step, counted by torch's FlopCounterMode (its total only)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _TotalOnly()
    with counter:
        trainer.engine.run_step(batch, trainer.step)
    return float(counter.get_total_flops())


def run_bench(
    recipe: Recipe,
    registry: Registry,
    steps: int = 20,
    warmup: int = 5,
    peak_tflops: float | None = None,
    count_flops: bool = True,
) -> dict[str, Any]:
    """Benchmark a recipe; returns the numbers ``ganforge bench`` prints."""
    from ganforge.training.trainer import Trainer

    recipe.set(f"train.max_steps={warmup + steps + 2}")
    recipe.data["callbacks"] = {}
    resolved = recipe.resolve(registry)
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as run_dir:
        trainer = Trainer(resolved, run_dir, registry)
        device = trainer.runtime.device
        loader = iter(trainer._loader(0))
        for _ in range(warmup):
            trainer.train_step(trainer.to_device(next(loader)))
            trainer.step += 1
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times, waits = [], []
        for _ in range(steps):
            t0 = time.perf_counter()
            batch = trainer.to_device(next(loader))
            t1 = time.perf_counter()
            trainer.train_step(batch)
            sync(device)
            t2 = time.perf_counter()
            trainer.step += 1
            times.append(t2 - t0)
            waits.append(t1 - t0)
        flops = count_step_flops(trainer, trainer.to_device(next(loader))) if count_flops else None
        peak_mem = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        batch_size = resolved["train"]["batch_size"]
        objective = resolved["objective"]["name"]
        median = statistics.median(times)
        result: dict[str, Any] = {
            "recipe": recipe.source,
            "objective": objective,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "precision": trainer.runtime.precision,
            "channels_last": trainer.runtime.channels_last,
            "compile": trainer.runtime.compile,
            "compile_mode": trainer.runtime.compile_mode,
            "cuda_graph": trainer.runtime.cuda_graph,
            "cuda_graph_off": trainer.cuda_graph_note,
            "batch_size": batch_size,
            "image_size": getattr(trainer.dataset, "image_size", None),
            "warmup_steps": warmup,
            "timed_steps": steps,
            "step_time_median_s": median,
            "step_time_p10_s": _quantile(times, 0.1),
            "step_time_p90_s": _quantile(times, 0.9),
            "samples_per_s": batch_size / median,
            "sample_unit": trainer.objective.declares.sample_unit,
            "data_wait_share": sum(waits) / sum(times),
            "peak_memory_bytes": peak_mem,
            "flops_per_step": flops,
            "torch": torch.__version__,
        }
        if flops:
            result["achieved_tflops"] = flops / median / 1e12
            if peak_tflops:
                result["peak_tflops"] = peak_tflops
                result["mfu"] = result["achieved_tflops"] / peak_tflops
        return result


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
