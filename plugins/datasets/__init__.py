"""Datasets: unpaired two-domain folders (CycleGAN), one image folder (DCGAN) and one folder per
class (class-conditional GANs)."""

from ganforge import hookimpl

from .classes import ClassFolders
from .folders import ImageFolder, UnpairedFolders

__all__ = ["ClassFolders", "ImageFolder", "UnpairedFolders"]


@hookimpl
def register_datasets(register):
    register("unpaired-folders", UnpairedFolders)
    register("image-folder", ImageFolder)
    register("class-folders", ClassFolders)
