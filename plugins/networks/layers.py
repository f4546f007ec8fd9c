"""Layers and weight initialisation shared by the bundled networks (and the network kinds' ``init``)."""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn.utils import parametrize

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
            weight = _raw_weight(m)
            if scheme == "normal":
                nn.init.normal_(weight, 0.0, gain)
            elif scheme == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            elif scheme == "orthogonal":
                nn.init.orthogonal_(weight, gain=gain)
            else:
                raise ValueError(f"unknown init scheme {scheme!r}")
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
            _refresh_spectral_norm(m)
        elif "BatchNorm" in name and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def _raw_weight(m: nn.Module) -> torch.Tensor:
    """The stored weight: a parametrized ``weight`` (spectral norm) is recomputed on every access,
    so initialising it in place would change a temporary; initialise the original instead."""
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


def _refresh_spectral_norm(m: nn.Module) -> None:
    """Re-run spectral norm's power iteration after a re-initialisation, so the first forward uses
    singular vectors of the new weight rather than of the one drawn at construction."""
    if not parametrize.is_parametrized(m, "weight"):
        return
    for p in m.parametrizations.weight:
        power = getattr(p, "_power_method", None)
        reshape = getattr(p, "_reshape_weight_to_matrix", None)
        if power is None or reshape is None or getattr(p, "_u", None) is None:
            continue
        with torch.no_grad():
            power(reshape(m.parametrizations.weight.original), 15)
