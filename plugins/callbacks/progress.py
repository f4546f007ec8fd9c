"""A rich progress display: step, epoch, it/s, ETA and the current losses."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    """Live progress bar on a terminal; one plain line per log step otherwise (CI, files)."""

    def __init__(self, losses: bool = True) -> None:
        self.show_losses = losses
        self._bar: RichProgress | None = None
        self._task: Any = None
        self.console = Console(stderr=True)

    def on_train_start(self, trainer: Any) -> None:
        if not trainer.is_main:
            return
        if self.console.is_terminal:
            self._bar = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}"),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                "train",
                total=trainer.total_steps,
                completed=trainer.step,
                epoch=trainer.epoch,
                rate="",
                losses="",
            )
        else:
            print(
                f"training {trainer.recipe['objective']['name']}: step {trainer.step} -> "
                f"{trainer.total_steps} on {trainer.runtime.device} ({trainer.runtime.precision})",
                file=sys.stderr,
                flush=True,
            )

    def on_step_end(self, trainer: Any, step: int, losses: dict) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=step, epoch=trainer.epoch)

    def on_log(self, trainer: Any, step: int, scalars: dict[str, float]) -> None:
        if not trainer.is_main:
            return
        rate = f"{trainer.throughput.get('steps_per_s', 0):.2f} it/s"
        text = "  ".join(f"{k} {v:.3f}" for k, v in scalars.items()) if self.show_losses else ""
        if self._bar is not None:
            self._bar.update(self._task, completed=step, rate=rate, losses=text, epoch=trainer.epoch)
        else:
            eta = (trainer.total_steps - step) / max(trainer.throughput.get("steps_per_s", 0), 1e-9)
            print(
                f"step {step}/{trainer.total_steps} epoch {trainer.epoch} {rate} ETA {eta:.0f}s  {text}",
                file=sys.stderr,
                flush=True,
            )

    def on_train_end(self, trainer: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
