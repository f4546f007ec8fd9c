"""Bundled adversarial losses: ``lsgan``, ``bce``, ``hinge``, ``wgan-gp`` and ``rpgan``."""

from ganforge import hookimpl
from ganforge.hookspecs import Register

from .adversarial import (
    AdversarialLoss,
    BCELoss,
    HingeLoss,
    LSGANLoss,
    WGANGPLoss,
    gradient_penalty,
    gradient_square_norms,
    r1_penalty,
)
from .rpgan import RpGANLoss, r2_penalty

__all__ = [
    "AdversarialLoss",
    "BCELoss",
    "HingeLoss",
    "LSGANLoss",
    "RpGANLoss",
    "WGANGPLoss",
    "gradient_penalty",
    "gradient_square_norms",
    "r1_penalty",
    "r2_penalty",
]


@hookimpl
def register_losses(register: Register) -> None:
    register("lsgan", LSGANLoss)
    register("bce", BCELoss)
    register("hinge", HingeLoss)
    register("wgan-gp", WGANGPLoss)
    register("rpgan", RpGANLoss)
