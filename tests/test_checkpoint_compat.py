"""Checkpoints written by ganforge 0.1.0 (before the objective contract) still translate,
sample and resume: the contract keeps their state layout (networks by name, ``opt_<role>``,
pools by name). The two files were made by 0.1.0 (commit f6ff33a) on 20 px crops of real images."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import REPO

from ganforge import checkpoint as ckpt
from ganforge.model import Model
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.sampling import sample_to_files
from ganforge.training.trainer import Trainer
from ganforge.translate import translate_files

OLD = REPO / "tests" / "data" / "checkpoints-0.1.0"


def test_old_checkpoints_say_they_are_0_1_0():
    for name in ("cyclegan", "dcgan"):
        meta = ckpt.read_meta(OLD / f"{name}.safetensors")
        assert meta["ganforge"] == "0.1.0" and "image_size" not in meta and meta["objective"] == name


def test_a_0_1_0_cyclegan_checkpoint_translates(selfie_root, tmp_path):
    model = Model.load(OLD / "cyclegan.safetensors", "cpu")
    assert model.image_size == 16  # read from the saved recipe: 0.1.0 did not record it
    assert list(model.directions) == ["a2b", "b2a"]
    failures = translate_files(model, [str(selfie_root / "trainA")], tmp_path)
    assert not failures and len(list(tmp_path.glob("*.png"))) == len(list((selfie_root / "trainA").iterdir()))


@pytest.mark.parametrize("name, data", [("cyclegan", "selfie_root"), ("dcgan", "anime_root")])
def test_a_0_1_0_checkpoint_resumes(name, data, request, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD / f"{name}.safetensors", run / "checkpoints" / "step-00000002.safetensors")
    meta = ckpt.read_meta(run / "checkpoints" / "step-00000002.safetensors")
    source = Recipe.from_saved(meta["recipe"], "old", [f"data.root={request.getfixturevalue(data)}"])
    source.set("train.max_steps=3")
    trainer = Trainer(source.resolve(get_registry()), run, get_registry())
    trainer.resume(run)
    before = {
        k: v.clone()
        for k, v in trainer.engine.networks[next(iter(trainer.engine.networks))].state_dict().items()
    }
    trainer.fit()
    assert trainer.step == 3
    after = trainer.engine.networks[next(iter(trainer.engine.networks))].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained on


def test_a_0_1_0_dcgan_checkpoint_samples_from_its_average(tmp_path):
    model = Model.load(OLD / "dcgan.safetensors", "cpu")
    assert model.card["networks"]["G"]["ema"]  # the card says the average is what samples
    paths = sample_to_files(model, count=4, out=tmp_path / "g.png", seed=1)
    assert paths[0].is_file()


# -- checkpoints of ganforge 0.1.x before model cards (commit 0723561): see the folder's README --

PRE_CARD = REPO / "tests" / "data" / "checkpoints-0.1.x"


@pytest.fixture(scope="module")
def expected():
    from safetensors.torch import load_file

    return load_file(str(PRE_CARD / "expected.safetensors"))


@pytest.mark.parametrize("name", ["cyclegan", "cut", "cyclegan-a2b"])
def test_pre_card_files_translate_as_they_did(name, expected):
    model = Model.load(PRE_CARD / f"{name}.safetensors", "cpu")
    assert "a2b" in model.directions and model.image_size == 24
    out = model.translate(expected["input"], "a2b")
    torch.testing.assert_close(out, expected[f"{name}/a2b"], rtol=0, atol=1e-6)


def test_pre_card_cyclegan_uses_its_average_and_dcgan_samples_as_it_did(expected, tmp_path):
    card = Model.load(PRE_CARD / "cyclegan.safetensors", "cpu").card  # built from the saved recipe
    assert card["networks"]["G_AB"]["ema"] and card["networks"]["G_AB"]["component"] == "resnet"
    model = Model.load(PRE_CARD / "dcgan.safetensors", "cpu")
    assert model.generates and model.latent_dim == 8
    torch.testing.assert_close(model.generate(expected["z"]), expected["dcgan/generate"], rtol=0, atol=1e-6)
    assert sample_to_files(model, count=4, out=tmp_path / "g.png", seed=1)[0].is_file()


@pytest.mark.parametrize("name, data", [("cyclegan", "selfie_root"), ("cut", "selfie_root")])
def test_pre_card_checkpoints_resume_and_write_cards(name, data, request, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(PRE_CARD / f"{name}.safetensors", run / "checkpoints" / "step-00000002.safetensors")
    meta = ckpt.read_meta(run / "checkpoints" / "step-00000002.safetensors")
    source = Recipe.from_saved(meta["recipe"], "old", [f"data.root={request.getfixturevalue(data)}"])
    source.set("train.max_steps=3")
    trainer = Trainer(source.resolve(get_registry()), run, get_registry())
    trainer.resume(run)
    trainer.fit()
    assert trainer.step == 3
    assert "model" in ckpt.read_meta(ckpt.resolve(run))  # the new checkpoint carries its card
    assert list(Model.load(run, "cpu").directions)[0] == "a2b"
