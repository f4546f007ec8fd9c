"""ganforge's own hooks: ``register_kinds`` and ``register_commands``.

Every other hook belongs to a component kind: ``register_<kinds>(register)``, documented by the kind's
``doc``; an implementation calls ``register(name, factory)`` per component. The factory's keyword parameters
(type hints, defaults) are the recipe options, except those in the kind's ``context`` (the builder's).
docs/plugins.md has the reference of every bundled kind, with examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ganforge")
hookimpl = pluggy.HookimplMarker("ganforge")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_kinds(register: Callable[[Any], None]) -> None:
    """Register component kinds: call ``register(ganforge.Kind(name, doc, ...))`` per kind.

    ganforge then calls the kind's hook, ``register_<plural of name>(register)``, on every plugin.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``ganforge`` command line: ``cli`` is a ``click.Group`` (``@cli.command()``)."""


def kind_hookspec(kind: Any) -> type:
    """A hookspec namespace holding the hook of one component kind (its ``doc`` as docstring)."""

    def spec(register: Register) -> None: ...

    spec.__name__ = spec.__qualname__ = kind.hook
    spec.__doc__ = kind.doc
    return type(f"{kind.name}_hookspec", (), {kind.hook: staticmethod(hookspec(spec))})
