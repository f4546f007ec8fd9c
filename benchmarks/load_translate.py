"""Loading a model and translating a few files: a run against its export, files against PIL.

    python benchmarks/load_translate.py [--runs 7] [--images DIR]

Builds the 256 px CycleGAN of recipes/cyclegan_selfie2anime.toml (the official widths: two
ResNet-9 generators, two PatchGANs, Adam), trains it one step (so the checkpoint holds the Adam
moments, as every real one does), writes its safetensors export, then times in one process,
alternating the two so that caches warm both alike:

- ``ganforge.load(run_dir)`` against ``ganforge.load(export)`` (target: within 1.5x);
- ``model.translate([4 files], out=DIR)`` against the same 4 images opened with PIL, translated
  as PIL images and saved as PNG (target: no slower).

Prints the medians (and min/max) as a table and JSON. CPU by default (``--device``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def make_run(root: Path, images: Path | None, device: str) -> tuple[Path, Path, list[Path]]:
    """A checkpoint of the 256 px CycleGAN, its export and 4 photos (real ones when given)."""
    from ganforge.model import Model
    from ganforge.plugins import get_registry
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    data = root / "data"
    for domain in ("trainA", "trainB"):
        (data / domain).mkdir(parents=True)
        sources = sorted(images.iterdir())[:4] if images else []
        for i in range(4):
            if sources:
                Image.open(sources[i]).convert("RGB").save(data / domain / f"{i}.png")
            else:
                pixels = np.random.default_rng(i).integers(0, 255, (300, 280, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(data / domain / f"{i}.png")
    registry = get_registry()
    items = [f"data.root={json.dumps(str(data))}", "data.holdout=0", f"train.device={json.dumps(device)}"]
    items += ["train.max_steps=1", "train.num_workers=0"]
    items += [f"callbacks.{name}.enabled=false" for name in ("progress", "samples", "tensorboard")]
    recipe = Recipe.load(REPO / "recipes" / "cyclegan_selfie2anime.toml", items).resolve(registry)
    Trainer(recipe, root / "run", registry).fit()
    export = Model.load(root / "run", device).save(root / "model.safetensors")
    return root / "run", export, sorted((data / "trainA").iterdir())


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--images", type=Path, default=None, help="A folder of photos (default: noise images)."
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import ganforge

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run, export, files = make_run(root, args.images, args.device)
        ganforge.load(run, args.device), ganforge.load(export, args.device)  # imports and caches, once
        times: dict[str, list[float]] = {
            "load run": [],
            "load export": [],
            "translate files": [],
            "translate PIL": [],
        }
        model = ganforge.load(run, args.device)
        for i in range(args.runs):
            times["load run"].append(timed(lambda: ganforge.load(run, args.device)))
            times["load export"].append(timed(lambda: ganforge.load(export, args.device)))
            out = root / f"files-{i}"
            times["translate files"].append(timed(lambda out=out: model.translate(files, out=out)))

            def pil(i=i) -> None:
                folder = root / f"pil-{i}"
                folder.mkdir()
                for f in files:
                    model.translate(Image.open(f)).save(folder / f"{f.stem}.png")

            times["translate PIL"].append(timed(pil))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'':18} {'median':>8} {'min':>8} {'max':>8}   ({args.runs} runs, {args.device})")
    for key, values in times.items():
        print(f"{key:18} {medians[key]:8.3f} {min(values):8.3f} {max(values):8.3f} s")
    ratios = {
        "load run / load export": medians["load run"] / medians["load export"],
        "translate files / translate PIL": medians["translate files"] / medians["translate PIL"],
    }
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x")
    print(json.dumps({"seconds": times, "medians": medians, "ratios": ratios}))


if __name__ == "__main__":
    main()
