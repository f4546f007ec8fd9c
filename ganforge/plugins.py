"""The plugin manager: entry-point discovery, the allow-list variable, failures kept for display.

Every plugin, the bundled ones included, is a module listed under the entry-point group
``ganforge``. ``GANFORGE_LOAD_PLUGINS`` limits which third-party plugins load: a comma-separated
list of distribution or entry-point names, or an empty string for none. The bundled plugins
(distribution ``ganforge``) always load.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from ganforge import hookspecs
from ganforge.errors import GanforgeError
from ganforge.registry import Component, Kind, Registry, signature_params

ENTRY_POINT_GROUP = "ganforge"
ALLOW_ENV = "GANFORGE_LOAD_PLUGINS"
OWN_DISTRIBUTION = "ganforge"
APPS_PACKAGE = "ganforge_plugins.apps"  # the bundled apps: the only bundled modules that add commands


@dataclass
class PluginInfo:
    """A plugin module ganforge tried to load."""

    name: str
    module: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    key: str = ""  # the name it is registered under in pluggy

    @property
    def loaded(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "loaded": self.loaded,
            "error": self.error,
        }


class PluginHost:
    """Loads plugins once and fills a :class:`Registry` from their hooks."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("ganforge")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.registry = Registry()

    # -- loading --------------------------------------------------------------------------

    def load_entry_points(self, bundled: Collection[str] | None = None) -> None:
        """Load the plugins of the entry-point group; ``bundled`` limits ganforge's own (None: all)."""
        allow = _allow_list()
        seen: set[tuple[str, str]] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_ep_sort_key):
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else "unknown"
            if (dist, ep.name) in seen:  # the same distribution found twice on sys.path
                continue
            seen.add((dist, ep.name))
            if bundled is not None and _canonical(dist) == OWN_DISTRIBUTION and ep.name not in bundled:
                continue
            if allow is not None and _canonical(dist) != OWN_DISTRIBUTION:
                if _canonical(dist) not in allow and _canonical(ep.name) not in allow:
                    continue
            info = PluginInfo(ep.name, ep.value, dist, version)
            self.plugins.append(info)
            try:
                module = ep.load()
                info.key = self._unique_name(ep.name, dist)
                self.pm.register(module, name=info.key)
            except Exception as exc:  # a broken plugin never stops ganforge
                info.error = _describe(exc)
                continue
            info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])

    def register_module(
        self, module: ModuleType | object, name: str, distribution: str = "local", version: str = "0"
    ) -> PluginInfo:
        """Register an already-imported plugin object (used by tests and embedding code)."""
        info = PluginInfo(name, getattr(module, "__name__", repr(module)), distribution, version, key=name)
        self.plugins.append(info)
        self.pm.register(module, name=name)
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])
        return info

    def collect(self) -> None:
        """Collect kinds, then components, plugin by plugin: one failure skips one plugin."""
        by_name = {p.key: p for p in self.plugins if p.key}
        for impl in self.pm.hook.register_kinds.get_hookimpls():
            info = by_name.get(impl.plugin_name)
            if info is None or not info.loaded:
                continue
            kinds: list[Kind] = []

            def register_kind(kind: Kind, _kinds: list[Kind] = kinds) -> None:
                if not isinstance(kind, Kind):
                    raise GanforgeError(f"register_kinds: expected a ganforge.Kind, got {kind!r}")
                _kinds.append(kind)

            try:
                impl.function(register_kind)
                for kind in kinds:
                    self.registry.add_kind(
                        dataclasses.replace(kind, plugin=info.name, distribution=info.distribution)
                    )
                    self.pm.add_hookspecs(hookspecs.kind_hookspec(kind))
            except Exception as exc:
                info.error = f"register_kinds: {_describe(exc)}"
        staged: dict[str, list[Component]] = {}
        for kind_name in self.registry.kinds():
            kind = self.registry.kind(kind_name)
            caller = getattr(self.pm.hook, kind.hook)
            for impl in caller.get_hookimpls():
                info = by_name.get(impl.plugin_name)
                if info is None or not info.loaded:
                    continue
                bucket = staged.setdefault(impl.plugin_name, [])

                def register(
                    name: str,
                    factory: Any,
                    _kind: Kind = kind,
                    _info: PluginInfo = info,
                    _bucket: list[Component] = bucket,
                ) -> None:
                    if not isinstance(name, str) or not name:
                        raise GanforgeError(f"register() needs a non-empty name, got {name!r}")
                    if not callable(factory):
                        raise GanforgeError(f"{_kind.name} '{name}': factory {factory!r} is not callable")
                    params, accepts_any, context = signature_params(factory, _kind.context)
                    _bucket.append(
                        Component(
                            _kind.name,
                            name,
                            factory,
                            _info.name,
                            _info.distribution,
                            _info.version,
                            params,
                            accepts_any,
                            context,
                        )
                    )

                try:
                    impl.function(register)
                except Exception as exc:
                    info.error = f"{kind.hook}: {_describe(exc)}"
        for plugin_name, components in staged.items():
            info = by_name[plugin_name]
            if not info.loaded:
                continue
            added: list[Component] = []
            try:
                for component in components:
                    self.registry.add(component)
                    added.append(component)
            except GanforgeError as exc:
                info.error = str(exc)
                for component in added:  # all or nothing per plugin
                    self.registry.remove(component)

    # -- helpers -------------------------------------------------------------------------

    def _unique_name(self, name: str, dist: str) -> str:
        return name if self.pm.get_plugin(name) is None else f"{dist}:{name}"

    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if not p.loaded]


def command_hookimpls() -> list[Any]:
    """``register_commands`` implementations, loaded cheaply: the bundled apps and third parties.

    Only the modules that can add commands are imported (the bundled apps, whose modules import
    no torch, and every third-party plugin, honouring ``GANFORGE_LOAD_PLUGINS``) into a plugin
    manager that knows only ganforge's own hooks. The bundled components (networks, losses, ...)
    add no commands and are not imported. A plugin that fails to import is skipped here;
    ``ganforge list --plugins`` reports it. Once every plugin is loaded (:func:`get_host`), its
    plugin manager answers instead (plugins registered in-process included).
    """
    if _HOST is not None:
        return list(_HOST.pm.hook.register_commands.get_hookimpls())
    pm = pluggy.PluginManager("ganforge")
    pm.add_hookspecs(hookspecs)
    allow = _allow_list()
    seen: set[tuple[str, str]] = set()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_ep_sort_key):
        dist = ep.dist.name if ep.dist else "unknown"
        if (dist, ep.name) in seen:
            continue
        seen.add((dist, ep.name))
        if _canonical(dist) == OWN_DISTRIBUTION:
            if not ep.value.startswith(APPS_PACKAGE):
                continue
        elif allow is not None and _canonical(dist) not in allow and _canonical(ep.name) not in allow:
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name if pm.get_plugin(ep.name) is None else f"{dist}:{ep.name}")
        except Exception:
            continue
    return list(pm.hook.register_commands.get_hookimpls())


def _allow_list() -> set[str] | None:
    value = os.environ.get(ALLOW_ENV)
    if value is None:
        return None
    return {_canonical(v) for v in value.split(",") if v.strip()}


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _ep_sort_key(ep: metadata.EntryPoint) -> tuple[int, str, str]:
    dist = ep.dist.name if ep.dist else ""
    return (0 if _canonical(dist) == OWN_DISTRIBUTION else 1, dist, ep.name)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None:
        host = PluginHost()
        host.load_entry_points()
        host.collect()
        _HOST = host
    return _HOST


def get_registry() -> Registry:
    """The registry filled from every loaded plugin."""
    return get_host().registry


def reset() -> None:
    """Forget loaded plugins (tests use this after changing the environment)."""
    global _HOST
    _HOST = None


def mark_failed(plugin_key: str, error: str) -> None:
    """Record that a loaded plugin failed later (its ``register_commands``), so ``ganforge list
    --plugins`` shows it as failed; a no-op before the plugins are loaded."""
    if _HOST is not None:
        for info in _HOST.plugins:
            if info.key == plugin_key or info.name == plugin_key:
                info.error = error


def warn_failures(stream: Any = None) -> None:
    """Report each failed plugin once, on one line, to stderr."""
    stream = stream or sys.stderr
    for info in get_host().failures():
        print(
            f"warning: plugin '{info.name}' ({info.distribution} {info.version}) skipped: {info.error}",
            file=stream,
        )
