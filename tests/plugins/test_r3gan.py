"""R3GAN networks, the RpGAN loss and R3GAN's schedules against the official code.

The reference (github.com/brownvc/R3GAN, commit 19a7ddf463fbac2bd39b4c1c73d63f1c441c7403) is
re-implemented from R3GAN/Networks.py, R3GAN/Resamplers.py and R3GAN/FusedOperators.py in
tests/r3gan_reference.py (shared with the converter's tests), and from R3GAN/Trainer.py below:
same module names, build order, initialisation and forward. Its default resamplers and
activation are the CUDA ops' classes, which on a CPU tensor run the ops' reference paths
(torch_utils/ops/upfirdn2d.py ``_upfirdn2d_ref``: zero insertion, padding, flipped filter;
bias_act.py: bias, leaky ReLU, gain 1): those paths are what is re-implemented.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from r3gan_reference import RefDiscriminator, RefDownsampler, RefGenerator, RefUpsampler, randomise
from torch import nn

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.losses import RpGANLoss, gradient_square_norms
from ganforge_plugins.networks import R3GANDiscriminator, R3GANGenerator
from ganforge_plugins.networks.r3gan import (
    InterpolativeDownsampler,
    InterpolativeUpsampler,
    ResidualBlock,
)
from ganforge_plugins.objectives.r3gan_schedules import R3GAN_PRESETS, Schedule, ema_beta, value

# -- the reference trainer's losses -------------------------------------------------------------


def ref_d_loss(G, D, z, real, c, gamma):
    """AccumulateDiscriminatorGradients' loss (before ``.backward()``), with its R1 and R2."""
    real = real.detach().requires_grad_(True)
    fake = G(z, c).detach().requires_grad_(True)
    real_logits, fake_logits = D(real, c), D(fake, c)
    (g_real,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    (g_fake,) = torch.autograd.grad(fake_logits.sum(), fake, create_graph=True)
    r1, r2 = g_real.square().sum([1, 2, 3]), g_fake.square().sum([1, 2, 3])
    return (F.softplus(-(real_logits - fake_logits)) + (gamma / 2) * (r1 + r2)).mean()


def ref_g_loss(G, D, z, real, c):
    """AccumulateGeneratorGradients' loss."""
    fake_logits = D(G(z, c), c)
    real_logits = D(real.detach(), c)
    return F.softplus(-(fake_logits - real_logits)).mean()


# -- tiny layouts -------------------------------------------------------------------------------

# 16 px: three stages (4, 8, 16), widths that change and stay, groups > 1, 0 to 2 blocks.
G_TINY = dict(widths=(16, 16, 8), cardinalities=(4, 4, 2), blocks=(1, 2, 0), expansion=2, image_size=16)
D_TINY = dict(widths=(8, 16, 16), cardinalities=(2, 4, 4), blocks=(1, 0, 2), expansion=2, image_size=16)
LATENT = 8


def ref_g(num_classes: int = 0, emb: int = LATENT) -> RefGenerator:
    t = G_TINY
    cond = dict(CondDim=num_classes, CondEmbDim=emb) if num_classes else {}
    return RefGenerator(LATENT, t["widths"], t["cardinalities"], t["blocks"], t["expansion"], **cond)


def ref_d(num_classes: int = 0, emb: int = 16) -> RefDiscriminator:
    t = D_TINY
    cond = dict(CondDim=num_classes, CondEmbDim=emb) if num_classes else {}
    return RefDiscriminator(t["widths"], t["cardinalities"], t["blocks"], t["expansion"], **cond)


def our_g(num_classes: int = 0) -> R3GANGenerator:
    return R3GANGenerator(latent_dim=LATENT, num_classes=num_classes, **G_TINY)


def our_d(num_classes: int = 0) -> R3GANDiscriminator:
    return R3GANDiscriminator(num_classes=num_classes, **D_TINY)


def shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


PAIRS = [
    pytest.param(ref_g, our_g, 0, id="generator"),
    pytest.param(ref_g, our_g, 5, id="generator-conditional"),
    pytest.param(ref_d, our_d, 0, id="discriminator"),
    pytest.param(ref_d, our_d, 5, id="discriminator-conditional"),
]


def _inputs(is_g: bool, num_classes: int, n: int = 3):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(n, LATENT, generator=gen) if is_g else torch.randn(n, 3, 16, 16, generator=gen)
    labels = torch.tensor([0, 3, 4][:n])
    onehot = F.one_hot(labels, num_classes).float() if num_classes else None
    return x, labels, onehot


# -- networks against the reference -------------------------------------------------------------


@pytest.mark.parametrize("make_ref, make_ours, num_classes", PAIRS)
def test_state_dict_keys_shapes_and_order_match_the_reference(make_ref, make_ours, num_classes) -> None:
    assert shapes(make_ours(num_classes)) == shapes(make_ref(num_classes))


@pytest.mark.parametrize("make_ref, make_ours, num_classes", PAIRS)
def test_the_same_seed_draws_the_same_weights(make_ref, make_ours, num_classes) -> None:
    # Same build order, MSR std per layer, N(0, 1) basis, zero fix-up layers and biases.
    torch.manual_seed(3)
    ref = make_ref(num_classes)
    torch.manual_seed(3)
    ours = make_ours(num_classes)
    for (k, a), (_, b) in zip(ref.state_dict().items(), ours.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("make_ref, make_ours, num_classes", PAIRS)
def test_cross_loading_is_strict_and_outputs_match(make_ref, make_ours, num_classes) -> None:
    ref = randomise(make_ref(num_classes)).eval()
    ours = make_ours(num_classes).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    back = make_ref(num_classes)
    back.load_state_dict(ours.state_dict(), strict=True)
    is_g = make_ours is our_g
    x, labels, onehot = _inputs(is_g, num_classes)
    with torch.no_grad():
        expected = ref(x, onehot)
        got = ours(x, onehot)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(back(x, onehot), expected, atol=1e-5, rtol=1e-5)
        if num_classes:  # class indices pick the same embedding as one-hot labels
            torch.testing.assert_close(ours(x, labels), expected, atol=1e-5, rtol=1e-5)
    assert got.shape == ((3, 3, 16, 16) if is_g else (3,))
    assert expected.abs().max() > 0.1  # not a degenerate comparison


def test_resamplers_match_upfirdn2d() -> None:
    x = torch.randn(2, 3, 6, 10)
    torch.testing.assert_close(InterpolativeUpsampler()(x), RefUpsampler([1, 2, 1])(x), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(
        InterpolativeDownsampler()(x), RefDownsampler([1, 2, 1])(x), atol=1e-6, rtol=1e-6
    )
    assert InterpolativeUpsampler()(x).shape == (2, 3, 12, 20)
    # The filter keeps a constant image constant away from the zero-padded border.
    ones = torch.ones(1, 1, 8, 8)
    torch.testing.assert_close(InterpolativeUpsampler()(ones)[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    torch.testing.assert_close(InterpolativeDownsampler()(ones)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))


def _preset_nets(preset, device="meta"):
    p = R3GAN_PRESETS[preset]
    classes = 10 if p.conditional else 0
    with torch.device(device):
        g = R3GANGenerator(
            latent_dim=p.latent_dim,
            widths=p.widths,
            cardinalities=p.cardinalities,
            blocks=p.blocks,
            expansion=p.expansion,
            image_size=p.image_size,
            num_classes=classes,
        )
        d = R3GANDiscriminator(
            widths=p.widths[::-1],
            cardinalities=p.cardinalities[::-1],
            blocks=p.blocks[::-1],
            expansion=p.expansion,
            image_size=p.image_size,
            num_classes=classes,
        )
        cond_g = dict(CondDim=classes, CondEmbDim=p.latent_dim) if classes else {}
        cond_d = dict(CondDim=classes, CondEmbDim=p.widths[0]) if classes else {}
        rg = RefGenerator(p.latent_dim, p.widths, p.cardinalities, p.blocks, p.expansion, **cond_g)
        rd = RefDiscriminator(p.widths[::-1], p.cardinalities[::-1], p.blocks[::-1], p.expansion, **cond_d)
    return g, d, rg, rd


@pytest.mark.parametrize("preset", ["ffhq-64", "cifar-10"])
def test_preset_parameter_counts_match_the_reference(preset) -> None:
    g, d, rg, rd = _preset_nets(preset)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(g) == count(rg) and count(d) == count(rd)
    assert shapes(g) == shapes(rg) and shapes(d) == shapes(rd)
    assert count(g) > 20_000_000 and count(d) > 20_000_000  # the real presets, not a tiny layout


def test_residual_blocks_start_as_the_identity() -> None:
    for net in (our_g(3), our_d(3)):
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == 3
        for block in blocks:
            c = block.LinearLayer1.Layer.in_channels
            x = torch.randn(2, c, 5, 5)
            assert torch.equal(block(x), x)
            assert not block.LinearLayer3.Layer.weight.any()
            # The branch before the zero layer is live: a non-zero last layer changes the output.
            with torch.no_grad():
                block.LinearLayer3.Layer.weight.fill_(0.1)
            assert not torch.equal(block(x), x)


def test_msr_initialisation_std_per_layer() -> None:
    torch.manual_seed(0)
    g = R3GANGenerator(latent_dim=32, widths=(64, 64), cardinalities=(4, 4), blocks=(3, 1), image_size=8)
    lrelu = math.sqrt(2 / 1.04)
    block = g.MainLayers[0].Layers[1]
    # Inside a block: sqrt(2 / 1.04) * L^(-1/4) / sqrt(fan_in), L = 4 blocks in all.
    for layer, fan_in in ((block.LinearLayer1.Layer, 64), (block.LinearLayer2.Layer, 32 * 9)):
        expected = lrelu * 4 ** (-1 / 4) / math.sqrt(fan_in)
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.05)
    basis = g.MainLayers[0].Layers[0]
    assert basis.LinearLayer.weight.std().item() == pytest.approx(1 / math.sqrt(32), rel=0.05)
    assert basis.Basis.std().item() == pytest.approx(1.0, rel=0.1)


def test_image_size_checks_and_bad_layouts() -> None:
    assert R3GANGenerator.check_image_size({"image_size": 64}, 64) is None
    assert "generator.image_size=32 with 4 entries" in R3GANGenerator.check_image_size({"image_size": 64}, 32)
    assert "4 * 2**k" in R3GANDiscriminator.check_image_size({"image_size": 64}, 48)
    assert R3GANDiscriminator.check_image_size({"image_size": 16}, 32) is not None
    # As the recipe resolver asks it: yes only where a discriminator step works (its own size;
    # 17 to 19 px also floor down to 4x4, but no generator of the pair makes them).
    from ganforge.recipe import Spec, image_size_problem

    registry = get_registry()
    table = {"name": "r3gan", "init": "none", **D_TINY}
    d = registry.build("discriminator", table)
    spec = Spec(registry.get("discriminator", "r3gan"), registry.validate("discriminator", table), "x")
    for size in [*range(1, 34), 48, 64]:
        try:
            d(torch.randn(1, 3, size, size)).sum().backward()
            works = True
        except RuntimeError:
            works = False
        accepted = image_size_problem(registry, spec, size) is None
        assert works if accepted else (not works or size in (17, 18, 19)), size
        assert accepted == (size == 16), size
    bad = [
        (dict(image_size=32), "need 4 entries each, got 5, 5 and 5"),
        (dict(image_size=24), "image_size must be 4 \\* 2\\*\\*k"),
        (dict(cardinalities=(96, 96, 96, 96, 7)), "768 is not divisible by cardinalities\\[4\\] = 7"),
        (dict(blocks=(0, 0, 0, 0, 0)), "at least one residual block"),
    ]
    for options, says in bad:
        with pytest.raises(GanforgeError, match=says), torch.device("meta"):
            R3GANGenerator(**options)
    with pytest.raises(GanforgeError, match="pass the labels y"):
        our_g(3)(torch.randn(1, LATENT))


def test_built_through_the_registry() -> None:
    registry = get_registry()
    g = registry.build("generator", {"name": "r3gan", "latent_dim": LATENT, "init": "none", **G_TINY})
    d = registry.build("discriminator", {"name": "r3gan", "init": "none", **D_TINY})
    assert g.latent_dim == LATENT and d.outputs_probabilities is False
    assert d(g(torch.randn(2, LATENT))).shape == (2,)
    assert not g.MainLayers[0].Layers[1].LinearLayer3.Layer.weight.any()  # init="none" keeps fix-up
    table = {"name": "r3gan", "latent_dim": LATENT, "embedding_dim": 4}
    conditional = registry.build("generator", {**table, **G_TINY}, num_classes=3)  # context: the classes
    assert not conditional.MainLayers[0].Layers[1].LinearLayer3.Layer.weight.any()  # init "auto" keeps it
    assert conditional.EmbeddingLayer.weight.shape == (4, 3)
    assert conditional(torch.randn(2, LATENT), torch.tensor([2, 0])).shape == (2, 3, 16, 16)
    with pytest.raises(GanforgeError, match="widths.* must be >= 1"):
        registry.validate("generator", {"name": "r3gan", "widths": [16, 0, 8]})


# -- the loss -----------------------------------------------------------------------------------


class SquareCritic(nn.Module):
    """D(x) = a * ||x||^2 per image: its input gradient is 2 a x, so ||grad||^2 = 4 a^2 ||x||^2."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x.flatten(1).square().sum(1)


def sp(v: float) -> float:
    return math.log1p(math.exp(v))


def test_rpgan_losses_by_hand() -> None:
    real, fake = torch.tensor([1.0, -0.5]), torch.tensor([0.2, 0.3])
    loss = RpGANLoss()
    # D: mean softplus(-(real - fake)); G: mean softplus(-(fake - real))
    assert loss.d_loss(real, fake).item() == pytest.approx((sp(-0.8) + sp(0.8)) / 2)
    assert loss.g_loss(fake, real_out=real).item() == pytest.approx((sp(0.8) + sp(-0.8)) / 2)
    real2, fake2 = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    assert loss.d_loss(real2, fake2).item() == pytest.approx((sp(-2.0) + sp(1.0)) / 2)
    assert loss.g_loss(fake2, real_out=real2).item() == pytest.approx((sp(2.0) + sp(-1.0)) / 2)
    # Probabilities go back to logits first.
    probs = torch.sigmoid(real2), torch.sigmoid(fake2)
    assert loss.d_loss(*probs, probabilities=True).item() == pytest.approx(loss.d_loss(real2, fake2).item())
    assert loss.penalty(SquareCritic(1.0), torch.ones(2, 1, 2, 2), torch.ones(2, 1, 2, 2)) is None


def test_r1_and_r2_by_hand() -> None:
    # ||real_i||^2 = 5, 1 (mean 3); ||fake_i||^2 = 2, 9 (mean 5.5); a = 0.5 so ||grad||^2 = ||x||^2.
    real = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).view(2, 1, 1, 2)
    fake = torch.tensor([[1.0, 1.0], [3.0, 0.0]]).view(2, 1, 1, 2)
    critic = SquareCritic(0.5)
    assert RpGANLoss(r1_gamma=2.0).penalty(critic, real, fake).item() == pytest.approx(2.0 / 2 * 3)
    assert RpGANLoss(r2_gamma=2.0).penalty(critic, real, fake).item() == pytest.approx(2.0 / 2 * 5.5)
    both = RpGANLoss(r1_gamma=0.4, r2_gamma=0.4)
    expected = 0.2 * 3 + 0.2 * 5.5
    assert both.penalty(critic, real, fake).item() == pytest.approx(expected)
    # The same from scores already computed (the reference's single pass), scaled by a tensor.
    r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    from_outputs = both.penalty_from(r, critic(r), f, critic(f), scale=torch.tensor(0.5))
    assert from_outputs.item() == pytest.approx(expected * 0.5)
    # It trains D: d/da of gamma/2 * mean 4 a^2 ||x||^2 = gamma/2 * 8 a * mean ||x||^2.
    (grad,) = torch.autograd.grad(both.penalty(critic, real, fake), critic.a)
    assert grad.item() == pytest.approx(0.2 * 8 * 0.5 * (3 + 5.5))
    assert gradient_square_norms(r, critic(r)).tolist() == pytest.approx([5.0, 1.0])


def test_rpgan_refuses_unpaired_scores_and_a_missing_real_batch() -> None:
    loss = RpGANLoss()
    with pytest.raises(ValueError, match="pairs each real score"):
        loss.d_loss(torch.zeros(4), torch.zeros(3))
    with pytest.raises(TypeError, match="needs real_out"):
        loss.g_loss(torch.zeros(4))
    with pytest.raises(ValueError, match="r2_gamma"):
        RpGANLoss(r2_gamma=-1.0)


@pytest.mark.parametrize("num_classes", [0, 5])
def test_one_training_step_matches_the_reference_trainer(num_classes) -> None:
    """D and G losses and every parameter gradient on the tiny R3GAN, as R3GAN/Trainer.py computes them."""
    torch.manual_seed(0)
    rg, rd = randomise(ref_g(num_classes), 2), randomise(ref_d(num_classes), 3)
    g, d = our_g(num_classes), our_d(num_classes)
    g.load_state_dict(rg.state_dict())
    d.load_state_dict(rd.state_dict())
    z, real = torch.randn(4, LATENT), torch.randn(4, 3, 16, 16)
    c = F.one_hot(torch.tensor([0, 1, 4, 2]), num_classes).float() if num_classes else None
    gamma = 0.7
    loss = RpGANLoss(r1_gamma=gamma, r2_gamma=gamma)

    # D step: one forward per batch, penalties from the same scores.
    expected = ref_d_loss(rg, rd, z, real, c, gamma)
    expected.backward()
    r = real.detach().requires_grad_(True)
    f = g(z, c).detach().requires_grad_(True)
    real_out, fake_out = d(r, c), d(f, c)
    got = loss.d_loss(real_out, fake_out) + loss.penalty_from(r, real_out, f, fake_out)
    got.backward()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    for (k, p_ref), (_, p) in zip(rd.named_parameters(), d.named_parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-5, rtol=1e-4, msg=k)
    # penalty() runs D again on the same images: the same value.
    again = loss.d_loss(d(real, c), d(f.detach(), c)) + loss.penalty(lambda x: d(x, c), real, f.detach())
    assert again.item() == pytest.approx(expected.item(), rel=1e-5)

    # G step: the real batch's scores join the G loss.
    expected = ref_g_loss(rg, rd, z, real, c)
    expected.backward()
    got = loss.g_loss(d(g(z, c), c), real_out=d(real, c))
    got.backward()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    for (k, p_ref), (_, p) in zip(rg.named_parameters(), g.named_parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-5, rtol=1e-4, msg=k)


# -- schedules ----------------------------------------------------------------------------------


def test_cosine_schedule_points() -> None:
    start, end, horizon = 2e-4, 5e-5, 2e7
    for seen in (0, 1e6, 5e6, 1e7, 1.5e7, 2e7 - 1):
        ramp = (1 - math.cos(math.pi * seen / horizon)) / 2
        assert value(start, end, seen, horizon) == pytest.approx(start + ramp * (end - start), rel=1e-12)
    assert value(start, end, 0, horizon) == start
    assert value(start, end, 1e7, horizon) == pytest.approx((start + end) / 2)
    assert value(start, end, 2e7, horizon) == pytest.approx(end)
    assert value(start, end, 3e7, horizon) == end
    # The reference's warm-up and hold options: linear to start, start held, then the cosine.
    kw = dict(warmup_start=0.0, warmup_images=100, hold_images=50)
    assert value(1.0, 0.0, 25, 1000, **kw) == pytest.approx(0.25)
    assert value(1.0, 0.0, 120, 1000, **kw) == 1.0
    assert value(1.0, 0.0, 150 + 425, 1000, **kw) == pytest.approx(0.5)


def test_ema_half_life_and_presets() -> None:
    assert ema_beta(256, 0.0) == 0.0  # a copy while the half-life is still 0
    assert ema_beta(256, 256.0) == 0.5
    assert ema_beta(256, 500_000) ** (500_000 / 256) == pytest.approx(0.5)
    ffhq, cifar = R3GAN_PRESETS["ffhq-64"], R3GAN_PRESETS["cifar-10"]
    assert ffhq.at(0) == {
        "lr": 2e-4,
        "beta2": 0.9,
        "gamma": 2.0,
        "ema_half_life_images": 0.0,
        "augment_p": 0.0,
    }
    end = ffhq.at(2e7)
    assert end["gamma"] == pytest.approx(0.2) and end["augment_p"] == pytest.approx(0.3)
    assert end["ema_half_life_images"] == pytest.approx(500_000) and end["beta2"] == pytest.approx(0.99)
    assert cifar.at(1e7)["gamma"] == pytest.approx((0.05 + 0.005) / 2)
    assert cifar.schedules["augment_p"] == Schedule(0.0, 0.55, 2e7)
    assert (ffhq.batch_size, ffhq.gpus, cifar.batch_size, cifar.gpus) == (256, 8, 512, 8)
