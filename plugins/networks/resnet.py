"""CycleGAN's ResNet generator, laid out exactly as the official pytorch-CycleGAN-and-pix2pix.

The module tree (``model.<i>`` and ``model.<i>.conv_block.<j>``) matches the official
``ResnetGenerator``, so with ``norm="instance"`` an official ``latest_net_G.pth`` loads with
``load_state_dict`` unchanged. With ``antialias=True`` the tree matches CUT's ResnetGenerator
(taesungp/contrastive-unpaired-translation, its default anti-aliased sampling), blur filters
included, so a CUT ``latest_net_G.pth`` loads too.
"""

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganforge import GanforgeError, Range

from .layers import InstanceNorm2d

Norm = Literal["instance", "batch", "none"]
Upsample = Literal["transpose", "pixelshuffle", "nearest", "bilinear"]
_UPSAMPLE_MODES = ("transpose", "pixelshuffle", "nearest", "bilinear")
# A layer 2**20 channels wide holds at least 2**40 weights (4 TB): more than any device.
Width = Annotated[int, Range(1, 2**20, why="memory: a layer that wide exceeds any device")]
Blocks = Annotated[int, Range(0, 1000, why="time: blocks are built and run one after another")]


def resnet_size_problem(size: int, blocks: int = 1, antialias: bool = False) -> str | None:
    """Why a ResNet-style encoder (7x7 reflect pad, two stride-2 halvings, reflect-padded
    residual blocks) cannot take ``size`` px sides, or None."""
    # After the two halvings the map must be 2x2: the norm after a strided conv and the residual
    # blocks' ReflectionPad2d(1) need more than one pixel. Blur-pooling normalises before it
    # halves, so without blocks 1x1 is enough there.
    need = 4 if antialias and blocks == 0 else 8
    if size % 4 or size < need:
        return (
            f"image sides must be multiples of 4 (two stride-2 halvings) and at least {need} px, got {size}"
        )
    return None


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The official norm choices: instance (no affine, no running stats), batch (affine) or none."""
    if norm == "instance":
        return InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "none":
        return nn.Identity()
    raise GanforgeError(f"unknown norm {norm!r}; expected 'instance', 'batch' or 'none'")


def conv_bias(norm: str) -> bool:
    """Whether convs before a norm layer carry a bias.

    Official rule: a bias with InstanceNorm (it has no affine shift), none before BatchNorm (its
    shift makes a bias redundant). With no norm at all a bias is needed.
    """
    return norm in ("instance", "none")


def _binomial_filter(size: int) -> torch.Tensor:
    """Normalised 2-D binomial filter: the outer product of a row of Pascal's triangle."""
    row = torch.tensor([float(math.comb(size - 1, k)) for k in range(size)])
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 downsampling (CUT's ``Downsample``): reflect-pad, [1,2,1]^2 blur, stride 2.

    A fixed depthwise filter stored as the buffer ``filt`` (as in CUT, so its checkpoints load).
    Halves even sides exactly; odd sides give ``ceil(side / 2)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("filt", _binomial_filter(3)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReflectionPad2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt.to(x.dtype), stride=2, groups=self.channels)


class BlurUpsample(nn.Module):
    """Anti-aliased x2 upsampling (CUT's ``Upsample``): a transposed [1,3,3,1]^2 blur with stride 2.

    Replicate-pads by one pixel, applies the blur (scaled by 4 so a constant image stays
    constant) as a stride-2 depthwise transposed conv, then crops to exactly twice the size. The
    filter is the buffer ``filt``, as in CUT.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("filt", (_binomial_filter(4) * 4)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReplicationPad2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(self.pad(x), self.filt.to(x.dtype), stride=2, padding=2, groups=self.channels)
        # (2H + 2) rows out; CUT drops the first and the last to land on 2H.
        return y[:, :, 1:-1, 1:-1]


class ResnetBlock(nn.Module):
    """Residual block: reflect-pad, conv3, norm, ReLU, [dropout 0.5], reflect-pad, conv3, norm."""

    def __init__(self, dim: int, norm: str, dropout: bool, use_bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(norm, dim),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(norm, dim),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator (c7s1-ngf, 2 downsamples, residual blocks, 2 upsamples, tanh).

    Images in, images of the same height and width out (both must be divisible by
    ``size_multiple``, 4), values in [-1, 1]. ``blocks=9`` at ``ngf=64`` is the official
    ``resnet_9blocks`` (11,378,179 parameters).

    ``upsample`` picks how each of the two upsamplings is done (all avoid the transposed conv's
    checkerboard artefacts except ``transpose``):

    - ``transpose``: the official 3x3 stride-2 ``ConvTranspose2d``;
    - ``pixelshuffle``: a 3x3 conv to twice the channels, then ``PixelShuffle(2)``;
    - ``nearest`` / ``bilinear``: resize-convolution, an x2 ``Upsample`` then a 3x3 conv.

    ``antialias=True`` is CUT's anti-aliased sampling: each downsampling becomes a stride-1 conv,
    norm, ReLU and a blur-pool (``BlurDownsample``), and with ``upsample="transpose"`` each
    transposed conv becomes a blurred upsample (``BlurUpsample``) then a 3x3 conv. The other
    upsample modes keep their own upsampling. ``antialias=True, upsample="transpose"`` is CUT's
    default generator, layer for layer.

    ``features(x, layers)`` returns intermediate activations for CUT's PatchNCE loss and
    ``feature_channels(layers)`` their widths.
    """

    size_multiple = 4  # two stride-2 downsamplings: input sides must be multiples of 4

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Why ``size`` px square images cannot go through this generator, or None."""
        return resnet_size_problem(size, options.get("blocks", 9), options.get("antialias", False))

    def __init__(
        self,
        in_channels: Width = 3,
        out_channels: Width = 3,
        ngf: Width = 64,
        blocks: Blocks = 9,
        norm: Norm = "instance",
        dropout: bool = False,
        upsample: Upsample = "transpose",
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, ngf) < 1 or blocks < 0:
            raise GanforgeError(
                f"resnet generator: channels and ngf must be >= 1 and blocks >= 0, got "
                f"in_channels={in_channels}, out_channels={out_channels}, ngf={ngf}, blocks={blocks}"
            )
        if upsample not in _UPSAMPLE_MODES:
            raise ValueError(
                f"unknown upsample {upsample!r}; expected one of {', '.join(map(repr, _UPSAMPLE_MODES))}"
            )
        self.in_channels = in_channels
        self.size_multiple = 2**2  # two stride-2 downsamplings
        use_bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            ch = ngf * 2**i
            if antialias:
                # Blur before subsampling instead of a strided conv (CUT's layout).
                layers += [
                    nn.Conv2d(ch, ch * 2, kernel_size=3, stride=1, padding=1, bias=use_bias),
                    norm_layer(norm, ch * 2),
                    nn.ReLU(True),
                    BlurDownsample(ch * 2),
                ]
            else:
                layers += [
                    nn.Conv2d(ch, ch * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                    norm_layer(norm, ch * 2),
                    nn.ReLU(True),
                ]
        layers += [ResnetBlock(ngf * 4, norm, dropout, use_bias) for _ in range(blocks)]
        for i in range(2):
            ch = ngf * 2 ** (2 - i)
            if upsample == "transpose" and antialias:
                layers += [
                    BlurUpsample(ch),
                    nn.Conv2d(ch, ch // 2, kernel_size=3, stride=1, padding=1, bias=use_bias),
                ]
            elif upsample == "transpose":
                layers.append(
                    nn.ConvTranspose2d(
                        ch, ch // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=use_bias
                    )
                )
            elif upsample == "pixelshuffle":
                # 2*ch channels rearranged into a 2x larger map of ch/2 channels.
                layers += [
                    nn.Conv2d(ch, ch * 2, kernel_size=3, padding=1, bias=use_bias),
                    nn.PixelShuffle(2),
                ]
            else:
                # Resize-convolution (Odena et al.): every output pixel sees the same kernel taps.
                layers += [
                    nn.Upsample(scale_factor=2, mode=upsample),
                    nn.Conv2d(ch, ch // 2, kernel_size=3, padding=1, bias=use_bias),
                ]
            layers += [norm_layer(norm, ch // 2), nn.ReLU(True)]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _check_layers(self, layers: Sequence[int]) -> list[int]:
        layers = [int(i) for i in layers]
        if not layers:
            raise ValueError("features: layers must name at least one layer index")
        bad = [i for i in layers if not 0 <= i < len(self.model)]
        if bad:
            raise ValueError(f"features: layer indices {bad} out of range 0..{len(self.model) - 1}")
        return layers

    def features(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Outputs of ``self.model[i]`` for each ``i`` in ``layers`` (CUT's encoder features).

        Runs ``x`` through the layers in order and stops after the highest index asked for. Index
        0 is the reflection-padded input. The list follows the order of ``layers``. Which indices
        mean what depends on the layout: CUT's ``nce_layers = 0,4,8,12,16`` assume
        ``antialias=True`` (padded input, the two downsampling convs, the first and the fifth
        residual block).
        """
        layers = self._check_layers(layers)
        wanted, last = set(layers), max(layers)
        found: dict[int, torch.Tensor] = {}
        feat = x
        for i, layer in enumerate(self.model):
            feat = layer(feat)
            if i in wanted:
                # The in-place ReLU after a norm would overwrite the feature we keep.
                inplace_next = i < last and getattr(self.model[i + 1], "inplace", False)
                found[i] = feat.clone() if inplace_next else feat
            if i == last:
                break
        return [found[i] for i in layers]

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """Channels of each ``features(x, layers)`` output, read from the modules (no forward pass)."""
        layers = self._check_layers(layers)
        widths, ch = [], self.in_channels
        for layer in self.model:
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
                ch = layer.out_channels
            elif isinstance(layer, nn.PixelShuffle):
                ch //= layer.upscale_factor**2
            # Pads, norms, activations, blurs, resizes and residual blocks keep the width.
            widths.append(ch)
        return [widths[i] for i in layers]


class PixelShuffleResnetGenerator(ResnetGenerator):
    """ResNet generator with pixel-shuffle upsampling and 8 residual blocks (checkerboard-free).

    Identical to ``resnet`` except for the defaults: ``upsample="pixelshuffle"`` and
    ``blocks=8``. ``antialias=True`` blur-pools the downsamplings and keeps the pixel shuffle.
    """

    def __init__(
        self,
        in_channels: Width = 3,
        out_channels: Width = 3,
        ngf: Width = 64,
        blocks: Blocks = 8,
        norm: Norm = "instance",
        dropout: bool = False,
        upsample: Upsample = "pixelshuffle",
        antialias: bool = False,
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            ngf=ngf,
            blocks=blocks,
            norm=norm,
            dropout=dropout,
            upsample=upsample,
            antialias=antialias,
        )
