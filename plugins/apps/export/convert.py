"""``ganforge convert``: weight files of other projects into ganforge's exported format.

Converters are plugins (kind ``converter``; ``ganforge list converters``): each reads one
project's file layout and says which bundled component rebuilds each network, with which
options. This module reads the file with ``torch.load(..., weights_only=True)`` only (one that
needs a full unpickle is refused), builds the networks, loads them strictly and writes the export.

A file that fails to load is diagnosed from its own structure (the zip index and checksums of
the current format, the pickle opcodes of the legacy one) before anything else is said about
it: a truncated or corrupt file is reported as such, and only a complete file that holds a
pickled object is reported as needing a full unpickle, with what to save instead.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganforge import protocols
from ganforge.errors import GanforgeError
from ganforge.recipe import parse_value
from ganforge.registry import Registry

# Keys under which training code commonly saves a network's state dict, the generator's first:
# BasicSR/Real-ESRGAN save "params_ema" (the EMA weights it infers with) beside "params";
# pix2pix-style code "netG"; Lightning and most scripts "state_dict" or "model_state_dict";
# StyleGAN2 ports "g_ema".
CONTAINER_KEYS = (
    "state_dict",
    "model_state_dict",
    "params_ema",
    "params",
    "g_ema",
    "netG",
    "generator",
    "model",
    "net",
    "network",
)
SAVE_STATE_DICT = "torch.save(model.state_dict(), 'weights.pth')"


@dataclass
class Converted:
    """One network a converter found: its direction, names, ganforge component and weights.

    A translator has a direction and the domains it maps between; a generator from noise has
    ``direction``, ``source`` and ``target`` None and is its objective's noise network
    (``declares.noise``), with ``classes`` (the condition's values in index order) when that
    objective declares a class condition.
    """

    direction: str | None
    network: str  # the network's name in ganforge's objective of the same method
    source: str | None  # the batch keys (domains) it maps between
    target: str | None
    component: str  # the generator component that rebuilds it
    options: dict[str, Any]
    state: dict[str, torch.Tensor]
    image_size: int | None = None  # the training size, when the weights tell it
    context: dict[str, Any] = field(default_factory=dict)  # build context, e.g. num_classes
    classes: list[str] | None = None  # a conditional generator's class names, in index order


def read_state(path: str | os.PathLike[str], key: str | None = None) -> Any:
    """A ``.pth`` file's contents through the weights-only unpickler; anything more is refused.

    ``key`` (``--key``) selects an entry of a dict, dotted for nested ones (``state_dict.netG``).
    """
    file = Path(path)
    if not file.is_file():
        raise GanforgeError(f"{file} not found")
    if file.stat().st_size == 0:
        raise GanforgeError(f"{file} is empty (0 bytes): a save or a copy that did not finish")
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files; diagnosed below
        raise GanforgeError(_diagnose(file, exc)) from None
    return select(raw, key, file) if key else raw


def select(raw: Any, key: str, file: Path) -> Any:
    """``raw[key]``, the key dotted for nested dicts; a missing one names the keys there are."""
    value = raw
    for i, part in enumerate(key.split(".")):
        if not isinstance(value, dict) or part not in value:
            where = ".".join(key.split(".")[:i]) or "the file"
            found = (
                ", ".join(map(repr, list(value)[:12])) if isinstance(value, dict) else type(value).__name__
            )
            raise GanforgeError(f"--key {key}: {file} has no {part!r} in {where} (it has {found})")
        value = value[part]
    return value


def _diagnose(file: Path, exc: Exception) -> str:
    """One line on why ``file`` did not load: damaged, a pickled object, or something else."""
    text = " ".join(str(exc).split())
    damage = _damage(file)
    if damage is None and (
        isinstance(exc, EOFError) or re.search(r"unexpected EOF|might be corrupted", text)
    ):
        damage = "its tensor data ends early"
    if damage:
        return (
            f"{file} is truncated or corrupt ({damage}); it is not a complete PyTorch file: "
            "save or copy it again"
        )
    if isinstance(exc, pickle.UnpicklingError):
        # The weights-only unpickler names the first global it refused (a class, a function).
        found = re.search(r"GLOBAL ([\w.]+)", text)
        name = found.group(1) if found else ""
        if name.startswith("torch.nn."):
            what = f"a pickled torch module ({name}), not a state dict"
        elif name:
            what = f"a pickled object ({name}), not a plain state dict"
        else:
            what = "objects that are not tensors"
        return (
            f"{file} holds {what}: it needs a full unpickle to load, which runs code from the file; "
            f"ganforge reads state dicts only (torch.load with weights_only=True). Where the model is "
            f"defined, save its weights alone, {SAVE_STATE_DICT}, and convert that"
        )
    return f"{file}: not a readable PyTorch file ({type(exc).__name__}: {text[:200]})"


def _damage(file: Path) -> str | None:
    """What is structurally wrong with a checkpoint file, or None if it is whole.

    The current format is a zip (its index and every member's CRC are checked); the legacy one
    and plain ``pickle.dump`` files are pickles, whose opcodes must run to STOP (scanned, never
    executed).
    """
    with open(file, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(file) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
            return f"its zip index is damaged or missing: {' '.join(str(exc).split())}"
        return f"member {bad} fails its checksum" if bad else None
    try:
        with open(file, "rb") as f:
            # torch's legacy format: five pickles (magic number, version, system info, the
            # object, the storage keys), then raw tensor data; a plain pickle has one.
            for count in range(5):
                if count and not f.peek(1):
                    break
                for _ in pickletools.genops(f):
                    pass
    except Exception as exc:  # genops raises ValueError at the end of the data, others on junk
        return f"its pickle data stops or is malformed: {' '.join(str(exc).split())[:80]}"
    return None


def state_tensors(state: Any, file: Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, unwrapped from the usual containers (CONTAINER_KEYS).

    A checkpoint that keeps its weights under another key gets an error naming its keys and
    the ``--key`` that selects one.
    """
    path = []
    while isinstance(state, dict) and state and not _tensor_dict(state):
        key = next((k for k in CONTAINER_KEYS if isinstance(state.get(k), dict)), None)
        if key is None:
            break
        path.append(key)
        state = state[key]
    if not _tensor_dict(state):
        where = f" (under {'.'.join(path)})" if path else ""
        if isinstance(state, dict) and state:
            found = ", ".join(f"{k!r} ({_describe(v)})" for k, v in list(state.items())[:8])
            more = f" and {len(state) - 8} more" if len(state) > 8 else ""
            nets = [k for k, v in state.items() if isinstance(v, dict) and v]
            if nets:
                hint = f"pass the one to convert with --key, e.g. --key {'.'.join([*path, str(nets[0])])}"
            else:
                hint = f"save the network's weights alone, {SAVE_STATE_DICT}"
            raise GanforgeError(
                f"{file}: expected {what} (a dict of tensors); it holds a dict{where} of "
                f"{found}{more}: {hint}"
            )
        raise GanforgeError(f"{file}: expected {what} (a dict of tensors), got {_describe(state)}{where}")
    # Saved from DataParallel: every key starts with "module."
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _tensor_dict(value: Any) -> bool:
    return (
        isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())
    )


def _describe(value: Any) -> str:
    if _tensor_dict(value):
        return f"{len(value)} tensors"
    if isinstance(value, dict):
        return f"a dict of {len(value)}" if value else "an empty dict"
    if isinstance(value, torch.Tensor):
        return f"a tensor {tuple(value.shape)}"
    return type(value).__name__


def _apply_overrides(options: dict[str, Any], overrides: list[str]) -> None:
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise GanforgeError(f"--set {item!r}: expected KEY=VALUE")
        options[key.strip()] = parse_value(raw.strip())


def _class_names(overrides: list[str]) -> tuple[list[str], list[str] | None]:
    """(the network overrides, the class names of ``--set classes=...`` or None).

    ``classes`` names a conditional generator's classes in index order (no file keeps them): a
    TOML list (``classes=["cat", "dog"]``) or comma-separated names (``classes=cat,dog``).
    """
    rest, names = [], None
    for item in overrides:
        key, sep, raw = item.partition("=")
        if key.strip() != "classes" or not sep:
            rest.append(item)
            continue
        value = parse_value(raw.strip())
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str | int) for v in items):
            raise GanforgeError(f'--set {item!r}: expected class names, e.g. classes=\'["cat", "dog"]\'')
        names = [str(v).strip() for v in items]
        if not all(names) or len(set(names)) != len(names):
            raise GanforgeError(f"--set {item!r}: class names must be non-empty and distinct")
    return rest, names


def convert_file(
    file: str | os.PathLike[str],
    source: str,
    out: str | os.PathLike[str],
    registry: Registry,
    direction: str | None = None,
    image_size: int | None = None,
    overrides: list[str] | None = None,
    force: bool = False,
    key: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Convert one reference file into an export; returns (path, metadata written).

    The generator is rebuilt with ganforge's component and loaded strictly, so a layout that
    does not match is an error naming the differing keys, never a silent partial load. A
    translator's export lists its directions; a generator from noise's is the model card a
    trained run of its objective exports (noise, condition and class names).
    """
    from ganforge.model import Model, build_network, output_file
    from ganforge.runtime import Runtime

    converter = registry.build("converter", {"name": source}, "--from")
    path = Path(file)
    target = output_file(Path(out), force, [path])
    overrides, classes = _class_names(list(overrides or []))
    found = converter.convert(read_state(path, key), path, direction)
    # read after convert: a converter may choose it from the file (r3gan or r3gan-cond)
    objective = converter.objective
    generates = [c for c in found if c.direction is None]
    if generates and len(found) > 1:
        raise GanforgeError(
            f"converter '{source}' gave {len(found)} networks with a generator from noise: an export "
            "holds one generator from noise, or translators"
        )
    if classes is not None and not generates:
        raise GanforgeError("--set classes: only a class-conditional generator has class names")
    inferred = next((c.image_size for c in found if c.image_size), None)
    if image_size is not None and inferred is not None and image_size != inferred:
        raise GanforgeError(
            f"--image-size {image_size}: the generator in {path.name} was sized for {inferred} px"
        )
    size = image_size or inferred or 256
    networks: dict[str, Any] = {}
    modules = {}
    for item in found:
        component = registry.get("generator", item.component)
        opts = dict(item.options)
        if "image_size" in {p.name for p in registry.options(component)}:
            opts["image_size"] = size
        _apply_overrides(opts, overrides)
        spec = {
            "kind": "generator",
            "component": item.component,
            "options": opts,
            "context": dict(item.context),
            "plugin": component.plugin,
            "distribution": component.distribution,
            "version": component.version,
        }
        net, _ = build_network(spec, registry, f"{path}: generator")
        _check_shapes(net, item, path)
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
        if item.direction is None:
            spec["latent_dim"] = protocols.latent_dim(net)
        networks[item.network] = spec
        modules[item.network] = net.eval()
    if generates:
        card = _generation_card(registry, source, objective, generates[0], classes, networks, size, path)
    else:
        card = _translation_card(objective, found, networks, size)
    card.update(step=0, source=path.name, converted_from=source)
    Model(card, modules, Runtime.create("cpu", "fp32")).save(target)
    return target, card


def _check_shapes(net: torch.nn.Module, item: Converted, path: Path) -> None:
    """A tensor whose shape differs from the rebuilt network's, as one line (load_state_dict's
    error lists every one on many lines)."""
    live = net.state_dict()
    wrong = [k for k, v in item.state.items() if k in live and tuple(v.shape) != tuple(live[k].shape)]
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise GanforgeError(
            f"{path}: {k} has shape {list(item.state[k].shape)} where ganforge's {item.component} "
            f"generator has {list(live[k].shape)}{more}"
        )


def _translation_card(
    objective: str, found: list[Converted], networks: dict[str, Any], size: int
) -> dict[str, Any]:
    """The model card of converted translators: the directions the file holds."""
    return {
        "objective": objective,
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
        "plugins": {
            f"generator/{s['component']}": f"{s['distribution']} {s['version']}" for s in networks.values()
        },
    }


def _generation_card(
    registry: Registry,
    source: str,
    objective: str,
    item: Converted,
    classes: list[str] | None,
    networks: dict[str, Any],
    size: int,
    path: Path,
) -> dict[str, Any]:
    """The model card of a converted generator from noise: what a trained run of ``objective``
    exports (its declaration's noise network and condition, the class names in index order)."""
    from ganforge.model import make_card
    from ganforge.recipe import objective_class

    declares = objective_class(registry, objective).declares
    if declares.noise != item.network:
        raise GanforgeError(
            f"converter '{source}': objective '{objective}' generates with network "
            f"'{declares.noise}', not '{item.network}'"
        )
    count = len(item.classes or [])
    if declares.condition is None:
        if count or classes is not None:
            what = f"names {count} classes" if count else "was given --set classes"
            raise GanforgeError(f"{path}: objective '{objective}' is unconditional, but the converter {what}")
        names: list[str] = []
    else:
        if not count:
            raise GanforgeError(
                f"converter '{source}': objective '{objective}' is conditional, but it found no classes"
            )
        if classes is not None and len(classes) != count:
            raise GanforgeError(
                f"--set classes: {len(classes)} names for the {count} classes of the generator in {path.name}"
            )
        names = classes if classes is not None else list(item.classes or [])
    return make_card(objective, declares, networks, size, names)
