"""Bundled networks: CycleGAN ResNet generators, the PatchGAN discriminator and DCGAN."""

from ganforge import hookimpl
from ganforge.hookspecs import Register

from .dcgan import DCGANDiscriminator, DCGANGenerator
from .patchgan import PatchGANDiscriminator
from .resnet import PixelShuffleResnetGenerator, ResnetGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "PatchGANDiscriminator",
    "PixelShuffleResnetGenerator",
    "ResnetGenerator",
]


@hookimpl
def register_generators(register: Register) -> None:
    register("resnet", ResnetGenerator)
    register("pixelshuffle", PixelShuffleResnetGenerator)
    register("dcgan", DCGANGenerator)


@hookimpl
def register_discriminators(register: Register) -> None:
    register("patchgan", PatchGANDiscriminator)
    register("dcgan", DCGANDiscriminator)
