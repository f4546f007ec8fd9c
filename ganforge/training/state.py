"""Checks of checkpoint state against what is live, before any state is touched: each problem
names its key (``objective/G_AB/model.1.bias``), for a one-line error, never a half-loaded model."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

# Sample positions (step * world size * batch + ...) are int64 in the samplers: a run stops before
# this many (the trainer refuses a plan past it), so no saved step or epoch can reach it.
MAX_SAMPLE_POSITIONS = 2**62


def kind_of(value: Any) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    return {dict: "a table", list: "a list", tuple: "a tuple", str: "a string"}.get(
        type(value), type(value).__name__
    )


def compare_tensors(expected: dict[str, Tensor], given: Any, where: str) -> list[str]:
    """Names, shapes and dtypes of a network's saved tensors against the live network's."""
    if not isinstance(given, dict):
        return [f"{where} is {kind_of(given)}, not a table of tensors"]
    missing = [k for k in expected if k not in given]
    extra = [k for k in given if k not in expected]
    problems = [_listed(w, where, keys) for w, keys in (("missing", missing), ("unexpected", extra)) if keys]
    for key, live in expected.items():
        saved = given.get(key)
        if key not in given:
            continue
        if not isinstance(saved, Tensor):
            problems.append(f"{where}/{key} is {kind_of(saved)}, not a tensor")
        elif tuple(saved.shape) != tuple(live.shape):
            problems.append(
                f"{where}/{key} has shape {list(saved.shape)}, the network has {list(live.shape)}"
            )
        elif saved.dtype != live.dtype:
            problems.append(f"{where}/{key} is {_dtype(saved)}, the network has {_dtype(live)}")
    return problems


def _listed(word: str, where: str, keys: list[str]) -> str:
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return f"{word} {', '.join(f'{where}/{k}' for k in keys[:3])}{more}"


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def check_optimizer_state(optimizer: torch.optim.Optimizer, given: Any, where: str) -> list[str]:
    """An optimizer's saved groups and per-parameter state against its live parameters."""
    if not isinstance(given, dict) or not isinstance(given.get("state"), dict):
        return [f"{where} is not an optimizer state (a table with 'state' and 'param_groups')"]
    groups = given.get("param_groups")
    live_groups = optimizer.param_groups
    if not isinstance(groups, list) or len(groups) != len(live_groups):
        count = len(groups) if isinstance(groups, list) else kind_of(groups)
        return [f"{where}/param_groups: {count} groups saved, the optimizer has {len(live_groups)}"]
    params: dict[int, Tensor] = {}
    for i, (group, live) in enumerate(zip(groups, live_groups)):
        ids = group.get("params") if isinstance(group, dict) else None
        if not isinstance(ids, list) or len(ids) != len(live["params"]):
            return [f"{where}/param_groups/{i}: not the {len(live['params'])} parameters of the optimizer"]
        for pid, p in zip(ids, live["params"]):
            if not isinstance(pid, int) or isinstance(pid, bool):
                return [f"{where}/param_groups/{i}: parameter id {pid!r} is not an int"]
            params[pid] = p
    for pid, entry in given["state"].items():
        if pid not in params:
            return [f"{where}/state/{pid}: no such parameter"]
        if not isinstance(entry, dict):
            return [f"{where}/state/{pid} is {kind_of(entry)}, not a table"]
        shape = tuple(params[pid].shape)
        for key, value in entry.items():
            if not isinstance(value, Tensor) or value.dim() == 0:
                continue
            if tuple(value.shape) != shape:
                return [
                    f"{where}/state/{pid}/{key} has shape {list(value.shape)}, its parameter {list(shape)}"
                ]
            if not value.is_floating_point():
                return [f"{where}/state/{pid}/{key} is {_dtype(value)}, not floating"]
    return []


def check_state(state: Any, world_size: int | None = None) -> list[str]:
    """Problems with the trainer's part of a checkpoint state (empty: it fits): a whole ``step``
    and ``epoch`` in [0, 2**62), RNG states, ``objective`` and ``callbacks`` tables and, in a DDP
    checkpoint, one ``ranks`` entry per process."""
    if not isinstance(state, dict):
        return ["the state is not a table"]
    if missing := [k for k in ("trainer", "rng", "objective") if k not in state]:
        return [f"missing {', '.join(missing)}"]
    trainer = state["trainer"]
    if not isinstance(trainer, dict):
        return ["trainer is not a table"]
    for key in ("step", "epoch"):
        value = trainer.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return [f"trainer/{key} must be a whole number >= 0, got {value!r}"]
        if value >= MAX_SAMPLE_POSITIONS:  # even at batch 1: more sample positions than int64 holds
            return [f"trainer/{key} {value:,} is impossible (a run stops before 2**62 sample positions)"]
    problems = _check_rng(state["rng"], "rng")
    callbacks = state.get("callbacks", {})
    if not isinstance(callbacks, dict) or not all(isinstance(v, dict) for v in callbacks.values()):
        problems.append("callbacks is not a table of tables")
    ranks = state.get("ranks")
    if ranks is not None or (world_size or 1) > 1:
        if not isinstance(ranks, dict) or (world_size and set(ranks) != {str(r) for r in range(world_size)}):
            problems.append(f"ranks must hold one entry per process ({world_size})")
        else:
            for r, entry in ranks.items():
                if not isinstance(entry, dict) or not isinstance(entry.get("objective"), dict):
                    problems.append(f"ranks/{r} is not a table with 'rng' and 'objective'")
                else:
                    problems += _check_rng(entry.get("rng"), f"ranks/{r}/rng")
    return problems


def _check_rng(rng: Any, where: str) -> list[str]:
    if not isinstance(rng, dict):
        return [f"{where} is not a table"]
    cpu = rng.get("cpu")
    if not isinstance(cpu, torch.Tensor) or cpu.dtype != torch.uint8 or cpu.dim() != 1:
        return [f"{where}/cpu must be the CPU generator's uint8 state"]
    py = rng.get("python")
    whole = isinstance(py, list) and len(py) == 3 and isinstance(py[1], list)
    if py is not None and not (whole and all(type(v) is int for v in py[1])):  # not bool
        return [f"{where}/python is not Python's random state"]
    cuda = rng.get("cuda")
    if cuda is not None and (not isinstance(cuda, torch.Tensor) or cuda.dtype != torch.uint8):
        return [f"{where}/cuda must be uint8 generator states"]
    return []
