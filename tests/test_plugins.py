"""The plugin contract, exercised with real distributions installed by pip."""

from __future__ import annotations

import json
import types

import pytest
from conftest import RECIPES, TINY, bare_host, sets

import ganforge
from ganforge import GanforgeError, hookimpl
from ganforge.plugins import PluginHost, get_registry

BUNDLED = {
    ("generator", "resnet"),
    ("generator", "pixelshuffle"),
    ("generator", "dcgan"),
    ("generator", "ugatit"),
    ("discriminator", "patchgan"),
    ("discriminator", "dcgan"),
    ("discriminator", "ugatit"),
    ("loss", "lsgan"),
    ("loss", "bce"),
    ("loss", "hinge"),
    ("loss", "wgan-gp"),
    ("pool", "history"),
    ("pool", "none"),
    ("pool", "cache"),
    ("optimizer", "adam"),
    ("optimizer", "adamw"),
    ("optimizer", "sgd"),
    ("scheduler", "linear-decay"),
    ("scheduler", "cyclic"),
    ("scheduler", "step"),
    ("scheduler", "cosine"),
    ("dataset", "unpaired-folders"),
    ("dataset", "image-folder"),
    ("dataset", "paired-folders"),
    ("dataset", "aligned"),
    ("callback", "progress"),
    ("callback", "samples"),
    ("callback", "metrics-log"),
    ("callback", "checkpoint"),
    ("objective", "cyclegan"),
    ("objective", "dcgan"),
    ("objective", "pix2pix"),
}


def test_list_json_has_bundled_components(cli):
    result = cli("list", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    found = {(e["kind"], e["name"]) for e in entries}
    assert BUNDLED <= found
    resnet = next(e for e in entries if e["kind"] == "generator" and e["name"] == "resnet")
    assert set(resnet) >= {"kind", "name", "plugin", "distribution", "version", "params", "doc"}
    assert resnet["distribution"] == "ganforge" and resnet["plugin"] == "networks"
    params = {p["name"]: p for p in resnet["params"]}
    blocks = {k: v for k, v in params["blocks"].items() if k != "range"}
    assert blocks == {"name": "blocks", "type": "int", "default": 9, "required": False}
    assert params["blocks"]["range"]["min"] == 0 and params["blocks"]["range"]["why"]  # declared bounds
    assert params["norm"]["type"] == "'instance' | 'batch' | 'none'"
    assert resnet["doc"]


def test_list_one_kind_and_table(cli):
    result = cli("list", "losses", "--json")
    assert {e["kind"] for e in json.loads(result.stdout)} == {"loss"}
    table = cli("list")
    assert table.returncode == 0
    assert "resnet" in table.stdout and "patchgan" in table.stdout and "losses" in table.stdout
    bad = cli("list", "widgets")
    assert bad.returncode == 2 and "unknown component kind 'widgets'" in bad.stderr


def test_third_party_plugin_is_listed_with_its_distribution(cli, plugin_env):
    result = cli("list", "--json", env=plugin_env)
    assert result.returncode == 0, result.stderr
    mine = [e for e in json.loads(result.stdout) if e["name"] == "my-gen"]
    assert len(mine) == 1
    assert mine[0]["kind"] == "generator"
    assert mine[0]["distribution"] == "ganforge-example-plugin"
    assert mine[0]["version"] == "1.2.3"
    assert mine[0]["doc"] == "A one-layer generator from an outside distribution."
    assert {p["name"] for p in mine[0]["params"]} >= {"channels", "scale"}
    # the broken plugin is reported on one line, and did not stop the command
    assert "ganforge_broken" in result.stderr and "broken on purpose" in result.stderr


def test_failed_plugins_are_listed(cli, plugin_env):
    result = cli("list", "--plugins", "--json", env=plugin_env)
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["ganforge_example"]["loaded"] is True
    broken = plugins["ganforge_broken"]
    assert broken["loaded"] is False and "RuntimeError: this plugin is broken on purpose" in broken["error"]
    dup = plugins["ganforge_dup"]
    assert dup["loaded"] is False
    # a duplicate name is an error naming both providers
    assert "generator 'resnet' is registered twice" in dup["error"]
    assert f"ganforge {ganforge.__version__}" in dup["error"] and "ganforge-dup-plugin 0.0.7" in dup["error"]
    table = cli("list", "--plugins", env=plugin_env)
    assert "failed" in table.stdout and "ganforge_broken" in table.stdout


def test_broken_plugin_does_not_break_other_commands(cli, plugin_env, selfie_root, tmp_path):
    result = cli(
        "run",
        str(RECIPES / "cyclegan_selfie2anime.toml"),
        *sets(*TINY, f"data.root={selfie_root}", "train.max_steps=1", "generator.name=my-gen"),
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
        env=plugin_env,
    )
    assert result.returncode == 2
    # my-gen is known but takes no 'ngf': the recipe check runs through the third-party component
    assert "unknown key 'ngf' for generator 'my-gen'" in result.stderr


def test_third_party_generator_trains(cli, plugin_env, selfie_root, tmp_path):
    result = cli(
        "run",
        str(RECIPES / "cyclegan_selfie2anime.toml"),
        *sets(
            "data.image_size=32",
            "data.load_size=36",
            "data.holdout=2",
            "discriminator.ndf=8",
            f"data.root={selfie_root}",
            "train.max_steps=2",
            "train.log_every=1",
            'generator={name="my-gen", scale=0.5}',
        ),
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
        env=plugin_env,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "checkpoints" / "step-00000002.safetensors").is_file()
    assert 'name = "my-gen"' in (tmp_path / "run" / "recipe.resolved.toml").read_text()


@pytest.mark.parametrize(
    "allow, loaded",
    [
        ("", set()),
        ("ganforge-example-plugin", {"ganforge_example"}),
        ("ganforge_broken", {"ganforge_broken"}),
    ],
)
def test_allow_list_variable(cli, plugin_env, allow, loaded):
    result = cli("list", "--plugins", "--json", env={**plugin_env, "GANFORGE_LOAD_PLUGINS": allow})
    names = {p["name"] for p in json.loads(result.stdout) if p["distribution"] != "ganforge"}
    assert names == loaded
    bundled = {p["name"] for p in json.loads(result.stdout) if p["distribution"] == "ganforge"}
    assert {"networks", "losses", "objectives"} <= bundled  # the bundled plugins always load


def test_register_twice_in_process_names_both():
    host = PluginHost()
    host.load_entry_points()

    class Plugin:
        @hookimpl
        def register_losses(self, register):
            register("lsgan", lambda: None)

    host.register_module(Plugin(), "my-losses", "my-dist", "9.9")
    host.collect()
    info = next(p for p in host.plugins if p.name == "my-losses")
    assert not info.loaded
    assert "loss 'lsgan' is registered twice: by plugin 'losses' (ganforge" in info.error
    assert "plugin 'my-losses' (my-dist 9.9)" in info.error
    # the bundled lsgan still works
    assert host.registry.get("loss", "lsgan").distribution == "ganforge"


def test_a_failing_register_hook_is_skipped_whole():
    host = bare_host()
    module = types.SimpleNamespace()

    @hookimpl
    def register_pools(register):
        register("half-done", lambda size=1: None)
        raise ValueError("oops")

    module.register_pools = register_pools
    host.register_module(module, "flaky")
    host.collect()
    assert host.failures()[0].error == "register_pools: ValueError: oops"
    with pytest.raises(GanforgeError, match="unknown pool 'half-done'"):
        host.registry.get("pool", "half-done")


def test_registry_is_filled_through_entry_points():
    registry = get_registry()
    resnet = registry.get("generator", "resnet")
    assert resnet.plugin == "networks" and resnet.distribution == "ganforge"
    assert resnet.factory.__module__.startswith("ganforge_plugins.")
