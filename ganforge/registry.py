"""Component registries: every kind and every component (both from plugins) by kind and name.

A component's recipe options are read from its factory's signature, so a recipe table is checked
(names and types) before anything is built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from ganforge.errors import GanforgeError

_MISSING = inspect.Parameter.empty


class OutOfRange(ValueError):
    """A value of the right type outside its declared range (the message says what is valid)."""


# Options are computed in float32: beyond this a value overflows to infinity in the first step.
FLOAT32_MAX = 3.4028234663852886e38
_FLOAT32_WHY = "float32: larger values overflow to infinity"
# Integers end up in int64 (tensor sizes, seeds, sample positions).
INT64_MAX = 2**63 - 1
_INT64_WHY = "int64: larger values overflow"


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric option's valid range, declared next to its type.

    ``lr: Annotated[float, Range(0, min_open=True)] = 2e-4``. Floats must be finite unless ``max`` is
    ``math.inf``; a side without a bound holds floats to float32's range (about 3.4e38, what training computes
    in) and ints to int64's. ``why`` (what an upper bound protects: memory, time) is shown in errors.
    """

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    why: str = ""

    def describe(self, why: bool = True) -> str:
        """``>= 0 and <= 1000 (time: ...)``; without the reason when ``why`` is false."""
        parts = []
        if self.min is not None:
            parts.append(f"{'>' if self.min_open else '>='} {_number(self.min)}")
        if self.max is not None and self.max != math.inf:
            parts.append(f"{'<' if self.max_open else '<='} {_number(self.max)}")
        text = " and ".join(parts) or "finite"
        return text + (f" ({self.why})" if self.why and why else "")

    def check(self, value: float) -> None:
        """Raise :class:`OutOfRange` saying the bound ``value`` breaks (both for NaN)."""
        if isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and self.max != math.inf)):
            raise OutOfRange(self.describe())
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            raise OutOfRange(Range(self.min, None, self.min_open).describe())
        if self.max is not None and (value >= self.max if self.max_open else value > self.max):
            raise OutOfRange(Range(None, self.max, max_open=self.max_open, why=self.why).describe())
        top, why = (FLOAT32_MAX, _FLOAT32_WHY) if isinstance(value, float) else (INT64_MAX, _INT64_WHY)
        if self.max is None and value > top:
            raise OutOfRange(Range(None, top, why=why).describe())
        if self.min is None and value < -top:
            raise OutOfRange(Range(-top, None).describe() + f" ({why})")


Seed = Annotated[int, Range(0, INT64_MAX, why="a 64-bit generator seed")]  # any seed option


def _number(value: float) -> str:
    """A bound as written: ints in full (2**63 - 1 is not 9.22337e+18), floats short."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) in (2**63 - 1, 2**63):
            return ("-" if value < 0 else "") + ("2**63 - 1" if abs(value) == 2**63 - 1 else "2**63")
        return f"{value:,}" if abs(value) >= 100_000 else str(value)
    return f"{value:g}"


@dataclasses.dataclass(frozen=True)
class Kind:
    """A component kind, registered by a plugin through ``register_kinds`` like any component.

    ``context``: the arguments the builder passes (not recipe options). ``common``: ``(option, type,
    default)`` every component of the kind accepts, applied by ``finish(component, options)`` after the
    factory returns. ``section``: the recipe section configuring the kind outside any objective (``[data]``);
    with ``many``, one table per component (``[callbacks.samples]``) and ``defaults`` on unless the recipe
    turns one off (``enabled = false``). The components come through the hook ``register_<plural>(register)``.
    """

    name: str
    doc: str
    context: tuple[str, ...] = ()
    common: tuple[tuple[str, Any, Any], ...] = ()
    finish: Callable[[Any, dict[str, Any]], Any] | None = None
    section: str = ""
    many: bool = False
    defaults: tuple[str, ...] = ()
    plugin: str = ""  # filled in by the plugin host
    distribution: str = ""

    @property
    def hook(self) -> str:
        return f"register_{plural(self.name)}"

    def to_json(self) -> dict[str, Any]:
        common = [{"name": n, "type": type_name(t), "default": _jsonable(d)} for n, t, d in self.common]
        rest = {k: getattr(self, k) for k in ("section", "plugin", "distribution", "doc")}
        return {"kind": self.name, "hook": self.hook, "context": list(self.context), "common": common, **rest}


@dataclasses.dataclass(frozen=True)
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
        """``type`` is the plain type; a declared range is ``range`` (machine-readable bounds)."""
        out = {"name": self.name, "type": type_name(self.annotation, ranges=False)}
        out |= {"default": None if self.required else _jsonable(self.default), "required": self.required}
        ranges = [m for m in getattr(self.annotation, "__metadata__", ()) if isinstance(m, Range)]
        if ranges:
            out["range"] = {**dataclasses.asdict(ranges[0]), "text": ranges[0].describe()}
        return out


@dataclasses.dataclass
class Component:
    """A registered component and where it came from."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str
    version: str
    params: list[Param] = dataclasses.field(default_factory=list)
    accepts_any: bool = False  # the factory takes **kwargs: unknown keys are passed through
    context: tuple[str, ...] = ()  # the kind's context arguments this factory takes

    @property
    def doc(self) -> str:
        return (inspect.getdoc(self.factory) or "").strip().partition("\n")[0]

    @property
    def provider(self) -> str:
        return f"plugin '{self.plugin}' ({self.distribution} {self.version})"

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("kind", "name", "plugin", "distribution", "version")}
        return {**data, "params": [p.to_json() for p in self.params], "doc": self.doc}


def type_name(annotation: Any, ranges: bool = True) -> str:
    """A short human name for an annotation, e.g. ``list[float]`` or ``'a' | 'b'``
    (with declared ranges, ``float (>= 0)``, unless ``ranges`` is false)."""
    if annotation is _MISSING or annotation is Any:
        return "any"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        found = [m.describe(why=False) for m in annotation.__metadata__ if ranges and isinstance(m, Range)]
        return type_name(args[0], ranges) + (f" ({', '.join(found)})" if found else "")
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a, ranges) for a in args)
    if origin in (list, tuple, dict):
        inner = ", ".join("..." if a is Ellipsis else type_name(a, ranges) for a in args)
        return f"{origin.__name__}[{inner}]" if args else origin.__name__
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def kind_of(value: Any) -> str:
    """A recipe value's type as a recipe names it: ``bool``, ``list``, ``table``, ``str``..."""
    return {list: "list", dict: "table"}.get(type(value), type(value).__name__)


def coerce(value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to ``annotation``; ``TypeError`` or :class:`OutOfRange` if not."""
    if annotation is _MISSING or annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        ranges = [m for m in annotation.__metadata__ if isinstance(m, Range)]
        inner = args[0]
        if ranges and inner in (int, float):  # the range decides: infinity, int64's or float32's bounds
            if not isinstance(value, int | inner) or isinstance(value, bool):
                raise TypeError
            value = inner(value)
        else:
            value = coerce(value, inner)
        for r in ranges:
            r.check(value)
        return value
    if origin is Literal:
        if value in args and not (isinstance(value, bool) != any(isinstance(a, bool) for a in args)):
            return value
        raise TypeError
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            with contextlib.suppress(TypeError):
                return coerce(value, arg)
        raise TypeError
    if origin in (list, tuple) and not isinstance(value, list | tuple):
        raise TypeError
    if origin is list:
        return [coerce(v, args[0]) if args else v for v in value]
    if origin is tuple:
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0]) for v in value)
        if len(args) != len(value):
            raise TypeError
        return tuple(coerce(v, a) for v, a in zip(value, args))
    if origin is dict:
        return coerce(value, dict)
    if annotation is int or annotation is float:  # finite, within int64's or float32's range
        return coerce(value, Annotated[annotation, Range()])
    if annotation is str and isinstance(value, str) and "\x00" in value:
        # no path, name or key may hold one (the OS refuses them later)
        raise OutOfRange("a string without NUL characters")
    if isinstance(annotation, type):  # bool, str, None, dict, a class
        if isinstance(value, annotation):
            return value
        raise TypeError
    return value  # an annotation we cannot check (a forward reference, a protocol): accept


def coerce_option(value: Any, param: Param, where: str) -> Any:
    """:func:`coerce` with a one-line user error naming ``where``, the type and the value."""
    try:
        return coerce(value, param.annotation)
    except OutOfRange as exc:
        raise GanforgeError(f"{where} must be {exc}, got {_short_repr(value)}") from None
    except (TypeError, OverflowError):  # the type alone: the range is not the issue
        expected = type_name(param.annotation, ranges=False)
        raise GanforgeError(
            f"{where} expects {expected}, got {kind_of(value)} {_short_repr(value)}"
        ) from None


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr`` cut to one readable piece (a fuzzed 10 MB string is not echoed whole)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
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
    return params, accepts_any, tuple(skip if accepts_any else context)


class Registry:
    """All component kinds, and all components by kind and name."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}
        self._components: dict[str, dict[str, Component]] = {}

    def add_kind(self, kind: Kind) -> None:
        """Add a component kind; the same kind twice is an error naming both plugins."""
        existing = self._kinds.get(kind.name)
        if existing is not None:
            raise GanforgeError(
                f"component kind '{kind.name}' is registered twice: by plugin '{existing.plugin}' "
                f"({existing.distribution}) and by plugin '{kind.plugin}' ({kind.distribution})"
            )
        self._kinds[kind.name] = kind
        self._components[kind.name] = {}

    def add(self, component: Component) -> None:
        """Add a component; the same name twice for one kind is an error naming both."""
        existing = self._components[component.kind].get(component.name)
        if existing is not None:
            raise GanforgeError(
                f"{component.kind} '{component.name}' is registered twice: by {existing.provider} "
                f"and by {component.provider}"
            )
        self._components[component.kind][component.name] = component

    def remove(self, component: Component) -> None:
        self._components[component.kind].pop(component.name, None)

    def kind(self, kind: str) -> Kind:
        return self._kinds[self._kind(kind)]

    def kinds(self) -> list[str]:
        return list(self._kinds)

    def sections(self) -> dict[str, Kind]:
        """The recipe sections kinds declare (``[data]``, ``[callbacks]``), by section name."""
        return {k.section: k for k in self._kinds.values() if k.section}

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
        if name in self._components[kind]:
            return self._components[kind][name]
        known = self.names(kind)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        prefix = f"{where}: " if where else ""
        raise GanforgeError(f"{prefix}unknown {kind} '{name}'; {hint}available: {', '.join(known) or 'none'}")

    def options(self, component: Component) -> list[Param]:
        """Every recipe option of a component: its own plus those common to its kind."""
        own = {p.name for p in component.params}
        common = [Param(n, t, d) for n, t, d in self._kinds[component.kind].common if n not in own]
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
            if key in options:
                values[key] = coerce_option(value, options[key], f"{where}: key '{key}'")
            elif component.accepts_any:
                values[key] = value
            else:
                close = difflib.get_close_matches(key, list(options), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                valid = ", ".join(["name", *options])
                raise GanforgeError(
                    f"{where}: unknown key '{key}' for {kind} '{component.name}'{hint}; valid keys: {valid}"
                )
        missing = [p.name for p in options.values() if p.required and p.name not in values]
        if missing:
            raise GanforgeError(f"{where}: {kind} '{component.name}' needs key(s): {', '.join(missing)}")
        return values

    def build(self, kind: str, table: dict[str, Any], where: str = "", **context: Any) -> Any:
        """Validate ``table`` and build it (for tables made at run time, e.g. ``--composite``)."""
        values = self.validate(kind, table, where)
        return self.create(self.get(kind, table["name"], where), values, where, **context)

    def create(self, component: Component, options: dict[str, Any], where: str = "", **context: Any) -> Any:
        """Call the factory with already validated ``options`` plus the context it takes."""
        kind = self._kinds[component.kind]
        own = {p.name for p in component.params}
        values = dict(options)
        common = {n: values.pop(n, d) for n, _, d in kind.common if n not in own}
        ctx = {k: v for k, v in context.items() if k in component.context}
        prefix = f"{where + ': ' if where else ''}{kind.name} '{component.name}'"
        try:
            obj = component.factory(**ctx, **values)
            if kind.finish is not None and common:
                obj = kind.finish(obj, common)
        except GanforgeError as exc:
            if where and not str(exc).startswith(where):
                raise type(exc)(f"{where}: {exc}") from None
            raise
        except ValueError as exc:  # a factory rejecting an option's value is a user error
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise GanforgeError(f"{prefix}: {message}") from None
        except Exception as exc:
            # Any other failure (a plugin's bug, a size the allocator refuses) names the component
            # and its plugin instead of a traceback; GANFORGE_DEBUG=1 keeps the traceback.
            if os.environ.get("GANFORGE_DEBUG"):
                raise
            raise GanforgeError(
                f"{prefix} from {component.provider} failed: {describe_exception(exc)}"
            ) from None
        return obj

    def _kind(self, kind: str | None) -> str:
        """Accept a kind as written anywhere: ``loss``, ``losses``, ``mask-provider``, ``mask_providers``."""
        key = (kind or "").strip().lower().replace("-", "_")
        for name in self._kinds:
            if key in (name, plural(name)):
                return name
        raise GanforgeError(f"unknown component kind '{kind}'; kinds: {', '.join(self._kinds)}")


def describe_exception(exc: BaseException) -> str:
    """``Type: first line`` of an exception, for one-line messages."""
    text = str(exc).strip().partition("\n")[0]
    if isinstance(exc, MemoryError | RuntimeError) and "alloc" in text.lower():
        text = "out of memory: " + text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def plural(kind: str) -> str:
    """``loss`` -> ``losses``, ``generator`` -> ``generators``."""
    return kind + ("es" if kind.endswith("s") else "s")
