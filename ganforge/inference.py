"""Rebuild a trained objective from a checkpoint alone: architecture from the saved recipe."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganforge import checkpoint as ckpt
from ganforge import recipe as recipe_mod
from ganforge.errors import GanforgeError
from ganforge.registry import Registry
from ganforge.runtime import Runtime


def _inference_builder(resolved: dict[str, Any], registry: Registry) -> Any:
    """``build(section)`` for objectives outside training (no dataset, one step long)."""
    defaults = {"steps_per_epoch": 1, "total_steps": 1, "seed": resolved["train"]["seed"]}

    def build(section: str, **context: Any) -> Any:
        return recipe_mod.build_section(registry, resolved, section, **{**defaults, **context})

    return build


def load_objective(
    path: str | os.PathLike[str], registry: Registry, device: str = "auto", precision: str = "auto"
) -> tuple[Any, dict[str, Any], Path]:
    """(objective with trained generator weights, checkpoint meta, checkpoint file)."""
    file = ckpt.resolve(path)
    meta = ckpt.read_meta(file)
    if "recipe" not in meta:
        raise GanforgeError(f"{file}: checkpoint has no saved recipe")
    resolved = recipe_mod.Recipe(meta["recipe"], f"{file} (saved recipe)").resolve(registry)
    train = resolved["train"]
    runtime = Runtime.create(device, precision, train["channels_last"])
    objective = registry.build(
        "objective",
        resolved["objective"],
        "[objective]",
        recipe=resolved,
        build=_inference_builder(resolved, registry),
        runtime=runtime,
    )
    state, _ = ckpt.load(file)
    try:
        objective.load_state_dict(state["objective"], inference_only=True)
    except (KeyError, RuntimeError) as exc:
        raise GanforgeError(
            f"{file}: weights do not match the saved recipe ({str(exc).splitlines()[0]})"
        ) from None
    return objective, meta, file
