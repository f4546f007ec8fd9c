"""Translation metrics: how well a cycle returns to its input, and how much G changes its own domain.

Cheap and weight-free. ``cycle`` is a paired-image metric (``uses = "pairs"``): for each pairing
it names in ``pairs``, the evaluation driver hands it aligned images in [0, 1] and prefixes the
result keys with the pairing:

* ``cycle``: ``x`` and ``F(G(x))`` (the reconstruction) -> ``cycle_l1``, ``cycle_psnr``,
  ``cycle_ssim``;
* ``identity``: ``y`` and ``G(y)`` (the generator applied to its own output domain, the
  CycleGAN identity term) -> ``identity_l1``, ``identity_psnr``, ``identity_ssim``.

L1 is the mean absolute difference on [0, 1] images (half the training loss's [-1, 1] scale).
PSNR is per image with a data range of 1, then averaged. SSIM uses the usual Gaussian window
(11 taps, sigma 1.5, K1 = 0.01, K2 = 0.03; pytorch-msssim's defaults, "valid" filtering), per
channel, averaged over pixels, channels and images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import GanforgeError


def _check(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    if real.shape != fake.shape or real.dim() != 4:
        raise GanforgeError(
            f"paired metrics need two [N, C, H, W] batches of one shape, got "
            f"{tuple(real.shape)} and {tuple(fake.shape)}"
        )
    return real.double(), fake.double()


def l1(real: Tensor, fake: Tensor) -> Tensor:
    """Mean absolute difference per image, ``[N]``."""
    x, y = _check(real, fake)
    return (x - y).abs().flatten(1).mean(1)


def psnr(real: Tensor, fake: Tensor, data_range: float = 1.0, max_db: float = 100.0) -> Tensor:
    """Peak signal-to-noise ratio per image in dB, ``[N]`` (identical images: ``max_db``)."""
    x, y = _check(real, fake)
    mse = (x - y).pow(2).flatten(1).mean(1)
    value = 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-300))
    return value.clamp(max=max_db)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """A normalised 1-D Gaussian window (float64)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    real: Tensor,
    fake: Tensor,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Structural similarity per image, ``[N]`` (Gaussian window, valid filtering, channel mean)."""
    x, y = _check(real, fake)
    size = min(window, x.shape[-1], x.shape[-2])
    if size % 2 == 0:
        size -= 1
    g = gaussian_window(size, sigma).to(x.device)
    c = x.shape[1]
    gh = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    gv = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, gh, groups=c), gv, groups=c)

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    s = ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)) * cs
    return s.flatten(1).mean(1)


class CycleMetrics:
    """Cycle reconstruction L1, PSNR and SSIM plus the identity distance, per direction (no weights).

    A paired metric: ``uses = "pairs"``; ``compute(real, fake)`` takes aligned ``[N, 3, H, W]``
    images in [0, 1] and returns ``{"l1", "psnr", "ssim"}`` means over the images. The driver
    calls it for each pairing in ``pairs`` and prefixes the keys (``cycle_l1``, ``identity_l1``...).
    """

    uses = "pairs"

    def __init__(self, identity: bool = True) -> None:
        self.pairs: tuple[str, ...] = ("cycle", "identity") if identity else ("cycle",)

    def compute(self, real: Any, fake: Any) -> dict[str, float]:
        return {
            "l1": float(l1(real, fake).mean()),
            "psnr": float(psnr(real, fake).mean()),
            "ssim": float(ssim(real, fake).mean()),
        }
