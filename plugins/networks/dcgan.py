"""DCGAN generator and discriminator (Radford et al.), as in the PyTorch DCGAN example.

At ``image_size=64`` both match the example layer for layer (``main.<i>`` keys included): the
generator has five transposed convs, the discriminator four strided convs plus a 4x4 head.
Each doubling of ``image_size`` adds one stage and doubles the widest layer.
"""

from typing import Any, Literal

import torch
from torch import nn

from ganforge import GanforgeError

from .resnet import Width
from .sn import spectral_normed

ImageSize = Literal[32, 64, 128]


def _stages(image_size: int) -> int:
    """Stride-2 stages between 4x4 and ``image_size`` (3 for 32, 4 for 64, 5 for 128)."""
    if image_size not in (32, 64, 128):
        raise GanforgeError(f"dcgan: image_size must be 32, 64 or 128, got {image_size}")
    return image_size.bit_length() - 3


class DCGANGenerator(nn.Module):
    """DCGAN generator: a latent vector to an image in [-1, 1] through strided transposed convs.

    Input ``[N, latent_dim]`` or ``[N, latent_dim, 1, 1]``; output
    ``[N, out_channels, image_size, image_size]``. A 4x4 transposed conv projects z to a 4x4 map of
    ``ngf * 2**(stages - 1)`` channels (``ngf*8`` at 64 px); each stride-2 transposed conv (k4 s2 p1)
    then doubles the size and halves the channels, with BatchNorm and ReLU, and the last one maps to
    ``out_channels`` followed by tanh.
    """

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """It makes images of its own ``image_size``: the data's must be the same."""
        own = options.get("image_size", 64)
        if size != own:
            hint = f"set generator.image_size={size}" if size in (32, 64, 128) else "use 32, 64 or 128"
            return f"it makes {own} px images; {hint}"
        return None

    def __init__(
        self,
        latent_dim: Width = 100,
        ngf: Width = 64,
        image_size: ImageSize = 64,
        out_channels: Width = 3,
    ) -> None:
        super().__init__()
        if min(latent_dim, ngf, out_channels) < 1:
            raise GanforgeError("dcgan generator: latent_dim, ngf and out_channels must be >= 1")
        self.latent_dim = latent_dim
        self.image_size = image_size
        stages = _stages(image_size)
        ch = ngf * 2 ** (stages - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: strided convs with BatchNorm and LeakyReLU(0.2) to one score per image.

    Input ``[N, in_channels, image_size, image_size]``, output ``[N]``: a logit, or a probability
    when ``sigmoid=True`` (``outputs_probabilities`` says which). The first conv has no norm; each
    k4 s2 p1 conv halves the size and doubles the channels down to 4x4, and a valid 4x4 conv gives
    the score. ``spectral_norm=True`` wraps every conv in spectral normalisation (the BatchNorm
    layers stay).
    """

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Its convs reduce ``image_size`` px to 4x4: smaller images cannot go through."""
        own = options.get("image_size", 64)
        if size < own:
            hint = f"set discriminator.image_size={size}" if size in (32, 64, 128) else "use 32, 64 or 128"
            return f"it is built for {own} px images; {hint}"
        return None

    def __init__(
        self,
        in_channels: Width = 3,
        ndf: Width = 64,
        image_size: ImageSize = 64,
        sigmoid: bool = False,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if min(in_channels, ndf) < 1:
            raise GanforgeError("dcgan discriminator: in_channels and ndf must be >= 1")
        self.outputs_probabilities = sigmoid
        self.image_size = image_size
        stages = _stages(image_size)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for _ in range(stages - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch * 2),
                nn.LeakyReLU(0.2, True),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 4, 1, 0, bias=False))
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.main = nn.Sequential(*spectral_normed(layers, spectral_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [N, 1, 1, 1] -> [N]; a larger input than image_size keeps its extra scores as [N, k*k].
        return self.main(x).flatten(1).squeeze(1)
