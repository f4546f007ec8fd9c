"""Conditions in the contract, end to end, through a third-party plugin: a class-conditional GAN
(a test-only objective with its own conditional networks) trains on a folder of class folders,
and a chosen class comes out of ``ganforge sample --class``, ``Model.sample(cls=...)`` and the
ONNX export alike; without a class the grid has a row per class.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import NO_CALLBACKS, run_cli, sets, write_plugin_dist
from PIL import Image

from ganforge.errors import GanforgeError

PLUGIN = '''
    """A tiny class-conditional GAN, as a third party would write it (test only)."""
    from typing import Any

    import torch
    import torch.nn.functional as F
    from torch import nn

    from ganforge import (
        Condition, Declaration, Network, Objective, Optimizer, Part, Section, frozen, hookimpl,
    )


    class TinyConditionalG(nn.Module):
        """Noise and a class to a 16 px image: the class picks a colour, the noise a pattern."""

        def __init__(self, latent_dim: int = 8, num_classes: int = 0) -> None:
            super().__init__()
            self.latent_dim = latent_dim
            self.embed = nn.Embedding(max(1, num_classes), latent_dim)
            self.net = nn.Sequential(nn.Linear(latent_dim, 3 * 16 * 16), nn.Tanh())
            self.colour = nn.Embedding(max(1, num_classes), 3)
            nn.init.normal_(self.colour.weight, 0.0, 2.0)  # classes differ from the first step

        def forward(self, z, y):
            x = self.net(z + self.embed(y)).view(-1, 3, 16, 16)
            return torch.tanh(x + self.colour(y)[:, :, None, None])


    class TinyProjectionD(nn.Module):
        """A pooled conv feature, scored with a class projection (Miyato & Koyama's head)."""

        def __init__(self, num_classes: int = 0) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.LeakyReLU(0.2))
            self.linear = nn.Linear(8, 1)
            self.embed = nn.Embedding(max(1, num_classes), 8)

        def forward(self, x, y):
            h = self.body(x).sum((2, 3))
            return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)


    class TinyCGAN(Objective):
        """Class-conditional hinge GAN: D then G, both conditioned on the batch's labels."""

        declares = Declaration(
            sections=(
                Section("generator", "generator"),
                Section("discriminator", "discriminator"),
                Section("optim", "optimizer", roles=("g", "d")),
            ),
            networks={"G": Network("generator", inference=True), "D": Network("discriminator")},
            optimizers={
                "g": Optimizer("optim.g", ("G",), losses=("G",)),
                "d": Optimizer("optim.d", ("D",), losses=("D",)),
            },
            batch_keys=("image", "label"),
            noise="G",
            condition=Condition("label", ("G", "D")),
        )

        def __init__(self, builder: Any, runtime: Any) -> None:
            super().__init__(builder, runtime)
            self.latent_dim = 8

        def train_step(self, batch, step):
            real, y = batch["image"], batch["label"]
            z = torch.randn(real.shape[0], self.latent_dim, device=real.device)
            fake = self.G(z, y)
            d = F.relu(1 - self.D(real, y)).mean() + F.relu(1 + self.D(fake.detach(), y)).mean()
            self.opt_d.minimize(d)
            with frozen(self.D):
                g = -self.D(fake, y).mean()
                self.opt_g.minimize(g)
            return {"D": d, "G": g}


    @hookimpl
    def register_generators(register):
        register("tiny-cond", TinyConditionalG)


    @hookimpl
    def register_discriminators(register):
        register("tiny-projection", TinyProjectionD)


    @hookimpl
    def register_objectives(register):
        register("tiny-cgan", TinyCGAN)
'''

RECIPE = """
description = "tiny class-conditional GAN (test)"

[objective]
name = "tiny-cgan"

[data]
name = "class-folders"
image_size = 16

[generator]
name = "tiny-cond"

[discriminator]
name = "tiny-projection"

[optim.g]
name = "adam"
lr = 0.01

[optim.d]
name = "adam"
lr = 0.01

[train]
batch_size = 4
max_steps = 3
num_workers = 0
log_every = 1
"""

CLASSES = ("cat", "dog", "fox")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("cgan")
    site = root / "site"
    src = write_plugin_dist(root / "src", "ganforge-tiny-cgan", "ganforge_tiny_cgan", PLUGIN)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--target", str(site), str(src)],
        check=True,
        capture_output=True,
    )
    data = root / "classes"
    rng = np.random.default_rng(0)
    for i, name in enumerate(CLASSES):
        (data / name).mkdir(parents=True)
        for j in range(4):
            pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8) // 4 + 60 * i
            Image.fromarray(pixels.astype(np.uint8)).save(data / name / f"{j}.png")
    (data / "empty").mkdir()  # a folder without images is not a class
    recipe = root / "tiny_cgan.toml"
    recipe.write_text(RECIPE)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}
    run = root / "run"
    result = run_cli(
        "run", str(recipe), *sets(f"data.root={data}", *NO_CALLBACKS), "--out", str(run), env=env
    )
    assert result.returncode == 0, result.stderr
    return site, run, env


@pytest.fixture
def with_plugin(plugin_site, monkeypatch):
    """The plugin installed for this process too (its entry point found on sys.path)."""
    from ganforge import plugins

    site, run, _ = plugin_site
    monkeypatch.syspath_prepend(str(site))
    plugins.reset()
    yield run
    plugins.reset()


def test_the_checkpoint_card_names_the_classes(with_plugin):
    from ganforge import checkpoint as ckpt
    from ganforge.model import Model

    card = ckpt.read_meta(ckpt.resolve(with_plugin))["model"]
    assert card["condition"] == {
        "batch_key": "label",
        "networks": ["G", "D"],
        "kind": "class",
        "values": list(CLASSES),
    }
    assert card["networks"]["G"]["context"] == {"num_classes": 3}  # built for the dataset's classes
    model = Model.load(with_plugin, "cpu")
    assert model.classes == list(CLASSES) and model.generates and set(model.networks) == {"G"}


def test_cli_python_and_onnx_draw_the_chosen_class(plugin_site, with_plugin, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from ganforge.model import Model

    _, run, env = plugin_site
    result = run_cli(
        "sample",
        str(run),
        "--class",
        "dog",
        "-n",
        "4",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "dog.png"),
        "--individual",
        str(tmp_path / "dogs"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    by_index = run_cli(
        "sample",
        str(run),
        "--class",
        "1",
        "-n",
        "4",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "one.png"),
        env=env,
    )
    assert by_index.returncode == 0 and np.array_equal(
        np.asarray(Image.open(tmp_path / "dog.png")), np.asarray(Image.open(tmp_path / "one.png"))
    )
    model = Model.load(run, "cpu")
    python = model.sample(4, seed=3, cls="dog")
    cli = [Image.open(tmp_path / "dogs" / f"sample-{i:05d}.png") for i in range(4)]
    for a, b in zip(python, cli):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    other = model.sample(4, seed=3, cls="cat")
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(python, other)
    )  # the class matters

    onnx_file = tmp_path / "g.onnx"
    exported = run_cli("export", str(run), "--format", "onnx", "--out", str(onnx_file), env=env)
    assert exported.returncode == 0, exported.stderr
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "label"]
    meta = json.loads(session.get_modelmeta().custom_metadata_map["ganforge"])
    assert meta["condition"]["values"] == list(CLASSES)
    z = torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 1, 0])
    (images,) = session.run(None, {"z": z.numpy(), "label": labels.numpy()})
    np.testing.assert_allclose(images, model.generate(z, labels).numpy(), atol=1e-5)


def test_without_a_class_the_grid_has_a_row_per_class_and_bad_classes_are_one_line(plugin_site, tmp_path):
    _, run, env = plugin_site
    result = run_cli("sample", str(run), "-n", "6", "--out", str(tmp_path / "all.png"), env=env)
    assert result.returncode == 0, result.stderr
    # 6 images shared out over 3 classes: 3 rows of 2 tiles (16 px and 2 px padding)
    assert Image.open(tmp_path / "all.png").size == (2 * 18 + 2, 3 * 18 + 2)
    for value in ("wolf", "3"):
        bad = run_cli("sample", str(run), "--class", value, "--out", str(tmp_path / "x.png"), env=env)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
        assert f"has no class '{value}'" in bad.stderr and "0=cat, 1=dog, 2=fox" in bad.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_condition_needs_labels_and_an_unconditional_model_takes_no_class(
    plugin_site, with_plugin, tmp_path, anime_root
):
    from ganforge.plugins import get_registry
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    _, run, _ = plugin_site
    recipe = Recipe.load(run / "recipe.resolved.toml", [f"data.root={anime_root}", "data.name=image-folder"])
    with pytest.raises(
        GanforgeError, match="needs batch keys image, label; dataset 'image-folder' yields image"
    ):
        Trainer(recipe.resolve(get_registry()), tmp_path / "r", get_registry())
