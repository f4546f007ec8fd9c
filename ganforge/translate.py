"""``ganforge translate``: files or folders of any size through a trained translation model."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ganforge.data import expand_inputs, open_rgb, to_uint8_tensor
from ganforge.errors import GanforgeError
from ganforge.inference import load_objective
from ganforge.registry import Registry


def _model_size(img: Image.Image, size: int) -> tuple[int, int]:
    if size > 0:
        return size, size
    return max(4, img.width // 4 * 4), max(4, img.height // 4 * 4)  # the generators downsample by 4


def _to_pil(t: torch.Tensor) -> Image.Image:
    array = t.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def _unique(out: Path, stem: str, used: set[str]) -> Path:
    name, i = stem, 1
    while name in used:
        name, i = f"{stem}-{i}", i + 1
    used.add(name)
    return out / f"{name}.png"


def translate_files(
    checkpoint: str,
    inputs: list[str],
    out: Path,
    registry: Registry,
    direction: str = "a2b",
    device: str = "auto",
    batch_size: int = 16,
    size: int | None = None,
    composite: str | None = None,
    feather: int | None = None,
    save_mask: bool = False,
) -> list[str]:
    """Translate every image; returns the inputs that failed (each reported on one line)."""
    objective, meta, _ = load_objective(checkpoint, registry, device)
    if not hasattr(objective, "translate"):
        raise GanforgeError(
            f"{checkpoint}: objective '{meta['objective']}' does not translate images "
            "(use 'ganforge sample' for generators)"
        )
    recipe = meta["recipe"]
    size = recipe.get("data", {}).get("image_size", 256) if size is None else size
    compositor = _compositor(recipe, registry, composite, feather)
    runtime = objective.runtime
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    used: set[str] = set()
    pending: list[tuple[Path, Image.Image]] = []

    def model(images: list[Image.Image]) -> list[Image.Image]:
        # Same-size images share a batch on the device.
        shapes = {_model_size(img, size) for img in images}
        results: dict[int, Image.Image] = {}
        for shape in shapes:
            idx = [i for i, img in enumerate(images) if _model_size(img, size) == shape]
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                x = torch.stack([to_uint8_tensor(images[i].resize(shape, Image.BICUBIC)) for i in chunk])
                y = objective.translate(runtime.to_input(x), direction)
                for i, t in zip(chunk, y):
                    results[i] = _to_pil(t)
        return [results[i] for i in range(len(images))]

    def flush() -> None:
        if not pending:
            return
        if compositor is None:
            outputs = model([img for _, img in pending])
            for (path, img), result in zip(pending, outputs):
                result.resize(img.size, Image.BICUBIC).save(_unique(out, path.stem, used))
        else:
            for path, img in pending:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result, mask = compositor.composite(
                        img, lambda im: model([im])[0], compositor.mask_provider, name=str(path)
                    )
                for w in caught:  # e.g. no face found: the photo comes back unchanged
                    print(f"warning: {' '.join(str(w.message).split())}", file=sys.stderr)
                target = _unique(out, path.stem, used)
                result.save(target)
                if save_mask and mask is not None:
                    _to_mask_image(mask).save(target.with_name(f"{target.stem}.mask.png"))
        pending.clear()

    files = expand_inputs(inputs)
    if not files:
        raise GanforgeError(f"no images found in {', '.join(inputs)}")
    for path in files:
        try:
            if not path.exists():
                raise GanforgeError(f"{path}: no such file")
            pending.append((path, open_rgb(path)))
        except GanforgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures.append(str(path))
            continue
        if len(pending) >= batch_size:
            flush()
    flush()
    done = len(files) - len(failures)
    print(
        f"translated {done} image(s) {direction} into {out}"
        + (f"; {len(failures)} failed" if failures else ""),
        file=sys.stderr,
    )
    return failures


def _to_mask_image(mask: torch.Tensor) -> Image.Image:
    return Image.fromarray(mask.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy(), mode="L")


def _compositor(recipe: dict[str, Any], registry: Registry, name: str | None, feather: int | None) -> Any:
    """The compositor from the recipe's [compositor], with --composite and --feather on top.

    ``--composite NAME`` names a compositor, or a mask provider for the recipe's compositor
    (``mask-paste`` when the recipe declares none).
    """
    table: dict[str, Any] | None = dict(recipe["compositor"]) if recipe.get("compositor") else None
    if name is not None:
        if name in registry.names("compositor"):
            table = {"name": name}
        else:
            registry.get("mask_provider", name, "--composite")
            if table is None or table.get("mask") != name:
                table = {k: v for k, v in (table or {"name": "mask-paste"}).items() if k != "mask_options"}
            table["mask"] = name
    if table is None:
        return None
    if feather is not None:
        table["feather"] = feather
    compositor = registry.build("compositor", table, "--composite" if name else "[compositor]")
    if not hasattr(compositor, "composite"):
        raise GanforgeError(f"compositor '{table['name']}' has no composite() method")
    return compositor
