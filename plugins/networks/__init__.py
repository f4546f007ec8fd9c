"""Bundled networks: CycleGAN ResNet generators, PatchGAN, DCGAN, U-GAT-IT, CUT's projector and the
class-conditional SNGAN / BigGAN generators with the projection discriminator."""

from ganforge import hookimpl
from ganforge.hookspecs import Register

from .conditional import BigGANGenerator, ProjectionDiscriminator, SNGANGenerator
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .patchgan import PatchGANDiscriminator
from .projector import PatchProjector
from .resnet import PixelShuffleResnetGenerator, ResnetGenerator
from .ugatit import ILN, AdaILN, ResnetAdaILNBlock, UGATITDiscriminator, UGATITGenerator

__all__ = [
    "ILN",
    "AdaILN",
    "BigGANGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "PatchGANDiscriminator",
    "PatchProjector",
    "PixelShuffleResnetGenerator",
    "ProjectionDiscriminator",
    "ResnetAdaILNBlock",
    "ResnetGenerator",
    "SNGANGenerator",
    "UGATITDiscriminator",
    "UGATITGenerator",
]


@hookimpl
def register_generators(register: Register) -> None:
    register("resnet", ResnetGenerator)
    register("pixelshuffle", PixelShuffleResnetGenerator)
    register("dcgan", DCGANGenerator)
    register("ugatit", UGATITGenerator)
    register("sngan", SNGANGenerator)
    register("biggan", BigGANGenerator)


@hookimpl
def register_discriminators(register: Register) -> None:
    register("patchgan", PatchGANDiscriminator)
    register("dcgan", DCGANDiscriminator)
    register("ugatit", UGATITDiscriminator)
    register("projection", ProjectionDiscriminator)


@hookimpl
def register_projectors(register: Register) -> None:
    register("patch-mlp", PatchProjector)
