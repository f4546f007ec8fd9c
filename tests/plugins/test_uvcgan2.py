"""UVCGAN2's networks, gradient penalty, body queue and masking against the reference code.

The reference (LS4GAN/uvcgan2, commit 871b2b931f0b6c1fa012a3d658e830f3f4c6023c) is
re-implemented below from what its files do: ``uvcgan2/torch/layers/{modnet,unet,cnn,transformer,
batch_head}.py``, ``uvcgan2/models/generator/vitmodnet.py``, ``uvcgan2/base/networks.py``
(``NLayerDiscriminator``), ``uvcgan2/torch/spectr_norm.py``, ``uvcgan2/torch/queue.py``
(``FastQueue``), ``uvcgan2/torch/gradient_penalty.py`` and ``uvcgan2/torch/image_masking.py``.
Module names, registration order, default calls (``meshgrid`` with its default "ij" indexing,
attention that also computes its weights, ``tile``, ``view``) and the demodulation as a
broadcast sum follow the reference.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm
from uvcgan2_reference import RefFastQueue

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.losses import LSGANLoss, WGANGPLoss, gradient_penalty
from ganforge_plugins.networks import BodyQueue, UVCGAN2Discriminator, ViTModNetGenerator
from ganforge_plugins.networks.layers import init_weights
from ganforge_plugins.objectives.uvcgan2 import mask_patches

# -- the reference, re-implemented ---------------------------------------------------------------


def ref_activ(name: str | None) -> nn.Module:
    if name in (None, "linear"):
        return nn.Identity()
    layers = {
        "gelu": nn.GELU,
        "relu": lambda: nn.ReLU(inplace=True),
        "leakyrelu": lambda: nn.LeakyReLU(inplace=True),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
    }
    return layers[name]()


def ref_norm(name: str | None, features: int) -> nn.Module:
    if name is None:
        return nn.Identity()
    if name == "layer":
        return nn.LayerNorm((features,))
    return {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}[name](features)


def ref_downsample(name: str, f: int) -> tuple[nn.Module, int]:
    if name == "conv":
        return nn.Conv2d(f, f, kernel_size=2, stride=2), f
    if name == "conv3":
        return nn.Conv2d(f, f, kernel_size=3, stride=2, padding=1), f
    if name == "avgpool":
        return nn.AvgPool2d(kernel_size=2, stride=2), f
    if name == "maxpool":
        return nn.MaxPool2d(kernel_size=2, stride=2), f
    raise ValueError(name)  # pixel-unshuffle(-conv) exist there too but break its ModNet's skips


def ref_upsample(name: str, f: int) -> tuple[nn.Module, int]:
    if name == "deconv":
        return nn.ConvTranspose2d(f, f, kernel_size=2, stride=2), f
    if name == "upsample":
        return nn.Upsample(scale_factor=2), f
    if name == "upsample-conv":
        return nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(f, f, kernel_size=3, padding=1)), f
    if name == "pixel-shuffle":
        return nn.PixelShuffle(upscale_factor=2), f // 4
    assert name == "pixel-shuffle-conv"
    return nn.Sequential(nn.PixelShuffle(upscale_factor=2), nn.Conv2d(f // 4, f // 4, 3, padding=1)), f // 4


class RefUnetBasicBlock(nn.Module):
    def __init__(self, in_features, out_features, activ, norm, mid_features=None):
        super().__init__()
        mid_features = out_features if mid_features is None else mid_features
        self.block = nn.Sequential(
            ref_norm(norm, in_features),
            nn.Conv2d(in_features, mid_features, kernel_size=3, padding=1),
            ref_activ(activ),
            ref_norm(norm, mid_features),
            nn.Conv2d(mid_features, out_features, kernel_size=3, padding=1),
            ref_activ(activ),
        )

    def forward(self, x):
        return self.block(x)


class RefUNetEncBlock(nn.Module):
    def __init__(self, features, activ, norm, downsample, input_shape):
        super().__init__()
        self.downsample, output_features = ref_downsample(downsample, features)
        (c, h, w) = input_shape
        self.block = RefUnetBasicBlock(c, features, activ, norm)
        self.output_shape = (output_features, h // 2, w // 2)

    def forward(self, x):
        r = self.block(x)
        return self.downsample(r), r


def ref_demod_scale(mod_scale, weights, eps=1e-6):
    w_sq = torch.sum(weights.square(), dim=(2, 3))
    w_sq = torch.swapaxes(w_sq, 0, 1).unsqueeze(0)
    mod_scale_sq = mod_scale.square().unsqueeze(2)
    sigma_sq = torch.sum(mod_scale_sq * w_sq, dim=1)
    return 1 / torch.sqrt(sigma_sq + eps)


class RefModulatedConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, eps=1e-6, demod=True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self._eps = eps
        self._demod = demod

    def forward(self, x, s):
        y = self.conv(x * s.unsqueeze(2).unsqueeze(3))
        if self._demod:
            return y * ref_demod_scale(s, self.conv.weight).unsqueeze(2).unsqueeze(3)
        return y


class RefStyleBlock(nn.Module):
    def __init__(self, mod_features, style_features, rezero=True, bias=True):
        super().__init__()
        self.affine_mod = nn.Linear(mod_features, style_features, bias=bias)
        self.rezero = rezero
        self.re_alpha = nn.Parameter(torch.zeros((1,))) if rezero else 1

    def forward(self, mod):
        return 1 + self.re_alpha * self.affine_mod(mod)


class RefModNetBasicBlock(nn.Module):
    def __init__(
        self,
        in_features,
        out_features,
        activ,
        mod_features,
        mid_features=None,
        demod=True,
        style_rezero=True,
        style_bias=True,
    ):
        super().__init__()
        mid_features = out_features if mid_features is None else mid_features
        self.style_block1 = RefStyleBlock(mod_features, in_features, style_rezero, style_bias)
        self.conv_block1 = RefModulatedConv2d(
            in_features, mid_features, kernel_size=3, padding=1, demod=demod
        )
        self.activ1 = ref_activ(activ)
        self.style_block2 = RefStyleBlock(mod_features, mid_features, style_rezero, style_bias)
        self.conv_block2 = RefModulatedConv2d(
            mid_features, out_features, kernel_size=3, padding=1, demod=demod
        )
        self.activ2 = ref_activ(activ)

    def forward(self, x, mod):
        y1 = self.activ1(self.conv_block1(x, self.style_block1(mod)))
        return self.activ2(self.conv_block2(y1, self.style_block2(mod)))


class RefModNetDecBlock(nn.Module):
    def __init__(
        self,
        input_shape,
        output_features,
        skip_features,
        mod_features,
        activ,
        upsample,
        rezero=True,
        demod=True,
        style_rezero=True,
        style_bias=True,
    ):
        super().__init__()
        (input_features, h, w) = input_shape
        self.upsample, input_features = ref_upsample(upsample, input_features)
        self.block = RefModNetBasicBlock(
            skip_features + input_features,
            output_features,
            activ,
            mod_features=mod_features,
            mid_features=max(input_features, input_shape[0]),
            demod=demod,
            style_rezero=style_rezero,
            style_bias=style_bias,
        )
        self.output_shape = (output_features, 2 * h, 2 * w)
        self.re_alpha = nn.Parameter(torch.zeros((1,))) if rezero else 1

    def forward(self, x, r, mod):
        x = self.re_alpha * self.upsample(x)
        return self.block(torch.cat([x, r], dim=1), mod)


class RefModNetBlock(nn.Module):
    def __init__(self, features, activ, norm, image_shape, downsample, upsample, mod_features, *flags):
        super().__init__()
        rezero, demod, style_rezero, style_bias = flags
        self.conv = RefUNetEncBlock(features, activ, norm, downsample, image_shape)
        self.inner_shape = self.conv.output_shape
        self.inner_module = None
        self.deconv = RefModNetDecBlock(
            input_shape=self.inner_shape,
            output_features=image_shape[0],
            skip_features=self.inner_shape[0],
            mod_features=mod_features,
            activ=activ,
            upsample=upsample,
            rezero=rezero,
            demod=demod,
            style_rezero=style_rezero,
            style_bias=style_bias,
        )

    def set_inner_module(self, module):
        self.inner_module = module

    def forward(self, x):
        (y, r) = self.conv(x)
        y, mod = self.inner_module(y)
        return self.deconv(y, r, mod), mod


class RefModNet(nn.Module):
    def __init__(self, features_list, activ, norm, image_shape, downsample, upsample, mod_features, *flags):
        super().__init__()
        self.features_list = features_list
        self.image_shape = image_shape
        self.layer_input = nn.Sequential(
            nn.Conv2d(image_shape[0], features_list[0], kernel_size=3, padding=1), ref_activ(activ)
        )
        self.layer_output = nn.Conv2d(features_list[0], image_shape[0], kernel_size=1)
        layers, shape = [], (features_list[0], *image_shape[1:])
        for features in features_list:
            layer = RefModNetBlock(features, activ, norm, shape, downsample, upsample, mod_features, *flags)
            shape = layer.inner_shape
            layers.append(layer)
        for idx in range(len(layers) - 1):
            layers[idx].set_inner_module(layers[idx + 1])
        self.modnet = layers[0]

    def get_innermost_block(self):
        result = self.modnet
        for _ in range(len(self.features_list) - 1):
            result = result.inner_module
        return result

    def forward(self, x):
        y, _mod = self.modnet(self.layer_input(x))
        return self.layer_output(y)


class RefTransformerBlock(nn.Module):
    def __init__(self, features, ffn_features, n_heads, activ="gelu", norm=None, rezero=True):
        super().__init__()
        self.norm1 = ref_norm(norm, features)
        self.atten = nn.MultiheadAttention(features, n_heads)
        self.norm2 = ref_norm(norm, features)
        self.ffn = nn.Module()
        self.ffn.net = nn.Sequential(
            nn.Linear(features, ffn_features), ref_activ(activ), nn.Linear(ffn_features, features)
        )
        self.rezero = rezero
        self.re_alpha = nn.Parameter(torch.zeros((1,))) if rezero else 1

    def forward(self, x):
        y1 = self.norm1(x)
        y1, _atten_weights = self.atten(y1, y1, y1)
        y = x + self.re_alpha * y1
        return y + self.re_alpha * self.ffn.net(self.norm2(y))


class RefFourierEmbedding(nn.Module):
    def __init__(self, features, height, width):
        super().__init__()
        self.projector = nn.Linear(2, features)
        self._height, self._width = height, width

    def forward(self, y, x):
        x_norm = 2 * x / (self._width - 1) - 1
        y_norm = 2 * y / (self._height - 1) - 1
        z = torch.cat((x_norm.unsqueeze(2), y_norm.unsqueeze(2)), dim=2)
        return torch.sin(self.projector(z))


class RefViTInput(nn.Module):
    def __init__(self, input_features, embed_features, features, height, width):
        super().__init__()
        x = torch.arange(width).to(torch.float32)
        y = torch.arange(height).to(torch.float32)
        x, y = torch.meshgrid(x, y, indexing="ij")  # the reference's call, whose default is "ij"
        self.x, self.y = x.reshape((1, -1)), y.reshape((1, -1))
        self.register_buffer("x_const", self.x)
        self.register_buffer("y_const", self.y)
        self.embed = RefFourierEmbedding(embed_features, height, width)
        self.output = nn.Linear(embed_features + input_features, features)

    def forward(self, x):
        embed = self.embed(self.y_const, self.x_const)
        embed = embed.expand((x.shape[0], *embed.shape[1:]))
        return self.output(torch.cat([embed, x], dim=2))


class RefExtendedPixelwiseViT(nn.Module):
    def __init__(
        self,
        features,
        n_heads,
        n_blocks,
        ffn_features,
        embed_features,
        activ,
        norm,
        image_shape,
        rezero=True,
        n_ext=1,
    ):
        super().__init__()
        self.image_shape = image_shape
        self.trans_input = RefViTInput(
            image_shape[0], embed_features, features, image_shape[1], image_shape[2]
        )
        self.encoder = nn.Module()  # TransformerEncoder: its only child is the Sequential 'encoder'
        self.encoder.encoder = nn.Sequential(
            *[
                RefTransformerBlock(features, ffn_features, n_heads, activ, norm, rezero)
                for _ in range(n_blocks)
            ]
        )
        self.extra_tokens = nn.Parameter(torch.empty((1, n_ext, features)))
        torch.nn.init.normal_(self.extra_tokens)
        self.trans_output = nn.Linear(features, image_shape[0])

    def forward(self, x):
        itokens = x.view(*x.shape[:2], -1).permute((0, 2, 1))
        (n, length, _c) = itokens.shape
        i_extra_tokens = self.extra_tokens.tile(itokens.shape[0], 1, 1)
        y = torch.cat([self.trans_input(itokens), i_extra_tokens], dim=1)
        y = self.encoder.encoder(y.permute((1, 0, 2))).permute((1, 0, 2))
        o_extra_tokens = y[:, length:, :]
        otokens = self.trans_output(y[:, :length, :]).permute((0, 2, 1))
        return otokens.view(*otokens.shape[:2], *self.image_shape[1:]), o_extra_tokens.reshape(n, -1)


class RefViTModNetGenerator(nn.Module):
    def __init__(
        self,
        features,
        n_heads,
        n_blocks,
        ffn_features,
        embed_features,
        activ,
        norm,
        input_shape,
        output_shape,
        modnet_features_list,
        modnet_activ,
        modnet_norm=None,
        modnet_downsample="conv",
        modnet_upsample="upsample-conv",
        modnet_rezero=False,
        modnet_demod=True,
        rezero=True,
        activ_output=None,
        style_rezero=True,
        style_bias=True,
        n_ext=1,
    ):
        super().__init__()
        assert input_shape == output_shape
        self.image_shape = input_shape
        self.net = RefModNet(
            modnet_features_list,
            modnet_activ,
            modnet_norm,
            input_shape,
            modnet_downsample,
            modnet_upsample,
            features * n_ext,
            modnet_rezero,
            modnet_demod,
            style_rezero,
            style_bias,
        )
        inner = self.net.get_innermost_block().inner_shape
        bottleneck = RefExtendedPixelwiseViT(
            features,
            n_heads,
            n_blocks,
            ffn_features,
            embed_features,
            activ,
            norm,
            inner,
            rezero=rezero,
            n_ext=n_ext,
        )
        self.net.get_innermost_block().set_inner_module(bottleneck)
        self.output = ref_activ(activ_output)

    def forward(self, x):
        return self.output(self.net(x))


# GEN_PRESETS['uvcgan2'] in uvcgan2/presets.py, as train_anime2selfie_translation.py builds it (256 px).
SELFIE2ANIME = dict(
    features=384,
    n_heads=6,
    n_blocks=12,
    ffn_features=1536,
    embed_features=384,
    activ="gelu",
    norm="layer",
    modnet_features_list=[48, 96, 192, 384],
    modnet_activ="leakyrelu",
    modnet_norm=None,
    modnet_downsample="conv",
    modnet_upsample="upsample-conv",
    modnet_rezero=False,
    modnet_demod=True,
    rezero=True,
    activ_output="sigmoid",
    style_rezero=True,
    style_bias=True,
    n_ext=1,
)


def ref_generator(size: int, **options: Any) -> RefViTModNetGenerator:
    return RefViTModNetGenerator(input_shape=(3, size, size), output_shape=(3, size, size), **options)


def ours(size: int, **options: Any) -> ViTModNetGenerator:
    """Ours with the reference's options: None is "none", images stay in [0, 1]."""
    options = {k: ("none" if v is None else v) for k, v in options.items()}
    return ViTModNetGenerator(image_size=size, io_range="zero_one", **options)


def trained_like(net: nn.Module, seed: int) -> nn.Module:
    """Random weights, and ReZero gates opened (they start at 0), so every path shows in the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
            if name.endswith("re_alpha"):
                p.add_(0.5)
    return net.eval()


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


# -- generator ---------------------------------------------------------------------------------


def test_selfie2anime_generator_matches_reference_size_and_keys_on_meta() -> None:
    with torch.device("meta"):
        ref = ref_generator(256, **SELFIE2ANIME)
        net = ViTModNetGenerator()  # the defaults are the selfie2anime preset
    assert n_params(net) == n_params(ref) == 32_192_231
    assert shapes(net) == shapes(ref)  # same keys, same order, same shapes
    assert net.size_multiple == 16
    assert net.net.inner_shape() == (384, 16, 16)  # 256 bottleneck tokens plus the extra one


SMALL = dict(
    SELFIE2ANIME,
    features=48,
    n_heads=6,
    n_blocks=2,
    ffn_features=96,
    embed_features=32,
    modnet_features_list=[8, 16, 24],
)


def test_small_generator_cross_loads_and_gives_the_reference_outputs() -> None:
    torch.manual_seed(0)
    ref = trained_like(ref_generator(64, **SMALL), seed=1)
    net = ours(64, **SMALL).eval()
    assert n_params(net) == n_params(ref)
    assert shapes(net) == shapes(ref)
    # the position buffers are built alike (not only loaded alike)
    buffers = dict(ref.named_buffers())
    assert set(buffers) == {k for k, _ in net.named_buffers()} and len(buffers) == 2
    assert all(torch.equal(b, buffers[k]) for k, b in net.named_buffers())
    net.load_state_dict(ref.state_dict(), strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref(x)
        got = net(x)
    assert expected.std() > 0.01  # the outputs carry the input, not a constant
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # and the other way round: our weights into the reference
    trained_like(net, seed=2)
    ref.load_state_dict(net.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x), atol=1e-5, rtol=1e-5)


def test_style_token_modulates_the_decoder() -> None:
    """Changing only the ViT's extra token changes the image: the style path is wired."""
    net = trained_like(ours(32, **dict(SMALL, modnet_features_list=[8, 16])), seed=3)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = net(x)
        net.net._innermost[0].inner_module.extra_tokens.add_(1.0)
        after = net(x)
    assert (after - before).abs().max() > 1e-4


VARIANTS = {
    "instance-conv3-deconv": dict(
        modnet_norm="instance", modnet_downsample="conv3", modnet_upsample="deconv"
    ),
    "batch-pixelshuffle-conv": dict(modnet_norm="batch", modnet_upsample="pixel-shuffle-conv"),
    "pools-upsample": dict(modnet_downsample="avgpool", modnet_upsample="upsample", modnet_activ="relu"),
    "maxpool-pixelshuffle": dict(modnet_downsample="maxpool", modnet_upsample="pixel-shuffle"),
    "flags-off": dict(
        modnet_rezero=True, modnet_demod=False, rezero=False, style_rezero=False, style_bias=False, norm=None
    ),
    "two-extra-tokens-tanh": dict(n_ext=2, activ="relu", activ_output="tanh"),
}


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_generator_variants_match_reference(variant: str) -> None:
    options = dict(SMALL, modnet_features_list=[8, 16], n_blocks=1, **VARIANTS[variant])
    torch.manual_seed(0)
    ref = trained_like(ref_generator(32, **options), seed=4)
    net = ours(32, **options).eval()
    assert shapes(net) == shapes(ref)
    net.load_state_dict(ref.state_dict(), strict=True)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x), atol=1e-5, rtol=1e-5)


def test_io_range_maps_ganforge_images_to_the_reference_range() -> None:
    options = dict(SMALL, modnet_features_list=[8, 16], modnet_norm="none")
    net = trained_like(ours(32, **options), seed=5)
    sym = ViTModNetGenerator(image_size=32, **options)  # io_range="minus_one_one" by default
    sym.load_state_dict(net.state_dict())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y = sym.eval()(x)
        torch.testing.assert_close(y, net((x + 1) / 2) * 2 - 1, atol=1e-6, rtol=1e-6)
    assert y.min() >= -1 and y.max() <= 1


def test_bf16_autocast_keeps_a_float32_output_stage() -> None:
    net = trained_like(ours(32, **dict(SMALL, modnet_features_list=[8, 16])), seed=8)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        full = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x.contiguous(memory_format=torch.channels_last))
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, full, atol=0.03, rtol=0)


def test_generator_refuses_other_sizes_and_bad_options() -> None:
    check = ViTModNetGenerator.check_image_size
    assert check({"image_size": 256}, 256) is None
    assert "image_size=128" in check({"image_size": 256}, 128)
    with pytest.raises(GanforgeError, match="multiple of 16"):
        ViTModNetGenerator(image_size=200)
    with pytest.raises(GanforgeError, match="divisible by n_heads"):
        ViTModNetGenerator(features=50, n_heads=6)
    net = ours(32, **dict(SMALL, modnet_features_list=[8, 16]))
    with pytest.raises(GanforgeError, match="image_size=32"):
        net(torch.rand(1, 3, 64, 64))


def test_ganforge_init_matches_the_reference_init_rule() -> None:
    """The reference's weight_init ``normal`` (gain 0.02) touches what ganforge's ``init`` does:
    conv and linear weights (attention's out_proj too, not its in_proj), biases to zero."""
    torch.manual_seed(0)
    net = init_weights(ours(32, **dict(SMALL, modnet_features_list=[8, 16])), "normal", 0.02)
    vit = net.net._innermost[0].inner_module
    block = vit.encoder.encoder[0]
    assert block.atten.out_proj.weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert block.atten.in_proj_weight.std().item() > 0.05  # xavier_uniform, untouched
    assert net.net.layer_input[0].weight.std().item() == pytest.approx(0.02, rel=0.3)
    assert vit.trans_input.embed.projector.bias.abs().sum() == 0
    assert vit.extra_tokens.std().item() > 0.5  # N(0, 1), untouched


# -- discriminator -----------------------------------------------------------------------------


class RefNLayerDiscriminator(nn.Module):
    """base/networks.py's NLayerDiscriminator with shrink_output=False (instance norm)."""

    def __init__(self, image_shape, ndf=64, n_layers=3, max_mult=8):
        super().__init__()
        seq = [nn.Conv2d(image_shape[0], ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2**n, max_mult)
            seq += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=4, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(ndf * nf_mult, affine=False, track_running_stats=False),
                nn.LeakyReLU(0.2, True),
            ]
        nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, max_mult)
        seq += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=4, stride=1, padding=1, bias=True),
            nn.InstanceNorm2d(ndf * nf_mult, affine=False, track_running_stats=False),
            nn.LeakyReLU(0.2, True),
        ]
        self.model = nn.Sequential(*seq)
        self.shrink_conv = None

    def forward(self, x):
        return self.model(x)


def ref_apply_sn(module: nn.Module) -> None:
    for m in list(module.modules()):
        if isinstance(m, parametrize.ParametrizationList) or not hasattr(m, "weight"):
            continue
        if m.weight is None or len(m.weight.shape) < 2:
            continue
        spectral_norm(m, "weight", 1)


class RefBatchHead2d(nn.Module):
    def __init__(self, input_features, output_features, activ):
        super().__init__()
        self.norm = nn.BatchNorm2d(input_features)
        self.net = nn.Sequential(
            nn.Conv2d(input_features, input_features, kernel_size=3, padding=1),
            ref_activ(activ),
            nn.Conv2d(input_features, output_features, kernel_size=3, padding=1),
            ref_activ(None),
        )

    def forward(self, x):
        return self.net(self.norm(x))


class RefBatchHeadWrapper(nn.Module):
    def __init__(self, body, head):
        super().__init__()
        self._body, self._head = body, head

    def forward(self, x, extra_bodies=None, return_body=False):
        y_body = self._body(x)
        if extra_bodies is not None:
            y_head = self._head(torch.cat((y_body, extra_bodies), dim=0))
        else:
            y_head = self._head(y_body)
        y_head = y_head[: y_body.shape[0]]
        return (y_head, y_body) if return_body else y_head


def ref_discriminator(ndf: int, n_layers: int = 3) -> RefBatchHeadWrapper:
    body = RefNLayerDiscriminator((3, 64, 64), ndf=ndf, n_layers=n_layers)
    ref_apply_sn(body)
    width = ndf * min(2**n_layers, 8)
    return RefBatchHeadWrapper(body, RefBatchHead2d(width, 1, "leakyrelu"))


def test_selfie2anime_discriminator_matches_reference_keys() -> None:
    with torch.device("meta"):
        ref = ref_discriminator(64)
        net = UVCGAN2Discriminator()
    assert n_params(net) == n_params(ref)
    assert shapes(net) == shapes(ref)
    assert net._head.norm.num_features == 512


def test_discriminator_cross_loads_and_matches_with_queued_bodies() -> None:
    torch.manual_seed(0)
    ref = ref_discriminator(8, n_layers=2)
    net = UVCGAN2Discriminator(ndf=8, n_layers=2)
    trained_like(ref, seed=6).train()
    net.load_state_dict(ref.state_dict(), strict=True)
    net.train()
    x, extra = torch.randn(2, 3, 32, 32), torch.randn(3, 32, 7, 7)
    got, body = net(x, extra_bodies=extra, return_body=True)
    expected, ref_body = ref(x, extra_bodies=extra, return_body=True)
    assert got.shape == (2, 1, 7, 7) and body.shape == (2, 32, 7, 7)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(body, ref_body)
    torch.testing.assert_close(net._head.norm.running_mean, ref._head.norm.running_mean)
    # the head's batch norm sees the queue: other queued bodies, other outputs
    assert not torch.allclose(net(x, extra_bodies=extra + 1), got)


def test_discriminator_size_check_and_head_reset() -> None:
    check = UVCGAN2Discriminator.check_image_size
    assert check({}, 256) is None
    assert check({}, 24) is None
    assert "at least 24 px" in check({}, 16)
    net = UVCGAN2Discriminator(ndf=4)
    assert net(torch.randn(1, 3, 24, 24)).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError):  # 16 px: the last instance norm would see a 1x1 map
        net(torch.randn(1, 3, 16, 16))
    init_weights(net, "normal", 0.02)
    assert net._head.net[0].weight.std().item() == pytest.approx(0.02, rel=0.3)
    net.reset_head()  # PyTorch's default: uniform in +-1/sqrt(fan_in)
    bound = 1 / (32 * 9) ** 0.5
    assert net._head.net[0].weight.abs().max() <= bound
    assert net._head.net[0].weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.1)


# -- body queue --------------------------------------------------------------------------------


def test_body_queue_follows_the_reference_fast_queue() -> None:
    ours_q, ref_q = BodyQueue(3), RefFastQueue(3)
    assert ours_q.query() is None and len(ours_q) == 0
    counter = 0
    for n in (1, 1, 2, 5, 1, 3, 2):
        batch = torch.arange(counter, counter + n, dtype=torch.float32)[:, None, None].expand(n, 2, 2)
        counter += n
        ours_q.push(batch.clone().requires_grad_(True))
        ref_q.push(batch)
        assert torch.equal(ours_q.query(), ref_q.query())
        assert not ours_q.query().requires_grad
    restored = BodyQueue(3)
    restored.load_state_dict(ours_q.state_dict())
    restored.push(torch.full((1, 2, 2), -1.0))
    ref_q.push(torch.full((1, 2, 2), -1.0))
    assert torch.equal(restored.query(), ref_q.query()) and len(restored) == 3


# -- gradient penalty --------------------------------------------------------------------------


class RefGradientPenalty:
    """gradient_penalty.py's GradientPenalty(mix_type='real-fake', reduction='mean', gp_reduction='mean')."""

    def __init__(self, center, lambda_gp, seed=0):
        self._center, self._lambda = center, lambda_gp
        self._rng = torch.Generator()
        self._rng.manual_seed(seed)

    def __call__(self, model, fake, real, model_kwargs_fake=None, model_kwargs_real=None):
        alpha = torch.rand(1, generator=self._rng)
        x = alpha * real + (1 - alpha) * fake
        kwargs = {}
        for k in model_kwargs_real or {}:
            a, b = model_kwargs_real[k], model_kwargs_fake[k]
            kwargs[k] = None if a is None else alpha * a + (1 - alpha) * b
        x.requires_grad_(True)
        y = model(x, **kwargs)
        y = y.mean(dim=tuple(range(1, y.dim())))
        (grad,) = torch.autograd.grad(
            outputs=[y], inputs=x, grad_outputs=[torch.ones(y.size())], create_graph=True, retain_graph=True
        )
        result = torch.square(torch.norm(grad.reshape((x.shape[0], -1)), p=2, dim=1) - self._center)
        return (self._lambda * result).mean()


class PixelLinear(nn.Module):
    """A 1x1 conv critic: every output pixel is <w, x_pixel> + b, a [N, 1, H, W] patch map."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.conv = nn.Conv2d(w.numel(), 1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(w.reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def uvcgan2_lsgan(weight: float = 0.01) -> LSGANLoss:
    return LSGANLoss(gradient_penalty=weight, gp_center=0.0, gp_alpha="batch", gp_reduce="mean")


def test_uvcgan2_penalty_by_hand_on_a_linear_patch_critic() -> None:
    w = torch.tensor([1.0, -2.0, 2.0])  # ||w||^2 = 9
    d = PixelLinear(w)
    real, fake = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    # mean over the 25 patches: the input gradient is w / 25 at every pixel, ||grad||^2 = 9 / 25
    assert uvcgan2_lsgan(0.01).penalty(d, real, fake).item() == pytest.approx(0.01 * 9 / 25, rel=1e-5)
    # summed patches (the WGAN-GP reduction) with the zero centre: 25^2 * 9 / 25
    summed = LSGANLoss(gradient_penalty=0.01, gp_center=0.0, gp_alpha="batch", gp_reduce="sum")
    assert summed.penalty(d, real, fake).item() == pytest.approx(0.01 * 25 * 9, rel=1e-5)
    # centre 1 with the mean: (3 / 5 - 1)^2
    centred = LSGANLoss(gradient_penalty=2.0, gp_alpha="batch", gp_reduce="mean")
    assert centred.penalty(d, real, fake).item() == pytest.approx(2.0 * 0.4**2, rel=1e-5)
    # the existing defaults are unchanged: per-sample weights, summed outputs, centre 1
    assert WGANGPLoss(lambda_gp=1.0).penalty(d, real, fake).item() == pytest.approx((15 - 1) ** 2, rel=1e-5)


class Recorder(nn.Module):
    """D(x, extra) = sum(x * extra) per sample; it keeps the input it saw."""

    def forward(self, x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        self.seen = x.detach()
        return (x * extra).flatten(1).sum(1, keepdim=True)


def test_batch_alpha_mixes_the_discriminator_kwargs_with_the_images_weight() -> None:
    real, fake = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    d = Recorder()
    value = gradient_penalty(
        d,
        real,
        fake,
        1.0,
        center=0.0,
        alpha="batch",
        reduce="mean",
        real_kwargs={"extra": torch.ones(1, 2, 4, 4)},
        fake_kwargs={"extra": torch.zeros(1, 2, 4, 4)},
    )
    # the input gradient is the mixed extra, alpha everywhere: ||grad||^2 = 32 alpha^2
    alpha = (value / 32).sqrt()
    assert 0 < alpha.item() < 1
    torch.testing.assert_close(d.seen, alpha * real + (1 - alpha) * fake)
    with pytest.raises(ValueError, match="alpha='batch'"):
        gradient_penalty(d, real, fake, 1.0, real_kwargs={"extra": real}, fake_kwargs={"extra": fake})


def test_uvcgan2_penalty_equals_the_reference_on_its_discriminator_with_queues() -> None:
    torch.manual_seed(0)
    ref = trained_like(ref_discriminator(8, n_layers=2), seed=7).train()
    net = UVCGAN2Discriminator(ndf=8, n_layers=2).train()
    net.load_state_dict(ref.state_dict())
    real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    q_real, q_fake = torch.randn(3, 32, 7, 7), torch.randn(3, 32, 7, 7)
    expected = RefGradientPenalty(center=0, lambda_gp=0.01, seed=11)(
        ref,
        fake,
        real,
        model_kwargs_fake={"extra_bodies": q_fake},
        model_kwargs_real={"extra_bodies": q_real},
    )
    torch.manual_seed(11)  # our weight comes from the default generator: the same first draw
    got = uvcgan2_lsgan(0.01).penalty(
        net, real, fake, real_kwargs={"extra_bodies": q_real}, fake_kwargs={"extra_bodies": q_fake}
    )
    assert got.item() > 0
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)
    got.backward()
    assert net._body.model[0].parametrizations.weight.original.grad.abs().sum() > 0


# -- masking -----------------------------------------------------------------------------------


def ref_patch_mask(image: torch.Tensor, patch: tuple[int, int], fraction: float, rng: torch.Generator):
    """image_masking.py's ImagePatchRandomMasking.forward."""
    n_h, n_w = image.shape[2] // patch[0], image.shape[3] // patch[1]
    mask = torch.rand((image.shape[0], 1, n_h, n_w), generator=rng) > fraction
    mask = mask.repeat_interleave(patch[0], dim=2).repeat_interleave(patch[1], dim=3)
    return mask * image


def test_masking_equals_the_reference_draw_for_draw() -> None:
    images = torch.rand(3, 3, 64, 96)
    expected = ref_patch_mask(images, (32, 32), 0.4, torch.Generator().manual_seed(0))
    masked, mask = mask_patches(images, (32, 32), 0.4, torch.Generator().manual_seed(0))
    assert torch.equal(masked, expected)
    assert mask.dtype == torch.bool and mask.shape == (3, 1, 64, 96)


def test_masking_fraction_patch_layout_and_fill() -> None:
    images = torch.rand(64, 3, 64, 64) * 2 - 1
    masked, mask = mask_patches(images, 8, 0.4, torch.Generator().manual_seed(1), fill=-1.0)
    grid = mask[:, :, ::8, ::8]  # one value per 8x8 patch
    # constant inside each patch, the same for every channel
    assert torch.equal(grid.repeat_interleave(8, 2).repeat_interleave(8, 3), mask)
    hidden = 1 - grid.float().mean().item()
    assert hidden == pytest.approx(0.4, abs=0.03)  # 4096 patches: 3 standard deviations ~ 0.023
    assert torch.equal(masked, torch.where(mask, images, torch.tensor(-1.0)))
    assert (masked[~mask.expand_as(images)] == -1).all()
    none, keep_all = mask_patches(images, 8, 0.0)
    assert keep_all.all() and torch.equal(none, images)
    with pytest.raises(ValueError, match="must divide"):
        mask_patches(images, 24, 0.4)


# -- registry ----------------------------------------------------------------------------------


def test_registered_and_built_from_a_recipe_table() -> None:
    reg = get_registry()
    assert reg.get("generator", "vit-modnet").factory is ViTModNetGenerator
    assert reg.get("discriminator", "uvcgan2").factory is UVCGAN2Discriminator
    g = reg.build(
        "generator",
        {
            "name": "vit-modnet",
            "features": 24,
            "n_heads": 2,
            "n_blocks": 1,
            "ffn_features": 32,
            "embed_features": 8,
            "modnet_features_list": [4, 8],
            "image_size": 16,
        },
    )
    assert g(torch.rand(1, 3, 16, 16) * 2 - 1).shape == (1, 3, 16, 16)
    d = reg.build("discriminator", {"name": "uvcgan2", "ndf": 4, "n_layers": 2})
    assert d(torch.randn(2, 3, 16, 16)).shape == (2, 1, 3, 3)
    loss = reg.build(
        "loss",
        {
            "name": "lsgan",
            "gradient_penalty": 0.01,
            "gp_center": 0.0,
            "gp_alpha": "batch",
            "gp_reduce": "mean",
        },
    )
    assert (loss.gp_center, loss.gp_alpha, loss.gp_reduce) == (0.0, "batch", "mean")
    with pytest.raises(GanforgeError):
        reg.build("loss", {"name": "lsgan", "gp_alpha": "patch"})


# -- the queue on the device, its state, the discriminator's own init ---------------------------


def test_capturable_queue_writes_the_same_ring_as_the_reference() -> None:
    """With the ring position on the device (what a CUDA graph replays) the stored rows are the
    reference's; the count stays right on the host, and a checkpoint of it resumes alike."""
    ours, ref = BodyQueue(3), RefFastQueue(3)
    assert ours.make_capturable() is None
    counter = 0
    for n in (2, 2, 1, 3, 5, 1):
        batch = torch.arange(counter, counter + n, dtype=torch.float32)[:, None].expand(n, 4)
        counter += n
        ours.push(batch)
        ref.push(batch)
        assert torch.equal(ours.query(torch.device("cpu")), ref.query()) and len(ours) == len(ref.query())
    state = ours.state_dict()
    assert state["index"] == ref._curr_idx and state["filled"] == 3
    restored = BodyQueue(3)
    restored.load_state_dict(state)
    restored.make_capturable()
    restored.push(torch.full((2, 4), -1.0))
    ref.push(torch.full((2, 4), -1.0))
    assert torch.equal(restored.query(), ref.query())


def test_queue_state_is_checked_and_starts_empty() -> None:
    q = BodyQueue(4)
    q.push(torch.ones(1, 2))
    state = q.state_dict()
    assert {k: v for k, v in state.items() if k != "queue"} == {"size": 4, "filled": 1, "index": 1}
    assert torch.equal(state["queue"], torch.ones(1, 2))
    assert torch.equal(q._queue[1:], torch.zeros(3, 2))  # unwritten rows are zeros, never garbage
    for bad in (
        {**state, "size": 3},
        {**state, "index": 2},  # a filling ring writes where it stopped filling
        {**state, "filled": 5},
        {**state, "queue": torch.ones(2, 2)},
    ):
        with pytest.raises(ValueError, match="BodyQueue"):
            BodyQueue(4).load_state_dict(bad)
    with pytest.raises(ValueError, match="shape"):
        q.push(torch.ones(1, 3))


def test_discriminator_keeps_the_reference_init_under_init_auto() -> None:
    """Built from a recipe table with the default init = "auto": the body N(0, 0.02) under spectral
    norm (the reference's weight_init then apply_sn), the head at PyTorch's default."""
    torch.manual_seed(0)
    d = get_registry().build("discriminator", {"name": "uvcgan2", "ndf": 32})
    body_conv = d._body.model[2]  # the second conv: 32 -> 64 channels, 4x4
    raw = body_conv.parametrizations.weight.original
    assert raw.std().item() == pytest.approx(0.02, rel=0.05) and body_conv.bias.abs().sum() == 0
    head_conv = d._head.net[0]
    bound = 1 / (256 * 9) ** 0.5
    assert head_conv.weight.abs().max() <= bound
    assert head_conv.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.05)
    assert d._head.norm.weight.eq(1).all()  # BatchNorm2d's default affine: ones and zeros
    normal = get_registry().build("discriminator", {"name": "uvcgan2", "ndf": 32, "init": "normal"})
    assert normal._head.net[0].weight.std().item() == pytest.approx(0.02, rel=0.05)


# -- ganforge convert --from uvcgan2 --------------------------------------------------------------


CONVERT_CASES = {
    "preset-layout": ({}, []),
    "variant": (
        dict(
            n_heads=4,
            modnet_norm="batch",
            modnet_downsample="conv3",
            modnet_upsample="deconv",
            style_bias=False,
            n_ext=2,
        ),
        ["n_heads=4"],
    ),
    "pixel-shuffle-conv": (dict(modnet_upsample="pixel-shuffle-conv", modnet_rezero=True), []),
}


@pytest.mark.parametrize("case", list(CONVERT_CASES), ids=list(CONVERT_CASES))
def test_convert_reads_the_reference_generator_file(case, tmp_path) -> None:
    """A reference ViTModNetGenerator's state dict, as uvcgan2 saves it (net_avg_gen_ab.pth),
    converts to an export whose translation is the reference module's on the same images."""
    from ganforge.model import Model
    from ganforge_plugins.apps.export.convert import convert_file

    variant, sets = CONVERT_CASES[case]
    options = dict(SMALL, modnet_features_list=[8, 16], n_blocks=2, **variant)
    options["features"] = 48 if options["n_heads"] == 6 else 32
    torch.manual_seed(0)
    ref = trained_like(ref_generator(32, **options), seed=9)
    if case == "variant":  # batch norm statistics that are not the defaults
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    file = tmp_path / "net_avg_gen_ab.pth"
    torch.save(ref.state_dict(), file)
    out, card = convert_file(file, "uvcgan2", tmp_path / "g.safetensors", get_registry(), overrides=sets)
    assert card["objective"] == "uvcgan2" and list(card["directions"]) == ["a2b"]
    assert card["image_size"] == 32 and card["networks"]["G_AB"]["component"] == "vit-modnet"
    model = Model.load(out, "cpu")
    assert sum(p.numel() for p in model.networks["G_AB"].parameters()) == n_params(ref)
    x = torch.rand(2, 3, 32, 32) * 2 - 1  # ganforge's range: the export maps it to the reference's
    with torch.no_grad():
        expected = ref((x + 1) / 2) * 2 - 1
    assert expected.std() > 0.01
    torch.testing.assert_close(model.translate(x, "a2b"), expected, atol=1e-5, rtol=1e-5)
    # the reverse generator's file is b2a; a file of another network is refused with its reason
    torch.save(ref.state_dict(), tmp_path / "net_gen_ba.pth")
    _, back = convert_file(
        tmp_path / "net_gen_ba.pth", "uvcgan2", tmp_path / "ba.safetensors", get_registry(), overrides=sets
    )
    assert list(back["directions"]) == ["b2a"] and "G_BA" in back["networks"]


def test_convert_refuses_what_is_not_a_vit_modnet(tmp_path) -> None:
    from ganforge_plugins.apps.export.convert import convert_file

    torch.save(ref_discriminator(8).state_dict(), tmp_path / "net_disc_a.pth")
    with pytest.raises(GanforgeError, match="not a UVCGAN2 ViT-ModNet generator"):
        convert_file(tmp_path / "net_disc_a.pth", "uvcgan2", tmp_path / "d.safetensors", get_registry())
    options = dict(SMALL, modnet_features_list=[8, 16], n_blocks=1)
    torch.save(ref_generator(32, **options).state_dict(), tmp_path / "net_gen_ab.pth")
    with pytest.raises(GanforgeError, match="divisible by n_heads"):  # the heads come from --set
        convert_file(
            tmp_path / "net_gen_ab.pth",
            "uvcgan2",
            tmp_path / "g.safetensors",
            get_registry(),
            overrides=["n_heads=5"],
        )
