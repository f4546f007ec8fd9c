"""UVCGAN2 as a bundled method: the pre-training and the translation recipes, chained, on tiny images.

The one-step checks re-implement the reference's training steps (LS4GAN/uvcgan2, commit
871b2b931f0b6c1fa012a3d658e830f3f4c6023c: ``uvcgan2/cgan/uvcgan2.py``'s ``optimization_step`` with
``queued_forward`` and ``backward_discriminator_base``, ``uvcgan2/torch/gradient_penalty.py``,
``uvcgan2/torch/queue.py``'s ``FastQueue`` and ``uvcgan2/cgan/autoencoder.py`` with
``uvcgan2/torch/image_masking.py``) on [0, 1] images, as the reference trains, around copies of
the networks ganforge trains (tests/plugins/test_uvcgan2.py shows those are the reference's
modules), and compare losses and updated weights.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from conftest import RECIPES, no_callbacks, run_cli
from torch import nn
from uvcgan2_reference import RefFastQueue

from ganforge import GanforgeError
from ganforge.model import Model
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer
from ganforge.translate import translate_files

PRETRAIN = RECIPES / "uvcgan2_pretrain_selfie2anime.toml"
TRANSLATE = RECIPES / "uvcgan2_selfie2anime.toml"
# A tiny vit-modnet (two levels, one transformer block over a 8x8 grid of 32 px images).
TINY_GENERATOR = [
    "generator.features=16",
    "generator.n_heads=2",
    "generator.n_blocks=1",
    "generator.ffn_features=32",
    "generator.embed_features=8",
    "generator.modnet_features_list=[4, 8]",
    "generator.image_size=32",
]
TINY_DATA = ["data.image_size=32", "data.load_size=36", "data.holdout=2", "train.num_workers=0"]
QUIET = [*no_callbacks("checkpoint"), "train.device='cpu'", "train.log_every=2"]
TINY_PRETRAIN = [*TINY_DATA, *TINY_GENERATOR, *QUIET, "objective.mask_patch=8", "train.batch_size=2"]
TINY_TRANSLATE = [*TINY_DATA, *TINY_GENERATOR, *QUIET, "discriminator.ndf=8", "objective.ema=0.9"]


def pretrain_recipe(root: Path, *extra: str):
    return Recipe.load(PRETRAIN, [*TINY_PRETRAIN, f"data.root={root}", *extra]).resolve(get_registry())


def translate_recipe(root: Path, pretrained: Path | str, *extra: str):
    items = [*TINY_TRANSLATE, f"data.root={root}", f"objective.pretrained='{pretrained}'", *extra]
    return Recipe.load(TRANSLATE, items).resolve(get_registry())


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, net in trainer.engine.networks.items()
        for k, v in net.state_dict().items()
    }


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-5, msg=key)


def full_and_resumed(make, tmp_path: Path, name: str) -> tuple[Trainer, Trainer]:
    """The same run trained 4 steps at once and 2 + 2 with a resume in between."""
    full = Trainer(make("train.max_steps=4"), tmp_path / f"{name}-full", get_registry())
    full.fit()
    Trainer(make("train.max_steps=2"), tmp_path / f"{name}-split", get_registry()).fit()
    second = Trainer(make("train.max_steps=4"), tmp_path / f"{name}-split", get_registry())
    second.resume(tmp_path / f"{name}-split")
    second.fit()
    return full, second


@pytest.fixture(scope="module", autouse=True)
def one_thread_here():
    """One CPU thread for the module: a fixed summation order, so resumed runs and the reference
    steps compare bit for bit (and a shared machine does not thrash)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def chain(selfie_root, tmp_path_factory):
    """The pre-training (4 steps, and 2 + 2 resumed), then the translation from its run folder."""
    tmp = tmp_path_factory.mktemp("uvcgan2")
    pre_full, pre_resumed = full_and_resumed(lambda *e: pretrain_recipe(selfie_root, *e), tmp, "pre")
    pre_run = tmp / "pre-full"
    trans = full_and_resumed(lambda *e: translate_recipe(selfie_root, pre_run, *e), tmp, "trans")
    return {"tmp": tmp, "pre": (pre_full, pre_resumed), "pre_run": pre_run, "trans": trans}


def test_pretraining_resumes_exactly(chain):
    full, resumed = chain["pre"]
    assert set(full.engine.networks) == {"G"} and full.step == resumed.step == 4
    assert_same(weights(full), weights(resumed))
    assert all(torch.isfinite(v).all() for v in weights(full).values())
    # it trained: the reconstruction losses were logged for both domains
    model = Model.load(chain["pre_run"], "cpu")
    assert model.name == "uvcgan2-pretrain" and list(model.directions) == ["a2a", "b2b"]


def test_translation_resumes_exactly_with_its_queues(chain):
    full, resumed = chain["trans"]
    assert set(full.engine.networks) == {"G_AB", "G_BA", "D_A", "D_B", "G_AB_ema", "G_BA_ema"}
    assert_same(weights(full), weights(resumed))
    a, b = full.engine.state_dict(), resumed.engine.state_dict()
    for name in ("queue_real_A", "queue_real_B", "queue_fake_A", "queue_fake_B"):
        # batch 1, four D steps: the ring of three is full and has gone round once
        assert a[name]["filled"] == 3 and a[name]["index"] == 1 and a[name]["queue"].shape[:2] == (3, 64)
        assert a[name]["index"] == b[name]["index"]
        torch.testing.assert_close(a[name]["queue"], b[name]["queue"], atol=1e-6, rtol=1e-5)
    assert len(full.objective.queue_fake_A) == 3
    assert full.engine.capture_ready() is None  # queues and optimizers agree to a CUDA graph


def test_translation_starts_from_the_pretraining_exactly(chain, selfie_root):
    pretrained = Model.load(chain["pre_run"], "cpu").networks["G"].state_dict()
    live = chain["pre"][0].engine.networks["G"].state_dict()
    fresh = Trainer(
        translate_recipe(selfie_root, chain["pre_run"], "train.max_steps=1"),
        chain["tmp"] / "x",
        get_registry(),
    )
    fresh.engine.fresh_start()  # what fit() does first, on a new run only
    for name in ("G_AB", "G_BA", "G_AB_ema", "G_BA_ema"):
        state = fresh.engine.networks[name].state_dict()
        assert state.keys() == pretrained.keys()
        assert all(torch.equal(state[k], pretrained[k]) and torch.equal(state[k], live[k]) for k in state), (
            name
        )
    # an exported pre-training hands over the same weights
    export = Model.load(chain["pre_run"], "cpu").export(chain["tmp"] / "pre.safetensors")
    again = Trainer(
        translate_recipe(selfie_root, export, "train.max_steps=1"), chain["tmp"] / "y", get_registry()
    )
    again.engine.fresh_start()
    state = again.engine.networks["G_BA"].state_dict()
    assert all(torch.equal(state[k], pretrained[k]) for k in state)
    # and the default, pretrained = "", keeps [generator]'s own initialisation
    scratch = Trainer(
        translate_recipe(selfie_root, "", "train.max_steps=1"), chain["tmp"] / "z", get_registry()
    )
    assert not torch.equal(scratch.engine.networks["G_AB"].state_dict()["net.layer_output.weight"],
                           pretrained["net.layer_output.weight"])  # fmt: skip


def test_translation_translates_and_exports(chain, selfie_root):
    run = chain["tmp"] / "trans-full"
    model = Model.load(run, "cpu")
    assert model.name == "uvcgan2" and list(model.directions) == ["a2b", "b2a"]
    assert (
        model.card["networks"]["G_AB"]["ema"] and model.card["networks"]["G_AB"]["component"] == "vit-modnet"
    )
    out = chain["tmp"] / "translated"
    assert not translate_files(model, [str(selfie_root / "trainA")], out, "a2b")
    assert len(list(out.glob("*.png"))) == len(list((selfie_root / "trainA").iterdir()))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    exported = Model.load(model.export(chain["tmp"] / "uvcgan2.safetensors", direction="b2a"), "cpu")
    torch.testing.assert_close(exported.translate(x, "b2a"), model.translate(x, "b2a"))
    # inference is the moving average, not the live generator
    average = chain["trans"][0].engine.networks["G_AB_ema"]
    with torch.no_grad():
        torch.testing.assert_close(model.translate(x, "a2b"), average.eval()(x))


# -- the pre-training named in the recipe: missing, or of another architecture ---------------------


def test_missing_pretraining_is_one_line(selfie_root, tmp_path):
    missing = tmp_path / "runs" / "uvcgan2_pretrain"
    with pytest.raises(GanforgeError) as err:
        Trainer(translate_recipe(selfie_root, missing), tmp_path / "r", get_registry()).fit()
    message = str(err.value)
    assert "not found" in message and "uvcgan2_pretrain_selfie2anime.toml" in message and "\n" not in message
    junk = tmp_path / "junk.safetensors"
    junk.write_text("not a model")
    with pytest.raises(GanforgeError, match=r"\[objective\] pretrained = .*junk") as err:
        Trainer(translate_recipe(selfie_root, junk), tmp_path / "r", get_registry()).fit()
    assert "\n" not in str(err.value)


def test_pretraining_of_another_architecture_is_refused(chain, selfie_root, tiny_cyclegan_run, tmp_path):
    # another option of the same component
    with pytest.raises(
        GanforgeError, match="generator.n_blocks = 1, .generator. has 2: another architecture"
    ):
        Trainer(
            translate_recipe(selfie_root, chain["pre_run"], "generator.n_blocks=2"),
            tmp_path / "r",
            get_registry(),
        ).fit()
    # another component: one direction of a CycleGAN
    resnet = Model.load(tiny_cyclegan_run, "cpu").export(tmp_path / "resnet.safetensors", direction="a2b")
    with pytest.raises(GanforgeError, match="holds a 'resnet' generator; .generator. is 'vit-modnet'"):
        Trainer(translate_recipe(selfie_root, resnet), tmp_path / "r", get_registry()).fit()
    # a model with two generators is not a pre-training
    with pytest.raises(GanforgeError, match="expected one pre-trained generator, found 2"):
        Trainer(translate_recipe(selfie_root, tiny_cyclegan_run), tmp_path / "r", get_registry()).fit()


def test_missing_pretraining_through_the_cli(selfie_root, tmp_path):
    args = ["run", str(TRANSLATE), "--device", "cpu", "--out", str(tmp_path / "never")]
    sets = [*TINY_TRANSLATE, f"data.root={selfie_root}", f"objective.pretrained='{tmp_path / 'nope'}'"]
    result = run_cli(*args, *[a for item in sets for a in ("--set", item)])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[-1].startswith("error:") and "not found; train it first" in lines[-1]


# -- one step against the reference's ------------------------------------------------------------


def ref_queued_forward(disc, image, queue, update_queue=True):
    output, body = disc(image, extra_bodies=queue.query(), return_body=True)
    if update_queue:
        queue.push(body)
    return output


def ref_gradient_penalty(model, fake, real, kwargs_fake, kwargs_real, lambda_gp=0.01):
    """GradientPenalty(mix_type='real-fake', center=0, reduction='mean'): alpha from the default
    generator here (the reference keeps its own), the draw ganforge makes."""
    alpha = torch.rand(1)
    x = alpha * real + (1 - alpha) * fake
    kwargs = {
        k: None if kwargs_real[k] is None else alpha * kwargs_real[k] + (1 - alpha) * kwargs_fake[k]
        for k in kwargs_real
    }
    x.requires_grad_(True)
    y = model(x, **kwargs)
    y = y.mean(dim=tuple(range(1, y.dim())))
    (grad,) = torch.autograd.grad(
        outputs=[y], inputs=x, grad_outputs=[torch.ones(y.size())], create_graph=True, retain_graph=True
    )
    return (lambda_gp * torch.square(torch.norm(grad.reshape((x.shape[0], -1)), p=2, dim=1) - 0)).mean()


def ref_gan(prediction, target_is_real):
    """base/losses.py's GANLoss('lsgan')."""
    target = torch.tensor(1.0 if target_is_real else 0.0).expand_as(prediction)
    return nn.MSELoss()(prediction, target)


class RefUVCGAN2:
    """cgan/uvcgan2.py's UVCGAN2.optimization_step (lambda_a = lambda_b = 10, lambda_idt = 0.5)."""

    def __init__(self, gen_ab, gen_ba, disc_a, disc_b, lr_g=5e-5, lr_d=1e-4, queue=3):
        self.gen_ab, self.gen_ba, self.disc_a, self.disc_b = gen_ab, gen_ba, disc_a, disc_b
        params = [*gen_ab.parameters(), *gen_ba.parameters()]
        self.opt_gen = torch.optim.Adam(params, lr=lr_g, betas=(0.5, 0.99))
        self.opt_disc = torch.optim.Adam(
            [*disc_a.parameters(), *disc_b.parameters()], lr=lr_d, betas=(0.5, 0.99)
        )
        self.queues = {k: RefFastQueue(queue) for k in ("real_a", "real_b", "fake_a", "fake_b")}
        self.l1 = nn.L1Loss()

    def set_requires_grad(self, flag):
        for net in (self.disc_a, self.disc_b):
            for p in net.parameters():
                p.requires_grad = flag

    def step(self, real_a, real_b):
        losses = {}
        self.set_requires_grad(False)
        self.opt_gen.zero_grad(set_to_none=True)
        fake_b = self.gen_ab(real_a)
        reco_a = self.gen_ba(fake_b)
        losses["G_AB"] = ref_gan(ref_queued_forward(self.disc_b, fake_b, self.queues["fake_b"], False), True)
        losses["cycle_A"] = 10.0 * self.l1(reco_a, real_a)
        (losses["G_AB"] + losses["cycle_A"]).backward()
        fake_a = self.gen_ba(real_b)
        reco_b = self.gen_ab(fake_a)
        losses["G_BA"] = ref_gan(ref_queued_forward(self.disc_a, fake_a, self.queues["fake_a"], False), True)
        losses["cycle_B"] = 10.0 * self.l1(reco_b, real_b)
        (losses["G_BA"] + losses["cycle_B"]).backward()
        losses["idt_A"] = 10.0 * 0.5 * self.l1(self.gen_ba(real_a), real_a)
        losses["idt_A"].backward()
        losses["idt_B"] = 10.0 * 0.5 * self.l1(self.gen_ab(real_b), real_b)
        losses["idt_B"].backward()
        self.opt_gen.step()

        self.set_requires_grad(True)
        self.opt_disc.zero_grad(set_to_none=True)
        for disc, real, fake, d in (
            (self.disc_b, real_b, fake_b.detach(), "b"),
            (self.disc_a, real_a, fake_a.detach(), "a"),
        ):
            q_real, q_fake = self.queues[f"real_{d}"], self.queues[f"fake_{d}"]
            gp = ref_gradient_penalty(
                disc, fake, real, {"extra_bodies": q_fake.query()}, {"extra_bodies": q_real.query()}
            )
            gp.backward()
            loss_real = ref_gan(ref_queued_forward(disc, real, q_real, True), True)
            loss_fake = ref_gan(ref_queued_forward(disc, fake, q_fake, True), False)
            loss = (loss_real + loss_fake) * 0.5
            loss.backward()
            losses[f"D_{d.upper()}"], losses[f"gp_{d.upper()}"] = loss, gp
        self.opt_disc.step()
        return {k: v.detach() for k, v in losses.items()}


def in_zero_one(generator: nn.Module) -> nn.Module:
    """The same weights in a vit-modnet that takes and gives [0, 1] images, as the reference's."""
    net = copy.deepcopy(generator)
    net.io_range = "zero_one"
    return net


# The body convs followed by an instance norm (n_layers = 3): their biases do not change D's output.
NORMED_BIASES = {"_body.model.2.bias", "_body.model.5.bias", "_body.model.8.bias"}


def test_two_steps_equal_the_reference_steps(selfie_root, tmp_path):
    """Losses and weights after two steps (the second with queued bodies) are the reference's."""
    trainer = Trainer(translate_recipe(selfie_root, "", "train.max_steps=2"), tmp_path / "r", get_registry())
    engine, nets = trainer.engine, trainer.engine.networks
    ref = RefUVCGAN2(
        in_zero_one(nets["G_AB"]),
        in_zero_one(nets["G_BA"]),
        copy.deepcopy(nets["D_A"]),
        copy.deepcopy(nets["D_B"]),
    )
    g = torch.Generator().manual_seed(3)
    for step in range(2):
        a, b = (torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2))
        torch.manual_seed(100 + step)
        ours = engine.run_step({"A": a, "B": b}, step)
        torch.manual_seed(100 + step)  # the penalties' mixing weights: the same two draws
        expected = ref.step((a + 1) / 2, (b + 1) / 2)
        assert ours.keys() == expected.keys()
        for key in ours:
            torch.testing.assert_close(
                ours[key], expected[key], atol=1e-6, rtol=1e-5, msg=f"step {step} {key}"
            )
    assert expected["gp_A"] > 0 and ref.queues["fake_a"].query().shape[0] == 2
    for name, net in (("G_AB", ref.gen_ab), ("G_BA", ref.gen_ba), ("D_A", ref.disc_a), ("D_B", ref.disc_b)):
        ours_state, ref_state = nets[name].state_dict(), net.state_dict()
        for key in ref_state:
            if name.startswith("D") and key in NORMED_BIASES:
                # A bias that an instance norm removes has a zero gradient up to rounding, which
                # Adam scales to steps of up to lr: both codes move it by noise, differently.
                assert (ours_state[key] - ref_state[key]).abs().max() <= 2 * 1e-4, f"{name} {key}"
                continue
            torch.testing.assert_close(
                ours_state[key], ref_state[key], atol=1e-6, rtol=1e-5, msg=f"{name} {key}"
            )
    torch.testing.assert_close(trainer.objective.queue_fake_B.query(), ref.queues["fake_b"].query())


def test_pretraining_step_equals_the_reference_autoencoder(selfie_root, tmp_path):
    """autoencoder.py with joint=True and image-patch-random masking: same masks, same L1, same AdamW step."""
    trainer = Trainer(pretrain_recipe(selfie_root, "train.max_steps=1"), tmp_path / "p", get_registry())
    g = trainer.engine.networks["G"]
    encoder = in_zero_one(g)
    opt = torch.optim.AdamW(encoder.parameters(), lr=3.125e-4, betas=(0.9, 0.99), weight_decay=0.05)
    a, b = (torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(s)) * 2 - 1 for s in (1, 2))
    torch.manual_seed(7)
    ours = trainer.engine.run_step({"A": a, "B": b}, 0)
    torch.manual_seed(7)
    real_a, real_b = (a + 1) / 2, (b + 1) / 2
    masked = []
    for real in (real_a, real_b):  # ImagePatchRandomMasking, drawn from the default generator
        mask = torch.rand((real.shape[0], 1, 4, 4)) > 0.4
        masked.append(mask.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3) * real)
    opt.zero_grad()
    loss_b = nn.L1Loss()(encoder(masked[1]), real_b)
    loss_b.backward()
    loss_a = nn.L1Loss()(encoder(masked[0]), real_a)
    loss_a.backward()
    opt.step()
    torch.testing.assert_close(ours["rec_A"], loss_a.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours["rec_B"], loss_b.detach(), atol=1e-6, rtol=1e-5)
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(g.state_dict()[key], value, atol=1e-6, rtol=1e-5, msg=key)


def test_one_step_loss_on_a_tiny_case_by_hand(selfie_root, tmp_path):
    """Generators with every weight zero give 0 (grey: a sigmoid of 0, mapped to [-1, 1]): the
    cycle and identity terms are then the inputs' mean |x| on the [0, 1] scale times their
    weights, and G's LSGAN term is D's output on a grey image against 1."""
    trainer = Trainer(translate_recipe(selfie_root, "", "train.max_steps=1"), tmp_path / "h", get_registry())
    nets = trainer.engine.networks
    with torch.no_grad():
        for name in ("G_AB", "G_BA"):
            for p in nets[name].parameters():
                p.zero_()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        out = nets["G_AB"](x)  # all weights zero: sigmoid(0) = 0.5 -> 0 in [-1, 1]
    assert torch.equal(out, torch.zeros_like(x))
    d_b = copy.deepcopy(nets["D_B"])
    losses = trainer.engine.run_step({"A": x, "B": x}, 0)
    # G's output is 0 everywhere: D_B sees 0.5 grey; cycle and identity are |0 - x| / 2 on [0, 1]
    with torch.no_grad():
        expected_g = ((d_b(torch.full_like(x, 0.5)) - 1) ** 2).mean()
    torch.testing.assert_close(losses["G_AB"], expected_g, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(losses["cycle_A"], 10 * 0.5 * x.abs().mean(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(losses["idt_A"], 5 * 0.5 * x.abs().mean(), atol=1e-6, rtol=1e-5)
    assert math.isfinite(losses["D_B"].item()) and losses["gp_B"] >= 0


# -- the pre-training's augmentation and the queues on the device ----------------------------------


def test_pretraining_augmentation_is_seeded_and_refuses_the_cache(selfie_root):
    """rotation, color_jitter and hue: items stay a pure function of (seed, position), and the
    rotation is torchvision's RandomRotation (nearest, same size, black corners) before the crop."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    from ganforge_plugins.datasets.images import resize_crop

    registry = get_registry()
    base = {
        "name": "unpaired-folders",
        "root": str(selfie_root),
        "image_size": 32,
        "load_size": 36,
        "holdout": 2,
    }
    augmented = {**base, "rotation": 10.0, "color_jitter": 0.2, "hue": 0.2}
    plain, first, again = (registry.build("dataset", t, seed=0) for t in (base, augmented, augmented))
    for position in range(6):
        assert torch.equal(first[position]["A"], again[position]["A"])
        assert torch.equal(first[position]["B"], again[position]["B"])
    assert all(not torch.equal(first[p]["A"], plain[p]["A"]) for p in range(6))

    image = Image.open(sorted((selfie_root / "trainA").iterdir())[0]).convert("RGB")
    ours = resize_crop(
        image, 32, 36, "resize_and_crop", torch.Generator().manual_seed(5), False, rotation=30.0
    )
    g = torch.Generator().manual_seed(5)
    angle = float(torch.empty(()).uniform_(-30.0, 30.0, generator=g))  # RandomRotation.get_params
    rotated = TF.rotate(image.resize((36, 36), Image.BICUBIC), angle, InterpolationMode.NEAREST)
    x, y = (int(torch.randint(0, 5, (), generator=g)) for _ in range(2))
    assert np.array_equal(np.asarray(ours), np.asarray(rotated.crop((x, y, x + 32, y + 32))))
    with pytest.raises(GanforgeError, match="cache"):
        registry.build("dataset", {**augmented, "cache": True}, seed=0)


def test_queues_on_the_device_train_the_same_steps(selfie_root, tmp_path):
    """With the queues' ring position on the device (what CUDA graphs replay), training is
    unchanged; the step variant changes while the queues fill, then stays."""
    make = lambda: Trainer(  # noqa: E731
        translate_recipe(selfie_root, "", "train.max_steps=4", "queue.size=2"), tmp_path / "q", get_registry()
    )
    host, device = make(), make()
    for queue in device.objective.pools().values():
        assert queue.make_capturable() is None
    g = torch.Generator().manual_seed(4)
    variants = []
    for step in range(4):
        a, b = (torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2))
        variants.append(device.engine.step_variant(step))
        for trainer in (host, device):
            torch.manual_seed(step)
            trainer.engine.run_step({"A": a, "B": b}, step)
    assert variants == [(0, 0, 0, 0), (1, 1, 1, 1), (2, 2, 2, 2), (2, 2, 2, 2)]
    ours, theirs = weights(host), weights(device)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert (
        device.engine.state_dict()["queue_fake_A"]["index"]
        == host.engine.state_dict()["queue_fake_A"]["index"]
    )


def test_bench_counts_the_flops_of_a_step_with_a_penalty(selfie_root, tmp_path):
    """``ganforge bench`` counts FLOPs through the penalty's double backward (the counter's
    per-module hooks could not follow ``torch.autograd.grad``)."""
    from ganforge_plugins.apps.bench.bench import count_step_flops

    trainer = Trainer(translate_recipe(selfie_root, "", "train.max_steps=1"), tmp_path / "b", get_registry())
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    assert count_step_flops(trainer, batch) > 0


def test_several_processes_with_compiled_networks_are_refused(selfie_root):
    """The penalty's double backward cannot run through compiled networks; one process runs it
    on the plain discriminator, several need train.compile = false (a one-line error)."""
    from ganforge.recipe import Builder
    from ganforge.runtime import Runtime
    from ganforge_plugins.objectives.uvcgan2 import UVCGAN2

    runtime = Runtime.create("cpu", "fp32", compile=True)
    runtime.distributed = True
    builder = Builder(get_registry(), translate_recipe(selfie_root, ""), seed=0)
    with pytest.raises(GanforgeError, match="needs train.compile = false"):
        UVCGAN2(builder, runtime)
