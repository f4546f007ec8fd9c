"""Each bundled plugin module registers its components through its hook (one test per hook)."""

from __future__ import annotations

import importlib

import pytest
import torch
from torch.utils.data import default_collate

from ganforge.errors import GanforgeError
from ganforge.plugins import get_registry


def registered(module: str, hook: str) -> dict[str, object]:
    names: dict[str, object] = {}
    getattr(importlib.import_module(f"ganforge_plugins.{module}"), hook)(lambda n, f: names.setdefault(n, f))
    return names


def test_hook_register_generators():
    assert set(registered("networks", "register_generators")) == {
        "resnet",
        "pixelshuffle",
        "dcgan",
        "ugatit",
        "unet",
        "unet_256",
        "unet_128",
        "sngan",
        "biggan",
        "vit-modnet",
        "r3gan",
    }
    g = get_registry().build("generator", {"name": "pixelshuffle", "ngf": 4, "blocks": 1})
    assert g(torch.randn(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_hook_register_discriminators():
    assert set(registered("networks", "register_discriminators")) == {
        "patchgan",
        "dcgan",
        "ugatit",
        "projection",
        "uvcgan2",
        "r3gan",
    }
    d = get_registry().build("discriminator", {"name": "dcgan", "ndf": 4, "image_size": 32})
    assert d(torch.randn(2, 3, 32, 32)).numel() == 2


def test_hook_register_losses():
    assert set(registered("losses", "register_losses")) == {"lsgan", "bce", "hinge", "wgan-gp", "rpgan"}
    loss = get_registry().build("loss", {"name": "lsgan"})
    assert loss.d_loss(torch.ones(4), torch.zeros(4)).item() == 0.0


def test_hook_register_pools():
    assert set(registered("pools", "register_pools")) == {"history", "none", "cache"}
    pool = get_registry().build("pool", {"name": "history", "size": 2})
    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(pool.query(x), x)  # a filling pool returns its input


def test_hook_register_queues():
    assert set(registered("networks", "register_queues")) == {"fifo"}
    queue = get_registry().build("queue", {"name": "fifo", "size": 2})
    assert queue.query() is None
    queue.push(torch.arange(3.0)[:, None])  # more than it keeps: the last two
    assert torch.equal(queue.query(), torch.tensor([[1.0], [2.0]])) and len(queue) == 2


def test_hook_register_optimizers():
    assert set(registered("optim", "register_optimizers")) == {"adam", "adamw", "sgd"}
    w = torch.nn.Parameter(torch.ones(2))
    opt = get_registry().build("optimizer", {"name": "sgd", "lr": 0.5, "momentum": 0.0}, params=[w])
    w.sum().backward()
    opt.step()
    assert torch.allclose(w, torch.full((2,), 0.5))


def test_hook_register_schedulers():
    assert set(registered("optim", "register_schedulers")) >= {
        "constant",
        "linear-decay",
        "cyclic",
        "step",
        "cosine",
        "cosine-restarts",
    }
    f = get_registry().build(
        "scheduler",
        {"name": "linear-decay", "constant_epochs": 1, "decay_epochs": 1},
        steps_per_epoch=10,
        total_steps=20,
    )
    assert f(0) == 1.0 and f(10) < 1.0


def test_hook_register_datasets(selfie_root, anime_root):
    assert set(registered("datasets", "register_datasets")) == {
        "unpaired-folders",
        "image-folder",
        "class-folders",
        "aligned",
        "paired-folders",
    }
    registry = get_registry()
    unpaired = registry.build(
        "dataset",
        {"name": "unpaired-folders", "root": str(selfie_root), "image_size": 32, "holdout": 2},
        seed=0,
    )
    item = unpaired[0]
    assert (
        item["A"].shape == (3, 32, 32) and item["A"].dtype == torch.uint8 and item["B"].shape == (3, 32, 32)
    )
    assert len(unpaired) == 6 and unpaired.holdout(2)["A"].shape == (2, 3, 32, 32)
    # the item at a stream position is a pure function of (seed, position)
    again = registry.build(
        "dataset",
        {"name": "unpaired-folders", "root": str(selfie_root), "image_size": 32, "holdout": 2},
        seed=0,
    )
    assert torch.equal(again[13]["A"], unpaired[13]["A"]) and torch.equal(again[13]["B"], unpaired[13]["B"])
    single = registry.build(
        "dataset",
        {"name": "image-folder", "root": str(anime_root), "image_size": 16, "color_jitter": 0.2, "blur": 0.5},
        seed=3,
    )
    assert single[5]["image"].shape == (3, 16, 16) and torch.equal(single[5]["image"], single[5]["image"])


def test_hook_register_callbacks():
    assert set(registered("callbacks", "register_callbacks")) >= {
        "progress",
        "metrics-log",
        "samples",
        "checkpoint",
    }
    # the apps register the callbacks they build on: the report app's loss plot, the eval app's eval
    assert set(registered("apps.report", "register_callbacks")) == {"loss-plot"}
    assert set(registered("apps.eval", "register_callbacks")) == {"eval"}


def test_hook_register_objectives():
    assert set(registered("objectives", "register_objectives")) == {
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
    }
    objective = get_registry().get("objective", "cyclegan")
    assert {p.name for p in objective.params} == {
        "lambda_cycle",
        "lambda_identity",
        "d_loss_weight",
        "sample_count",
    }


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "resize"])
def test_decoded_cache_gives_identical_items(selfie_root, tmp_path, monkeypatch, preprocess):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    registry = get_registry()
    table = {
        "name": "unpaired-folders",
        "root": str(selfie_root),
        "image_size": 32,
        "load_size": 40,
        "preprocess": preprocess,
        "holdout": 2,
    }
    plain = registry.build("dataset", table, seed=5)
    cached = registry.build("dataset", {**table, "cache": True}, seed=5)
    assert len(list((tmp_path / "cache" / "decoded").glob("*.safetensors"))) == 2
    for position in (0, 3, 7, 40):
        for key in ("A", "B"):
            assert torch.equal(plain[position][key], cached[position][key]), (position, key)
    again = registry.build("dataset", {**table, "cache": True}, seed=5)  # loads the cache, no rebuild
    assert torch.equal(again.cache_a, cached.cache_a)


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "resize"])
def test_device_cache_batches_match_the_decoded_path(selfie_root, tmp_path, monkeypatch, preprocess):
    # cache = "device": items are crop specs, on_device cuts them out of the cache in one gather.
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    registry = get_registry()
    table = {"name": "unpaired-folders", "root": str(selfie_root), "image_size": 32, "load_size": 40}
    table["preprocess"] = preprocess
    plain = registry.build("dataset", table, seed=5)
    on_device = registry.build("dataset", {**table, "cache": "device"}, seed=5)
    positions = [0, 3, 7, 40, 41, 90]
    specs = default_collate([on_device[p] for p in positions])
    assert specs["A"].dtype == torch.int64 and specs["A"].shape == (len(positions), 4)
    if preprocess == "resize_and_crop":
        assert len(set(specs["A"][:, 1:3].flatten().tolist())) > 1  # real random crops
    assert set(specs["A"][:, 3].tolist()) == {0, 1}  # and both flip outcomes
    batch = on_device.on_device(specs, torch.device("cpu"))
    expected = default_collate([plain[p] for p in positions])
    for key in ("A", "B"):
        assert batch[key].dtype == torch.uint8
        assert batch[key].is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(batch[key], expected[key]), key
    assert plain.on_device(expected, torch.device("cpu")) is expected  # other modes pass through


def test_device_cache_with_photometric_augmentation(anime_root, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    registry = get_registry()
    table = {"name": "image-folder", "root": str(anime_root), "image_size": 24, "flip": True}
    table.update(color_jitter=0.3, blur=0.5)
    # Pillow and torchvision's tensor kernels round jitter differently: compare tensor paths.
    plain = registry.build("dataset", {**table, "cache": True}, seed=2)
    on_device = registry.build("dataset", {**table, "cache": "device"}, seed=2)
    positions = list(range(8))
    reseeded = []  # the per-item seeds must not touch CUDA's generator (noise and pool draws)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: reseeded.append(seed))
    specs = default_collate([on_device[p] for p in positions])
    assert specs["image"].shape == (8, 5)  # crop spec + the item's photometric seed
    got = on_device.on_device(specs, torch.device("cpu"))["image"]
    assert reseeded == []
    expected = torch.stack([plain[p]["image"] for p in positions])
    assert torch.equal(got, expected)
    still = {**table, "cache": True, "color_jitter": 0.0, "blur": 0.0}
    undisturbed = registry.build("dataset", still, seed=2)
    assert not torch.equal(expected, torch.stack([undisturbed[p]["image"] for p in positions]))


def test_bad_cache_value_is_one_line(anime_root):
    with pytest.raises(GanforgeError, match=r"key 'cache' expects bool \| 'disk' \| 'device', got str 'gpu'"):
        get_registry().build("dataset", {"name": "image-folder", "root": str(anime_root), "cache": "gpu"})


@pytest.mark.parametrize("cache", [True, "disk"])
def test_decoded_cache_single_folder(anime_root, tmp_path, monkeypatch, cache):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    registry = get_registry()
    table = {"name": "image-folder", "root": str(anime_root), "image_size": 24, "flip": True}
    plain = registry.build("dataset", table, seed=1)
    cached = registry.build("dataset", {**table, "cache": cache}, seed=1)
    assert cached.cache is not None and not cached.on_device_cache
    for position in range(6):
        assert torch.equal(plain[position]["image"], cached[position]["image"])


def test_hook_register_mask_providers():
    assert set(registered("apps.composite", "register_mask_providers")) == {
        "mediapipe-selfie",
        "deeplabv3",
        "face-box",
    }
    provider = get_registry().build("mask_provider", {"name": "face-box", "detector": "skimage"})
    from PIL import Image

    assert provider(Image.new("RGB", (64, 48), "gray")) is None  # no face: no mask


def test_hook_register_compositors():
    assert set(registered("apps.composite", "register_compositors")) == {"mask-paste"}
    compositor = get_registry().build("compositor", {"name": "mask-paste", "mask": "face-box", "feather": 3})
    assert compositor.feather == 3 and hasattr(compositor, "composite")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_cache_gathers_on_the_gpu(selfie_root, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    registry = get_registry()
    table = {"name": "unpaired-folders", "root": str(selfie_root), "image_size": 32, "load_size": 40}
    disk = registry.build("dataset", {**table, "cache": True}, seed=3)
    on_gpu = registry.build("dataset", {**table, "cache": "device"}, seed=3)
    positions = list(range(12))
    batch = on_gpu.on_device(default_collate([on_gpu[p] for p in positions]), torch.device("cuda"))
    assert on_gpu.cache_a.is_cuda and batch["A"].is_cuda  # uploaded once, cut there
    expected = default_collate([disk[p] for p in positions])
    for key in ("A", "B"):
        assert torch.equal(batch[key].cpu(), expected[key]), key


def test_class_folders_yield_labels_and_name_their_classes(tmp_path):
    from PIL import Image

    for c, name in enumerate(["zebra", "ant", "moth"]):  # sorted by name: ant, moth, zebra
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (12, 10), (40 * c, 10 * i, 0)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "notes").mkdir()  # no images: not a class
    (tmp_path / "notes" / "readme.txt").write_text("x")
    data = get_registry().build(
        "dataset", {"name": "class-folders", "root": str(tmp_path), "image_size": 8, "holdout": 1}, seed=0
    )
    assert data.classes == ["ant", "moth", "zebra"] and len(data) == 6  # one held out per class
    items = [data[p] for p in range(6)]
    assert sorted(int(item["label"]) for item in items) == [0, 0, 1, 1, 2, 2]
    ant = next(item for item in items if int(item["label"]) == 0)
    assert ant["image"].shape == (3, 8, 8) and ant["image"][0].max() == 40  # ant was drawn with red 40
    held = data.holdout(3)
    assert held["label"].tolist() == [0, 1, 2] and held["image"].shape == (3, 3, 8, 8)
    with pytest.raises(GanforgeError, match="no class folders with images"):
        get_registry().build("dataset", {"name": "class-folders", "root": str(tmp_path / "notes")}, seed=0)


def test_class_folders_holdout_labels_stay_with_their_images_past_an_unreadable_one(tmp_path):
    """A held-out image that cannot be read is skipped together with its label: each label is
    the class of the image beside it, and the next readable image takes its place."""
    from PIL import Image

    for c, name in enumerate(["ant", "moth", "zebra"]):
        (tmp_path / name).mkdir()
        for i in range(4):
            Image.new("RGB", (8, 8), (40 * (c + 1), 0, 0)).save(tmp_path / name / f"{i}.png")
    data = get_registry().build(
        "dataset", {"name": "class-folders", "root": str(tmp_path), "image_size": 8, "holdout": 2}, seed=0
    )
    first_ant = next(path for path, label in data.held if label == 0)
    first_ant.write_bytes(b"not an image")  # the first held-out image, in the classes' turn
    held = data.holdout(4)
    assert held["label"].tolist() == [1, 2, 0, 1]
    assert held["image"][:, 0, 0, 0].tolist() == [80, 120, 40, 80]  # red 40 * (class + 1)
