"""Translate throughput: the generator alone, and ``ganforge translate`` on a folder end to end.

    python benchmarks/translate_throughput.py recipes/cyclegan_selfie2anime.toml \
        --set data.root=../shared/data/selfie2anime --batch-size 64 [--compile]

It trains one step to get a checkpoint with the recipe's architecture (speed does not depend on
the weights; the step is neither compiled nor captured, to start quickly), then times
(1) ``Model.translate`` on a batch of real images already on the device, synchronised,
median of the timed repeats, and (2) ``translate_files`` over ``--images`` files from the
recipe's ``trainA`` folder (repeated as needed): decoding, the model, and writing PNGs.

(2) is reported twice. ``images_per_s_end_to_end_steady`` is the steady state: from the
moment the first ``--warmup-batches`` batches were handed to the writers until the last PNG is
written, so neither loading the checkpoint, nor compiling, nor the first batches' autotuning
counts. ``images_per_s_end_to_end_with_startup`` is the whole call, start-up included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganforge.data import list_images, open_rgb, to_uint8_tensor
from ganforge.model import Model
from ganforge.paths import dataset_dir
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.registry import Registry
from ganforge.training.trainer import Trainer
from ganforge.translate import translate_files
from ganforge_plugins.apps.bench.bench import sync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--images", type=int, default=20000, help="files translated end to end (the folder, repeated)"
    )
    parser.add_argument(
        "--warmup-batches", type=int, default=3, help="batches left out of the steady-state end-to-end time"
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the generator")
    parser.add_argument("--json", dest="json_out", help="write the numbers here too")
    args = parser.parse_args()

    registry = get_registry()
    # The one training step only makes a checkpoint: compiling or capturing it would only cost time.
    fast = ["train.compile=false", "train.cuda_graph=false"]
    recipe = Recipe.load(args.recipe, [*fast, *args.overrides, "train.max_steps=1"])
    recipe.data["callbacks"] = {}
    resolved = recipe.resolve(registry)
    data = resolved["data"]  # an explicit data.root, else the source's folder in the data root
    folder = Path(data["root"] or dataset_dir(data["source"])) / "trainA"
    results: dict[str, object] = {"recipe": args.recipe, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="ganforge-translate-bench-") as tmp:
        Trainer(resolved, Path(tmp) / "run", registry).fit()
        model = Model.load(Path(tmp) / "run", registry=registry)
        device = model.device
        torch.backends.cudnn.benchmark = True
        size = resolved["data"]["image_size"]
        files = list_images(folder)
        images = [open_rgb(f).resize((size, size)) for f in files[: args.batch_size]]
        x = model.runtime.to_input(torch.stack([to_uint8_tensor(im) for im in images]))
        results["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        direction = model.direction(None)
        results["images_per_s_model"] = _time_model(
            lambda: model.translate(x, direction), device, args.repeats, len(x)
        )
        if args.compile:
            model.compile = True  # the networks are compiled on first use
            results["images_per_s_model_compiled"] = _time_model(
                lambda: model.translate(x, direction), device, args.repeats, len(x)
            )
            model.compile = False
        inputs = [str(files[i % len(files)]) for i in range(args.images)]  # repeats get -1, -2 names
        out = Path(tmp) / "translated"
        results["images_end_to_end"] = len(inputs)
        results["warmup_batches"] = args.warmup_batches
        checkpoint = str(Path(tmp) / "run")
        for compile in [False, True] if args.compile else [False]:
            timed = _time_end_to_end(
                checkpoint, inputs, out, registry, args.batch_size, compile, args.warmup_batches
            )
            results.update({f"{k}{'_compiled' if compile else ''}": v for k, v in timed.items()})
            shutil.rmtree(out)  # one run's PNGs on disk at a time
    print(json.dumps(results, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


def _time_end_to_end(
    checkpoint: str,
    inputs: list[str],
    out: Path,
    registry: Registry,
    batch_size: int,
    compile: bool,
    warmup: int,
) -> dict[str, float | None]:
    """One ``translate_files`` call: images/s in the steady state, and including start-up.

    The call loads the checkpoint and compiles if asked. Hand-over times of the batches come from
    its ``on_batch`` callback; the steady state runs from the hand-over of the ``warmup``-th
    batch until the last PNG is written.
    """
    marks: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    translate_files(
        Model.load(checkpoint, registry=registry),
        inputs,
        out,
        batch_size=batch_size,
        compile=compile,
        on_batch=lambda n: marks.append((time.perf_counter(), n)),
    )
    end = time.perf_counter()
    steady = None
    if len(marks) <= warmup:
        print(f"warning: {len(marks)} batch(es), too few for a steady state after {warmup}", file=sys.stderr)
    else:
        t_warm, n_warm = marks[warmup - 1] if warmup > 0 else (t0, 0)
        steady = (len(inputs) - n_warm) / (end - t_warm)
    return {
        "images_per_s_end_to_end_steady": steady,
        "images_per_s_end_to_end_with_startup": len(inputs) / (end - t0),
        "first_batch_s": marks[0][0] - t0 if marks else None,  # load, compile, first batches
    }


def _time_model(fn, device: torch.device, repeats: int, batch: int) -> float:
    for _ in range(5):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
