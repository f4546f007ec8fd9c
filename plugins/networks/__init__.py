"""Bundled networks and their kinds (generator, discriminator, projector, queue): CycleGAN
ResNet, pix2pix U-Net, PatchGAN, DCGAN, U-GAT-IT, CUT's projector, the class-conditional SNGAN /
BigGAN generators with the projection discriminator, UVCGAN2 (with its queue of discriminator
bodies) and R3GAN."""

from typing import Annotated, Any, Literal

from ganforge import Kind, Range, hookimpl, protocols
from ganforge.hookspecs import Register

from .conditional import BigGANGenerator, ProjectionDiscriminator, SNGANGenerator
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .layers import init_weights
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


_NETWORK_COMMON = (
    # auto: the network's own initialisation if it has one (protocols.OwnInit), else normal
    ("init", Literal["auto", "normal", "xavier", "kaiming", "orthogonal", "none"], "auto"),
    # the std (normal) or gain of the init: 0 makes every weight equal, negative is meaningless
    ("init_gain", Annotated[float, Range(0.0, min_open=True)], 0.02),
)


def _init(net: Any, common: dict[str, Any]) -> Any:
    scheme = common["init"]
    if scheme == "auto":
        scheme = "none" if protocols.own_init(net) else "normal"
    return init_weights(net, scheme, common["init_gain"])


KINDS = (
    Kind(
        "generator",
        "Generator networks (``torch.nn.Module`` factories). Every generator table also accepts "
        "``init`` and ``init_gain`` (weight initialisation applied after construction; ``auto`` "
        "keeps a network's own). Context: ``num_classes`` (the dataset's class count, for "
        "class-conditional networks; see ``ganforge.protocols``).",
        context=("num_classes",),
        common=_NETWORK_COMMON,
        finish=_init,
    ),
    Kind(
        "discriminator",
        "Discriminator networks (``torch.nn.Module`` factories). Like generators, they also "
        "accept ``init`` and ``init_gain`` and get ``num_classes`` as context.",
        context=("num_classes",),
        common=_NETWORK_COMMON,
        finish=_init,
    ),
    Kind(
        "projector",
        "Feature projectors for contrastive losses (CUT's netF): built from the feature widths "
        "of another network. Context: ``channels`` (one width per feature map). "
        "``forward(feats, patch_ids=None) -> (projected, patch_ids)``.",
        context=("channels",),
    ),
    Kind(
        "queue",
        "Queues of discriminator outputs kept across steps (UVCGAN2's batch-head body queues): "
        "``push(x)``, ``query(device) -> Tensor | None``, ``len()``, ``state_dict`` / "
        "``load_state_dict`` and ``make_capturable()``. An objective declares them as pools: "
        "saved per process and resumed.",
    ),
)


@hookimpl
def register_kinds(register):
    for kind in KINDS:
        register(kind)


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
