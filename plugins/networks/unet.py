"""pix2pix's U-Net generator, laid out exactly as the official pytorch-CycleGAN-and-pix2pix.

Reference: junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py`` at commit
48ced5e8e3af621acca066a70203a196ba571bed (``UnetGenerator``, ``UnetSkipConnectionBlock``,
``define_G``'s ``unet_128`` = 7 and ``unet_256`` = 8 downsamplings); ``models/pix2pix_model.py``
at the same commit (pix2pix defaults: ``norm='batch'``, ``netG='unet_256'``, dropout on, as
``use_dropout = not opt.no_dropout``).

The module tree is the official one: ``model`` is the outermost block and every block keeps its
layers in ``model`` (an ``nn.Sequential``) with the submodule at the same index, so the keys
nest as ``model.model.1.model.3.model.3...`` and an official ``latest_net_G.pth`` loads with
``load_state_dict(strict=True)`` and no renaming.

Inference: the official ``test.py`` calls ``model.eval()`` only with ``--eval`` (default off;
``test.py`` and ``options/test_options.py`` at b0e64d43788be550a3ffac72dd69f7cd82e79eaf), so
by default pix2pix tests in train mode, with dropout active and batch norm using the statistics
of the test batch (of one image). ganforge runs inference in eval mode, as the official
``--eval`` does: dropout off, batch norm with its running statistics.
"""

from collections.abc import Callable
from typing import Annotated, Any

import torch
from torch import nn

from ganforge import GanforgeError, Range

from .resnet import Norm, Width, conv_bias, norm_layer

Downs = Annotated[
    int, Range(5, 20, why="size: image sides must be multiples of 2**num_downs px, over a million at 20")
]


def unet_size_problem(num_downs: int, size: int) -> str | None:
    """Why a U-Net with ``num_downs`` halvings cannot take ``size`` px sides, or None."""
    # Each k4 s2 p1 conv floors an odd side and each transposed conv doubles: the skip
    # concatenations only line up when every halving is exact, down to a 1x1 bottleneck.
    need = 2**num_downs
    if size % need or size < need:
        return (
            f"image sides must be multiples of {need} ({num_downs} stride-2 halvings, "
            f"2**num_downs) and at least {need} px, got {size}"
        )
    return None


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down (conv k4 s2), the inner levels, up (transposed conv k4 s2), skip.

    As the official block: the outermost level is ``[downconv, submodule, ReLU, upconv, Tanh]``
    (no norm, the upconv keeps its bias); the innermost is ``[LeakyReLU, downconv, ReLU, upconv,
    norm]`` (no norm on its 1x1 bottleneck, where a norm would zero it); the others are
    ``[LeakyReLU, downconv, norm, submodule, ReLU, upconv, norm]`` plus ``Dropout(0.5)`` when
    ``dropout``. Every level but the outermost returns its input concatenated with its output.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        use_bias = conv_bias(norm)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        # In place, as the official block: it rewrites this level's input x before forward's
        # torch.cat reads it, so the skip carries LeakyReLU(x); the parent's ReLU comes next, and
        # ReLU(LeakyReLU(x)) = ReLU(x), so outputs and gradients are those of a plain skip.
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        layers: list[nn.Module]
        if outermost:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [downrelu, downconv, uprelu, upconv, norm_layer(norm, outer_nc)]
        else:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            layers = [downrelu, downconv, norm_layer(norm, inner_nc), submodule]
            layers += [uprelu, upconv, norm_layer(norm, outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net generator: encoder-decoder with skip connections, 1x1 bottleneck, tanh.

    ``num_downs`` stride-2 halvings take ``2**num_downs`` px images to a 1x1 bottleneck:
    ``num_downs=8`` is the official ``unet_256`` (54,413,955 parameters at ``ngf=64``, RGB to RGB),
    ``7`` is ``unet_128`` (41,828,995). Channels go ngf, 2ngf, 4ngf, then 8ngf for every deeper
    level; the ``num_downs - 5`` levels at 8ngf between the innermost and the 4ngf level carry
    ``Dropout(0.5)`` when ``dropout`` (pix2pix's default). Image sides must be multiples of
    ``size_multiple`` (``2**num_downs``).

    ``norm``: ``batch`` (pix2pix; convs before a norm carry no bias), ``instance`` (no affine, no
    running statistics; convs carry a bias) or ``none`` (identity layers where the norms were,
    convs carry a bias; the official code drops those biases there, so only ``batch`` and
    ``instance`` load official checkpoints). Dropout is only active in train mode.
    """

    size_multiple = 2**8  # num_downs stride-2 halvings; set per instance

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Why ``size`` px square images cannot go through this U-Net, or None."""
        return unet_size_problem(options.get("num_downs", 8), size)

    def __init__(
        self,
        in_channels: Width = 3,
        out_channels: Width = 3,
        ngf: Width = 64,
        num_downs: Downs = 8,
        norm: Norm = "batch",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, ngf) < 1 or num_downs < 5:
            # Five levels are fixed (ngf, 2ngf, 4ngf, 8ngf and the innermost): fewer halvings
            # would silently build five anyway in the official code.
            raise GanforgeError(
                f"unet generator: channels and ngf must be >= 1 and num_downs >= 5, got "
                f"in_channels={in_channels}, out_channels={out_channels}, ngf={ngf}, num_downs={num_downs}"
            )
        norm_layer(norm, 1)  # an unknown norm fails here, on one line
        self.in_channels = in_channels
        self.num_downs = num_downs
        self.size_multiple = 2**num_downs
        # Built from the bottleneck outwards, as the official UnetGenerator.
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            out_channels, ngf, input_nc=in_channels, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _fixed_depth_check(num_downs: int) -> Callable[[dict[str, Any], int], str | None]:
    """A preset's ``check_image_size``: its depth is fixed, not an option."""

    def check_image_size(options: dict[str, Any], size: int) -> str | None:
        return unet_size_problem(num_downs, size)

    return check_image_size


def unet_256(
    in_channels: Width = 3,
    out_channels: Width = 3,
    ngf: Width = 64,
    norm: Norm = "batch",
    dropout: bool = True,
) -> UnetGenerator:
    """pix2pix's unet_256: the U-Net with 8 halvings (256 px images reach a 1x1 bottleneck)."""
    return UnetGenerator(in_channels, out_channels, ngf, num_downs=8, norm=norm, dropout=dropout)


def unet_128(
    in_channels: Width = 3,
    out_channels: Width = 3,
    ngf: Width = 64,
    norm: Norm = "batch",
    dropout: bool = True,
) -> UnetGenerator:
    """pix2pix's unet_128: the U-Net with 7 halvings (128 px images reach a 1x1 bottleneck)."""
    return UnetGenerator(in_channels, out_channels, ngf, num_downs=7, norm=norm, dropout=dropout)


# The recipe checks look for check_image_size on the factory; the presets' depth is fixed.
unet_256.check_image_size = _fixed_depth_check(8)  # type: ignore[attr-defined]
unet_128.check_image_size = _fixed_depth_check(7)  # type: ignore[attr-defined]
