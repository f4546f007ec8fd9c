"""Small network utilities shared by every network plugin."""

from __future__ import annotations

import os

import torch
from torch import nn

# "native" keeps PyTorch's instance norm under torch.compile too (for A/B benchmarks).
_NATIVE_INSTANCE_NORM = os.environ.get("GANFORGE_INSTANCE_NORM") == "native"


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that keeps channels_last memory when compiled.

    PyTorch computes instance norm as batch norm over a ``(1, N*C, H, W)`` view, which needs
    NCHW memory, so in a channels_last network every norm converts its input, and its output
    and gradient reach the next convolution in the wrong layout (pytorch/pytorch#72341). The
    graph torch.compile traces inherits those conversions. Traced, this forward normalises over
    ``(H, W)`` directly, so inductor keeps activations and gradients channels_last and fuses
    the statistics with the normalisation. Eager, PyTorch's kernel takes fewer passes over
    memory and is kept. Statistics are float32 either way; no parameters, same state dict.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = self.affine or self.track_running_stats or x.dim() != 4
        if plain or _NATIVE_INSTANCE_NORM or not torch.compiler.is_compiling():
            return super().forward(x)
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
        return ((xf - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)


def init_weights(net: nn.Module, scheme: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv and linear weights in place, as the reference GAN implementations do.

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
