"""The plugin manager: entry-point discovery (group ``ganforge``, the bundled plugins included),
the ``GANFORGE_LOAD_PLUGINS`` allow-list (docs/plugins.md), failures kept for display."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Collection, Iterator
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from ganforge import hookspecs
from ganforge.errors import GanforgeError
from ganforge.registry import Component, Kind, Registry, describe_exception, signature_params

OWN_DISTRIBUTION = "ganforge"
APPS_PACKAGE = "ganforge_plugins.apps"  # the bundled apps: the only bundled modules that add commands


@dataclasses.dataclass
class PluginInfo:
    """A plugin module ganforge tried to load."""

    name: str
    module: str
    distribution: str
    version: str
    hooks: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    key: str = ""  # the name it is registered under in pluggy

    @property
    def loaded(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("error", "key")}
        return {**data, "loaded": self.loaded, "error": self.error}


class PluginHost:
    """Loads plugins once and fills a :class:`Registry` from their hooks."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("ganforge")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.registry = Registry()

    def load_entry_points(self, bundled: Collection[str] | None = None) -> None:
        """Load the plugins of the entry-point group; ``bundled`` limits ganforge's own (None: all)."""
        for ep, dist, own in _entry_points():
            if own and bundled is not None and ep.name not in bundled:
                continue
            info = PluginInfo(ep.name, ep.value, dist, ep.dist.version if ep.dist else "unknown")
            self.plugins.append(info)
            try:
                module = ep.load()
                info.key = _unique_name(self.pm, ep.name, dist)
                self.pm.register(module, name=info.key)
            except Exception as exc:  # a broken plugin never stops ganforge
                info.error = describe_exception(exc)
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
            kinds: list[Any] = []
            try:
                impl.function(kinds.append)
                wrong = [k for k in kinds if not isinstance(k, Kind)]
                if wrong:
                    raise GanforgeError(f"register_kinds: expected a ganforge.Kind, got {wrong[0]!r}")
                for kind in kinds:
                    self.registry.add_kind(
                        dataclasses.replace(kind, plugin=info.name, distribution=info.distribution)
                    )
                    self.pm.add_hookspecs(hookspecs.kind_hookspec(kind))
            except Exception as exc:
                info.error = f"register_kinds: {describe_exception(exc)}"
        staged: dict[str, list[Component]] = {}
        for kind_name in self.registry.kinds():
            kind = self.registry.kind(kind_name)
            caller = getattr(self.pm.hook, kind.hook)
            for impl in caller.get_hookimpls():
                info = by_name.get(impl.plugin_name)
                if info is None or not info.loaded:
                    continue
                bucket = staged.setdefault(impl.plugin_name, [])
                try:
                    impl.function(functools.partial(_stage, kind, info, bucket))
                except Exception as exc:
                    info.error = f"{kind.hook}: {describe_exception(exc)}"
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

    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if not p.loaded]


def _stage(kind: Kind, info: PluginInfo, bucket: list[Component], name: str, factory: Any) -> None:
    """The ``register(name, factory)`` a kind's hook gets: checks one component and stages it."""
    if not isinstance(name, str) or not name:
        raise GanforgeError(f"register() needs a non-empty name, got {name!r}")
    if not callable(factory):
        raise GanforgeError(f"{kind.name} '{name}': factory {factory!r} is not callable")
    component = (kind.name, name, factory, info.name, info.distribution, info.version)
    bucket.append(Component(*component, *signature_params(factory, kind.context)))


def command_hookimpls() -> list[Any]:
    """``register_commands`` implementations, loaded cheaply: only the bundled apps (no torch)
    and third parties are imported; one that fails to import is skipped. Once every plugin is
    loaded (:func:`get_host`), its plugin manager answers instead."""
    if _HOST is not None:
        return list(_HOST.pm.hook.register_commands.get_hookimpls())
    pm = pluggy.PluginManager("ganforge")
    pm.add_hookspecs(hookspecs)
    for ep, dist, own in _entry_points():
        if own and not ep.value.startswith(APPS_PACKAGE):
            continue
        with contextlib.suppress(Exception):  # a plugin that fails to import adds no commands
            pm.register(ep.load(), name=_unique_name(pm, ep.name, dist))
    return list(pm.hook.register_commands.get_hookimpls())


def _entry_points() -> Iterator[tuple[metadata.EntryPoint, str, bool]]:
    """(entry point, distribution, is ganforge's own) for each plugin to load, bundled ones first;
    third-party ones only if ``GANFORGE_LOAD_PLUGINS`` allows them."""
    value = os.environ.get("GANFORGE_LOAD_PLUGINS")
    allow = None if value is None else {_canonical(v) for v in value.split(",") if v.strip()}
    found = {}  # the same distribution found twice on sys.path loads once
    for ep in metadata.entry_points(group="ganforge"):
        found.setdefault((ep.dist.name if ep.dist else "unknown", ep.name), ep)
    for (dist, name), ep in sorted(
        found.items(), key=lambda i: (_canonical(i[0][0]) != OWN_DISTRIBUTION, i[0])
    ):
        own = _canonical(dist) == OWN_DISTRIBUTION
        if own or allow is None or _canonical(dist) in allow or _canonical(name) in allow:
            yield ep, dist, own


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _unique_name(pm: pluggy.PluginManager, name: str, dist: str) -> str:
    return name if pm.get_plugin(name) is None else f"{dist}:{name}"


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
    for info in _HOST.plugins if _HOST is not None else []:
        if plugin_key in (info.key, info.name):
            info.error = error


def warn_failures() -> None:
    """Report each failed plugin once, on one line, to stderr."""
    for info in get_host().failures():
        message = f"warning: plugin '{info.name}' ({info.distribution} {info.version}) skipped: {info.error}"
        print(message, file=sys.stderr)
