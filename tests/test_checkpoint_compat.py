"""Checkpoints written by ganforge 0.1.0 (before the objective contract) still translate,
sample and resume: the contract keeps their state layout (networks by name, ``opt_<role>``,
pools by name). The two files were made by 0.1.0 (commit f6ff33a) on 20 px crops of real images."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import REPO

from ganforge import checkpoint as ckpt
from ganforge.inference import image_size, load_objective
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.sampling import sample_to_files
from ganforge.trainer import Trainer
from ganforge.translate import translate_files

OLD = REPO / "tests" / "data" / "checkpoints-0.1.0"


def test_old_checkpoints_say_they_are_0_1_0():
    for name in ("cyclegan", "dcgan"):
        meta = ckpt.read_meta(OLD / f"{name}.safetensors")
        assert meta["ganforge"] == "0.1.0" and "image_size" not in meta and meta["objective"] == name


def test_a_0_1_0_cyclegan_checkpoint_translates(selfie_root, tmp_path):
    objective, meta, _ = load_objective(OLD / "cyclegan.safetensors", get_registry(), "cpu")
    assert image_size(meta) == 16  # read from the saved recipe: 0.1.0 did not record it
    assert list(objective.directions) == ["a2b", "b2a"]
    failures = translate_files(
        str(OLD / "cyclegan.safetensors"),
        [str(selfie_root / "trainA")],
        tmp_path,
        get_registry(),
        device="cpu",
    )
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
        for k, v in trainer.objective.networks[next(iter(trainer.objective.networks))].state_dict().items()
    }
    trainer.fit()
    assert trainer.step == 3
    after = trainer.objective.networks[next(iter(trainer.objective.networks))].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained on


def test_a_0_1_0_dcgan_checkpoint_samples_from_its_average(tmp_path):
    objective, _, _ = load_objective(OLD / "dcgan.safetensors", get_registry(), "cpu")
    assert "G_ema" in objective.inference_networks()
    paths = sample_to_files(
        str(OLD / "dcgan.safetensors"), get_registry(), count=4, out=tmp_path / "g.png", seed=1
    )
    assert paths[0].is_file()
