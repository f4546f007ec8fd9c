"""Rebuild a trained objective from a checkpoint alone: architecture from the saved recipe."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganforge import checkpoint as ckpt
from ganforge.errors import GanforgeError
from ganforge.objective import Objective
from ganforge.recipe import Builder, Recipe
from ganforge.registry import Registry, describe_exception
from ganforge.runtime import Runtime


def build_saved(
    file: Path, meta: dict[str, Any], registry: Registry, device: str = "cpu", precision: str = "auto"
) -> Objective:
    """The objective a checkpoint's saved recipe describes, untrained, for inference."""
    try:
        resolved = Recipe(meta["recipe"], f"{file} (saved recipe)").resolve(registry)
    except GanforgeError as exc:
        raise GanforgeError(_missing_plugin_hint(str(exc), meta, registry)) from None
    train = resolved["train"]
    runtime = Runtime.create(device, precision, train["channels_last"])
    # No dataset outside training: schedules see a one-step run.
    builder = Builder(registry, resolved, seed=train["seed"], steps_per_epoch=1, total_steps=1)
    builder.inference = True  # networks need their weights only (no gradients, no moments)
    return builder.build("objective", builder=builder, runtime=runtime)


def load_objective(
    path: str | os.PathLike[str], registry: Registry, device: str = "auto", precision: str = "auto"
) -> tuple[Objective, dict[str, Any], Path]:
    """(objective with trained inference weights, checkpoint meta, checkpoint file).

    ``path`` is a run folder, a checkpoint or a file written by ``ganforge export`` (then the
    objective is the export app's ``ExportedModel``, with the same inference interface).
    Everything a checkpoint holds is checked before any weight is loaded
    (:func:`check_saved_state`), not only the inference networks: a damaged checkpoint is a
    one-line error from every command.
    """
    from ganforge_plugins.apps.export.export import is_exported, load_exported

    file = ckpt.resolve(path)
    if is_exported(file):
        return load_exported(file, registry, device, precision)
    meta = ckpt.read_run_meta(file)
    objective = build_saved(file, meta, registry, device, precision)
    state, _ = ckpt.load(file)
    check_saved_state(file, meta, state, objective, training=False)
    _load(objective, state["objective"], file, inference_only=True)
    return objective, meta, file


def verify_checkpoint(path: str | os.PathLike[str], registry: Registry) -> tuple[Path, dict[str, Any]]:
    """Check a run checkpoint whole, as ``--resume`` would, without training: (file, meta)."""
    file = ckpt.resolve(path)
    meta = ckpt.read_run_meta(file)
    state, _ = ckpt.load(file)
    check_saved_state(file, meta, state, build_saved(file, meta, registry), training=True)
    return file, meta


def check_saved_state(
    file: Path, meta: dict[str, Any], state: dict[str, Any], objective: Objective, training: bool
) -> None:
    """The checks every reader of a checkpoint runs before it uses any of it.

    The trainer's state (step against the metadata, RNG states) and every part of the objective
    (networks, optimizers, pools: names, shapes, dtypes, finite values) against what the saved
    recipe declares. ``training`` requires the whole training state; otherwise (inference) the
    inference networks are required and whatever else the file holds is checked too, so a
    file that holds only generators (converted weights) still translates.
    """
    from ganforge.trainer import check_state

    if training or "trainer" in state:
        problems = check_state(state, meta.get("world_size", 1))
        if problems:
            raise GanforgeError(f"{file}: the state does not fit a ganforge run: {problems[0]}")
        step = state["trainer"]["step"]
        if step != meta["step"]:
            raise GanforgeError(
                f"{file}: the state is at step {step} but the metadata says {meta['step']}; the file was "
                "changed after it was written"
            )
    problems = objective.check_state_dict(state.get("objective"), inference_only=not training)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GanforgeError(
            f"{file}: objective '{objective.name}' state does not match its parts: {problems[0]}{more}"
        )


def _load(objective: Objective, state: Any, file: Path, inference_only: bool) -> None:
    try:
        objective.load_state_dict(state, inference_only=inference_only)
    except GanforgeError as exc:
        raise type(exc)(f"{file}: {exc}") from None
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise GanforgeError(
            f"{file}: weights do not match the saved recipe ({describe_exception(exc)})"
        ) from None


def size_problem(objective: Objective, direction: str, side: int) -> str | None:
    """Why the network of ``direction`` cannot take images with sides of ``side`` px, or None
    (its ``check_image_size``, see :func:`ganforge.recipe.image_size_problem`)."""
    from ganforge.recipe import image_size_problem

    builder = objective.builder
    network = objective.declares.networks.get(objective.directions[direction].network)
    if builder is None or network is None:  # an export: no recipe to check against
        return None
    spec = builder.recipe.specs.get(network.section)
    return None if spec is None else image_size_problem(builder.registry, spec, side)


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
