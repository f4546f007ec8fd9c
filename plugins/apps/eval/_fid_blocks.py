"""The Inception blocks of the TensorFlow FID graph, as torchvision subclasses.

Kept apart from ``inception.py`` so that loading the plugins does not import torchvision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.inception import InceptionA, InceptionC, InceptionE


class FIDInceptionA(InceptionA):
    """InceptionA with TensorFlow's average pooling (padding not counted)."""

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(
            F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        )
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class FIDInceptionC(InceptionC):
    """InceptionC with TensorFlow's average pooling (padding not counted)."""

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b = self.branch7x7dbl_1(x)
        b = self.branch7x7dbl_2(b)
        b = self.branch7x7dbl_3(b)
        b = self.branch7x7dbl_4(b)
        branch7x7dbl = self.branch7x7dbl_5(b)
        branch_pool = self.branch_pool(
            F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        )
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class _FIDInceptionE(InceptionE):
    max_pool = False

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, self.branch_pool(pooled)], 1)


class FIDInceptionE_1(_FIDInceptionE):
    """First InceptionE block: TensorFlow's average pooling (padding not counted)."""


class FIDInceptionE_2(_FIDInceptionE):
    """Second InceptionE block: max pooling, as in the TensorFlow FID graph."""

    max_pool = True
