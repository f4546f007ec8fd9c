"""``ganforge convert``: generators of the reference projects into ganforge's exported format.

The ``.pth`` files their users have are plain state dicts:

- ``official-cyclegan`` (junyanz/pytorch-CycleGAN-and-pix2pix): ``latest_net_G_A.pth`` (A->B)
  or ``latest_net_G_B.pth`` (B->A), a ``ResnetGenerator``; ganforge's ``resnet`` generator has
  the same module tree (norm instance or batch).
- ``cut`` (taesungp/contrastive-unpaired-translation): ``latest_net_G.pth``, its anti-aliased
  ``ResnetGenerator`` (``antialias=true`` in ganforge's ``resnet``); one trained with
  ``--no_antialias --no_antialias_up`` has the official layout.
- ``ugatit`` (znxlwm/UGATIT-pytorch): ``*_params_latest.pt``, a dict of state dicts of which
  ``genA2B`` and ``genB2A`` are the generators; ganforge's ``ugatit`` generator uses the same
  names, with ``variance="unbiased"`` for the reference's ``torch.var``.

Widths, block counts and channels are read from the tensor shapes. Files are read with
``torch.load(..., weights_only=True)`` only: one that needs a full unpickle is refused.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.recipe import parse_value
from ganforge.registry import Registry

SOURCES = ("official-cyclegan", "cut", "ugatit")
_OBJECTIVE = {"official-cyclegan": "cyclegan", "cut": "cut", "ugatit": "ugatit"}
_DOMAINS = {"a2b": ("A", "B"), "b2a": ("B", "A")}


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


def _tensors(state: Any, file: Path, what: str) -> dict[str, torch.Tensor]:
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


def _indices(state: dict[str, torch.Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := regex.fullmatch(k))})


def resnet_options(state: dict[str, torch.Tensor], source: str, file: Path) -> dict[str, Any]:
    """ganforge ``resnet`` options of an official CycleGAN or CUT ``ResnetGenerator`` state dict."""
    if "model.1.weight" not in state:
        raise GanforgeError(f"{file}: not a ResnetGenerator state dict (no model.1.weight)")
    first = state["model.1.weight"]
    ngf, in_channels = int(first.shape[0]), int(first.shape[1])
    blocks = len(_indices(state, r"model\.(\d+)\.conv_block\.1\.weight"))
    dropout = any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", k) for k in state)
    norm = "batch" if "model.2.weight" in state else "instance"
    last = max(_indices(state, r"model\.(\d+)\.weight"))
    out_channels = int(state[f"model.{last}.weight"].shape[0])
    blurs = {int(v.shape[-1]) for k, v in state.items() if k.endswith(".filt")}
    if source == "official-cyclegan" and blurs:
        raise GanforgeError(f"{file}: has CUT's blur filters (.filt); convert it with --from cut")
    if blurs and blurs != {3, 4}:
        raise GanforgeError(
            f"{file}: CUT generator with only {'down' if 3 in blurs else 'up'}sampling anti-aliased "
            "(--no_antialias_up or --no_antialias); ganforge's resnet has both or neither"
        )
    return {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "ngf": ngf,
        "blocks": blocks,
        "norm": norm,
        "dropout": dropout,
        "upsample": "transpose",
        "antialias": bool(blurs),
        "init": "none",
    }


def ugatit_options(state: dict[str, torch.Tensor], file: Path) -> tuple[dict[str, Any], int | None]:
    """(ganforge ``ugatit`` options, the image size when the MLP tells it) of a reference generator."""
    if "DownBlock.1.weight" not in state or "FC.0.weight" not in state:
        raise GanforgeError(f"{file}: not a U-GAT-IT generator state dict (no DownBlock.1.weight)")
    first = state["DownBlock.1.weight"]
    ngf, in_channels = int(first.shape[0]), int(first.shape[1])
    dim = ngf * 4
    blocks = len(_indices(state, r"UpBlock1_(\d+)\.conv1\.weight"))
    last = max(_indices(state, r"UpBlock2\.(\d+)\.weight"))
    out_channels = int(state[f"UpBlock2.{last}.weight"].shape[0])
    mlp_in = int(state["FC.0.weight"].shape[1])
    light = mlp_in == dim
    size = None
    if not light:
        side = round((mlp_in / dim) ** 0.5)
        if side * side * dim != mlp_in:
            raise GanforgeError(f"{file}: FC.0 reads {mlp_in} values, not a square map of {dim} channels")
        size = side * 4
    options = {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "ngf": ngf,
        "blocks": blocks,
        "image_size": size or 256,
        "light": light,
        "variance": "unbiased",
        "init": "none",
    }
    return options, size


def _network_name(source: str, direction: str) -> str:
    """The network's name in ganforge's objective of the same method (CUT's one generator is G)."""
    if source == "cut":
        return "G"
    return "G_AB" if direction == "a2b" else "G_BA"


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
    import ganforge
    from ganforge.export import _target, build_network, write_safetensors

    if source not in SOURCES:
        raise GanforgeError(f"--from must be one of {', '.join(SOURCES)}, got {source!r}")
    if direction is not None and direction not in _DOMAINS:
        raise GanforgeError(f"--direction must be a2b or b2a, got {direction!r}")
    path = Path(file)
    target = _target(out, force)
    raw = read_state(path)
    if source == "ugatit":
        if not isinstance(raw, dict) or "genA2B" not in raw or "genB2A" not in raw:
            raise GanforgeError(f"{path}: a U-GAT-IT params file holds genA2B and genB2A; this one does not")
        wanted = [direction] if direction else ["a2b", "b2a"]
        states = {d: _tensors(raw["genA2B" if d == "a2b" else "genB2A"], path, "a generator") for d in wanted}
        kind_name = "ugatit"
        found = {d: ugatit_options(s, path) for d, s in states.items()}
        options = {d: o for d, (o, _) in found.items()}
        inferred = next((size for _, size in found.values() if size), None)
    else:
        d = direction or ("b2a" if re.search(r"G_B\b|G_B[._]", path.name) else "a2b")
        wanted = [d]
        states = {d: _tensors(raw, path, "a generator state dict")}
        kind_name = "resnet"
        options = {d: resnet_options(states[d], source, path)}
        inferred = None
    if image_size is not None and inferred is not None and image_size != inferred:
        raise GanforgeError(f"--image-size {image_size}: the generator's MLP was sized for {inferred} px")
    size = image_size or inferred or 256
    networks: dict[str, Any] = {}
    modules = {}
    component = registry.get("generator", kind_name)
    for d in wanted:
        opts = options[d]
        if kind_name == "ugatit":
            opts["image_size"] = size
        _apply_overrides(opts, overrides or [])
        name = _network_name(source, d)
        spec = {
            "kind": "generator",
            "component": kind_name,
            "options": opts,
            "context": {},
            "plugin": component.plugin,
            "distribution": component.distribution,
            "version": component.version,
        }
        net = build_network(spec, registry, f"{path}: generator")
        result = net.load_state_dict(states[d], strict=False)
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
                f"{path}: does not match ganforge's {kind_name} generator ({'; '.join(what)})"
            )
        spec.update(
            section="generator",
            ema=False,
            size_multiple=int(getattr(net, "size_multiple", 1)),
            parameters=sum(p.numel() for p in net.parameters()),
        )
        networks[name] = spec
        modules[name] = net
    both = len(wanted) == 2
    info = {
        "format": "ganforge-export/1",
        "ganforge": ganforge.__version__,
        "torch": torch.__version__,
        "objective": _OBJECTIVE[source],
        "networks": networks,
        "directions": {
            d: {
                "network": _network_name(source, d),
                "source": _DOMAINS[d][0],
                "target": _DOMAINS[d][1],
                "inverse": ("b2a" if d == "a2b" else "a2b") if both else None,
            }
            for d in wanted
        },
        "noise": None,
        "input": {"range": [-1.0, 1.0], "layout": "NCHW", "channels": 3},
        "output": {"range": [-1.0, 1.0], "layout": "NCHW"},
        "image_size": size,
        "size_multiple": max(n["size_multiple"] for n in networks.values()),
        "dtype": "fp32",
        "step": 0,
        "plugins": {f"generator/{kind_name}": f"{component.distribution} {component.version}"},
        "source": path.name,
        "converted_from": source,
    }
    write_safetensors(target, info, modules, "fp32")
    return target, info
