"""PatchGAN discriminator, laid out as the official ``NLayerDiscriminator``."""

import torch
from torch import nn

from ganforge import GanforgeError

from .resnet import BlurDownsample, Norm, conv_bias, norm_layer
from .sn import spectral_normed


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

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: Norm = "instance",
        kernel_size: int = 4,
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
