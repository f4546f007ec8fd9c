"""The bundled networks: shapes, official parameter counts and layouts, registry wiring."""

import pytest
import torch
from torch import nn

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.networks import (
    DCGANDiscriminator,
    DCGANGenerator,
    PatchGANDiscriminator,
    PixelShuffleResnetGenerator,
    ResnetGenerator,
)
from ganforge_plugins.networks.resnet import ResnetBlock


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- ResNet generator -------------------------------------------------------------------------


@pytest.mark.parametrize("upsample", ["transpose", "pixelshuffle"])
def test_resnet_keeps_size_and_tanh_range(upsample: str) -> None:
    g = ResnetGenerator(ngf=8, blocks=2, upsample=upsample)
    x = torch.randn(2, 3, 64, 64) * 3
    y = g(x)
    assert y.shape == (2, 3, 64, 64)
    assert y.abs().max() <= 1.0


def test_resnet_channels() -> None:
    g = ResnetGenerator(in_channels=1, out_channels=4, ngf=4, blocks=1)
    assert g(torch.randn(1, 1, 32, 32)).shape == (1, 4, 32, 32)


def test_resnet_9blocks_matches_official_parameter_count() -> None:
    assert n_params(ResnetGenerator(ngf=64, blocks=9)) == 11_378_179


def test_resnet_state_dict_keys_match_official_layout() -> None:
    keys = set(ResnetGenerator(ngf=4, blocks=9).state_dict())
    # Keys of the official resnet_9blocks latest_net_G.pth (instance norm has no parameters).
    official = {
        "model.1.weight",
        "model.1.bias",
        "model.4.weight",
        "model.7.weight",
        "model.10.conv_block.1.weight",
        "model.10.conv_block.5.bias",
        "model.18.conv_block.5.weight",
        "model.19.weight",
        "model.22.weight",
        "model.26.weight",
        "model.26.bias",
    }
    assert official <= keys
    assert len(keys) == 2 * (3 + 2 * 9 + 2 + 1)


def test_resnet_norm_and_bias_rules() -> None:
    def convs(net: nn.Module) -> list[nn.Module]:
        return [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]

    inst = ResnetGenerator(ngf=4, blocks=1, norm="instance")
    batch = ResnetGenerator(ngf=4, blocks=1, norm="batch")
    plain = ResnetGenerator(ngf=4, blocks=1, norm="none")
    assert all(c.bias is not None for c in convs(inst))
    assert all(c.bias is None for c in convs(batch)[:-1]) and convs(batch)[-1].bias is not None
    assert all(c.bias is not None for c in convs(plain))
    norms = [m for m in inst.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)
    assert all(m.affine for m in batch.modules() if isinstance(m, nn.BatchNorm2d))
    assert not any(isinstance(m, nn.InstanceNorm2d | nn.BatchNorm2d) for m in plain.modules())


def test_resnet_dropout_in_each_block() -> None:
    g = ResnetGenerator(ngf=4, blocks=3, dropout=True)
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3
    assert not any(isinstance(m, nn.Dropout) for m in ResnetGenerator(ngf=4, blocks=3).modules())


def test_pixelshuffle_generator_defaults_and_shape() -> None:
    g = PixelShuffleResnetGenerator(ngf=8, blocks=1)
    assert sum(isinstance(m, nn.PixelShuffle) for m in g.modules()) == 2
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert g(torch.randn(1, 3, 32, 48)).shape == (1, 3, 32, 48)
    blocks = [m for m in PixelShuffleResnetGenerator(ngf=2).modules() if isinstance(m, ResnetBlock)]
    assert len(blocks) == 8


def test_resnet_rejects_bad_options() -> None:
    with pytest.raises(GanforgeError):
        ResnetGenerator(ngf=0)
    with pytest.raises(GanforgeError):
        ResnetGenerator(norm="group")  # type: ignore[arg-type]


# -- PatchGAN -----------------------------------------------------------------------------------


def test_patchgan_k4_gives_30x30_for_256() -> None:
    d = PatchGANDiscriminator(ndf=8)
    assert d(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    assert d.outputs_probabilities is False


def test_patchgan_official_parameter_count() -> None:
    assert n_params(PatchGANDiscriminator(ndf=64, n_layers=3)) == 2_764_737


def test_patchgan_k4_receptive_field_is_70() -> None:
    # No norm: instance norm would couple every output to the whole image.
    d = PatchGANDiscriminator(ndf=2, norm="none")
    x = torch.randn(1, 3, 160, 160, requires_grad=True)
    out = d(x)
    h = out.shape[-1]
    out[0, 0, h // 2, h // 2].backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    assert int(rows.max() - rows.min()) + 1 == 70


def test_patchgan_k2_gives_16x16_for_256() -> None:
    d = PatchGANDiscriminator(ndf=8, kernel_size=2)
    assert d(torch.randn(1, 3, 256, 256)).shape == (1, 1, 16, 16)
    widths = [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [8, 16, 32, 64, 64, 1]


def test_patchgan_sigmoid_head() -> None:
    d = PatchGANDiscriminator(ndf=4, sigmoid=True)
    y = d(torch.randn(2, 3, 64, 64) * 10)
    assert d.outputs_probabilities is True
    assert ((y > 0) & (y < 1)).all()


# -- DCGAN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "n_transposed"), [(32, 4), (64, 5), (128, 6)])
def test_dcgan_shapes(size: int, n_transposed: int) -> None:
    g = DCGANGenerator(latent_dim=16, ngf=4, image_size=size)
    d = DCGANDiscriminator(ndf=4, image_size=size)
    assert g.latent_dim == 16
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in g.modules()) == n_transposed
    img = g(torch.randn(3, 16))
    assert img.shape == (3, 3, size, size)
    assert img.abs().max() <= 1.0
    assert d(img).shape == (3,)


def test_dcgan_64_matches_example_widths() -> None:
    g = DCGANGenerator(ngf=64)
    widths = [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert widths == [512, 256, 128, 64, 3]
    d = DCGANDiscriminator(ndf=64)
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512, 1]
    assert not isinstance(d.main[1], nn.BatchNorm2d)  # no norm after the first conv


def test_dcgan_generator_accepts_4d_latent() -> None:
    g = DCGANGenerator(latent_dim=8, ngf=4, image_size=32).eval()
    z = torch.randn(2, 8)
    assert torch.equal(g(z), g(z[:, :, None, None]))


def test_dcgan_discriminator_sigmoid() -> None:
    d = DCGANDiscriminator(ndf=4, image_size=32, sigmoid=True)
    y = d(torch.randn(2, 3, 32, 32))
    assert d.outputs_probabilities and ((y > 0) & (y < 1)).all()
    assert DCGANDiscriminator(ndf=4, image_size=32).outputs_probabilities is False


# -- dtype and memory format ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("net", "shape"),
    [
        (ResnetGenerator(ngf=4, blocks=1), (2, 3, 32, 32)),
        (PixelShuffleResnetGenerator(ngf=4, blocks=1), (2, 3, 32, 32)),
        (PatchGANDiscriminator(ndf=4), (2, 3, 64, 64)),
        (DCGANDiscriminator(ndf=4, image_size=32), (2, 3, 32, 32)),
    ],
)
def test_channels_last_and_bf16_autocast(net: nn.Module, shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape)
    ref = net(x)
    net_cl = net.to(memory_format=torch.channels_last)
    out = net_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = net_cl(x.contiguous(memory_format=torch.channels_last))
    assert low.shape == ref.shape and torch.isfinite(low.float()).all()


# -- registry -----------------------------------------------------------------------------------


def test_registered_through_entry_points() -> None:
    reg = get_registry()
    assert reg.get("generator", "resnet").factory is ResnetGenerator
    assert reg.get("generator", "pixelshuffle").factory is PixelShuffleResnetGenerator
    assert reg.get("generator", "dcgan").factory is DCGANGenerator
    assert reg.get("discriminator", "patchgan").factory is PatchGANDiscriminator
    assert reg.get("discriminator", "dcgan").factory is DCGANDiscriminator
    for kind in ("generator", "discriminator"):
        for component in reg.all(kind):
            if component.plugin == "networks":
                assert component.doc


def test_registry_builds_and_initialises() -> None:
    reg = get_registry()
    g = reg.build("generator", {"name": "resnet", "ngf": 8, "blocks": 2})
    assert isinstance(g, ResnetGenerator)
    assert g(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    # init 'normal' with gain 0.02 was applied to the convs.
    assert g.model[1].weight.std().item() == pytest.approx(0.02, rel=0.2)
    d = reg.build("discriminator", {"name": "patchgan", "ndf": 4, "kernel_size": 2, "init": "xavier"})
    assert d(torch.randn(1, 3, 64, 64)).shape == (1, 1, 4, 4)
    with pytest.raises(GanforgeError):
        reg.build("generator", {"name": "dcgan", "image_size": 48})
    with pytest.raises(GanforgeError):
        reg.build("generator", {"name": "resnet", "init_gain": 0.02, "blokcs": 2})


CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_instance_norm_compiled_keeps_channels_last_and_matches_pytorch(dtype, device, one_thread) -> None:
    from ganforge_plugins.networks.layers import InstanceNorm2d

    torch.manual_seed(0)
    x = (torch.randn(3, 8, 10, 12) * 3 + 1).to(device, dtype).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(3, 8, 10, 12).to(device, dtype).contiguous(memory_format=torch.channels_last)
    ours, reference = InstanceNorm2d(8), nn.InstanceNorm2d(8)
    compiled = torch.compile(ours)  # traced: the channels_last formulation
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = compiled(x1), reference(x2)
    y1.backward(grad)
    y2.backward(grad)
    assert y1.dtype == dtype and y1.is_contiguous(memory_format=torch.channels_last)
    assert x1.grad.is_contiguous(memory_format=torch.channels_last)
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 3e-2, "rtol": 2e-2}
    torch.testing.assert_close(y1, y2, **tol)
    torch.testing.assert_close(x1.grad, x2.grad, **tol)
    assert torch.equal(ours(x), reference(x))  # eager: PyTorch's own kernel
    assert ours.state_dict().keys() == reference.state_dict().keys()
