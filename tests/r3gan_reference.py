"""The official R3GAN generator and discriminator, re-implemented for the tests.

The reference is github.com/brownvc/R3GAN at commit 19a7ddf463fbac2bd39b4c1c73d63f1c441c7403:
R3GAN/Networks.py, R3GAN/Resamplers.py and R3GAN/FusedOperators.py, with the same module
names, build order, initialisation and forward. Its default resamplers and activation are the
CUDA ops' classes, which on a CPU tensor run the ops' reference paths
(torch_utils/ops/upfirdn2d.py ``_upfirdn2d_ref``: zero insertion, padding, flipped filter;
bias_act.py: bias, leaky ReLU, gain 1): those paths are what is re-implemented here. The
training code (training/networks.py) wraps each network as ``Model``, so a state dict saved from
its ``G_ema`` has every key prefixed ``Model.``. Shared by tests/plugins/test_r3gan.py (the
networks, the loss, one training step) and tests/test_convert_r3gan.py (``ganforge convert``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def ref_msr(layer, gain=1.0):
    fan_in = layer.weight.data.size(1) * layer.weight.data[0][0].numel()
    layer.weight.data.normal_(0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        layer.bias.data.zero_()
    return layer


def ref_lowpass(taps):
    row = np.convolve(taps, [1, 1]).reshape(1, -1)
    k = torch.Tensor(row.T @ row)
    return k / torch.sum(k)


def ref_upfirdn2d(x, f, up, down, pad, gain):
    """upfirdn2d's reference path for a 2-D filter: zero-insert, pad, convolve (flipped), subsample."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, pad)
    f = (f * gain ** (f.ndim / 2)).to(x.dtype).flip([0, 1])
    x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


class RefUpsampler(nn.Module):
    def __init__(self, taps):
        super().__init__()
        self.register_buffer("Kernel", ref_lowpass(taps))

    def forward(self, x):  # upsample2d(x, Kernel): up=2, gain 4
        fw = self.Kernel.shape[-1]
        p = [(fw + 1) // 2, (fw - 2) // 2]
        return ref_upfirdn2d(x, self.Kernel, 2, 1, [p[0], p[1], p[0], p[1]], 4)


class RefDownsampler(nn.Module):
    def __init__(self, taps):
        super().__init__()
        self.register_buffer("Kernel", ref_lowpass(taps))

    def forward(self, x):  # downsample2d(x, Kernel): down=2
        fw = self.Kernel.shape[-1]
        p = [(fw - 1) // 2, (fw - 2) // 2]
        return ref_upfirdn2d(x, self.Kernel, 1, 2, [p[0], p[1], p[0], p[1]], 1)


class RefBiasedActivation(nn.Module):
    Gain = math.sqrt(2 / (1 + 0.2**2))

    def __init__(self, units):
        super().__init__()
        self.Bias = nn.Parameter(torch.empty(units))
        self.Bias.data.zero_()

    def forward(self, x):
        return F.leaky_relu(x + self.Bias.to(x.dtype).view(1, -1, 1, 1), 0.2) * 1.0


class RefConvolution(nn.Module):
    def __init__(self, cin, cout, k, Groups=1, ActivationGain=1):
        super().__init__()
        conv = nn.Conv2d(cin, cout, kernel_size=k, stride=1, padding=(k - 1) // 2, groups=Groups, bias=False)
        self.Layer = ref_msr(conv, ActivationGain)

    def forward(self, x):
        return F.conv2d(
            x, self.Layer.weight.to(x.dtype), padding=self.Layer.padding, groups=self.Layer.groups
        )


class RefResidualBlock(nn.Module):
    def __init__(self, cin, card, expansion, k, scaling):
        super().__init__()
        expanded = cin * expansion
        gain = RefBiasedActivation.Gain * scaling ** (-1 / (2 * 3 - 2))
        self.LinearLayer1 = RefConvolution(cin, expanded, 1, ActivationGain=gain)
        self.LinearLayer2 = RefConvolution(expanded, expanded, k, Groups=card, ActivationGain=gain)
        self.LinearLayer3 = RefConvolution(expanded, cin, 1, ActivationGain=0)
        self.NonLinearity1 = RefBiasedActivation(expanded)
        self.NonLinearity2 = RefBiasedActivation(expanded)

    def forward(self, x):
        y = self.LinearLayer1(x)
        y = self.LinearLayer2(self.NonLinearity1(y))
        y = self.LinearLayer3(self.NonLinearity2(y))
        return x + y


class RefUpsampleLayer(nn.Module):
    def __init__(self, cin, cout, taps):
        super().__init__()
        self.Resampler = RefUpsampler(taps)
        if cin != cout:
            self.LinearLayer = RefConvolution(cin, cout, 1)

    def forward(self, x):
        x = self.LinearLayer(x) if hasattr(self, "LinearLayer") else x
        return self.Resampler(x)


class RefDownsampleLayer(nn.Module):
    def __init__(self, cin, cout, taps):
        super().__init__()
        self.Resampler = RefDownsampler(taps)
        if cin != cout:
            self.LinearLayer = RefConvolution(cin, cout, 1)

    def forward(self, x):
        x = self.Resampler(x)
        return self.LinearLayer(x) if hasattr(self, "LinearLayer") else x


class RefGenerativeBasis(nn.Module):
    def __init__(self, din, cout):
        super().__init__()
        self.Basis = nn.Parameter(torch.empty(cout, 4, 4).normal_(0, 1))
        self.LinearLayer = ref_msr(nn.Linear(din, cout, bias=False))

    def forward(self, x):
        return self.Basis.view(1, -1, 4, 4) * self.LinearLayer(x).view(x.shape[0], -1, 1, 1)


class RefDiscriminativeBasis(nn.Module):
    def __init__(self, cin, dout):
        super().__init__()
        self.Basis = ref_msr(nn.Conv2d(cin, cin, kernel_size=4, stride=1, padding=0, groups=cin, bias=False))
        self.LinearLayer = ref_msr(nn.Linear(cin, dout, bias=False))

    def forward(self, x):
        return self.LinearLayer(self.Basis(x).view(x.shape[0], -1))


class RefGeneratorStage(nn.Module):
    def __init__(self, cin, cout, card, nblocks, expansion, k, scaling, taps=None):
        super().__init__()
        first = RefGenerativeBasis(cin, cout) if taps is None else RefUpsampleLayer(cin, cout, taps)
        blocks = [RefResidualBlock(cout, card, expansion, k, scaling) for _ in range(nblocks)]
        self.Layers = nn.ModuleList([first] + blocks)
        self.DataType = torch.float32

    def forward(self, x):
        x = x.to(self.DataType)
        for layer in self.Layers:
            x = layer(x)
        return x


class RefDiscriminatorStage(nn.Module):
    def __init__(self, cin, cout, card, nblocks, expansion, k, scaling, taps=None):
        super().__init__()
        last = RefDiscriminativeBasis(cin, cout) if taps is None else RefDownsampleLayer(cin, cout, taps)
        blocks = [RefResidualBlock(cin, card, expansion, k, scaling) for _ in range(nblocks)]
        self.Layers = nn.ModuleList(blocks + [last])
        self.DataType = torch.float32

    def forward(self, x):
        x = x.to(self.DataType)
        for layer in self.Layers:
            x = layer(x)
        return x


class RefGenerator(nn.Module):
    def __init__(
        self, NoiseDimension, Widths, Cards, Blocks, Expansion, CondDim=None, CondEmbDim=0, taps=(1, 2, 1)
    ):
        super().__init__()
        L = sum(Blocks)
        stages = [
            RefGeneratorStage(NoiseDimension + CondEmbDim, Widths[0], Cards[0], Blocks[0], Expansion, 3, L)
        ]
        stages += [
            RefGeneratorStage(
                Widths[i], Widths[i + 1], Cards[i + 1], Blocks[i + 1], Expansion, 3, L, list(taps)
            )
            for i in range(len(Widths) - 1)
        ]
        self.MainLayers = nn.ModuleList(stages)
        self.AggregationLayer = RefConvolution(Widths[-1], 3, 1)
        if CondDim is not None:
            self.EmbeddingLayer = ref_msr(nn.Linear(CondDim, CondEmbDim, bias=False))

    def forward(self, x, y=None):
        x = torch.cat([x, self.EmbeddingLayer(y)], dim=1) if hasattr(self, "EmbeddingLayer") else x
        for layer in self.MainLayers:
            x = layer(x)
        return self.AggregationLayer(x)


class RefDiscriminator(nn.Module):
    def __init__(self, Widths, Cards, Blocks, Expansion, CondDim=None, CondEmbDim=0, taps=(1, 2, 1)):
        super().__init__()
        L = sum(Blocks)
        stages = [
            RefDiscriminatorStage(Widths[i], Widths[i + 1], Cards[i], Blocks[i], Expansion, 3, L, list(taps))
            for i in range(len(Widths) - 1)
        ]
        out = 1 if CondDim is None else CondEmbDim
        stages += [RefDiscriminatorStage(Widths[-1], out, Cards[-1], Blocks[-1], Expansion, 3, L)]
        self.ExtractionLayer = RefConvolution(3, Widths[0], 1)
        self.MainLayers = nn.ModuleList(stages)
        if CondDim is not None:
            self.EmbeddingLayer = ref_msr(
                nn.Linear(CondDim, CondEmbDim, bias=False), 1 / math.sqrt(CondEmbDim)
            )

    def forward(self, x, y=None):
        x = self.ExtractionLayer(x.to(self.MainLayers[0].DataType))
        for layer in self.MainLayers:
            x = layer(x)
        x = (x * self.EmbeddingLayer(y)).sum(dim=1, keepdim=True) if hasattr(self, "EmbeddingLayer") else x
        return x.view(x.shape[0])


def randomise(net: nn.Module, seed: int = 1) -> nn.Module:
    """Non-zero values everywhere (fix-up zeros and biases too) so every branch shows in the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            scale = 0.3 if name.endswith("Bias") else 1.0 / math.sqrt(max(1, math.prod(p.shape[1:])))
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net
