"""Component registries: every component reachable by kind and name.

A component is a factory (class or function) that a plugin registered. Its recipe options are
read from the factory signature, so a recipe table is checked (names and types) before anything
is built.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ganforge.errors import GanforgeError

_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class KindSpec:
    """One component kind: the hook that fills it, and what ganforge passes when building."""

    name: str
    hook: str
    context: tuple[str, ...] = ()
    common: tuple[tuple[str, Any, Any], ...] = ()  # (option, type, default) every component takes


_NETWORK_COMMON = (
    ("init", Literal["normal", "xavier", "kaiming", "orthogonal", "none"], "normal"),
    ("init_gain", float, 0.02),
)

KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in [
        KindSpec("generator", "register_generators", common=_NETWORK_COMMON),
        KindSpec("discriminator", "register_discriminators", common=_NETWORK_COMMON),
        KindSpec("loss", "register_losses"),
        KindSpec("pool", "register_pools"),
        KindSpec("callback", "register_callbacks"),
        KindSpec("dataset", "register_datasets", context=("seed",)),
        KindSpec("optimizer", "register_optimizers", context=("params",)),
        KindSpec("scheduler", "register_schedulers", context=("steps_per_epoch", "total_steps")),
        KindSpec("metric", "register_metrics"),
        KindSpec("feature_extractor", "register_feature_extractors"),
        KindSpec("mask_provider", "register_mask_providers"),
        KindSpec("compositor", "register_compositors"),
        KindSpec("objective", "register_objectives", context=("recipe", "build", "runtime")),
        KindSpec("data_source", "register_data_sources"),
    ]
}


@dataclass(frozen=True)
class Param:
    """One recipe option of a component."""

    name: str
    annotation: Any
    default: Any = _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)

    def to_json(self) -> dict[str, Any]:
        default = None if self.required else _jsonable(self.default)
        return {"name": self.name, "type": self.type_name, "default": default, "required": self.required}


@dataclass
class Component:
    """A registered component and where it came from."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str
    version: str
    params: list[Param] = field(default_factory=list)
    accepts_any: bool = False  # the factory takes **kwargs: unknown keys are passed through
    context: tuple[str, ...] = ()  # the kind's context arguments this factory takes

    @property
    def doc(self) -> str:
        text = inspect.getdoc(self.factory) or ""
        return text.strip().splitlines()[0] if text.strip() else ""

    @property
    def provider(self) -> str:
        return f"plugin '{self.plugin}' ({self.distribution} {self.version})"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "params": [p.to_json() for p in self.params],
            "doc": self.doc,
        }


# ---------------------------------------------------------------------------------------------
# Types: what a recipe value may be for a given annotation.


def type_name(annotation: Any) -> str:
    """A short human name for an annotation, e.g. ``list[float]`` or ``'a' | 'b'``."""
    if annotation is _MISSING or annotation is Any:
        return "any"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin in (list, tuple, dict):
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]" if args else origin.__name__
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _value_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def coerce(value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to ``annotation``, or raise ``TypeError``."""
    if annotation is _MISSING or annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        if value in args and not (isinstance(value, bool) != any(isinstance(a, bool) for a in args)):
            return value
        raise TypeError
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg)
            except TypeError:
                continue
        raise TypeError
    if origin is list:
        if not isinstance(value, list | tuple):
            raise TypeError
        return [coerce(v, args[0]) if args else v for v in value]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0]) for v in value)
        if len(args) != len(value):
            raise TypeError
        return tuple(coerce(v, a) for v, a in zip(value, args))
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise TypeError
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if annotation is str:
        if isinstance(value, str):
            return value
        raise TypeError
    if annotation is type(None):
        if value is None:
            return None
        raise TypeError
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise TypeError
    return value  # an annotation we cannot check (a forward reference, a protocol): accept


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def signature_params(
    factory: Callable[..., Any], skip: Iterable[str] = ()
) -> tuple[list[Param], bool, tuple[str, ...]]:
    """Read a factory's signature: (recipe options, takes **kwargs, context names it takes)."""
    skip = set(skip)
    try:
        sig = inspect.signature(factory, eval_str=True)
    except (NameError, TypeError):
        sig = inspect.signature(factory)
    params, accepts_any, context = [], False, []
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            accepts_any = True
        elif p.name in skip:
            context.append(p.name)
        elif p.kind is not p.VAR_POSITIONAL and not p.name.startswith("_"):
            params.append(Param(p.name, p.annotation, p.default))
    if accepts_any:
        context = [n for n in skip]
    return params, accepts_any, tuple(context)


# ---------------------------------------------------------------------------------------------


class Registry:
    """All components, by kind and name."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def add(self, component: Component) -> None:
        """Add a component; the same name twice for one kind is an error naming both."""
        existing = self._components[component.kind].get(component.name)
        if existing is not None:
            raise GanforgeError(
                f"{component.kind} '{component.name}' is registered twice: by {existing.provider} "
                f"and by {component.provider}"
            )
        self._components[component.kind][component.name] = component

    def kinds(self) -> list[str]:
        return list(self._components)

    def names(self, kind: str) -> list[str]:
        return sorted(self._components[self._kind(kind)])

    def all(self, kind: str | None = None) -> list[Component]:
        kinds = [self._kind(kind)] if kind else list(self._components)
        return [self._components[k][n] for k in kinds for n in sorted(self._components[k])]

    def get(self, kind: str, name: str, where: str = "") -> Component:
        """The component ``name`` of ``kind``; unknown names get the closest ones suggested."""
        kind = self._kind(kind)
        if not isinstance(name, str):
            raise GanforgeError(f"{where}: 'name' must be a string naming a {kind}, got {name!r}")
        try:
            return self._components[kind][name]
        except KeyError:
            pass
        known = self.names(kind)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        available = f"available: {', '.join(known) or 'none'}"
        prefix = f"{where}: " if where else ""
        raise GanforgeError(f"{prefix}unknown {kind} '{name}'; {hint + ' ' if hint else ''}{available}")

    def options(self, component: Component) -> list[Param]:
        """Every recipe option of a component: its own plus those common to its kind."""
        own = {p.name for p in component.params}
        common = [Param(n, t, d) for n, t, d in KINDS[component.kind].common if n not in own]
        return component.params + common

    def validate(self, kind: str, table: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Check a recipe table (``name`` plus options) and return the coerced options."""
        if not isinstance(table, dict):
            raise GanforgeError(f"{where}: expected a table naming a {kind}, got {table!r}")
        if "name" not in table:
            raise GanforgeError(f"{where}: missing key 'name' (which {kind} to use)")
        component = self.get(kind, table["name"], where)
        options = {p.name: p for p in self.options(component)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "name":
                continue
            param = options.get(key)
            if param is None:
                if component.accepts_any:
                    values[key] = value
                    continue
                close = difflib.get_close_matches(key, list(options), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                valid = ", ".join(["name", *options])
                raise GanforgeError(
                    f"{where}: unknown key '{key}' for {kind} '{component.name}'{hint}; valid keys: {valid}"
                )
            try:
                values[key] = coerce(value, param.annotation)
            except TypeError:
                raise GanforgeError(
                    f"{where}: key '{key}' expects {param.type_name}, got {_value_type_name(value)} {value!r}"
                ) from None
        missing = [p.name for p in options.values() if p.required and p.name not in values]
        if missing:
            raise GanforgeError(f"{where}: {kind} '{component.name}' needs key(s): {', '.join(missing)}")
        return values

    def build(self, kind: str, table: dict[str, Any], where: str = "", **context: Any) -> Any:
        """Validate ``table`` and call the factory with its options plus ``context``."""
        kind = self._kind(kind)
        values = self.validate(kind, table, where)
        component = self.get(kind, table["name"], where)
        common = {
            n: values.pop(n, d)
            for n, _, d in KINDS[kind].common
            if n not in {p.name for p in component.params}
        }
        ctx = {k: v for k, v in context.items() if k in component.context}
        try:
            obj = component.factory(**ctx, **values)
        except ValueError as exc:  # a factory rejecting an option's value is a user error
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise GanforgeError(
                f"{where + ': ' if where else ''}{kind} '{component.name}': {message}"
            ) from None
        except GanforgeError as exc:
            if where and not str(exc).startswith(where):
                raise GanforgeError(f"{where}: {exc}") from None
            raise
        if kind in ("generator", "discriminator") and common:
            from ganforge.nn import init_weights

            init_weights(obj, common["init"], common["init_gain"])
        return obj

    def _kind(self, kind: str | None) -> str:
        """Accept a kind as written anywhere: ``loss``, ``losses``, ``mask-provider``, ``mask_providers``."""
        key = (kind or "").strip().lower().replace("-", "_")
        for name in self._components:
            if key in (name, plural(name)):
                return name
        raise GanforgeError(f"unknown component kind '{kind}'; kinds: {', '.join(self._components)}")


def plural(kind: str) -> str:
    """``loss`` -> ``losses``, ``generator`` -> ``generators``."""
    return kind + ("es" if kind.endswith("s") else "s")
