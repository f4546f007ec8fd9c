"""Bundled networks: CycleGAN ResNet generators, PatchGAN, DCGAN, U-GAT-IT, UVCGAN2 and CUT's projector."""

from ganforge import hookimpl
from ganforge.hookspecs import Register

from .dcgan import DCGANDiscriminator, DCGANGenerator
from .patchgan import PatchGANDiscriminator
from .projector import PatchProjector
from .resnet import PixelShuffleResnetGenerator, ResnetGenerator
from .ugatit import ILN, AdaILN, ResnetAdaILNBlock, UGATITDiscriminator, UGATITGenerator
from .uvcgan2 import BodyQueue, UVCGAN2Discriminator, ViTModNetGenerator, mask_patches

__all__ = [
    "ILN",
    "AdaILN",
    "BodyQueue",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "PatchGANDiscriminator",
    "PatchProjector",
    "PixelShuffleResnetGenerator",
    "ResnetAdaILNBlock",
    "ResnetGenerator",
    "UGATITDiscriminator",
    "UGATITGenerator",
    "UVCGAN2Discriminator",
    "ViTModNetGenerator",
    "mask_patches",
]


@hookimpl
def register_generators(register: Register) -> None:
    register("resnet", ResnetGenerator)
    register("pixelshuffle", PixelShuffleResnetGenerator)
    register("dcgan", DCGANGenerator)
    register("ugatit", UGATITGenerator)
    register("vit-modnet", ViTModNetGenerator)


@hookimpl
def register_discriminators(register: Register) -> None:
    register("patchgan", PatchGANDiscriminator)
    register("dcgan", DCGANDiscriminator)
    register("ugatit", UGATITDiscriminator)
    register("uvcgan2", UVCGAN2Discriminator)


@hookimpl
def register_projectors(register: Register) -> None:
    register("patch-mlp", PatchProjector)
