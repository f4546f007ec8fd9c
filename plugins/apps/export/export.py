"""``ganforge export``: a model's inference networks alone, as safetensors or ONNX.

A safetensors export is :meth:`ganforge.Model.save`: only what inference needs (the directions'
generators, their moving averages when the run kept them, or the noise-to-image generator), each
tensor checksummed, and in the header the model card: everything to rebuild it with no flag
repeated (components, options, plugins, directions, the condition and its class names, the
training size). ``translate``, ``sample``, ``eval``, ``demo`` and ``ganforge.load`` take such a
file wherever they take a run. ONNX is this app's ``exporter`` component (kind registered here):
one direction, dynamic batch/height/width, the condition (a class or domain index) as a second
input when the model has one, the card in the metadata.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.model import DTYPES, EXPORT_FORMATS, Model, atomic_write

FORMAT = "ganforge-export/2"
FORMATS = ("safetensors", "onnx")


def read_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The model card of an exported file, or None when ``path`` is not one (reads the header)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception:  # not safetensors at all: the caller decides what it is
        return None
    if header.get("format") not in EXPORT_FORMATS:
        return None
    try:
        card = json.loads(header["ganforge"])
    except (KeyError, ValueError):
        raise GanforgeError(f"{path}: an exported file without readable metadata") from None
    return card if isinstance(card, dict) else None


class _Conditioned(nn.Module):
    """``net(x, label)`` as one graph with two inputs (ONNX has no optional arguments)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.net(x, label)


class ONNXExporter:
    """ONNX (opset 18) of one direction or of the noise generator, checked with onnxruntime by the
    tests; the model card is in the metadata (``ganforge``)."""

    def write(self, model: Model, path: Path, directions: list[str], dtype: str) -> dict[str, Any]:
        if dtype == "bf16":
            raise GanforgeError("ONNX export supports --dtype fp32 or fp16 (onnxruntime has no bf16 kernels)")
        try:
            import onnx
        except ImportError:
            raise GanforgeError("ONNX export needs the onnx package: pip install 'ganforge[onnx]'") from None
        if model.directions:
            chosen = [model.direction(d) for d in directions] or [model.direction(None)]
            if len(set(chosen)) > 1:
                raise GanforgeError("an ONNX export holds one direction: give one --direction")
        else:
            chosen = []
        card, networks = model.subset(chosen)
        card.update(format=FORMAT, dtype=dtype)
        (name,) = networks
        net: nn.Module = copy.deepcopy(networks[name]).to("cpu", DTYPES[dtype]).eval()
        conditioned = name in (card.get("condition") or {}).get("networks", [])
        if not chosen:
            example = torch.randn(1, model.latent_dim)
            names, axes = ["z"], {"z": {0: "batch"}, "images": {0: "batch"}}
            output = "images"
        else:
            m = max(1, int(card.get("size_multiple") or 1))
            side = max(m, model.image_size // m * m)
            example = torch.rand(1, 3, side, side) * 2 - 1
            dims = {0: "batch", 2: "height", 3: "width"}
            names, axes, output = ["images"], {"images": dims, "translated": dims}, "translated"
        args: tuple[torch.Tensor, ...] = (example.to(DTYPES[dtype]),)
        if conditioned:
            net = _Conditioned(net)
            args = (*args, torch.zeros(1, dtype=torch.int64))
            names = [*names, "label"]
            axes["label"] = {0: "batch"}

        def write(tmp: str) -> None:
            # The TorchScript exporter: a second per network on CPU (the dynamo one takes tens) and
            # reflection padding and instance norm export as ONNX Pad and InstanceNormalization.
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                try:
                    torch.onnx.export(
                        net,
                        args,
                        tmp,
                        input_names=names,
                        output_names=[output],
                        dynamic_axes=axes,
                        opset_version=18,
                        dynamo=False,
                    )
                except OSError:
                    raise  # a full disk or a read-only folder: atomic_write names the file
                except Exception as exc:
                    first = str(exc).splitlines()[0] if str(exc) else ""
                    raise GanforgeError(f"ONNX export failed: {type(exc).__name__}: {first}") from None
            graph = onnx.load(tmp)
            for key, value in (("ganforge", json.dumps(card)), ("format", FORMAT)):
                entry = graph.metadata_props.add()
                entry.key, entry.value = key, value
            onnx.save(graph, tmp)

        atomic_write(path, write)
        return card


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    format: str = "safetensors",
    directions: Iterable[str] | None = None,
    dtype: str = "fp32",
    force: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Export a run, checkpoint or exported file to ``out``; returns (path, the card written)."""
    if format not in FORMATS:
        raise GanforgeError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if dtype not in DTYPES:
        raise GanforgeError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    model = Model.load(checkpoint, "cpu", "fp32")
    wanted = [d.strip() for item in (directions or ()) for d in str(item).split(",") if d.strip()]
    if wanted and not model.directions:
        raise GanforgeError(f"model '{model.name}' generates from noise: it has no directions")
    if not model.directions and not model.generates:
        raise GanforgeError(f"model '{model.name}' neither translates nor generates images")
    path = model.export(out, format, wanted or None, dtype, force)
    card = read_header(path) if format == "safetensors" else _onnx_card(path)
    return path, card or {}


def _onnx_card(path: Path) -> dict[str, Any] | None:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props["ganforge"]) if "ganforge" in props else None


def size_text(n_bytes: int) -> str:
    """``45.5 MB`` (decimal megabytes, as file managers show them)."""
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} kB"
