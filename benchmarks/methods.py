"""Step cost of every translation method against CycleGAN, measured in one run.

    python benchmarks/methods.py --set data.image_size=64 --set data.load_size=72 --device cpu
    python benchmarks/methods.py --batch-size 16 --peak-tflops 989      # on a GPU, 256 px
    python benchmarks/methods.py --methods cyclegan pix2pix --paired-root PAIRS   # pix2pix's data
    python benchmarks/methods.py --methods cyclegan dcgan cgan cgan-dg --root cgan=CLASS_FOLDERS ...

Runs ``ganforge bench`` (the bench app's ``run_bench``) on each recipe with the same overrides and
prints images/s, step time and the ratio to CycleGAN's images per second (one image is one
training sample: a pair for the two-way methods and pix2pix, one source image for CUT and FastCUT).
pix2pix trains on aligned pairs: ``--paired-root`` names a folder with ``trainA``/``trainB`` of
matching file names (default: the recipe's ``facades`` in the data root); below 256 px its
``unet_256`` becomes a ``unet`` with one halving per power of two of the side.

The generators are there on request: ``dcgan`` at the overrides' size, ``cgan`` at its recipe's
32 px (StudioGAN's CIFAR-10 widths; ``--root cgan=PATH``: a folder of class folders). A cgan
step is one D update and every fifth also a G update: ``cgan`` is the median step (D only),
``cgan-dg`` the same recipe with ``n_critic = 1`` (D and G every step). ``r3gan`` (its recipe's
FFHQ-64 networks, built for 64 px) reads one real batch for D and one for G, so it runs at twice
``--batch-size`` and one sample is one image per phase (a step at ``--batch-size 1`` is then
DCGAN's unit of work: D on one real and one generated image, G on one).
"""

from __future__ import annotations

import argparse
import json

from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge_plugins.apps.bench.bench import run_bench

RECIPES = {
    "cyclegan": "recipes/cyclegan_selfie2anime.toml",
    "cut": "recipes/cut_selfie2anime.toml",
    "fastcut": "recipes/fastcut_selfie2anime.toml",
    "ugatit-light": "recipes/ugatit_light_selfie2anime.toml",
    "pix2pix": "recipes/pix2pix_facades.toml",
    "uvcgan2": "recipes/uvcgan2_selfie2anime.toml",
    "dcgan": "recipes/dcgan_anime.toml",
    "cgan": "recipes/cgan_cifar10.toml",
    "cgan-dg": "recipes/cgan_cifar10.toml",
    "r3gan": "recipes/r3gan_anime64.toml",
}
PHASES = {"r3gan": 2}  # real batches per step: the step's batch is this many times --batch-size
TRANSLATORS = ["cyclegan", "cut", "fastcut", "ugatit-light", "pix2pix", "uvcgan2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--methods", nargs="*", default=TRANSLATORS, choices=list(RECIPES))
    parser.add_argument(
        "--paired-root", default="", help="pix2pix's pairs: a folder with trainA/ and trainB/"
    )
    parser.add_argument("--root", action="append", default=[], help="METHOD=PATH: that method's data.root")
    args = parser.parse_args()
    registry = get_registry()
    roots = dict(item.split("=", 1) for item in args.root)
    rows = {}
    for name in args.methods:
        overrides = args.overrides
        if name not in TRANSLATORS:  # their image folders take no load_size
            overrides = [o for o in overrides if not o.startswith("data.load_size=")]
        extra = [
            *overrides,
            f"train.batch_size={args.batch_size * PHASES.get(name, 1)}",
            f"train.device={json.dumps(args.device)}",
        ]
        if name == "ugatit-light":  # its networks take the image size as an option too
            size = _size(args.overrides)
            extra += [f"generator.image_size={size}"]
            if size < 128:  # the 7-layer global D needs >= 128 px; one layer fewer below that
                extra += ["discriminator.global.layers=6"]
        if name == "pix2pix":
            size = _size(args.overrides)
            if size != 256:  # unet_256 needs 256 px multiples: the same U-Net, one halving per 2x
                extra += [f"generator={{name='unet', num_downs={size.bit_length() - 1}}}"]
            if args.paired_root:
                extra += [f"data.root={json.dumps(args.paired_root)}"]
        if name == "uvcgan2":  # its ViT is built for one size; the step's cost needs no pre-training
            extra += [f"generator.image_size={_size(args.overrides)}", "objective.pretrained=''"]
        if name == "dcgan":
            size = _size(args.overrides)
            extra += [f"generator.image_size={size}", f"discriminator.image_size={size}"]
        if name.startswith("cgan"):  # its own 32 px, whatever the overrides say
            extra += ["data.image_size=32", "data.split=''"]
        if name == "cgan-dg":
            extra += ["objective.n_critic=1"]
        if name in roots:
            extra += [f"data.root={roots[name]}"]
        recipe = Recipe.load(RECIPES[name], extra)
        rows[name] = run_bench(recipe, registry, args.steps, args.warmup, args.peak_tflops, count_flops=True)
        rows[name]["samples_per_s"] /= PHASES.get(name, 1)
    base = rows.get("cyclegan", {}).get("samples_per_s")
    for name, r in rows.items():
        r["ratio_to_cyclegan"] = r["samples_per_s"] / base if base else None
        print(json.dumps({"method": name, **{k: r[k] for k in _KEYS if k in r}}))


_KEYS = (
    "device",
    "gpu",
    "precision",
    "compile",
    "cuda_graph",
    "batch_size",
    "image_size",
    "samples_per_s",
    "step_time_median_s",
    "flops_per_step",
    "peak_memory_bytes",
    "data_wait_share",
    "ratio_to_cyclegan",
)


def _size(overrides: list[str]) -> int:
    for item in overrides:
        if item.startswith("data.image_size="):
            return int(item.split("=", 1)[1])
    return 256


if __name__ == "__main__":
    main()
