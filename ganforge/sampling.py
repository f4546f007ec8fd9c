"""``ganforge sample``: grids, single images and latent walks from a generating :class:`ganforge.Model`."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

from ganforge.errors import GanforgeError
from ganforge.model import Model
from ganforge.safety import check_memory, ensure_writable_dir, guard_targets, png_info


def _save(image: torch.Tensor, path: Path) -> Path:
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
    model: Model,
    count: int = 64,
    out: Path = Path("samples.png"),
    seed: int | None = None,
    individual: Path | None = None,
    interpolate: bool = False,
    steps: int = 8,
    cls: str | int | None = None,
) -> list[Path]:
    """Write a grid (and optionally each image); returns the written paths, grid first.

    A class-conditional model draws class ``cls`` (a name or index); without one, each class
    gets a row (``count`` images shared out over the rows, the same noise in every row, so the
    class is what changes; ``--interpolate``: one walk per class).
    """
    for flag, value in (("-n", count), ("--steps", steps)):
        if value < 1:
            raise GanforgeError(f"{flag} must be at least 1, got {value}")
    if seed is not None and not 0 <= seed < 2**63:
        raise GanforgeError(f"--seed must be in [0, 2**63), got {seed}")
    where = model.file or model.name
    if not model.generates:
        raise GanforgeError(
            f"{where}: model '{model.name}' does not generate from noise (use 'ganforge translate')"
        )
    if cls is not None:
        model.labels(cls, 1)  # a one-line error before any work
    per_class = bool(model.classes) and cls is None
    classes = len(model.classes) if per_class else 1
    rows = (1 if per_class else max(1, count // steps)) if interpolate else 0
    n = rows * steps if interpolate else (math.ceil(count / classes) if per_class else count)
    total = n * classes
    side = model.image_size
    # The images (float32) and their grid are held at once.
    check_memory(
        2 * total * 3 * side * side * 4, torch.device("cpu"), f"-n {count}: {total} images of {side} px"
    )
    # Nothing a user has is overwritten: the grid and each image are new files or earlier samples.
    individual_files = [individual / f"sample-{i:05d}.png" for i in range(total)] if individual else []
    inputs = [model.file] if model.file is not None else []
    guard_targets([out, *individual_files], inputs, flag="--out" if not individual else "--out/--individual")
    ensure_writable_dir(out.parent, "--out folder")
    if individual is not None:
        ensure_writable_dir(individual, "--individual")
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
    if interpolate:
        a, b = model.noise(rows, g).cpu(), model.noise(rows, g).cpu()
        t = torch.linspace(0, 1, steps).view(1, steps, 1)
        z = slerp(a[:, None], b[:, None], t).reshape(rows * steps, -1)
        nrow = steps
    else:
        z = model.noise(n, g).cpu()
        nrow = n if per_class else max(1, int(math.ceil(math.sqrt(n))))
    if per_class:  # the same noise in every class's row: the class is what changes
        labels = torch.arange(len(model.classes)).repeat_interleave(len(z))
        z = z.repeat(len(model.classes), 1)
    else:
        labels = model.labels(cls, len(z))
    chunks = [
        model.generate(z[i : i + 256], None if labels is None else labels[i : i + 256])
        for i in range(0, len(z), 256)
    ]
    images = torch.cat(chunks).clamp(-1, 1).add(1).div(2).cpu()
    paths = [_save(make_grid(images, nrow=nrow, padding=2, pad_value=1.0), out)]
    paths += [_save(img, file) for img, file in zip(images, individual_files)]
    return paths
