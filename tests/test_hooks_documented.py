"""Guards in the style of datasette: every hook (ganforge's own and every kind's) is documented
and has a test, and every kind's hook reaches the registry."""

from __future__ import annotations

import re
import types

import pytest
import torch
from click.testing import CliRunner
from conftest import REPO, bare_host

from ganforge import Kind, hookimpl, hookspecs
from ganforge.plugins import PluginHost, get_registry

OWN_HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("register_"))
KIND_NAMES = sorted(get_registry().kinds())
HOOKS = sorted({*OWN_HOOKS, *(get_registry().kind(k).hook for k in KIND_NAMES)})


def _host_with_bundled_kinds() -> PluginHost:
    return bare_host()


def test_bundled_kinds_come_through_the_kinds_hook():
    host = _host_with_bundled_kinds()
    host.collect()
    assert set(host.registry.kinds()) == set(KIND_NAMES)
    apps = {"network-kinds", "data-kinds", "eval-kinds", "export-kinds", "composite-kinds"}
    assert {host.registry.kind(k).plugin for k in KIND_NAMES} == {"core-kinds", "bundled-kinds", *apps}
    engine = {k for k in KIND_NAMES if host.registry.kind(k).plugin == "core-kinds"}
    assert engine == {"objective", "dataset", "callback", "optimizer", "scheduler", "augment"}


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    docs = (REPO / "docs" / "plugins.md").read_text()
    assert re.search(rf"^### `{hook}\((register|cli)\)`$", docs, re.M), f"{hook} missing from docs/plugins.md"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_has_a_doc(kind):
    assert get_registry().kind(kind).doc.strip(), f"kind {kind} has no doc"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    tests = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    assert re.search(rf"^def test_hook_{hook}\(", tests, re.M), f"no test named test_hook_{hook}"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_register_hook_reaches_the_registry(kind):
    host = _host_with_bundled_kinds()
    hook = get_registry().kind(kind).hook

    def factory(size: int = 1):
        """A throwaway component."""
        return torch.nn.Linear(size, 1)

    module = types.SimpleNamespace()
    setattr(module, hook, hookimpl(specname=hook)(lambda register: register("throwaway", factory)))
    host.register_module(module, "throwaway-plugin")
    host.collect()
    component = host.registry.get(kind, "throwaway")
    assert component.plugin == "throwaway-plugin" and component.doc == "A throwaway component."
    assert host.registry.build(kind, {"name": "throwaway", "size": 3}).in_features == 3


def test_hook_register_kinds():
    class Widget:
        """A widget of the test's own kind."""

        def __init__(self, colour: str = "red", parent: str = "") -> None:
            self.colour, self.parent = colour, parent

    class Plugin:
        @hookimpl
        def register_kinds(self, register):
            register(Kind("widget", "Widgets of a third-party kind.", context=("parent",)))

        @hookimpl(specname="register_widgets")
        def widgets(self, register):
            register("plain", Widget)

    host = _host_with_bundled_kinds()
    host.register_module(Plugin(), "widget-plugin", "widget-dist", "1.0")
    host.collect()
    kind = host.registry.kind("widgets")
    assert (kind.name, kind.hook, kind.plugin, kind.distribution) == (
        "widget",
        "register_widgets",
        "widget-plugin",
        "widget-dist",
    )
    component = host.registry.get("widget", "plain")
    assert [p.name for p in component.params] == ["colour"]  # "parent" is context
    widget = host.registry.build("widget", {"name": "plain", "colour": "blue"}, parent="p")
    assert (widget.colour, widget.parent) == ("blue", "p")


def test_a_kind_registered_twice_fails_the_second_plugin_only():
    class Plugin:
        @hookimpl
        def register_kinds(self, register):
            register(Kind("generator", "a clash"))

    host = _host_with_bundled_kinds()
    host.register_module(Plugin(), "clash-plugin")
    host.collect()
    failed = {p.name: p.error for p in host.plugins if not p.loaded}
    assert list(failed) == ["clash-plugin"] and "registered twice" in failed["clash-plugin"]
    assert host.registry.kind("generator").plugin == "network-kinds"


def test_hook_register_commands():
    from ganforge import cli as cli_module

    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello-test")
            def hello():
                """Say hello."""
                print("hello from a plugin")

    host = cli_module.get_host()
    host.pm.register(Plugin(), name="hello-plugin")
    try:
        cli_module._add_plugin_commands()
        result = CliRunner().invoke(cli_module.cli, ["hello-test"])
        assert result.exit_code == 0 and "hello from a plugin" in result.output
    finally:
        host.pm.unregister(name="hello-plugin")
        cli_module.cli.commands.pop("hello-test", None)
