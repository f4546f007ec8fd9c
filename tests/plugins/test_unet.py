"""pix2pix's U-Net generator and conditional PatchGAN against the official layout.

The reference classes below are re-implemented from junyanz/pytorch-CycleGAN-and-pix2pix,
``models/networks.py`` at commit 48ced5e8e3af621acca066a70203a196ba571bed (``get_norm_layer``,
``UnetGenerator``, ``UnetSkipConnectionBlock``, ``NLayerDiscriminator``), keeping their module
names, layer order, bias rule and forward, so an official checkpoint's keys are theirs.
"""

import functools

import pytest
import torch
from torch import nn

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge.recipe import Spec, image_size_problem
from ganforge_plugins.networks import PatchGANDiscriminator, UnetGenerator, unet_128, unet_256

# -- the official modules, re-implemented -------------------------------------------------------


def ref_norm_layer(norm_type: str):
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    raise ValueError(norm_type)


def ref_use_bias(norm_layer) -> bool:
    if type(norm_layer) is functools.partial:
        return norm_layer.func == nn.InstanceNorm2d
    return norm_layer == nn.InstanceNorm2d


class RefUnetSkipConnectionBlock(nn.Module):
    def __init__(
        self,
        outer_nc,
        inner_nc,
        input_nc=None,
        submodule=None,
        outermost=False,
        innermost=False,
        norm_layer=nn.BatchNorm2d,
        use_dropout=False,
    ):
        super().__init__()
        self.outermost = outermost
        use_bias = ref_use_bias(norm_layer)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model = model + [nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class RefUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        block = RefUnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = RefUnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout
            )
        block = RefUnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = RefUnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = RefUnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = RefUnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer
        )

    def forward(self, x):
        return self.model(x)


class RefNLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        if type(norm_layer) is functools.partial:  # no bias before BatchNorm (its shift replaces it)
            use_bias = norm_layer.func != nn.BatchNorm2d
        else:
            use_bias = norm_layer != nn.BatchNorm2d
        kw, padw = 4, 1
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2**n, 8)
            sequence += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kw, stride=2, padding=padw, bias=use_bias),
                norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
        nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        sequence += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kw, stride=1, padding=padw, bias=use_bias),
            norm_layer(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
        ]
        sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]
        self.model = nn.Sequential(*sequence)

    def forward(self, x):
        return self.model(x)


def official_unet(netG: str, ngf: int, norm: str = "batch", in_nc: int = 3, out_nc: int = 3) -> nn.Module:
    """``define_G(in_nc, out_nc, ngf, netG, norm, use_dropout=True)`` as pix2pix calls it."""
    num_downs = {"unet_128": 7, "unet_256": 8}[netG]
    return RefUnetGenerator(in_nc, out_nc, num_downs, ngf, norm_layer=ref_norm_layer(norm), use_dropout=True)


# -- helpers ------------------------------------------------------------------------------------

PRESETS = {"unet_256": (unet_256, 8, 256), "unet_128": (unet_128, 7, 128)}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


def trained_like(net: nn.Module, seed: int) -> nn.Module:
    """Weights and batch-norm statistics far from their initial values, as after training."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(1000)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() == 1 and name.endswith("weight"):  # norm scale
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
    return net


# -- U-Net: layout, parameter counts, loading ---------------------------------------------------


@pytest.mark.parametrize("preset", ["unet_256", "unet_128"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet_state_dict_equals_the_official_key_for_key(preset: str, norm: str) -> None:
    factory, num_downs, _ = PRESETS[preset]
    with torch.device("meta"):
        ref = official_unet(preset, ngf=64, norm=norm)
        ours = factory(ngf=64, norm=norm)
        general = UnetGenerator(ngf=64, num_downs=num_downs, norm=norm)
    assert shapes(ours) == shapes(ref)  # same keys, same order, same shapes
    assert shapes(general) == shapes(ref)
    assert n_params(ours) == n_params(ref)
    # The official nesting: outermost block, its Sequential, the next block at index 1, ...
    keys = set(ours.state_dict())
    assert {"model.model.0.weight", "model.model.3.weight", "model.model.3.bias"} <= keys
    assert "model.model.1.model.3.model.3.model.1.weight" in keys


def test_unet_official_parameter_counts() -> None:
    """unet_256 / unet_128 at ngf=64, RGB to RGB, batch norm (what pix2pix trains)."""
    with torch.device("meta"):
        counts = {name: (n_params(PRESETS[name][0]()), n_params(official_unet(name, 64))) for name in PRESETS}
    assert counts["unet_256"] == (54_413_955, 54_413_955)
    assert counts["unet_128"] == (41_828_995, 41_828_995)


@pytest.mark.parametrize("preset", ["unet_256", "unet_128"])
def test_unet_cross_loads_strictly_both_ways(preset: str) -> None:
    factory, _, _ = PRESETS[preset]
    ref = trained_like(official_unet(preset, ngf=8), seed=1)
    ours = factory(ngf=8)
    assert not ours.load_state_dict(ref.state_dict(), strict=True).missing_keys
    back = trained_like(official_unet(preset, ngf=8), seed=2)
    back.load_state_dict(ours.state_dict(), strict=True)
    for (k, a), (_, b) in zip(ref.state_dict().items(), back.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_unet_loads_a_checkpoint_saved_before_num_batches_tracked() -> None:
    """Checkpoints from PyTorch < 0.4.1 lack the batch-norm counters; a plain dict still loads."""
    ref = trained_like(official_unet("unet_128", ngf=4), seed=3)
    old = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    unet_128(ngf=4).load_state_dict(old, strict=True)


# -- U-Net: outputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["unet_256", "unet_128"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet_eval_outputs_equal_the_official(preset: str, norm: str) -> None:
    factory, _, side = PRESETS[preset]
    ref = trained_like(official_unet(preset, ngf=8, norm=norm), seed=4).eval()
    ours = factory(ngf=8, norm=norm).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(5))
    x0 = x.clone()
    with torch.no_grad():
        want, got, again = ref(x), ours(x), ours(x)
    assert got.shape == (2, 3, side, side)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert torch.equal(got, again)  # eval mode: dropout off, running statistics
    assert torch.equal(x, x0)  # the caller's tensor is not modified by the in-place activations


@pytest.mark.parametrize("preset", ["unet_256", "unet_128"])
def test_unet_train_mode_with_dropout_equals_the_official_under_one_seed(preset: str) -> None:
    factory, num_downs, side = PRESETS[preset]
    ref = trained_like(official_unet(preset, ngf=8), seed=6).train()
    ours = factory(ngf=8).train()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert sum(isinstance(m, nn.Dropout) for m in ours.modules()) == num_downs - 5
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(8)
    want = ref(x)
    torch.manual_seed(8)
    got = ours(x)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    # The same batch-norm statistics were tracked.
    for (k, a), (_, b) in zip(ref.state_dict().items(), ours.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0, msg=k)
    # Dropout is active in train mode: another seed, another output.
    torch.manual_seed(9)
    assert not torch.allclose(ours(x), got, atol=1e-4)
    # Without dropout the train-mode output no longer depends on the seed.
    plain = factory(ngf=8, dropout=False).train()
    plain.load_state_dict(ref.state_dict(), strict=True)
    torch.manual_seed(10)
    first = plain(x)
    torch.manual_seed(11)
    assert torch.equal(plain(x), first)


def test_unet_general_depth_and_channels() -> None:
    g = UnetGenerator(in_channels=1, out_channels=2, ngf=2, num_downs=5, norm="none").eval()
    assert g.size_multiple == 32
    y = g(torch.randn(1, 1, 64, 96) * 3)
    assert y.shape == (1, 2, 64, 96) and y.abs().max() <= 1
    assert not any(isinstance(m, nn.Dropout | nn.BatchNorm2d) for m in g.modules())
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(c.bias is not None for c in convs)  # no norm: every conv keeps its bias
    assert unet_256(ngf=2).size_multiple == 256 and unet_128(ngf=2).size_multiple == 128


def test_unet_rejects_bad_options() -> None:
    with pytest.raises(GanforgeError, match="num_downs >= 5"):
        UnetGenerator(ngf=2, num_downs=4)
    with pytest.raises(GanforgeError, match="ngf"):
        UnetGenerator(ngf=0)
    with pytest.raises(GanforgeError, match="unknown norm 'group'"):
        UnetGenerator(ngf=2, norm="group")  # type: ignore[arg-type]


# -- image sizes --------------------------------------------------------------------------------


def test_check_image_size_says_why() -> None:
    assert UnetGenerator.check_image_size({"num_downs": 8}, 256) is None
    assert UnetGenerator.check_image_size({"num_downs": 8}, 512) is None
    assert UnetGenerator.check_image_size({}, 256) is None  # default depth: unet_256
    problem = UnetGenerator.check_image_size({"num_downs": 8}, 384)
    assert problem is not None and "multiples of 256" in problem and "384" in problem
    assert "at least 256 px" in UnetGenerator.check_image_size({"num_downs": 8}, 128)
    assert unet_128.check_image_size({}, 128) is None
    assert "multiples of 128" in unet_128.check_image_size({}, 64)
    assert unet_256.check_image_size({}, 256) is None
    assert "multiples of 256" in unet_256.check_image_size({}, 128)


@pytest.mark.parametrize(
    "table", [{"name": "unet", "ngf": 2, "num_downs": 5}, {"name": "unet_128", "ngf": 1}]
)
def test_declared_image_sizes_match_what_the_unet_takes(table) -> None:
    """``check_image_size`` (through the registry) says yes exactly where a training step works."""
    registry = get_registry()
    net = registry.build("generator", table).train()
    spec = Spec(registry.get("generator", table["name"]), registry.validate("generator", table), "x")
    multiple = net.size_multiple
    for size in [1, multiple // 2, multiple - 2, multiple, multiple + 2, multiple * 3 // 2, multiple * 2]:
        try:
            net(torch.randn(1, 3, size, size)).sum().backward()
            works = True
        except (RuntimeError, ValueError):
            works = False
        assert works == (image_size_problem(registry, spec, size) is None), size


# -- registry -----------------------------------------------------------------------------------


def test_ganforge_list_generators_shows_the_unets() -> None:
    registry = get_registry()
    assert {"unet", "unet_256", "unet_128"} <= set(registry.names("generator"))
    for name in ("unet", "unet_256", "unet_128"):
        component = registry.get("generator", name)
        assert component.plugin == "networks" and component.doc
        params = {p.name: p for p in registry.options(component)}
        assert params["norm"].default == "batch" and params["dropout"].default is True
        assert params["ngf"].default == 64
        assert ("num_downs" in params) == (name == "unet")
    g = registry.build("generator", {"name": "unet_256", "ngf": 4})
    assert isinstance(g, UnetGenerator) and g.num_downs == 8
    assert g.model.model[0].weight.std().item() == pytest.approx(0.02, rel=0.3)  # init N(0, 0.02)


# -- the conditional PatchGAN (pix2pix's netD) --------------------------------------------------


def test_patchgan_with_6_channels_and_batch_norm_is_pix2pix_netD() -> None:
    """``define_D(input_nc + output_nc = 6, 64, 'basic', norm='batch')`` as pix2pix calls it."""
    with torch.device("meta"):
        ref = RefNLayerDiscriminator(6, 64, n_layers=3, norm_layer=ref_norm_layer("batch"))
        ours = PatchGANDiscriminator(in_channels=6, ndf=64, n_layers=3, norm="batch")
    assert shapes(ours) == shapes(ref)
    assert n_params(ours) == n_params(ref) == 2_768_705


@pytest.mark.parametrize("train", [False, True])
def test_patchgan_outputs_equal_the_official(train: bool) -> None:
    ref = trained_like(RefNLayerDiscriminator(6, 8, n_layers=3, norm_layer=ref_norm_layer("batch")), 12)
    ours = PatchGANDiscriminator(in_channels=6, ndf=8, n_layers=3, norm="batch")
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.train(train)
    ours.train(train)
    x = torch.randn(2, 6, 128, 128, generator=torch.Generator().manual_seed(13))
    want, got = ref(x), ours(x)
    assert got.shape == (2, 1, 14, 14)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
