"""What a run leaves for people: captioned sample grids and a report that says what the run used."""

from __future__ import annotations

import numpy as np
from conftest import RECIPES, TINY
from PIL import Image

from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer
from ganforge_plugins.apps.report.report import as_run_description, build_report
from ganforge_plugins.callbacks.samples import sample_captions, sample_grid, with_captions


def test_captions_sit_above_an_unchanged_grid():
    grid = Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 206, 3), dtype=np.uint8))
    captions = ["input A", "A -> B", "A -> B -> A"]
    out = np.asarray(with_captions(grid, captions))
    header = out.shape[0] - 70
    assert 10 <= header <= 24 and np.array_equal(out[header:], np.asarray(grid))
    columns = np.array_split(out[:header, 2:], 3, axis=1)
    assert all((col < 128).any() for col in columns)  # text in every column's header
    narrow = np.asarray(with_captions(Image.new("RGB", (3 * 20 + 2, 22)), captions))  # shortened to fit
    assert narrow.shape[1] == 62


def test_a_run_captions_its_grids_and_its_report_says_what_it_used(selfie_root, tmp_path):
    registry = get_registry()
    run = tmp_path / "RUN"
    items = [*TINY, f"data.root={selfie_root}", "train.max_steps=2", "train.device='cpu'"]
    items.append("callbacks.tensorboard.enabled=false")
    trainer = Trainer(
        Recipe.load(RECIPES / "cyclegan_selfie2anime.toml", items).resolve(registry), run, registry
    )
    trainer.fit()
    captions = sample_captions(trainer.model)
    assert captions == ["input A", "A -> B", "A -> B -> A", "input B", "B -> A", "B -> A -> B"]
    grid = sample_grid(trainer.model, trainer.holdout(2))
    png = np.asarray(Image.open(run / "samples" / "step-00000002.png"))
    assert png.shape[1] == grid.shape[2] and png.shape[0] > grid.shape[1]  # the same grid, a header above

    page = build_report(run)
    assert "32 px (the recipe file says 256 px)" in page
    assert "changed with --set" in page and "data.image_size=32" in page and "generator.ngf=8" in page
    assert "32 px, generator resnet (ngf 8, blocks 2), discriminator patchgan (ndf 8, n_layers 3)" in page


def test_a_description_without_a_size_or_with_the_right_one_is_kept():
    assert as_run_description("CycleGAN, 64 px", {"data": {"image_size": 64}}) == "CycleGAN, 64 px"
    assert as_run_description("DCGAN anime faces", {"data": {"image_size": 32}}) == "DCGAN anime faces"


def test_a_partial_callbacks_table_adds_to_the_defaults(selfie_root, tmp_path):
    """A recipe without [callbacks], or with only some of them, still gets every default callback;
    turning one off (the start-up hint's --set callbacks.tensorboard.enabled=false) drops only it."""
    text = (RECIPES / "cyclegan_selfie2anime.toml").read_text()
    bare = text[: text.index("[callbacks")]  # the recipe with no [callbacks] at all
    recipe = tmp_path / "no_callbacks.toml"
    recipe.write_text(bare)
    registry = get_registry()
    items = [*TINY, f"data.root={selfie_root}", "train.max_steps=2", "train.device='cpu'"]
    resolved = Recipe.load(recipe, [*items, "callbacks.tensorboard.enabled=false"]).resolve(registry)
    assert set(resolved["callbacks"]) == {"progress", "metrics-log", "samples", "checkpoint", "tensorboard"}
    Trainer(resolved, tmp_path / "run", registry).fit()
    run = tmp_path / "run"
    assert (run / "metrics.jsonl").is_file() and list((run / "samples").glob("*.png"))
    assert not (run / "tensorboard").exists()
    partial = Recipe.load(recipe, [*items, "callbacks.samples.every=1", "callbacks.wandb={project='x'}"])
    tables = partial.resolve(registry)["callbacks"]
    assert tables["samples"]["every"] == 1 and {"progress", "checkpoint", "wandb"} <= set(tables)
