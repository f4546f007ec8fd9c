"""A trained model for inference, from a model card: the JSON in a checkpoint's metadata or an
export's header that names each inference network's component, options and build context, the
directions, noise and condition (docs/python.md). :meth:`Model.load` builds only the inference
networks and checks their weights once; every app (translate, sample, eval, export, demo) takes one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

import ganforge
from ganforge import checkpoint as ckpt
from ganforge import plugins, protocols
from ganforge.errors import GanforgeError
from ganforge.method.declaration import Direction
from ganforge.recipe import Recipe, objective_class, resolved_table
from ganforge.runtime import Runtime, eval_mode
from ganforge.safety import atomic_write, clean_stale, first_nonfinite, protect_inputs
from ganforge.training.state import compare_tensors
from ganforge.translate import to_pil, translate_files, translate_image

EXPORT_FORMAT = "ganforge-export/2"  # 2: tensors checksummed; 1 (ganforge 0.1): none
EXPORT_FORMATS = ("ganforge-export/1", EXPORT_FORMAT)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PathLike = str | os.PathLike[str]


class Model:
    """A trained model for inference (see the module docstring).

    ``directions`` maps what it translates (empty for a generator), ``generates`` says whether it
    samples from noise, ``classes`` lists its condition's values (class or domain names; empty
    without one), ``image_size`` is its training size, ``card`` its model card."""

    def __init__(
        self,
        card: dict[str, Any],
        networks: dict[str, nn.Module],
        runtime: Runtime,
        file: Path | None = None,
        checks: dict[str, Any] | None = None,
    ) -> None:
        self.card, self.networks, self.runtime, self.file = card, networks, runtime, file
        self.name: str = str(card.get("objective", "model"))
        self.step = int(card.get("step", 0) or 0)
        self.image_size = int(card.get("image_size") or 256)
        self.directions = {
            d: Direction(s["network"], s["source"], s["target"], s.get("inverse"))
            for d, s in (card.get("directions") or {}).items()
        }
        self.noise_network: str | None = (card.get("noise") or {}).get("network")
        condition = card.get("condition") or {}
        self.condition_kind: str | None = condition.get("kind")
        self.classes: list[str] = [str(c) for c in condition.get("values") or []]
        self._conditioned = set(condition.get("networks") or [])
        self.compile = False  # translate through torch.compile'd networks (big folders on CUDA)
        # what the objective asked of its sample grids (the samples callback draws them)
        self.sample_count = int(card.get("sample_count") or 4)
        self.sample_seed = int(card.get("sample_seed") or 1234)
        self._checks = checks or {}  # network -> (factory, options): image sizes it takes
        self._compiled: dict[str, Any] = {}

    def __repr__(self) -> str:
        what = f"directions={list(self.directions)}" if self.directions else "generates=True"
        return f"Model({self.name!r}, {what}, file={str(self.file) if self.file else None!r})"

    @classmethod
    def load(
        cls, path: PathLike, device: str = "auto", precision: str = "auto", registry: Any = None
    ) -> Model:
        """A model from a run folder (its latest checkpoint), a checkpoint or an exported file."""
        registry = registry if registry is not None else plugins.get_registry()
        file = ckpt.resolve(path)
        runtime = Runtime.create(device, precision, True)
        card, tensors, where = _read_export(file) or _read_checkpoint(file, registry)
        networks, checks = {}, {}
        for name, spec in card["networks"].items():
            net, checks[name] = build_network(spec, registry, f"{file}: network '{name}'")
            _load_weights(net, tensors[name], file, where[name])
            networks[name] = runtime.prepare(net.eval().requires_grad_(False), trainable=False)
        return cls(card, networks, runtime, file, checks)

    @property
    def generates(self) -> bool:
        return self.noise_network is not None

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def latent_dim(self) -> int:
        return protocols.latent_dim(self.networks[self._noise()])

    def _noise(self) -> str:
        if self.noise_network is None:
            raise GanforgeError(f"model '{self.name}' does not generate from noise (use translate)")
        return self.noise_network

    def direction(self, name: str | None) -> str:
        """``name`` checked against the directions (None: the first); a one-line error."""
        known = list(self.directions)
        if not known:
            raise GanforgeError(f"model '{self.name}' does not translate images (use 'ganforge sample')")
        if name is None:
            return known[0]
        if name not in self.directions:
            raise GanforgeError(
                f"model '{self.name}' has no direction '{name}'; it translates {', '.join(known)}"
            )
        return name

    def size_multiple(self, direction: str) -> int:
        """What the input sides of ``direction`` must be divisible by."""
        return protocols.size_multiple(self.networks[self.directions[direction].network])

    def size_problem(self, direction: str, side: int) -> str | None:
        """Why the network of ``direction`` cannot take ``side`` px squares, or None."""
        factory, options = self._checks.get(self.directions[direction].network, (None, None))
        if not isinstance(factory, protocols.SizeCheck):
            return None
        try:
            return factory.check_image_size(options, side)
        except Exception as exc:  # a plugin's check failing is its bug: name it, no traceback
            return f"its check_image_size failed ({type(exc).__name__}: {exc})"

    def labels(self, value: str | int | None, n: int, what: str = "class") -> Tensor | None:
        """``n`` copies of a condition value (a class or domain name, or its index) as int64 on
        the device; None for a model without a condition. ``value`` None cycles through them."""
        if not self.classes:
            if value is not None:
                raise GanforgeError(f"model '{self.name}' takes no {what} (it has no condition)")
            return None
        if self.condition_kind != what and value is not None:
            raise GanforgeError(f"model '{self.name}' takes a {self.condition_kind}, not a {what}")
        if value is None:
            return torch.arange(n, device=self.device) % len(self.classes)
        return torch.full((n,), self.class_index(value), dtype=torch.int64, device=self.device)

    def class_index(self, value: str | int) -> int:
        """The index of a class or domain given by name or index; a one-line error naming them."""
        if isinstance(value, str) and value in self.classes:
            return self.classes.index(value)
        text = str(value).strip()
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(self.classes):
            return int(text)
        shown = ", ".join(f"{i}={c}" for i, c in enumerate(self.classes[:12]))
        more = f" and {len(self.classes) - 12} more" if len(self.classes) > 12 else ""
        raise GanforgeError(
            f"model '{self.name}' has no {self.condition_kind} {value!r}; it has {shown}{more}"
        )

    def run(self, name: str, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Network ``name`` on ``x`` (and ``labels`` when it takes the condition), in eval mode and
        the runtime's precision: float32 out."""
        net = self.networks[name]
        if self.compile and name not in self._compiled:
            self._compiled[name] = torch.compile(net)
        fn = self._compiled[name] if self.compile else net
        if name in self._conditioned:
            if labels is None:
                raise GanforgeError(f"model '{self.name}': network '{name}' needs a {self.condition_kind}")
            labels = labels.to(x.device)
        with eval_mode(net), self.runtime.autocast():
            out = fn(x, labels) if name in self._conditioned else fn(x)
        return out.float()

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents -> images in [-1, 1] (float32, on the device); ``labels`` for a conditional model."""
        name = self._noise()
        if labels is None and name in self._conditioned:
            labels = self.labels(None, len(z))
        return self.run(name, z.to(self.device), labels)

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Latent vectors on the device (drawn on the CPU when a generator is given, for seeding)."""
        if generator is not None:
            return torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return torch.randn(n, self.latent_dim, device=self.device)

    def translate(
        self,
        images: Image.Image | Tensor | PathLike | Sequence[Image.Image] | Sequence[PathLike],
        direction: str | None = None,
        out: PathLike | None = None,
        size: int | None = None,
        domain: str | int | None = None,
    ) -> Any:
        """Translate images; what comes back matches what went in.

        - a tensor ``[3, H, W]`` or ``[N, 3, H, W]``, uint8 or float in [-1, 1]: a tensor of the
          same shape and kind (float32), on the input's device, translated at its own size (a
          multiple of ``size_multiple``);
        - a PIL image (or a list of them): PIL images of the same size; the model sees each at
          ``size`` square (default: the training size; 0: the image's own size rounded down to the
          network's multiple), as ``ganforge translate`` does;
        - a file or folder path (or a list of them) with ``out``: PNGs written into ``out``, whose
          path comes back (``ganforge translate``'s pipeline).

        ``direction``: None for the first; ``domain``: the target domain (name or index) of a
        model whose condition is a domain.
        """
        direction = self.direction(direction)
        if isinstance(images, Tensor):
            return self._translate_tensor(images, direction, domain)
        items = [images] if isinstance(images, str | os.PathLike | Image.Image) else list(images)
        if items and all(isinstance(i, Image.Image) for i in items):
            side = self.image_size if size is None else size
            results = []
            for img in items:
                rgb = img.convert("RGB")
                y = translate_image(self, rgb, direction, side, domain)
                results.append(y if y.size == rgb.size else y.resize(rgb.size, Image.BICUBIC))
            return results[0] if isinstance(images, Image.Image) else results
        if not items or not all(isinstance(i, str | os.PathLike) for i in items):
            raise GanforgeError("translate() takes a tensor, a PIL image, or file/folder paths (with out=)")
        if out is None:
            raise GanforgeError("translate() of files or folders needs out=FOLDER for the results")
        failures = translate_files(
            self, [str(i) for i in items], Path(out), direction, size=size, domain=domain
        )
        if failures:
            raise GanforgeError(f"{len(failures)} image(s) could not be translated, e.g. {failures[0]}")
        return Path(out)

    def _translate_tensor(self, images: Tensor, direction: str, domain: str | int | None) -> Tensor:
        single = images.dim() == 3
        x = images.unsqueeze(0) if single else images
        if x.dim() != 4 or x.shape[1] != 3:
            raise GanforgeError(
                f"translate() takes [3, H, W] or [N, 3, H, W] images, got {list(images.shape)}"
            )
        m = self.size_multiple(direction)
        if x.shape[2] % m or x.shape[3] % m:
            raise GanforgeError(
                f"translate(): sides must be multiples of {m} for this network, got {x.shape[2]}x{x.shape[3]}"
            )
        uint8 = x.dtype == torch.uint8
        inputs = self.runtime.to_input(x) if uint8 else x.to(self.device)
        labels = self.labels(domain, len(x), "domain") if domain is not None or self.classes else None
        y = self.run(self.directions[direction].network, inputs, labels).to(images.device)
        if uint8:
            y = y.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        return y[0] if single else y

    def sample(self, n: int = 1, seed: int | None = None, cls: str | int | None = None) -> list[Image.Image]:
        """``n`` images from noise; a ``seed`` gives ``ganforge sample --seed``'s images, ``cls`` a
        class of a conditional model (by name or index; None: the classes in turn)."""
        if n < 1:
            raise GanforgeError(f"sample(n): n must be at least 1, got {n}")
        g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
        z = self.noise(n, g).cpu()  # a model that does not generate says so here
        labels = self.labels(cls, n)
        chunks = [
            self.generate(chunk, None if labels is None else labels[i : i + len(chunk)])
            for i, chunk in zip(range(0, n, 256), z.split(256))
        ]
        return [to_pil(img) for img in torch.cat(chunks)]

    def subset(self, directions: Iterable[str] | None = None) -> tuple[dict[str, Any], dict[str, nn.Module]]:
        """(card, networks) of the chosen directions (None: all; a generator: its noise network)."""
        card = json.loads(json.dumps(self.card))
        if not self.directions:
            keep = {self.noise_network} if self.noise_network else set(self.networks)
            chosen: list[str] = []
        else:
            chosen = list(dict.fromkeys(self.direction(d) for d in directions or self.directions))
            keep = {self.directions[d].network for d in chosen}
            card["directions"] = {
                d: {**s, "inverse": s.get("inverse") if s.get("inverse") in chosen else None}
                for d, s in card["directions"].items()
                if d in chosen
            }
        card["networks"] = {n: s for n, s in card["networks"].items() if n in keep}
        return card, {n: self.networks[n] for n in card["networks"]}

    def save(self, path: PathLike, directions: Iterable[str] | None = None, dtype: str = "fp32") -> Path:
        """Write the networks of ``directions`` (None: all), floating tensors cast to ``dtype``, and the
        card as one checksummed safetensors file, atomically: what ``ganforge export`` writes."""
        if dtype not in DTYPES:
            raise GanforgeError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        card, networks = self.subset(directions)
        card.update(format=EXPORT_FORMAT, dtype=dtype)
        tensors: dict[str, Tensor] = {}
        for name, net in networks.items():
            for key, value in net.state_dict().items():
                t = value.detach().to("cpu")
                t = t.to(DTYPES[dtype]) if t.is_floating_point() else t
                tensors[f"{name}/{key}"] = t.contiguous().clone()
        sums = {k: ckpt.tensor_crc(t) for k, t in tensors.items()}
        header = {"format": EXPORT_FORMAT, "ganforge": json.dumps(card), "checksums": json.dumps(sums)}
        path = Path(path)
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))
        return path

    def export(
        self,
        out: PathLike,
        format: str = "safetensors",
        direction: str | Iterable[str] | None = None,
        dtype: str = "fp32",
        force: bool = False,
        registry: Any = None,
    ) -> Path:
        """Write the model to ``out`` as ``ganforge export`` does: ``safetensors`` (:meth:`save`) or
        a format an installed plugin adds (kind ``exporter``, e.g. ``onnx`` from the export app).
        ``--force`` replaces an earlier output, never the file the model was read from nor a
        run's checkpoint."""
        registry = registry if registry is not None else plugins.get_registry()
        directions = [direction] if isinstance(direction, str) else direction
        exporter = registry.build("exporter", {"name": format}, "format") if format != "safetensors" else None
        path = output_file(Path(out), force, [self.file] if self.file else [])
        if exporter is None:
            return self.save(path, directions, dtype)
        exporter.write(self, path, list(directions or []), dtype)
        return path


def card_network(
    spec: Any, options: dict[str, Any], context: dict[str, Any], net: nn.Module, **extra: Any
) -> dict:
    """A card's entry for one network built from a recipe spec (component, options, context)."""
    component = spec.component
    try:
        json.dumps(context)
    except TypeError:
        raise GanforgeError(
            f"{component.kind} '{component.name}' is built with context {sorted(context)} that a model "
            "card cannot hold (JSON values only)"
        ) from None
    return {
        "kind": component.kind,
        "component": component.name,
        "options": options,
        "context": context,
        "plugin": component.plugin,
        "distribution": component.distribution,
        "version": component.version,
        "size_multiple": protocols.size_multiple(net),
        "parameters": sum(p.numel() for p in net.parameters()),
        **extra,
    }


def make_card(
    objective: str,
    declares: Any,
    networks: dict[str, dict[str, Any]],
    image_size: int | None,
    classes: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A model card from a declaration and its inference networks' entries (:func:`card_network`)."""
    noise = None
    if declares.noise in networks:
        noise = {"network": declares.noise, "latent_dim": networks[declares.noise].get("latent_dim", 100)}
    condition = None
    if declares.condition is not None:
        condition = {**asdict(declares.condition), "values": list(classes)}
        condition["networks"] = list(condition["networks"])
    return {
        "ganforge": ganforge.__version__,
        "torch": torch.__version__,
        "objective": objective,
        "networks": networks,
        "directions": {d: asdict(s) for d, s in declares.directions.items()},
        "noise": noise,
        "condition": condition,
        "input": {"range": [-1.0, 1.0], "layout": "NCHW", "channels": 3},
        "output": {"range": [-1.0, 1.0], "layout": "NCHW"},
        "image_size": image_size,
        "size_multiple": max((n["size_multiple"] for n in networks.values()), default=1),
        "plugins": {
            f"{n['kind']}/{n['component']}": f"{n['distribution']} {n['version']}" for n in networks.values()
        },
        **extra,
    }


def build_network(spec: dict[str, Any], registry: Any, where: str) -> tuple[nn.Module, tuple[Any, dict]]:
    """A network from a card entry, and (its factory, full options) for size checks; a missing
    plugin names the distribution that provided it."""
    if not isinstance(spec, dict):
        raise GanforgeError(f"{where}: its card entry is not a table")
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
    if not isinstance(context, dict):
        raise GanforgeError(f"{where}: its build context is not a table")
    net = registry.create(found, options, where, **context)
    full = {p.name: p.default for p in registry.options(found) if not p.required}
    return net, (found.factory, {**full, **options})


def _load_weights(net: nn.Module, state: dict[str, Tensor], file: Path, where: str) -> None:
    """The one state check (names, shapes, dtypes; finite values), then a strict load."""
    live = net.state_dict()
    # an fp16 or bf16 export loads as the network's fp32; any other dtype difference is named
    floats = [(v, live[k]) for k, v in state.items() if k in live and v.is_floating_point()]
    if floats and all(
        v.dtype in (torch.float16, torch.bfloat16) and w.dtype == torch.float32 for v, w in floats
    ):
        state = {k: v.float() if k in live and v.is_floating_point() else v for k, v in state.items()}
    problems = compare_tensors(live, state, where)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise GanforgeError(f"{file}: weights do not fit the network: {problems[0]}{more}")
    bad = first_nonfinite(state, where)
    if bad is not None:
        raise GanforgeError(f"{file}: {bad} holds NaN or infinite values")
    net.load_state_dict(state)


def _read_export(file: Path) -> tuple[dict[str, Any], dict[str, dict[str, Tensor]], dict[str, str]] | None:
    """(card, tensors by network, their paths) of an exported file, checksums checked; None if not one."""
    if file.suffix.lower() == ".onnx":  # an export for other runtimes: ganforge never reads one back
        raise GanforgeError(
            f"{file} is an ONNX file (for onnxruntime and other runtimes); ganforge reads its "
            "checkpoints and safetensors exports: give the run or a .safetensors export"
        )
    ckpt.sniff(file)
    try:
        with safe_open(str(file), framework="pt") as f:
            header = f.metadata() or {}
            if header.get("format") not in EXPORT_FORMATS:
                return None
            try:
                card = json.loads(header["ganforge"])
                sums = json.loads(header["checksums"]) if header["format"] == EXPORT_FORMAT else None
            except (KeyError, ValueError):
                raise GanforgeError(f"{file}: an exported file without readable metadata") from None
            if (
                not isinstance(card, dict)
                or not isinstance(card.get("networks"), dict)
                or not card["networks"]
            ):
                raise GanforgeError(f"{file}: an exported file whose metadata names no networks")
            if sums is not None and not isinstance(sums, dict):
                raise GanforgeError(f"{file}: an exported file with malformed checksums")
            keys = set(f.keys())
            if sums is not None and set(sums) != keys:
                raise GanforgeError(f"{file} is damaged: its checksums list other tensors than it holds")
            tensors: dict[str, dict[str, Tensor]] = {name: {} for name in card["networks"]}
            for key in sorted(keys):
                name, _, param = key.partition("/")
                if name not in tensors:
                    raise GanforgeError(f"{file}: tensor '{key}' belongs to no network of its card")
                t = f.get_tensor(key)
                if sums is not None and ckpt.tensor_crc(t) != sums[key]:
                    raise GanforgeError(f"{file} is damaged: tensor '{key}' does not match its checksum")
                tensors[name][param] = t
    except GanforgeError:
        raise
    except Exception as exc:
        raise GanforgeError(f"{file} is truncated or corrupt ({type(exc).__name__})") from None
    return {"step": 0, **card}, tensors, {name: name for name in tensors}


def _read_checkpoint(
    file: Path, registry: Any
) -> tuple[dict[str, Any], dict[str, dict[str, Tensor]], dict[str, str]]:
    """(card, tensors by network, their paths in the state) of a run checkpoint's inference networks."""
    meta, tree = ckpt.read_state_tree(file)
    meta = ckpt.check_run_meta(meta, file)
    saved = tree.get("objective") if isinstance(tree, dict) else None
    if not isinstance(saved, dict):
        raise GanforgeError(f"{file}: the state does not fit a ganforge run: it has no objective state")
    card = meta.get("model")
    if not isinstance(card, dict):
        card = legacy_card(file, meta, saved, registry)
    if not isinstance(card.get("networks"), dict) or not card["networks"]:
        raise GanforgeError(f"{file}: its model card names no networks")
    parts = {name: f"{name}_ema" if spec.get("ema") else name for name, spec in card["networks"].items()}
    missing = [p for p in parts.values() if p not in saved]
    if missing:
        raise GanforgeError(f"{file}: the state has no network {', '.join(missing)} (damaged or not a run)")
    where = {name: f"objective/{part}" for name, part in parts.items()}
    state, _ = ckpt.load(file, only=list(where.values()))
    tensors = {name: state["objective"][part] for name, part in parts.items()}
    return {**card, "step": meta["step"]}, tensors, where


def legacy_card(file: Path, meta: dict[str, Any], saved: dict[str, Any], registry: Any) -> dict[str, Any]:
    """The model card of a checkpoint written before model cards (ganforge 0.1), from its saved recipe."""
    try:
        resolved = Recipe(meta["recipe"], f"{file} (saved recipe)").resolve(registry, measure=False)
    except GanforgeError as exc:
        raise GanforgeError(missing_plugin_hint(str(exc), meta, registry)) from None
    name = resolved["objective"]["name"]
    declares = objective_class(registry, name).declares
    networks: dict[str, dict[str, Any]] = {}
    for net_name in declares.inference_networks():
        section = declares.networks[net_name].section
        # not built here: an empty stand-in gives size multiple 1 and 0 parameters
        networks[net_name] = card_network(
            resolved.specs[section],
            resolved_table(resolved, section),
            {},
            nn.Identity(),
            section=section,
            ema=f"{net_name}_ema" in saved,
        )
    size = meta.get("image_size") or (resolved.get("data") or {}).get("image_size")
    card = make_card(name, declares, networks, size)
    if card["noise"] is not None:
        options = networks[declares.noise]["options"]
        card["noise"]["latent_dim"] = int(options.get("latent_dim", 100))
    return card


def missing_plugin_hint(message: str, meta: dict[str, Any], registry: Any) -> str:
    """``message`` plus the distribution that provided each component the registry lacks (from the
    checkpoint's ``plugins: {"kind/name": "distribution version"}``; older ones have none)."""
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


def output_file(path: Path, force: bool, protected: list[Path]) -> Path:
    """Where a model file may be written: never a folder, a checkpoint or the file read; an
    existing file only with ``force``. Stale temporary files of killed writes are removed."""
    if path.is_dir():
        raise GanforgeError(f"--out {path} is a folder; give a file name")
    protect_inputs(path, protected)
    if path.exists() and not force:
        raise GanforgeError(f"{path} already exists; pass --force to replace it")
    clean_stale(path)
    return path


def load(path: PathLike, device: str = "auto", precision: str = "auto") -> Model:
    """``ganforge.load``: a :class:`Model` from a run folder, a checkpoint or an exported file."""
    return Model.load(path, device, precision)
