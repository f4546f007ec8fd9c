"""Recipes: loading, --set overrides, validation errors (one line, exit 2), resolved dumps."""

from __future__ import annotations

import tomllib
from typing import Literal

import pytest
from conftest import RECIPES, TINY, sets

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe, dumps, parse_value
from ganforge.registry import Param, coerce, signature_params

ALL_RECIPES = sorted(RECIPES.glob("*.toml"))


@pytest.mark.parametrize("path", ALL_RECIPES, ids=lambda p: p.name)
def test_every_bundled_recipe_validates(path):
    resolved = Recipe.load(path).resolve(get_registry())
    assert resolved["objective"]["name"] in (
        "cyclegan",
        "dcgan",
        "cgan",
        "cut",
        "fastcut",
        "ugatit",
        "pix2pix",
        "uvcgan2",
        "uvcgan2-pretrain",
        "r3gan",
        "r3gan-cond",
    )
    # defaults are filled in, so a saved recipe describes the run completely
    assert "init_gain" in resolved["generator"] and "seed" in resolved["train"]
    # and the resolved form survives a TOML round trip unchanged
    assert tomllib.loads(dumps(resolved)) == resolved


@pytest.mark.parametrize(
    "raw, value",
    [
        ("3", 3),
        ("1e-4", 1e-4),
        ("2.5", 2.5),
        ("true", True),
        ("false", False),
        ("True", True),
        ("[0.5, 0.999]", [0.5, 0.999]),
        ('"text"', "text"),
        ("plain/path", "plain/path"),
        ('{name="sgd", lr=1e-3}', {"name": "sgd", "lr": 1e-3}),
        ("../shared/data", "../shared/data"),
    ],
)
def test_override_values_parse(raw, value):
    assert parse_value(raw) == value


def test_overrides_apply_and_replace_tables():
    recipe = Recipe.load(
        RECIPES / "cyclegan_selfie2anime.toml",
        [
            "train.max_steps=7",
            "optim.g={name='sgd', lr=1e-3, momentum=0.9}",
            "data.image_size=64",
            "schedule.name=cyclic",
        ],
    )
    resolved = recipe.resolve(get_registry())
    assert resolved["train"]["max_steps"] == 7
    assert resolved["optim"]["g"] == {
        "name": "sgd",
        "lr": 1e-3,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "nesterov": False,
    }
    assert resolved["data"]["image_size"] == 64
    assert resolved["schedule"]["name"] == "cyclic"


def test_data_root_environment_variable_leaves_the_recipe_alone(monkeypatch):
    # GANFORGE_DATA_ROOT is where data.source is looked up (tests/test_data_get.py), not a data.root
    monkeypatch.setenv("GANFORGE_DATA_ROOT", "/somewhere")
    data = Recipe.load(RECIPES / "cyclegan_selfie2anime.toml").data["data"]
    assert data["source"] == "selfie2anime" and "root" not in data
    recipe = Recipe.load(RECIPES / "cyclegan_selfie2anime.toml", ["data.root=/elsewhere"])
    assert recipe.data["data"]["root"] == "/elsewhere"


@pytest.mark.parametrize(
    "override, message",
    [
        ("generator.name=resnt", "[generator]: unknown generator 'resnt'; did you mean 'resnet'?"),
        ("loss.name=lsgn", "unknown loss 'lsgn'; did you mean 'lsgan'"),
        (
            "generator.blocs=6",
            "[generator]: unknown key 'blocs' for generator 'resnet' (did you mean 'blocks'?); "
            "valid keys: name, in_channels",
        ),
        ("generator.blocks=six", "[generator]: key 'blocks' expects int, got str 'six'"),
        ("generator.blocks=6.5", "key 'blocks' expects int, got float 6.5"),
        ("generator.norm=group", "key 'norm' expects 'instance' | 'batch' | 'none', got str 'group'"),
        ("optim.g.betas=[0.5]", "[optim.g]: key 'betas' expects tuple[float, float], got list [0.5]"),
        ("train.batch_sise=4", "[train]: unknown key 'batch_sise' (did you mean 'batch_size'?)"),
        ("train.max_steps=true", "[train]: key 'max_steps' expects int, got bool True"),
        ("trian.seed=1", "unknown section 'trian' (did you mean 'train'?)"),
        (
            "callbacks.sampels.every=1",
            "[callbacks.sampels]: unknown callback 'sampels'; did you mean 'samples'?",
        ),
    ],
)
def test_validation_errors_name_file_table_and_key(override, message):
    path = RECIPES / "cyclegan_selfie2anime.toml"
    with pytest.raises(GanforgeError) as err:
        Recipe.load(path, [override]).resolve(get_registry())
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("generator.name=resnt", "did you mean 'resnet'?"),
        ("generator.blocs=6", "unknown key 'blocs'"),
        ("generator.blocks=six", "expects int, got str"),
        ("nonsense", "expected section.key=value"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(cli, override, fragment, tmp_path):
    result = cli(
        "run",
        str(RECIPES / "cyclegan_selfie2anime.toml"),
        "--set",
        override,
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # validation happens before any work


def test_cli_bad_recipe_files(cli, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[generator\nname = 1")
    result = cli("run", str(broken))
    assert result.returncode == 2 and "not valid TOML" in result.stderr and "Traceback" not in result.stderr
    missing = cli("run", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "nope.toml not found" in missing.stderr
    no_objective = tmp_path / "empty.toml"
    no_objective.write_text("[train]\nseed = 1\n")
    result = cli("run", str(no_objective))
    assert result.returncode == 2 and "missing section [objective]" in result.stderr


def test_missing_required_section(tmp_path):
    text = (RECIPES / "cyclegan_selfie2anime.toml").read_text().replace('[loss]\nname = "lsgan"\n', "")
    path = tmp_path / "no_loss.toml"
    path.write_text(text)
    with pytest.raises(GanforgeError, match=r"objective 'cyclegan' needs section \[loss\]"):
        Recipe.load(path).resolve(get_registry())


def test_resolved_recipe_is_written_to_run_dir(cli, selfie_root, tmp_path):
    out = tmp_path / "run"
    result = cli(
        "run",
        str(RECIPES / "cyclegan_selfie2anime.toml"),
        *sets(*TINY, f"data.root={selfie_root}", "train.max_steps=1", "optim.d.lr=3e-4"),
        "--out",
        str(out),
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    saved = tomllib.loads((out / "recipe.resolved.toml").read_text())
    assert saved["optim"]["d"]["lr"] == 3e-4
    assert saved["train"]["max_steps"] == 1 and saved["train"]["device"] == "cpu"
    assert saved["generator"] == {
        "name": "resnet",
        "in_channels": 3,
        "out_channels": 3,
        "ngf": 8,
        "blocks": 2,
        "norm": "instance",
        "dropout": False,
        "upsample": "transpose",
        "antialias": False,
        "init": "normal",
        "init_gain": 0.02,
    }


def test_signature_params_and_coercion():
    def factory(
        params,
        size: int = 3,
        mode: Literal["a", "b"] = "a",
        betas: tuple[float, float] = (0.5, 0.9),
        ratio: float | None = None,
        names: list[str] | None = None,
        **_,
    ):
        """Doc."""

    params, accepts_any, context = signature_params(factory, skip=("params",))
    assert [p.name for p in params] == ["size", "mode", "betas", "ratio", "names"]
    assert accepts_any and context == ("params",)
    by = {p.name: p for p in params}
    assert coerce(2, by["betas"].annotation if False else float) == 2.0
    assert coerce([1, 2], by["betas"].annotation) == (1.0, 2.0)
    assert coerce(None, by["ratio"].annotation) is None and coerce(1, by["ratio"].annotation) == 1.0
    assert coerce(["x"], by["names"].annotation) == ["x"]
    for value, param in [("c", "mode"), (True, "size"), ([1], "betas"), ([1, "x"], "names")]:
        with pytest.raises(TypeError):
            coerce(value, by[param].annotation)
    assert Param("x", int).required and not by["size"].required


def test_build_checks_before_calling_factory():
    registry = get_registry()
    net = registry.build("generator", {"name": "resnet", "ngf": 4, "blocks": 1, "init": "none"})
    assert sum(p.numel() for p in net.parameters()) > 0
    with pytest.raises(GanforgeError, match="missing key 'name'"):
        registry.build("generator", {"ngf": 4})


@pytest.mark.parametrize(
    "override",
    [
        "train.batch_size=0",
        "train.batch_size=-1",
        "train.log_every=0",
        "train.max_steps=-5",
        "train.epochs=0",
    ],
)
def test_train_values_out_of_range(override):
    with pytest.raises(GanforgeError, match=r"\[train\]: key '\w+' must be >= -?\d+, got"):
        Recipe.load(RECIPES / "cyclegan_selfie2anime.toml", [override]).resolve(get_registry())


def test_a_factory_rejecting_a_value_is_a_user_error():
    with pytest.raises(GanforgeError, match=r"^\[pool\]: .*size=0"):
        get_registry().build("pool", {"name": "cache", "size": 0}, "[pool]")
    # a value within its declared range that the factory itself refuses
    with pytest.raises(GanforgeError, match=r"^\[generator\]: generator 'ugatit': .*multiple of 4, got 6"):
        get_registry().build("generator", {"name": "ugatit", "image_size": 6}, "[generator]")
