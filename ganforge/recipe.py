"""Recipes: TOML files naming components, typed ``--set`` overrides, validation, resolved dumps.

Validation checks every section before any work starts and fills in every default, so the
resolved recipe saved with a run describes it completely (docs/recipes.md has the format).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import os
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from ganforge import protocols
from ganforge.errors import GanforgeError
from ganforge.registry import (
    Component,
    Param,
    Range,
    Registry,
    Seed,
    coerce_option,
    describe_exception,
    kind_of,
)

OTHER_KEYS = ("train", "description", "baseline")


@dataclasses.dataclass
class TrainConfig:
    """The trainer's options: the ``[train]`` table."""

    seed: Seed = 0
    batch_size: Annotated[int, Range(1, 65536, why="memory: a batch is held at once")] = 1
    epochs: Annotated[int, Range(1, 2**40, why="sample positions are 64-bit integers")] = 200
    # stop after this many optimisation steps; 0: epochs decide
    max_steps: Annotated[int, Range(0, 2**40, why="sample positions are 64-bit integers")] = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    channels_last: bool = True
    compile: bool | Literal["auto", "max-autotune"] = "auto"  # auto: torch.compile on CUDA, not on CPU
    cuda_graph: bool = True  # capture the whole step on CUDA where the components allow it
    # -1: chosen from the device and CPU count
    num_workers: Annotated[int, Range(-1, 1024, why="processes: each worker is one")] = -1
    log_every: Annotated[
        int, Range(1, 100_000, why="memory: each step's losses are held until the log step")
    ] = 50
    deterministic: bool = False
    # A loss over 1000 times its first value (or 1000, if that was below 1) is warned about once, at
    # a log step; true stops the run there instead, with exit code 3 as a NaN loss does.
    stop_on_divergence: bool = False


def train_params() -> list[Param]:
    """The ``[train]`` options, with their types and ranges."""
    hints = typing.get_type_hints(TrainConfig, include_extras=True)
    return [Param(f.name, hints[f.name], f.default) for f in dataclasses.fields(TrainConfig)]


class Recipe:
    """A loaded recipe: the raw tables plus where they came from."""

    def __init__(self, data: dict[str, Any], source: str = "<recipe>") -> None:
        self.data = data
        self.source = source
        self._overridden: set[tuple[str, ...]] = set()  # key paths given with --set
        self._renamed: set[tuple[str, ...]] = set()  # tables whose component --set switched
        self.assignments: list[str] = []  # the --set items applied, in order (run.json shows them)

    @classmethod
    def load(cls, path: str | os.PathLike[str], overrides: list[str] | None = None) -> Recipe:
        """Read a TOML recipe and apply ``section.key=value`` overrides."""
        path = Path(path)
        if not path.is_file():
            raise GanforgeError(f"recipe {path} not found")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise GanforgeError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None
        except UnicodeDecodeError:
            raise GanforgeError(f"{path}: not a text file (expected a TOML recipe)") from None
        except RecursionError:
            raise GanforgeError(f"{path}: values nested deeper than {MAX_DEPTH} levels") from None
        except OSError as exc:
            raise GanforgeError(f"recipe {path} cannot be read: {exc.strerror or exc}") from None
        _check_depth(data, str(path))
        return cls.from_saved(data, str(path), overrides)

    def set(self, assignment: str) -> None:
        """Apply one ``a.b.c=value`` override; the value is parsed as a TOML value."""
        key, sep, raw = (part.strip() for part in assignment.partition("="))
        if not sep or not key or any(not part for part in key.split(".")):
            raise GanforgeError(f"--set {assignment!r}: expected section.key=value")
        value = parse_value(raw)
        parts = key.split(".")
        _check_depth(value, f"--set {key}", len(parts))
        self._overridden.add(tuple(parts))
        self.assignments.append(f"{key}={raw}")
        if parts[-1] == "name":
            self._renamed.add(tuple(parts[:-1]))
        node = self.data
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise GanforgeError(
                    f"--set {assignment!r}: '{'.'.join(parts[: i + 1])}' is a value, not a table"
                )
            node = child
        node[parts[-1]] = value

    @classmethod
    def from_saved(cls, data: dict[str, Any], source: str, overrides: list[str] | None = None) -> Recipe:
        """A recipe from its tables (copied: a checkpoint's, a dict) with ``--set`` items applied."""
        recipe = cls(copy.deepcopy(data), source)
        for item in overrides or []:
            recipe.set(item)
        return recipe

    def section_kinds(self, registry: Registry) -> tuple[dict[str, str], dict[str, Any]]:
        """(section -> kind for single-component sections, role sections -> their Section): the
        kinds' sections plus those the recipe's objective declares."""
        single = {name: kind.name for name, kind in registry.sections().items() if not kind.many}
        roles: dict[str, Any] = {}
        table = self.data.get("objective")
        name = table.get("name") if isinstance(table, dict) else None
        if isinstance(name, str) and name in registry.names("objective"):
            for section in objective_class(registry, name).declares.sections:
                if section.roles:
                    roles[section.name] = section
                else:
                    single[section.name] = section.kind
        return single, roles

    def resolve(self, registry: Registry, measure: bool = True) -> Resolved:
        """Validate every section against the registry; return the recipe with defaults filled.

        The result also holds a typed spec per component section, so building needs no second
        validation (:class:`Builder`). ``measure`` builds the declared networks on the meta device
        to refuse ones too large for the device (off for a saved recipe read for inference).
        """
        src, data = self.source, self.data
        if "objective" not in data:
            raise GanforgeError(f"{src}: missing section [objective] (which training objective to run)")
        objective_table = _expect_table(data["objective"], f"{src} [objective]")
        objective = registry.get("objective", objective_table.get("name"), f"{src} [objective]")
        declares = objective_class(registry, objective.name).declares
        declares.check(objective.name)
        single, roles = self.section_kinds(registry)
        named = {name: kind.name for name, kind in registry.sections().items() if kind.many}
        self._drop_stale_keys(registry, single, roles)
        resolved = Resolved()
        resolved.overrides = list(self.assignments)
        valid_sections = [*single, *roles, *named, *OTHER_KEYS]
        for section in data:
            if section not in valid_sections:
                close = difflib.get_close_matches(section, valid_sections, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise GanforgeError(
                    f"{src}: unknown section '{section}'{hint}; valid sections for objective "
                    f"'{objective.name}': {', '.join(valid_sections)}"
                )
        if "description" in data:
            if not isinstance(data["description"], str):
                raise GanforgeError(f"{src}: 'description' expects str, got {data['description']!r}")
            resolved["description"] = data["description"]
        if "baseline" in data:
            resolved["baseline"] = _resolve_options(data["baseline"], BASELINE_PARAMS, f"{src} [baseline]")
        resolved["train"] = _resolve_options(data.get("train", {}), train_params(), f"{src} [train]")
        for section, kind in single.items():
            if section in data:
                resolved[section] = resolved.add_spec(registry, section, kind, data[section], src)
        for section, decl in roles.items():
            if section in data:
                table = _expect_table(data[section], f"{src} [{section}]")
                unknown = [r for r in table if r not in decl.roles]
                if unknown:
                    raise GanforgeError(
                        f"{src} [{section}.{unknown[0]}]: objective '{objective.name}' reads "
                        f"{', '.join(f'[{section}.{r}]' for r in decl.roles)}, not [{section}.{unknown[0]}]"
                    )
                resolved[section] = {
                    role: resolved.add_spec(registry, f"{section}.{role}", decl.kind, table[role], src)
                    for role in decl.roles
                    if role in table
                }
        for section, kind in named.items():
            # A kind's default components are on unless the recipe turns one off (enabled =
            # false): a partial table adds to them or changes their options, never drops them.
            defaults = {name: {} for name in registry.kind(kind).defaults}
            given = _expect_table(data.get(section, {}), f"{src} [{section}]")
            if section in data or defaults:
                out = {}
                for name, options in {**defaults, **given}.items():
                    where = f"{src} [{section}.{name}]"
                    options = dict(_expect_table(options, where))
                    enabled = options.pop("enabled", True)
                    if not isinstance(enabled, bool):
                        raise GanforgeError(f"{where}: key 'enabled' expects bool, got {enabled!r}")
                    if "name" in options:
                        raise GanforgeError(f"{where}: the table's key is the {kind} name; remove 'name'")
                    entry = resolved.add_spec(
                        registry, f"{section}.{name}", kind, {"name": name, **options}, src
                    )
                    del entry["name"]  # the table's key names the component
                    out[name] = {"enabled": enabled, **entry} if not enabled else entry
                resolved[section] = out
        for section in declares.sections:
            for path in [f"{section.name}.{r}" for r in section.roles] or [section.name]:
                if section.required and path not in resolved.specs:
                    raise GanforgeError(f"{src}: objective '{objective.name}' needs section [{path}]")
        _check_batch_keys(registry, resolved, objective.name, declares, src)
        _check_image_sizes(registry, resolved, src)
        if measure:
            _check_network_sizes(registry, resolved, declares, src)
        return resolved

    def _drop_stale_keys(self, registry: Registry, single: dict[str, str], roles: dict[str, Any]) -> None:
        """After ``--set X.name=other``, drop the file's keys that the new component does not take
        (those given with ``--set`` are still checked strictly)."""
        for path in self._renamed:
            head = path[0] if path else ""
            kind = single.get(head) if len(path) == 1 else (roles[head].kind if head in roles else None)
            node: Any = self.data
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if kind is None or not isinstance(node, dict) or node.get("name") not in registry.names(kind):
                continue  # validation reports what is wrong
            component = registry.get(kind, node["name"])
            if component.accepts_any:
                continue
            accepted = {p.name for p in registry.options(component)} | {"name"}
            for key in [k for k in node if k not in accepted and (*path, k) not in self._overridden]:
                del node[key]


@dataclasses.dataclass(frozen=True)
class Spec:
    """A validated component section: the component and its coerced options."""

    component: Component
    options: dict[str, Any]
    where: str


class Resolved(dict):
    """A resolved recipe: plain data (saved as TOML) plus one :class:`Spec` per component section."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.specs: dict[str, Spec] = {}
        self.overrides: list[str] = []  # the --set items the recipe was resolved with

    def add_spec(self, registry: Registry, path: str, kind: str, table: Any, src: str) -> dict[str, Any]:
        """Validate the table at ``path`` (of recipe ``src``), remember its spec, return its plain form."""
        where = f"{src} [{path}]"
        table = _expect_table(table, where)
        values = registry.validate(kind, table, where)
        component = registry.get(kind, table["name"], where)
        self.specs[path] = Spec(component, values, f"[{path}]")
        out: dict[str, Any] = {"name": component.name}
        for param in registry.options(component):
            if param.name in values:
                out[param.name] = _plain(values[param.name])
            elif not param.required and param.default is not None:
                out[param.name] = _plain(param.default)
        for key, value in values.items():  # options passed through to **kwargs factories
            out.setdefault(key, _plain(value))
        return out

    def plugins(self) -> dict[str, str]:
        """``{"kind/name": "distribution version"}`` for every component section: saved in
        checkpoints so that a missing plugin can be named when the run is loaded elsewhere."""
        return {
            f"{s.component.kind}/{s.component.name}": f"{s.component.distribution} {s.component.version}"
            for s in self.specs.values()
        }


class Builder:
    """Builds the components of a resolved recipe, by section, with no second validation.
    ``defaults`` is context every build gets (``seed``, ``total_steps``...), overridden per call."""

    def __init__(self, registry: Registry, resolved: Resolved, **defaults: Any) -> None:
        self.registry = registry
        self.recipe = resolved
        self.defaults = defaults

    def size_key(self, section: str, context: dict[str, Any] | None = None) -> tuple[Any, ...]:
        """What a network's size depends on: its component, options and context (a cache key)."""
        spec = self.recipe.specs[section]
        return (
            spec.component.factory,
            repr(sorted(spec.options.items())),
            repr(sorted((context or {}).items())),
        )

    def has(self, section: str) -> bool:
        return section in self.recipe.specs

    def context_for(self, section: str, **context: Any) -> dict[str, Any]:
        """The context a build of ``section`` passes: the defaults and ``context`` its factory takes."""
        spec = self.recipe.specs[section]
        return {k: v for k, v in {**self.defaults, **context}.items() if k in spec.component.context}

    def build(self, section: str, **context: Any) -> Any:
        """Build the component a section names (``generator``, ``optim.g``, ``callbacks.samples``)."""
        spec = self.recipe.specs.get(section)
        if spec is None:
            raise GanforgeError(f"recipe has no section [{section}]")
        return self.registry.create(spec.component, spec.options, spec.where, **{**self.defaults, **context})


BASELINE_PARAMS = [
    Param("name", str, "baseline"),  # what the baseline reproduces, shown by bench
    Param("set", list[str], []),  # --set items turning the recipe into the baseline
]


def resolved_table(resolved: dict[str, Any], section: str) -> dict[str, Any]:
    """The resolved options of a component section (``generator``, ``optim.g``), without ``name``."""
    node: Any = resolved
    for part in section.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return {k: v for k, v in node.items() if k != "name"} if isinstance(node, dict) else {}


def objective_class(registry: Registry, name: str) -> type:
    """The class registered as objective ``name``; it must subclass :class:`ganforge.Objective`."""
    from ganforge.method.objective import Objective

    component = registry.get("objective", name)
    factory = component.factory
    if not (isinstance(factory, type) and issubclass(factory, Objective)):
        raise GanforgeError(
            f"objective '{name}' from {component.provider} is not a subclass of ganforge.Objective"
        )
    return factory


def _check_batch_keys(registry: Registry, resolved: Resolved, name: str, declares: Any, src: str) -> None:
    """The objective's batch keys against what the dataset declares it yields (and yields aligned)."""
    spec = resolved.specs.get("data")
    needs = declares.batch_keys
    if spec is None or not needs:
        return
    factory = spec.component.factory
    if not isinstance(factory, protocols.Yields) or not isinstance(factory.yields, dict):
        raise GanforgeError(
            f"{src} [data]: dataset '{spec.component.name}' does not declare the batch keys it "
            "yields (a class attribute 'yields')"
        )
    if any(k not in factory.yields for k in needs):
        raise GanforgeError(
            f"{src} [data]: objective '{name}' needs batch keys {', '.join(needs)}; dataset "
            f"'{spec.component.name}' yields {', '.join(factory.yields) or 'none'}"
        )
    if not set(declares.paired) <= set(protocols.aligned(factory)):
        raise GanforgeError(
            f"{src} [data]: objective '{name}' trains on aligned pairs ({', '.join(declares.paired)}) "
            f"and dataset '{spec.component.name}' does not yield them aligned: use a paired dataset "
            "(ganforge list datasets)"
        )


def full_options(registry: Registry, spec: Spec) -> dict[str, Any]:
    """A component's options with every default filled in (what its factory will get)."""
    return {**{p.name: p.default for p in registry.options(spec.component) if not p.required}, **spec.options}


def data_image_size(registry: Registry, resolved: Resolved) -> int | None:
    """The square side of the dataset's images: its factory's ``output_size(options)`` if it
    declares one, else its ``image_size`` option; None when it says neither."""
    spec = resolved.specs.get("data")
    if spec is None:
        return None
    factory, options = spec.component.factory, full_options(registry, spec)
    size = options.get("image_size")
    try:
        if isinstance(factory, protocols.OutputSize):
            size = factory.output_size(options)
    except Exception as exc:  # a plugin's bug: name it, no traceback
        raise GanforgeError(
            f"[data]: output_size of dataset '{spec.component.name}' from {spec.component.provider} "
            f"failed ({describe_exception(exc)})"
        ) from None
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def image_size_problem(registry: Registry, spec: Spec, size: int) -> str | None:
    """Why the component of ``spec`` cannot work with ``size`` px square images, or None (None
    too for a factory without ``check_image_size``, :class:`ganforge.protocols.SizeCheck`)."""
    factory = spec.component.factory
    if not isinstance(factory, protocols.SizeCheck):
        return None
    try:
        return factory.check_image_size(full_options(registry, spec), size)
    except Exception as exc:  # a plugin's check failing is its bug: name it, no traceback
        return f"its check_image_size from {spec.component.provider} failed ({describe_exception(exc)})"


def _check_image_sizes(registry: Registry, resolved: Resolved, src: str) -> None:
    """Every component that declares which image sizes it can work with, against the dataset's."""
    size = data_image_size(registry, resolved)
    if size is None:
        return
    for path, spec in resolved.specs.items():
        problem = image_size_problem(registry, spec, size) if path != "data" else None
        if problem:
            raise GanforgeError(
                f"{src} [{path}]: {spec.component.kind} '{spec.component.name}' cannot work on the "
                f"{size} px images of [data]: {problem}"
            )


def _check_network_sizes(registry: Registry, resolved: Resolved, declares: Any, src: str) -> None:
    """The declared networks, measured on the meta device: weights that cannot fit the training
    device's memory are refused now (the objective checks training's full need when it builds)."""
    import torch

    from ganforge.safety import MemoryBudget

    use_cuda = resolved["train"]["device"] in ("auto", "cuda") and torch.cuda.is_available()
    budget = MemoryBudget(torch.device("cuda" if use_cuda else "cpu"), 1.0, strict=False)
    try:
        for name, net in declares.networks.items():
            spec = resolved.specs.get(net.section)
            if spec is not None:
                budget.add(
                    f"{name} [{net.section}]",
                    lambda spec=spec: registry.create(spec.component, spec.options, spec.where),
                    Builder(registry, resolved).size_key(net.section),
                )
    except GanforgeError as exc:
        raise GanforgeError(f"{src}: {exc}") from None


def _expect_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GanforgeError(f"{where}: expected a table, got {kind_of(value)} {value!r}")
    return value


def _resolve_options(table: Any, params: list[Param], where: str) -> dict[str, Any]:
    by_name = {p.name: p for p in params}
    out = {}
    for key, value in _expect_table(table, where).items():
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise GanforgeError(f"{where}: unknown key '{key}'{hint}; valid keys: {', '.join(by_name)}")
        out[key] = coerce_option(value, by_name[key], f"{where}: key '{key}'")
    return {p.name: _plain(out.get(p.name, p.default)) for p in params}


def _plain(value: Any) -> Any:
    """TOML-friendly form: tuples become lists."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


MAX_DEPTH = 32  # recipes are a few tables deep; deeper values would only exhaust recursion


def _check_depth(value: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise GanforgeError(f"{where}: values nested deeper than {MAX_DEPTH} levels")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        _check_depth(child, where, depth + 1)


def parse_value(raw: str) -> Any:
    """Parse an override value as TOML (int, float, bool, string, list, inline table); anything
    else is a plain string, so ``data.root=../x`` works without quotes."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return {"true": True, "false": False}.get(raw.lower(), raw)
    except RecursionError:
        raise GanforgeError(f"--set value nested deeper than {MAX_DEPTH} levels") from None


# -- writing TOML (the standard library only reads it) ---------------------------------------


def dumps(data: dict[str, Any]) -> str:
    """Serialise a recipe dict to TOML."""
    lines: list[str] = []
    _dump_table(data, [], lines)
    return "\n".join(lines).strip() + "\n"


def _dump_table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines += ["", f"[{'.'.join(_key(p) for p in path)}]"]
    lines += [f"{_key(key)} = {_value(value)}" for key, value in scalars.items() if value is not None]
    for key, value in tables.items():
        _dump_table(value, [*path, key], lines)


def _key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "-_" for c in key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):  # JSON has no spelling for these
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, bool | int | float | str):  # JSON's spelling is TOML's
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} to TOML")
