"""UVCGAN2 networks (Torbunov et al., "UVCGAN v2", WACV 2023), laid out as the reference code.

Reference: LS4GAN/uvcgan2, commit 871b2b931f0b6c1fa012a3d658e830f3f4c6023c (2025-03-11), files
``uvcgan2/models/generator/vitmodnet.py``, ``uvcgan2/torch/layers/{modnet,unet,cnn,transformer,
batch_head}.py``, ``uvcgan2/torch/select.py``, ``uvcgan2/base/networks.py`` (``NLayerDiscriminator``),
``uvcgan2/torch/queue.py`` (``FastQueue``, registered as the ``queue`` kind's ``fifo``), the
weight init of ``uvcgan2/models/funcs.py`` and the presets ``uvcgan2/presets.py``
(``GEN_PRESETS['uvcgan2']``, ``BH_PRESETS``) that
``scripts/anime2selfie/train_anime2selfie_translation.py`` uses for selfie2anime at 256 px. The
pre-training's masking (``uvcgan2/torch/image_masking.py``) is the objective's:
``ganforge_plugins.objectives.uvcgan2.mask_patches``.

Module names and nesting follow the reference, so its state dicts load strictly:
``ViTModNetGenerator`` is keyed like a ``net_gen_ab.pth`` / ``net_avg_gen_ab.pth`` /
pre-training ``net_encoder.pth`` (``net.layer_input.0.weight``, ``net.modnet.conv...``,
``net.modnet.inner_module...``, the ViT bottleneck at the innermost ``inner_module``), and
``UVCGAN2Discriminator`` like a ``net_disc_a.pth`` (``_body.model.*`` with spectral norm as
``torch.nn.utils.parametrizations``, ``_head.*``).

Departures that do not change a float32 value: attention runs with ``need_weights=False``
(PyTorch then uses its fused kernel; the reference also asks for the averaged weights and drops
them); under autocast the modulated convolutions' demodulation and the generator's output
activation are computed in float32 (the generator then returns float32).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from torch import Tensor, nn

from ganforge import GanforgeError, Range

from .layers import init_weights
from .patchgan import conv_chain_min_size
from .resnet import norm_layer  # both of the reference's get_norm_layer build these same layers
from .sn import spectral_normed

Width = Annotated[int, Range(1, 2**16, why="memory: attention and conv weights grow with the square")]
Depth = Annotated[int, Range(0, 1000, why="time: transformer blocks run one after another")]
Heads = Annotated[int, Range(1, 4096, why="each head needs at least one feature")]
# Tokens are the pixels of the innermost map: attention memory grows with the side's 4th power.
ImageSize = Annotated[int, Range(1, 16384, why="memory: attention over every bottleneck pixel")]
Activ = Literal["gelu", "relu", "leakyrelu", "tanh", "sigmoid", "linear"]
TokenNorm = Literal["layer", "none"]
ConvNorm = Literal["none", "instance", "batch"]
# The reference also lists pixel-unshuffle downsamplings, but its ModNet cannot use them: the skip
# keeps the block's width while the decoder is built for the unshuffled (4x) width.
Downsample = Literal["conv", "conv3", "avgpool", "maxpool"]
Upsample = Literal["upsample-conv", "deconv", "upsample", "pixel-shuffle", "pixel-shuffle-conv"]


# -- select.py ----------------------------------------------------------------------------------


def activation(name: str) -> nn.Module:
    """The reference's ``get_activ_layer``: ReLU and LeakyReLU (slope 0.01) are in place."""
    if name == "linear":
        return nn.Identity()
    if name == "gelu":
        return nn.GELU()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leakyrelu":
        return nn.LeakyReLU(inplace=True)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise GanforgeError(
        f"unknown activation {name!r}; expected gelu, relu, leakyrelu, tanh, sigmoid or linear"
    )


def _token_norm(name: str, features: int) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if name == "layer":
        return nn.LayerNorm((features,))
    raise GanforgeError(f"unknown transformer norm {name!r}; expected layer or none")


# -- cnn.py -------------------------------------------------------------------------------------


def downsample_x2(name: str, features: int) -> tuple[nn.Module, int]:
    """The reference's ``get_downsample_x2_layer``: the layer and its output channels."""
    if name == "conv":
        return nn.Conv2d(features, features, kernel_size=2, stride=2), features
    if name == "conv3":
        return nn.Conv2d(features, features, kernel_size=3, stride=2, padding=1), features
    if name == "avgpool":
        return nn.AvgPool2d(kernel_size=2, stride=2), features
    if name == "maxpool":
        return nn.MaxPool2d(kernel_size=2, stride=2), features
    raise GanforgeError(f"unknown modnet_downsample {name!r}; expected conv, conv3, avgpool or maxpool")


def upsample_x2(name: str, features: int) -> tuple[nn.Module, int]:
    """The reference's ``get_upsample_x2_layer``: the layer and its output channels."""
    if name == "deconv":
        return nn.ConvTranspose2d(features, features, kernel_size=2, stride=2), features
    if name == "upsample":
        return nn.Upsample(scale_factor=2), features
    if name == "upsample-conv":
        up = nn.Sequential(
            nn.Upsample(scale_factor=2), nn.Conv2d(features, features, kernel_size=3, padding=1)
        )
        return up, features
    if name == "pixel-shuffle":
        return nn.PixelShuffle(upscale_factor=2), features // 4
    if name == "pixel-shuffle-conv":
        out = features // 4
        return nn.Sequential(nn.PixelShuffle(2), nn.Conv2d(out, out, kernel_size=3, padding=1)), out
    raise GanforgeError(f"unknown modnet_upsample {name!r}")


# -- unet.py (the encoder half) -----------------------------------------------------------------


class UnetBasicBlock(nn.Module):
    """norm, conv3, activ, norm, conv3, activ (``block.1`` and ``block.4`` are the convs)."""

    def __init__(
        self, in_features: int, out_features: int, activ: str, norm: str, mid_features: int | None = None
    ):
        super().__init__()
        mid = out_features if mid_features is None else mid_features
        self.block = nn.Sequential(
            norm_layer(norm, in_features),
            nn.Conv2d(in_features, mid, kernel_size=3, padding=1),
            activation(activ),
            norm_layer(norm, mid),
            nn.Conv2d(mid, out_features, kernel_size=3, padding=1),
            activation(activ),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class UNetEncBlock(nn.Module):
    """A basic block, then the x2 downsampling; returns ``(downsampled, skip)``."""

    def __init__(
        self, features: int, activ: str, norm: str, downsample: str, input_shape: tuple[int, int, int]
    ):
        super().__init__()
        self.downsample, out_features = downsample_x2(downsample, features)
        c, h, w = input_shape
        self.block = UnetBasicBlock(c, features, activ, norm)
        self.output_shape = (out_features, h // 2, w // 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r = self.block(x)
        return self.downsample(r), r


# -- modnet.py ----------------------------------------------------------------------------------


def demod_scale(mod_scale: Tensor, weight: Tensor, eps: float = 1e-6) -> Tensor:
    """StyleGAN2's demodulation ``1 / sqrt(sum_{in,k} (s_in * w_out,in,k)^2 + eps)``: ``[N, C_out]``.

    Float32 whatever the autocast dtype: the sum runs over ``C_in * k * k`` squares.
    """
    w_sq = weight.float().square().sum(dim=(2, 3)).t().unsqueeze(0)  # [1, C_in, C_out]
    sigma_sq = (mod_scale.float().square().unsqueeze(2) * w_sq).sum(dim=1)
    return torch.rsqrt(sigma_sq + eps)


class ModulatedConv2d(nn.Module):
    """Conv of ``x * s`` (per image and input channel), then times the demodulation scale."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, demod: bool = True
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self._demod = demod

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        y = self.conv(x * s[:, :, None, None].to(x.dtype))
        if not self._demod:
            return y
        return y * demod_scale(s, self.conv.weight)[:, :, None, None].to(y.dtype)


class StyleBlock(nn.Module):
    """``s = 1 + re_alpha * affine_mod(mod)``: the per-channel scale of a modulated conv."""

    def __init__(self, mod_features: int, style_features: int, rezero: bool = True, bias: bool = True):
        super().__init__()
        self.affine_mod = nn.Linear(mod_features, style_features, bias=bias)
        if rezero:
            self.re_alpha = nn.Parameter(torch.zeros((1,)))
        else:
            self.re_alpha = 1

    def forward(self, mod: Tensor) -> Tensor:
        return 1 + self.re_alpha * self.affine_mod(mod)


class ModNetBasicBlock(nn.Module):
    """Two (style, modulated conv3, activ) stages driven by the same style vector."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activ: str,
        mod_features: int,
        mid_features: int | None = None,
        demod: bool = True,
        style_rezero: bool = True,
        style_bias: bool = True,
    ):
        super().__init__()
        mid = out_features if mid_features is None else mid_features
        self.style_block1 = StyleBlock(mod_features, in_features, style_rezero, style_bias)
        self.conv_block1 = ModulatedConv2d(in_features, mid, kernel_size=3, padding=1, demod=demod)
        self.activ1 = activation(activ)
        self.style_block2 = StyleBlock(mod_features, mid, style_rezero, style_bias)
        self.conv_block2 = ModulatedConv2d(mid, out_features, kernel_size=3, padding=1, demod=demod)
        self.activ2 = activation(activ)

    def forward(self, x: Tensor, mod: Tensor) -> Tensor:
        y = self.activ1(self.conv_block1(x, self.style_block1(mod)))
        return self.activ2(self.conv_block2(y, self.style_block2(mod)))


class ModNetDecBlock(nn.Module):
    """Upsample the inner output (times ``re_alpha``), concatenate the skip, modulated block."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        output_features: int,
        skip_features: int,
        mod_features: int,
        activ: str,
        upsample: str,
        rezero: bool = True,
        demod: bool = True,
        style_rezero: bool = True,
        style_bias: bool = True,
    ):
        super().__init__()
        in_features, h, w = input_shape
        self.upsample, up_features = upsample_x2(upsample, in_features)
        self.block = ModNetBasicBlock(
            skip_features + up_features,
            output_features,
            activ,
            mod_features=mod_features,
            mid_features=max(up_features, in_features),
            demod=demod,
            style_rezero=style_rezero,
            style_bias=style_bias,
        )
        self.output_shape = (output_features, 2 * h, 2 * w)
        if rezero:
            self.re_alpha = nn.Parameter(torch.zeros((1,)))
        else:
            self.re_alpha = 1

    def forward(self, x: Tensor, r: Tensor, mod: Tensor) -> Tensor:
        x = self.re_alpha * self.upsample(x)
        return self.block(torch.cat([x, r], dim=1), mod)


class ModNetBlock(nn.Module):
    """One U-Net level: encoder block, the inner module (next level or the ViT), modulated decoder.

    ``inner_module`` is registered after ``conv`` and ``deconv``, as the reference's
    ``set_inner_module`` does, so state-dict keys come in the reference's order.
    """

    def __init__(
        self,
        features: int,
        activ: str,
        norm: str,
        image_shape: tuple[int, int, int],
        downsample: str,
        upsample: str,
        mod_features: int,
        rezero: bool = True,
        demod: bool = True,
        style_rezero: bool = True,
        style_bias: bool = True,
    ):
        super().__init__()
        self.conv = UNetEncBlock(features, activ, norm, downsample, image_shape)
        self.inner_shape = self.conv.output_shape
        self.deconv = ModNetDecBlock(
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

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, r = self.conv(x)
        y, mod = self.inner_module(y)
        return self.deconv(y, r, mod), mod


class ModNet(nn.Module):
    """The U-Net with modulated decoder: ``layer_input``, nested ``modnet`` levels, ``layer_output``."""

    def __init__(
        self,
        features_list: list[int],
        activ: str,
        norm: str,
        image_shape: tuple[int, int, int],
        downsample: str,
        upsample: str,
        mod_features: int,
        rezero: bool = True,
        demod: bool = True,
        style_rezero: bool = True,
        style_bias: bool = True,
    ):
        super().__init__()
        self.layer_input = nn.Sequential(
            nn.Conv2d(image_shape[0], features_list[0], kernel_size=3, padding=1), activation(activ)
        )
        self.layer_output = nn.Conv2d(features_list[0], image_shape[0], kernel_size=1)
        levels = []
        shape = (features_list[0], *image_shape[1:])
        for features in features_list:
            level = ModNetBlock(
                features,
                activ,
                norm,
                shape,
                downsample,
                upsample,
                mod_features,
                rezero,
                demod,
                style_rezero,
                style_bias,
            )
            shape = level.inner_shape
            levels.append(level)
        for outer, inner in zip(levels[:-1], levels[1:], strict=True):
            outer.inner_module = inner
        self.modnet = levels[0]
        self._innermost = [levels[-1]]  # a list: not a second registration of the module

    def inner_shape(self) -> tuple[int, int, int]:
        return self._innermost[0].inner_shape

    def set_bottleneck(self, module: nn.Module) -> None:
        self._innermost[0].inner_module = module

    def forward(self, x: Tensor) -> Tensor:
        y, _mod = self.modnet(self.layer_input(x))
        return self.layer_output(y)


# -- transformer.py -----------------------------------------------------------------------------


class PositionWiseFFN(nn.Module):
    def __init__(self, features: int, ffn_features: int, activ: str = "gelu"):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, ffn_features), activation(activ), nn.Linear(ffn_features, features)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    """Pre-norm block (self-attention, then FFN), each residual scaled by ``re_alpha`` (ReZero)."""

    def __init__(
        self,
        features: int,
        ffn_features: int,
        n_heads: int,
        activ: str = "gelu",
        norm: str = "none",
        rezero: bool = True,
    ):
        super().__init__()
        self.norm1 = _token_norm(norm, features)
        self.atten = nn.MultiheadAttention(features, n_heads)
        self.norm2 = _token_norm(norm, features)
        self.ffn = PositionWiseFFN(features, ffn_features, activ)
        if rezero:
            self.re_alpha = nn.Parameter(torch.zeros((1,)))
        else:
            self.re_alpha = 1

    def forward(self, x: Tensor) -> Tensor:
        # x: (L, N, features), the reference's sequence-first layout
        y1 = self.norm1(x)
        y1, _ = self.atten(y1, y1, y1, need_weights=False)
        y = x + self.re_alpha * y1
        return y + self.re_alpha * self.ffn(self.norm2(y))


class TransformerEncoder(nn.Module):
    def __init__(
        self,
        features: int,
        ffn_features: int,
        n_heads: int,
        n_blocks: int,
        activ: str,
        norm: str,
        rezero: bool = True,
    ):
        super().__init__()
        self.encoder = nn.Sequential(
            *[TransformerBlock(features, ffn_features, n_heads, activ, norm, rezero) for _ in range(n_blocks)]
        )

    def forward(self, x: Tensor) -> Tensor:
        # (N, L, features) -> (L, N, features) and back
        return self.encoder(x.permute(1, 0, 2)).permute(1, 0, 2)


class FourierEmbedding(nn.Module):
    """``sin(projector([x, y]))`` of coordinates scaled to [-1, 1] (arXiv:2011.13775)."""

    def __init__(self, features: int, height: int, width: int):
        super().__init__()
        self.projector = nn.Linear(2, features)
        self._height = height
        self._width = width

    def forward(self, y: Tensor, x: Tensor) -> Tensor:
        # max(.., 1): a 1-pixel side would divide by zero (the reference gives NaN there)
        x_norm = 2 * x / max(self._width - 1, 1) - 1
        y_norm = 2 * y / max(self._height - 1, 1) - 1
        return torch.sin(self.projector(torch.stack((x_norm, y_norm), dim=2)))


class ViTInput(nn.Module):
    """Token features concatenated with a Fourier embedding of their position, then a linear map.

    The coordinate buffers come from ``torch.meshgrid(arange(width), arange(height))`` with
    "ij" indexing, flattened: as in the reference, for square maps the "x" of token ``k`` is its
    row ``k // W`` and "y" its column (the embedding is learnt, so only the layout matters).
    """

    def __init__(self, input_features: int, embed_features: int, features: int, height: int, width: int):
        super().__init__()
        x, y = torch.meshgrid(
            torch.arange(width).to(torch.float32), torch.arange(height).to(torch.float32), indexing="ij"
        )
        self.register_buffer("x_const", x.reshape((1, -1)))
        self.register_buffer("y_const", y.reshape((1, -1)))
        self.embed = FourierEmbedding(embed_features, height, width)
        self.output = nn.Linear(embed_features + input_features, features)

    def forward(self, x: Tensor) -> Tensor:
        embed = self.embed(self.y_const, self.x_const).expand(x.shape[0], -1, -1)
        return self.output(torch.cat([embed.to(x.dtype), x], dim=2))


class ExtendedPixelwiseViT(nn.Module):
    """The bottleneck: one token per pixel plus ``n_ext`` learnt tokens; returns ``(image, style)``.

    The extra tokens' outputs, flattened to ``[N, n_ext * features]``, are the style vector that
    modulates every decoder level.
    """

    def __init__(
        self,
        features: int,
        n_heads: int,
        n_blocks: int,
        ffn_features: int,
        embed_features: int,
        activ: str,
        norm: str,
        image_shape: tuple[int, int, int],
        rezero: bool = True,
        n_ext: int = 1,
    ):
        super().__init__()
        self.trans_input = ViTInput(image_shape[0], embed_features, features, image_shape[1], image_shape[2])
        self.encoder = TransformerEncoder(features, ffn_features, n_heads, n_blocks, activ, norm, rezero)
        self.extra_tokens = nn.Parameter(torch.empty((1, n_ext, features)))
        nn.init.normal_(self.extra_tokens)
        self.trans_output = nn.Linear(features, image_shape[0])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n, c, h, w = x.shape
        tokens = x.reshape(n, c, h * w).permute(0, 2, 1)  # (N, L, C)
        y = self.trans_input(tokens)
        extra = self.extra_tokens.expand(n, -1, -1).to(y.dtype)
        y = self.encoder(torch.cat([y, extra], dim=1))
        out = self.trans_output(y[:, : h * w, :]).permute(0, 2, 1).reshape(n, -1, h, w)
        return out, y[:, h * w :, :].reshape(n, -1)


# -- vitmodnet.py -------------------------------------------------------------------------------


class ViTModNetGenerator(nn.Module):
    """UVCGAN2's ViT-ModNet generator: U-Net, pixel-wise ViT bottleneck, style-modulated decoder.

    The decoder's convolutions are modulated (StyleGAN2-style, demodulated) by a style vector:
    the output of the ViT's extra token.

    Defaults are the reference's ``uvcgan2`` preset (selfie2anime at 256 px; 32,192,231 parameters):
    a 3x3 input conv to 48 channels, four levels (48, 96, 192, 384; two conv3 then a 2x2 stride-2
    conv each), 12 pre-LayerNorm transformer blocks (384 features, 6 heads, FFN 1536, ReZero)
    over the 16x16 bottleneck pixels plus one extra token, a decoder of nearest x2 upsampling,
    conv3, skip concatenation and two modulated conv3 per level, a 1x1 output conv and a sigmoid.

    The reference's images are in [0, 1] (``ToTensor``, sigmoid output). With
    ``io_range="minus_one_one"`` (the default, ganforge's range) inputs are mapped to [0, 1]
    before the network and outputs back to [-1, 1]; ``"zero_one"`` is the reference as it is.
    The network is built for one image size: its position embedding and token grid are sized
    for ``image_size`` (``check_image_size`` refuses others).
    """

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Exactly ``image_size``: the ViT's position buffers are built for it."""
        own = options.get("image_size", 256)
        if size != own:
            return f"its ViT bottleneck is built for {own} px images; set generator.image_size={size}"
        return None

    def __init__(
        self,
        features: Width = 384,
        n_heads: Heads = 6,
        n_blocks: Depth = 12,
        ffn_features: Width = 1536,
        embed_features: Width = 384,
        activ: Activ = "gelu",
        norm: TokenNorm = "layer",
        modnet_features_list: list[Width] = [48, 96, 192, 384],  # noqa: B006 (options are read, never mutated)
        modnet_activ: Activ = "leakyrelu",
        modnet_norm: ConvNorm = "none",
        modnet_downsample: Downsample = "conv",
        modnet_upsample: Upsample = "upsample-conv",
        modnet_rezero: bool = False,
        modnet_demod: bool = True,
        rezero: bool = True,
        activ_output: Activ = "sigmoid",
        style_rezero: bool = True,
        style_bias: bool = True,
        n_ext: Annotated[int, Range(1, 4096, why="memory: the style vector is n_ext * features wide")] = 1,
        image_size: ImageSize = 256,
        channels: Width = 3,
        io_range: Literal["minus_one_one", "zero_one"] = "minus_one_one",
    ) -> None:
        super().__init__()
        if not modnet_features_list:
            raise GanforgeError("vit-modnet: modnet_features_list must name at least one level")
        if features % n_heads:
            raise GanforgeError(f"vit-modnet: features ({features}) must be divisible by n_heads ({n_heads})")
        depth = len(modnet_features_list)
        if image_size % 2**depth:
            raise GanforgeError(
                f"vit-modnet: image_size must be a multiple of {2**depth} "
                f"({depth} halvings), got {image_size}"
            )
        if io_range not in ("minus_one_one", "zero_one"):
            raise GanforgeError(
                f"vit-modnet: io_range must be 'minus_one_one' or 'zero_one', got {io_range!r}"
            )
        self.image_size = image_size
        self.size_multiple = 2**depth
        self.io_range = io_range
        self.image_shape = (channels, image_size, image_size)
        self.net = ModNet(
            modnet_features_list,
            modnet_activ,
            modnet_norm,
            self.image_shape,
            modnet_downsample,
            modnet_upsample,
            features * n_ext,
            modnet_rezero,
            modnet_demod,
            style_rezero,
            style_bias,
        )
        bottleneck = ExtendedPixelwiseViT(
            features,
            n_heads,
            n_blocks,
            ffn_features,
            embed_features,
            activ,
            norm,
            image_shape=self.net.inner_shape(),
            rezero=rezero,
            n_ext=n_ext,
        )
        self.net.set_bottleneck(bottleneck)
        self.output = activation(activ_output)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != self.image_shape[1:]:
            raise GanforgeError(
                f"vit-modnet: input is {x.shape[-2]}x{x.shape[-1]} but the generator is built for "
                f"image_size={self.image_size}"
            )
        # The output activation and range mapping run in float32: under bf16 autocast a sigmoid
        # near 0.5 has steps of 1/256, a level of an 8-bit image once mapped to [-1, 1].
        if self.io_range == "minus_one_one":
            return self.output(self.net((x + 1) * 0.5).float()) * 2 - 1
        return self.output(self.net(x).float())


# -- the discriminator: base/networks.py NLayerDiscriminator + torch/layers/batch_head.py ---------


class NLayerBody(nn.Module):
    """The reference's ``NLayerDiscriminator`` with ``shrink_output=False``: PatchGAN features.

    ``basic`` is ``n_layers=3``: three k4 s2 convs and a k4 s1 conv to ``ndf * min(2**n_layers,
    max_mult)`` channels (each but the first followed by the norm and LeakyReLU(0.2)); no final
    1-channel conv: a 256 px image gives a ``[N, 512, 31, 31]`` map for the batch head.
    """

    def __init__(self, in_channels: int, ndf: int, n_layers: int, norm: str, max_mult: int):
        super().__init__()
        use_bias = norm == "instance"  # the reference's rule (True with instance norm only)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, max_mult)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=2, padding=1, bias=use_bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, max_mult)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=1, padding=1, bias=use_bias),
            norm_layer(norm, ndf * mult),
            nn.LeakyReLU(0.2, True),
        ]
        self.model = nn.Sequential(*layers)
        self.out_features = ndf * mult

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class BatchHead2d(nn.Module):
    """``batch-norm-2d`` head: BatchNorm2d over the batch and the queued bodies, conv3, activ, conv3."""

    def __init__(
        self, input_features: int, mid_features: int, output_features: int = 1, activ: str = "leakyrelu"
    ):
        super().__init__()
        self.norm = nn.BatchNorm2d(input_features)
        self.net = nn.Sequential(
            nn.Conv2d(input_features, mid_features, kernel_size=3, padding=1),
            activation(activ),
            nn.Conv2d(mid_features, output_features, kernel_size=3, padding=1),
            nn.Identity(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.norm(x))


class BatchStdev(nn.Module):
    """Minibatch standard deviation (arXiv:1710.10196) appended as one more channel."""

    def forward(self, x: Tensor) -> Tensor:
        stdev = torch.sqrt(torch.var(x, dim=0, unbiased=False, keepdim=True) + 1e-6)
        norm = stdev.mean(dim=(1, 2, 3), keepdim=True).expand(x.shape[0], 1, *x.shape[2:])
        return torch.cat((x, norm), dim=1)


class BatchStdevHead(nn.Module):
    """``batch-stdev`` head: minibatch stdev channel, conv3, activ, conv3."""

    def __init__(
        self, input_features: int, mid_features: int, output_features: int = 1, activ: str = "leakyrelu"
    ):
        super().__init__()
        self.net = nn.Sequential(
            BatchStdev(),
            nn.Conv2d(input_features + 1, mid_features, kernel_size=3, padding=1),
            activation(activ),
            nn.Conv2d(mid_features, output_features, kernel_size=3, padding=1),
            nn.Identity(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class UVCGAN2Discriminator(nn.Module):
    """UVCGAN2's discriminator: a PatchGAN body (spectral norm) and a batch head over body queues.

    The reference's selfie2anime setting (``basic`` with ``shrink_output=False``, ``spectr_norm``,
    head ``batch-norm-2d`` with 512 input, 512 mid and 1 output channels and LeakyReLU): a 256 px
    image gives ``[N, 1, 31, 31]`` logits. The head sees the batch's body outputs together with
    ``extra_bodies`` (``forward(x, extra_bodies=queue.query())``: earlier batches' bodies kept in a
    ``BodyQueue``), so its BatchNorm statistics span them; only the batch's own rows come back.
    ``return_body=True`` also returns the batch's body output, to push onto the queue.

    Spectral norm covers the body only, as in the reference, and so does its initialisation: the
    body's convs are drawn from N(0, 0.02) (biases zero) before spectral norm is registered, and
    the head keeps PyTorch's default. The network declares ``own_init``, so the discriminator
    table's ``init = "auto"`` (the default) keeps exactly that; another ``init`` reaches every
    conv, and ``reset_head()`` then puts the head back to PyTorch's default.
    """

    own_init = True  # body N(0, 0.02) as the reference's weight_init, head at PyTorch's default

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Big enough that every norm, and the head's batch norm, sees maps of at least 2x2."""
        n = options.get("n_layers", 3)
        m = 1 if options.get("norm", "instance") == "none" else 2
        convs = [(4, 2, 1, 1 if i == 0 else m, 0) for i in range(n)] + [(4, 1, 1, 2, 0)]
        need = conv_chain_min_size(convs)
        if need is None or size < need:
            return (
                f"with n_layers={n} it needs images of at least {need or 2**24} px (got {size}); "
                "use fewer n_layers"
            )
        return None

    def __init__(
        self,
        in_channels: Width = 3,
        ndf: Width = 64,
        n_layers: Annotated[int, Range(1, 30, why="each layer halves the image")] = 3,
        norm: Literal["instance", "batch", "none"] = "instance",
        max_mult: Annotated[int, Range(1, 2**16, why="memory: the body is ndf * max_mult wide")] = 8,
        spectral_norm: bool = True,
        head: Literal["batch-norm-2d", "batch-stdev"] = "batch-norm-2d",
        head_activ: Activ = "leakyrelu",
    ) -> None:
        super().__init__()
        body = NLayerBody(in_channels, ndf, n_layers, norm, max_mult)
        # The reference's default_model_init: weight_init normal 0.02 on the body, then spectral
        # norm (whose first power iterations then see the initialised weights).
        init_weights(body, "normal", 0.02)
        spectral_normed(list(body.model), spectral_norm)  # registers the parametrizations in place
        self._body = body
        width = body.out_features
        if head == "batch-norm-2d":
            self._head: nn.Module = BatchHead2d(width, width, 1, head_activ)
        elif head == "batch-stdev":
            self._head = BatchStdevHead(width, width, 1, head_activ)
        else:
            raise GanforgeError(
                f"uvcgan2 discriminator: unknown head {head!r}; expected batch-norm-2d or batch-stdev"
            )

    def reset_head(self) -> None:
        """PyTorch's default initialisation for the head (what the reference trains from)."""
        for m in self._head.modules():
            if m is not self._head and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(
        self, x: Tensor, extra_bodies: Tensor | None = None, return_body: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        body = self._body(x)
        if extra_bodies is not None:
            out = self._head(torch.cat((body, extra_bodies.to(body.dtype)), dim=0))
        else:
            out = self._head(body)
        out = out[: body.shape[0]]
        return (out, body) if return_body else out


# -- torch/queue.py -----------------------------------------------------------------------------

QueueSize = Annotated[
    int, Range(1, 10_000, why="memory: the queue keeps that many body outputs on the device")
]


class BodyQueue:
    """The reference's ``FastQueue``: a ring of the last ``size`` body outputs (samples, not batches).

    ``push(x)`` stores ``x`` detached (only its last ``size`` samples if it is bigger) in a
    zero-filled ``[size, ...]`` buffer; ``query(device)`` is ``None`` before the first push, then
    the stored samples: the whole ring, in ring order, once full, the first ``len`` rows before.
    ``len(queue)`` is how many samples are stored: the pushes' batch sizes decide it, so the host
    knows it without waiting for the device.

    After ``make_capturable()`` the ring position lives on the device and a push is one
    ``index_copy_``, so a step whose queue is full can be replayed in a CUDA graph. While the
    queue fills, the queried shape grows: an objective names ``len(queue)`` in its
    ``step_variant``, so those first steps run eagerly and only a full queue is captured.
    ``state_dict()`` holds the stored rows, the ring position and the count (a checkpoint reads
    the device position back, once).
    """

    def __init__(self, size: QueueSize = 3) -> None:
        if size < 1:
            raise ValueError(f"BodyQueue: size must be >= 1, got {size}")
        self.size = size
        self._queue: Tensor | None = None
        self._index = 0  # the next row to write, on the host (until a device position takes over)
        self._filled = 0
        self._device_index: Tensor | None = None  # the next row, on the device (capturable mode)
        self._capturable = False

    def __len__(self) -> int:
        return self._filled

    def make_capturable(self) -> str | None:
        """Keep the ring position on the device: pushes then never need the host."""
        self._capturable = True
        return None

    def _storage(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape[1:])
        if self._queue is None:
            self._queue = torch.zeros((self.size, *shape), dtype=x.dtype, device=x.device)
        elif tuple(self._queue.shape[1:]) != shape:
            raise ValueError(
                f"BodyQueue: stored samples have shape {tuple(self._queue.shape[1:])}, got {shape}"
            )
        elif self._queue.device != x.device:  # restored from a checkpoint onto another device
            self._queue = self._queue.to(x.device)
        return self._queue

    def push(self, x: Tensor) -> None:
        x = x.detach()
        n = x.shape[0]
        if n > self.size:
            x, n = x[-self.size :], self.size
        if n == 0:
            return
        queue = self._storage(x)
        x = x.to(queue.dtype)
        if self._capturable:
            if self._device_index is None or self._device_index.device != x.device:
                self._device_index = torch.tensor(self._index, dtype=torch.int64, device=x.device)
            rows = (self._device_index + torch.arange(n, device=x.device)) % self.size
            queue.index_copy_(0, rows, x)
            self._device_index.copy_((self._device_index + n) % self.size)
        else:
            end = self._index + n
            if end <= self.size:
                queue[self._index : end] = x
            else:  # wraps around: the reference writes to the end, then from the start
                k = self.size - self._index
                queue[self._index :] = x[:k]
                queue[: end - self.size] = x[k:]
            self._index = end % self.size
        self._filled = min(self._filled + n, self.size)

    def query(self, device: torch.device | None = None) -> Tensor | None:
        """The stored samples (on ``device`` when given), or ``None`` while empty."""
        if self._queue is None or self._filled == 0:
            return None
        if device is not None and self._queue.device != device:
            self._queue = self._queue.to(device)
        return self._queue if self._filled == self.size else self._queue[: self._filled]

    def state_dict(self) -> dict[str, Any]:
        index = int(self._device_index) if self._device_index is not None else self._index
        state: dict[str, Any] = {"size": self.size, "filled": self._filled, "index": index}
        if self._queue is not None and self._filled:
            # A copy, so a checkpoint being written is not changed by later pushes.
            state["queue"] = self._queue[: self._filled].clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"BodyQueue: saved size {state['size']} != {self.size}")
        filled, index = int(state["filled"]), int(state["index"])
        if not (0 <= filled <= self.size and 0 <= index < self.size) or (
            filled < self.size and index != filled
        ):
            raise ValueError(
                f"BodyQueue: saved count {filled} and position {index} do not fit size {self.size}"
            )
        queue = state.get("queue")
        if filled and (not isinstance(queue, Tensor) or queue.dim() < 1 or queue.shape[0] != filled):
            raise ValueError(f"BodyQueue: the state should hold {filled} stored samples")
        self._queue = None
        if filled:
            self._queue = torch.zeros((self.size, *queue.shape[1:]), dtype=queue.dtype, device=queue.device)
            self._queue[:filled].copy_(queue)
        self._filled, self._index, self._device_index = filled, index, None
