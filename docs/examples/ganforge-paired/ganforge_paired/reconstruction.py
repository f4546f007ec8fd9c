"""Components of the ``reconstruction`` kind."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from ganforge import Range


class L1:
    """Mean absolute difference (pix2pix's L1 term)."""

    def __call__(self, fake: Tensor, target: Tensor) -> Tensor:
        return (fake.float() - target.float()).abs().mean()


class Charbonnier:
    """A smooth L1: mean of sqrt(d^2 + eps^2), robust near zero."""

    def __init__(self, eps: Annotated[float, Range(0.0, min_open=True)] = 1e-3) -> None:
        self.eps = eps

    def __call__(self, fake: Tensor, target: Tensor) -> Tensor:
        d = fake.float() - target.float()
        return torch.sqrt(d * d + self.eps**2).mean()
