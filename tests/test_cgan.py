"""The bundled class-conditional GAN (``cgan``: SNGAN generator, projection discriminator, hinge)
on a tiny class-folder tree: its recipes train and resume exactly on CPU, a chosen class comes
out of ``ganforge sample --class``, ``Model.sample(cls=...)`` and the ONNX export alike, and one
step's hinge losses match a hand computation.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from conftest import NO_CALLBACKS, RECIPES, no_callbacks, run_cli
from PIL import Image

from ganforge import GanforgeError, unwrap
from ganforge.model import Model
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer

CLASSES = ("cat", "dog", "fox")
# The recipes' structure with narrow networks: a CPU step takes a fraction of a second.
SMALL = [
    "generator.ch=8",
    "generator.latent_dim=16",
    "discriminator.ch=8",
    "train.batch_size=4",
    "train.num_workers=0",
    "train.log_every=2",
    "objective.n_critic=2",
    "objective.sample_count=4",
    "callbacks.samples.count=4",
    "train.device='cpu'",
]


@pytest.fixture(scope="module")
def class_root(tmp_path_factory):
    """Three class folders of four 32 px images each; each class has its own colour."""
    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    for i, name in enumerate(CLASSES):
        (root / name).mkdir()
        for j in range(4):
            pixels = rng.integers(0, 64, (32, 32, 3)) + 60 * i
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{j}.png")
    return root


def resolved(recipe: str, root, *extra: str) -> dict:
    # data.root wins over the CIFAR-10 recipe's source; its split (train/) is not in the tiny tree
    split = ["data.split=''"] if recipe == "cgan_cifar10.toml" else []
    items = [*SMALL, f"data.root={root}", *split, *extra]
    return Recipe.load(RECIPES / recipe, items).resolve(get_registry())


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, net in trainer.engine.networks.items()
        for k, v in net.state_dict().items()
    }


@pytest.fixture(scope="module")
def cgan_run(class_root, tmp_path_factory):
    """A run folder of the folders recipe after three CPU steps (one checkpoint)."""
    out = tmp_path_factory.mktemp("cgan") / "RUN"
    items = ["train.max_steps=3", *no_callbacks("checkpoint")]
    Trainer(resolved("cgan_folders.toml", class_root, *items), out, get_registry()).fit()
    return out


@pytest.mark.parametrize("recipe", ["cgan_folders.toml", "cgan_cifar10.toml"])
def test_the_recipe_trains_and_resumes_to_the_same_weights(recipe, class_root, tmp_path, one_thread):
    extra = ("objective.ema=0.9", "objective.ema_start=1", *NO_CALLBACKS)
    full = Trainer(
        resolved(recipe, class_root, "train.max_steps=4", *extra), tmp_path / "full", get_registry()
    )
    assert full.fit()["step"] == 4
    Trainer(
        resolved(recipe, class_root, "train.max_steps=2", *extra), tmp_path / "split", get_registry()
    ).fit()
    second = Trainer(
        resolved(recipe, class_root, "train.max_steps=4", *extra), tmp_path / "split", get_registry()
    )
    second.resume(tmp_path / "split")
    second.fit()
    a, b = weights(full), weights(second)
    assert a.keys() == b.keys() and {"G.linear0.weight", "G_ema.linear0.weight"} <= a.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5, msg=key)
    assert all(torch.isfinite(v).all() for v in a.values() if v.is_floating_point())
    # two G updates (steps 1 and 3): the first is copied (ema_start = 1), the second averaged
    live, average = full.engine.networks["G"], full.engine.networks["G_ema"]
    assert not torch.equal(live.linear0.weight, average.linear0.weight)


def test_the_checkpoint_card_names_the_classes_and_the_networks_size_from_them(cgan_run):
    from ganforge import checkpoint as ckpt

    card = ckpt.read_meta(ckpt.resolve(cgan_run))["model"]
    assert card["condition"] == {
        "batch_key": "label",
        "networks": ["G", "D"],
        "kind": "class",
        "values": list(CLASSES),
    }
    assert card["networks"]["G"]["context"] == {"num_classes": 3}
    model = Model.load(cgan_run, "cpu")
    assert model.classes == list(CLASSES) and model.generates and model.image_size == 32
    assert model.networks["G"].blocks[0][0].bn1.gain.weight.shape == (8 * 4, 3)  # one gain row per class


def test_cli_and_python_draw_the_chosen_class_the_same_for_the_same_seed(cgan_run, tmp_path):
    by_index = run_cli(
        "sample", str(cgan_run), "--class", "1", "-n", "4", "--seed", "3",
        "--out", str(tmp_path / "one.png"), "--individual", str(tmp_path / "ones"),
    )  # fmt: skip
    assert by_index.returncode == 0, by_index.stderr
    by_name = run_cli(
        "sample",
        str(cgan_run),
        "--class",
        "dog",
        "-n",
        "4",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "dog.png"),
    )
    assert by_name.returncode == 0, by_name.stderr
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "one.png")), np.asarray(Image.open(tmp_path / "dog.png"))
    )

    model = Model.load(cgan_run, "cpu")
    python = model.sample(4, seed=3, cls=1)
    assert len(python) == 4 and python[0].size == (32, 32)
    for i, image in enumerate(python):
        assert np.array_equal(
            np.asarray(image), np.asarray(Image.open(tmp_path / "ones" / f"sample-{i:05d}.png"))
        )
    again = model.sample(4, seed=3, cls="dog")
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(python, again))
    other = model.sample(4, seed=3, cls="fox")
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(python, other))


def test_the_onnx_export_takes_the_class_as_input_and_matches(cgan_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "g.onnx"
    exported = run_cli("export", str(cgan_run), "--format", "onnx", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "label"]
    meta = json.loads(session.get_modelmeta().custom_metadata_map["ganforge"])
    assert meta["condition"]["values"] == list(CLASSES)
    model = Model.load(cgan_run, "cpu")
    z = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 1, 0])
    (images,) = session.run(None, {"z": z.numpy(), "label": labels.numpy()})
    np.testing.assert_allclose(images, model.generate(z, labels).numpy(), atol=1e-5)


def test_list_objectives_shows_cgan():
    listed = run_cli("list", "objectives", "--json")
    assert listed.returncode == 0, listed.stderr
    cgan = {row["name"]: row for row in json.loads(listed.stdout)}["cgan"]
    assert {p["name"] for p in cgan["params"]} == {"n_critic", "ema_start", "sample_count", "sample_seed"}
    assert cgan["declares"]["condition"] == {"batch_key": "label", "networks": ["G", "D"], "kind": "class"}
    assert cgan["declares"]["batch_keys"] == ["image", "label"] and cgan["declares"]["noise"] == "G"


def test_one_step_hinge_losses_by_hand(class_root, tmp_path):
    # n_critic 1: D then G in the same step. With D's learning rate 0 its weights stay put, so the
    # G step's D is the copy below after the same forward passes (spectral norm's power
    # iteration advances its vectors in every training forward).
    items = ["objective.n_critic=1", "optim.d.lr=0.0", "train.max_steps=1", *NO_CALLBACKS]
    trainer = Trainer(resolved("cgan_folders.toml", class_root, *items), tmp_path / "run", get_registry())
    batch = trainer.to_device(next(iter(trainer._loader(0))))
    g0, d0 = copy.deepcopy(unwrap(trainer.objective.G)), copy.deepcopy(unwrap(trainer.objective.D))
    torch.manual_seed(7)
    losses = trainer.engine.run_step(batch, 0)

    torch.manual_seed(7)  # the draws of the step, in its order: fake classes, then noise; twice
    n, latent = batch["image"].shape[0], 16
    y1, z1 = torch.randint(0, 3, (n,)), torch.randn(n, latent)
    with torch.no_grad():
        d_real = d0(batch["image"], batch["label"])
        d_fake = d0(g0(z1, y1), y1)
        y2, z2 = torch.randint(0, 3, (n,)), torch.randn(n, latent)
        d_fake2 = d0(g0(z2, y2), y2)
    d_by_hand = (
        sum(max(0.0, 1.0 - float(s)) for s in d_real) / n + sum(max(0.0, 1.0 + float(s)) for s in d_fake) / n
    )
    g_by_hand = -sum(float(s) for s in d_fake2) / n
    assert set(losses) == {"D", "G"}
    assert float(losses["D"]) == pytest.approx(d_by_hand, rel=1e-5, abs=1e-5)
    assert float(losses["G"]) == pytest.approx(g_by_hand, rel=1e-5, abs=1e-5)


def test_the_d_step_leaves_the_generators_batch_norm_statistics_alone(class_root, tmp_path):
    trainer = Trainer(
        resolved("cgan_folders.toml", class_root, "train.max_steps=2", *NO_CALLBACKS),
        tmp_path / "run",
        get_registry(),
    )
    g = unwrap(trainer.objective.G)
    stats = lambda: [b.clone() for name, b in g.named_buffers() if "running_mean" in name]  # noqa: E731
    loader = iter(trainer._loader(0))
    before = stats()
    losses = trainer.engine.run_step(trainer.to_device(next(loader)), 0)  # D only (n_critic 2)
    assert set(losses) == {"D"} and all(torch.equal(a, b) for a, b in zip(before, stats()))
    losses = trainer.engine.run_step(trainer.to_device(next(loader)), 1)  # D, then G
    assert set(losses) == {"D", "G"} and all(not torch.equal(a, b) for a, b in zip(before, stats()))
    assert all(m.track_running_stats for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_the_moving_average_starts_after_ema_start_generator_updates(class_root, tmp_path):
    items = ["objective.ema=0.999", "objective.ema_start=3", "objective.n_critic=5", *NO_CALLBACKS]
    trainer = Trainer(resolved("cgan_folders.toml", class_root, *items), tmp_path / "run", get_registry())
    decays = [trainer.objective.ema_decay(step) for step in range(25)]
    g_steps = [step for step in range(25) if trainer.objective.step_variant(step)]
    assert g_steps == [4, 9, 14, 19, 24]
    assert [decays[s] for s in g_steps] == [0.0, 0.0, 0.0, None, None]  # None: the recipe's 0.999


def test_a_generator_without_classes_and_a_dataset_without_them_are_one_line(
    class_root, anime_root, tmp_path
):
    with pytest.raises(
        GanforgeError, match="objective 'cgan' needs a class-conditional generator .* 'dcgan' does not"
    ):
        Trainer(
            resolved(
                "cgan_folders.toml",
                class_root,
                "generator={name='dcgan', image_size=32, ngf=8}",
                *NO_CALLBACKS,
            ),
            tmp_path / "a",
            get_registry(),
        )
    with pytest.raises(
        GanforgeError, match="needs batch keys image, label; dataset 'image-folder' yields image"
    ):
        Trainer(
            resolved("cgan_folders.toml", anime_root, "data.name=image-folder", *NO_CALLBACKS),
            tmp_path / "b",
            get_registry(),
        )


def test_a_split_names_the_folder_of_class_folders(class_root, tmp_path):
    (tmp_path / "set" / "train").mkdir(parents=True)
    (tmp_path / "set" / "train" / "dog").symlink_to(class_root / "dog", target_is_directory=True)
    (tmp_path / "set" / "train" / "cat").symlink_to(class_root / "cat", target_is_directory=True)
    with pytest.raises(
        GanforgeError, match="has no class folders with images .* set data.split to one of train"
    ):
        Trainer(
            resolved("cgan_folders.toml", tmp_path / "set", *NO_CALLBACKS), tmp_path / "a", get_registry()
        )
    trainer = Trainer(
        resolved("cgan_folders.toml", tmp_path / "set", "data.split=train", *NO_CALLBACKS),
        tmp_path / "b",
        get_registry(),
    )
    assert trainer.classes == ["cat", "dog"]


def test_biggan_trains_with_the_moving_average_from_its_start(class_root, tmp_path):
    # StudioGAN's CIFAR-10 BigGAN layout, narrow: shared class embedding, attention in G and D
    biggan = "generator={name='biggan', latent_dim=16, ch=8, shared_dim=8, attention=[2]}"
    items = [biggan, "discriminator.attention=[1]", "objective.ema=0.999", "objective.ema_start=1"]
    trainer = Trainer(
        resolved("cgan_cifar10.toml", class_root, *items, "train.max_steps=4", *NO_CALLBACKS),
        tmp_path / "run",
        get_registry(),
    )
    assert trainer.fit()["step"] == 4
    g = trainer.engine.networks["G"]
    assert type(g).__name__ == "BigGANGenerator" and g.shared.weight.shape == (3, 8)
    model = Model.load(tmp_path / "run", "cpu")
    images = model.sample(3, seed=0, cls="fox")
    assert len(images) == 3 and images[0].size == (32, 32)
