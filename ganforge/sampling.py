"""``ganforge sample``: grids, single images and latent walks from a trained generator."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import make_grid

from ganforge.errors import GanforgeError
from ganforge.inference import load_objective
from ganforge.registry import Registry


def _save(image: torch.Tensor, path: Path) -> Path:
    from PIL import Image

    array = image.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent batches ``a`` and ``b`` at fractions ``t``."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def sample_to_files(
    checkpoint: str,
    registry: Registry,
    count: int = 64,
    out: Path = Path("samples.png"),
    seed: int | None = None,
    individual: Path | None = None,
    interpolate: bool = False,
    steps: int = 8,
    device: str = "auto",
) -> list[Path]:
    """Write a grid (and optionally each image); returns the written paths, grid first."""
    if count < 1:
        raise GanforgeError(f"-n must be at least 1, got {count}")
    objective, meta, _ = load_objective(checkpoint, registry, device)
    if not objective.generates:
        raise GanforgeError(
            f"{checkpoint}: objective '{objective.name}' does not generate from noise "
            "(use 'ganforge translate')"
        )
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
    if interpolate:
        rows = max(1, count // steps) if count >= steps else 1
        a, b = objective.noise(rows, g).cpu(), objective.noise(rows, g).cpu()
        t = torch.linspace(0, 1, steps).view(1, steps, 1)
        z = slerp(a[:, None], b[:, None], t).reshape(rows * steps, -1)
        nrow = steps
    else:
        z = objective.noise(count, g).cpu()
        nrow = max(1, int(math.ceil(math.sqrt(count))))
    images = torch.cat([objective.generate(chunk) for chunk in z.split(256)]).clamp(-1, 1).add(1).div(2).cpu()
    paths = [_save(make_grid(images, nrow=nrow, padding=2, pad_value=1.0), out)]
    if individual is not None:
        paths += [_save(img, individual / f"sample-{i:05d}.png") for i, img in enumerate(images)]
    return paths
