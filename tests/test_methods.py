"""CUT, FastCUT and U-GAT-IT, and the stabilisers every objective can use, on tiny real images."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from conftest import NO_CALLBACKS, RECIPES, TINY

from ganforge.model import Model
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer
from ganforge.translate import translate_files

SMALL_CUT = ["projector.nc=16", "projector.num_patches=16"]
SMALL_UGATIT = [
    "data.image_size=32",
    "data.load_size=36",
    "data.holdout=2",
    "generator.ngf=8",
    "generator.blocks=2",
    "generator.image_size=32",
    "discriminator.global.ndf=8",
    "discriminator.global.layers=5",
    "discriminator.local.ndf=8",
    "discriminator.local.layers=3",
    "train.log_every=2",
    "train.num_workers=0",
]
METHODS = {
    "cut": ("cut_selfie2anime.toml", [*TINY, *SMALL_CUT]),
    "fastcut": ("fastcut_selfie2anime.toml", [*TINY, *SMALL_CUT]),
    "ugatit": ("ugatit_light_selfie2anime.toml", SMALL_UGATIT),
    "cyclegan-stabilised": (
        "cyclegan_selfie2anime.toml",
        [
            *TINY,
            "discriminator.spectral_norm=true",
            "objective.ema=0.9",
            "loss.name='hinge'",
            "loss.r1_gamma=1.0",
            "generator.upsample='nearest'",
            "generator.antialias=true",
            "augment={name='diffaugment'}",
        ],
    ),
}


def resolved(name: str, root: Path, *extra: str):
    recipe, items = METHODS[name]
    items = [*items, f"data.root={root}", "train.device='cpu'", "callbacks.samples.every=0", *extra]
    return Recipe.load(RECIPES / recipe, items).resolve(get_registry())


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, net in trainer.engine.networks.items()
        for k, v in net.state_dict().items()
    }


@pytest.mark.parametrize("name", list(METHODS))
def test_trains_resumes_exactly_and_translates(name, selfie_root, tmp_path, one_thread):
    full = Trainer(resolved(name, selfie_root, "train.max_steps=4"), tmp_path / "full", get_registry())
    full.fit()
    Trainer(resolved(name, selfie_root, "train.max_steps=2"), tmp_path / "split", get_registry()).fit()
    second = Trainer(resolved(name, selfie_root, "train.max_steps=4"), tmp_path / "split", get_registry())
    second.resume(tmp_path / "split")
    second.fit()
    a, b = weights(full), weights(second)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5, msg=key)
    assert all(torch.isfinite(v).all() for v in a.values() if v.is_floating_point())

    out = tmp_path / "translated"
    failures = translate_files(Model.load(tmp_path / "full", "cpu"), [str(selfie_root / "trainA")], out)
    assert not failures and len(list(out.glob("*.png"))) == len(list((selfie_root / "trainA").iterdir()))


def test_cut_builds_its_projector_eagerly_from_the_generator(selfie_root, tmp_path):
    trainer = Trainer(resolved("cut", selfie_root, "train.max_steps=1"), tmp_path / "run", get_registry())
    engine = trainer.engine
    widths = engine.networks["G"].feature_channels([0, 4, 8, 12, 16])
    # CUT's anti-aliased layout at ngf 8 with 2 blocks: padded input, the two stride-1 convs before
    # each blur-pool, the first residual block, then (only 2 blocks here) a decoder conv.
    assert widths == [3, 16, 32, 32, 16]
    state = engine.state_dict()  # before any step: netF is part of every checkpoint
    assert [tuple(state["F"][f"mlp_{i}.0.weight"].shape) for i in range(5)] == [(16, c) for c in widths]
    assert set(trainer.objective.optimizers) == {"g", "d", "f"}
    assert engine.capture_ready() is None  # pools none, fused-capable optimizers
    assert list(trainer.model.directions) == ["a2b"]


def test_fastcut_defaults_follow_the_reference(selfie_root, tmp_path):
    trainer = Trainer(resolved("fastcut", selfie_root, "train.max_steps=1"), tmp_path / "run", get_registry())
    objective = trainer.objective
    assert (objective.lambda_nce, objective.nce_identity, objective.flip_equivariance) == (10.0, False, True)
    assert (
        trainer.recipe["schedule"]["constant_epochs"] == 150
        and trainer.recipe["schedule"]["decay_epochs"] == 50
    )
    losses = trainer.engine.run_step(trainer.to_device(next(iter(trainer._loader(0)))), 0)
    assert set(losses) == {"G", "NCE", "D"}


def test_ugatit_clips_rho_and_uses_both_discriminators(selfie_root, tmp_path):
    trainer = Trainer(resolved("ugatit", selfie_root, "train.max_steps=1"), tmp_path / "run", get_registry())
    engine = trainer.engine
    g = engine.networks["G_AB"]
    with torch.no_grad():
        for m in g.modules():
            if hasattr(m, "rho"):
                m.rho.fill_(1.7)
    losses = engine.run_step(trainer.to_device(next(iter(trainer._loader(0)))), 0)
    assert all(float(m.rho.detach().max()) <= 1.0 for m in g.modules() if hasattr(m, "rho"))
    assert {"cam_A", "cam_B", "G_adv_A", "D_A", "cycle_A", "idt_A"} <= set(losses)
    assert set(engine.networks) == {"G_AB", "G_BA", "D_GA", "D_GB", "D_LA", "D_LB"}
    assert trainer.recipe["optim"]["g"]["weight_decay"] == 1e-4  # part of the recipe, not hidden


def test_moving_average_is_what_inference_uses(selfie_root, tmp_path):
    trainer = Trainer(
        resolved("cyclegan-stabilised", selfie_root, "train.max_steps=3"), tmp_path / "run", get_registry()
    )
    trainer.fit()
    model = Model.load(tmp_path / "run", "cpu")
    assert model.card["networks"]["G_AB"]["ema"] and model.card["networks"]["G_BA"]["ema"]
    x = trainer.holdout(2)["A"]
    average, live = trainer.engine.networks["G_AB_ema"], trainer.engine.networks["G_AB"]
    with torch.no_grad():
        average.eval()
        expected = average(x)
        live.eval()
        differs = (live(x) - expected).abs().max()
    torch.testing.assert_close(model.translate(x, "a2b"), expected)
    assert differs > 0  # the average is not the live generator


def test_diffaugment_for_the_dcgan_recipe(anime_root, tmp_path):
    from conftest import DCGAN_TINY

    items = [*DCGAN_TINY, f"data.root={anime_root}", "train.device='cpu'", "train.max_steps=2"]
    items += ["augment={name='diffaugment', policy='color,translation,cutout'}", *NO_CALLBACKS]
    trainer = Trainer(
        Recipe.load(RECIPES / "dcgan_anime.toml", items).resolve(get_registry()),
        tmp_path / "r",
        get_registry(),
    )
    trainer.fit()
    assert trainer.objective.augment is not None and trainer.step == 2


def test_every_new_part_is_listed(cli):
    entries = json.loads(cli("list", "--json").stdout)
    found = {(e["kind"], e["name"]) for e in entries}
    assert {("objective", "cut"), ("objective", "fastcut"), ("objective", "ugatit")} <= found
    assert {("loss", "hinge"), ("augment", "diffaugment"), ("projector", "patch-mlp")} <= found
    assert {("generator", "ugatit"), ("discriminator", "ugatit")} <= found
    resnet = next(e for e in entries if (e["kind"], e["name"]) == ("generator", "resnet"))
    assert {"upsample", "antialias"} <= {p["name"] for p in resnet["params"]}
    patchgan = next(e for e in entries if (e["kind"], e["name"]) == ("discriminator", "patchgan"))
    assert "spectral_norm" in {p["name"] for p in patchgan["params"]}
    lsgan = next(e for e in entries if (e["kind"], e["name"]) == ("loss", "lsgan"))
    assert "r1_gamma" in {p["name"] for p in lsgan["params"]}


@pytest.mark.parametrize("recipe", ["cut_selfie2anime", "fastcut_selfie2anime", "ugatit_light_selfie2anime"])
def test_new_recipes_validate_at_full_size(recipe):
    resolved = Recipe.load(RECIPES / f"{recipe}.toml", ["data.root=unused"]).resolve(get_registry())
    assert resolved["data"]["image_size"] == 256 and resolved["train"]["batch_size"] == 1


def _registry_with(plugin: object, name: str):
    from conftest import bare_host, without_kinds

    import ganforge_plugins.augment
    import ganforge_plugins.callbacks
    import ganforge_plugins.datasets
    import ganforge_plugins.losses
    import ganforge_plugins.networks
    import ganforge_plugins.objectives
    import ganforge_plugins.optim
    import ganforge_plugins.pools
    from ganforge_plugins.apps import eval as eval_app

    host = bare_host()
    bundled = ganforge_plugins
    host.register_module(without_kinds(bundled.networks), bundled.networks.__name__, "ganforge")
    for module in (bundled.losses, bundled.pools, bundled.optim, bundled.datasets):
        host.register_module(module, module.__name__, "ganforge")
    for module in (bundled.objectives, bundled.augment, bundled.callbacks):
        host.register_module(module, module.__name__, "ganforge")
    # the recipes name the eval app's callback ([callbacks.eval])
    host.register_module(
        types.SimpleNamespace(register_callbacks=eval_app.register_callbacks), "eval", "ganforge"
    )
    host.register_module(plugin, name, "third-party", "1.0")
    host.collect()
    assert not host.failures()
    return host.registry


def test_hook_register_augments(selfie_root, tmp_path):
    from ganforge import hookimpl

    seen = []

    class Mirror:
        """Mirror every discriminator input (and count the calls)."""

        def __call__(self, x):
            seen.append(tuple(x.shape))
            return x.flip(3)

    class Plugin:
        @hookimpl
        def register_augments(self, register):
            register("mirror", Mirror)

    registry = _registry_with(Plugin(), "mirror-plugin")
    items = [*METHODS["cut"][1], f"data.root={selfie_root}", "train.device='cpu'", *NO_CALLBACKS]
    items += ["train.max_steps=1", "augment={name='mirror'}"]
    trainer = Trainer(
        Recipe.load(RECIPES / METHODS["cut"][0], items).resolve(registry), tmp_path / "r", registry
    )
    trainer.fit()
    assert len(seen) == 3  # D step: real and fake; G step: fake


def test_hook_register_projectors(selfie_root, tmp_path):
    from torch import nn

    from ganforge import hookimpl
    from ganforge_plugins.networks.projector import PatchProjector

    class Wide(PatchProjector):
        """CUT's head with twice the channels it is told about (to see the context arrive)."""

        def __init__(self, channels: list[int], nc: int = 8) -> None:
            super().__init__(channels, nc=nc, num_patches=8)
            self.told = list(channels)

    class Plugin:
        @hookimpl
        def register_projectors(self, register):
            register("wide", Wide)

    registry = _registry_with(Plugin(), "wide-plugin")
    items = [*TINY, f"data.root={selfie_root}", "train.device='cpu'", *NO_CALLBACKS, "train.max_steps=1"]
    items += ["projector={name='wide', nc=8}"]
    trainer = Trainer(
        Recipe.load(RECIPES / METHODS["cut"][0], items).resolve(registry), tmp_path / "r", registry
    )
    trainer.fit()
    assert isinstance(trainer.engine.networks["F"], nn.Module)
    assert trainer.engine.networks["F"].told == [3, 16, 32, 32, 16]


def test_antialiased_patchgan_has_cuts_layout_and_output_size():
    from ganforge_plugins.networks.patchgan import PatchGANDiscriminator

    plain, blurred = PatchGANDiscriminator(ndf=8), PatchGANDiscriminator(ndf=8, antialias=True)
    x = torch.randn(2, 3, 64, 64)
    assert plain(x).shape == blurred(x).shape == (2, 1, 6, 6)
    keys = [k for k in blurred.state_dict() if k.endswith("filt")]
    assert keys == ["model.2.filt", "model.6.filt", "model.10.filt"]  # CUT's Downsample positions
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in blurred.parameters())
