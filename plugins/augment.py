"""DiffAugment (Zhao et al., 2020): differentiable augmentations applied to D's real and fake inputs.

The same random transform family is applied to every image the discriminator sees, real or
generated, and gradients flow through it to the generator, so D cannot memorise a small data
set without G learning augmented statistics. The ops follow mit-han-lab/data-efficient-gans
(``DiffAugment_pytorch.py``; the rounding of the translation and cutout sizes as its StyleGAN2
port), written for CUDA graphs: fixed shapes, all randomness drawn on the images' device from
torch's default generator, no host synchronisation.
"""

from typing import Annotated

import torch
from torch import Tensor

from ganforge import Range, hookimpl

_POLICIES = ("color", "translation", "cutout")


def _rand(x: Tensor) -> Tensor:
    """One uniform [0, 1) draw per image, broadcastable against ``[N, C, H, W]``."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


def rand_brightness(x: Tensor) -> Tensor:
    """Add U(-0.5, 0.5) per image (a quarter of the [-1, 1] range)."""
    return x + (_rand(x) - 0.5)


def rand_saturation(x: Tensor) -> Tensor:
    """Scale each pixel's deviation from its channel mean by U(0, 2) per image."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(x) * 2) + mean


def rand_contrast(x: Tensor) -> Tensor:
    """Scale each image's deviation from its overall mean by U(0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x) + 0.5) + mean


def rand_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by whole pixels, up to ``int(side * ratio + 0.5)`` each way; zeros fill in.

    Output pixel ``(i, j)`` of image ``b`` is input pixel ``(i + dy_b, j + dx_b)`` where that is
    inside the image, else 0 (mid-grey in [-1, 1]), as the reference. A gather at fixed shapes.
    """
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sy == 0 and sx == 0:
        return x
    dy = torch.randint(-sy, sy + 1, (n, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :] + dy  # [N, H]
    cols = torch.arange(w, device=x.device)[None, :] + dx  # [N, W]
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices around the channel slice put N, H, W first: [N, H, W, C].
    out = x[batch, :, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    out = out * valid[..., None].to(x.dtype)
    return out.permute(0, 3, 1, 2)


def rand_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one square of ``int(side * ratio + 0.5)`` pixels a side per image, centred at random.

    The centre is uniform over the image (as the reference), so the square may be cut by the
    border; it always overlaps the image.
    """
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if ch == 0 or cw == 0:
        return x
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1), device=x.device)
    top, left = cy - ch // 2, cx - cw // 2
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    in_rows = (rows >= top) & (rows < top + ch)  # [N, H]
    in_cols = (cols >= left) & (cols < left + cw)  # [N, W]
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


class DiffAugment:
    """Differentiable augmentation for discriminator inputs (DiffAugment: colour, translation, cutout).

    ``policy`` is a comma-separated list of ``color`` (brightness, saturation, contrast),
    ``translation`` (shifts of up to ``translation`` of each side) and ``cutout`` (a zeroed
    square of ``cutout`` of each side); an empty policy is the identity. Call it on ``[N, C, H, W]``
    images in [-1, 1]; each image gets its own random parameters. Apply the same instance to
    real and generated batches.
    """

    def __init__(
        self,
        policy: str = "color,translation,cutout",
        translation: Annotated[float, Range(0.0, 1.0, max_open=True)] = 0.125,
        cutout: Annotated[float, Range(0.0, 1.0)] = 0.5,
    ) -> None:
        names = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [p for p in names if p not in _POLICIES]
        if unknown:
            raise ValueError(
                f"DiffAugment: unknown policy {', '.join(unknown)}; valid: {', '.join(_POLICIES)}"
            )
        if not 0.0 <= translation < 1.0:
            raise ValueError(f"DiffAugment: translation must be in [0, 1), got {translation}")
        if not 0.0 <= cutout <= 1.0:
            raise ValueError(f"DiffAugment: cutout must be in [0, 1], got {cutout}")
        self.policy = names
        self.translation = float(translation)
        self.cutout = float(cutout)

    def __call__(self, x: Tensor) -> Tensor:
        """The augmented batch: same shape, dtype, device and memory format as ``x``."""
        if not self.policy:
            return x
        if x.dim() != 4:
            raise ValueError(f"DiffAugment: expected [N, C, H, W] images, got shape {tuple(x.shape)}")
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        for name in self.policy:
            if name == "color":
                x = rand_contrast(rand_saturation(rand_brightness(x)))
            elif name == "translation":
                x = rand_translation(x, self.translation)
            else:
                x = rand_cutout(x, self.cutout)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)

    def __repr__(self) -> str:
        return (
            f"DiffAugment(policy={','.join(self.policy)!r}, translation={self.translation}, "
            f"cutout={self.cutout})"
        )


@hookimpl
def register_augments(register):
    register("diffaugment", DiffAugment)
