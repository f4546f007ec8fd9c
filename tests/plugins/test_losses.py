"""The bundled adversarial losses against hand computations, and the gradient penalty."""

import math

import pytest
import torch
from torch import nn

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.losses import BCELoss, LSGANLoss, WGANGPLoss, gradient_penalty


class LinearCritic(nn.Module):
    """D(x) = <w, x> per sample: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def small_critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4, stride=2))


# -- lsgan ------------------------------------------------------------------------------------


def test_lsgan_matches_hand_computation() -> None:
    real, fake = torch.tensor([0.5, 1.0]), torch.tensor([0.0, 0.5])
    loss = LSGANLoss()
    # mean((0.5-1)^2, 0) + mean(0, 0.5^2) = 0.125 + 0.125
    assert loss.d_loss(real, fake).item() == pytest.approx(0.25)
    assert loss.g_loss(fake).item() == pytest.approx((1.0 + 0.25) / 2)
    smooth = LSGANLoss(real_label=0.9, fake_label=0.1)
    expected = ((0.5 - 0.9) ** 2 + 0.1**2) / 2 + (0.1**2 + 0.4**2) / 2
    assert smooth.d_loss(real, fake).item() == pytest.approx(expected)
    assert smooth.g_loss(fake).item() == pytest.approx((0.9**2 + 0.4**2) / 2)


def test_lsgan_ignores_probabilities_flag_and_handles_patch_maps() -> None:
    real, fake = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    loss = LSGANLoss()
    assert torch.equal(loss.d_loss(real, fake), loss.d_loss(real, fake, probabilities=True))
    expected = ((real - 1) ** 2).mean() + (fake**2).mean()
    torch.testing.assert_close(loss.d_loss(real, fake), expected)


# -- bce ----------------------------------------------------------------------------------------


def test_bce_zero_logits_is_log2_per_term() -> None:
    zeros = torch.zeros(3, 1, 2, 2)
    loss = BCELoss()
    assert loss.d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert loss.g_loss(zeros).item() == pytest.approx(math.log(2))


def test_bce_logits_and_probabilities_agree() -> None:
    torch.manual_seed(0)
    real, fake = torch.randn(4, 1, 3, 3) * 3, torch.randn(4, 1, 3, 3) * 3
    for loss in (BCELoss(), BCELoss(real_label=0.9, fake_label=0.05)):
        torch.testing.assert_close(
            loss.d_loss(real, fake), loss.d_loss(real.sigmoid(), fake.sigmoid(), probabilities=True)
        )
        torch.testing.assert_close(loss.g_loss(fake), loss.g_loss(fake.sigmoid(), probabilities=True))


def test_bce_label_smoothing_is_one_sided() -> None:
    x = torch.tensor([0.3, -1.2])
    loss = BCELoss(real_label=0.9, fake_label=0.1)

    def bce(logit: torch.Tensor, t: float) -> torch.Tensor:
        p = logit.sigmoid()
        return -(t * p.log() + (1 - t) * (1 - p).log()).mean()

    torch.testing.assert_close(loss.d_loss(x, -x), bce(x, 0.9) + bce(-x, 0.1))
    torch.testing.assert_close(loss.g_loss(x), bce(x, 1.0))  # the generator aims at 1


def test_bce_saturated_probabilities_stay_finite() -> None:
    p = torch.tensor([0.0, 1.0], requires_grad=True)
    q = torch.tensor([1.0, 0.0], requires_grad=True)
    value = BCELoss().d_loss(p, q, probabilities=True)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()


# -- wgan-gp -----------------------------------------------------------------------------------


def test_wgan_values() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    loss = WGANGPLoss()
    assert loss.d_loss(real, fake).item() == pytest.approx(-2.0 + -0.5)
    assert loss.g_loss(fake).item() == pytest.approx(0.5)


def test_penalty_zero_for_unit_gradient_and_positive_otherwise() -> None:
    real, fake = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    w = torch.randn(1, 3, 5, 5)
    unit = LinearCritic(w / w.norm())
    assert WGANGPLoss().penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-6)
    double = LinearCritic(2 * w / w.norm())
    # ||grad|| = 2 everywhere: 10 * (2 - 1)^2.
    assert WGANGPLoss(lambda_gp=10.0).penalty(double, real, fake).item() == pytest.approx(10.0, rel=1e-5)
    assert WGANGPLoss(lambda_gp=0.0).penalty(double, real, fake) is None


def test_penalty_trains_only_the_discriminator() -> None:
    d = small_critic()
    g = nn.Conv2d(3, 3, 1)
    real = torch.randn(2, 3, 8, 8)
    fake = g(torch.randn(2, 3, 8, 8))
    value = gradient_penalty(d, real, fake, 10.0)
    assert value.item() > 0
    value.backward()
    # The output bias cannot change an input gradient; every weight can.
    assert all(m.weight.grad.abs().sum() > 0 for m in (d[0], d[2]))
    assert all(p.grad is None for p in g.parameters())


def test_penalty_pairs_different_batch_sizes() -> None:
    d = small_critic()
    value = gradient_penalty(d, torch.randn(2, 3, 8, 8), torch.randn(5, 3, 8, 8), 1.0)
    assert value.dim() == 0 and torch.isfinite(value)


def test_penalty_option_on_lsgan_and_bce() -> None:
    d = LinearCritic(torch.full((1, 3, 2, 2), 1.0))  # ||w|| = sqrt(12)
    real, fake = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    assert LSGANLoss().penalty(d, real, fake) is None
    assert BCELoss().penalty(d, real, fake) is None
    expected = 10 * (math.sqrt(12) - 1) ** 2
    assert LSGANLoss(gradient_penalty=10.0).penalty(d, real, fake).item() == pytest.approx(expected, rel=1e-5)
    assert BCELoss(gradient_penalty=10.0).penalty(d, real, fake).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(GanforgeError):
        LSGANLoss(gradient_penalty=-1.0)


def test_penalty_under_bf16_autocast_is_float32() -> None:
    d = small_critic()
    real, fake = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = gradient_penalty(d, real, fake, 10.0)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()


# -- shared behaviour ------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [LSGANLoss(), BCELoss(), WGANGPLoss()])
def test_losses_are_float32_scalars_with_gradients(loss: object) -> None:
    real = torch.randn(2, 1, 3, 3, dtype=torch.bfloat16, requires_grad=True)
    fake = torch.randn(2, 1, 3, 3, dtype=torch.bfloat16, requires_grad=True)
    d = loss.d_loss(real, fake)
    g = loss.g_loss(fake)
    assert d.shape == () and g.shape == () and d.dtype == torch.float32
    d.backward()
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0
    fake.grad = None
    g.backward()
    assert fake.grad.abs().sum() > 0


def test_losses_registered_through_entry_points() -> None:
    reg = get_registry()
    assert reg.get("loss", "lsgan").factory is LSGANLoss
    assert reg.get("loss", "bce").factory is BCELoss
    assert reg.get("loss", "wgan-gp").factory is WGANGPLoss
    loss = reg.build("loss", {"name": "lsgan", "gradient_penalty": 10})
    assert isinstance(loss, LSGANLoss) and loss.gradient_penalty == 10.0
    assert reg.build("loss", {"name": "bce", "real_label": 0.9}).real_label == 0.9
    assert reg.build("loss", {"name": "wgan-gp", "lambda_gp": 5.0}).lambda_gp == 5.0
    with pytest.raises(GanforgeError):
        reg.build("loss", {"name": "wgan-gp", "gradient_penalty": 1.0})
