"""Where a training step spends its time: kernels grouped by family, then the top kernels.

    python benchmarks/profile_step.py recipes/cyclegan_selfie2anime.toml \
        --set data.root=../shared/data/selfie2anime --batch-size 16 [--json out.json]

It warms up like ``ganforge bench`` (compiling where the recipe compiles), then records
``--steps`` steps with torch.profiler. On CUDA it reports device time per kernel, so steps run
eagerly by default (``train.cuda_graph=false``): a replayed graph would hide its kernels. On
CPU it reports the operators' own CPU time instead. Use it to pick the next speed lever: a
large "convolution" share means the step is bound by cuDNN, large "inductor" or "eager
elementwise" shares mean fusion work is left.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer

# First match wins; names are cuDNN / CUTLASS / ATen / inductor kernel names, lower-cased.
FAMILIES: list[tuple[str, str]] = [
    ("layout transform", r"nchwtonhwc|nhwctonchw|transpose|permute"),
    ("convolution", r"conv|gemm|xmma|cutlass|cudnn|implicit|wgrad|dgrad|fprop|sm80_|sm90_"),
    ("inductor reduction (norms, losses)", r"^triton_(per|red)_"),
    ("inductor pointwise", r"^triton_"),
    ("optimizer", r"multi_tensor|adam|foreach"),
    ("norm (eager)", r"norm"),
    ("padding (eager)", r"pad"),
    ("reduction (eager)", r"reduce"),
    ("copy / cast / fill", r"copy|cast|memcpy|memset|fill"),
    (
        "eager elementwise",
        r"elementwise|vectorized|unrolled|^aten::(add|sub|mul|div|neg|pow|sqrt|lerp|"
        r"addc|threshold|relu|leaky|tanh|sigmoid|where|clamp)",
    ),
]


def family(name: str) -> str:
    """The family of a kernel (or, on CPU, an operator) name."""
    lowered = name.lower()
    for label, pattern in FAMILIES:
        if re.search(pattern, lowered):
            return label
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--json", dest="json_out", help="write the table here too")
    args = parser.parse_args()

    registry = get_registry()
    overrides = ["train.cuda_graph=false", *args.overrides, f"train.max_steps={args.warmup + args.steps + 2}"]
    if args.batch_size:
        overrides.append(f"train.batch_size={args.batch_size}")
    recipe = Recipe.load(args.recipe, overrides)
    recipe.data["callbacks"] = {}
    resolved = recipe.resolve(registry)
    with tempfile.TemporaryDirectory(prefix="ganforge-profile-") as run_dir:
        trainer = Trainer(resolved, run_dir, registry)
        device = trainer.runtime.device
        on_cuda = device.type == "cuda"
        loader = iter(trainer._loader(0))
        batches = []
        for _ in range(args.warmup):
            trainer.train_step(trainer.to_device(next(loader)))
            trainer.step += 1
        for _ in range(args.steps):  # loaded up front: the profile holds the step alone
            batches.append(trainer.to_device(next(loader)))
        if on_cuda:
            torch.cuda.synchronize(device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
        with profile(activities=activities) as prof:
            for batch in batches:
                trainer.train_step(batch)
                trainer.step += 1
            if on_cuda:
                torch.cuda.synchronize(device)
        rows = _rows(prof, on_cuda)

    total = sum(t for _, t in rows) or 1.0
    families: dict[str, float] = {}
    for name, t in rows:
        families[family(name)] = families.get(family(name), 0.0) + t
    what = "GPU kernel" if on_cuda else "CPU operator self"
    print(
        f"{what} time per step: {total / args.steps / 1e3:.2f} ms (batch {resolved['train']['batch_size']})"
    )
    for label, t in sorted(families.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * t / total:5.1f} %  {t / args.steps / 1e3:8.2f} ms  {label}")
    print(f"top {args.top}:")
    for name, t in sorted(rows, key=lambda r: -r[1])[: args.top]:
        print(f"  {100 * t / total:5.1f} %  {family(name)[:12]:12s}  {name[:110]}")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "recipe": args.recipe,
                    "overrides": args.overrides,
                    "device": torch.cuda.get_device_name(device) if on_cuda else "cpu",
                    "batch_size": resolved["train"]["batch_size"],
                    "time_per_step_us": total / args.steps,
                    "families_us_per_step": {k: v / args.steps for k, v in families.items()},
                    "kernels_us": dict(sorted(rows, key=lambda r: -r[1])[:200]),
                },
                indent=2,
            )
        )
    return 0


def _rows(prof: Any, on_cuda: bool) -> list[tuple[str, float]]:
    """(name, microseconds over all profiled steps) per kernel on CUDA, per operator on CPU."""
    rows = []
    for evt in prof.key_averages():
        if on_cuda:
            if evt.device_type != torch.autograd.DeviceType.CUDA:
                continue
            t = getattr(evt, "self_device_time_total", None) or getattr(evt, "self_cuda_time_total", 0.0)
        else:
            t = evt.self_cpu_time_total
        if t > 0:
            rows.append((evt.key, float(t)))
    return rows


if __name__ == "__main__":
    sys.exit(main())
