"""The example third-party package in docs/examples: a new objective, kind and recipe section.

It is installed with pip into a folder of its own, like a user's package, and used only
through the real CLI: listed, trained on CPU, resumed exactly, and used to translate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, SHARED_DATA, _real_images, _synthetic
from PIL import Image, ImageOps
from safetensors.torch import load_file

EXAMPLE = REPO / "docs" / "examples" / "ganforge-paired"
RECIPE = EXAMPLE / "recipes" / "paired_resnet.toml"
TINY = [
    "data.image_size=32",
    "data.load_size=36",
    "data.holdout=2",
    "generator.ngf=8",
    "generator.blocks=1",
    "discriminator.ndf=8",
    "discriminator.n_layers=2",
    "train.log_every=2",
    "train.num_workers=0",
    "callbacks.checkpoint.every=2",
]


@pytest.fixture(scope="module")
def paired_env(tmp_path_factory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("paired-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--target", str(site), str(EXAMPLE)],
        check=True,
        capture_output=True,
        text=True,
    )
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{site}{os.pathsep}{path}" if path else str(site), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """Real selfies (A) paired with their greyscale versions (B), matched by file name."""
    root = tmp_path_factory.mktemp("pairs")
    images = _real_images(SHARED_DATA / "selfie2anime" / "trainA", 6) or _synthetic(6, 4)
    (root / "A").mkdir()
    (root / "B").mkdir()
    for i, img in enumerate(images):
        img = img.resize((40, 40), Image.BICUBIC)
        img.save(root / "A" / f"p{i}.png")
        ImageOps.grayscale(img).convert("RGB").save(root / "B" / f"p{i}.png")
    return root


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ganforge", *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _train(env, pairs, out: Path, steps: int, resume: bool = False) -> None:
    sets = [f"--set={s}" for s in [*TINY, f"data.root={pairs}", f"train.max_steps={steps}"]]
    where = ["--resume", str(out)] if resume else ["--out", str(out)]
    result = _cli(env, "run", str(RECIPE), *sets, *where, "--device", "cpu")
    assert result.returncode == 0, result.stderr


def test_the_package_is_listed_with_its_kind_and_objective(paired_env):
    kinds = json.loads(_cli(paired_env, "list", "--kinds", "--json").stdout)
    mine = next(k for k in kinds if k["kind"] == "reconstruction")
    assert (mine["hook"], mine["distribution"]) == ("register_reconstructions", "ganforge-paired")
    components = json.loads(_cli(paired_env, "list", "--json").stdout)
    found = {(c["kind"], c["name"]): c for c in components if c["distribution"] == "ganforge-paired"}
    assert set(found) == {
        ("reconstruction", "l1"),
        ("reconstruction", "charbonnier"),
        ("dataset", "example-pairs"),
        ("objective", "paired"),
    }
    declares = found[("objective", "paired")]["declares"]
    assert [s["name"] for s in declares["sections"]] == [
        "generator",
        "discriminator",
        "loss",
        "reconstruction",
        "optim",
    ]
    assert list(declares["directions"]) == ["a2b"] and declares["batch_keys"] == ["A", "B"]
    table = _cli(paired_env, "list", "objectives")
    assert "paired" in table.stdout and "reconstruction" in table.stdout


def test_trains_resumes_exactly_and_translates(paired_env, pairs, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    _train(paired_env, pairs, straight, 4)
    _train(paired_env, pairs, split, 2)
    _train(paired_env, pairs, split, 4, resume=True)
    a = load_file(straight / "checkpoints" / "step-00000004.safetensors")
    b = load_file(split / "checkpoints" / "step-00000004.safetensors")
    nets = [k for k in a if k.startswith(("objective/G/", "objective/D/", "objective/opt_g/"))]
    assert nets and set(a) == set(b)
    for key in nets:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)

    out = tmp_path / "translated"
    result = _cli(
        paired_env, "translate", str(straight), str(pairs / "A"), "--out", str(out), "--device", "cpu"
    )
    assert result.returncode == 0, result.stderr
    written = sorted(out.glob("*.png"))
    assert len(written) == 6 and all(Image.open(p).size == (40, 40) for p in written)
    wrong = _cli(
        paired_env, "translate", str(straight), str(pairs / "A"), "--direction", "b2a", "--out", str(out)
    )
    assert wrong.returncode == 2 and "has no direction 'b2a'; it translates a2b" in wrong.stderr


def test_a_misspelt_section_of_the_package_gets_a_suggestion(paired_env, pairs, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(RECIPE.read_text().replace("[reconstruction]", "[reconstrction]"))
    result = _cli(paired_env, "run", str(bad), f"--set=data.root={pairs}", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "did you mean 'reconstruction'" in result.stderr
    assert "Traceback" not in result.stderr
