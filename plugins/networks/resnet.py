"""CycleGAN's ResNet generator, laid out exactly as the official pytorch-CycleGAN-and-pix2pix.

The module tree (``model.<i>`` and ``model.<i>.conv_block.<j>``) matches the official
``ResnetGenerator``, so with ``norm="instance"`` an official ``latest_net_G.pth`` loads with
``load_state_dict`` unchanged.
"""

from typing import Literal

import torch
from torch import nn

from ganforge import GanforgeError
from ganforge.nn import InstanceNorm2d

Norm = Literal["instance", "batch", "none"]
Upsample = Literal["transpose", "pixelshuffle"]


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

    Images in, images of the same height and width out (both must be divisible by 4), values in
    [-1, 1]. ``blocks=9`` at ``ngf=64`` is the official ``resnet_9blocks`` (11,378,179
    parameters). ``upsample="pixelshuffle"`` replaces each transposed conv by a 3x3 conv to twice
    the channels followed by ``PixelShuffle(2)``, which avoids checkerboard artefacts.
    """

    size_multiple = 4  # two stride-2 downsamplings: input sides must be multiples of 4

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        blocks: int = 9,
        norm: Norm = "instance",
        dropout: bool = False,
        upsample: Upsample = "transpose",
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, ngf) < 1 or blocks < 0:
            raise GanforgeError(
                f"resnet generator: channels and ngf must be >= 1 and blocks >= 0, got "
                f"in_channels={in_channels}, out_channels={out_channels}, ngf={ngf}, blocks={blocks}"
            )
        if upsample not in ("transpose", "pixelshuffle"):
            raise GanforgeError(f"unknown upsample {upsample!r}; expected 'transpose' or 'pixelshuffle'")
        use_bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            ch = ngf * 2**i
            layers += [
                nn.Conv2d(ch, ch * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(norm, ch * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm, dropout, use_bias) for _ in range(blocks)]
        for i in range(2):
            ch = ngf * 2 ** (2 - i)
            if upsample == "transpose":
                layers.append(
                    nn.ConvTranspose2d(
                        ch, ch // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=use_bias
                    )
                )
            else:
                # 2*ch channels rearranged into a 2x larger map of ch/2 channels.
                layers += [
                    nn.Conv2d(ch, ch * 2, kernel_size=3, padding=1, bias=use_bias),
                    nn.PixelShuffle(2),
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


class PixelShuffleResnetGenerator(ResnetGenerator):
    """ResNet generator with pixel-shuffle upsampling and 8 residual blocks (checkerboard-free).

    Identical to ``resnet`` except for the defaults: ``upsample="pixelshuffle"`` and
    ``blocks=8``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        blocks: int = 8,
        norm: Norm = "instance",
        dropout: bool = False,
        upsample: Upsample = "pixelshuffle",
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            ngf=ngf,
            blocks=blocks,
            norm=norm,
            dropout=dropout,
            upsample=upsample,
        )
