"""Bundled adversarial losses: ``lsgan``, ``bce``, ``hinge`` and ``wgan-gp``; PatchNCE for CUT."""

from ganforge import hookimpl
from ganforge.hookspecs import Register

from .adversarial import (
    AdversarialLoss,
    BCELoss,
    HingeLoss,
    LSGANLoss,
    WGANGPLoss,
    gradient_penalty,
    r1_penalty,
)
from .patchnce import patch_nce_loss

__all__ = [
    "AdversarialLoss",
    "BCELoss",
    "HingeLoss",
    "LSGANLoss",
    "WGANGPLoss",
    "gradient_penalty",
    "patch_nce_loss",
    "r1_penalty",
]


@hookimpl
def register_losses(register: Register) -> None:
    register("lsgan", LSGANLoss)
    register("bce", BCELoss)
    register("hinge", HingeLoss)
    register("wgan-gp", WGANGPLoss)
