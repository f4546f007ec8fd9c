"""Sample grids as PNG in RUN/samples: the model on fixed held-out inputs (or fixed noise).

After writing a grid the callback fires ``on_samples(trainer, step, grid)`` (grid: ``[3, H, W]``
float in [0, 1], on the CPU) so loggers such as ``tensorboard`` get the same image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from PIL import Image

from ganforge import Range
from ganforge.safety import atomic_write

PADDING = 2  # make_grid's, in sample_grid


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's scalable default (FreeType)
    except (TypeError, OSError):
        return ImageFont.load_default()


def with_captions(image: Image.Image, captions: list[str]) -> Image.Image:
    """``image`` (a grid of ``len(captions)`` columns) below a white header row naming each column.

    The grid's pixels are unchanged; a caption wider than its column is shortened to fit.
    """
    from PIL import ImageDraw

    columns = len(captions)
    cell = (image.width - PADDING) / columns
    font = _font(max(9, min(14, int(cell / 8))))
    height = int(font.size if hasattr(font, "size") else 11) + 6
    out = Image.new("RGB", (image.width, image.height + height), (255, 255, 255))
    out.paste(image, (0, height))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(captions):
        room = cell - PADDING - 2
        short = text.replace("input ", "").replace(" -> ", ">")
        for candidate in (text, short):
            if draw.textlength(candidate, font=font) <= room:
                break
        while candidate and draw.textlength(candidate, font=font) > room:
            candidate = candidate[:-1]
        x = PADDING + i * cell + (cell - PADDING - draw.textlength(candidate, font=font)) / 2
        draw.text((x, 3), candidate, fill=(40, 40, 40), font=font)
    return out


def save_grid(grid: torch.Tensor, path: Path, captions: list[str] | None = None) -> Path:
    """Write a [3, H, W] image in [0, 1] as PNG (atomically), under a header row of column
    ``captions`` when given."""
    array = grid.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    image = Image.fromarray(array)
    if captions:
        image = with_captions(image, captions)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    return path


class Samples:
    """Every ``every`` steps (and at the end) write samples/step-N.png; 0 means once per epoch."""

    def __init__(
        self,
        every: Annotated[int, Range(0)] = 500,
        count: Annotated[int, Range(1, 1024, why="memory: the grid is drawn in one image")] = 4,
    ) -> None:
        self.every, self.count = every, count
        self._holdout: dict[str, torch.Tensor] | None = None

    def on_train_start(self, trainer: Any) -> None:
        if trainer.is_main:
            self._holdout = trainer.holdout(self.count)

    def write(self, trainer: Any) -> Path | None:
        if not trainer.is_main or self._holdout is None:
            return None
        grid = sample_grid(trainer.model, self._holdout)
        captions = sample_captions(trainer.model)
        path = save_grid(grid, trainer.run_dir / "samples" / f"step-{trainer.step:08d}.png", captions)
        save_grid(grid, trainer.run_dir / "samples" / "latest.png", captions)
        trainer.emit("on_samples", trainer.step, grid)
        return path

    def on_step_end(self, trainer: Any, step: int, losses: dict) -> None:
        if self.every > 0 and step % self.every == 0:
            self.write(trainer)

    def on_epoch_end(self, trainer: Any, epoch: int) -> None:
        if self.every == 0:
            self.write(trainer)

    def on_train_end(self, trainer: Any) -> None:
        if not (trainer.run_dir / "samples" / f"step-{trainer.step:08d}.png").exists():
            self.write(trainer)


def sample_captions(model: Any) -> list[str] | None:
    """Captions of :func:`sample_grid`'s columns (None for a generator's grid): per direction the
    input, its translation and, with an inverse, the reconstruction."""
    if not model.directions:
        return None
    captions: list[str] = []
    for d in model.directions.values():
        captions += [f"input {d.source}", f"{d.source} -> {d.target}"]
        if d.inverse:
            captions.append(f"{d.source} -> {d.target} -> {model.directions[d.inverse].target}")
    return captions


def sample_grid(model: Any, holdout: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """A grid in [0, 1] of a :class:`ganforge.Model`: per held-out image, input | translation
    (| reconstruction) for each direction (``model.sample_count`` images); or a generator's
    samples of fixed noise (``model.sample_seed``), one row per class for a class-conditional one."""
    from torchvision.utils import make_grid

    if not model.directions:
        per_row = max(1, round(model.sample_count**0.5))
        count = per_row * len(model.classes) if model.classes else model.sample_count
        z = model.noise(count, torch.Generator().manual_seed(model.sample_seed))
        labels = None
        if model.classes:
            labels = torch.arange(len(model.classes), device=model.device).repeat_interleave(per_row)
        images = model.generate(z, labels).clamp(-1, 1).add(1).div(2)
        nrow = per_row if model.classes else max(1, int(round(len(images) ** 0.5)))
        return make_grid(images.cpu(), nrow=nrow, padding=PADDING, pad_value=1.0)
    if holdout is None:
        raise ValueError("a translation grid needs held-out images")
    columns: list[list[torch.Tensor]] = []
    for d in model.directions.values():
        real = holdout[d.source][: model.sample_count]
        labels = model.labels(None, len(real)) if model.classes else None
        fake = model.run(d.network, real, labels)
        if d.inverse:
            columns.append([real, fake, model.run(model.directions[d.inverse].network, fake, labels)])
        else:
            columns.append([real, fake])
    k = min(len(col[0]) for col in columns)
    rows = [img[i] for i in range(k) for col in columns for img in col]
    images = torch.stack([r.float() for r in rows]).clamp(-1, 1).add(1).div(2)
    return make_grid(images.cpu(), nrow=sum(len(col) for col in columns), padding=PADDING, pad_value=1.0)
