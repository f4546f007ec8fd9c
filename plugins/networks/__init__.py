"""Bundled networks: CycleGAN ResNet generators, PatchGAN, DCGAN, U-GAT-IT, R3GAN and CUT's projector."""

from ganforge import hookimpl
from ganforge.hookspecs import Register

from .dcgan import DCGANDiscriminator, DCGANGenerator
from .patchgan import PatchGANDiscriminator
from .projector import PatchProjector
from .r3gan import R3GANDiscriminator, R3GANGenerator
from .resnet import PixelShuffleResnetGenerator, ResnetGenerator
from .ugatit import ILN, AdaILN, ResnetAdaILNBlock, UGATITDiscriminator, UGATITGenerator

__all__ = [
    "ILN",
    "AdaILN",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "PatchGANDiscriminator",
    "PatchProjector",
    "PixelShuffleResnetGenerator",
    "R3GANDiscriminator",
    "R3GANGenerator",
    "ResnetAdaILNBlock",
    "ResnetGenerator",
    "UGATITDiscriminator",
    "UGATITGenerator",
]


@hookimpl
def register_generators(register: Register) -> None:
    register("resnet", ResnetGenerator)
    register("pixelshuffle", PixelShuffleResnetGenerator)
    register("dcgan", DCGANGenerator)
    register("ugatit", UGATITGenerator)
    register("r3gan", R3GANGenerator)


@hookimpl
def register_discriminators(register: Register) -> None:
    register("patchgan", PatchGANDiscriminator)
    register("dcgan", DCGANDiscriminator)
    register("ugatit", UGATITDiscriminator)
    register("r3gan", R3GANDiscriminator)


@hookimpl
def register_projectors(register: Register) -> None:
    register("patch-mlp", PatchProjector)
