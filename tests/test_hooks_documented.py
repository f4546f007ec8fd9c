"""Guards in the style of datasette: every hook is documented and has a test."""

from __future__ import annotations

import re
import types

import pytest
import torch
from click.testing import CliRunner
from conftest import REPO

from ganforge import hookimpl, hookspecs
from ganforge.plugins import PluginHost
from ganforge.registry import KINDS

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("register_"))


def test_every_kind_has_a_hook():
    assert {spec.hook for spec in KINDS.values()} | {"register_commands"} == set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    docs = (REPO / "docs" / "plugins.md").read_text()
    assert re.search(rf"^### `{hook}\((register|cli)\)`$", docs, re.M), f"{hook} missing from docs/plugins.md"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    tests = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    assert re.search(rf"^def test_hook_{hook}\(", tests, re.M), f"no test named test_hook_{hook}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_register_hook_reaches_the_registry(kind):
    spec = KINDS[kind]
    host = PluginHost()

    def factory(size: int = 1):
        """A throwaway component."""
        return torch.nn.Linear(size, 1)

    module = types.SimpleNamespace()
    setattr(module, spec.hook, hookimpl(specname=spec.hook)(lambda register: register("throwaway", factory)))
    host.register_module(module, "throwaway-plugin")
    host.collect()
    component = host.registry.get(kind, "throwaway")
    assert component.plugin == "throwaway-plugin" and component.doc == "A throwaway component."
    assert host.registry.build(kind, {"name": "throwaway", "size": 3}).in_features == 3


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
