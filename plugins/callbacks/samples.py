"""Sample grids as PNG in RUN/samples, from the objective's ``sample_grid`` on fixed inputs.

After writing a grid the callback fires ``on_samples(trainer, step, grid)`` (grid: ``[3, H, W]``
float in [0, 1], on the CPU) so loggers such as ``tensorboard`` get the same image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image


def save_grid(grid: torch.Tensor, path: Path) -> Path:
    """Write a [3, H, W] image in [0, 1] as PNG (atomically)."""
    array = grid.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    tmp.replace(path)
    return path


class Samples:
    """Every ``every`` steps (and at the end) write samples/step-N.png; 0 means once per epoch."""

    def __init__(self, every: int = 500, count: int = 4) -> None:
        self.every, self.count = every, count
        self._holdout: dict[str, torch.Tensor] | None = None

    def on_train_start(self, trainer: Any) -> None:
        if trainer.is_main:
            self._holdout = trainer.holdout(self.count)

    def write(self, trainer: Any) -> Path | None:
        if not trainer.is_main or self._holdout is None:
            return None
        grid = trainer.objective.sample_grid(self._holdout)
        path = save_grid(grid, trainer.run_dir / "samples" / f"step-{trainer.step:08d}.png")
        save_grid(grid, trainer.run_dir / "samples" / "latest.png")
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
