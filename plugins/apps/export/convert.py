"""``ganforge convert``: weight files of other projects into ganforge's exported format.

Converters are plugins (kind ``converter``; ``ganforge list converters``): each reads one
project's file layout and says which bundled component rebuilds each network, with which
options. This module reads the file with ``torch.load(..., weights_only=True)`` only (one that
needs a full unpickle is refused), builds the networks, loads them strictly and writes the export.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganforge import protocols
from ganforge.errors import GanforgeError
from ganforge.recipe import parse_value
from ganforge.registry import Registry


@dataclass
class Converted:
    """One network a converter found: its direction, names, ganforge component and weights."""

    direction: str
    network: str  # the network's name in ganforge's objective of the same method
    source: str  # the batch keys (domains) it maps between
    target: str
    component: str  # the generator component that rebuilds it
    options: dict[str, Any]
    state: dict[str, torch.Tensor]
    image_size: int | None = None  # the training size, when the weights tell it


def read_state(path: str | os.PathLike[str]) -> Any:
    """A ``.pth`` file's contents through the weights-only unpickler; anything more is refused."""
    file = Path(path)
    if not file.is_file():
        raise GanforgeError(f"{file} not found")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler names the first global it refused (a class, a function).
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it holds {found.group(1)})" if found else ""
        raise GanforgeError(
            f"{file} needs a full unpickle to load{what}; ganforge reads plain state dicts only "
            "(torch.load with weights_only=True)"
        ) from None
    except Exception as exc:
        raise GanforgeError(f"{file}: not a readable PyTorch file ({type(exc).__name__})") from None


def state_tensors(state: Any, file: Path, what: str) -> dict[str, torch.Tensor]:
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise GanforgeError(f"{file}: expected {what} (a dict of tensors), got {type(state).__name__}")
    # Saved from DataParallel: every key starts with "module."
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _apply_overrides(options: dict[str, Any], overrides: list[str]) -> None:
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise GanforgeError(f"--set {item!r}: expected KEY=VALUE")
        options[key.strip()] = parse_value(raw.strip())


def convert_file(
    file: str | os.PathLike[str],
    source: str,
    out: str | os.PathLike[str],
    registry: Registry,
    direction: str | None = None,
    image_size: int | None = None,
    overrides: list[str] | None = None,
    force: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Convert one reference file into an export; returns (path, metadata written).

    The generator is rebuilt with ganforge's component and loaded strictly, so a layout that
    does not match is an error naming the differing keys, never a silent partial load.
    """
    from ganforge.model import Model, build_network, output_file
    from ganforge.runtime import Runtime

    converter = registry.build("converter", {"name": source}, "--from")
    path = Path(file)
    target = output_file(Path(out), force, [path])
    found = converter.convert(read_state(path), path, direction)
    inferred = next((c.image_size for c in found if c.image_size), None)
    if image_size is not None and inferred is not None and image_size != inferred:
        raise GanforgeError(f"--image-size {image_size}: the generator's MLP was sized for {inferred} px")
    size = image_size or inferred or 256
    networks: dict[str, Any] = {}
    modules = {}
    for item in found:
        component = registry.get("generator", item.component)
        opts = dict(item.options)
        if "image_size" in {p.name for p in registry.options(component)}:
            opts["image_size"] = size
        _apply_overrides(opts, overrides or [])
        spec = {
            "kind": "generator",
            "component": item.component,
            "options": opts,
            "context": {},
            "plugin": component.plugin,
            "distribution": component.distribution,
            "version": component.version,
        }
        net, _ = build_network(spec, registry, f"{path}: generator")
        result = net.load_state_dict(item.state, strict=False)
        # CUT keeps its blur filters as buffers; the official code's old files may hold instance
        # norm running stats (its own loader deletes them): neither is a weight.
        unexpected = [
            k
            for k in result.unexpected_keys
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        ]
        if result.missing_keys or unexpected:
            what = [f"missing {', '.join(result.missing_keys[:3])}"] if result.missing_keys else []
            what += [f"unexpected {', '.join(unexpected[:3])}"] if unexpected else []
            raise GanforgeError(
                f"{path}: does not match ganforge's {item.component} generator ({'; '.join(what)})"
            )
        spec.update(
            section="generator",
            ema=False,
            size_multiple=protocols.size_multiple(net),
            parameters=sum(p.numel() for p in net.parameters()),
        )
        networks[item.network] = spec
        modules[item.network] = net.eval()
    card = {
        "objective": converter.objective,
        "networks": networks,
        "directions": {
            c.direction: {
                "network": c.network,
                "source": c.source,
                "target": c.target,
                # the direction mapping back, when the file holds it too
                "inverse": next(
                    (o.direction for o in found if (o.source, o.target) == (c.target, c.source)), None
                ),
            }
            for c in found
        },
        "noise": None,
        "condition": None,
        "input": {"range": [-1.0, 1.0], "layout": "NCHW", "channels": 3},
        "output": {"range": [-1.0, 1.0], "layout": "NCHW"},
        "image_size": size,
        "size_multiple": max(n["size_multiple"] for n in networks.values()),
        "step": 0,
        "plugins": {
            f"generator/{s['component']}": f"{s['distribution']} {s['version']}" for s in networks.values()
        },
        "source": path.name,
        "converted_from": source,
    }
    Model(card, modules, Runtime.create("cpu", "fp32")).save(target)
    return target, card
