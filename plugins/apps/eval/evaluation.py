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
are real images with the real images. For a class-conditional generator (a model whose
``classes`` are classes), each class ``class/<name>`` compares samples of that class with the
real images of that class (:func:`evaluate_classes`), ``generated`` pools them, and ``mean`` is
the mean over the classes (intra-class FID / KID). With two or more directions, ``mean`` is the
mean over the directions (:func:`mean_over`).

Generated images are quantised to 8 bits before the metrics, as if saved as PNG, so numbers
match tools that read image files. Real images are read with ``ganforge.data`` and resized
(bicubic) to the model's training size.

Every evaluation follows a named protocol (``protocols.py``: the resize to 299 px, the input
range, the number of images, the KID estimator); the result names it. :func:`evaluate_folders`
compares two image folders directly (``ganforge eval --real DIR --fake DIR``), each image
resized from its file by the protocol, as clean-fid does.
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

from .protocols import DEFAULT_PROTOCOL, Protocol, get_protocol, resize_image

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


# Short names of logged values: ``best = "kid"`` in the callback means ``kid_x100``.
VALUE_ALIASES = {"kid": "kid_x100"}
MEAN = "mean"  # the group of means over directions or classes


def value_name(name: str) -> str:
    """A logged value's name from a short one (``kid`` -> ``kid_x100``)."""
    return VALUE_ALIASES.get(name, name)


def mean_over(groups: dict[str, dict[str, float]]) -> dict[str, float]:
    """The mean over groups (directions or classes) of each value every group has; spreads
    (``*_std``) are left out: a mean of subset spreads is no spread of the mean."""
    if not groups:
        return {}
    first, *rest = groups.values()
    keys = [k for k in first if not k.endswith("_std") and all(k in g for g in rest)]
    return {k: sum(float(g[k]) for g in groups.values()) / len(groups) for k in keys}


def build_metrics(
    registry: Registry, names: Iterable[str], weights: str = "", protocol: str = DEFAULT_PROTOCOL
) -> dict[str, Any]:
    """Metric objects by name; ``weights`` goes to every metric that takes that option, and the
    protocol's options for a metric (e.g. KID's estimator) to the metric of that name."""
    chosen = get_protocol(protocol)
    metrics = {}
    for name in names:
        table: dict[str, Any] = {"name": name}
        component = registry.get("metric", name, "--metrics")
        accepted = {p.name for p in registry.options(component)}
        if weights and "weights" in accepted:
            table["weights"] = weights
        table.update({k: v for k, v in chosen.metric_options.get(name, {}).items() if k in accepted})
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
    """Feature extractors built on first use and kept (one per extractor name and weights).

    ``protocol`` goes to every extractor that takes that option (the Inception network's resize
    and input range).
    """

    registry: Registry
    device: torch.device
    batch_size: int = 16
    protocol: str = DEFAULT_PROTOCOL
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict)

    def get(self, metric: Any) -> tuple[tuple[str, str], Any]:
        key = (getattr(metric, "extractor", "inception"), getattr(metric, "weights", "") or "")
        if key not in self._cache:
            table: dict[str, Any] = {"name": key[0]}
            if key[1]:
                table["weights"] = key[1]
            component = self.registry.get("feature_extractor", key[0], "extractor")
            if any(p.name == "protocol" for p in self.registry.options(component)):
                table["protocol"] = self.protocol
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

    def provenance(self) -> dict[str, dict[str, str]]:
        """Where each built extractor's weights came from (``{"inception": {...}}``)."""
        return {key[0]: dict(getattr(ext, "provenance", {}) or {}) for key, ext in self._cache.items()}


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


def evaluate_classes(
    objective: Any,
    real: Tensor,
    labels: Tensor,
    metrics: dict[str, Any],
    extractors: Extractors,
    batch_size: int = 16,
    seed: int = 0,
    real_features: dict[str, dict[tuple[str, str], Tensor]] | None = None,
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Distribution metrics of a class-conditional generator, per class, pooled and their mean.

    ``real`` are real images (uint8 or [-1, 1]) and ``labels`` their class indices into
    ``objective.classes``. Each class with real images gets as many samples of that class (noise
    seeded by ``seed``, drawn class after class, so repeated calls see the same noise) and is
    scored against its own real images: ``class/<name>``. ``generated`` scores all samples
    against all real images (the classes in the real images' proportions) and ``mean`` is the
    mean over the scored classes. A class with fewer than 2 real images is not scored (FID and
    KID need two per set); the second value returned names such classes. ``real_features``
    caches the real features by group, then by extractor (pass the same dict to skip them).
    """
    paired = [n for n, m in metrics.items() if m.uses != "features"]
    if paired:
        raise GanforgeError(
            f"metric(s) {', '.join(paired)} need a translation model; this checkpoint generates from noise"
        )
    classes = list(objective.classes)
    labels = labels.detach().to("cpu", torch.int64)
    if len(labels) != len(real):
        raise GanforgeError(f"{len(real)} real images but {len(labels)} class labels")
    g = torch.Generator().manual_seed(seed)
    keyed = {n: extractors.get(m) for n, m in metrics.items()}
    needed = {key: ext for key, ext in keyed.values()}
    cache = real_features if real_features is not None else {}
    pooled_fake: dict[tuple[str, str], list[Tensor]] = {key: [] for key in needed}
    pooled_real: dict[tuple[str, str], list[Tensor]] = {key: [] for key in needed}
    results: dict[str, dict[str, float]] = {}
    unscored: list[str] = []
    for index, name in enumerate(classes):
        chosen = (labels == index).nonzero().flatten()
        if len(chosen) == 0:
            continue
        fake_feats: dict[tuple[str, str], list[Tensor]] = {key: [] for key in needed}
        with torch.no_grad():
            for sl in _batches(len(chosen), batch_size):
                n = sl.stop - sl.start
                y = torch.full((n,), index, dtype=torch.int64, device=objective.device)
                fake01 = to_unit(objective.generate(objective.noise(n, generator=g), y))
                for key, ext in needed.items():
                    fake_feats[key].append(extractors.features(ext, fake01))
        group = f"class/{name}"
        reals = cache.setdefault(group, {})
        values: dict[str, float] = {}
        for metric_name, metric in metrics.items():
            key, ext = keyed[metric_name]
            if key not in reals:
                reals[key] = extractors.features(ext, to_unit(real[chosen.to(real.device)]))
            fake = torch.cat(fake_feats[key])
            if len(chosen) >= 2:
                values.update(metric.compute(reals[key], fake))
        for key in needed:
            pooled_fake[key].append(torch.cat(fake_feats[key]))
            pooled_real[key].append(reals[key])
        if len(chosen) >= 2:
            results[group] = values
        else:
            unscored.append(name)
    if not any(pooled_fake.values()):
        raise GanforgeError(f"no real images of any class ({', '.join(classes)})")
    pooled: dict[str, float] = {}
    for metric_name, metric in metrics.items():
        key = keyed[metric_name][0]
        pooled.update(metric.compute(torch.cat(pooled_real[key]), torch.cat(pooled_fake[key])))
    out = {"generated": pooled, **results}
    if results:
        out[MEAN] = mean_over(results)
    return out, unscored


def load_class_folders(
    folder: str | os.PathLike[str], classes: list[str], size: int, max_images: int = 0
) -> tuple[Tensor, Tensor, list[str]]:
    """Real images of a class-folder tree (one sub-folder per class, named as the model's classes):
    uint8 images, their class indices, and notes on classes without a folder and folders that are
    no class. At most ``max_images`` per class (0: all)."""
    root = Path(folder)
    if not root.is_dir():
        raise GanforgeError(f"--data DIR: folder {root.resolve()} not found")
    subfolders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    found = [c for c in classes if (root / c).is_dir()]
    if not found:
        shown = ", ".join(classes[:12]) + (f" and {len(classes) - 12} more" if len(classes) > 12 else "")
        raise GanforgeError(
            f"--data {root}: a class-conditional model needs one sub-folder per class, named as its "
            f"classes ({shown}); found {', '.join(subfolders[:12]) or 'none'}"
        )
    images, labels = [], []
    for c in found:
        batch = load_folder(root / c, size, max_images, f"--data class {c}")
        images.append(batch)
        labels += [classes.index(c)] * len(batch)
    notes = []
    missing = [c for c in classes if c not in found]
    if missing:
        notes.append(f"no folder for class(es) {', '.join(missing)} in {root}: not scored")
    extra = [d for d in subfolders if d not in classes]
    if extra:
        notes.append(f"folder(s) {', '.join(extra)} in {root} are not classes of the model: ignored")
    return torch.cat(images), torch.tensor(labels, dtype=torch.int64), notes


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
    protocol: str = DEFAULT_PROTOCOL
    weights: dict[str, dict[str, str]] = field(default_factory=dict)  # extractor -> provenance
    classes: dict[str, int] = field(default_factory=dict)  # class -> real images (class-conditional)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any]
        if not self.checkpoint:  # two folders compared
            real, fake = self.routes.get("fake", ("", ""))
            out = {"protocol": self.protocol, "real": real, "fake": fake, "images": self.images}
            out["results"] = self.results.get("fake", {})
            if self.weights:
                out["weights"] = self.weights
            return out
        out = {
            "checkpoint": self.checkpoint,
            "step": self.step,
            "objective": self.objective,
            "protocol": self.protocol,
            "images": self.images,
            "results": self.results,
        }
        if self.classes:
            out["classes"] = self.classes
        if self.weights:
            out["weights"] = self.weights
        return out


def protocol_notes(chosen: Protocol, folders: list[str], counts: dict[str, int], size: int) -> list[str]:
    """Where a run departs from the protocol's split, image count or image size (numbers then differ)."""
    notes = []
    if chosen.split:
        other = [f for f in folders if not Path(f).resolve().name.lower().startswith(chosen.split)]
        if other:
            split = chosen.split
            notes.append(
                f"protocol {chosen.name} scores the {split} split ({split}A/, {split}B/); "
                f"got {', '.join(Path(f).name for f in other)}"
            )
    if chosen.images and any(n != chosen.images for n in counts.values()):
        notes.append(f"protocol {chosen.name} uses {chosen.images} images per set; got {counts}")
    if chosen.image_size and size and size != chosen.image_size:
        notes.append(
            f"protocol {chosen.name} assumes {chosen.image_size} px images; this model works at {size} px"
        )
    return notes


def _image_limit(chosen: Protocol, max_images: int) -> int:
    if chosen.images and max_images and max_images != chosen.images:
        raise GanforgeError(
            f"--protocol {chosen.name} uses the first {chosen.images} images of each folder; "
            f"--max-images {max_images} would change it (drop --max-images, or pick another protocol)"
        )
    return max_images or chosen.images


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
    protocol: str = DEFAULT_PROTOCOL,
) -> EvalResult:
    """Evaluate a checkpoint on image folders: two (A, B) for translation, one for generation."""
    from ganforge.model import Model

    log = log or (lambda text: print(text, file=sys.stderr))
    chosen = get_protocol(protocol)
    max_images = _image_limit(chosen, max_images)
    names = parse_metric_names(metrics)
    metric_objs = build_metrics(registry, names, weights, chosen.name)
    objective = Model.load(checkpoint, device, registry=registry)
    file, size = objective.file, objective.image_size
    extractors = Extractors(registry, objective.runtime.device, batch_size, chosen.name)
    # Build the extractors now: a missing weights file is reported before any translation.
    for metric in metric_objs.values():
        if metric.uses == "features":
            extractors.get(metric)
    step = objective.step
    per_class: dict[str, int] = {}  # real images per class (a class-conditional generator)
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
        log(
            f"evaluating {file.name} (step {step}) on {counted} images at {size} px: {', '.join(names)} "
            f"(protocol {chosen.name})"
        )
        results = {
            name: evaluate_direction(
                objective, images[d.source], images[d.target], name, metric_objs, extractors, batch_size
            )
            for name, d in objective.directions.items()
        }
        if len(results) > 1:
            results[MEAN] = mean_over(results)
        counts = {k: len(v) for k, v in images.items()}
    elif objective.generates and objective.classes and objective.condition_kind == "class":
        if len(data) != 1:
            raise GanforgeError(
                f"{file}: a class-conditional generator needs one folder with a sub-folder of real images "
                f"per class: --data DIR (got {len(data)})"
            )
        real, labels, notes = load_class_folders(data[0], objective.classes, size, max_images)
        per_class = {
            c: int((labels == i).sum()) for i, c in enumerate(objective.classes) if (labels == i).any()
        }
        log(
            f"evaluating {file.name} (step {step}): {len(per_class)} classes, {len(real)} real images and as "
            f"many samples at {size} px: {', '.join(names)} (protocol {chosen.name})"
        )
        for note in notes:
            log(f"note: {note}")
        results, unscored = evaluate_classes(
            objective, real, labels, metric_objs, extractors, batch_size, seed
        )
        if unscored:
            log(f"note: class(es) {', '.join(unscored)} have fewer than 2 images: not scored")
        counts = {"real": len(real), "generated": len(real)}
    elif objective.generates:
        if len(data) != 1:
            raise GanforgeError(
                f"{file}: a generator checkpoint needs one folder of real images: --data DIR "
                f"(got {len(data)})"
            )
        real = load_folder(data[0], size, max_images, "--data DIR")
        log(
            f"evaluating {file.name} (step {step}): {len(real)} samples against {len(real)} real images at "
            f"{size} px: {', '.join(names)} (protocol {chosen.name})"
        )
        results = {
            "generated": evaluate_generation(objective, real, metric_objs, extractors, batch_size, seed)
        }
        counts = {"real": len(real), "generated": len(real)}
    else:
        raise GanforgeError(f"{file}: objective '{objective.name}' neither translates nor generates images")
    for note in protocol_notes(chosen, list(data), counts if objective.directions else {}, size):
        log(f"note: {note}")
    _fid_note(metric_objs, per_class or counts, log)
    routes = {name: (d.source, d.target) for name, d in objective.directions.items()}
    return EvalResult(
        str(file),
        step,
        objective.name,
        results,
        counts,
        routes,
        chosen.name,
        extractors.provenance(),
        per_class,
    )


def _fid_note(metric_objs: dict[str, Any], counts: dict[str, int], log: Callable[[str], None]) -> None:
    if "fid" in metric_objs and min(counts.values()) < 2048:
        log(
            f"note: FID from fewer than 2048 images ({min(counts.values())}) is biased upwards; compare runs "
            "only at equal image counts"
        )


def folder_features(
    folder: str | os.PathLike[str],
    extractor: Any,
    extractors: Extractors,
    chosen: Protocol,
    max_images: int = 0,
    what: str = "images",
) -> Tensor:
    """Features of a folder's images, each resized from its file by the protocol (streamed in batches)."""
    files = list_images(folder, what)
    size = getattr(extractor, "size", chosen.size)
    out: list[Tensor] = []
    batch: list[Tensor] = []
    used = 0
    for path in files:
        if max_images and used >= max_images:
            break
        img = try_open_rgb(path)
        if img is None:
            continue
        batch.append(resize_image(to_uint8_tensor(img), chosen.resize, size))
        used += 1
        if len(batch) == extractors.batch_size:
            out.append(extractors.features(extractor, torch.stack(batch).div_(255)))
            batch = []
    if batch:
        out.append(extractors.features(extractor, torch.stack(batch).div_(255)))
    if not out:
        raise GanforgeError(f"{what}: no readable images in {Path(folder).resolve()}")
    return torch.cat(out)


def evaluate_folders(
    real: str | os.PathLike[str],
    fake: str | os.PathLike[str],
    registry: Registry,
    metrics: Iterable[str] = ("fid", "kid"),
    weights: str = "",
    device: str = "auto",
    batch_size: int = 16,
    max_images: int = 0,
    log: Callable[[str], None] | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> EvalResult:
    """FID/KID between two folders of images (``ganforge eval --real DIR --fake DIR``)."""
    from ganforge.runtime import Runtime

    log = log or (lambda text: print(text, file=sys.stderr))
    chosen = get_protocol(protocol)
    max_images = _image_limit(chosen, max_images)
    names = parse_metric_names(metrics)
    metric_objs = build_metrics(registry, names, weights, chosen.name)
    paired = [n for n, m in metric_objs.items() if m.uses != "features"]
    if paired:
        raise GanforgeError(
            f"metric(s) {', '.join(paired)} need a translation model; --real/--fake compare distributions "
            "(e.g. --metrics fid,kid)"
        )
    extractors = Extractors(registry, Runtime.create(device).device, batch_size, chosen.name)
    keyed = {n: extractors.get(m) for n, m in metric_objs.items()}
    feats: dict[str, dict[tuple[str, str], Tensor]] = {"real": {}, "fake": {}}
    for side, folder in (("real", real), ("fake", fake)):
        for key, ext in {k: e for k, e in keyed.values()}.items():
            feats[side][key] = folder_features(folder, ext, extractors, chosen, max_images, f"--{side}")
    counts = {side: len(next(iter(f.values()))) for side, f in feats.items()}
    log(
        f"compared {counts['fake']} images of {Path(fake)} with {counts['real']} of {Path(real)}: "
        f"{', '.join(names)} (protocol {chosen.name})"
    )
    results: dict[str, float] = {}
    for name, metric in metric_objs.items():
        key = keyed[name][0]
        results.update(metric.compute(feats["real"][key], feats["fake"][key]))
    for note in protocol_notes(chosen, [str(real), str(fake)], counts, 0):
        log(f"note: {note}")
    _fid_note(metric_objs, counts, log)
    return EvalResult(
        "",
        0,
        "",
        {"fake": results},
        counts,
        {"fake": (str(real), str(fake))},
        chosen.name,
        extractors.provenance(),
    )
