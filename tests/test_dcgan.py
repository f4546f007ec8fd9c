"""DCGAN on tiny real anime faces: training, resume, sampling, bad folders."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import DCGAN_TINY, RECIPES, make_folder, sets
from PIL import Image

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer

RECIPE = RECIPES / "dcgan_anime.toml"
SMALL = [*DCGAN_TINY, "train.batch_size=4"]


def resolved(root, *extra: str) -> dict:
    return Recipe.load(RECIPE, [*SMALL, f"data.root={root}", "train.device='cpu'", *extra]).resolve(
        get_registry()
    )


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, net in trainer.engine.networks.items()
        for k, v in net.state_dict().items()
    }


@pytest.mark.parametrize(
    "extra",
    [(), ("loss.name=wgan-gp", "objective.n_critic=2", "objective.ema=0.9")],
    ids=["bce", "wgan-gp-ema"],
)
def test_resume_equals_uninterrupted(anime_root, tmp_path, extra, one_thread):
    full = Trainer(resolved(anime_root, "train.max_steps=8", *extra), tmp_path / "full", get_registry())
    full.fit()
    Trainer(resolved(anime_root, "train.max_steps=4", *extra), tmp_path / "split", get_registry()).fit()
    second = Trainer(resolved(anime_root, "train.max_steps=8", *extra), tmp_path / "split", get_registry())
    second.resume(tmp_path / "split")
    second.fit()
    a, b = weights(full), weights(second)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)


def test_cli_run_sample_and_loss_plot(cli, anime_root, tmp_path):
    run = tmp_path / "RUN"
    result = cli(
        "run",
        str(RECIPE),
        *sets(*SMALL, f"data.root={anime_root}", "train.max_steps=8"),
        "--out",
        str(run),
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    assert (run / "checkpoints" / "step-00000008.safetensors").is_file()
    assert (run / "samples" / "step-00000004.png").is_file()  # 16 images / batch 4: an epoch every 4 steps
    plot = Image.open(run / "loss_curves.png")
    assert plot.size == (900, 420) and len(plot.convert("RGB").getcolors(maxcolors=1 << 20)) > 10
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6, 8] and {"D", "G"} <= records[0].keys()

    grid = tmp_path / "grid.png"
    one = cli(
        "sample",
        str(run),
        "-n",
        "16",
        "--out",
        str(grid),
        "--seed",
        "7",
        "--device",
        "cpu",
        "--individual",
        str(tmp_path / "each"),
    )
    assert one.returncode == 0, one.stderr
    # a 4x4 grid of 32 px images with 2 px padding
    assert Image.open(grid).size == (4 * 34 + 2, 4 * 34 + 2)
    assert len(list((tmp_path / "each").glob("*.png"))) == 16
    again = cli(
        "sample", str(run), "-n", "16", "--out", str(tmp_path / "grid2.png"), "--seed", "7", "--device", "cpu"
    )
    assert again.returncode == 0
    assert grid.read_bytes() == (tmp_path / "grid2.png").read_bytes()
    other = cli(
        "sample", str(run), "-n", "16", "--out", str(tmp_path / "grid3.png"), "--seed", "8", "--device", "cpu"
    )
    assert grid.read_bytes() != (tmp_path / "grid3.png").read_bytes() and other.returncode == 0
    walk = cli(
        "sample",
        str(run),
        "-n",
        "16",
        "--interpolate",
        "--steps",
        "8",
        "--out",
        str(tmp_path / "walk.png"),
        "--seed",
        "1",
        "--device",
        "cpu",
    )
    assert walk.returncode == 0 and Image.open(tmp_path / "walk.png").size == (8 * 34 + 2, 2 * 34 + 2)

    translate = cli("translate", str(run), str(anime_root), "--out", str(tmp_path / "t"), "--device", "cpu")
    assert translate.returncode == 2 and "does not translate images" in translate.stderr


def test_folder_with_a_non_image_file(anime_root, tmp_path, capfd):
    root = make_folder(tmp_path / "faces", [Image.open(p) for p in sorted(anime_root.iterdir())[:6]])
    (root / "README.txt").write_text("credits")
    (root / "thumbs.db").write_bytes(b"\x00\x01")
    (root / "fake.png").write_text("not really a png")
    trainer = Trainer(resolved(root, "train.max_steps=3"), tmp_path / "run", get_registry())
    assert len(trainer.dataset) == 7  # .txt and .db are not images; fake.png is tried and skipped
    trainer.fit()
    assert trainer.step == 3
    lines = [line for line in capfd.readouterr().err.splitlines() if "skipping unreadable image" in line]
    assert len(lines) == 1 and "fake.png" in lines[0]


def test_empty_folder_is_a_clear_error(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="no images in .*empty"):
        Trainer(resolved(tmp_path / "empty"), tmp_path / "run", get_registry())
    result = cli("run", str(RECIPE), *sets(f"data.root={tmp_path / 'empty'}"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "no images in" in result.stderr and "Traceback" not in result.stderr


def test_sampling_from_ema_generator(anime_root, tmp_path):
    trainer = Trainer(
        resolved(anime_root, "train.max_steps=2", "objective.ema=0.5"), tmp_path / "run", get_registry()
    )
    trainer.fit()
    average = trainer.engine.ema["G"]
    model = trainer.model  # inference uses the average
    z = model.noise(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        average.eval()
        expected = average(z)
    torch.testing.assert_close(model.generate(z), expected)


@pytest.mark.parametrize("loss", ["bce", "lsgan", "wgan-gp"])
def test_any_adversarial_loss_trains(anime_root, tmp_path, loss):
    trainer = Trainer(
        resolved(anime_root, "train.max_steps=2", f"loss.name={loss}"), tmp_path / "run", get_registry()
    )
    trainer.fit()
    assert trainer.step == 2


def test_augmentations_and_sigmoid_discriminator(anime_root, tmp_path):
    trainer = Trainer(
        resolved(
            anime_root,
            "train.max_steps=2",
            "data.color_jitter=0.2",
            "data.blur=0.5",
            "discriminator.sigmoid=true",
        ),
        tmp_path / "run",
        get_registry(),
    )
    trainer.fit()
    assert trainer.objective._d_probs


def test_losses_that_skip_steps_are_still_logged(anime_root, tmp_path):
    # with n_critic = 2 the G loss exists every other step only; the log averages what there is
    trainer = Trainer(
        resolved(
            anime_root, "train.max_steps=4", "loss.name=wgan-gp", "objective.n_critic=2", "train.log_every=4"
        ),
        tmp_path / "run",
        get_registry(),
    )
    trainer.fit()
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"D", "gp", "G"} <= record.keys() and record["steps_per_s"] > 0


def test_device_cache_trains_like_the_disk_cache(anime_root, tmp_path, monkeypatch, one_thread):
    # The trainer hands each batch of crop specs to dataset.on_device: same images, same run.
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    # Default callbacks: the sample grid takes held-out images, which are pixels, not crop specs.
    common = ("train.max_steps=3", "data.flip=true")
    disk = Trainer(resolved(anime_root, *common, "data.cache=true"), tmp_path / "disk", get_registry())
    disk.fit()
    dev = Trainer(resolved(anime_root, *common, "data.cache='device'"), tmp_path / "dev", get_registry())
    dev.fit()
    a, b = weights(disk), weights(dev)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_objective_hooks_set_host_values_and_schedule_the_average(anime_root, tmp_path):
    """prepare_step runs before every step; ema_decay(step) overrides the recipe's decay (a
    schedule: here 0, so the average is the generator itself after each step)."""
    trainer = Trainer(
        resolved(anime_root, "train.max_steps=3", "objective.ema=0.999"), tmp_path / "run", get_registry()
    )
    seen: list[int] = []
    trainer.objective.prepare_step = seen.append
    trainer.objective.ema_decay = lambda step: 0.0
    trainer.fit()
    assert seen == [0, 1, 2]
    live, average = trainer.engine.networks["G"], trainer.engine.networks["G_ema"]
    for a, b in zip(live.parameters(), average.parameters()):
        torch.testing.assert_close(a, b)
