"""Bundled networks: CycleGAN ResNet, pix2pix U-Net, PatchGAN, DCGAN, U-GAT-IT, CUT's projector, the
class-conditional SNGAN / BigGAN generators with the projection discriminator, UVCGAN2 and R3GAN;
UVCGAN2's queue of discriminator bodies (kind ``queue``)."""

from ganforge import hookimpl
from ganforge.hookspecs import Register

from .conditional import BigGANGenerator, ProjectionDiscriminator, SNGANGenerator
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .patchgan import PatchGANDiscriminator
from .projector import PatchProjector
from .r3gan import R3GANDiscriminator, R3GANGenerator
from .resnet import PixelShuffleResnetGenerator, ResnetGenerator
from .ugatit import ILN, AdaILN, ResnetAdaILNBlock, UGATITDiscriminator, UGATITGenerator
from .unet import UnetGenerator, UnetSkipConnectionBlock, unet_128, unet_256
from .uvcgan2 import BodyQueue, UVCGAN2Discriminator, ViTModNetGenerator

__all__ = [
    "ILN",
    "AdaILN",
    "BigGANGenerator",
    "BodyQueue",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "PatchGANDiscriminator",
    "PatchProjector",
    "PixelShuffleResnetGenerator",
    "ProjectionDiscriminator",
    "R3GANDiscriminator",
    "R3GANGenerator",
    "ResnetAdaILNBlock",
    "ResnetGenerator",
    "SNGANGenerator",
    "UGATITDiscriminator",
    "UGATITGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "unet_128",
    "unet_256",
    "UVCGAN2Discriminator",
    "ViTModNetGenerator",
]


@hookimpl
def register_generators(register: Register) -> None:
    register("resnet", ResnetGenerator)
    register("pixelshuffle", PixelShuffleResnetGenerator)
    register("dcgan", DCGANGenerator)
    register("ugatit", UGATITGenerator)
    register("unet", UnetGenerator)
    register("unet_256", unet_256)
    register("unet_128", unet_128)
    register("sngan", SNGANGenerator)
    register("biggan", BigGANGenerator)
    register("vit-modnet", ViTModNetGenerator)
    register("r3gan", R3GANGenerator)


@hookimpl
def register_discriminators(register: Register) -> None:
    register("patchgan", PatchGANDiscriminator)
    register("dcgan", DCGANDiscriminator)
    register("ugatit", UGATITDiscriminator)
    register("projection", ProjectionDiscriminator)
    register("uvcgan2", UVCGAN2Discriminator)
    register("r3gan", R3GANDiscriminator)


@hookimpl
def register_projectors(register: Register) -> None:
    register("patch-mlp", PatchProjector)


@hookimpl
def register_queues(register: Register) -> None:
    register("fifo", BodyQueue)
