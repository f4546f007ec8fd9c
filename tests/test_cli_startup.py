"""Start-up cost: help and version import neither torch nor the component plugins (only the
bundled apps' modules, which add commands); plugin commands still work.

Checked by ``sys.modules`` in a fresh interpreter, not by timing (benchmarks/cli_startup.py
times it; benchmarks/RESULTS.md has the numbers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import run_cli, write_plugin_dist

PROBE = """
import json, sys
from ganforge.cli import cli, main

def heavy():
    def is_heavy(m):
        if m == "torch" or m.startswith("torch."):
            return True
        # the apps' modules list their commands; the component plugins (torch) must not load
        return m.startswith("ganforge_plugins.") and not m.startswith("ganforge_plugins.apps")

    return sorted(m for m in sys.modules if is_heavy(m))

APPS = ["bench", "composite", "convert", "data", "demo", "eval", "export", "report"]
found = {}
for args in [["--help"], ["--version"], *([name, "--help"] for name in [*sorted(cli.commands), *APPS])]:
    sys.argv = ["ganforge", *args]
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
    found[" ".join(args)] = heavy()[:3]
print("\\nRESULT " + json.dumps(found))
"""


def test_help_and_version_import_neither_torch_nor_plugins():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.split("RESULT ", 1)[1])
    assert {"--help", "--version", "run --help", "translate --help", "export --help"} <= set(found)
    assert {args: mods for args, mods in found.items() if mods} == {}


COMMAND_PLUGIN = '''
    """A third-party plugin that adds a command (and would make a built-in one, ignored)."""
    from ganforge import hookimpl


    @hookimpl
    def register_commands(cli):
        @cli.command("hello")
        def hello():
            """Say hello from a plugin."""
            print("hello from a plugin")

        @cli.command("list")
        def not_the_real_list():
            print("a plugin must not replace a built-in command")
'''


def test_plugin_commands_load_when_needed(tmp_path):
    site = tmp_path / "site"
    src = write_plugin_dist(tmp_path / "src", "ganforge-hello", "ganforge_hello", COMMAND_PLUGIN)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--target", str(site), str(src)],
        check=True,
        capture_output=True,
    )
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path}
    top = run_cli("--help", env=env)
    assert top.returncode == 0 and "hello" in top.stdout and "Say hello from a plugin." in top.stdout
    assert "List registered components" in top.stdout  # the built-in list, not the plugin's
    assert run_cli("hello", env=env).stdout == "hello from a plugin\n"
    listing = run_cli("list", "pools", env=env)
    assert (
        listing.returncode == 0 and "history" in listing.stdout and "must not replace" not in listing.stdout
    )
    allowed_none = run_cli("--help", env={**env, "GANFORGE_LOAD_PLUGINS": ""})
    assert allowed_none.returncode == 0 and "hello" not in allowed_none.stdout
