"""Bundled adversarial losses: ``lsgan``, ``bce`` and ``wgan-gp``."""

from ganforge import hookimpl
from ganforge.hookspecs import Register

from .adversarial import AdversarialLoss, BCELoss, LSGANLoss, WGANGPLoss, gradient_penalty

__all__ = ["AdversarialLoss", "BCELoss", "LSGANLoss", "WGANGPLoss", "gradient_penalty"]


@hookimpl
def register_losses(register: Register) -> None:
    register("lsgan", LSGANLoss)
    register("bce", BCELoss)
    register("wgan-gp", WGANGPLoss)
