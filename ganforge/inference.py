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
    """(objective with trained inference weights, checkpoint meta, checkpoint file).

    ``path`` is a run folder, a checkpoint or a file written by ``ganforge export`` (then the
    objective is an :class:`ganforge.export.ExportedModel` with the same inference interface).
    """
    from ganforge.export import is_exported, load_exported

    file = ckpt.resolve(path)
    if is_exported(file):
        return load_exported(file, registry, device, precision)
    meta = ckpt.read_meta(file)
    recipe = meta.get("recipe")
    if not isinstance(recipe, dict):
        raise GanforgeError(f"{file}: checkpoint has no saved recipe")
    try:
        resolved = Recipe(recipe, f"{file} (saved recipe)").resolve(registry)
    except GanforgeError as exc:
        raise GanforgeError(_missing_plugin_hint(str(exc), meta, registry)) from None
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


def _missing_plugin_hint(message: str, meta: dict[str, Any], registry: Registry) -> str:
    """``message`` plus the distribution that provided each component the registry lacks.

    Checkpoints record ``plugins: {"kind/name": "distribution version"}`` for the recipe's
    components (``Trainer.meta``); older ones do not, and their message stays as it was.
    """
    plugins = meta.get("plugins")
    if not isinstance(plugins, dict):
        return message
    missing: list[tuple[str, str]] = []
    for key, provider in plugins.items():
        kind, _, name = str(key).partition("/")
        try:
            known = name in registry.names(kind)
        except GanforgeError:  # the kind itself is missing: so is the plugin that registers it
            known = False
        if not known:
            missing.append((f"{kind} '{name}'", str(provider)))
    if not missing:
        return message
    what = "; ".join(f"{c} was provided by {p}" for c, p in missing)
    dists = " ".join(dict.fromkeys(p.split()[0] for _, p in missing))
    return f"{message} ({what}: pip install {dists})"


def image_size(meta: dict[str, Any]) -> int:
    """The square size a checkpoint's networks were trained at (256 when it does not say).

    Checkpoints since 0.2 record it; those of 0.1.0 only have it in their saved recipe.
    """
    size = meta.get("image_size")
    if size is None:
        data = (meta.get("recipe") or {}).get("data")
        size = data.get("image_size") if isinstance(data, dict) else None
    return int(size) if isinstance(size, int) and size > 0 else 256
