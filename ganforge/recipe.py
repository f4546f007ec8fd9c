"""Recipes: TOML files naming components, typed ``--set`` overrides, validation, resolved dumps.

A recipe's sections map to component kinds (see ``SECTIONS``). A component section is a table
with ``name`` (the registry name) and that component's options. ``optim`` holds one optimizer
table per role (``optim.g``, ``optim.d``); ``callbacks`` and ``metrics`` hold one table per
component, keyed by its name. ``train`` holds the trainer's own options (:class:`TrainConfig`).
Validation checks every section before any work starts and fills in every default, so the
resolved recipe saved with a run describes it completely.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from ganforge.errors import GanforgeError
from ganforge.registry import Param, Registry, coerce, type_name

# section -> component kind, for single-component sections
SECTIONS: dict[str, str] = {
    "objective": "objective",
    "data": "dataset",
    "generator": "generator",
    "discriminator": "discriminator",
    "loss": "loss",
    "pool": "pool",
    "schedule": "scheduler",
    "compositor": "compositor",
}
# sections holding several components of one kind: {role: table with name}
ROLE_SECTIONS: dict[str, str] = {"optim": "optimizer"}
# sections holding several components of one kind: {component name: options}
NAMED_SECTIONS: dict[str, str] = {"callbacks": "callback", "metrics": "metric"}
OTHER_KEYS = ("train", "description")


@dataclasses.dataclass
class TrainConfig:
    """The trainer's options: the ``[train]`` table."""

    seed: int = 0
    batch_size: int = 1
    epochs: int = 200
    max_steps: int = 0  # stop after this many optimisation steps; 0 means epochs decide
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    channels_last: bool = True
    compile: bool | Literal["auto", "max-autotune"] = "auto"  # auto: torch.compile on CUDA, not on CPU
    cuda_graph: bool = True  # capture the whole step on CUDA where the components allow it
    num_workers: int = -1  # -1: chosen from the device and CPU count
    log_every: int = 50
    deterministic: bool = False


# Smallest allowed value of [train] integers; anything lower is a one-line error.
TRAIN_MINIMUM = {"batch_size": 1, "epochs": 1, "max_steps": 0, "log_every": 1, "num_workers": -1}


def train_params() -> list[Param]:
    hints = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    import typing

    resolved = typing.get_type_hints(TrainConfig)
    return [
        Param(f.name, resolved.get(f.name, hints[f.name]), f.default) for f in dataclasses.fields(TrainConfig)
    ]


class Recipe:
    """A loaded recipe: the raw tables plus where they came from."""

    def __init__(self, data: dict[str, Any], source: str = "<recipe>") -> None:
        self.data = data
        self.source = source
        self._overridden: set[tuple[str, ...]] = set()  # key paths given with --set
        self._renamed: set[tuple[str, ...]] = set()  # tables whose component --set switched

    # -- loading and overrides ---------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str], overrides: list[str] | None = None) -> Recipe:
        """Read a TOML recipe and apply ``section.key=value`` overrides."""
        path = Path(path)
        if not path.is_file():
            raise GanforgeError(f"recipe {path} not found")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise GanforgeError(f"{path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise GanforgeError(f"{path}: not a text file (expected a TOML recipe)") from None
        recipe = cls(data, str(path))
        for item in overrides or []:
            recipe.set(item)
        return recipe

    def set(self, assignment: str) -> None:
        """Apply one ``a.b.c=value`` override; the value is parsed as a TOML value."""
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise GanforgeError(f"--set {assignment!r}: expected section.key=value")
        value = parse_value(raw.strip())
        parts = key.split(".")
        self._overridden.add(tuple(parts))
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

    # -- validation ------------------------------------------------------------------------

    def resolve(self, registry: Registry) -> dict[str, Any]:
        """Validate every section against the registry; return the recipe with defaults filled."""
        src = self.source
        data = self.data
        self._drop_stale_keys(registry)
        resolved: dict[str, Any] = {}
        valid_sections = [*SECTIONS, *ROLE_SECTIONS, *NAMED_SECTIONS, *OTHER_KEYS]
        for section in data:
            if section not in valid_sections:
                close = difflib.get_close_matches(section, valid_sections, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise GanforgeError(
                    f"{src}: unknown section '{section}'{hint}; valid sections: {', '.join(valid_sections)}"
                )
        if "description" in data:
            if not isinstance(data["description"], str):
                raise GanforgeError(f"{src}: 'description' expects str, got {data['description']!r}")
            resolved["description"] = data["description"]
        resolved["train"] = _resolve_options(data.get("train", {}), train_params(), f"{src} [train]")
        for key, low in TRAIN_MINIMUM.items():
            if resolved["train"][key] < low:
                raise GanforgeError(
                    f"{src} [train]: key '{key}' must be >= {low}, got {resolved['train'][key]}"
                )
        if "objective" not in data:
            raise GanforgeError(f"{src}: missing section [objective] (which training objective to run)")
        for section, kind in SECTIONS.items():
            if section in data:
                resolved[section] = _resolve_component(registry, kind, data[section], f"{src} [{section}]")
        for section, kind in ROLE_SECTIONS.items():
            if section in data:
                table = _expect_table(data[section], f"{src} [{section}]")
                resolved[section] = {
                    role: _resolve_component(registry, kind, sub, f"{src} [{section}.{role}]")
                    for role, sub in table.items()
                }
        for section, kind in NAMED_SECTIONS.items():
            if section in data:
                table = _expect_table(data[section], f"{src} [{section}]")
                out = {}
                for name, options in table.items():
                    where = f"{src} [{section}.{name}]"
                    options = dict(_expect_table(options, where))
                    enabled = options.pop("enabled", True)
                    if not isinstance(enabled, bool):
                        raise GanforgeError(f"{where}: key 'enabled' expects bool, got {enabled!r}")
                    if "name" in options:
                        raise GanforgeError(f"{where}: the table's key is the {kind} name; remove 'name'")
                    entry = _resolve_component(registry, kind, {"name": name, **options}, where)
                    entry.pop("name")
                    out[name] = {"enabled": enabled, **entry} if not enabled else entry
                resolved[section] = out
        objective = registry.get("objective", resolved["objective"]["name"])
        for needed in getattr(objective.factory, "required_sections", ()):
            head, _, role = needed.partition(".")
            if head not in resolved or (role and role not in resolved[head]):
                raise GanforgeError(f"{src}: objective '{objective.name}' needs section [{needed}]")
        return resolved

    def _drop_stale_keys(self, registry: Registry) -> None:
        """After ``--set X.name=other``, drop the file's keys that the new component does not take.

        ``--set schedule.name=cyclic`` then works although the file sets ``constant_epochs``;
        keys given with ``--set`` are still checked strictly.
        """
        for path in self._renamed:
            head = path[0] if path else ""
            kind = SECTIONS.get(head) or (ROLE_SECTIONS.get(head) if len(path) == 2 else None)
            node: Any = self.data
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if kind is None or not isinstance(node, dict):
                continue
            try:
                component = registry.get(kind, node.get("name"))
            except GanforgeError:
                continue  # validation reports the unknown name
            if component.accepts_any:
                continue
            accepted = {p.name for p in registry.options(component)} | {"name"}
            for key in [k for k in node if k not in accepted and (*path, k) not in self._overridden]:
                del node[key]


def build_section(registry: Registry, resolved: dict[str, Any], section: str, **context: Any) -> Any:
    """Build the component a resolved recipe's section names (``generator``, ``optim.g``, ...)."""
    head, _, role = section.partition(".")
    table = resolved.get(head)
    if role and isinstance(table, dict):
        table = table.get(role)
    kind = SECTIONS.get(head) or ROLE_SECTIONS.get(head)
    if kind is None:
        raise GanforgeError(f"[{section}] is not a component section")
    if table is None:
        raise GanforgeError(f"recipe has no section [{section}]")
    return registry.build(kind, table, f"[{section}]", **context)


def _expect_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GanforgeError(f"{where}: expected a table, got {_kind_of(value)} {value!r}")
    return value


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return {list: "list", dict: "table"}.get(type(value), type(value).__name__)


def _resolve_component(registry: Registry, kind: str, table: Any, where: str) -> dict[str, Any]:
    table = _expect_table(table, where)
    values = registry.validate(kind, table, where)
    component = registry.get(kind, table["name"], where)
    out: dict[str, Any] = {"name": component.name}
    for param in registry.options(component):
        if param.name in values:
            out[param.name] = _plain(values[param.name])
        elif not param.required and param.default is not None:
            out[param.name] = _plain(param.default)
    for key, value in values.items():  # options passed through to **kwargs factories
        out.setdefault(key, _plain(value))
    return out


def _resolve_options(table: Any, params: list[Param], where: str) -> dict[str, Any]:
    table = _expect_table(table, where)
    by_name = {p.name: p for p in params}
    out = {}
    for key, value in table.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise GanforgeError(f"{where}: unknown key '{key}'{hint}; valid keys: {', '.join(by_name)}")
        try:
            out[key] = coerce(value, by_name[key].annotation)
        except TypeError:
            raise GanforgeError(
                f"{where}: key '{key}' expects {type_name(by_name[key].annotation)}, got "
                f"{_kind_of(value)} {value!r}"
            ) from None
    return {p.name: _plain(out.get(p.name, p.default)) for p in params}


def _plain(value: Any) -> Any:
    """TOML-friendly form: tuples become lists."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def parse_value(raw: str) -> Any:
    """Parse an override value as TOML (int, float, bool, string, list, inline table).

    Anything that is not valid TOML is taken as a plain string, so ``data.root=../x`` works
    without quotes.
    """
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return raw


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
        lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in path)}]")
    for key, value in scalars.items():
        if value is None:
            continue
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        _dump_table(value, [*path, key], lines)


def _key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "-_" for c in key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} to TOML")


def loads_resolved(text: str) -> dict[str, Any]:
    """Read a resolved recipe saved by :func:`dumps`."""
    return tomllib.loads(text)


def deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(data)
