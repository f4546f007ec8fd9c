"""Rebuild a trained objective from a checkpoint alone: architecture from the saved recipe."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganforge import checkpoint as ckpt
from ganforge.errors import GanforgeError
from ganforge.objective import Objective
from ganforge.recipe import Builder, Recipe
from ganforge.registry import Registry
from ganforge.runtime import Runtime


def load_objective(
    path: str | os.PathLike[str], registry: Registry, device: str = "auto", precision: str = "auto"
) -> tuple[Objective, dict[str, Any], Path]:
    """(objective with trained inference weights, checkpoint meta, checkpoint file)."""
    file = ckpt.resolve(path)
    meta = ckpt.read_meta(file)
    recipe = meta.get("recipe")
    if not isinstance(recipe, dict):
        raise GanforgeError(f"{file}: checkpoint has no saved recipe")
    resolved = Recipe(recipe, f"{file} (saved recipe)").resolve(registry)
    train = resolved["train"]
    runtime = Runtime.create(device, precision, train["channels_last"])
    # No dataset outside training: schedules see a one-step run.
    builder = Builder(registry, resolved, seed=train["seed"], steps_per_epoch=1, total_steps=1)
    objective = builder.build("objective", builder=builder, runtime=runtime)
    state, _ = ckpt.load(file)
    try:
        objective.load_state_dict(state.get("objective"), inference_only=True)
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise GanforgeError(
            f"{file}: weights do not match the saved recipe ({str(exc).splitlines()[0]})"
        ) from None
    except GanforgeError as exc:
        raise GanforgeError(f"{file}: {exc}") from None
    return objective, meta, file


def image_size(meta: dict[str, Any]) -> int:
    """The square size a checkpoint's networks were trained at (256 when it does not say).

    Checkpoints since 0.2 record it; those of 0.1.0 only have it in their saved recipe.
    """
    size = meta.get("image_size")
    if size is None:
        data = (meta.get("recipe") or {}).get("data")
        size = data.get("image_size") if isinstance(data, dict) else None
    return int(size) if isinstance(size, int) and size > 0 else 256
