"""``ganforge export``: a run's inference networks alone, as safetensors or ONNX.

A safetensors export holds only what inference needs (the direction's generator, its moving
average when the run kept one, or the noise-to-image generator) and, in its header, everything
to rebuild it with no flag repeated: the component (kind, name, resolved options, the plugin
and distribution that provided it), the objective's name, the directions with their domains,
the input normalisation, the training image size, the size multiple and the latent size.
``translate``, ``sample``, ``eval`` and ``ganforge.load`` take such a file wherever they take a
run: :func:`load_exported` returns an :class:`ExportedModel`, which has the inference interface
of an objective.

The header's ``format`` is :data:`FORMAT` and its ``ganforge`` entry is the JSON of
:func:`describe`'s schema (docs/python.md, "The exported file").
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.objective import Declaration, Direction, Network, Objective
from ganforge.registry import Registry
from ganforge.runtime import Runtime

FORMAT = "ganforge-export/1"
FORMATS = ("safetensors", "onnx")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_SEP = "/"  # tensor keys: <network>/<parameter name>


# -- reading ---------------------------------------------------------------------------------------


def read_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The export metadata of ``path``, or None when it is not a ganforge export (cheap: the header)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception:  # not safetensors at all: the caller decides what it is
        return None
    if header.get("format") != FORMAT:
        return None
    try:
        meta = json.loads(header["ganforge"])
    except (KeyError, ValueError):
        raise GanforgeError(f"{path}: a '{FORMAT}' file without readable metadata") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("networks"), dict):
        raise GanforgeError(f"{path}: a '{FORMAT}' file whose metadata names no networks")
    return meta


def is_exported(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file written by ``ganforge export`` (or ``ganforge convert``)."""
    return Path(path).is_file() and read_header(path) is not None


class ExportedModel(Objective):
    """An inference-only model rebuilt from an exported file.

    It has the inference interface of an objective (``name``, ``runtime``, ``directions``,
    ``direction(name)``, ``size_multiple(direction)``, ``translate(images, direction)``,
    ``generates``, ``latent_dim``, ``noise``, ``generate``, ``sample_grid``), so the commands
    and the Python API use it exactly like a checkpoint's objective; it has no optimizers and
    cannot train.
    """

    def __init__(self, name: str, runtime: Runtime, networks: dict[str, nn.Module], meta: dict[str, Any]):
        # No Objective.__init__: there is no recipe to build from, only finished networks.
        directions = {
            d: Direction(spec["network"], spec["source"], spec["target"], spec.get("inverse"))
            for d, spec in (meta.get("directions") or {}).items()
        }
        noise = (meta.get("noise") or {}).get("network")
        self.declares = Declaration(  # type: ignore[misc]  # per instance: what the file holds
            networks={n: Network(meta["networks"][n]["kind"], inference=True) for n in networks},
            directions=directions,
            noise=noise,
        )
        self.name = name
        self.runtime = runtime
        self.builder = None
        self.meta = meta
        self._nets = dict(networks)
        self._ema: dict[str, nn.Module] = {}
        self.ema_decay = 0.0
        self.parts: dict[str, Any] = {}
        self.augment = None
        self.scaler = None
        self.optimizers = {}
        self._compiled: dict[str, nn.Module] = {}
        self._fixed_noise = None
        for net_name, net in networks.items():
            setattr(self, net_name, net)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        raise GanforgeError(f"an exported model of '{self.name}' cannot train (resume from its run instead)")


def load_exported(
    path: str | os.PathLike[str], registry: Registry, device: str = "auto", precision: str = "auto"
) -> tuple[ExportedModel, dict[str, Any], Path]:
    """(model, checkpoint-like meta, file) for an exported file: what ``load_objective`` returns.

    Each network is rebuilt from its component (which must be installed: the error names the
    distribution that provided it) and gets its weights strictly, in float32.
    """
    from safetensors.torch import load_file

    file = Path(path)
    meta = read_header(file)
    if meta is None:
        raise GanforgeError(f"{file} is not a ganforge export (no '{FORMAT}' header)")
    try:
        tensors = load_file(str(file))
    except Exception as exc:
        raise GanforgeError(f"{file}: truncated or corrupt ({type(exc).__name__})") from None
    runtime = Runtime.create(device, precision, True)
    networks: dict[str, nn.Module] = {}
    for name, spec in meta["networks"].items():
        net = build_network(spec, registry, f"{file}: network '{name}'")
        prefix = name + _SEP
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        except RuntimeError as exc:
            raise GanforgeError(
                f"{file}: weights of '{name}' do not fit {spec['kind']} '{spec['component']}' "
                f"({str(exc).splitlines()[0]})"
            ) from None
        net.requires_grad_(False)
        networks[name] = runtime.prepare(net.eval(), trainable=False)
    model = ExportedModel(str(meta.get("objective", "exported")), runtime, networks, meta)
    # What the commands read from a checkpoint's meta: no recipe (so no compositor), the size.
    compat = {
        "recipe": {},
        "image_size": meta.get("image_size"),
        "step": meta.get("step", 0),
        "objective": model.name,
        "export": meta,
    }
    return model, compat, file


def build_network(spec: dict[str, Any], registry: Registry, where: str) -> nn.Module:
    """A network from an export's component entry; a missing plugin names its distribution."""
    kind, component = spec.get("kind"), spec.get("component")
    try:
        found = registry.get(kind, component)
    except GanforgeError:
        provider = spec.get("distribution") or "an unknown distribution"
        version = f" {spec['version']}" if spec.get("version") else ""
        raise GanforgeError(
            f"{where} is {kind} '{component}' from {provider}{version} (plugin '{spec.get('plugin', '?')}'), "
            f"which is not installed here: pip install {provider}"
        ) from None
    options = registry.validate(kind, {"name": found.name, **(spec.get("options") or {})}, where)
    context = spec.get("context") or {}
    return registry.create(found, options, where, **context)


# -- writing ---------------------------------------------------------------------------------------


def _spec_table(resolved: dict[str, Any], section: str) -> dict[str, Any]:
    node: Any = resolved
    for part in section.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return dict(node) if isinstance(node, dict) else {}


def describe(
    objective: Objective, meta: dict[str, Any], directions: list[str], dtype: str
) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """(export metadata, networks to write by name) for ``directions`` of a loaded objective.

    A generator (no directions) exports its noise network.
    """
    import ganforge

    recipe = objective.builder.recipe
    names: list[str] = []
    for d in directions:
        net = objective.directions[d].network
        if net not in names:
            names.append(net)
    if objective.generates and not directions:
        names = [objective.declares.noise]  # type: ignore[list-item]
    networks: dict[str, dict[str, Any]] = {}
    modules: dict[str, nn.Module] = {}
    for name in names:
        section = objective.declares.networks[name].section
        spec = recipe.specs[section]
        net = objective.inference_network(name)
        table = _spec_table(recipe, section)
        table.pop("name", None)
        context = {k: v for k, v in objective.network_context(name).items() if k in spec.component.context}
        try:
            json.dumps(context)
        except TypeError:
            raise GanforgeError(
                f"network '{name}' is built with context {sorted(context)} that cannot be saved in an export"
            ) from None
        networks[name] = {
            "kind": spec.component.kind,
            "component": spec.component.name,
            "options": table,
            "context": context,
            "plugin": spec.component.plugin,
            "distribution": spec.component.distribution,
            "version": spec.component.version,
            "section": section,
            "ema": name in objective._ema,
            "size_multiple": int(getattr(net, "size_multiple", 1)),
            "parameters": sum(p.numel() for p in net.parameters()),
        }
        modules[name] = net
    chosen = {
        d: {
            "network": objective.directions[d].network,
            "source": objective.directions[d].source,
            "target": objective.directions[d].target,
            # the way back only when it is in the file too
            "inverse": objective.directions[d].inverse
            if objective.directions[d].inverse in directions
            else None,
        }
        for d in directions
    }
    from ganforge.inference import image_size

    objective_spec = recipe.specs.get("objective")
    plugins = {
        f"{n['kind']}/{n['component']}": f"{n['distribution']} {n['version']}" for n in networks.values()
    }
    if objective_spec is not None:
        c = objective_spec.component
        plugins[f"objective/{c.name}"] = f"{c.distribution} {c.version}"
    info: dict[str, Any] = {
        "format": FORMAT,
        "ganforge": ganforge.__version__,
        "torch": torch.__version__,
        "objective": objective.name,
        "networks": networks,
        "directions": chosen,
        "noise": (
            {"network": objective.declares.noise, "latent_dim": objective.latent_dim}
            if objective.generates and not directions
            else None
        ),
        "input": {"range": [-1.0, 1.0], "layout": "NCHW", "channels": 3},
        "output": {"range": [-1.0, 1.0], "layout": "NCHW"},
        "image_size": image_size(meta),
        "size_multiple": max((n["size_multiple"] for n in networks.values()), default=1),
        "dtype": dtype,
        "step": int(meta.get("step", 0)),
        "plugins": plugins,
    }
    return info, modules


def _choose_directions(objective: Objective, directions: Iterable[str] | None, fmt: str) -> list[str]:
    wanted = [d for item in (directions or ()) for d in str(item).split(",") if d.strip()]
    if not objective.directions:
        if wanted:
            raise GanforgeError(f"objective '{objective.name}' generates from noise: it has no directions")
        if not objective.generates:
            raise GanforgeError(f"objective '{objective.name}' neither translates nor generates images")
        return []
    chosen = [objective.direction(d.strip()) for d in wanted]
    if not chosen:  # every direction in safetensors; ONNX holds one graph, so one direction
        chosen = list(objective.directions) if fmt == "safetensors" else [objective.direction(None)]
    if fmt == "onnx" and len(chosen) > 1:
        raise GanforgeError("an ONNX export holds one direction: give one --direction")
    return list(dict.fromkeys(chosen))


def _check_plain_inference(objective: Objective) -> None:
    """Exports hold networks: an objective whose inference is more than ``net(x)`` cannot export."""
    overridden = {
        name for c in type(objective).__mro__ if c is not Objective and c is not object for name in vars(c)
    }
    for method in ("translate", "generate", "_forward"):
        if method in overridden:
            raise GanforgeError(
                f"objective '{objective.name}' overrides {method}(): its inference is more than its "
                "networks, so it cannot be exported (use its checkpoint)"
            )


def _target(out: str | os.PathLike[str], force: bool) -> Path:
    path = Path(out)
    if path.is_dir():
        raise GanforgeError(f"--out {path} is a folder; give a file name")
    if path.exists() and not force:
        raise GanforgeError(f"{path} already exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _atomic(path: Path, write: Any) -> None:
    """``write(tmp)`` then fsync and rename onto ``path``: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_safetensors(path: Path, info: dict[str, Any], modules: dict[str, nn.Module], dtype: str) -> None:
    """The networks' state dicts (floats cast to ``dtype``) and ``info`` in the header, atomically."""
    from safetensors.torch import save_file

    cast = DTYPES[dtype]
    tensors: dict[str, torch.Tensor] = {}
    for name, net in modules.items():
        for key, value in net.state_dict().items():
            t = value.detach().to("cpu")
            tensors[f"{name}{_SEP}{key}"] = (t.to(cast) if t.is_floating_point() else t).contiguous().clone()
    header = {"format": FORMAT, "ganforge": json.dumps(info)}
    _atomic(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def write_onnx(path: Path, info: dict[str, Any], net: nn.Module, dtype: str, generator: bool) -> None:
    """One network as ONNX (dynamic batch, height and width; opset 18), ``info`` as metadata."""
    if dtype == "bf16":
        raise GanforgeError("ONNX export supports --dtype fp32 or fp16 (onnxruntime has no bf16 kernels)")
    try:
        import onnx
    except ImportError:
        raise GanforgeError("ONNX export needs the onnx package: pip install 'ganforge[onnx]'") from None
    import copy

    module = copy.deepcopy(net).to("cpu", DTYPES[dtype]).eval()
    if generator:
        example = torch.randn(1, int(info["noise"]["latent_dim"]))
        names, axes = (["z"], ["images"]), {"z": {0: "batch"}, "images": {0: "batch"}}
    else:
        side = int(info["image_size"])
        m = max(1, int(info["size_multiple"]))
        side = max(m, side // m * m)
        example = torch.rand(1, 3, side, side) * 2 - 1
        dims = {0: "batch", 2: "height", 3: "width"}
        names, axes = (["images"], ["translated"]), {"images": dims, "translated": dims}

    def write(tmp: str) -> None:
        # The TorchScript exporter: a second per network on CPU (the dynamo one takes tens) and
        # reflection padding and instance norm export as ONNX Pad and InstanceNormalization.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    module,
                    (example.to(DTYPES[dtype]),),
                    tmp,
                    input_names=names[0],
                    output_names=names[1],
                    dynamic_axes=axes,
                    opset_version=18,
                    dynamo=False,
                )
            except Exception as exc:
                first = str(exc).splitlines()[0] if str(exc) else ""
                raise GanforgeError(f"ONNX export failed: {type(exc).__name__}: {first}") from None
        model = onnx.load(tmp)
        entry = model.metadata_props.add()
        entry.key, entry.value = "ganforge", json.dumps(info)
        fmt = model.metadata_props.add()
        fmt.key, fmt.value = "format", FORMAT
        onnx.save(model, tmp)

    _atomic(path, write)


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    registry: Registry,
    format: str = "safetensors",
    directions: Iterable[str] | None = None,
    dtype: str = "fp32",
    force: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Export a run, checkpoint or exported file to ``out``; returns (path, metadata written)."""
    from ganforge.inference import load_objective

    if format not in FORMATS:
        raise GanforgeError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if dtype not in DTYPES:
        raise GanforgeError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    path = _target(out, force)
    objective, meta, file = load_objective(checkpoint, registry, "cpu", "fp32")
    chosen = _choose_directions(objective, directions, format)
    if isinstance(objective, ExportedModel):
        info, modules = _reexport(objective, chosen, dtype)
    else:
        _check_plain_inference(objective)
        info, modules = describe(objective, meta, chosen, dtype)
    info["source"] = file.name
    if format == "safetensors":
        write_safetensors(path, info, modules, dtype)
    else:
        (name,) = modules
        write_onnx(path, info, modules[name], dtype, generator=not chosen)
    return path, info


def _reexport(
    model: ExportedModel, chosen: list[str], dtype: str
) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """An export of an export: a subset of its directions, another dtype, or ONNX."""
    info = json.loads(json.dumps(model.meta))
    keep = {model.directions[d].network for d in chosen} if chosen else set(model.networks)
    info["directions"] = {
        d: {**spec, "inverse": spec.get("inverse") if spec.get("inverse") in chosen else None}
        for d, spec in info["directions"].items()
        if d in chosen
    }
    info["networks"] = {n: s for n, s in info["networks"].items() if n in keep}
    info["dtype"] = dtype
    return info, {n: model.networks[n] for n in info["networks"]}


def size_text(n_bytes: int) -> str:
    """``45.5 MB`` (decimal megabytes, as file managers show them)."""
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} kB"
