"""PatchGAN discriminator, laid out as the official ``NLayerDiscriminator``."""

from typing import Annotated, Any

import torch
from torch import nn

from ganforge import GanforgeError, Range

from .resnet import BlurDownsample, Norm, Width, conv_bias, norm_layer
from .sn import spectral_normed

Layers = Annotated[int, Range(1, 30, why="each layer halves the image: 30 need sides of 2**30 px")]
Kernel = Annotated[int, Range(2, 1024, why="memory and time: a kernel's weights grow with its square")]


def conv_chain_min_size(layers: list[tuple[int, int, int, int, int]], limit: int = 2**24) -> int | None:
    """The smallest input side a chain of ``(kernel, stride, padding, min_output, reflect)``
    convs accepts, or None if no side up to ``limit`` works.

    ``min_output`` is the side a conv's output needs for what follows it (2 before an instance
    or batch norm: a norm needs more than one value per channel); ``reflect`` is a reflection
    padding before the conv (it needs sides above it).
    """

    def works(side: int) -> bool:
        for k, stride, pad, min_out, reflect in layers:
            if reflect and side <= reflect:
                return False
            side += 2 * (pad + reflect)
            if side < k:
                return False
            side = (side - k) // stride + 1
            if side < min_out:
                return False
        return True

    if works(1):
        return 1
    high = 2
    while not works(high):  # conv output grows with its input: find a side that works, then bisect
        high *= 2
        if high > limit:
            return None
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if works(mid) else (mid, high)
    return high


class PatchGANDiscriminator(nn.Module):
    """PatchGAN discriminator: one real/fake score per overlapping image patch (70x70 by default).

    ``kernel_size=4`` (padding 1) is the official ``basic`` discriminator: for a 256x256 input
    and ``n_layers=3`` the output is ``[N, 1, 30, 30]``. ``kernel_size=2`` (padding 0) is the
    non-overlapping variant: ``n_layers + 1`` stride-2 blocks (64-128-256-512 at ``ndf=64``), one
    more stride-1 512 conv and a 1-channel conv, both 3x3 with padding 1, so a 256x256 input gives
    ``[N, 1, 16, 16]``. Other kernel sizes use padding ``(k - 1) // 2`` and the official layout.

    ``sigmoid=True`` appends a sigmoid; ``outputs_probabilities`` tells the losses which they get.
    ``spectral_norm=True`` wraps every conv in spectral normalisation (Miyato et al.); the norm
    layers stay as ``norm`` says (``norm="none"`` is the usual pairing). ``antialias=True`` is
    CUT's discriminator: each stride-2 conv becomes a stride-1 conv followed (after its norm and
    activation) by a blur-pool (``BlurDownsample``), with the same output size.
    """

    @staticmethod
    def _layers(n_layers: int, k: int, norm: str, antialias: bool) -> list[tuple[int, int, int, int, int]]:
        """(kernel, stride, padding, min_output, reflect) of every conv, in order: every conv but
        the first and the last is followed by a norm (which needs 2x2 maps); with ``antialias``
        each halving is a stride-1 conv then a blur-pool (reflect 1, 3x3, stride 2)."""
        pad = 0 if k == 2 else (k - 1) // 2
        m = 1 if norm == "none" else 2
        convs = []
        for i in range(n_layers):
            after = 1 if i == 0 else m
            convs += [(k, 1, pad, after, 0), (3, 2, 0, 1, 1)] if antialias else [(k, 2, pad, after, 0)]
        if k == 2:
            return convs + [(2, 2, 0, m, 0), (3, 1, 1, m, 0), (3, 1, 1, 1, 0)]
        return convs + [(k, 1, pad, m, 0), (k, 1, pad, 1, 0)]

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Why ``size`` px square images are too small for this many layers, or None."""
        n, k = options.get("n_layers", 3), options.get("kernel_size", 4)
        layers = cls._layers(n, k, options.get("norm", "instance"), options.get("antialias", False))
        need = conv_chain_min_size(layers)
        if need is None or size < need:
            return (
                f"with n_layers={n} and kernel_size={k} it needs images of at least "
                f"{need if need is not None else 2**24} px (got {size}); use fewer n_layers"
            )
        return None

    def __init__(
        self,
        in_channels: Width = 3,
        ndf: Width = 64,
        n_layers: Layers = 3,
        norm: Norm = "instance",
        kernel_size: Kernel = 4,
        sigmoid: bool = False,
        spectral_norm: bool = False,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if in_channels < 1 or ndf < 1 or n_layers < 1 or kernel_size < 2:
            raise GanforgeError(
                f"patchgan: need in_channels, ndf, n_layers >= 1 and kernel_size >= 2, got "
                f"in_channels={in_channels}, ndf={ndf}, n_layers={n_layers}, kernel_size={kernel_size}"
            )
        self.outputs_probabilities = sigmoid
        use_bias = conv_bias(norm)
        k = kernel_size
        # k=2 halves the map exactly with no padding; a stride-1 k=2 conv would shift it off-centre.
        pad = 0 if k == 2 else (k - 1) // 2
        down_stride = 1 if antialias else 2
        blur = (lambda c: [BlurDownsample(c)]) if antialias else (lambda c: [])
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=k, stride=down_stride, padding=pad),
            nn.LeakyReLU(0.2, True),
            *blur(ndf),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(
                    ndf * prev, ndf * mult, kernel_size=k, stride=down_stride, padding=pad, bias=use_bias
                ),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
                *blur(ndf * mult),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        if k == 2:
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=2, stride=2, padding=0, bias=use_bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, ndf * mult, kernel_size=3, stride=1, padding=1, bias=use_bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, kernel_size=3, stride=1, padding=1),
            ]
        else:
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=k, stride=1, padding=pad, bias=use_bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, kernel_size=k, stride=1, padding=pad),
            ]
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.model = nn.Sequential(*spectral_normed(layers, spectral_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
