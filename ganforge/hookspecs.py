"""ganforge's own hooks: ``register_kinds`` and ``register_commands``.

Every other hook belongs to a component kind: a plugin registers a kind with ``register_kinds`` and ganforge
adds the hook ``register_<kinds>(register)`` for it, documented by the kind's ``doc``. An implementation calls
``register(name, factory)`` once per component it provides. ``factory`` is a class or a function; its keyword
parameters, with their type hints and defaults, are the options a recipe table may set. Parameters named in
the kind's ``context`` are supplied by whoever builds the component and are not recipe options.
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

    ganforge then calls the kind's hook, ``register_<plural of name>(register)``, on every
    plugin, exactly like the bundled kinds' hooks.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``ganforge`` command line.

    ``cli`` is the root ``click.Group``; decorate new functions with ``@cli.command()``.
    """


def kind_hookspec(kind: Any) -> type:
    """A hookspec namespace holding the hook of one component kind (its ``doc`` as docstring)."""

    def spec(register: Register) -> None: ...

    spec.__name__ = spec.__qualname__ = kind.hook
    spec.__doc__ = kind.doc
    return type(f"{kind.name}_hookspec", (), {kind.hook: staticmethod(hookspec(spec))})
