"""Datasets: unpaired two-domain folders (CycleGAN), aligned pairs (pix2pix: A|B images or two
folders of matching names), one image folder (DCGAN) and one folder per class (class-conditional
GANs)."""

from ganforge import hookimpl

from .classes import ClassFolders
from .folders import ImageFolder, UnpairedFolders
from .paired import AlignedImages, PairedFolders

__all__ = ["AlignedImages", "ClassFolders", "ImageFolder", "PairedFolders", "UnpairedFolders"]


@hookimpl
def register_datasets(register):
    register("unpaired-folders", UnpairedFolders)
    register("image-folder", ImageFolder)
    register("class-folders", ClassFolders)
    register("aligned", AlignedImages)
    register("paired-folders", PairedFolders)
