"""R3GAN as a bundled method: training, exact resume, sampling and export on CPU, one step of
its D and G phases by hand, its schedules reaching Adam and the moving average, and its recipes.

The reference is github.com/brownvc/R3GAN at commit 19a7ddf463fbac2bd39b4c1c73d63f1c441c7403
(``training/training_loop.py``, ``R3GAN/Trainer.py``, ``train.py``); the hand computations below
follow it, not the objective's code.
"""

from __future__ import annotations

import copy
import inspect
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import NO_CALLBACKS, RECIPES, make_folder, no_callbacks, run_cli
from PIL import Image

from ganforge import GanforgeError
from ganforge.model import Model
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer
from ganforge_plugins.objectives.r3gan import _set_adam
from ganforge_plugins.objectives.r3gan_schedules import R3GAN_PRESETS

LATENT = 8
# 16 px, three stages of width 8 with one block each: a CPU step takes a fraction of a second.
TINY = [
    "data.image_size=16",
    "generator.image_size=16",
    "discriminator.image_size=16",
    f"generator.latent_dim={LATENT}",
    "generator.widths=[8, 8, 8]",
    "generator.cardinalities=[2, 2, 2]",
    "generator.blocks=[1, 1, 1]",
    "discriminator.widths=[8, 8, 8]",
    "discriminator.cardinalities=[2, 2, 2]",
    "discriminator.blocks=[1, 1, 1]",
    "train.batch_size=4",
    "train.num_workers=0",
    "train.log_every=2",
    "train.device='cpu'",
    "objective.horizon=40",  # images per phase: the schedules move within a few steps
    "objective.sample_count=2",
    "callbacks.samples.count=4",
]
METHODS = {"r3gan": "r3gan_anime64.toml", "r3gan-cond": "r3gan_cifar10.toml"}
CLASSES = ("cat", "dog", "fox")


@pytest.fixture(scope="module")
def class_root(anime_root: Path, tmp_path_factory) -> Path:
    """CIFAR-10's layout in miniature: train/<class>/ with 4 images each."""
    root = tmp_path_factory.mktemp("cifar10")
    files = sorted(anime_root.iterdir())
    for i, name in enumerate(CLASSES):
        make_folder(
            root / "train" / name, [Image.open(f).convert("RGB") for f in files[4 * i : 4 * i + 4]], 16
        )
    return root


def roots(method: str, anime_root: Path, class_root: Path) -> str:
    return f"data.root={class_root if method == 'r3gan-cond' else anime_root}"


def resolved(method: str, root: str, *extra: str, drop: tuple[str, ...] = ()):
    recipe = Recipe.load(RECIPES / METHODS[method], [*TINY, root, *extra])
    for section in drop:
        recipe.data.pop(section)
    return recipe.resolve(get_registry())


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, net in trainer.engine.networks.items()
        for k, v in net.state_dict().items()
    }


def cosine(start: float, end: float, seen: float, horizon: float) -> float:
    """The reference's cosine_decay_with_warmup without warm-up: start to end over horizon, held."""
    if seen > horizon:
        return end
    return start + (1 - math.cos(math.pi * seen / horizon)) / 2 * (end - start)


@pytest.mark.parametrize("method", list(METHODS))
def test_trains_resumes_exactly_samples_and_exports(method, anime_root, class_root, tmp_path, one_thread):
    root = roots(method, anime_root, class_root)
    quiet = no_callbacks("checkpoint")
    full = Trainer(resolved(method, root, "train.max_steps=4", *quiet), tmp_path / "full", get_registry())
    full.fit()
    Trainer(resolved(method, root, "train.max_steps=2", *quiet), tmp_path / "split", get_registry()).fit()
    second = Trainer(resolved(method, root, "train.max_steps=4", *quiet), tmp_path / "split", get_registry())
    second.resume(tmp_path / "split")
    second.fit()
    a, b = weights(full), weights(second)
    assert a.keys() == b.keys() and "G_ema.AggregationLayer.Layer.weight" in a
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5, msg=key)
    assert all(torch.isfinite(v).all() for v in a.values() if v.is_floating_point())
    # The schedules moved: 4 steps of 2 images per phase over a 40-image horizon.
    assert full.objective.scheduled(4)["augment_p"] > 0 and full.engine.learning_rates()["d"] < 2e-4

    grid = tmp_path / "grid.png"
    result = run_cli("sample", str(tmp_path / "full"), "-n", "6", "--out", str(grid), "--seed", "1")
    assert result.returncode == 0, result.stderr
    # 16 px tiles with 2 px padding: a row per class (2 images each), or 6 images in 3 columns.
    columns, rows = (2, 3) if method == "r3gan-cond" else (3, 2)
    assert Image.open(grid).size == (columns * 18 + 2, rows * 18 + 2)
    model = Model.load(tmp_path / "full", "cpu")
    assert model.card["networks"]["G"]["ema"] and model.card["networks"]["G"]["component"] == "r3gan"
    if method == "r3gan-cond":
        assert model.classes == list(CLASSES)
    out = model.export(tmp_path / "g.safetensors")
    again = Model.load(out, "cpu")
    z = torch.randn(3, LATENT)
    labels = torch.tensor([0, 2, 1]) if method == "r3gan-cond" else None
    torch.testing.assert_close(again.generate(z, labels), model.generate(z, labels))


def test_one_step_by_hand(anime_root, class_root, tmp_path):
    """Step 7 (14 images seen per phase) of the D and G phases, computed as R3GAN/Trainer.py does."""
    step, horizon, half = 7, 40.0, 2  # batch 4: 2 real images for D, 2 for G
    # A large lr and a short half-life: every weight moves visibly, and so does the average.
    items = ["train.max_steps=8", "objective.lr=[0.02, 0.005]", "objective.ema_half_life=[0.0, 8.0]"]
    items += NO_CALLBACKS
    trainer = Trainer(
        resolved("r3gan", f"data.root={anime_root}", *items, drop=("augment",)), tmp_path, get_registry()
    )
    engine = trainer.engine
    seen = step * half
    lr, beta2 = cosine(0.02, 0.005, seen, horizon), cosine(0.9, 0.99, seen, horizon)
    gamma, half_life = cosine(2.0, 0.2, seen, horizon), cosine(0.0, 8.0, seen, horizon)
    decay = 0.5 ** (half / half_life)

    batch = trainer.to_device(next(iter(trainer._loader(0))))
    g0, d0 = copy.deepcopy(engine.networks["G"]), copy.deepcopy(engine.networks["D"])
    torch.manual_seed(11)
    losses = engine.run_step(batch, step)
    g1, d1, ema = engine.networks["G"], engine.networks["D"], engine.networks["G_ema"]

    # The schedules reached both Adams: lr and beta2 of this step, beta1 the recipe's 0.
    for opt in trainer.objective.optimizers.values():
        for group in opt.optimizer.param_groups:
            assert group["lr"] == pytest.approx(lr, rel=1e-12)
            assert group["betas"] == (0.0, pytest.approx(beta2, rel=1e-12))
    assert engine.learning_rates() == {"g": pytest.approx(lr), "d": pytest.approx(lr)}

    torch.manual_seed(11)
    real_d, real_g = batch["image"][:half], batch["image"][half:]
    z_d = torch.randn(half, LATENT)
    z_g = torch.randn(half, LATENT)  # the D phase draws nothing else (no augmentation here)

    # D phase: softplus(-(D(real) - D(fake))) + gamma / 2 * (R1 + R2), gradients w.r.t. the images.
    real = real_d.clone().requires_grad_(True)
    fake = g0(z_d).detach().requires_grad_(True)
    real_out, fake_out = d0(real), d0(fake)
    adversarial = F.softplus(-(real_out - fake_out)).mean()
    (grad_real,) = torch.autograd.grad(real_out.sum(), real, create_graph=True)
    (grad_fake,) = torch.autograd.grad(fake_out.sum(), fake, create_graph=True)
    penalty = gamma / 2 * (grad_real.square().sum([1, 2, 3]) + grad_fake.square().sum([1, 2, 3])).mean()
    assert losses["D"].item() == pytest.approx(adversarial.item(), rel=1e-5)
    assert losses["r1r2"].item() == pytest.approx(penalty.item(), rel=1e-5)
    (adversarial + penalty).backward()
    # Adam's first step with beta1 = 0 moves each weight by lr * g / (|g| + eps).
    for (name, p0), p1 in zip(d0.named_parameters(), d1.parameters(), strict=True):
        expected = p0 - lr * p0.grad / (p0.grad.abs() + 1e-8)
        torch.testing.assert_close(p1, expected, atol=1e-6, rtol=1e-5, msg=name)

    # G phase: a second real batch and new noise through the updated D.
    g_loss = F.softplus(-(d1(g0(z_g)) - d1(real_g))).mean()
    assert losses["G"].item() == pytest.approx(g_loss.item(), rel=1e-5)
    g_loss.backward()
    for (name, p0), p1, avg in zip(g0.named_parameters(), g1.parameters(), ema.parameters(), strict=True):
        expected = p0 - lr * p0.grad / (p0.grad.abs() + 1e-8)
        torch.testing.assert_close(p1, expected, atol=1e-6, rtol=1e-5, msg=name)
        # G_ema = lerp(G, G_ema, beta) with beta = 0.5 ** (batch / half_life): the average started as G.
        torch.testing.assert_close(avg, decay * p0 + (1 - decay) * p1, atol=1e-6, rtol=1e-5, msg=name)
    assert 0.4 < decay < 0.6  # a step where the half-life matters


def test_schedules_reach_the_optimizer_and_the_average(anime_root, tmp_path):
    trainer = Trainer(
        resolved("r3gan", f"data.root={anime_root}", "train.max_steps=1", *NO_CALLBACKS),
        tmp_path,
        get_registry(),
    )
    objective = trainer.objective
    assert objective.phase_batch == 2
    for step in (0, 5, 10, 20, 21, 1000):
        seen = 2 * step
        trainer.engine.set_step(step)  # what the trainer runs before every step
        values = {
            "lr": cosine(2e-4, 5e-5, seen, 40),
            "beta2": cosine(0.9, 0.99, seen, 40),
            "gamma": cosine(2.0, 0.2, seen, 40),
            "augment_p": cosine(0.0, 0.45, seen, 40),
        }
        group = objective.opt_d.optimizer.param_groups[0]
        assert group["lr"] == pytest.approx(values["lr"]) and group["betas"][1] == pytest.approx(
            values["beta2"]
        )
        assert objective._gamma.item() == pytest.approx(values["gamma"])
        assert objective._augment_p.item() == pytest.approx(values["augment_p"])
        half_life = cosine(0.0, 500_000.0, seen, 40)
        assert objective.ema_decay(step) == pytest.approx(0.5 ** (2 / max(half_life, 1e-8)))
        # The engine's average weight is 1 - decay, set from the objective's hook.
        assert trainer.engine._ema_weight.item() == pytest.approx(1 - objective.ema_decay(step), abs=1e-7)
    assert objective.ema_decay(0) == 0.0  # half-life 0 at the start: the average is a copy
    assert objective.scheduled(1000)["lr"] == 5e-5  # held at the end after the horizon


def test_augmentation_probability_gates_each_image(anime_root, tmp_path):
    trainer = Trainer(
        resolved("r3gan", f"data.root={anime_root}", "train.max_steps=1", *NO_CALLBACKS),
        tmp_path,
        get_registry(),
    )
    objective = trainer.objective
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    objective._augment_p.fill_(0.0)
    assert torch.equal(objective.d_input(x), x)
    objective._augment_p.fill_(1.0)
    torch.manual_seed(3)
    augmented = objective.d_input(x)
    torch.manual_seed(3)
    assert torch.equal(augmented, objective.augment(x))
    objective._augment_p.fill_(0.5)
    changed = (objective.d_input(x) != x).flatten(1).any(1).float().mean().item()
    assert 0.2 < changed < 0.8  # about half the images, each whole or not at all


def test_graph_mode_keeps_lr_and_beta2_in_device_tensors():
    """Once the optimizer is capturable (CUDA graphs), lr and beta2 become tensors written in place."""
    group = {"params": [torch.zeros(2)], "lr": 2e-4, "betas": (0.0, 0.9), "capturable": True}
    _set_adam(group, 1e-4, 0.95)
    lr, (b1, b2) = group["lr"], group["betas"]
    assert isinstance(lr, torch.Tensor) and isinstance(b2, torch.Tensor) and b1.item() == 0.0
    _set_adam(group, 5e-5, 0.99)
    assert group["lr"] is lr and group["betas"][1] is b2  # the same tensors: a captured graph reads them
    assert (
        lr.item() == pytest.approx(5e-5) and b2.item() == pytest.approx(0.99) and group["initial_lr"] == 5e-5
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["train.batch_size=5"], "batch_size must be even"),
        (["loss={name='hinge'}"], "loss.name = 'rpgan'"),
        (["loss.r1_gamma=0.0", "loss.r2_gamma=0.0"], "r1_gamma and r2_gamma are both 0"),
        (["schedule={name='constant'}"], "remove the \\[schedule\\] section"),
        (["optim.d={name='sgd'}"], "use adam or adamw"),
        (["train.compile=true"], "double backward"),
    ],
)
def test_refuses_what_it_cannot_train(change, message, anime_root, tmp_path):
    recipe = resolved("r3gan", f"data.root={anime_root}", "train.max_steps=1", *NO_CALLBACKS, *change)
    with pytest.raises(GanforgeError, match=message):
        Trainer(recipe, tmp_path, get_registry())


def test_the_conditional_method_needs_labels():
    """r3gan-cond on a dataset without classes is refused when the recipe is resolved."""
    with pytest.raises(GanforgeError, match="needs batch keys image, label; dataset 'image-folder'"):
        resolved("r3gan", "data.root=unused", "objective.name='r3gan-cond'")


def test_recipes_are_the_presets():
    registry = get_registry()
    anime = Recipe.load(RECIPES / "r3gan_anime64.toml", ["data.root=unused"]).resolve(registry)
    cifar = Recipe.load(RECIPES / "r3gan_cifar10.toml", ["data.root=unused"]).resolve(registry)
    for recipe, preset, horizon in ((anime, "ffhq-64", 1e7), (cifar, "cifar-10", 2e7)):
        p = R3GAN_PRESETS[preset]
        g, d, o = recipe["generator"], recipe["discriminator"], recipe["objective"]
        assert (g["widths"], g["cardinalities"], g["blocks"]) == (
            list(p.widths),
            list(p.cardinalities),
            list(p.blocks),
        )
        assert (d["widths"], d["cardinalities"]) == (list(p.widths[::-1]), list(p.cardinalities[::-1]))
        assert g["latent_dim"] == p.latent_dim and g["image_size"] == d["image_size"] == p.image_size
        assert recipe["train"]["batch_size"] == 2 * p.batch_size and recipe["data"]["flip"] == p.mirror
        assert o["horizon"] == horizon and recipe["optim"]["g"]["betas"][0] == p.adam_beta1 == 0.0
        for name in ("lr", "beta2", "gamma"):
            assert o[name] == [p.schedules[name].start, p.schedules[name].end]
        assert o["ema_half_life"] == [0.0, p.schedules["ema_half_life_images"].end]
    assert cifar["objective"]["augment_p"] == [0.0, R3GAN_PRESETS["cifar-10"].schedules["augment_p"].end]
    assert anime["objective"]["augment_p"] == [0.0, 0.45]  # fewer images than FFHQ: more augmentation
    assert cifar["objective"]["name"] == "r3gan-cond" and cifar["data"]["split"] == "train"
    # The objective's own defaults are the FFHQ-64 preset over its 2e7 images.
    defaults = inspect.signature(registry.get("objective", "r3gan").factory).parameters
    assert defaults["horizon"].default == 2e7 and defaults["gamma"].default == (2.0, 0.2)
    assert defaults["augment_p"].default == (0.0, 0.3) and defaults["ema_half_life"].default == (0.0, 5e5)
