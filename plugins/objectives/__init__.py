"""Training objectives: what one optimisation step does, and what a checkpoint holds."""

from ganforge import hookimpl
from ganforge_plugins.objectives.cgan import ConditionalGAN
from ganforge_plugins.objectives.cut import CUT, FastCUT
from ganforge_plugins.objectives.cyclegan import CycleGAN
from ganforge_plugins.objectives.dcgan import UnconditionalGAN
from ganforge_plugins.objectives.pix2pix import Pix2Pix
from ganforge_plugins.objectives.r3gan import R3GAN, R3GANConditional
from ganforge_plugins.objectives.ugatit import UGATIT
from ganforge_plugins.objectives.uvcgan2 import UVCGAN2, UVCGAN2Pretrain


@hookimpl
def register_objectives(register):
    register("cyclegan", CycleGAN)
    register("dcgan", UnconditionalGAN)
    register("cgan", ConditionalGAN)
    register("cut", CUT)
    register("fastcut", FastCUT)
    register("ugatit", UGATIT)
    register("pix2pix", Pix2Pix)
    register("uvcgan2", UVCGAN2)
    register("uvcgan2-pretrain", UVCGAN2Pretrain)
    register("r3gan", R3GAN)
    register("r3gan-cond", R3GANConditional)
