"""Evaluation: run metric plugins on a trained model's outputs (``ganforge eval``, the ``eval`` callback).

Metrics come from the registry (kind ``metric``); every metric object has ``uses`` and
``compute(real, fake) -> dict[str, float]``:

* ``uses = "features"`` (FID, KID): ``real``/``fake`` are ``[N, D]`` features of unpaired image
  sets, from the feature extractor named by the metric's ``extractor`` attribute. Metrics that
  name the same extractor (and weights) share one network and one pass over the images.
* ``uses = "pairs"`` (cycle): ``real``/``fake`` are aligned images in [0, 1]; the metric's
  ``pairs`` names the pairings (``cycle``: x and F(G(x)); ``identity``: y and G(y)). Result keys
  are prefixed with the pairing; batches are averaged, weighted by size.

For a translation model, each declared direction compares its translated source images with
the real target images (distribution metrics), the source with its reconstruction through the
inverse direction (``cycle``, where the objective declares one) and the target with its own
translation (``identity``). For a generator, ``generated`` compares as many samples as there
are real images with the real images.

Generated images are quantised to 8 bits before the metrics, as if saved as PNG, so numbers
match tools that read image files. Real images are read with ``ganforge.data`` and resized
(bicubic) to the model's training size.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from ganforge.data import list_images, to_uint8_tensor, try_open_rgb
from ganforge.errors import GanforgeError
from ganforge.registry import Registry

DEFAULT_METRICS = ("fid", "kid", "cycle")


def parse_metric_names(text: str | Iterable[str]) -> list[str]:
    """``"fid,kid"`` or a list -> names, in order, without duplicates."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for item in items:
        name = item.strip()
        if name and name not in names:
            names.append(name)
    if not names:
        raise GanforgeError("no metrics named (e.g. --metrics fid,kid,cycle)")
    return names


def build_metrics(registry: Registry, names: Iterable[str], weights: str = "") -> dict[str, Any]:
    """Metric objects by name; ``weights`` goes to every metric that takes that option."""
    metrics = {}
    for name in names:
        table: dict[str, Any] = {"name": name}
        component = registry.get("metric", name, "--metrics")
        if weights and any(p.name == "weights" for p in registry.options(component)):
            table["weights"] = weights
        metric = registry.build("metric", table, f"metric '{name}'")
        uses = getattr(metric, "uses", None)
        if uses not in ("features", "pairs") or not callable(getattr(metric, "compute", None)):
            raise GanforgeError(
                f"metric '{name}' ({component.provider}) has no usable compute(); expected "
                "uses = 'features' or 'pairs'"
            )
        metrics[name] = metric
    return metrics


@dataclass
class Extractors:
    """Feature extractors built on first use and kept (one per extractor name and weights)."""

    registry: Registry
    device: torch.device
    batch_size: int = 16
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict)

    def get(self, metric: Any) -> tuple[tuple[str, str], Any]:
        key = (getattr(metric, "extractor", "inception"), getattr(metric, "weights", "") or "")
        if key not in self._cache:
            table: dict[str, Any] = {"name": key[0]}
            if key[1]:
                table["weights"] = key[1]
            extractor = self.registry.build("feature_extractor", table, f"feature extractor '{key[0]}'")
            if hasattr(extractor, "to"):
                extractor = extractor.to(self.device)
            self._cache[key] = extractor
        return key, self._cache[key]

    def features(self, extractor: Any, images01: Tensor) -> Tensor:
        """Features of images in [0, 1] (any device), in batches; float64 on the CPU."""
        out = []
        for start in range(0, len(images01), self.batch_size):
            batch = images01[start : start + self.batch_size].to(self.device, torch.float32)
            with torch.no_grad():
                out.append(extractor(batch).detach().to("cpu", torch.float64))
        return torch.cat(out) if out else torch.zeros(0, getattr(extractor, "dim", 0), dtype=torch.float64)


def to_unit(images: Tensor) -> Tensor:
    """uint8 images -> [0, 1]; float images in [-1, 1] -> [0, 1] quantised to 8 bits."""
    if images.dtype == torch.uint8:
        return images.float().div(255)
    return images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().div(255)


def _model_input(images: Tensor, runtime: Any) -> Tensor:
    if images.dtype == torch.uint8:
        return runtime.to_input(images)
    return images.to(runtime.device)


def _batches(n: int, size: int) -> Iterable[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + size))


class _PairAverager:
    """Size-weighted means of a paired metric's per-batch values."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict[str, float], n: int) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * n
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.count) for k, v in self.sums.items()}


def evaluate_direction(
    objective: Any,
    source: Tensor,
    target: Tensor,
    direction: str,
    metrics: dict[str, Any],
    extractors: Extractors,
    batch_size: int = 16,
    real_features: dict[tuple[str, str], Tensor] | None = None,
) -> dict[str, float]:
    """Metrics of one translation direction.

    ``source``/``target`` are the real images of the input and output domains: uint8 (CPU) or
    float in [-1, 1] (any device). ``real_features`` caches the target's features by extractor
    (pass the same dict again to skip recomputing them).
    """
    back = objective.directions[direction].inverse
    runtime = objective.runtime
    feature_metrics = {n: m for n, m in metrics.items() if m.uses == "features"}
    pair_metrics = {n: m for n, m in metrics.items() if m.uses == "pairs"}
    keyed = {n: extractors.get(m) for n, m in feature_metrics.items()}
    needed = {key: ext for key, ext in keyed.values()}
    fake_feats: dict[tuple[str, str], list[Tensor]] = {key: [] for key in needed}
    averagers = {
        (n, p): _PairAverager() for n, m in pair_metrics.items() for p in getattr(m, "pairs", ("cycle",))
    }
    unknown = {p for _, p in averagers} - {"cycle", "identity"}
    if unknown:
        raise GanforgeError(f"unknown metric pairing(s) {', '.join(sorted(unknown))}; known: cycle, identity")
    if back is None:  # no way back: cycle pairings do not exist for this direction
        averagers = {key: avg for key, avg in averagers.items() if key[1] != "cycle"}
    want_cycle = any(p == "cycle" for _, p in averagers)

    with torch.no_grad():
        for sl in _batches(len(source), batch_size):
            x = _model_input(source[sl], runtime)
            fake = objective.translate(x, direction)
            fake01 = to_unit(fake)
            for key, ext in needed.items():
                fake_feats[key].append(extractors.features(ext, fake01))
            if want_cycle:
                rec01 = to_unit(objective.translate(fake, back))
                x01 = to_unit(x)  # exact for uint8 inputs; on the model's device
                for (name, pair), avg in averagers.items():
                    if pair == "cycle":
                        avg.add(pair_metrics[name].compute(x01, rec01), rec01.shape[0])
        for sl in _batches(len(target), batch_size):
            if not any(p == "identity" for _, p in averagers):
                break
            y = _model_input(target[sl], runtime)
            idt01 = to_unit(objective.translate(y, direction))
            y01 = to_unit(y)
            for (name, pair), avg in averagers.items():
                if pair == "identity":
                    avg.add(pair_metrics[name].compute(y01, idt01), idt01.shape[0])

    cache = real_features if real_features is not None else {}
    results: dict[str, float] = {}
    for name, metric in metrics.items():
        if metric.uses == "features":
            key, ext = keyed[name]
            if key not in cache:
                cache[key] = extractors.features(ext, to_unit(target))
            results.update(metric.compute(cache[key], torch.cat(fake_feats[key])))
        else:
            for (n, pair), avg in averagers.items():
                if n == name:
                    results.update({f"{pair}_{k}": v for k, v in avg.means().items()})
    return results


def evaluate_generation(
    objective: Any,
    real: Tensor,
    metrics: dict[str, Any],
    extractors: Extractors,
    batch_size: int = 16,
    seed: int = 0,
    real_features: dict[tuple[str, str], Tensor] | None = None,
) -> dict[str, float]:
    """Distribution metrics of a generator: ``len(real)`` samples (seeded noise) against ``real``."""
    paired = [n for n, m in metrics.items() if m.uses != "features"]
    if paired:
        raise GanforgeError(
            f"metric(s) {', '.join(paired)} need a translation model; this checkpoint generates from noise"
        )
    g = torch.Generator().manual_seed(seed)
    keyed = {n: extractors.get(m) for n, m in metrics.items()}
    needed = {key: ext for key, ext in keyed.values()}
    fake_feats: dict[tuple[str, str], list[Tensor]] = {key: [] for key in needed}
    with torch.no_grad():
        for sl in _batches(len(real), batch_size):
            fake01 = to_unit(objective.generate(objective.noise(sl.stop - sl.start, generator=g)))
            for key, ext in needed.items():
                fake_feats[key].append(extractors.features(ext, fake01))
    cache = real_features if real_features is not None else {}
    results: dict[str, float] = {}
    for name, metric in metrics.items():
        key, ext = keyed[name]
        if key not in cache:
            cache[key] = extractors.features(ext, to_unit(real))
        results.update(metric.compute(cache[key], torch.cat(fake_feats[key])))
    return results


def load_folder(
    folder: str | os.PathLike[str], size: int, max_images: int = 0, what: str = "images"
) -> Tensor:
    """Images of a folder, resized (bicubic) to ``size`` square: uint8 ``[N, 3, size, size]``."""
    files = list_images(folder, what)
    images = []
    for path in files:
        if max_images and len(images) >= max_images:
            break
        img = try_open_rgb(path)
        if img is None:
            continue
        if img.size != (size, size):
            img = img.resize((size, size), Image.BICUBIC)
        images.append(to_uint8_tensor(img))
    if not images:
        raise GanforgeError(f"{what}: no readable images in {Path(folder).resolve()}")
    return torch.stack(images)


@dataclass
class EvalResult:
    """What ``ganforge eval`` found: metrics per direction and how many images went in."""

    checkpoint: str
    step: int
    objective: str
    results: dict[str, dict[str, float]]
    images: dict[str, int]
    routes: dict[str, tuple[str, str]] = field(default_factory=dict)  # direction -> (source, target)

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "step": self.step,
            "objective": self.objective,
            "images": self.images,
            "results": self.results,
        }


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    data: list[str],
    registry: Registry,
    metrics: Iterable[str] = DEFAULT_METRICS,
    weights: str = "",
    device: str = "auto",
    batch_size: int = 16,
    max_images: int = 0,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> EvalResult:
    """Evaluate a checkpoint on image folders: two (A, B) for translation, one for generation."""
    from ganforge.model import Model

    log = log or (lambda text: print(text, file=sys.stderr))
    names = parse_metric_names(metrics)
    metric_objs = build_metrics(registry, names, weights)
    objective = Model.load(checkpoint, device, registry=registry)
    file, size = objective.file, objective.image_size
    extractors = Extractors(registry, objective.runtime.device, batch_size)
    # Build the extractors now: a missing weights file is reported before any translation.
    for metric in metric_objs.values():
        if metric.uses == "features":
            extractors.get(metric)
    step = objective.step
    if objective.directions:
        domains = list(dict.fromkeys(k for d in objective.directions.values() for k in (d.source, d.target)))
        if len(data) != len(domains):
            folders = " ".join(f"{k}_DIR" for k in domains)
            count = {1: "one", 2: "two", 3: "three"}.get(len(domains), str(len(domains)))
            raise GanforgeError(
                f"{file}: a translation checkpoint of '{objective.name}' needs {count} folders, one "
                f"per domain: --data {folders} (got {len(data)})"
            )
        images = {
            k: load_folder(folder, size, max_images, f"--data {k}_DIR") for k, folder in zip(domains, data)
        }
        counted = " and ".join(f"{len(v)} {k}" for k, v in images.items())
        log(f"evaluating {file.name} (step {step}) on {counted} images at {size} px: {', '.join(names)}")
        results = {
            name: evaluate_direction(
                objective, images[d.source], images[d.target], name, metric_objs, extractors, batch_size
            )
            for name, d in objective.directions.items()
        }
        counts = {k: len(v) for k, v in images.items()}
    elif objective.generates:
        if len(data) != 1:
            raise GanforgeError(
                f"{file}: a generator checkpoint needs one folder of real images: --data DIR "
                f"(got {len(data)})"
            )
        real = load_folder(data[0], size, max_images, "--data DIR")
        log(
            f"evaluating {file.name} (step {step}): {len(real)} samples against {len(real)} real images at "
            f"{size} px: {', '.join(names)}"
        )
        results = {
            "generated": evaluate_generation(objective, real, metric_objs, extractors, batch_size, seed)
        }
        counts = {"real": len(real), "generated": len(real)}
    else:
        raise GanforgeError(f"{file}: objective '{objective.name}' neither translates nor generates images")
    if "fid" in metric_objs and min(counts.values()) < 2048:
        log(
            f"note: FID from fewer than 2048 images ({min(counts.values())}) is biased upwards; compare runs "
            "only at equal image counts"
        )
    routes = {name: (d.source, d.target) for name, d in objective.directions.items()}
    return EvalResult(str(file), step, objective.name, results, counts, routes)
