"""Small network utilities shared by every network plugin."""

from __future__ import annotations

from torch import nn


def init_weights(net: nn.Module, scheme: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv and linear weights in place, as the official CycleGAN and DCGAN do.

    ``normal`` draws N(0, gain) (DCGAN's N(0, 0.02)); ``xavier``, ``kaiming`` and
    ``orthogonal`` use torch's initialisers with ``gain``; ``none`` keeps PyTorch's defaults.
    Norm layers with affine weights get N(1, gain) weights and zero bias.
    """
    if scheme == "none":
        return net
    for m in net.modules():
        name = type(m).__name__
        if hasattr(m, "weight") and m.weight is not None and ("Conv" in name or "Linear" in name):
            if scheme == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif scheme == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif scheme == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown init scheme {scheme!r}")
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm" in name and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
