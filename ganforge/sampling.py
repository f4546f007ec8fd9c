"""``ganforge sample``: grids, single images and latent walks from a trained generator."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import make_grid

from ganforge.errors import GanforgeError
from ganforge.inference import load_objective
from ganforge.registry import Registry
from ganforge.safety import check_memory, ensure_writable_dir, guard_targets, png_info


def _save(image: torch.Tensor, path: Path) -> Path:
    from PIL import Image

    array = image.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    Image.fromarray(array).save(path, pnginfo=png_info("sample"))  # marked: a rerun may replace it
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
    if steps < 1:
        raise GanforgeError(f"--steps must be at least 1, got {steps}")
    if seed is not None and not 0 <= seed < 2**63:
        raise GanforgeError(f"--seed must be in [0, 2**63), got {seed}")
    objective, meta, file = load_objective(checkpoint, registry, device)
    if not objective.generates:
        raise GanforgeError(
            f"{checkpoint}: objective '{objective.name}' does not generate from noise "
            "(use 'ganforge translate')"
        )
    rows = (max(1, count // steps) if count >= steps else 1) if interpolate else 0
    n = rows * steps if interpolate else count
    side = int(meta.get("image_size") or 64)
    # The images (float32) and their grid are held at once.
    check_memory(2 * n * 3 * side * side * 4, torch.device("cpu"), f"-n {count}: {n} images of {side} px")
    # Nothing a user has is overwritten: the grid and each image are new files or earlier samples.
    individual_files = [individual / f"sample-{i:05d}.png" for i in range(n)] if individual else []
    guard_targets([out, *individual_files], [file], flag="--out" if not individual else "--out/--individual")
    ensure_writable_dir(out.parent, "--out folder")
    if individual is not None:
        ensure_writable_dir(individual, "--individual")
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
    if interpolate:
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
